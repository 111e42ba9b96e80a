"""Anthropic organisation cost report: `GET /v1/organizations/cost_report` (admin key).

Units: `amount` is a decimal **string in cents** ("123.78912" = $1.2378912). Buckets are UTC days,
at most 31 per page. We ask for `ending_at` = tomorrow 00:00 UTC ("time buckets that end before this
timestamp will be returned", API reference), so a deployment that serves today's partial bucket
returns it; Anthropic's own cookbook only ever asks for complete days (`anthropics/anthropic-cookbook`,
`observability/usage_cost_api.ipynb`: `ending_at = datetime.combine(utcnow(), time.min)`), and other
clients report a ~1-day processing lag. Both happen, so "as of" comes from the buckets returned, never
from the fetch time: a bucket for today that holds data → today so far; otherwise → complete days
through the last bucket's day, and the days after it are *missing* (`Freshness.missing_from`), not $0.

A range with no complete day (the 1st of the month, complete-days deployments) answers
`400 invalid_request_error "Invalid date range: ending date must be after starting date"`
(langwatch/langwatch#7177 and PR #7178; constructorfabric/insight#1901). Only that 400, and only on
the 1st, is a correct $0 month-to-date; any other 400 is a classified failure, on the 1st as any day.

Priority Tier costs are not in this endpoint ("Priority Tier costs are not available in the cost
endpoint", usage-cost guide; the cookbook: they "will never appear in the cost endpoint"), so every
report carries `PRIORITY_TIER_NOTE`: the figure is not the whole Anthropic bill for Priority Tier users.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, field_validator

from errors import Cause, ProviderError
from models import UTC, BillingPeriod, CostReport, Deadline, Freshness
from providers._aggregate import CostAccumulator, fetch_month, reject_error_envelope, str_or_none, to_decimal
from providers._http import count_requests, request_json
from providers._spec import Deps, KeyedAccount, ProbeResult, ProviderSpec, TeamMatch, admin_key, glob_patterns

__all__ = [
    "API_VERSION",
    "PAGE_LIMIT",
    "PATH",
    "PRIORITY_TIER_NOTE",
    "SPEC",
    "WORKSPACE_ID_RE",
    "AnthropicAccount",
    "AnthropicCosts",
    "AnthropicTeamMatch",
    "BucketCoverage",
    "from_config",
    "is_date_range_error",
    "parse_cost_report_page",
    "probe",
]

PATH = "/v1/organizations/cost_report"
API_VERSION = "2023-06-01"
PAGE_LIMIT = 31
DATA_LAG = dt.timedelta(minutes=5)  # "typically appears within 5 minutes" (usage-cost guide)
HUNDRED = 100
DATE_RANGE_ERROR = "invalid date range"  # the 400 for a range holding no complete day (see above)
KEY_ENV = "ANTHROPIC_ADMIN_KEY"
PRIORITY_TIER_NOTE = (
    "Priority Tier costs are not in Anthropic's cost report: with Priority Tier this is not the whole Anthropic bill"
)


class AnthropicAccount(KeyedAccount):
    """An Anthropic organisation, read with an admin key."""


# "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ" in the Cost Report reference; the default
# workspace has no id and comes back null ("Null if not grouping by workspace or for the default
# workspace"; platform.claude.com/docs/en/api/admin/cost_report). The check always groups by
# workspace_id, so null can only mean the default workspace: "default" names it in a team match.
WORKSPACE_ID_RE = re.compile(r"^wrkspc_[A-Za-z0-9]{1,64}$")
DEFAULT_WORKSPACE = "default"


class AnthropicTeamMatch(TeamMatch):
    """`teams.<t>.match.anthropic`: workspaces ("default" for the default one), optionally narrowed by
    cost description or model globs (a model pattern never matches a non-token cost, whose model is null)."""

    ID_FIELD = ("workspace_ids", "workspace")
    PATTERN_FIELDS = (("description_patterns", "description"), ("model_patterns", "model"))
    NULL_ID = DEFAULT_WORKSPACE

    workspace_ids: tuple[str, ...] = ()
    description_patterns: Annotated[tuple[str, ...], AfterValidator(glob_patterns)] = ()
    model_patterns: Annotated[tuple[str, ...], AfterValidator(glob_patterns)] = ()

    @field_validator("workspace_ids")
    @classmethod
    def _workspaces(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for w in v:
            if w != DEFAULT_WORKSPACE and not WORKSPACE_ID_RE.match(w):
                raise ValueError(
                    f"{w[:60]!r} is not a workspace id: use the id from console.anthropic.com → Settings → "
                    'Workspaces, e.g. "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", or "default" for the default workspace'
                )
        return v


def _instant(v: Any, what: str) -> dt.datetime:
    if not isinstance(v, str):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what} is not an RFC 3339 string")
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if t.tzinfo is None:
            raise ProviderError(Cause.BAD_RESPONSE, f"{what} has no UTC offset")
        return t.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what} {v[:40]!r} is not RFC 3339") from None


def parse_cost_report_page(doc: dict[str, Any], acc: CostAccumulator) -> None:
    """Add one `/organizations/cost_report` page to `acc`. An error envelope or drifted shape raises."""
    reject_error_envelope(doc, PATH)
    if not isinstance(doc.get("data"), list):
        raise ProviderError(Cause.BAD_RESPONSE, "expected a data list from /organizations/cost_report")
    for bucket in doc["data"]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            raise ProviderError(Cause.BAD_RESPONSE, "bucket without a results list")
        day = _instant(bucket.get("starting_at"), "starting_at").date()
        for row in bucket["results"]:
            if not isinstance(row, dict):
                raise ProviderError(Cause.BAD_RESPONSE, "cost result is not an object")
            currency = row.get("currency")
            if currency != "USD":
                raise ProviderError(Cause.BAD_RESPONSE, f"unexpected currency {currency!r} (expected USD)")
            raw = row.get("amount")
            if not isinstance(raw, str):
                # Documented as a decimal string in cents; a number here means the shape drifted
                # and the unit can no longer be trusted.
                raise ProviderError(
                    Cause.BAD_RESPONSE, f"amount is {type(raw).__name__}, expected a decimal string in cents"
                )
            usd = to_decimal(raw, what="amount") / HUNDRED
            model = row.get("model") or row.get("description")
            workspace = row.get("workspace_id")
            acc.add(
                day,
                usd,
                {"model": str_or_none(model), "workspace": str_or_none(workspace) or "Default"},
                raw={
                    "workspace": str_or_none(workspace),  # None: the default workspace
                    "description": str_or_none(row.get("description")),
                    "model": str_or_none(row.get("model")),
                },
            )


@dataclasses.dataclass
class BucketCoverage:
    """The newest bucket a cost report returned, and whether it held any cost row."""

    newest_end: dt.datetime | None = None
    newest_has_rows: bool = False

    def see_page(self, doc: dict[str, Any]) -> None:
        """Record the buckets of one page (already accepted by `parse_cost_report_page`)."""
        for bucket in doc["data"]:
            start = _instant(bucket.get("starting_at"), "starting_at")
            end = _instant(bucket.get("ending_at"), "ending_at")
            if end <= start:
                raise ProviderError(Cause.BAD_RESPONSE, "bucket ending_at is not after its starting_at")
            rows = bool(bucket["results"])
            if self.newest_end is None or end > self.newest_end:
                self.newest_end, self.newest_has_rows = end, rows
            elif end == self.newest_end:
                self.newest_has_rows = self.newest_has_rows or rows

    def freshness(self, period: BillingPeriod) -> Freshness:
        """As of the data: today so far if today's bucket holds rows, else complete days through a date."""
        today = dt.datetime.combine(period.today, dt.time(), UTC)
        if self.newest_end is not None and self.newest_end > today and self.newest_has_rows:
            return Freshness(
                max(period.start, period.now - DATA_LAG),
                "today so far: usage appears within ~5 minutes; today's bucket is still growing",
            )
        # No bucket for today, or an empty one (a day still being processed looks the same as a
        # quiet one): the data ends at the newest complete bucket, and today is missing, not $0.
        end = min(self.newest_end or period.start, today)
        missing_from = max(end, period.start).date()
        through = missing_from - dt.timedelta(days=1)
        none_yet = f" (no complete day of {period.key} yet)" if missing_from <= period.first_day else ""
        note = f"complete days through {through:%b %d}{none_yet}; nothing reported for today yet"
        return Freshness(max(end, period.start), note, missing_from=missing_from)


