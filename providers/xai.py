"""xAI team billing: `POST /v1/billing/teams/{team}/usage` (management key), plus headroom context.

Month-to-date is the usage analytics endpoint, metric `usd` in **dollars**, summed per UTC day from
the 1st to now; it covers prepaid and postpaid spend alike. Headroom comes from the invoice preview
and the spending limits (**cents**); it is context, and its failure is a note, never a failed account.
Every answer is proto3 JSON of xAI's own protobufs (`xai-org/xai-proto`): omitted fields are read
as the proto defines them, drifted shapes raise BAD_RESPONSE.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field

from errors import Cause, ProviderError
from models import UTC, BillingPeriod, BreakdownLine, CostReport, DailyCost, Deadline, Freshness, Headroom
from providers._aggregate import CostAccumulator, reject_error_envelope, to_decimal
from providers._http import count_requests, request_json
from providers._spec import Deps, KeyedAccount, ProbeResult, ProviderSpec, admin_key

__all__ = [
    "FRESHNESS_NOTE",
    "INVOICE_PREVIEW",
    "READ_CALLS",
    "SPEC",
    "SPENDING_LIMITS",
    "USAGE",
    "XAIAccount",
    "XAIBilling",
    "from_config",
    "headroom",
    "month_to_date",
    "parse_invoice_preview",
    "parse_spending_limits",
    "parse_usage",
    "probe",
    "usage_request",
]

KEY_ENV = "XAI_MANAGEMENT_KEY"


class XAIAccount(KeyedAccount):
    """An xAI team, read with a management key."""

    team_id: str = Field(min_length=1, description="xAI Console → Settings → Team ID")


USAGE = ("POST", "/v1/billing/teams/{team}/usage")
INVOICE_PREVIEW = ("GET", "/v1/billing/teams/{team}/postpaid/invoice/preview")
SPENDING_LIMITS = ("GET", "/v1/billing/teams/{team}/postpaid/spending-limits")
READ_CALLS: frozenset[tuple[str, str]] = frozenset({USAGE, INVOICE_PREVIEW, SPENDING_LIMITS})
"""Every (method, path template) this module may send. `_call` refuses anything else, so nothing here
can reach `prepaid/top-up` (which charges the card) or any other mutating endpoint."""

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


# --- proto3 JSON -----------------------------------------------------------------------------
# The messages are in xai-org/xai-proto: `proto/xai/management_api/v1/billing.proto` (GetAmountToPayResp,
# CoreInvoice, BillingCycle, GetSpendingLimitsResp, SpendingLimits), `proto/xai/shared/billing/types.proto`
# (Cent) and `proto/xai/shared/analytics/analytics.proto` (AnalyticsResponse, TimeSeries, DataPoint);
# tests/fixtures/xai/billing_subset.proto is the part read here.
#
# The proto3 JSON mapping (https://protobuf.dev/programming-guides/json/): a field that holds its
# default is omitted unless the printer is asked to emit it; a missing value parses as the default;
# parsers accept the lowerCamelCase name and the proto field name. Printers that emit defaults (Go
# protojson EmitUnpopulated / EmitDefaultValues, Python always_print_fields_with_no_presence, C++
# always_print_primitive_fields) write false, 0, "0" and [] alike, and EmitUnpopulated writes an unset
# message as null. So here: an absent scalar is its zero, an absent list is empty, an absent or null
# message is unset (no presence is invented: an unset invoice is "unknown", not $0). The mapping also
# lets parsers take null for a list and strings for doubles; no printer writes those, so they stay drift.

_ABSENT: Any = object()


def _proto_name(json_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in json_name)


def _field(doc: dict[str, Any], json_name: str, where: str) -> Any:
    """The field's value under its JSON or its proto name (both at once is drift), or `_ABSENT`."""
    proto_name = _proto_name(json_name)
    if proto_name != json_name and proto_name in doc:
        if json_name in doc:
            raise _bad(f"{where}: both {json_name} and {proto_name}")
        return doc[proto_name]
    return doc.get(json_name, _ABSENT)


