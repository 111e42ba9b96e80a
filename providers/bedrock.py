"""AWS Bedrock spend from Cost Explorer `GetCostAndUsage`, with Google-to-AWS federation (pure parts + fetch).

Wire (botocore's official model `botocore/data/ce/2017-10-25/service-2.json`: protocol json 1.1,
targetPrefix `AWSInsightsIndexService`, signingName `ce`; endpoint https://ce.us-east-1.amazonaws.com,
"The Cost Explorer API provides the following endpoint", CE API reference)::

    POST /   X-Amz-Target: AWSInsightsIndexService.GetCostAndUsage   (SigV4, service ce, us-east-1)
    {"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Granularity": "DAILY",
     "Metrics": ["UnblendedCost"], "GroupBy": [SERVICE, USAGE_TYPE], "NextPageToken": ...}

* Window: the UTC month, `Start` = the 1st, `End` = tomorrow, because "the start date is inclusive, but
  the end date is exclusive" (`DateInterval.End`); clamped to the 1st of next month.
* Metric: `UnblendedCost` by default, "the cost dataset presented to you on the Bills page … the default
  in Cost Explorer and AWS Budgets" (AWS Cloud Financial Management blog, "Understanding your AWS Cost
  Datasets: A Cheat Sheet"); `NetUnblendedCost` (after EDP/credits) is an option. One metric per request,
  so the parser reads one number. No RECORD_TYPE filter: credits and refunds arrive as negative rows, so
  the total equals the bill.
* Selection: Bedrock's own models bill under SERVICE `Amazon Bedrock`, but third-party models sold through
  AWS Marketplace (Anthropic Claude and others) bill as their own service named
  `<model> (Amazon Bedrock Edition)`. Dimension filters only match EQUALS / CASE_SENSITIVE ("Valid values
  for MatchOptions for Dimensions are EQUALS and CASE_SENSITIVE"), so the request has no service filter;
  rows are grouped by SERVICE + USAGE_TYPE and selected here. **A filter on `Amazon Bedrock` alone
  under-reports most model spend.**
* Money: `MetricValue.Amount` is a decimal string, `Unit` must be `USD` (anything else is refused).
  With `GroupBy`, `Total` is `{}`: the groups are summed.
* Freshness: Cost Explorer data "is updated up to three times a day" (CE API best practices,
  https://docs.aws.amazon.com/cost-management/latest/userguide/ce-api-best-practices.html); open days
  carry `Estimated: true`. `as_of` is the end of the newest day with Bedrock data, never later than the
  fetch; the note names the fetch time and the first estimated day.
* Cost: "Each request will incur a cost of $0.01", and "each page counts as a separate request"
  (https://aws.amazon.com/aws-cost-management/aws-cost-explorer/pricing/ and its FAQ). `decide_fetch`
  keeps a month under $1 and the last result is reused in between with its own fetch time.
* Credentials: preferred, no static key: the function's Google service account gets a Google-signed ID
  token from the metadata server and exchanges it with STS `AssumeRoleWithWebIdentity` (unsigned:
  `authtype: none` in botocore's `sts/2011-06-15` model) for a role that trusts it; fallback, an access
  key pair from Secret Manager.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from errors import Cause, ProviderError
from models import UTC, BillingPeriod, BreakdownLine, CostReport, DailyCost, Deadline, Freshness, usd
from providers._aggregate import CostAccumulator, to_decimal
from providers._http import MAX_PAGES, request_json
from providers._sigv4 import Credentials, SigV4Auth
from providers._spec import Deps, KeyedAccount, ProviderSpec, admin_key

__all__ = [
    "DEFAULT_METRIC",
    "READ_CALLS",
    "SPEC",
    "BedrockAccount",
    "BedrockCosts",
    "CeSnapshot",
    "CeTotals",
    "FetchDecision",
    "TemporaryCredentials",
    "assume_role",
    "cached_report",
    "ce_error",
    "ce_request",
    "ce_window",
    "configure_ce_client",
    "decide_fetch",
    "default_fetch_every_hours",
    "fetch_cost_and_usage",
    "fetch_id_token",
    "fetch_snapshot",
    "key_pair",
    "monthly_cost_usd",
    "parse_id_token",
    "parse_sts",
    "snapshot_report",
]

CE_BASE_URL = "https://ce.us-east-1.amazonaws.com"
CE_REGION = "us-east-1"
CE_SERVICE = "ce"
CE_TARGET = "AWSInsightsIndexService.GetCostAndUsage"
STS_BASE_URL = "https://sts.us-east-1.amazonaws.com"  # regional STS; the global one works too
METADATA_HOST = "metadata.google.internal"  # google-auth reads GCE_METADATA_HOST to override it
ID_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
READ_CALLS: frozenset[tuple[str, str]] = frozenset(
    {("POST", CE_TARGET), ("POST", "sts:AssumeRoleWithWebIdentity"), ("GET", ID_TOKEN_PATH)}
)
"""Every call this module makes: one Cost Explorer read, one STS exchange, one metadata read. Nothing else."""

COST_METRICS = frozenset({"UnblendedCost", "NetUnblendedCost", "AmortizedCost", "NetAmortizedCost", "BlendedCost"})
DEFAULT_METRIC = "UnblendedCost"
BEDROCK_SERVICE = "Amazon Bedrock"
MARKETPLACE_SUFFIX = " (Amazon Bedrock Edition)"
PRICE_PER_REQUEST_USD = Decimal("0.01")
MONTHLY_CEILING_USD = Decimal(1)
STS_DURATION_S = 900  # the minimum STS allows; one check needs seconds
CREDENTIAL_MARGIN = dt.timedelta(minutes=5)
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- the request -------------------------------------------------------------------------------


def ce_window(period: BillingPeriod) -> tuple[dt.date, dt.date]:
    """`[Start, End)` for the month to date: the 1st to tomorrow, never past the 1st of next month."""
    if period.tz_name != "UTC":
        raise ValueError("Cost Explorer days are UTC days: pass a UTC billing period")
    return period.first_day, min(period.today, period.last_day) + dt.timedelta(days=1)


def ce_request(
    period: BillingPeriod,
    *,
    metric: str = DEFAULT_METRIC,
    second_group: str = "USAGE_TYPE",
    linked_account: str | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """The `GetCostAndUsage` body, built the same way every time (moto and caches key on the bytes).

    `second_group` is `USAGE_TYPE` (the model / usage-type breakdown) or `LINKED_ACCOUNT` (per member
    account); CE allows two groups, SERVICE is the first. `linked_account` restricts a payer (management)
    account's view to one member account.
    """
    if metric not in COST_METRICS:
        raise ValueError(f"metric must be one of {sorted(COST_METRICS)}")
    if second_group not in ("USAGE_TYPE", "LINKED_ACCOUNT"):
        raise ValueError("second_group must be USAGE_TYPE or LINKED_ACCOUNT")
    start, end = ce_window(period)
    body: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [metric],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": second_group}],
    }
    if linked_account is not None:
        if not re.fullmatch(r"\d{12}", linked_account):
            raise ValueError("linked_account must be a 12-digit AWS account id")
        body["Filter"] = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [linked_account]}}
    if page_token is not None:
        body["NextPageToken"] = page_token
    return body


def bedrock_model(service: str) -> str | None:
    """The model a SERVICE value bills for, or None when the row is not Bedrock at all."""
    if service == BEDROCK_SERVICE:
        return BEDROCK_SERVICE
    if service.endswith(MARKETPLACE_SUFFIX) and len(service) > len(MARKETPLACE_SUFFIX):
        return service[: -len(MARKETPLACE_SUFFIX)]
    return None


# --- the response ------------------------------------------------------------------------------


def _bad(message: str) -> ProviderError:
    return ProviderError(Cause.BAD_RESPONSE, f"Cost Explorer: {message}")


def _day(value: Any, what: str) -> dt.date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise _bad(f"{what} is not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad(f"{what} {value!r} is not a date") from None


class CeTotals:
    """Bedrock rows of every page, summed per UTC day, per model and per usage type (or account)."""

    def __init__(self, period: BillingPeriod, metric: str, second_dimension: str = "usage_type") -> None:
        self.acc = CostAccumulator(period)
        self.metric = metric
        self.second_dimension = second_dimension
        self.estimated_days: set[dt.date] = set()
        self.days_with_data: set[dt.date] = set()
        self.other_services = 0
        self.pages = 0

    def add_page(self, doc: Mapping[str, Any]) -> str | None:
        """Add one response page; return its `NextPageToken` (None on the last page)."""
        self.pages += 1
        results = doc.get("ResultsByTime")
        if not isinstance(results, list):
            raise _bad("no ResultsByTime list")
        for i, item in enumerate(results):
            self._add_result(item, f"ResultsByTime[{i}]")
        token = doc.get("NextPageToken")
        if token is None or token == "":
            return None
        if not isinstance(token, str):
            raise _bad("NextPageToken is not a string")
        return token

    def _add_result(self, item: Any, where: str) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("TimePeriod"), dict):
            raise _bad(f"{where} has no TimePeriod")
        start = _day(item["TimePeriod"].get("Start"), f"{where}.TimePeriod.Start")
        end = _day(item["TimePeriod"].get("End"), f"{where}.TimePeriod.End")
        if end != start + dt.timedelta(days=1):
            raise _bad(f"{where} is not one DAILY period ({start} to {end})")
        estimated = item.get("Estimated", False)
        if not isinstance(estimated, bool):
            raise _bad(f"{where}.Estimated is not a boolean")
        groups = item.get("Groups", [])
        if not isinstance(groups, list):
            raise _bad(f"{where}.Groups is not a list")
        if estimated:
            self.estimated_days.add(start)
        for j, group in enumerate(groups):
            self._add_group(start, group, f"{where}.Groups[{j}]")

    def _add_group(self, day: dt.date, group: Any, where: str) -> None:
        if not isinstance(group, dict):
            raise _bad(f"{where} is not an object")
        keys = group.get("Keys")
        if not (isinstance(keys, list) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
            raise _bad(f"{where}.Keys is not [SERVICE, {self.second_dimension.upper()}]")
        metrics = group.get("Metrics")
        value = metrics.get(self.metric) if isinstance(metrics, dict) else None
        if not isinstance(value, dict):
            raise _bad(f"{where} has no {self.metric} (the metric requested)")
        unit = value.get("Unit")
        amount = value.get("Amount")
        if not isinstance(amount, str):
            raise _bad(f"{where}.{self.metric}.Amount is not a decimal string")
        usd = to_decimal(amount, what=f"Cost Explorer {where}.{self.metric}.Amount")
        if unit != "USD":
            raise _bad(f"{where} is in {str(unit)[:8]!r}, not USD: refused (no conversion for Cost Explorer)")
        model = bedrock_model(keys[0])
        if model is None:
            self.other_services += 1
            return
        if usd:
            self.days_with_data.add(day)
        self.acc.add(day, usd, {"model": model, self.second_dimension: keys[1]})

    def report(self, fetched_at: dt.datetime, *, requests: int) -> CostReport:
        """The month-to-date report; freshness from the newest day with Bedrock data."""
        return snapshot_report(CeSnapshot.of(self, fetched_at, requests=requests), self.acc.period, fetched_at)


# --- reuse between fetches ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CeSnapshot:
    """What a fetch found, small enough to keep between checks (JSON: `to_dict` / `from_dict`)."""

    month: str  # YYYY-MM
    fetched_at: dt.datetime
    daily: tuple[tuple[dt.date, Decimal], ...]
    lines: tuple[tuple[str, str, Decimal], ...]
    newest_day: dt.date | None
    first_estimated: dt.date | None
    requests: int

    @classmethod
    def of(cls, totals: CeTotals, fetched_at: dt.datetime, *, requests: int) -> CeSnapshot:
        return cls(
            month=totals.acc.period.key,
            fetched_at=fetched_at,
            daily=tuple((d.day, d.amount) for d in totals.acc.daily()),
            lines=tuple((b.dimension, b.key, b.amount) for b in totals.acc.breakdown()),
            newest_day=max(totals.days_with_data, default=None),
            first_estimated=min(totals.estimated_days, default=None),
            requests=requests,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "fetched_at": self.fetched_at.isoformat(),
            "daily": [[d.isoformat(), str(a)] for d, a in self.daily],
            "lines": [[dim, key, str(a)] for dim, key, a in self.lines],
            "newest_day": self.newest_day.isoformat() if self.newest_day else None,
            "first_estimated": self.first_estimated.isoformat() if self.first_estimated else None,
            "requests": self.requests,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> CeSnapshot:
        """Strict: a snapshot that does not parse is not reused (the caller fetches instead)."""
        try:
            fetched = dt.datetime.fromisoformat(doc["fetched_at"])
            if fetched.tzinfo is None:
                raise ValueError("naive fetched_at")
            return cls(
                month=str(doc["month"]),
                fetched_at=fetched.astimezone(UTC),
                daily=tuple((dt.date.fromisoformat(d), Decimal(a)) for d, a in doc["daily"]),
                lines=tuple((str(dim), str(key), Decimal(a)) for dim, key, a in doc["lines"]),
                newest_day=dt.date.fromisoformat(doc["newest_day"]) if doc["newest_day"] else None,
                first_estimated=dt.date.fromisoformat(doc["first_estimated"]) if doc["first_estimated"] else None,
                requests=int(doc["requests"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"not a Cost Explorer snapshot: {type(exc).__name__}") from None


def snapshot_report(snap: CeSnapshot, period: BillingPeriod, fetched_at: dt.datetime) -> CostReport:
    """A `CostReport` for `period` from a snapshot; days after its fetch are unknown, not $0."""
    if snap.month != period.key:
        raise ValueError(f"snapshot of {snap.month} cannot serve {period.key}")
    daily = tuple(DailyCost(d, a) for d, a in snap.daily if d <= period.today)
    known = {d.day for d in daily}
    missing = next((d.day for d in _month_days(period) if d.day not in known), None)
    if snap.newest_day is not None:
        as_of: dt.datetime | None = min(
            snap.fetched_at, dt.datetime.combine(snap.newest_day + dt.timedelta(days=1), dt.time(), UTC)
        )
    else:
        as_of = None
    note = f"Cost Explorer data fetched {snap.fetched_at:%b %d %H:%M} UTC (it refreshes up to three times a day)"
    if snap.first_estimated is not None:
        note += f"; amounts from {snap.first_estimated:%b %d} are AWS estimates"
    reused = snap.fetched_at < fetched_at
    notes = (f"reused the last Cost Explorer result ({snap.requests} paid request(s))",) if reused else ()
    if not reused and snap.requests > 1:
        cost = usd(PRICE_PER_REQUEST_USD * snap.requests)
        notes = (f"Cost Explorer answered in {snap.requests} pages, each a paid request ({cost})",)
    return CostReport(
        period=period,
        mtd_usd=sum((d.amount for d in daily), Decimal(0)),
        daily=daily,
        breakdown=tuple(BreakdownLine(dim, key, a) for dim, key, a in snap.lines),
        freshness=Freshness(as_of=as_of, note=note, missing_from=missing),
        notes=notes,
        requests=0 if reused else snap.requests,
    )


def _month_days(period: BillingPeriod) -> tuple[DailyCost, ...]:
    return CostAccumulator(period).daily()


# --- cadence: Cost Explorer charges per request ------------------------------------------------


def fetches_per_day(every_hours: int) -> int:
    """Fetch slots in a UTC day: slot = hour // every_hours, so at most ceil(24 / every_hours)."""
    if not 1 <= every_hours <= 24:
        raise ValueError("fetch_every_hours must be between 1 and 24")
    return -(-24 // every_hours)


def monthly_cost_usd(every_hours: int, requests_per_fetch: int = 1, days: int = 31) -> Decimal:
    """The most a month of fetches can cost at $0.01 per request (each page is a request)."""
    return PRICE_PER_REQUEST_USD * days * fetches_per_day(every_hours) * requests_per_fetch


def default_fetch_every_hours(requests_per_fetch: int = 1) -> int:
    """The shortest interval whose 31-day month stays under $1: 8 h (93 requests, $0.93) for one page."""
    for hours in range(1, 25):
        if monthly_cost_usd(hours, requests_per_fetch) < MONTHLY_CEILING_USD:
            return hours
    return 24


@dataclasses.dataclass(frozen=True)
class FetchDecision:
    fetch: bool
    reason: str
    as_of: dt.datetime | None  # the instant the data used was fetched (now when fetching)


def decide_fetch(now: dt.datetime, last_fetched_at: dt.datetime | None, every_hours: int) -> FetchDecision:
    """Fetch now, or reuse the last result. Slots are aligned to UTC midnight (0-8-16 for 8 h), so an
    hourly scheduler that runs a little early or late never adds a fetch, and a new UTC month (or
    day) always starts with one. A last fetch in the future (clock skew) does not block a fetch."""
    slots = fetches_per_day(every_hours)  # validates every_hours
    now = now.astimezone(UTC)
    if last_fetched_at is None:
        return FetchDecision(True, "no earlier result", now)
    last = last_fetched_at.astimezone(UTC)
    if last > now:
        return FetchDecision(True, "the last fetch is in the future (clock skew)", now)
    if (last.year, last.month) != (now.year, now.month):
        return FetchDecision(True, "a new UTC month", now)
    if last.date() != now.date() or last.hour // every_hours != now.hour // every_hours:
        return FetchDecision(True, f"a new {every_hours}-hour slot ({slots} a day)", now)
    return FetchDecision(False, f"fetched {last:%H:%M} UTC, in this {every_hours}-hour slot", last)


# --- Cost Explorer errors (JSON 1.1 protocol) --------------------------------------------------

_CE_ERRORS: dict[str, tuple[Cause, str]] = {
    "UnrecognizedClientException": (Cause.AUTH, "AWS does not recognise the access key"),
    "InvalidClientTokenId": (Cause.AUTH, "AWS does not recognise the access key"),
    "InvalidSignatureException": (Cause.AUTH, "the request signature was refused (wrong secret key?)"),
    "IncompleteSignature": (Cause.AUTH, "the request signature was refused"),
    "MissingAuthenticationToken": (Cause.AUTH, "the request carried no credentials"),
    "ExpiredTokenException": (Cause.AUTH, "the temporary AWS credentials expired"),
    "AccessDeniedException": (Cause.PERMISSION, "the AWS identity lacks ce:GetCostAndUsage"),
    "ThrottlingException": (Cause.RATE_LIMIT, "Cost Explorer throttled the request"),
    "LimitExceededException": (Cause.RATE_LIMIT, "Cost Explorer request limit exceeded"),
    "DataUnavailableException": (Cause.NOT_FOUND, "Cost Explorer has no data (is it enabled? it takes ~24 h)"),
    "BillExpirationException": (Cause.CLIENT_ERROR, "the requested bill has expired"),
    "InvalidNextTokenException": (Cause.BAD_RESPONSE, "Cost Explorer refused its own NextPageToken"),
    "RequestChangedException": (Cause.BAD_RESPONSE, "the request changed between pages"),
    "ValidationException": (Cause.CLIENT_ERROR, "Cost Explorer refused the request as invalid"),
}
_ERROR_BODY_CAP = 64 * 1024
_TYPE_RE = re.compile(rb'"__type"\s*:\s*"([A-Za-z0-9_.:#/-]{1,200})"')
_RAW_CAP = 256 * 1024  # an STS answer is ~2 KB, an ID token ~1 KB


def ce_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Classify an AWS JSON-protocol error: `__type` (or `x-amzn-ErrorType`) first, then the status.

    Only the error's *name* is kept: AWS messages can quote the canonical request, which carries the
    session token (SignatureDoesNotMatch), so they never reach a log or Slack.
    """
    name = ""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("__type"), str):
            name = doc["__type"]
    except ValueError:  # not JSON, or cut at the cap: the type usually comes first
        found = _TYPE_RE.search(body[:4096])
        name = found.group(1).decode("ascii", "replace") if found else ""
    name = (name or headers.get("x-amzn-errortype", "")).split(":")[0].rsplit("#", 1)[-1].strip()
    if name in _CE_ERRORS:
        cause, words = _CE_ERRORS[name]
        return ProviderError(cause, f"Cost Explorer: HTTP {status} {name}: {words}", status=status)
    cause = {401: Cause.AUTH, 403: Cause.PERMISSION, 404: Cause.NOT_FOUND, 429: Cause.RATE_LIMIT}.get(
        status, Cause.SERVER_ERROR if status >= 500 else Cause.CLIENT_ERROR
    )
    return ProviderError(cause, f"Cost Explorer: HTTP {status} {name[:60] or 'error'}", status=status)


def _classify_ce_error(response: httpx.Response) -> None:
    """Response hook: AWS sends typed client errors as 400/403 (ThrottlingException is a 400), which a
    status alone misclassifies. 429/5xx pass through to `request_json`'s retry policy untouched.

    The body is read raw and capped: an encoded error body is not decoded (httpx's decoders inflate a
    whole chunk at once, see `_http`), and the `x-amzn-ErrorType` header classifies it instead."""
    if response.status_code not in (400, 403):
        return
    body = _raw_capped(response, _ERROR_BODY_CAP)
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        body = b""
    raise ce_error(response.status_code, response.headers, body)


def _raw_capped(response: httpx.Response, cap: int) -> bytes:
    """Up to `cap` bytes of the body as sent (no Content-Encoding decoding)."""
    if response.is_stream_consumed:  # an in-memory response (httpx.MockTransport): nothing left on a wire
        return response.content[:cap]
    body = b""
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > cap:
            break
    return body[:cap]


def configure_ce_client(client: httpx.Client, creds: Credentials) -> httpx.Client:
    """Make a client from `_http.make_client(CE_BASE_URL)` speak Cost Explorer: target, SigV4, typed errors."""
    client.headers["X-Amz-Target"] = CE_TARGET
    client.auth = SigV4Auth(creds, region=CE_REGION, service=CE_SERVICE)
    client.event_hooks["response"] = [*client.event_hooks["response"], _classify_ce_error]
    return client


def fetch_snapshot(
    client: httpx.Client,
    period: BillingPeriod,
    *,
    deadline: Deadline,
    fetched_at: dt.datetime,
    metric: str = DEFAULT_METRIC,
    second_group: str = "USAGE_TYPE",
    linked_account: str | None = None,
) -> CeSnapshot:
    """Every page of the month's `GetCostAndUsage`, summed. A repeated token or > MAX_PAGES pages fails.

    Either breakdown costs one request: `USAGE_TYPE` splits every model (first-party ones by usage
    type), `LINKED_ACCOUNT` splits by account (Marketplace models still by name, from SERVICE).
    """
    totals = CeTotals(period, metric, second_group.lower())
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        body = ce_request(
            period, metric=metric, second_group=second_group, linked_account=linked_account, page_token=token
        )
        token = totals.add_page(request_json(client, "POST", "/", json_body=body, deadline=deadline))
        if token is None:
            return CeSnapshot.of(totals, fetched_at, requests=totals.pages)
        if token in seen:
            raise _bad("pagination loop: the same NextPageToken came back twice")
        seen.add(token)
    raise _bad(f"more than {MAX_PAGES} pages (each a paid request): stopped")


def fetch_cost_and_usage(
    client: httpx.Client,
    period: BillingPeriod,
    *,
    deadline: Deadline,
    fetched_at: dt.datetime,
    metric: str = DEFAULT_METRIC,
    second_group: str = "USAGE_TYPE",
    linked_account: str | None = None,
) -> CostReport:
    """`fetch_snapshot` as a report for `period`."""
    snap = fetch_snapshot(
        client, period, deadline=deadline, fetched_at=fetched_at, metric=metric,
        second_group=second_group, linked_account=linked_account,
    )  # fmt: skip
    return snapshot_report(snap, period, fetched_at)


def cached_report(
    period: BillingPeriod,
    last: CeSnapshot | None,
    every_hours: int,
    fetch: Callable[[], CeSnapshot],
) -> tuple[CostReport, CeSnapshot]:
    """The month's report, fetched only when `decide_fetch` says so; otherwise `last`, with its own fetch time.

    Returns the snapshot to keep for the next check. A failed fetch raises (a classified failure): an
    older result is never passed off as this check's answer.
    """
    now = period.now
    usable = last if last is not None and last.month == period.key else None
    decision = decide_fetch(now, usable.fetched_at if usable else None, every_hours)
    if decision.fetch or usable is None:
        usable = fetch()
    return snapshot_report(usable, period, now), usable


# --- credentials: Google ID token → STS AssumeRoleWithWebIdentity ------------------------------


@dataclasses.dataclass(frozen=True)
class TemporaryCredentials:
    creds: Credentials
    expiration: dt.datetime
    assumed_role_arn: str | None

    def usable(self, now: dt.datetime) -> bool:
        """Good for a whole check: more than five minutes left."""
        return now.astimezone(UTC) < self.expiration - CREDENTIAL_MARGIN


def _raw(
    client: httpx.Client, method: str, url: str, *, deadline: Deadline, what: str, **kw: Any
) -> tuple[int, httpx.Headers, bytes]:
    """One bounded non-JSON request (STS XML, the metadata server's text): `_http.request_json` reads JSON only.

    Asks for an unencoded answer and refuses an encoded one, so no decoder can be made to inflate a
    bomb; the body is capped at `_RAW_CAP` as sent. No retry: both calls are cheap to redo next check."""
    left = deadline.remaining()
    if left <= 0.05:
        raise ProviderError(Cause.TIMEOUT, f"{what}: no time left in the check's deadline")
    headers = {**kw.pop("headers", {}), "Accept-Encoding": "identity"}
    timeout = httpx.Timeout(min(10.0, left), connect=min(5.0, left))
    try:
        with client.stream(method, url, headers=headers, timeout=timeout, **kw) as resp:
            if resp.headers.get("content-encoding", "identity").strip().lower() != "identity":
                raise ProviderError(Cause.BAD_RESPONSE, f"{what}: an encoded answer to Accept-Encoding: identity")
            body = _raw_capped(resp, _RAW_CAP + 1)
            if len(body) > _RAW_CAP:
                raise ProviderError(Cause.BAD_RESPONSE, f"{what}: answer over {_RAW_CAP // 1024} KiB")
            return resp.status_code, resp.headers, body
    except httpx.TimeoutException:
        raise ProviderError(Cause.TIMEOUT, f"{what}: timed out") from None
    except httpx.HTTPError as exc:
        raise ProviderError(Cause.CONNECTION, f"{what}: {type(exc).__name__}") from None


def metadata_base_url(env: Mapping[str, str]) -> str:
    """`http://metadata.google.internal`, or `GCE_METADATA_HOST` ("an alternate hostname or host:port to be
    used for GCE metadata requests", google-auth `environment_vars.py`) — how a test points at a fake."""
    host = env.get("GCE_METADATA_HOST", "").strip() or METADATA_HOST
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
        raise ValueError("GCE_METADATA_HOST must be a host or host:port")
    return f"http://{host}"


def id_token_request(audience: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Path, query and headers of the metadata server's ID-token call (google-auth's
    `compute_engine.IDTokenCredentials`: `instance/service-accounts/default/identity?audience=…&format=full`)."""
    return ID_TOKEN_PATH, {"audience": audience, "format": "full"}, {"Metadata-Flavor": "Google"}


def parse_id_token(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """The raw JWT, or a classified failure. The token itself never goes into a message."""
    if status == 404:
        raise ProviderError(
            Cause.NOT_FOUND, "metadata server: no ID token (not on Google Cloud, or no service account)"
        )
    if status != 200:
        raise ProviderError(Cause.AUTH, f"metadata server: HTTP {status} for the ID token", status=status)
    if headers.get("metadata-flavor") != "Google":
        raise ProviderError(Cause.BAD_RESPONSE, "metadata server: answer without Metadata-Flavor: Google")
    token = body.decode("ascii", "replace").strip()
    if not _JWT_RE.match(token):
        raise ProviderError(Cause.BAD_RESPONSE, "metadata server: the ID token is not a JWT")
    return token


def fetch_id_token(client: httpx.Client, audience: str, *, deadline: Deadline) -> str:
    path, params, headers = id_token_request(audience)
    status, got, body = _raw(
        client, "GET", path, params=params, headers=headers, deadline=deadline, what="metadata server"
    )
    return parse_id_token(status, got, body)


def sts_form(role_arn: str, token: str, session_name: str = "llm-budget-alert") -> dict[str, str]:
    """The unsigned `AssumeRoleWithWebIdentity` form (STS query protocol, Version 2011-06-15)."""
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", role_arn):
        raise ValueError("role_arn must look like arn:aws:iam::<12 digits>:role/<name>")
    return {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": token,
        "DurationSeconds": str(STS_DURATION_S),
    }


_STS_ERRORS: dict[str, tuple[Cause, str]] = {
    "AccessDenied": (Cause.PERMISSION, "the AWS role does not trust this service account"),
    "IDPRejectedClaim": (Cause.PERMISSION, "the AWS role does not trust this service account"),
    "InvalidIdentityToken": (Cause.AUTH, "AWS rejected the Google ID token"),
    "ExpiredTokenException": (Cause.AUTH, "AWS rejected the Google ID token as expired"),
    "IDPCommunicationError": (Cause.SERVER_ERROR, "AWS could not reach Google to check the token"),
    "RegionDisabledException": (Cause.PERMISSION, "STS is disabled in this AWS region"),
    "Throttling": (Cause.RATE_LIMIT, "STS throttled the request"),
}


def parse_sts(status: int, body: bytes, now: dt.datetime) -> TemporaryCredentials:
    """Credentials from STS's XML answer; `<ErrorResponse>` and drifted shapes are classified failures.

    Only `Credentials/*` is required (moto leaves out `Provider`, `Audience` and the subject).
    ElementTree resolves no external entities, and expat (>= 2.4.1) refuses entity expansion bombs.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        cause = Cause.SERVER_ERROR if status >= 500 else Cause.BAD_RESPONSE
        raise ProviderError(cause, f"STS: HTTP {status}, not XML", status=status) from None
    if root.tag.endswith("ErrorResponse"):
        code = (root.findtext(f"{STS_NS}Error/{STS_NS}Code") or root.findtext("Error/Code") or "").strip()
        cause, words = _STS_ERRORS.get(code, (Cause.SERVER_ERROR if status >= 500 else Cause.CLIENT_ERROR, "refused"))
        raise ProviderError(cause, f"STS: HTTP {status} {code[:60] or 'error'}: {words}", status=status)
    if status != 200 or root.tag != f"{STS_NS}AssumeRoleWithWebIdentityResponse":
        raise ProviderError(Cause.BAD_RESPONSE, f"STS: HTTP {status}, not an AssumeRoleWithWebIdentity answer")
    base = f"{STS_NS}AssumeRoleWithWebIdentityResult/"
    fields = {
        name: (root.findtext(f"{base}{STS_NS}Credentials/{STS_NS}{name}") or "").strip()
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    }
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ProviderError(Cause.BAD_RESPONSE, f"STS: Credentials without {', '.join(missing)}")
    try:
        expiration = dt.datetime.fromisoformat(fields["Expiration"].replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(Cause.BAD_RESPONSE, "STS: Expiration is not an ISO-8601 instant") from None
    if expiration.tzinfo is None:
        raise ProviderError(Cause.BAD_RESPONSE, "STS: Expiration has no time zone")
    if expiration.astimezone(UTC) <= now.astimezone(UTC):
        raise ProviderError(Cause.BAD_RESPONSE, "STS: the credentials it returned have already expired")
    arn = root.findtext(f"{base}{STS_NS}AssumedRoleUser/{STS_NS}Arn")
    creds = Credentials(fields["AccessKeyId"], fields["SecretAccessKey"], fields["SessionToken"])
    return TemporaryCredentials(creds, expiration.astimezone(UTC), arn.strip() if arn else None)


def assume_role(
    client: httpx.Client, role_arn: str, token: str, *, deadline: Deadline, now: dt.datetime
) -> TemporaryCredentials:
    """Exchange the Google ID token for temporary AWS credentials (one unsigned form POST to STS)."""
    status, _, body = _raw(client, "POST", "/", data=sts_form(role_arn, token), deadline=deadline, what="STS")
    return parse_sts(status, body, now)


def key_pair(secret_text: str) -> Credentials:
    """The fallback: `{"access_key_id": "AKIA…", "secret_access_key": "…"}` from Secret Manager."""
    try:
        doc = json.loads(secret_text)
    except ValueError:
        raise ProviderError(Cause.SECRET, "AWS key pair secret is not JSON") from None
    if not isinstance(doc, dict) or set(doc) - {"access_key_id", "secret_access_key"}:
        raise ProviderError(Cause.SECRET, "AWS key pair secret must hold exactly access_key_id and secret_access_key")
    ak, sk = doc.get("access_key_id"), doc.get("secret_access_key")
    if not (isinstance(ak, str) and re.fullmatch(r"[A-Z0-9]{16,128}", ak) and isinstance(sk, str) and sk.strip()):
        raise ProviderError(Cause.SECRET, "AWS key pair secret: access_key_id or secret_access_key is malformed")
    return Credentials(ak, sk.strip())


# --- the source --------------------------------------------------------------------------------

KEY_ENV = "AWS_COST_EXPLORER_KEY_PAIR"  # local runs: the key pair JSON in an environment variable
DEFAULT_AUDIENCE = "sts.amazonaws.com"
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


class BedrockAccount(KeyedAccount):
    """One AWS account (or a payer's view of one member account) whose Bedrock spend is read.

    Credentials: `role_arn` (preferred: the function's Google identity is exchanged with STS, no
    static key) or an access key pair (`key_secret` / `key_env`, JSON `{"access_key_id", "secret_access_key"}`).
    """

    role_arn: str | None = Field(default=None, description="arn:aws:iam::<account>:role/<name> trusting the function")
    audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1, max_length=200)
    metric: Literal["UnblendedCost", "NetUnblendedCost"] = "UnblendedCost"
    breakdown: Literal["usage_type", "linked_account"] = "usage_type"
    linked_account: str | None = Field(default=None, pattern=r"^\d{12}$")
    fetch_every_hours: int = Field(default_factory=lambda: default_fetch_every_hours(), ge=1, le=24)

    @field_validator("role_arn")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and not _ROLE_RE.match(v):
            raise ValueError("must look like arn:aws:iam::123456789012:role/llm-budget-alert-ce-read")
        return v

    @model_validator(mode="after")
    def _one_credential(self) -> BedrockAccount:
        if self.role_arn and (self.key_secret or self.key_env):
            raise ValueError("set either role_arn (federation) or a key pair (key_secret / key_env), not both")
        return self

    def memo_key(self) -> str:
        """The cache key: a snapshot answers only the same account, metric and breakdown."""
        who = self.role_arn or self.key_secret or self.key_env or KEY_ENV
        return f"bedrock/{self.label}/{self.metric}/{self.breakdown}/{self.linked_account or '-'}/{who}"


def sts_base_url(ce_base_url: str) -> str:
    """AWS's STS endpoint for AWS's CE endpoint; a local AWS (moto) serves every service on its one URL."""
    return STS_BASE_URL if ce_base_url.rstrip("/") == CE_BASE_URL else ce_base_url


@dataclasses.dataclass
class BedrockCosts:
    account: BedrockAccount
    deps: Deps
    env: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
    provider: str = "bedrock"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def credentials(self, deadline: Deadline, now: dt.datetime) -> Credentials:
        """Temporary credentials from the Google identity (role_arn), else the key pair."""
        base = self.deps.base_urls[SPEC.name]
        if self.account.role_arn is None:
            return key_pair(admin_key(self.deps, KEY_ENV, self.account, "AWS key pair", deadline))
        with self.deps.http_factory(metadata_base_url(self.env)) as meta:
            token = fetch_id_token(meta, self.account.audience, deadline=deadline)
        with self.deps.http_factory(sts_base_url(base)) as sts:
            return assume_role(sts, self.account.role_arn, token, deadline=deadline, now=now).creds

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        memo = self.deps.memo
        key = self.account.memo_key()
        last = None
        stored = memo.load(key) if memo is not None else None
        if stored is not None:
            with contextlib.suppress(ValueError):
                last = CeSnapshot.from_dict(stored)
        fetched: list[CeSnapshot] = []

        def fetch_now() -> CeSnapshot:
            creds = self.credentials(deadline, period.now)
            with configure_ce_client(self.deps.http_factory(self.deps.base_urls[SPEC.name]), creds) as ce:
                snap = fetch_snapshot(
                    ce, period, deadline=deadline, fetched_at=period.now, metric=self.account.metric,
                    second_group=self.account.breakdown.upper(), linked_account=self.account.linked_account,
                )  # fmt: skip
            fetched.append(snap)
            return snap

        report, snap = cached_report(period, last, self.account.fetch_every_hours, fetch_now)
        if fetched and memo is not None:
            memo.save(key, snap.to_dict())
        return report


def from_config(account: Any, deps: Deps) -> BedrockCosts:
    assert isinstance(account, BedrockAccount)
    return BedrockCosts(account, deps)


SPEC = ProviderSpec(
    name="bedrock",
    title="AWS Bedrock",
    console_url="https://us-east-1.console.aws.amazon.com/costmanagement/home#/cost-explorer",
    account_schema=BedrockAccount,
    build=from_config,
    key_env=KEY_ENV,
    base_url_env="AWS_COST_EXPLORER_BASE_URL",
    default_base_url=CE_BASE_URL,
)
