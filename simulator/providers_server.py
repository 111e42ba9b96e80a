"""One threaded HTTP server speaking OpenAI, Anthropic and xAI billing APIs, and its control API.

Provider endpoints (see provider-apis.md sections 1-3):

* `GET  /v1/organization/costs`                          OpenAI, `Authorization: Bearer <admin key>`
* `GET  /v1/organizations/cost_report`                   Anthropic, `x-api-key` + `anthropic-version`
* `POST /v1/billing/teams/{team_id}/usage`, `GET .../postpaid/invoice/preview`,
  `GET .../postpaid/spending-limits`, `GET .../prepaid/balance` (+ mutating endpoints, logged)
                                                          xAI, `Authorization: Bearer <management key>`

Control API (JSON, same port): `/_sim/clock`, `/_sim/faults`, `/_sim/latency`, `/_sim/lag`,
`/_sim/options`, `/_sim/requests`, `/_sim/reset`, `/_sim/expected`, `/_sim/scenario`; `Simulator`
offers the same in-process. See simulator/README.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from simulator import _anthropic, _openai, _openrouter, _xai
from simulator._server import (
    Handler,
    LatencyKnob,
    LocalServer,
    Recorder,
    Reply,
    Request,
    Running,
    hang_reply,
    iso_z,
    json_reply,
    parse_instant,
    reset_reply,
    text_reply,
)
from simulator._wire import Ctx, Emitter, bearer_key
from simulator.billing_export import Row
from simulator.faults import (
    DATA_FAULTS,
    DRIP_INTERVAL_S,
    OPENAI_LIMITS_ONLY,
    PAGINATED_ONLY,
    PROVIDER_FAULT_MODES,
    STATUS_FAULTS,
    XAI_ONLY,
    Fault,
    FaultBook,
    gzip_bomb,
    parse_count,
    parse_seconds,
)
from simulator.scenario import PROVIDERS, UTC, Account, Scenario, month_start_of, utc_day_start


@dataclasses.dataclass(frozen=True)
class Wire:
    """How one provider reads its key, words its errors and answers its endpoints."""

    api_key: Callable[[Request], str | None]
    status_error: Callable[[int, str, dict[str, str] | None], Reply]
    unauthorized: Callable[[str | None, str], Reply]
    answer: Callable[[Request, Account, Ctx], Reply]


def _openai_answer(request: Request, account: Account, ctx: Ctx) -> Reply:
    if _openai.is_spend_limit(request.path):
        return _openai.spend_limit(request, account, ctx)
    if request.path != _openai.COSTS_PATH:
        return _openai.not_found(request)
    return _openai.costs(request, account, ctx)


def _anthropic_answer(request: Request, account: Account, ctx: Ctx) -> Reply:
    if request.path != _anthropic.COST_REPORT_PATH:
        return _anthropic.error(404, f"Not found: {request.method} {request.path}", ctx.request_id)
    missing = _anthropic.missing_version(request, ctx.request_id)
    return missing or _anthropic.cost_report(request, account, ctx)


WIRES: Mapping[str, Wire] = {
    "openai": Wire(_openai.api_key, _openai.status_error, _openai.unauthorized, _openai_answer),
    "anthropic": Wire(_anthropic.api_key, _anthropic.status_error, _anthropic.unauthorized, _anthropic_answer),
    "xai": Wire(_xai.api_key, _xai.status_error, _xai.unauthorized, _xai.handle),
    "openrouter": Wire(bearer_key, _openrouter.status_error, _openrouter.unauthorized, _openrouter.scenario_answer),
}
AMOUNT_FAULTS = frozenset({"negative_amounts", "absurd_amounts", "drift_amount_type"})
HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


def provider_of(path: str) -> str | None:
    if path.startswith("/v1/organization/"):
        return "openai"
    if path.startswith("/v1/organizations/"):
        return "anthropic"
    if path.startswith("/v1/billing/"):
        return "xai"
    if path.startswith(_openrouter.PREFIX + "/"):
        return "openrouter"
    return None


def _as_instant(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        return parse_instant(value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the clock needs a timezone-aware datetime (e.g. tzinfo=datetime.UTC)")
    return value.astimezone(UTC)


class SimState(LatencyKnob):
    """Everything the control API changes, shared by all handler threads."""

    def __init__(
        self,
        scenario: Scenario,
        clock: dt.datetime | None = None,
        latency_ms: float = 0,
        *,
        complete_days_only: bool | None = None,
    ) -> None:
        self.scenario = scenario
        self.faults = FaultBook()
        self.log = Recorder()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._initial_clock = clock
        self._initial_latency = latency_ms / 1000
        self._clock = clock
        self._latency_s = self._initial_latency
        self._lag = {p: scenario.lag(p) for p in PROVIDERS}
        self._initial_complete_days_only = (
            scenario.complete_days_only if complete_days_only is None else complete_days_only
        )
        self._complete_days_only = self._initial_complete_days_only

    # --- clock, latency, lag, options --------------------------------------------------------------

    def now(self) -> dt.datetime:
        with self._lock:
            return self._clock if self._clock is not None else dt.datetime.now(UTC)

    def set_clock(self, now: dt.datetime | str | None) -> None:
        instant = None if now is None else _as_instant(now)
        with self._lock:
            self._clock = instant

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._clock = (self._clock or dt.datetime.now(UTC)) + delta
            return self._clock

    def lag(self, provider: str) -> dt.timedelta:
        with self._lock:
            return self._lag[provider]

    def set_lag(self, minutes: float, provider: str | None = None) -> None:
        if minutes < 0:
            raise ValueError("lag minutes must be >= 0")
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
        with self._lock:
            for p in [provider] if provider else PROVIDERS:
                self._lag[p] = dt.timedelta(minutes=minutes)

    @property
    def complete_days_only(self) -> bool:
        with self._lock:
            return self._complete_days_only

    def set_complete_days_only(self, flag: bool) -> None:
        with self._lock:
            self._complete_days_only = flag

    def visible_lag(self, provider: str, now: dt.datetime) -> dt.timedelta:
        """How far before `now` the data a client can read ends (whole days only in complete-days mode)."""
        lag = self.lag(provider)
        if provider == "anthropic" and self.complete_days_only:
            return now - utc_day_start(now - lag)
        return lag

    def reset(self) -> None:
        self.faults.clear()
        self.log.clear()
        with self._lock:
            self._clock = self._initial_clock
            self._latency_s = self._initial_latency
            self._lag = {p: self.scenario.lag(p) for p in PROVIDERS}
            self._complete_days_only = self._initial_complete_days_only

    # --- faults ------------------------------------------------------------------------------------

    def add_fault(
        self,
        provider: str,
        mode: str,
        *,
        account: str | None = None,
        count: int | None = None,
        endpoint: str | None = None,
        seconds: float | None = None,
    ) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
        if mode not in PROVIDER_FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(PROVIDER_FAULT_MODES)}")
        if mode in PAGINATED_ONLY and provider == "xai":
            raise ValueError(f"{mode} applies to the paginated OpenAI and Anthropic endpoints only")
        if mode in XAI_ONLY and provider != "xai":
            raise ValueError(f"{mode} applies to xAI usage only")
        if mode in OPENAI_LIMITS_ONLY and provider != "openai":
            raise ValueError(f"{mode} applies to OpenAI spend limits only (endpoint='spend_limit')")
        labels = {a.label for a in self.scenario.accounts if a.provider == provider}
        if account is not None and account not in labels:
            raise ValueError(f"no {provider} account labelled {account!r} in the scenario")
        if mode in ("gzip_bomb", "gzip_bomb_single"):
            gzip_bomb()  # built once (~3 s of CPU) when armed, not on the clock of the request it answers
        self.faults.add(
            Fault(
                mode=mode,
                count=parse_count(count),
                scope={"provider": provider, "account": account, "endpoint": endpoint},
                seconds=parse_seconds(seconds),
            )
        )

    def take_fault(self, provider: str, account: str | None, path: str, modes: tuple[str, ...]) -> Fault | None:
        def matches(fault: Fault) -> bool:
            scope = fault.scope
            return (
                fault.mode in modes
                and scope["provider"] == provider
                and scope["account"] in (None, account)
                and (not scope["endpoint"] or str(scope["endpoint"]) in path)
            )

        return self.faults.take(matches)

    # --- expected sums ------------------------------------------------------------------------------

    def expected(self, now: dt.datetime | None = None, month_start: dt.datetime | None = None) -> dict[str, Any]:
        """Per-account month-to-date USD (decimal strings), daily series and breakdowns."""
        now = now or self.now()
        start = month_start or month_start_of(now)
        accounts: dict[str, Any] = {}
        total = Decimal(0)
        for account in self.scenario.accounts:
            lag = self.visible_lag(account.provider, now)
            daily = self.scenario.expected_daily(account, now=now, month_start=start, lag=lag)
            mtd = sum(daily.values(), Decimal(0))
            total += mtd
            breakdown = self.scenario.expected_breakdown(account, now=now, month_start=start, lag=lag)
            accounts[account.scope] = {
                "provider": account.provider,
                "label": account.label,
                "mtd_usd": str(mtd),
                "daily": {day.isoformat(): str(amount) for day, amount in daily.items()},
                "breakdown": {dim: {k: str(v) for k, v in values.items()} for dim, values in breakdown.items()},
            }
        return {"now": iso_z(now), "month_start": iso_z(start), "total_usd": str(total), "accounts": accounts}

    def describe(self) -> dict[str, Any]:
        """The scenario's accounts (keys included: they are fake) and the current knobs."""
        return {
            "name": self.scenario.name,
            "description": self.scenario.description,
            "accounts": [
                {
                    "provider": a.provider,
                    "label": a.label,
                    "scope": a.scope,
                    "key": a.key,
                    "team_id": a.team_id,
                    "spending_limit_usd": None if a.spending_limit_usd is None else str(a.spending_limit_usd),
                }
                for a in self.scenario.accounts
            ],
            "now": iso_z(self.now()),
            "latency_ms": self.latency_s * 1000,
            "lag_minutes": {p: self.lag(p).total_seconds() / 60 for p in PROVIDERS},
            "complete_days_only": self.complete_days_only,
        }

    def record(
        self, request: Request, provider: str | None, account: Account | None, reply: Reply, fault: str | None
    ) -> None:
        body: Any = None
        if request.body:
            try:
                body = request.json()
            except ValueError:
                body = request.body.decode("utf-8", "replace")
        self.log.append(
            {
                "seq": next(self._seq),
                "at": iso_z(dt.datetime.now(UTC)),
                "sim_now": iso_z(self.now()),
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "body": body,
                "provider": provider,
                "account": account.label if account else None,
                "status": reply.status if reply.action is None else None,
                "fault": fault,
                "mutating": (provider == "xai" and _xai.is_mutating(request))
                or (provider == "openai" and _openai.is_mutating(request))
                or (provider == "openrouter" and request.method != "GET"),
            }
        )


