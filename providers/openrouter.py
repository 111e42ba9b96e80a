"""OpenRouter spend from its own charges: `/activity` per day and model, `/keys` for today, `/credits`.

Every shape below is from OpenRouter's official OpenAPI document (`OpenRouterTeam/docs`,
`openapi/openapi.yaml`, commit c26125a, 2026-08-22) and its management-key guide
(`guides/overview/auth/management-api-keys.mdx`). Base URL `https://openrouter.ai/api/v1`, header
`Authorization: Bearer <management key>`: all three endpoints say "[Management key] required", and an
inference key gets 403 "Only management keys can perform this operation". Money is USD as a JSON
number (`format: double`), read through `str()` into `Decimal`.

    GET /activity   "user activity data grouped by endpoint for the last 30 (completed) UTC days";
                    rows {date, model, usage ("Total cost in USD (OpenRouter credits spent)"),
                    byok_usage_inference ("BYOK inference cost in USD (external credits spent)"), …};
                    no pagination. Several rows per (date, model), one per endpoint: summed.
    GET /keys       per key `usage_monthly` ("OpenRouter credit usage (in USD) for the current UTC
                    month") and `byok_usage_monthly`; "List the most recent 100 API keys … paginate
                    using the offset parameter"; `include_disabled=true` (a key disabled mid-month
                    still spent); "By default, keys in the default workspace are returned".
    GET /credits    {data: {total_credits ("Total credits purchased"), total_usage ("Total credits used")}}.
    GET /workspaces {data: [{id, …}], total_count}; `offset` and `limit` ("max 100"): the workspaces
                    whose keys `/keys` is asked for, since it lists the default workspace's only.

Month to date, and what is known when:

* Completed UTC days come from `/activity`, per model. **Today is never in `/activity`** (and OpenRouter
  suggests waiting ~30 minutes after the UTC boundary for the previous day).
* Today is the key counters' month (Σ `usage_monthly`, every listed key, disabled included) minus the
  completed days: one bucket, not split by model. When the key counters are *below* the activity sum
  (a deleted key's spend leaves `/keys`), today is reported missing, not guessed, and the total is the
  activity sum with a note.
* BYOK spend (`byok_usage_inference`) was billed by the user's own provider key, not by OpenRouter:
  shown in a note, never added (it would double-count, e.g., the OpenAI source).
* Headroom: remaining prepaid credits, `total_credits − total_usage` (all time, not monthly; it can go
  negative, then inference answers 402). A failed `/credits` is a note, never a failed account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import httpx
from pydantic import Field

from errors import Cause, ProviderError
from models import UTC, ZERO, BillingPeriod, BreakdownLine, CostReport, DailyCost, Deadline, Freshness, Headroom, usd
from providers._aggregate import CostAccumulator, to_decimal
from providers._http import count_requests, request_json
from providers._spec import Deps, KeyedAccount, ProviderSpec, admin_key

__all__ = [
    "READ_CALLS",
    "SPEC",
    "ActivityRow",
    "KeyUsage",
    "OpenRouterAccount",
    "OpenRouterCosts",
    "all_keys",
    "all_workspaces",
    "fetch_month",
    "month_report",
    "parse_activity",
    "parse_credits",
    "parse_keys",
    "parse_workspaces",
]

BASE_URL = "https://openrouter.ai/api/v1"
ACTIVITY = ("GET", "/activity")
KEYS = ("GET", "/keys")
CREDITS = ("GET", "/credits")
WORKSPACES = ("GET", "/workspaces")
READ_CALLS: frozenset[tuple[str, str]] = frozenset({ACTIVITY, KEYS, CREDITS, WORKSPACES})
"""Every (method, path) this module sends. All GETs: nothing here can create, change or delete a key."""

KEYS_PAGE_SIZE = 100  # "List the most recent 100 API keys"
MAX_KEY_PAGES = 50
HEADROOM_SOURCE = "OpenRouter prepaid credits"
TODAY_LINE = "(today, not split by model yet)"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _bad(message: str) -> ProviderError:
    return ProviderError(Cause.BAD_RESPONSE, f"OpenRouter: {message}")


def _usd(value: Any, what: str) -> Decimal:
    """A documented `number` (double): a string, boolean or null is a drifted shape."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} is not a number")
    return to_decimal(value, what=f"OpenRouter {what}")


