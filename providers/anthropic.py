"""Anthropic organisation cost report: `GET /v1/organizations/cost_report` (admin key).

Units: `amount` is a decimal **string in cents** ("123.78912" = $1.2378912). Buckets are UTC days,
at most 31 per page. `ending_at` is tomorrow 00:00 UTC so today's partial bucket is included
("buckets that end before ending_at"). Priority Tier costs are not in this endpoint.

On the 1st of the month some deployments answer 400 for a range with no complete day; that is
reported as a correct $0 month-to-date with a freshness note, not as a failure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from config import AnthropicAccount
from errors import Cause, ProviderError
from models import UTC, BillingPeriod, CostReport, Freshness
from providers import Deps, admin_key
from providers._aggregate import CostAccumulator, fetch_month, to_decimal
from providers._http import Deadline

PATH = "/v1/organizations/cost_report"
API_VERSION = "2023-06-01"
PAGE_LIMIT = 31
DATA_LAG = dt.timedelta(minutes=5)  # "typically appears within 5 minutes"
HUNDRED = 100


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
    if doc.get("type") == "error" or "error" in doc:
        err = doc.get("error")
        kind = err.get("type", "") if isinstance(err, dict) else ""
        raise ProviderError(Cause.BAD_RESPONSE, f"error envelope in a 200 answer ({kind})")
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
                {
                    "model": model if isinstance(model, str) else None,
                    "workspace": workspace if isinstance(workspace, str) else "Default",
                },
            )


@dataclasses.dataclass
class AnthropicCosts:
    account: AnthropicAccount
    deps: Deps
    provider: str = "anthropic"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, "anthropic", self.account, "Anthropic admin key", deadline)
        counter = [0]
        tomorrow = dt.datetime.combine(period.today + dt.timedelta(days=1), dt.time(), UTC)
        params: list[tuple[str, str | int]] = [
            ("starting_at", period.start.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("ending_at", tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("bucket_width", "1d"),
            ("group_by[]", "description"),
            ("group_by[]", "workspace_id"),
        ]
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        with self.deps.http_factory(self.deps.base_urls["anthropic"], headers=headers) as client:
            try:
                acc = fetch_month(
                    client, PATH, params, parse_cost_report_page, period,
                    deadline=deadline, counter=counter, limits=(PAGE_LIMIT, 1),
                )  # fmt: skip
            except ProviderError as exc:
                if exc.status == 400 and period.now - period.start < dt.timedelta(days=1):
                    note = "Anthropic reports complete days only: no complete day this month yet"
                    return CostAccumulator(period).report(Freshness(period.start, note), requests=counter[0])
                raise
        newest = max(period.start, period.now - DATA_LAG)
        note = "usage appears within ~5 minutes; today's bucket is still growing"
        return acc.report(Freshness(newest, note), requests=counter[0])


def from_config(account: Any, deps: Deps) -> AnthropicCosts:
    assert isinstance(account, AnthropicAccount)
    return AnthropicCosts(account, deps)