def _status_fault(wire: Wire, fault: Fault, request_id: str) -> Reply:
    mode = fault.mode
    if mode == "timeout":
        return hang_reply(fault.seconds)
    if mode == "reset":
        return reset_reply()
    if mode in ("drip", "stall"):
        return _slow_reply(mode, fault.seconds)
    if mode in ("gzip_bomb", "gzip_bomb_single"):
        declared = "gzip, gzip" if mode == "gzip_bomb" else "gzip"  # two layers on the wire either way
        return Reply(200, gzip_bomb(), "application/json", {"Content-Encoding": declared})
    if mode in ("html", "html_200"):
        return text_reply(502 if mode == "html" else 200, HTML_ERROR_PAGE, "text/html; charset=utf-8")
    if mode == "error_envelope_200":
        return dataclasses.replace(wire.status_error(500, request_id, None), status=200)
    if mode == "http_429":
        return wire.status_error(429, request_id, {"Retry-After": "1"})
    if mode == "http_429_no_retry_after":
        return wire.status_error(429, request_id, None)
    return wire.status_error(int(mode.removeprefix("http_")), request_id, None)


_DRIP_BODY = json.dumps({"object": "page", "data": [], "has_more": False}).encode().ljust(4096)


def _slow_reply(mode: str, seconds: float) -> Reply:
    """HTTP 200 headers at once, then the body a byte a second (`drip`) or nothing for `seconds` (`stall`).

    `Connection: close` so a stalled connection is never reused for the next request. The stream is
    a generator the server writes chunk by chunk, checking between chunks whether it is stopping.
    """

    def drip() -> Iterator[bytes]:
        for i in range(len(_DRIP_BODY)):
            if i:
                time.sleep(DRIP_INTERVAL_S)
            yield _DRIP_BODY[i : i + 1]

    def stall() -> Iterator[bytes]:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.1)
            yield b""

    return Reply(
        200,
        content_type="application/json",
        headers={"Connection": "close"},
        stream=drip if mode == "drip" else stall,
        length=len(_DRIP_BODY),
    )


