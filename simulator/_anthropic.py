"""Anthropic `GET /v1/organizations/cost_report`, as provider-apis.md section 2.2 describes it.

Amounts are decimal strings in CENTS. `starting_at` is snapped to the start of its UTC day; a bucket is
returned only when it ends at or before `ending_at` (so pass tomorrow 00:00 UTC, or omit `ending_at`,
to get today's partial bucket). Every day gets a bucket, oldest first; `limit` is 1..31 (default 7).

With `complete_days_only` (`serve --complete-days-only`, `POST /_sim/options`) it behaves as
Anthropic's cookbook and other clients describe the real API: only days that have ended (before the
clock minus the lag) come back, and a range holding none answers `400 invalid_request_error` with the
message those clients quote, `DATE_RANGE_MESSAGE` (langwatch/langwatch#7177, PR #7178).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from simulator._server import Reply, Request, iso_z, json_reply, parse_instant
from simulator._wire import Body, Ctx, bearer_key, finish, paginate
from simulator.scenario import ANTHROPIC_ATTRS, DAY, Account, utc_day_start

COST_REPORT_PATH = "/v1/organizations/cost_report"
GROUPS: tuple[str, ...] = ("workspace_id", "description")
DEFAULT_LIMIT, MAX_LIMIT = 7, 31
DATE_RANGE_MESSAGE = "Invalid date range: ending date must be after starting date"

_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "rate_limit_error": "Number of requests has exceeded your rate limit. Please try again later.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


def error(status: int, message: str, request_id: str, headers: dict[str, str] | None = None) -> Reply:
    type_ = _TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    return json_reply(status, body, headers)


def status_error(status: int, request_id: str, headers: dict[str, str] | None = None) -> Reply:
    """The envelope Anthropic sends with `status` (used by the status faults)."""
    return error(status, _MESSAGES.get(_TYPES.get(status, "api_error"), "Error"), request_id, headers)


def api_key(request: Request) -> str | None:
    return request.headers.get("x-api-key") or bearer_key(request)


def unauthorized(key: str | None, request_id: str) -> Reply:
    if key is None:
        return error(401, "x-api-key header is required", request_id)
    return error(401, "invalid x-api-key", request_id)


def missing_version(request: Request, request_id: str) -> Reply | None:
    if not request.headers.get("anthropic-version"):
        return error(400, "anthropic-version: header is required", request_id)
    return None


class _BadRequest(Exception):
    pass


def _instant(request: Request, name: str) -> dt.datetime | None:
    raw = request.param(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise _BadRequest(f"{name}: Input should be a valid RFC 3339 datetime, got {raw!r}") from None


def cost_report(request: Request, account: Account, ctx: Ctx) -> Reply:
    if request.method != "GET":
        return error(404, f"Not found: {request.method} {request.path}", ctx.request_id)
    try:
        return _cost_report(request, account, ctx)
    except _BadRequest as exc:
        return error(400, str(exc), ctx.request_id)


def _cost_report(request: Request, account: Account, ctx: Ctx) -> Reply:
    starting_at = _instant(request, "starting_at")
    if starting_at is None:
        raise _BadRequest("starting_at: Field required")
    ending_at = _instant(request, "ending_at")
    if ending_at is not None and ending_at <= starting_at:
        raise _BadRequest("ending_at: must be after starting_at")
    width = request.param("bucket_width") or "1d"
    if width != "1d":
        raise _BadRequest(f"bucket_width: Input should be '1d', got {width!r}")
    raw_limit = request.param("limit")
    try:
        limit = DEFAULT_LIMIT if raw_limit is None else int(raw_limit)
    except ValueError:
        raise _BadRequest(f"limit: Input should be a valid integer, got {raw_limit!r}") from None
    if limit < 1:
        raise _BadRequest("limit: Input should be greater than or equal to 1")
    if limit > MAX_LIMIT:
        raise _BadRequest(f"limit: Input should be less than or equal to {MAX_LIMIT}")
    group_by = list(dict.fromkeys(request.query.get("group_by[]", [])))
    for g in group_by:
        if g not in GROUPS:
            raise _BadRequest(f"group_by[]: Input should be 'workspace_id' or 'description', got {g!r}")

    today_end = utc_day_start(ctx.now) + DAY
    days: list[dt.datetime] = []
    day = utc_day_start(starting_at)
    while day < today_end and (ending_at is None or day + DAY <= ending_at):
        days.append(day)
        day += DAY
    if ctx.complete_days_only:
        days = [d for d in days if d + DAY <= ctx.visible_until]
        if not days:
            raise _BadRequest(DATE_RANGE_MESSAGE)

    try:
        page = paginate(len(days), limit, request.param("page"), [iso_z(d) for d in days], ctx.mode)
    except ValueError:
        raise _BadRequest("page: invalid page token") from None

    data = []
    for day in days[page.first : page.stop]:
        amounts = account.window(day, day + DAY, ctx.visible_until)
        results = [_result(account, values, total, ctx) for values, total in account.group(amounts, group_by)]
        data.append({"starting_at": iso_z(day), "ending_at": iso_z(day + DAY), "results": results})

    payload = {"data": data, "has_more": page.has_more, "next_page": page.next_page}
    sample_day = utc_day_start(starting_at)
    sample = _result(account, {}, Decimal("0.01"), ctx)
    huge_item = {"starting_at": iso_z(sample_day), "ending_at": iso_z(sample_day + DAY), "results": [sample]}
    return finish(Body(payload, "data", ("data",), huge_item), ctx.mode)


def _result(account: Account, values: dict[str, str | None], amount: Decimal, ctx: Ctx) -> dict[str, Any]:
    description = values.get("description")
    attrs = account.attrs.get(description, {}) if description is not None else {}
    return {
        "amount": ctx.emit.cents_string(amount),
        "currency": "USD",
        "workspace_id": values.get("workspace_id"),
        "description": description,
        **{name: attrs.get(name) for name in ANTHROPIC_ATTRS},
    }
