"""xAI Management API billing under `/v1/billing/teams/{team_id}/`, as provider-apis.md section 3.2
describes it.

`POST usage` answers DOLLARS (floats); the invoice preview, spending limits and prepaid balance answer
whole CENTS as strings, some wrapped as `{"val": ".."}`; the prepaid `total` is negative while credit
is left. The mutating endpoints (top-up, setting limits, billing info, default payment method) answer
`{}` and are marked `mutating` in the request log so tests can assert the alerter never calls them.
xAI error bodies are undocumented; the simulator answers `{"code": .., "error": ..}`.

Answers are printed with their defaults (`limitReached: false`, `vatCost: "0"`), as the documented
examples show. The `proto3_omit_defaults` mode prints them as a default proto3 JSON printer does instead
(https://protobuf.dev/programming-guides/json/): no zero numbers, `false`, empty strings or empty lists,
so an idle team's usage is `{}` and a zero `Cent` is `{}`.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from simulator._server import Reply, Request, iso_z, json_reply
from simulator._wire import Body, Ctx, bearer_key
from simulator._wire import finish as _finish_body
from simulator.scenario import HOUR, UTC, Account, month_start_of

PATH_RE = re.compile(r"^/v1/billing/teams/(?P<team>[^/]+)/(?P<endpoint>.+)$")
MUTATING: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "prepaid/top-up"),
        ("POST", "postpaid/spending-limits"),
        ("POST", "billing-info"),
        ("POST", "payment-method/default"),
    }
)
TIME_UNITS: tuple[str, ...] = ("TIME_UNIT_NONE", "TIME_UNIT_HOUR", "TIME_UNIT_DAY", "TIME_UNIT_MONTH")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_CODES: dict[int, tuple[str, str]] = {
    400: ("Client specified an invalid argument.", "invalid request"),
    401: ("Unauthenticated", "The management key is missing, malformed or revoked."),
    403: ("Permission denied", "The management key does not have access to this team's billing."),
    404: ("Not found", "No such resource."),
    429: ("Too many requests", "Rate limit exceeded. Please retry later."),
    500: ("Internal error", "Internal server error."),
    502: ("Bad gateway", "Upstream error."),
    503: ("Service unavailable", "The service is temporarily unavailable."),
    529: ("Service unavailable", "The service is overloaded."),
}


OMIT_DEFAULTS = "proto3_omit_defaults"


def omit_defaults(value: Any) -> Any:
    """`value` as a default proto3 JSON printer writes it: object members holding a default dropped.

    Defaults are false, 0, "" and [] and the int64 zero "0" (int64 travels as a string). A message
    whose members all go stays `{}` (a set message is printed; only an unset one is left out); list
    elements are never dropped (`values: [0.0]` keeps its zero).
    """
    if isinstance(value, list):
        return [omit_defaults(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if item is False or item in ("", "0", []) or (type(item) in (int, float) and item == 0):
            continue
        out[key] = omit_defaults(item)
    return out


def finish(body: Body, mode: str | None) -> Reply:
    """The reply for `body`: printed without defaults in `proto3_omit_defaults`, else as `_wire.finish`."""
    if mode == OMIT_DEFAULTS:
        body = Body(omit_defaults(body.payload), body.main_key, body.huge_list, body.huge_item)
    return _finish_body(body, mode)


def error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    code, default = _CODES.get(status, _CODES[500])
    return json_reply(status, {"code": code, "error": message or default}, headers)


def status_error(status: int, request_id: str, headers: dict[str, str] | None = None) -> Reply:
    """The body the simulator sends with `status` for xAI (used by the status faults)."""
    return error(status, headers=headers)


def api_key(request: Request) -> str | None:
    return bearer_key(request)


def unauthorized(key: str | None, request_id: str) -> Reply:
    if key is None:
        return error(401, "Missing management key: send Authorization: Bearer <management key>.")
    return error(401)


def endpoint_of(path: str) -> tuple[str, str] | None:
    """(team_id, endpoint) of a billing path."""
    match = PATH_RE.match(path)
    return (match["team"], match["endpoint"]) if match else None


def is_mutating(request: Request) -> bool:
    parts = endpoint_of(request.path)
    return parts is not None and (request.method, parts[1]) in MUTATING


def handle(request: Request, account: Account, ctx: Ctx) -> Reply:
    parts = endpoint_of(request.path)
    if parts is None:
        return error(404)
    team_id, endpoint = parts
    if team_id != account.team_id:
        return error(403, f"The management key has no access to team {team_id}.")
    if (request.method, endpoint) in MUTATING:
        return json_reply(200, {})
    if request.method == "POST" and endpoint == "usage":
        return _usage(request, account, ctx)
    if request.method == "GET" and endpoint == "postpaid/invoice/preview":
        return finish(_invoice_preview(account, ctx), ctx.mode)
    if request.method == "GET" and endpoint == "postpaid/spending-limits":
        return finish(_spending_limits(account, ctx), ctx.mode)
    if request.method == "GET" and endpoint == "prepaid/balance":
        return finish(_balance(account, ctx), ctx.mode)
    return error(404, f"{request.method} {endpoint} is not simulated.")


# --- usage (analytics) ------------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


def _usage(request: Request, account: Account, ctx: Ctx) -> Reply:
    try:
        return _usage_reply(request, account, ctx)
    except _BadRequest as exc:
        return error(400, str(exc))


def _usage_reply(request: Request, account: Account, ctx: Ctx) -> Reply:
    try:
        body = request.json()
    except ValueError:
        raise _BadRequest("the body must be JSON with an analyticsRequest") from None
    req = body.get("analyticsRequest") if isinstance(body, dict) else None
    if not isinstance(req, dict):
        raise _BadRequest("analyticsRequest is required")
    time_range = req.get("timeRange")
    if not isinstance(time_range, dict):
        raise _BadRequest("analyticsRequest.timeRange is required")
    tz_name = time_range.get("timezone") or "Etc/GMT"
    try:
        tz = zoneinfo.ZoneInfo(str(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _BadRequest(f"unknown timezone {tz_name!r}") from None
    start = _local_time(time_range.get("startTime"), tz, "startTime")
    end = _local_time(time_range.get("endTime"), tz, "endTime")
    if end <= start:
        raise _BadRequest("timeRange.endTime must be after startTime")
    unit = req.get("timeUnit") or "TIME_UNIT_NONE"
    if unit not in TIME_UNITS:
        raise _BadRequest(f"timeUnit {unit!r} is not supported by the simulator (use one of {', '.join(TIME_UNITS)})")
    values = req.get("values")
    if values != [{"name": "usd", "aggregation": "AGGREGATION_SUM"}]:
        raise _BadRequest('values: the simulator serves [{"name": "usd", "aggregation": "AGGREGATION_SUM"}]')
    group_by = req.get("groupBy") or []
    if group_by not in ([], ["description"]):
        raise _BadRequest(f'groupBy {group_by!r} is not supported by the simulator (use [] or ["description"])')
    if not isinstance(req.get("filters", []), list):
        raise _BadRequest("filters must be a list")

    end = min(end, ctx.now)
    buckets = _buckets(start, end, unit, tz)
    series: dict[tuple[str | None, ...], list[Decimal]] = {}
    for i, (b_start, b_end) in enumerate(buckets):
        amounts = account.window(max(b_start, start), min(b_end, end), ctx.visible_until)
        for values_, total in account.group(amounts, group_by):
            key = tuple(values_.get(g) for g in group_by)
            series.setdefault(key, [Decimal(0)] * len(buckets))[i] = total
    keys, shown = list(series), len(buckets)
    limit_reached = ctx.mode == "limit_reached" and bool(keys)
    if limit_reached:  # the cardinality cap: one series, half of its points
        keys, shown = keys[:1], max(1, len(buckets) // 2)
    time_series = [
        {
            "group": [v or "" for v in key],
            "groupLabels": [v or "" for v in key],
            "dataPoints": [
                {"timestamp": iso_z(b_start), "values": [ctx.emit.dollars(amount)]}
                for (b_start, _), amount in list(zip(buckets, series[key], strict=True))[:shown]
            ],
        }
        for key in keys
    ]
    payload: dict[str, Any] = {"timeSeries": time_series, "limitReached": limit_reached}
    sample = {
        "group": ["grok-4.3 input tokens"] if group_by else [],
        "groupLabels": ["grok-4.3 input tokens"] if group_by else [],
        "dataPoints": [{"timestamp": iso_z(start), "values": [0.01]}],
    }
    return finish(Body(payload, "timeSeries", ("timeSeries",), sample), ctx.mode)


def _local_time(value: object, tz: dt.tzinfo, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _BadRequest(f'timeRange.{name} is required ("YYYY-MM-DD HH:MM:SS")')
    try:
        local = dt.datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=tz)  # a wall time in the request's zone
    except ValueError:
        raise _BadRequest(f'timeRange.{name} {value!r} is not "YYYY-MM-DD HH:MM:SS"') from None
    return local.astimezone(UTC)


def _buckets(start: dt.datetime, end: dt.datetime, unit: str, tz: dt.tzinfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """[bucket start, bucket end) in UTC for every `unit` of local time overlapping [start, end)."""
    if unit == "TIME_UNIT_NONE":
        return [(start, end)] if start < end else []
    out = []
    local = start.astimezone(tz)
    if unit == "TIME_UNIT_HOUR":
        cursor = start.replace(minute=0, second=0, microsecond=0)
    elif unit == "TIME_UNIT_DAY":
        cursor = dt.datetime.combine(local.date(), dt.time(), tz).astimezone(UTC)
    else:
        cursor = dt.datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)
    while cursor < end:
        nxt = _next(cursor, unit, tz)
        out.append((cursor, nxt))
        cursor = nxt
    return out


def _next(cursor: dt.datetime, unit: str, tz: dt.tzinfo) -> dt.datetime:
    if unit == "TIME_UNIT_HOUR":
        return cursor + HOUR
    local = cursor.astimezone(tz)
    if unit == "TIME_UNIT_DAY":
        return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz).astimezone(UTC)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return dt.datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


# --- invoice preview, spending limits, prepaid balance (cents) --------------------------------------


def _to_cents(usd: Decimal) -> Decimal:
    """USD rounded to whole cents, as a USD amount (invoices carry whole cents)."""
    return (usd * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) / 100


def _month_usage(account: Account, ctx: Ctx) -> tuple[dt.datetime, list[tuple[str, Decimal]]]:
    start = month_start_of(ctx.now)
    amounts = account.window(start, ctx.now, ctx.visible_until)
    grouped = account.group(amounts, ["description"])
    return start, [(values.get("description") or "API usage", total) for values, total in grouped]


def _invoice_preview(account: Account, ctx: Ctx) -> Body:
    start, lines = _month_usage(account, ctx)
    emit = ctx.emit
    line_cents = [(name, _to_cents(total)) for name, total in lines]
    total = sum((c for _, c in line_cents), Decimal(0))
    prepaid = account.prepaid_credit_usd
    used = min(prepaid, total)
    invoice_lines = [
        {
            "description": f"API {name}",
            "amount": emit.whole_cents(cents),
            "unitType": "tokens",
            "numUnits": str(int(cents * 400_000)),
            "clusterName": "us-west-2",
        }
        for name, cents in line_cents
    ]
    payload = {
        "coreInvoice": {
            "amountBeforeVat": emit.whole_cents(total),
            "vatCost": "0",
            "amountAfterVat": emit.whole_cents(total),
            "totalWithCorr": emit.wrapped_cents(total),
            "prepaidCredits": emit.wrapped_cents(-prepaid),
            "prepaidCreditsUsed": emit.wrapped_cents(used),
            "lines": invoice_lines,
        },
        "effectiveSpendingLimit": emit.whole_cents(account.spending_limit_usd or Decimal(0)),
        "defaultCredits": "0",
        "billingCycle": {"year": start.year, "month": start.month},
    }
    sample = {"description": "API grok-4.3", "amount": "1", "unitType": "tokens", "numUnits": "400000"}
    return Body(payload, "coreInvoice", ("coreInvoice", "lines"), sample)


def _spending_limits(account: Account, ctx: Ctx) -> Body:
    limit = account.spending_limit_usd or Decimal(0)
    emit = ctx.emit
    payload = {
        "spendingLimits": {
            "softSl": emit.wrapped_cents(limit),
            "effectiveSl": emit.wrapped_cents(limit),
            "effectiveHardSl": emit.whole_cents(limit),
            "hardSlAuto": emit.wrapped_cents(limit),
            "hardSlOverride": emit.whole_cents(Decimal(0)),
            "nextBpDesiredSoftSl": emit.wrapped_cents(limit),
        }
    }
    return Body(payload, "spendingLimits", ("history",), {"softSl": {"val": "0"}})


def _balance(account: Account, ctx: Ctx) -> Body:
    start, lines = _month_usage(account, ctx)
    emit = ctx.emit
    prepaid = account.prepaid_credit_usd
    used = min(prepaid, _to_cents(sum((t for _, t in lines), Decimal(0))))
    changes: list[dict[str, Any]] = []
    if prepaid:
        changes.append(
            {
                "changeOrigin": "PURCHASE",
                "amount": emit.wrapped_cents(-prepaid),
                "createTime": iso_z(start),
                "topupStatus": "SUCCEEDED",
                "invoiceNumber": f"SIM-{start:%Y%m}-0001",
            }
        )
        if used:
            changes.append(
                {
                    "changeOrigin": "SPEND",
                    "amount": emit.wrapped_cents(used),
                    "createTime": iso_z(ctx.now),
                    "spendBpKeyYear": start.year,
                    "spendBpKeyMonth": start.month,
                }
            )
    payload = {"total": emit.wrapped_cents(-(prepaid - used)), "changes": changes}
    sample = {"changeOrigin": "SPEND", "amount": {"val": "1"}, "createTime": iso_z(start)}
    return Body(payload, "total", ("changes",), sample)