class ProviderHandler(Handler):
    state: ClassVar[SimState]

    def route(self, request: Request) -> Reply:
        if request.path.startswith("/_sim/"):
            return control(self.state, request)
        provider = provider_of(request.path)
        if provider is None:
            reply = json_reply(404, {"error": f"the simulator serves no endpoint at {request.path}"})
            self.state.record(request, None, None, reply, None)
            return reply
        request_id = f"req_sim_{os.urandom(12).hex()}"
        reply, account, fault = self._provider(provider, request, request_id)
        if provider == "anthropic" and reply.action is None:
            reply = dataclasses.replace(reply, headers={**reply.headers, "request-id": request_id})
        self.state.record(request, provider, account, reply, fault)
        return reply

    def _provider(self, provider: str, request: Request, request_id: str) -> tuple[Reply, Account | None, str | None]:
        state = self.state
        wire = WIRES[provider]
        key = wire.api_key(request)
        account = state.scenario.by_key(key) if key else None
        if account is not None and account.provider != provider:
            account = None
        label = account.label if account else None
        if not self.pause(state.latency_s):
            return hang_reply(0), account, None  # stopping
        fault = state.take_fault(provider, label, request.path, STATUS_FAULTS)
        if fault is not None:
            return _status_fault(wire, fault, request_id), account, fault.mode
        if account is None:
            return wire.unauthorized(key, request_id), None, None
        writes = _xai.is_mutating(request) or _openai.is_mutating(request)
        fault = None if writes else state.take_fault(provider, label, request.path, DATA_FAULTS)
        mode = fault.mode if fault else None
        now = state.now()
        ctx = Ctx(
            now=now,
            visible_until=now - state.lag(provider),
            emit=Emitter(mode if mode in AMOUNT_FAULTS else None),
            mode=mode,
            request_id=request_id,
            complete_days_only=state.complete_days_only,
        )
        return wire.answer(request, account, ctx), account, mode