def _is_default(value: Any) -> bool:
    """A value a default-printing serializer writes for an unpopulated field without presence."""
    return value is False or value == "" or value == "0" or value == [] or (type(value) in (int, float) and value == 0)


def _known(key: str, fields: Sequence[str]) -> bool:
    return key in fields or any(key == _proto_name(f) for f in fields)


def _require_printed(doc: dict[str, Any], json_name: str, where: str, fields: Sequence[str]) -> None:
    """An absent field without presence is fine, unless its message was printed with its defaults.

    `fields` are the message's JSON names. A printer that writes one default (`limitReached: false`,
    `vatCost: "0"`) writes every default, lists included, so the absent field was removed, not zero.
    """
    if any(_is_default(v) for k, v in doc.items() if _known(k, fields)):
        raise _bad(f"{where}: {json_name} missing from an answer printed with its defaults")


def _repeated(
    doc: dict[str, Any], json_name: str, where: str, *, fields: Sequence[str], money: bool = False
) -> list[Any]:
    """A repeated field: absent is empty (see `_require_printed`). For a list that carries money, an
    absent list beside an unknown field could be a renamed one: drift as well."""
    value = _field(doc, json_name, where)
    if value is _ABSENT:
        _require_printed(doc, json_name, where, fields)
        unknown = sorted(k for k in doc if not _known(k, fields))
        if money and unknown:
            raise _bad(f"{where}: no {json_name}, but unknown fields {unknown[:5]}")
        return []
    if not isinstance(value, list):
        raise _bad(f"{where}: {json_name} is not a list")
    return value


def _set(doc: dict[str, Any], json_name: str, where: str) -> Any:
    """A message field's value, or None when unset (absent, or `null` as Go's EmitUnpopulated prints it)."""
    value = _field(doc, json_name, where)
    return None if value is _ABSENT else value


def _message(doc: dict[str, Any], json_name: str, where: str) -> dict[str, Any] | None:
    value = _set(doc, json_name, where)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{where}: {json_name} is not an object")
    return value


INT64_RANGE = range(-(2**63), 2**63)


def _integer(value: Any, *, what: str, bits: int = 64) -> int:
    """A proto3 JSON integer: a JSON number without a fraction, or a decimal string (the mapping accepts
    both for int32 and int64; printers write int64 as a string). Fractions and exponent strings are drift.
    """
    if isinstance(value, bool):
        raise _bad(f"{what}: expected an integer, got bool")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.removeprefix("-").isdecimal() and value.isascii():
        value = int(value)
    if not isinstance(value, int):
        raise _bad(f"{what}: expected an integer, got {type(value).__name__} {str(value)[:40]!r}")
    if value not in (INT64_RANGE if bits == 64 else range(-(2**31), 2**31)):
        raise _bad(f"{what}: {value} is out of int{bits} range")
    return value


# --- the usage analytics endpoint (dollars) --------------------------------------------------
# AnalyticsResponse {repeated TimeSeries time_series = 1; bool limit_reached = 2;}
# TimeSeries {repeated string group = 1; repeated string group_labels = 3; repeated DataPoint data_points = 2;}
# DataPoint {google.protobuf.Timestamp timestamp = 1; repeated double values = 2;}
RESPONSE_FIELDS = ("timeSeries", "limitReached")
SERIES_FIELDS = ("group", "groupLabels", "dataPoints")
POINT_FIELDS = ("timestamp", "values")


# google.protobuf.Timestamp in JSON: RFC 3339, "Z" or an offset, 0 to 9 fractional digits
# (google/protobuf/timestamp.proto). `fromisoformat` alone would also take dates and basic formats.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", re.ASCII)


