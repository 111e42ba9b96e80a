"""OpenRouter's management API (`/api/v1/activity`, `/keys`, `/credits`) as its OpenAPI document describes it.

Shapes from `OpenRouterTeam/docs` `openapi/openapi.yaml` (c26125a): `/activity` returns the last 30
*completed* UTC days relative to the simulator clock, one row per (date, model, endpoint), no
pagination, `date=` must be one of those days (else 400); `/keys` lists the most recent 100 keys per
page, `offset` to page on, disabled keys only with `include_disabled=true`, the default workspace
unless `workspace_id` is given, with `usage_daily` / `usage_monthly` for the current UTC day / month;
`/credits` gives `total_credits` and `total_usage`; `/workspaces` pages by `offset` / `limit` (max 100)
with a `total_count`. Money is a JSON number of USD. Errors are
`{"error": {"code", "message"}}`: no key → 401 "Missing Authentication header", an unknown key → 401,
an inference key → 403 "Only management keys can perform this operation".

A standalone server for tests (`OpenRouterSimulator(...).start()`), and the scenario's OpenRouter
accounts inside `simulator/providers_server.py` (`scenario_answer`: every hour of a scenario account
becomes `Spend` rows through one key; the prepaid credits are the account's `prepaid_credit_usd`; the
status faults are the shared `faults.STATUS_FAULTS` in OpenRouter's error envelope).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
from collections import defaultdict
from decimal import Decimal
from typing import Any, ClassVar

from simulator._server import Handler, LocalServer, Recorder, Reply, Request, json_reply, text_reply
from simulator._wire import Body, bearer_key, finish

PREFIX = "/api/v1"
PAGE_SIZE = 100
ACTIVITY_DAYS = 30
FAULTS = (
    "http_401", "http_403", "http_429", "http_500", "http_502", "http_503",
    "html", "html_200", "error_envelope_200",
    "drift_missing_data", "drift_amount_type", "pagination_loop", "today_row",
)  # fmt: skip
_MESSAGES = {
    400: "Invalid request parameters",
    401: "Missing Authentication header",
    403: "Only management keys can perform this operation",
    404: "Resource not found",
    405: "Method not allowed",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_CLOUDFLARE = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    workspace_id: str = "default"
    disabled: bool = False

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Spend:
    """Credits spent through one key on one model and endpoint at one instant (and BYOK billed elsewhere)."""

    at: dt.datetime
    key: Key
    model: str
    usd: Decimal
    byok_usd: Decimal = Decimal(0)
    endpoint_id: str = "ep-1"
    provider_name: str = "OpenAI"


def _num(v: Decimal) -> float:
    return float(v)  # the API sends doubles; tests compare against the exact Decimal sums


class OpenRouterSimulator:
    """Holds the data, the clock, the keys, the armed faults and the request log; serves them on 127.0.0.1."""

    def __init__(
        self,
        spend: list[Spend],
        *,
        now: dt.datetime,
        management_keys: frozenset[str] = frozenset({"sk-or-mgmt-test"}),
        inference_keys: frozenset[str] = frozenset({"sk-or-v1-test"}),
        total_credits: Decimal = Decimal("500"),
        all_time_before_month: Decimal = Decimal("0"),
        extra_keys: tuple[Key, ...] = (),
    ) -> None:
        self.spend = list(spend)
        self.now = now
        self.management_keys = management_keys
        self.inference_keys = inference_keys
        self.total_credits = total_credits
        self.all_time_before_month = all_time_before_month
        self.keys = sorted({*(s.key for s in spend), *extra_keys}, key=lambda k: k.name)
        self.log = Recorder()
        self._faults: list[tuple[str, str | None, int | None]] = []
        self._lock = threading.Lock()
        self._server: LocalServer | None = None

    # -- control -----------------------------------------------------------------------------------

    def arm(self, mode: str, *, endpoint: str | None = None, count: int | None = None) -> None:
        """Spoil the next `count` requests (None: until cleared) to `endpoint` (activity/keys/credits; None: all)."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append((mode, endpoint, count))

    def _take(self, endpoint: str) -> str | None:
        with self._lock:
            for i, (mode, scope, count) in enumerate(self._faults):
                if scope not in (None, endpoint):
                    continue
                if count is not None:
                    if count <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = (mode, scope, count - 1)
                return mode
        return None

    def start(self) -> OpenRouterSimulator:
        sim = self

        class _Bound(OpenRouterHandler):
            simulator: ClassVar[OpenRouterSimulator] = sim

        self._server = LocalServer(0, _Bound)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"{self._server.url}{PREFIX}"

    # -- truth, for tests ------------------------------------------------------------------------

    def month_to_date(self) -> Decimal:
        """The exact OpenRouter-billed spend of the current UTC month up to `now` (BYOK excluded)."""
        start = self.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return sum((s.usd for s in self.spend if start <= s.at <= self.now), Decimal(0))

    # -- the API -----------------------------------------------------------------------------------

    def activity(self, date: str | None) -> Reply:
        today = self.now.date()
        days = {today - dt.timedelta(days=n) for n in range(1, ACTIVITY_DAYS + 1)}
        if date is not None:
            try:
                wanted = dt.date.fromisoformat(date)
            except ValueError:
                return error(400)
            if wanted not in days:
                return error(400)
            days = {wanted}
        rows: dict[tuple[dt.date, str, str], dict[str, Any]] = {}
        for s in self.spend:
            day = s.at.date()
            if day not in days or s.at > self.now:
                continue
            row = rows.setdefault(
                (day, s.model, s.endpoint_id),
                {"date": day.isoformat(), "model": s.model, "model_permaslug": f"{s.model}-2026-01-01",
                 "endpoint_id": s.endpoint_id, "provider_name": s.provider_name, "usage": Decimal(0),
                 "byok_usage_inference": Decimal(0), "requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                 "reasoning_tokens": 0},
            )  # fmt: skip
            row["usage"] += s.usd
            row["byok_usage_inference"] += s.byok_usd
            row["requests"] += 1
        data = [
            {**r, "usage": _num(r["usage"]), "byok_usage_inference": _num(r["byok_usage_inference"])}
            for _, r in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
        ]
        return json_reply(200, {"data": data})

    def keys_page(self, offset: int, include_disabled: bool, workspace_id: str | None) -> Reply:
        month_start = self.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        day_start = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        week_start = day_start - dt.timedelta(days=day_start.weekday())  # "the current UTC week (Monday-Sunday)"
        sums: dict[Key, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for s in self.spend:
            if s.at > self.now:
                continue
            totals = sums[s.key]
            totals["usage"] += s.usd
            totals["byok_usage"] += s.byok_usd
            if s.at >= month_start:
                totals["usage_monthly"] += s.usd
                totals["byok_usage_monthly"] += s.byok_usd
            if s.at >= week_start:
                totals["usage_weekly"] += s.usd
                totals["byok_usage_weekly"] += s.byok_usd
            if s.at >= day_start:
                totals["usage_daily"] += s.usd
                totals["byok_usage_daily"] += s.byok_usd
        listed = [
            k for k in self.keys
            if k.workspace_id == (workspace_id or "default") and (include_disabled or not k.disabled)
        ]  # fmt: skip
        data = []
        for k in listed[offset : offset + PAGE_SIZE]:
            t = sums[k]
            data.append(
                {"hash": k.hash, "name": k.name, "label": f"sk-or-v1-{k.hash[:3]}...{k.hash[-3:]}",
                 "disabled": k.disabled, "limit": None, "limit_remaining": None, "limit_reset": None,
                 "include_byok_in_limit": False, "usage": _num(t["usage"]), "usage_daily": _num(t["usage_daily"]),
                 "usage_weekly": _num(t["usage_weekly"]), "usage_monthly": _num(t["usage_monthly"]),
                 "byok_usage": _num(t["byok_usage"]), "byok_usage_daily": _num(t["byok_usage_daily"]),
                 "byok_usage_weekly": _num(t["byok_usage_weekly"]),
                 "byok_usage_monthly": _num(t["byok_usage_monthly"]), "created_at": "2026-01-01T00:00:00Z",
                 "updated_at": None, "creator_user_id": "user_sim", "workspace_id": k.workspace_id}
            )  # fmt: skip
        return json_reply(200, {"data": data})

    def workspaces(self, offset: int, limit: int) -> Reply:
        ids = sorted({k.workspace_id for k in self.keys})
        data = [{"id": w, "name": w.title(), "slug": w, "created_at": "2026-01-01T00:00:00Z"} for w in ids]
        return json_reply(200, {"data": data[offset : offset + limit], "total_count": len(ids)})

    def credits(self) -> Reply:
        used = self.all_time_before_month + sum((s.usd for s in self.spend if s.at <= self.now), Decimal(0))
        return json_reply(200, {"data": {"total_credits": _num(self.total_credits), "total_usage": _num(used)}})


def error(status: int) -> Reply:
    return json_reply(status, {"error": {"code": status, "message": _MESSAGES.get(status, "Error")}, "user_id": None})


def _spoil(mode: str, endpoint: str, reply: Reply) -> Reply:
    """Apply a data fault to a correct answer."""
    doc = json.loads(reply.body)
    if mode == "drift_missing_data":
        return json_reply(200, {"result": doc["data"]})
    if mode == "drift_amount_type":
        items = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
        for item in items:
            for field in ("usage", "usage_monthly", "total_usage"):
                if field in item:
                    item[field] = str(item[field])
        if not items and endpoint == "activity":
            doc["data"] = [{"date": "2026-01-01", "model": "m", "usage": "0.1"}]
        if "total_count" in doc:
            doc["total_count"] = str(doc["total_count"])
        return json_reply(200, doc)
    return reply


class OpenRouterHandler(Handler):
    simulator: ClassVar[OpenRouterSimulator]

    def route(self, request: Request) -> Reply:
        sim = self.simulator
        endpoint = request.path.removeprefix(PREFIX).strip("/")
        sim.log.append({"method": request.method, "path": request.path, "query": request.query,
                        "has_auth": "authorization" in request.headers})  # fmt: skip
        if request.method != "GET":
            return error(405)
        if endpoint not in ("activity", "keys", "credits", "workspaces"):
            return error(404)
        mode = sim._take(endpoint)
        if mode is not None and mode.startswith("http_"):
            status = int(mode.removeprefix("http_"))
            headers = (
                {"Retry-After": "1", "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0"} if status == 429 else {}
            )
            return _with_headers(error(status), headers)
        if mode == "html":
            return text_reply(502, _CLOUDFLARE, "text/html; charset=utf-8")
        if mode == "html_200":
            return text_reply(200, _CLOUDFLARE, "text/html; charset=utf-8")
        if mode == "error_envelope_200":
            return json_reply(200, {"error": {"code": 500, "message": "Internal Server Error"}})
        key = bearer_key(request)
        if key is None:
            return error(401)
        if key in sim.inference_keys:
            return error(403)
        if key not in sim.management_keys:
            return json_reply(401, {"error": {"code": 401, "message": "User not found."}})
        if endpoint == "activity":
            reply = sim.activity(request.param("date"))
            if mode == "today_row":
                doc = json.loads(reply.body)
                doc["data"].append({**(doc["data"] or [_TODAY_TEMPLATE])[-1], "date": sim.now.date().isoformat()})
                reply = json_reply(200, doc)
        elif endpoint == "keys":
            try:
                offset = int(request.param("offset") or 0)
            except ValueError:
                return error(400)
            if offset < 0:
                return error(400)
            if mode == "pagination_loop":
                offset = 0
            reply = sim.keys_page(offset, request.param("include_disabled") == "true", request.param("workspace_id"))
        elif endpoint == "workspaces":
            try:
                offset, limit = int(request.param("offset") or 0), int(request.param("limit") or 50)
            except ValueError:
                return error(400)
            if offset < 0 or not 1 <= limit <= 100:
                return error(400)
            if mode == "pagination_loop":  # the first page again, claiming there is more
                doc = json.loads(sim.workspaces(0, limit).body)
                return json_reply(200, {**doc, "total_count": doc["total_count"] + 1000})
            reply = sim.workspaces(offset, limit)
        else:
            reply = sim.credits()
        return _spoil(mode, endpoint, reply) if mode else reply


_TODAY_TEMPLATE: dict[str, Any] = {
    "model": "openai/gpt-4.1", "model_permaslug": "openai/gpt-4.1-2026-01-01", "endpoint_id": "ep-1",
    "provider_name": "OpenAI", "usage": 0.5, "byok_usage_inference": 0.0, "requests": 1, "prompt_tokens": 1,
    "completion_tokens": 1, "reasoning_tokens": 0,
}  # fmt: skip


def _with_headers(reply: Reply, headers: dict[str, str]) -> Reply:
    return dataclasses.replace(reply, headers={**reply.headers, **headers})


# --- the scenario's OpenRouter accounts, served by simulator/providers_server.py ---------------


def scenario_spend(account: Any, visible_until: dt.datetime) -> list[Spend]:
    """One `Spend` per (hour, model) of `account` (a `scenario.Account` of provider openrouter): the
    hours that ended by `visible_until`, from 31 days before it (all `/activity` can show)."""
    key = Key(account.label)
    start = (visible_until - dt.timedelta(days=ACTIVITY_DAYS + 1)).replace(minute=0, second=0, microsecond=0)
    hour = start
    out = []
    while hour + dt.timedelta(hours=1) <= visible_until:
        for cell, amount in zip(account.cells, account.hourly(hour.date())[hour.hour], strict=True):
            if amount:
                out.append(Spend(hour, key, str(cell.values.get("model") or "openrouter/auto"), amount))
        hour += dt.timedelta(hours=1)
    return out


def status_error(status: int, request_id: str, headers: dict[str, str] | None = None) -> Reply:
    """The envelope OpenRouter sends with `status` (used by the simulator's status faults)."""
    if status == 429:
        headers = {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", **(headers or {})}
    return _with_headers(error(status), headers or {})


def unauthorized(key: str | None, request_id: str) -> Reply:
    if key is None:
        return error(401)
    return json_reply(401, {"error": {"code": 401, "message": "User not found."}})


def scenario_answer(request: Request, account: Any, ctx: Any) -> Reply:
    """`/api/v1/{activity,keys,workspaces,credits}` for one scenario account at `ctx.now` (data faults
    from `ctx.mode`: drift_missing_data, drift_amount_type, truncated_json, huge)."""
    sim = OpenRouterSimulator(
        scenario_spend(account, ctx.visible_until),
        now=ctx.now,
        management_keys=frozenset({account.key}),
        inference_keys=frozenset(),
        total_credits=account.prepaid_credit_usd,
    )
    endpoint = request.path.removeprefix(PREFIX).strip("/")
    if request.method != "GET":
        return error(405)
    mode = ctx.mode if ctx.mode in ("drift_missing_data", "drift_amount_type", "truncated_json", "huge") else None
    if endpoint == "activity":
        reply = sim.activity(request.param("date"))
    elif endpoint == "keys":
        try:
            offset = int(request.param("offset") or 0)
        except ValueError:
            return error(400)
        reply = sim.keys_page(offset, request.param("include_disabled") == "true", request.param("workspace_id"))
    elif endpoint == "workspaces":
        try:
            offset, limit = int(request.param("offset") or 0), int(request.param("limit") or 50)
        except ValueError:
            return error(400)
        if offset < 0 or not 1 <= limit <= 100:
            return error(400)
        reply = sim.workspaces(offset, limit)
    elif endpoint == "credits":
        reply = sim.credits()
    else:
        return error(404)
    if mode in ("drift_missing_data", "truncated_json", "huge"):
        return finish(Body(json.loads(reply.body), "data", ("data",), _TODAY_TEMPLATE), mode)
    return _spoil(mode, endpoint, reply) if mode else reply