# --- control API ----------------------------------------------------------------------------------


def control(state: SimState, request: Request) -> Reply:
    route = (request.method, request.path.rstrip("/"))
    try:
        body = request.json() if request.body else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return _control(state, route, request, body)
    except (ValueError, TypeError, KeyError) as exc:
        return json_reply(400, {"error": str(exc)})


def _control(state: SimState, route: tuple[str, str], request: Request, body: dict[str, Any]) -> Reply:
    if route == ("GET", "/_sim/health"):
        return json_reply(200, {"ok": True})
    if route == ("GET", "/_sim/clock"):
        return json_reply(200, {"now": iso_z(state.now())})
    if route == ("POST", "/_sim/clock"):
        if "advance_minutes" in body:
            state.advance(dt.timedelta(minutes=float(body["advance_minutes"])))
        else:
            state.set_clock(body.get("now"))
        return json_reply(200, {"now": iso_z(state.now())})
    if route == ("GET", "/_sim/faults"):
        return json_reply(200, {"faults": state.faults.list()})
    if route == ("POST", "/_sim/faults"):
        state.add_fault(
            str(body.get("provider")),
            str(body.get("mode")),
            account=body.get("account"),
            count=body.get("count"),
            endpoint=body.get("endpoint"),
            seconds=body.get("seconds"),
        )
        return json_reply(200, {"faults": state.faults.list()})
    if route == ("DELETE", "/_sim/faults"):
        state.faults.clear()
        return json_reply(200, {"faults": []})
    if route == ("POST", "/_sim/latency"):
        state.set_latency(float(body.get("ms", 0)))
        return json_reply(200, {"ms": state.latency_s * 1000})
    if route == ("POST", "/_sim/lag"):
        state.set_lag(float(body.get("minutes", 0)), body.get("provider"))
        return json_reply(200, {"lag_minutes": {p: state.lag(p).total_seconds() / 60 for p in PROVIDERS}})
    if route == ("POST", "/_sim/options"):
        if "complete_days_only" in body:
            state.set_complete_days_only(bool(body["complete_days_only"]))
        return json_reply(200, {"complete_days_only": state.complete_days_only})
    if route == ("GET", "/_sim/requests"):
        provider = request.param("provider")
        items = [r for r in state.log.items() if provider is None or r["provider"] == provider]
        return json_reply(200, {"count": len(items), "requests": items})
    if route == ("DELETE", "/_sim/requests"):
        state.log.clear()
        return json_reply(200, {"count": 0, "requests": []})
    if route == ("POST", "/_sim/reset"):
        state.reset()
        return json_reply(200, {"ok": True})
    if route == ("GET", "/_sim/expected"):
        now = request.param("now")
        start = request.param("month_start")
        return json_reply(
            200,
            state.expected(
                parse_instant(now) if now else None,
                parse_instant(start) if start else None,
            ),
        )
    if route == ("GET", "/_sim/scenario"):
        return json_reply(200, state.describe())
    return json_reply(404, {"error": f"no control endpoint {route[0]} {route[1]}"})