def _day(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise _bad("usage: dataPoint timestamp is not an RFC 3339 string")
    if not RFC3339.fullmatch(value):
        raise _bad(f"usage: dataPoint timestamp {value[:40]!r} is not RFC 3339 with an offset")
    try:
        return dt.datetime.fromisoformat(value).astimezone(UTC).date()
    except (ValueError, OverflowError):
        raise _bad(f"usage: dataPoint timestamp {value[:40]!r} is not RFC 3339") from None


def _group_label(series: dict[str, Any]) -> str | None:
    """`groupLabels` (display names) when given, else the raw `group` values; None for an ungrouped series."""
    labels, group = (_repeated(series, key, "usage series", fields=SERIES_FIELDS) for key in ("groupLabels", "group"))
    for key, parts in (("groupLabels", labels), ("group", group)):
        if not all(isinstance(p, str) for p in parts):
            raise _bad(f"usage: series {key} is not a list of strings")
    for parts in (labels, group):
        if any(parts):
            return " / ".join(p for p in parts if p)
    return None


def _dollars(value: Any) -> Decimal:
    # `repeated double values`: printers write a finite double as a JSON number ("NaN"/"Infinity" as
    # strings). The mapping lets parsers take "1.5" too, but a string here would be a changed serializer
    # whose unit (dollars? the cents of the invoice endpoints?) can no longer be trusted.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"usage: value is {type(value).__name__}, expected a number of dollars")
    return to_decimal(value, what="usage value")


def parse_usage(doc: dict[str, Any]) -> Usage:
    """Parse one `usage` answer. An error envelope or a drifted shape raises; `{}` and `timeSeries: []` are $0."""
    reject_error_envelope(doc, "usage")
    series_list = _repeated(doc, "timeSeries", "usage", fields=RESPONSE_FIELDS, money=True)
    # `bool limit_reached`: omitted when false.
    limit_reached = _field(doc, "limitReached", "usage")
    limit_reached = False if limit_reached is _ABSENT else limit_reached
    if not isinstance(limit_reached, bool):
        raise _bad("usage: limitReached is not a boolean")
    points: list[UsagePoint] = []
    for series in series_list:
        if not isinstance(series, dict):
            raise _bad("usage: series is not an object")
        group = _group_label(series)
        for point in _repeated(series, "dataPoints", "usage series", fields=SERIES_FIELDS, money=True):
            if not isinstance(point, dict):
                raise _bad("usage: dataPoint is not an object")
            values = [
                _dollars(v) for v in _repeated(point, "values", "usage dataPoint", fields=POINT_FIELDS, money=True)
            ]
            timestamp = _set(point, "timestamp", "usage dataPoint")  # google.protobuf.Timestamp
            if timestamp is None:
                # An unset Timestamp cannot be put on a day. Only a point with nothing spent may lack it
                # (we ask for TIME_UNIT_DAY, whose buckets all carry their start).
                if any(values):
                    raise _bad("usage: dataPoint with dollars but no timestamp")
                continue
            day = _day(timestamp)
            points.extend(UsagePoint(day, usd, group) for usd in values)
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

    `limitReached: true` means the analytics result was cut at its cardinality cap. The grouped query
    (by `description`, for the per-model breakdown) is then repeated once ungrouped, which yields one
    series: total and days come from `ungrouped`, the grouped lines stay as an incomplete breakdown.
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
    """USD from an xAI cents value: an int64 (`"1413"`, or the number 1413 the mapping also accepts),
    bare or as a `prod_charger.Cent` message (`{"val": "1413"}`; `{}` is a Cent of 0). Nothing else.

    billing.proto says which fields are bare (`int64 amount_after_vat`) and which are Cents
    (`Cent total_with_corr`); independent clients disagree, and the unit is cents either way, so both
    spellings are read for every field.
    """
    if isinstance(value, dict):
        if not set(value) <= {"val"}:
            raise _bad(f"{what}: expected {{'val': '<cents>'}}, got keys {sorted(value)[:5]}")
        value = value.get("val", "0")  # `int64 val = 1`: omitted when 0
    return Decimal(_integer(value, what=what)) / HUNDRED


@dataclasses.dataclass(frozen=True)
class InvoicePreview:
    used_usd: Decimal | None  # None when coreInvoice is unset: no invoice to read the amount from
    used_field: str  # "totalWithCorr", else "amountAfterVat" (also when there is no invoice)
    limit_usd: Decimal | None  # effectiveSpendingLimit
    cycle: tuple[int, int] | None  # (year, month) of billingCycle


# GetAmountToPayResp {CoreInvoice core_invoice = 1; int64 effective_spending_limit = 2;
#                     int64 default_credits = 3; BillingCycle billing_cycle = 4;}
# CoreInvoice {repeated Line lines = 1; int64 amount_before_vat = 2; int64 vat_cost = 3;
#              int64 amount_after_vat = 4; int64 auto_credits_issued = 5; int64 default_credits_issued = 6;
#              Cent total_with_corr = 9; Cent prepaid_credits = 8; Cent prepaid_credits_used = 7;}
PREVIEW_FIELDS = ("coreInvoice", "effectiveSpendingLimit", "defaultCredits", "billingCycle")
INVOICE_FIELDS = (
    "lines", "amountBeforeVat", "vatCost", "amountAfterVat", "autoCreditsIssued", "defaultCreditsIssued",
    "totalWithCorr", "prepaidCredits", "prepaidCreditsUsed",
)  # fmt: skip


def _int64_cents(doc: dict[str, Any], json_name: str, where: str, *, fields: Sequence[str]) -> Decimal:
    """An `int64` cents field: absent is 0 (see `_require_printed`)."""
    value = _field(doc, json_name, where)
    if value is _ABSENT:
        _require_printed(doc, json_name, where, fields)
        return Decimal(0)
    return cents_to_usd(value, what=f"{where}.{json_name}")


def parse_invoice_preview(doc: dict[str, Any]) -> InvoicePreview:
    """Parse `postpaid/invoice/preview`: the postpaid amount so far and the effective limit, in USD."""
    reject_error_envelope(doc, "invoice preview")
    core = _message(doc, "coreInvoice", "invoice preview")
    # `totalWithCorr` (the invoice total after VAT and corrections, what the invoice will say) when set,
    # else `amountAfterVat`; both are in the official field list. Whether prepaid credit is netted out
    # of either is UNVERIFIED against a live team.
    used: Decimal | None = None
    field = "amountAfterVat"
    if core is not None:
        total = _set(core, "totalWithCorr", "coreInvoice")  # a Cent, also seen bare
        if total is not None:
            field, used = "totalWithCorr", cents_to_usd(total, what="coreInvoice.totalWithCorr")
        else:
            used = _int64_cents(core, field, "coreInvoice", fields=INVOICE_FIELDS)
    # `int64 effective_spending_limit` has no presence: absent is a $0 limit (a prepaid-only team).
    limit = _int64_cents(doc, "effectiveSpendingLimit", "invoice preview", fields=PREVIEW_FIELDS)
    return InvoicePreview(used, field, limit, _cycle(_message(doc, "billingCycle", "invoice preview")))


def _cycle(value: dict[str, Any] | None) -> tuple[int, int] | None:
    """BillingCycle {int32 year = 1; int32 month = 2;}: an omitted part is 0, i.e. no real month."""
    if value is None:
        return None
    year, month = (_field(value, k, "invoice preview billingCycle") for k in ("year", "month"))
    return (
        0 if year is _ABSENT else _integer(year, what="billingCycle.year", bits=32),
        0 if month is _ABSENT else _integer(month, what="billingCycle.month", bits=32),
    )


@dataclasses.dataclass(frozen=True)
class SpendingLimits:
    effective_usd: Decimal | None  # effectiveSl; the other fields (soft, hard, overrides) are not read


def parse_spending_limits(doc: dict[str, Any]) -> SpendingLimits:
    """Parse `postpaid/spending-limits`: the effective limit in USD (None when unset).

    GetSpendingLimitsResp {SpendingLimits spending_limits = 1;}; SpendingLimits {... Cent effective_sl = 4;}:
    both are messages, so absent means unset, not $0. `effectiveHardSl` is the ceiling the soft limit
    may be raised to, not the point where spending stops, so it is never the limit.
    """
    reject_error_envelope(doc, "spending limits")
    limits = _message(doc, "spendingLimits", "spending limits")
    raw = None if limits is None else _set(limits, "effectiveSl", "spendingLimits")
    if raw is None:
        return SpendingLimits(None)
    return SpendingLimits(cents_to_usd(raw, what="spendingLimits.effectiveSl"))


def headroom(
    period: BillingPeriod, preview: InvoicePreview | None, limits: SpendingLimits | None
) -> tuple[Headroom | None, tuple[str, ...]]:
    """Headroom from whatever context arrived, and notes on what is missing or inconsistent.

    The limit is the invoice preview's `effectiveSpendingLimit`, the one limit field xAI documents
    ("effective current spending limit in USD cents"), read in the same snapshot as the amount used;
    `spendingLimits.effectiveSl` stands in when the preview failed, and a disagreement is noted.
    """
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
    if preview is not None and used is None:
        notes.append("xAI invoice preview carries no invoice: amount used unknown")
    # A preview still on last month (the first minutes of a month) gives the limit but not the amount used.
    elif preview is not None and preview.cycle is not None and preview.cycle != (period.year, period.month):
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
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one of `READ_CALLS` for `team_id`; anything else is refused before it leaves the process."""
    if call not in READ_CALLS:
        raise ValueError(f"{call[0]} {call[1]} is not a read call the alerter may make")
    method, template = call
    path = template.format(team=quote(team_id, safe=""))
    return request_json(client, method, path, json_body=body, deadline=deadline)


@dataclasses.dataclass
class XAIBilling:
    account: XAIAccount
    deps: Deps
    provider: str = "xai"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, KEY_ENV, self.account, "xAI management key", deadline)
        team = self.account.team_id
        headers = {"Authorization": f"Bearer {key}"}
        with (
            self.deps.http_factory(self.deps.base_urls[SPEC.name], headers=headers) as client,
            concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="xai-context") as pool,
        ):
            sent = count_requests(client)
            # The context calls do not depend on the usage answer: send them alongside it, so the
            # account costs one round trip, not three.
            preview = pool.submit(_call, client, INVOICE_PREVIEW, team, deadline=deadline)
            limits = pool.submit(_call, client, SPENDING_LIMITS, team, deadline=deadline)

            def usage(group_by: Sequence[str]) -> Usage:
                if _empty_window(period):
                    return Usage((), limit_reached=False)  # nothing can have been spent yet
                body = usage_request(period, group_by)
                return parse_usage(_call(client, USAGE, team, body=body, deadline=deadline))

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
            requests=sent.value,
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


def probe(account: Any, deps: Deps, now: dt.datetime, deadline: Deadline) -> ProbeResult:
    """Doctor: the check's own `usage` call; reports the answer's shape (what an idle team returns matters)."""
    period = BillingPeriod.containing(now)
    key = admin_key(deps, KEY_ENV, account, "xAI management key")
    body = usage_request(period)
    with deps.http_factory(deps.base_urls[SPEC.name], headers={"Authorization": f"Bearer {key}"}) as client:
        doc = _call(client, USAGE, account.team_id, body=body, deadline=deadline)
    series = doc.get("timeSeries")
    shape = {
        "keys": sorted(doc)[:12],
        "time_series": "absent" if series is None else (len(series) if isinstance(series, list) else "not a list"),
        "limit_reached": doc.get("limitReached", "absent"),
    }
    facts = {"http_status": 200, "shape": shape}
    try:
        usage = parse_usage(doc)
    except ProviderError as exc:
        raise ProviderError(exc.cause, f"{exc.message}; the answer had keys {shape['keys']}") from None
    if not usage.points:
        return "ok", f"HTTP 200, idle team shape parses as $0 (timeSeries {shape['time_series']})", facts
    return "ok", f"HTTP 200, {len(usage.points)} data point(s) in {shape['time_series']} series", facts


SPEC = ProviderSpec(
    name="xai",
    title="xAI",
    console_url="https://console.x.ai",
    account_schema=XAIAccount,
    build=from_config,
    key_env=KEY_ENV,
    base_url_env="XAI_MANAGEMENT_BASE_URL",
    default_base_url="https://management-api.x.ai",
    accounts_required="team_id",
    probe=probe,
)
