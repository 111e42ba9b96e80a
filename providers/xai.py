"""xAI team billing: `POST /v1/billing/teams/{team}/usage` (management key), plus headroom context.

Month-to-date comes from the usage analytics endpoint, metric `usd`, which is in **dollars**
(floats), summed per UTC day (`timezone: Etc/GMT`) from the 1st 00:00:00 to now. It covers prepaid
and postpaid spend alike, which the invoice preview does not.

Headroom is context, not the number we alert on. Both context endpoints speak **cents as strings**,
bare (`"1413"`) or wrapped (`{"val": "1413"}`):

* limit: the invoice preview's `effectiveSpendingLimit` — the one limit field xAI documents
  officially ("effective current spending limit in USD cents"), read in the same snapshot as the
  amount used. `spendingLimits.effectiveSl` stands in when the preview lacks it or fails; a
  disagreement between the two is noted. `effectiveHardSl` is the ceiling the soft limit may be
  raised to, not the point where spending stops, so it is never the limit.
* used: `coreInvoice.totalWithCorr` (the invoice total after VAT and corrections, i.e. what the
  invoice will actually say) when present, else `amountAfterVat`; both are in the official field
  list. Whether prepaid credit is netted out of either is UNVERIFIED against a live team.
* a $0 limit is a prepaid-only team: no headroom (a note says so) rather than "−$X remaining".
* a preview whose `billingCycle` is not this month (the first minutes of a month) gives the limit
  but not the amount used.

A context failure never fails the account: the report carries a note saying why headroom is missing.
In the first second of a month the usage window is empty (startTime == endTime): that is $0 without a
usage call, since xAI need not accept an empty range.

`limitReached: true` means the analytics result was cut at its cardinality cap. The grouped query
(by `description`, for the per-model breakdown) is then repeated once ungrouped, which yields one
series, and the total and days come from that; the grouped lines stay as a breakdown marked
incomplete. Only when the ungrouped answer is cut too is the report partial.

The alerter only reads: `READ_CALLS` is every request this module can send. Nothing here can reach
`prepaid/top-up`, which charges the card, or any other mutating endpoint.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from config import XAIAccount
from errors import Cause, ProviderError
from models import UTC, BillingPeriod, BreakdownLine, CostReport, DailyCost, Freshness, Headroom
from providers import Deps, admin_key
from providers._aggregate import CostAccumulator, to_decimal
from providers._http import Deadline, request_json

USAGE = ("POST", "/v1/billing/teams/{team}/usage")
INVOICE_PREVIEW = ("GET", "/v1/billing/teams/{team}/postpaid/invoice/preview")
SPENDING_LIMITS = ("GET", "/v1/billing/teams/{team}/postpaid/spending-limits")
READ_CALLS: frozenset[tuple[str, str]] = frozenset({USAGE, INVOICE_PREVIEW, SPENDING_LIMITS})
"""Every (method, path template) this module may send. `_call` refuses anything else."""

TIMEZONE = "Etc/GMT"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
GROUP_BY = ("description",)
BREAKDOWN_DIMENSION = "model"
HUNDRED = 100
HEADROOM_SOURCE = "xAI effective spending limit"
TRUNCATED = "xAI analytics hit its result limit: the total is truncated"
FRESHNESS_NOTE = "xAI documents no data lag; taken as current to now, and today's bucket is still growing"


# --- the usage analytics endpoint (dollars) --------------------------------------------------


def usage_request(period: BillingPeriod, group_by: Sequence[str] = GROUP_BY) -> dict[str, Any]:
    """The `usage` body for `period`: the 1st 00:00:00 UTC to now, daily, metric `usd` summed."""
    return {
        "analyticsRequest": {
            "timeRange": {
                "startTime": period.start.astimezone(UTC).strftime(TIME_FORMAT),
                "endTime": period.now.astimezone(UTC).strftime(TIME_FORMAT),
                "timezone": TIMEZONE,
            },
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": list(group_by),
            "filters": [],
        }
    }


@dataclasses.dataclass(frozen=True)
class UsagePoint:
    """One value of one series: dollars spent on `day` (UTC) by `group` (None when ungrouped)."""

    day: dt.date
    usd: Decimal
    group: str | None


@dataclasses.dataclass(frozen=True)
class Usage:
    """A parsed `usage` answer."""

    points: tuple[UsagePoint, ...]
    limit_reached: bool


def _bad(message: str) -> ProviderError:
    return ProviderError(Cause.BAD_RESPONSE, message)


def _reject_envelope(doc: dict[str, Any], endpoint: str) -> None:
    """An error body that came back with HTTP 200 (xAI's error shape is undocumented: cover the usual ones)."""
    err = doc.get("error")
    if err is not None:
        msg = err.get("message", "") if isinstance(err, dict) else err
        raise _bad(f"{endpoint}: error envelope in a 200 answer: {str(msg)[:200]}")
    if "code" in doc and "message" in doc:  # google.rpc.Status, as gRPC gateways render it
        raise _bad(f"{endpoint}: error status in a 200 answer: {str(doc['message'])[:200]}")


def _day(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise _bad("usage: dataPoint timestamp is not an RFC 3339 string")
    try:
        instant = dt.datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise _bad(f"usage: dataPoint timestamp {value[:40]!r} has no UTC offset")
        return instant.astimezone(UTC).date()
    except (ValueError, OverflowError):
        raise _bad(f"usage: dataPoint timestamp {value[:40]!r} is not RFC 3339") from None


def _group_label(series: dict[str, Any]) -> str | None:
    """`groupLabels` (display names) when given, else the raw `group` values; None for an ungrouped series."""
    for key in ("groupLabels", "group"):
        parts = series.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise _bad(f"usage: series {key} is not a list of strings")
        if any(parts):
            return " / ".join(p for p in parts if p)
    return None


def _dollars(value: Any) -> Decimal:
    # `usd` values are documented as float dollars. A string here would be a drifted shape whose
    # unit (dollars? the cents of the invoice endpoints?) can no longer be trusted.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"usage: value is {type(value).__name__}, expected a number of dollars")
    return to_decimal(value, what="usage value")


def parse_usage(doc: dict[str, Any]) -> Usage:
    """Parse one `usage` answer. An error envelope or a drifted shape raises; `timeSeries: []` is $0."""
    _reject_envelope(doc, "usage")
    series_list = doc.get("timeSeries")
    if not isinstance(series_list, list):
        raise _bad("usage: expected a timeSeries list")
    # proto3 JSON leaves out false booleans, so an absent flag means "not cut"; a present one must be a bool.
    limit_reached = doc.get("limitReached", False)
    if not isinstance(limit_reached, bool):
        raise _bad("usage: limitReached is not a boolean")
    points: list[UsagePoint] = []
    for series in series_list:
        if not isinstance(series, dict) or not isinstance(series.get("dataPoints"), list):
            raise _bad("usage: series without a dataPoints list")
        group = _group_label(series)
        for point in series["dataPoints"]:
            if not isinstance(point, dict) or not isinstance(point.get("values"), list):
                raise _bad("usage: dataPoint without a values list")
            day = _day(point.get("timestamp"))
            for value in point["values"]:
                points.append(UsagePoint(day, _dollars(value), group))
    return Usage(tuple(points), limit_reached)


@dataclasses.dataclass(frozen=True)
class MonthToDate:
    """The money part of a report, from one or two `usage` answers."""

    total: Decimal
    daily: tuple[DailyCost, ...]
    breakdown: tuple[BreakdownLine, ...]
    partial_reason: str | None
    notes: tuple[str, ...]


def month_to_date(period: BillingPeriod, grouped: Usage, ungrouped: Usage | None = None) -> MonthToDate:
    """Combine the grouped answer and, when that one was cut, the ungrouped one into a month-to-date.

    Total and days come from `ungrouped` when given (the grouped lines are then breakdown only).
    The result is partial only if the answer the total comes from was cut.
    """
    lines = CostAccumulator(period)
    for p in grouped.points:
        lines.add(p.day, p.usd, {BREAKDOWN_DIMENSION: p.group})
    if ungrouped is None:
        days, source = lines, grouped
        notes: list[str] = []
    else:
        days, source = CostAccumulator(period), ungrouped
        for p in ungrouped.points:
            days.add(p.day, p.usd)
        notes = []
        if grouped.limit_reached:
            notes.append(
                "xAI analytics hit its result limit for the per-model breakdown: the total comes "
                "from an ungrouped query and the breakdown is incomplete"
            )
    return MonthToDate(
        total=days.total(),
        daily=days.daily(),
        breakdown=lines.breakdown(),
        partial_reason=TRUNCATED if source.limit_reached else None,
        notes=(*notes, *days.anomaly_notes()),
    )


# --- the context endpoints (cents as strings) ------------------------------------------------


def cents_to_usd(value: Any, *, what: str) -> Decimal:
    """USD from an xAI cents value: a decimal string, bare or wrapped as `{"val": "…"}`. Nothing else."""
    if isinstance(value, dict):
        if set(value) != {"val"}:
            raise _bad(f"{what}: expected {{'val': '<cents>'}}, got keys {sorted(value)[:5]}")
        value = value["val"]
    if not isinstance(value, str):
        raise _bad(f"{what}: expected cents as a string, got {type(value).__name__}")
    return to_decimal(value, what=what) / HUNDRED


@dataclasses.dataclass(frozen=True)
class InvoicePreview:
    used_usd: Decimal
    used_field: str  # "totalWithCorr" or "amountAfterVat"
    limit_usd: Decimal | None  # effectiveSpendingLimit
    cycle: tuple[int, int] | None  # (year, month) of billingCycle


def parse_invoice_preview(doc: dict[str, Any]) -> InvoicePreview:
    """Parse `postpaid/invoice/preview`: the postpaid amount so far and the effective limit, in USD."""
    _reject_envelope(doc, "invoice preview")
    core = doc.get("coreInvoice")
    if not isinstance(core, dict):
        raise _bad("invoice preview: expected a coreInvoice object")
    field = "totalWithCorr" if "totalWithCorr" in core else "amountAfterVat"
    if field not in core:
        raise _bad("invoice preview: coreInvoice has neither totalWithCorr nor amountAfterVat")
    used = cents_to_usd(core[field], what=f"coreInvoice.{field}")
    raw_limit = doc.get("effectiveSpendingLimit")
    limit = None if raw_limit is None else cents_to_usd(raw_limit, what="effectiveSpendingLimit")
    return InvoicePreview(used, field, limit, _cycle(doc.get("billingCycle")))


def _cycle(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("invoice preview: billingCycle is not an object")
    year, month = value.get("year"), value.get("month")
    if isinstance(year, int) and isinstance(month, int) and not isinstance(year, bool) and not isinstance(month, bool):
        return year, month
    raise _bad("invoice preview: billingCycle year/month are not integers")


@dataclasses.dataclass(frozen=True)
class SpendingLimits:
    effective_usd: Decimal | None  # effectiveSl; the other fields (soft, hard, overrides) are not read


def parse_spending_limits(doc: dict[str, Any]) -> SpendingLimits:
    """Parse `postpaid/spending-limits`: the effective limit in USD (None when absent)."""
    _reject_envelope(doc, "spending limits")
    limits = doc.get("spendingLimits")
    if not isinstance(limits, dict):
        raise _bad("spending limits: expected a spendingLimits object")
    raw = limits.get("effectiveSl")
    return SpendingLimits(None if raw is None else cents_to_usd(raw, what="spendingLimits.effectiveSl"))


def headroom(
    period: BillingPeriod, preview: InvoicePreview | None, limits: SpendingLimits | None
) -> tuple[Headroom | None, tuple[str, ...]]:
    """Headroom from whatever context arrived, and notes on what is missing or inconsistent."""
    notes: list[str] = []
    limit = preview.limit_usd if preview is not None else None
    fallback = limits.effective_usd if limits is not None else None
    if limit is not None and fallback is not None and limit != fallback:
        notes.append(
            f"xAI spending limits disagree: invoice preview ${limit:,.2f}, "
            f"spending-limits ${fallback:,.2f}; using the invoice preview's"
        )
    if limit is None:
        limit = fallback
    if limit is None:
        if preview is not None or limits is not None:
            notes.append("xAI reported no effective spending limit: headroom unknown")
        return None, tuple(notes)
    if limit <= 0:
        # A $0 postpaid limit is a prepaid-only team: "−$X remaining" would be a false alarm.
        notes.append("xAI postpaid spending limit is $0 (prepaid only?): no postpaid headroom")
        return None, tuple(notes)
    used = preview.used_usd if preview is not None else None
    if preview is not None and preview.cycle is not None and preview.cycle != (period.year, period.month):
        year, month = preview.cycle
        notes.append(f"xAI invoice preview is for {year:04d}-{month:02d}, not {period.key}: amount used unknown")
        used = None
    remaining = None if used is None else limit - used
    return Headroom(limit_usd=limit, used_usd=used, remaining_usd=remaining, source=HEADROOM_SOURCE), tuple(notes)


# --- fetch -----------------------------------------------------------------------------------


def _empty_window(period: BillingPeriod) -> bool:
    """True in the first second of the month, when startTime == endTime (an empty range xAI need not accept)."""
    return period.now.replace(microsecond=0) <= period.start


def _call(
    client: httpx.Client,
    call: tuple[str, str],
    team_id: str,
    *,
    deadline: Deadline,
    counter: list[int],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one of `READ_CALLS` for `team_id`; anything else is refused before it leaves the process."""
    if call not in READ_CALLS:
        raise ValueError(f"{call[0]} {call[1]} is not a read call the alerter may make")
    method, template = call
    path = template.format(team=quote(team_id, safe=""))
    return request_json(client, method, path, json_body=body, deadline=deadline, counter=counter)


@dataclasses.dataclass
class XAIBilling:
    account: XAIAccount
    deps: Deps
    provider: str = "xai"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, "xai", self.account, "xAI management key", deadline)
        team = self.account.team_id
        counters = {"usage": [0], "preview": [0], "limits": [0]}
        with (
            self.deps.http_factory(self.deps.base_urls["xai"], headers={"Authorization": f"Bearer {key}"}) as client,
            concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="xai-context") as pool,
        ):
            # The context calls do not depend on the usage answer: send them alongside it, so the
            # account costs one round trip, not three.
            preview = pool.submit(_call, client, INVOICE_PREVIEW, team, deadline=deadline, counter=counters["preview"])
            limits = pool.submit(_call, client, SPENDING_LIMITS, team, deadline=deadline, counter=counters["limits"])

            def usage(group_by: Sequence[str]) -> Usage:
                if _empty_window(period):
                    return Usage((), limit_reached=False)  # nothing can have been spent yet
                body = usage_request(period, group_by)
                return parse_usage(_call(client, USAGE, team, body=body, deadline=deadline, counter=counters["usage"]))

            grouped = usage(GROUP_BY)
            mtd = month_to_date(period, grouped, usage(()) if grouped.limit_reached else None)
            room, context_notes = _context(period, preview, limits)
        return CostReport(
            period=period,
            mtd_usd=mtd.total,
            daily=mtd.daily,
            breakdown=mtd.breakdown,
            freshness=Freshness(period.now, FRESHNESS_NOTE),
            partial_reason=mtd.partial_reason,
            headroom=room,
            notes=(*mtd.notes, *context_notes),
            requests=sum(c[0] for c in counters.values()),
        )


def _context(
    period: BillingPeriod,
    preview_call: concurrent.futures.Future[dict[str, Any]],
    limits_call: concurrent.futures.Future[dict[str, Any]],
) -> tuple[Headroom | None, tuple[str, ...]]:
    """Headroom from the two context endpoints. Their failures become notes, never a failed account."""
    notes: list[str] = []
    preview: InvoicePreview | None = None
    limits: SpendingLimits | None = None
    try:
        preview = parse_invoice_preview(preview_call.result())
    except ProviderError as exc:
        notes.append(f"spending-limit context unavailable: invoice preview: {exc.cause.describe}")
    try:
        limits = parse_spending_limits(limits_call.result())
    except ProviderError as exc:
        notes.append(f"spending-limit context unavailable: spending limits: {exc.cause.describe}")
    room, more = headroom(period, preview, limits)
    return room, (*notes, *more)


def from_config(account: Any, deps: Deps) -> XAIBilling:
    assert isinstance(account, XAIAccount)
    return XAIBilling(account, deps)