def _data(doc: dict[str, Any], kind: type, what: str) -> Any:
    """`doc["data"]`, after refusing an error envelope that came with a 200."""
    if "error" in doc:
        err = doc["error"]
        code = err.get("code") if isinstance(err, dict) else None
        raise _bad(f"{what}: error envelope in a 200 answer (code {str(code)[:10]})")
    data = doc.get("data")
    if not isinstance(data, kind):
        raise _bad(f"{what}: no data {'list' if kind is list else 'object'}")
    return data


# --- /activity ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ActivityRow:
    day: dt.date
    model: str
    usd: Decimal  # OpenRouter credits spent
    byok_usd: Decimal  # billed by the user's own provider key: never added


def parse_activity(doc: dict[str, Any]) -> tuple[ActivityRow, ...]:
    """Rows of `GET /activity`, strictly: every required money and identity field, valid dates."""
    rows = []
    for i, item in enumerate(_data(doc, list, "activity")):
        where = f"activity data[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} is not an object")
        date, model = item.get("date"), item.get("model")
        if not isinstance(date, str) or not _DATE_RE.match(date):
            raise _bad(f"{where}.date is not YYYY-MM-DD")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise _bad(f"{where}.date {date!r} is not a date") from None
        if not isinstance(model, str) or not model:
            raise _bad(f"{where}.model is missing")
        rows.append(
            ActivityRow(day, model, _usd(item.get("usage"), f"{where}.usage"),
                        _usd(item.get("byok_usage_inference"), f"{where}.byok_usage_inference"))
        )  # fmt: skip
    return tuple(rows)


# --- /keys -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KeyUsage:
    hash: str
    disabled: bool
    workspace_id: str | None
    usage_monthly: Decimal
    byok_usage_monthly: Decimal


def keys_params(offset: int, workspace_id: str | None = None) -> list[tuple[str, str]]:
    """Query of one `/keys` page: disabled keys included (they spent this month too)."""
    params = [("include_disabled", "true"), ("offset", str(offset))]
    if workspace_id is not None:
        params.append(("workspace_id", workspace_id))
    return params


def parse_keys(doc: dict[str, Any]) -> tuple[KeyUsage, ...]:
    """One `/keys` page. Only the fields this module reads are required here; each must be well typed."""
    out = []
    for i, item in enumerate(_data(doc, list, "keys")):
        where = f"keys data[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} is not an object")
        key_hash, disabled, workspace = item.get("hash"), item.get("disabled"), item.get("workspace_id")
        if not isinstance(key_hash, str) or not key_hash:
            raise _bad(f"{where}.hash is missing")
        if not isinstance(disabled, bool):
            raise _bad(f"{where}.disabled is not a boolean")
        if workspace is not None and not isinstance(workspace, str):
            raise _bad(f"{where}.workspace_id is not a string")
        out.append(
            KeyUsage(key_hash, disabled, workspace, _usd(item.get("usage_monthly"), f"{where}.usage_monthly"),
                     _usd(item.get("byok_usage_monthly"), f"{where}.byok_usage_monthly"))
        )  # fmt: skip
    return tuple(out)


def all_keys(fetch_page: Callable[[int], dict[str, Any]]) -> tuple[KeyUsage, ...]:
    """Every key, page by page (`offset` += page length while a page is full). A key hash seen twice is
    a pagination loop; more than `MAX_KEY_PAGES` pages is refused."""
    seen: dict[str, KeyUsage] = {}
    offset = 0
    for _ in range(MAX_KEY_PAGES):
        page = parse_keys(fetch_page(offset))
        for key in page:
            if key.hash in seen:
                raise _bad(f"keys pagination loop: key {key.hash[:8]}… came back at offset {offset}")
            seen[key.hash] = key
        if len(page) < KEYS_PAGE_SIZE:
            return tuple(seen.values())
        offset += len(page)
    raise _bad(f"more than {MAX_KEY_PAGES} pages of keys: stopped")


# --- /workspaces -------------------------------------------------------------------------------

WORKSPACES_PAGE_SIZE = 100  # "Maximum number of records to return (max 100)"