# --- in-process API -------------------------------------------------------------------------------


ScenarioSource = Scenario | str | Path | Mapping[str, Any] | None


def load_scenario(source: ScenarioSource) -> Scenario:
    """A `Scenario` from itself, a JSON file path, a parsed document, or None (the bundled demo)."""
    if isinstance(source, Scenario):
        return source
    if source is None or isinstance(source, str | Path):
        return Scenario.load(source)
    return Scenario.from_dict(source)


class Simulator(Running):
    """The provider server, started in a background thread. Use as a context manager or call `stop()`."""

    def __init__(self, state: SimState, server: LocalServer) -> None:
        super().__init__(server)
        self._state = state

    @classmethod
    def start(
        cls,
        scenario: ScenarioSource = None,
        *,
        port: int = 0,
        clock: dt.datetime | str | None = None,
        latency_ms: float = 0,
        complete_days_only: bool | None = None,
    ) -> Simulator:
        """Serve `scenario` (default: the bundled demo) on 127.0.0.1:`port` (0 = a free port).

        `complete_days_only` (default: the scenario's) is the Anthropic mode a reset returns to.
        """
        state = SimState(
            load_scenario(scenario),
            None if clock is None else _as_instant(clock),
            latency_ms,
            complete_days_only=complete_days_only,
        )
        handler = type("BoundProviderHandler", (ProviderHandler,), {"state": state})
        server = LocalServer(port, handler)
        server.start()
        return cls(state, server)

    # --- where it listens (`url`: the base URL of all three providers, no /v1) ----------------------

    @property
    def scenario(self) -> Scenario:
        return self._state.scenario

    def env(self) -> dict[str, str]:
        """Base-URL environment variables pointing the production code at this simulator."""
        return {
            "OPENAI_BASE_URL": self.url,
            "ANTHROPIC_BASE_URL": self.url,
            "XAI_MANAGEMENT_BASE_URL": self.url,
            "OPENROUTER_BASE_URL": self.url + _openrouter.PREFIX,
        }

    # --- knobs ----------------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self._state.now()

    def set_clock(self, now: dt.datetime | str | None) -> None:
        """Freeze the clock at `now` (aware datetime or ISO string); None = follow the wall clock."""
        self._state.set_clock(now)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move the (frozen) clock forward by `delta`; returns the new instant."""
        return self._state.advance(delta)

    def add_fault(
        self,
        provider: str,
        mode: str,
        *,
        account: str | None = None,
        count: int | None = None,
        endpoint: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Arm a fault for `provider` (optionally one account label / a path substring), `count` times."""
        self._state.add_fault(provider, mode, account=account, count=count, endpoint=endpoint, seconds=seconds)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        return self._state.faults.list()

    def set_latency(self, ms: float) -> None:
        self._state.set_latency(ms)

    def set_lag(self, minutes: float, provider: str | None = None) -> None:
        """Hide hours that ended less than `minutes` before the clock (one provider or all)."""
        self._state.set_lag(minutes, provider)

    @property
    def complete_days_only(self) -> bool:
        """Whether Anthropic serves finished days only (see `set_complete_days_only`)."""
        return self._state.complete_days_only

    def set_complete_days_only(self, flag: bool) -> None:
        """Anthropic: return only finished days; a range with none answers the date-range 400."""
        self._state.set_complete_days_only(flag)

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The provider request log, oldest first (control API calls are not logged)."""
        return [r for r in self._state.log.items() if provider is None or r["provider"] == provider]

    def clear_requests(self) -> None:
        self._state.log.clear()

    def reset(self) -> None:
        """Clear faults, latency, the log, lag/options and the clock (back to the start values)."""
        self._state.reset()

    # --- expected sums --------------------------------------------------------------------------------

    def expected_mtd(
        self, key_or_account: str | Account, month_start: dt.datetime | None = None, now: dt.datetime | None = None
    ) -> Decimal:
        """Exact month-to-date USD a correct client sums for this key / `provider/label` / label (of the
        days the simulator serves: finished days only for Anthropic in complete-days mode)."""
        return sum(self.expected_daily(key_or_account, month_start, now).values(), Decimal(0))

    def expected_daily(
        self, key_or_account: str | Account, month_start: dt.datetime | None = None, now: dt.datetime | None = None
    ) -> dict[dt.date, Decimal]:
        """Exact USD per UTC day from `month_start` (default: 1st of the clock's month) to the clock."""
        account = self.scenario.find(key_or_account)
        now = now or self.now()
        lag = self._state.visible_lag(account.provider, now)
        return self.scenario.expected_daily(account, now=now, month_start=month_start, lag=lag)

    def expected_breakdown(
        self, key_or_account: str | Account, month_start: dt.datetime | None = None, now: dt.datetime | None = None
    ) -> dict[str, dict[str, Decimal]]:
        account = self.scenario.find(key_or_account)
        now = now or self.now()
        lag = self._state.visible_lag(account.provider, now)
        return self.scenario.expected_breakdown(account, now=now, month_start=month_start, lag=lag)

    def expected(self, now: dt.datetime | None = None, month_start: dt.datetime | None = None) -> dict[str, Any]:
        """The `GET /_sim/expected` document."""
        return self._state.expected(now, month_start)

    def _lags(self, now: dt.datetime) -> dict[str, dt.timedelta]:
        return {p: self._state.visible_lag(p, now) for p in PROVIDERS}

    def expected_team(
        self, name: str, gemini_rows: Iterable[Row] | None = None, now: dt.datetime | None = None
    ) -> Decimal:
        """`Scenario.expected_team` at the clock, with the lags and Anthropic mode the servers apply."""
        now = now or self.now()
        return self.scenario.expected_team(name, now=now, gemini_rows=gemini_rows, lags=self._lags(now))

    def expected_unassigned(self, gemini_rows: Iterable[Row] | None = None, now: dt.datetime | None = None) -> Decimal:
        """`Scenario.expected_unassigned` at the clock, as the servers answer."""
        now = now or self.now()
        return self.scenario.expected_unassigned(now=now, gemini_rows=gemini_rows, lags=self._lags(now))

    def expected_total(self, gemini_rows: Iterable[Row] | None = None, now: dt.datetime | None = None) -> Decimal:
        """`Scenario.expected_total` at the clock, as the servers answer."""
        now = now or self.now()
        return self.scenario.expected_total(now=now, gemini_rows=gemini_rows, lags=self._lags(now))
