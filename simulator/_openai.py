"""OpenAI `GET /v1/organization/costs`, as provider-apis.md section 1.1 describes it, and the hard
spend limits `GET /v1/organization/spend_limit` and `GET /v1/organization/projects/{id}/spend_limit`.

Amounts are dollars (JSON floats), buckets are UTC days (a non-midnight `start_time` makes a partial
first bucket), empty days carry `results: []`, and `limit` counts buckets (default 7, 1..180).

Spend limits answer the SDK's `OrganizationSpendLimit` / `ProjectSpendLimit` (openai/openai-node
`src/resources/admin/organization/spend-limit.ts`, `.../projects/spend-limit.ts`): `threshold_amount`
in whole cents, `currency` "USD", `interval` "month", `enforcement.status` "enforcing" once the
simulated month-to-date has reached the limit, else "inactive". An unset limit answers threshold 0,
inactive; a project configured as `null` (or unknown to the account) answers 404. POST and DELETE (the
real API's create/replace and delete) answer 405 and are logged `mutating`. Data faults:
`drift_amount_type` (threshold_amount as a string), `foreign_currency` (EUR), `drift_missing_data`,
`truncated_json`; the status faults (e.g. `error_envelope_200`) apply as everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from simulator._server import Reply, Request, json_reply
from simulator._wire import Body, Ctx, PageSlice, bearer_key, finish, list_param, paginate
from simulator.scenario import DAY, UTC, Account, month_start_of, utc_day_start

COSTS_PATH = "/v1/organization/costs"
SPEND_LIMIT_PATH = "/v1/organization/spend_limit"
PROJECT_SPEND_LIMIT_RE = re.compile(r"^/v1/organization/projects/(?P<project>[^/]+)/spend_limit$")
GROUPS: tuple[str, ...] = ("project_id", "line_item", "api_key_id")
USD_PER_TOKEN = Decimal("0.0000025")  # only to fill the decorative `quantity` field
DEFAULT_LIMIT, MAX_LIMIT = 7, 180

_STATUS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "You have insufficient permissions for this operation. Missing scopes: api.usage.read.",
        "invalid_request_error",
        None,
    ),
    404: (f"Invalid URL (GET {COSTS_PATH})", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    529: ("The server is overloaded or not ready yet.", "server_error", None),
}


def error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_reply(status, body, headers)


def status_error(status: int, request_id: str, headers: dict[str, str] | None = None) -> Reply:
    """The envelope OpenAI sends with `status` (used by the status faults)."""
    message, type_, code = _STATUS.get(status, _STATUS[500])
    return error(status, message, type_, code, headers={"x-request-id": request_id, **(headers or {})})


def api_key(request: Request) -> str | None:
    return bearer_key(request)


def unauthorized(key: str | None, request_id: str) -> Reply:
    if key is None:
        return error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    shown = f"{key[:8]}{'*' * 8}{key[-4:]}" if len(key) > 12 else "*" * len(key)
    return error(
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def not_found(request: Request) -> Reply:
    return error(404, f"Invalid URL ({request.method} {request.path})")


def _int_param(request: Request, name: str) -> int | None:
    raw = request.param(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"Invalid value for '{name}': expected an integer, got {raw!r}.", name) from None


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def costs(request: Request, account: Account, ctx: Ctx) -> Reply:
    if request.method != "GET":
        return not_found(request)
    try:
        return _costs(request, account, ctx)
    except _BadRequest as exc:
        return error(400, str(exc), param=exc.param)


def _costs(request: Request, account: Account, ctx: Ctx) -> Reply:
    start_ts = _int_param(request, "start_time")
    if start_ts is None:
        raise _BadRequest("Missing required parameter: 'start_time'.", "start_time")
    end_ts = _int_param(request, "end_time")
    if end_ts is not None and end_ts <= start_ts:
        raise _BadRequest("'end_time' must be greater than 'start_time'.", "end_time")
    width = request.param("bucket_width") or "1d"
    if width != "1d":
        raise _BadRequest(f"Invalid value for 'bucket_width': {width!r}. Supported values are: '1d'.", "bucket_width")
    limit = _int_param(request, "limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit < 1:
        raise _BadRequest(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {limit} instead.", "limit"
        )
    if limit > MAX_LIMIT:
        raise _BadRequest(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_LIMIT}, but got {limit} instead.",
            "limit",
        )
    group_by = list(dict.fromkeys(list_param(request.query, "group_by")))
    for g in group_by:
        if g not in GROUPS:
            supported = ", ".join(GROUPS)
            raise _BadRequest(f"Invalid value for 'group_by': {g!r}. Supported values are: {supported}.", "group_by")
    filters = {
        "project_id": set(list_param(request.query, "project_ids")),
        "api_key_id": set(list_param(request.query, "api_key_ids")),
    }

    start = dt.datetime.fromtimestamp(start_ts, UTC)
    end = dt.datetime.fromtimestamp(end_ts, UTC) if end_ts is not None else None
    horizon = utc_day_start(ctx.now) + DAY  # no buckets after today
    if end is not None:
        horizon = min(horizon, end)
    buckets: list[tuple[dt.datetime, dt.datetime]] = []
    bucket_start = start
    while bucket_start < horizon:
        next_day = utc_day_start(bucket_start) + DAY
        buckets.append((bucket_start, min(next_day, end) if end is not None else next_day))
        bucket_start = next_day

    try:
        page: PageSlice = paginate(
            len(buckets), limit, request.param("page"), [str(int(b[0].timestamp())) for b in buckets], ctx.mode
        )
    except ValueError:
        raise _BadRequest("Invalid 'page': not a cursor returned by this endpoint.", "page") from None

    data = []
    for bucket_start, bucket_end in buckets[page.first : page.stop]:
        amounts = account.window(bucket_start, bucket_end, ctx.visible_until)
        for dim, wanted in filters.items():
            if wanted:
                keep = [c.values.get(dim) in wanted for c in account.cells]
                amounts = [a if k else Decimal(0) for k, a in zip(keep, amounts, strict=True)]
        results = [_result(values, total, group_by, ctx) for values, total in account.group(amounts, group_by)]
        data.append(_bucket(bucket_start, bucket_end, results))

    payload = {"object": "page", "data": data, "has_more": page.has_more, "next_page": page.next_page}
    sample = _result({"line_item": "gpt-5.4, input", "project_id": "proj_sim"}, Decimal("0.01"), ["line_item"], ctx)
    huge_item = _bucket(start, start + DAY, [sample])
    return finish(Body(payload, "data", ("data",), huge_item), ctx.mode, {"x-request-id": ctx.request_id})


def _bucket(start: dt.datetime, end: dt.datetime, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": int(start.timestamp()),
        "end_time": int(end.timestamp()),
        "results": results,
    }


def _result(values: dict[str, str | None], amount: Decimal, group_by: list[str], ctx: Ctx) -> dict[str, Any]:
    by_line = "line_item" in group_by
    return {
        "object": "organization.costs.result",
        "amount": {"value": ctx.emit.dollars(amount), "currency": "usd"},
        "line_item": values.get("line_item"),
        "project_id": values.get("project_id"),
        "api_key_id": values.get("api_key_id"),
        "quantity": float(int(amount / USD_PER_TOKEN)) if by_line else None,
        "quantity_unit": "tokens" if by_line else None,
    }


# --- hard spend limits (whole cents) ----------------------------------------------------------------


def is_spend_limit(path: str) -> bool:
    return path == SPEND_LIMIT_PATH or PROJECT_SPEND_LIMIT_RE.match(path) is not None


def is_mutating(request: Request) -> bool:
    """A spend-limit write (POST create/replace, DELETE): the alerter must never send one."""
    return is_spend_limit(request.path) and request.method != "GET"


def spend_limit(request: Request, account: Account, ctx: Ctx) -> Reply:
    if request.method != "GET":
        return error(
            405, f"The simulator does not let {request.method} change spend limits.", type_="invalid_request_error"
        )
    match = PROJECT_SPEND_LIMIT_RE.match(request.path)
    project = match["project"] if match else None
    if project is None:
        limit, object_type = account.spend_limit_usd, "organization.spend_limit"
    else:
        projects = {c.values.get("project_id") for c in account.cells}
        if account.project_spend_limits.get(project, Decimal(0)) is None or (
            project not in projects and project not in account.project_spend_limits
        ):
            return error(404, f"No spend limit found for project '{project}'.", code="not_found")
        limit, object_type = account.project_spend_limits.get(project), "project.spend_limit"
    cents = int((limit or Decimal(0)) * 100)
    used = _month_to_date(account, ctx, project)
    payload: dict[str, Any] = {
        "object": object_type,
        "threshold_amount": str(cents) if ctx.mode == "drift_amount_type" else cents,
        "currency": "EUR" if ctx.mode == "foreign_currency" else "USD",
        "interval": "month",
        "enforcement": {"status": "enforcing" if cents and used * 100 >= cents else "inactive"},
    }
    return finish(Body(payload, "threshold_amount"), ctx.mode, {"x-request-id": ctx.request_id})


def _month_to_date(account: Account, ctx: Ctx, project: str | None) -> Decimal:
    amounts = account.window(month_start_of(ctx.now), ctx.now, ctx.visible_until)
    return sum(
        (a for c, a in zip(account.cells, amounts, strict=True) if project in (None, c.values.get("project_id"))),
        Decimal(0),
    )