def parse_workspaces(doc: dict[str, Any]) -> tuple[tuple[str, ...], int]:
    """Workspace ids of one `/workspaces` page, and the listing's `total_count`."""
    ids = []
    for i, item in enumerate(_data(doc, list, "workspaces")):
        wid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(wid, str) or not wid:
            raise _bad(f"workspaces data[{i}].id is missing")
        ids.append(wid)
    total = doc.get("total_count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise _bad("workspaces total_count is not a count")
    return tuple(ids), total


def all_workspaces(fetch_page: Callable[[int], dict[str, Any]]) -> tuple[str, ...]:
    """Every workspace id (`offset` += page length until `total_count`); a repeated id is a loop."""
    seen: list[str] = []
    offset = 0
    for _ in range(MAX_KEY_PAGES):
        ids, total = parse_workspaces(fetch_page(offset))
        if set(ids) & set(seen):
            raise _bad(f"workspaces pagination loop at offset {offset}")
        seen.extend(ids)
        if not ids or len(seen) >= total:
            return tuple(seen)
        offset += len(ids)
    raise _bad(f"more than {MAX_KEY_PAGES} pages of workspaces: stopped")


# --- /credits ----------------------------------------------------------------------------------


def parse_credits(doc: dict[str, Any]) -> Headroom:
    """Remaining prepaid credits (all time): `total_credits − total_usage`, negative when overdrawn."""
    data = _data(doc, dict, "credits")
    total = _usd(data.get("total_credits"), "credits total_credits")
    used = _usd(data.get("total_usage"), "credits total_usage")
    return Headroom(limit_usd=total, used_usd=used, remaining_usd=total - used, source=HEADROOM_SOURCE)


# --- the month ---------------------------------------------------------------------------------


def _completed_days(
    period: BillingPeriod, rows: Iterable[ActivityRow]
) -> tuple[CostAccumulator, Decimal, set[dt.date]]:
    """The month's completed UTC days per model, their BYOK spend, and the days served too early (today on)."""
    acc = CostAccumulator(period)
    byok = ZERO
    early: set[dt.date] = set()
    for row in rows:
        if row.day >= period.today:
            early.add(row.day)
            continue
        if row.day < period.first_day:
            continue
        acc.add(row.day, row.usd, {"model": row.model})
        byok += row.byok_usd
    return acc, byok, early


def _breakdown(acc: CostAccumulator, today_usd: Decimal) -> list[BreakdownLine]:
    """Per model from the completed days, today's counters as one line of their own."""
    breakdown = list(acc.breakdown())
    if today_usd:
        breakdown.append(BreakdownLine("model", TODAY_LINE, today_usd))
    return sorted(breakdown, key=lambda b: (b.dimension, -b.amount, b.key))


def month_report(
    period: BillingPeriod,
    rows: Iterable[ActivityRow],
    keys: Sequence[KeyUsage] | None,
    *,
    headroom: Headroom | None = None,
    notes: Sequence[str] = (),
    requests: int = 0,
) -> CostReport:
    """Month to date: completed days (per model) from `rows`, today from the key counters when given.

    `keys=None` means the counters were not read: today is then missing (not $0). Rows dated today or
    later cannot be complete days and are left out with a note; rows of another month are ignored.
    """
    if period.tz_name != "UTC":
        raise ValueError("OpenRouter days are UTC days: pass a UTC billing period")
    today = period.today
    acc, byok, early = _completed_days(period, rows)
    completed = acc.total()
    out_notes = [*notes, *acc.anomaly_notes()]
    if early:
        out_notes.append(f"OpenRouter activity had rows for {min(early)} (not a completed day): left out")
    through = today - dt.timedelta(days=1)
    missing: dt.date | None = today
    as_of: dt.datetime | None = dt.datetime.combine(today, dt.time(), UTC) if today > period.first_day else None
    today_usd = ZERO
    if keys is not None:
        counters = sum((k.usage_monthly for k in keys), ZERO)
        byok = sum((k.byok_usage_monthly for k in keys), ZERO)  # the counters include today
        if counters >= completed:
            today_usd, missing, as_of = counters - completed, None, period.now
        else:
            out_notes.append(
                f"OpenRouter key counters ({usd(counters)}) are below the completed days ({usd(completed)}), "
                "(a deleted key, or a key in a workspace not listed): today is not reported"
            )
    if byok:
        out_notes.append(f"BYOK spend billed by your own provider keys, not added: {usd(byok)} this month")
    daily = [d for d in acc.daily() if d.day < today] + ([DailyCost(today, today_usd)] if missing is None else [])
    breakdown = _breakdown(acc, today_usd)
    when = f"completed UTC days through {through:%b %d}" if today > period.first_day else "no completed UTC day yet"
    note = f"per-model spend from /activity: {when}; " + (
        "today from the key counters" if missing is None else "today not reported yet"
    )
    return CostReport(
        period=period,
        mtd_usd=completed + today_usd,
        daily=tuple(daily),
        breakdown=tuple(breakdown),
        freshness=Freshness(as_of=as_of, note=note, missing_from=missing),
        headroom=headroom,
        notes=tuple(out_notes),
        requests=requests,
    )


# --- fetch -------------------------------------------------------------------------------------


def _call(client: httpx.Client, call: tuple[str, str], *, deadline: Deadline, params: Any = None) -> dict[str, Any]:
    if call not in READ_CALLS:
        raise AssertionError(f"{call} is not a read call")  # pragma: no cover - a programming error
    try:
        return request_json(client, call[0], call[1], params=params, deadline=deadline)
    except ProviderError as exc:
        if exc.cause is Cause.PERMISSION:
            raise ProviderError(
                Cause.PERMISSION, f"{exc.message}: OpenRouter needs a management key for {call[1]}", status=exc.status
            ) from None
        raise


def fetch_month(
    client: httpx.Client,
    period: BillingPeriod,
    *,
    deadline: Deadline,
    workspace_ids: Sequence[str | None] | None = None,
) -> CostReport:
    """`/activity`, `/workspaces` and `/keys` must succeed; `/credits` may fail (a note).

    `workspace_ids=None` lists every workspace (None in the list = the default one); an account that
    lists none is asked for its default workspace's keys.
    """
    counter = count_requests(client)
    rows = parse_activity(_call(client, ACTIVITY, deadline=deadline))
    if workspace_ids is None:

        def ws_page(offset: int) -> dict[str, Any]:
            params = [("offset", str(offset)), ("limit", str(WORKSPACES_PAGE_SIZE))]
            return _call(client, WORKSPACES, deadline=deadline, params=params)

        workspace_ids = all_workspaces(ws_page) or (None,)
    keys: list[KeyUsage] = []
    for workspace in workspace_ids:

        def page(offset: int, workspace: str | None = workspace) -> dict[str, Any]:
            return _call(client, KEYS, deadline=deadline, params=keys_params(offset, workspace))

        keys.extend(all_keys(page))
    notes = []
    headroom = None
    try:
        headroom = parse_credits(_call(client, CREDITS, deadline=deadline))
    except ProviderError as exc:
        notes.append(f"OpenRouter credits unavailable ({exc.cause.describe}): no headroom shown")
    per_key: dict[str, KeyUsage] = {k.hash: k for k in keys}  # a key listed under two workspaces counts once
    return month_report(period, rows, list(per_key.values()), headroom=headroom, notes=notes, requests=counter.value)


# --- the source --------------------------------------------------------------------------------

KEY_ENV = "OPENROUTER_MANAGEMENT_KEY"


class OpenRouterAccount(KeyedAccount):
    """One OpenRouter account, read with a management key (`key_secret` / `key_env`).

    `workspace_ids`: the workspaces whose keys count toward today; unset, every workspace listed by
    `/workspaces` (None would be the default workspace only).
    """

    workspace_ids: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=100)


@dataclasses.dataclass
class OpenRouterCosts:
    account: OpenRouterAccount
    deps: Deps
    provider: str = "openrouter"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, KEY_ENV, self.account, "OpenRouter management key", deadline)
        headers = {"Authorization": f"Bearer {key}"}
        with self.deps.http_factory(self.deps.base_urls[SPEC.name], headers=headers) as client:
            return fetch_month(client, period, deadline=deadline, workspace_ids=self.account.workspace_ids)


def from_config(account: Any, deps: Deps) -> OpenRouterCosts:
    assert isinstance(account, OpenRouterAccount)
    return OpenRouterCosts(account, deps)


SPEC = ProviderSpec(
    name="openrouter",
    title="OpenRouter",
    console_url="https://openrouter.ai/activity",
    account_schema=OpenRouterAccount,
    build=from_config,
    key_env=KEY_ENV,
    base_url_env="OPENROUTER_BASE_URL",
    default_base_url=BASE_URL,
    # A past month's last day would be "today" from the key counters, which are the *current* month's
    # (`usage_monthly`, module docstring): the weekly report says that month's days are unknown instead.
    past_months=False,
)