def is_date_range_error(exc: ProviderError) -> bool:
    """The 400 Anthropic answers for a range with no complete day (and only that one)."""
    return exc.status == 400 and DATE_RANGE_ERROR in exc.message.lower()


@dataclasses.dataclass
class AnthropicCosts:
    account: AnthropicAccount
    deps: Deps
    provider: str = "anthropic"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, KEY_ENV, self.account, "Anthropic admin key", deadline)
        tomorrow = dt.datetime.combine(period.today + dt.timedelta(days=1), dt.time(), UTC)
        params: list[tuple[str, str | int]] = [
            ("starting_at", period.start.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("ending_at", tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("bucket_width", "1d"),
            ("group_by[]", "description"),
            ("group_by[]", "workspace_id"),
        ]
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        coverage = BucketCoverage()

        def parse(doc: dict[str, Any], acc: CostAccumulator) -> None:
            parse_cost_report_page(doc, acc)
            coverage.see_page(doc)

        with self.deps.http_factory(self.deps.base_urls[SPEC.name], headers=headers) as client:
            sent = count_requests(client)
            try:
                acc = fetch_month(
                    client, PATH, params, parse, period,
                    deadline=deadline, limits=(PAGE_LIMIT, 1), cell_dims=self.deps.cell_dims.get(SPEC.name),
                )  # fmt: skip
            except ProviderError as exc:
                if is_date_range_error(exc) and period.today == period.first_day:
                    acc, coverage = CostAccumulator(period, self.deps.cell_dims.get(SPEC.name)), BucketCoverage()
                else:
                    raise
        report = acc.report(coverage.freshness(period), requests=sent.value)
        return dataclasses.replace(report, notes=(*report.notes, PRIORITY_TIER_NOTE))


def from_config(account: Any, deps: Deps) -> AnthropicCosts:
    assert isinstance(account, AnthropicAccount)
    return AnthropicCosts(account, deps)


def probe(account: Any, deps: Deps, now: dt.datetime, deadline: Deadline) -> ProbeResult:
    """Doctor: `/organizations/cost_report` from yesterday (or the 1st) to tomorrow: is today's bucket served?"""
    period = BillingPeriod.containing(now)
    today = dt.datetime.combine(now.astimezone(UTC).date(), dt.time(), UTC)
    start = max(period.start, today - dt.timedelta(days=1))
    key = admin_key(deps, KEY_ENV, account, "Anthropic admin key")
    params: list[tuple[str, str | int]] = [
        ("starting_at", start.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", (today + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("bucket_width", "1d"),
        ("group_by[]", "description"),
        ("group_by[]", "workspace_id"),
        ("limit", PAGE_LIMIT),
    ]
    headers = {"x-api-key": key, "anthropic-version": API_VERSION}
    with deps.http_factory(deps.base_urls[SPEC.name], headers=headers) as client:
        doc = request_json(client, "GET", PATH, params=params, deadline=deadline)
    parse_cost_report_page(doc, CostAccumulator(period))  # the check's own parser
    starts = [_lenient_instant(b.get("starting_at")) for b in doc["data"]]
    ends = [_lenient_instant(b.get("ending_at")) for b in doc["data"]]
    newest_end = max((e for e in ends if e is not None), default=None)
    served = today in starts
    facts = {
        "http_status": 200,
        "buckets": len(doc["data"]),
        "newest_bucket_end": newest_end.isoformat() if newest_end else None,
        "today_served": served,
    }
    if not served:
        shown = f"{newest_end:%Y-%m-%d %H:%M}Z" if newest_end else "none"
        return "warn", f"HTTP 200, but no bucket for today (newest bucket ends {shown}): MTD will lag", facts
    return "ok", f"HTTP 200, today's bucket is served (newest bucket ends {newest_end:%Y-%m-%d %H:%M}Z)", facts


def _lenient_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


SPEC = ProviderSpec(
    name="anthropic",
    title="Anthropic",
    console_url="https://console.anthropic.com/settings/cost",
    account_schema=AnthropicAccount,
    build=from_config,
    key_env=KEY_ENV,
    base_url_env="ANTHROPIC_BASE_URL",
    default_base_url="https://api.anthropic.com",
    probe=probe,
    team_match=AnthropicTeamMatch,
    mover_dims=("model", "workspace"),
    owner_words={"workspace": "workspace", "model": "model", "description": "cost"},
)
