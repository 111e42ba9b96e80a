"""OpenAI organisation costs: `GET /v1/organization/costs` (admin key).

Units: `amount.value` is a float in **dollars** (not cents). Buckets are UTC days. The window
starts at the 1st 00:00 UTC exactly (a later start would make a partial first bucket) and ends at
now (a future `end_time` has been reported to fail). `limit=31` makes a month one page; cursors are
still followed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from config import OpenAIAccount
from errors import Cause, ProviderError
from models import UTC, BillingPeriod, CostReport, Freshness
from providers import Deps, admin_key
from providers._aggregate import CostAccumulator, fetch_month, to_decimal
from providers._http import Deadline

PATH = "/v1/organization/costs"
PAGE_LIMIT = 31


def parse_costs_page(doc: dict[str, Any], acc: CostAccumulator) -> None:
    """Add one `/organization/costs` page to `acc`. An error envelope or drifted shape raises."""
    if "error" in doc:
        err = doc["error"]
        msg = err.get("message", "") if isinstance(err, dict) else str(err)
        raise ProviderError(Cause.BAD_RESPONSE, f"error envelope in a 200 answer: {str(msg)[:200]}")
    if doc.get("object") != "page" or not isinstance(doc.get("data"), list):
        raise ProviderError(Cause.BAD_RESPONSE, "expected {'object': 'page', 'data': [...]} from /organization/costs")
    for bucket in doc["data"]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            raise ProviderError(Cause.BAD_RESPONSE, "bucket without a results list")
        start = bucket.get("start_time")
        if not isinstance(start, int) or isinstance(start, bool):
            raise ProviderError(Cause.BAD_RESPONSE, "bucket start_time is not a unix timestamp")
        try:
            day = dt.datetime.fromtimestamp(start, UTC).date()
        except (OverflowError, OSError, ValueError):
            raise ProviderError(Cause.BAD_RESPONSE, f"bucket start_time {start} is out of range") from None
        for row in bucket["results"]:
            if not isinstance(row, dict) or not isinstance(row.get("amount"), dict):
                raise ProviderError(Cause.BAD_RESPONSE, "cost result without an amount object")
            amount = row["amount"]
            currency = amount.get("currency")
            if not isinstance(currency, str) or currency.lower() != "usd":
                raise ProviderError(Cause.BAD_RESPONSE, f"unexpected currency {currency!r} (expected usd)")
            usd = to_decimal(amount.get("value"), what="amount.value")
            acc.add(day, usd, {"line_item": _opt_str(row.get("line_item")), "project": _opt_str(row.get("project_id"))})


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


@dataclasses.dataclass
class OpenAICosts:
    account: OpenAIAccount
    deps: Deps
    provider: str = "openai"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, "openai", self.account, "OpenAI admin key", deadline)
        if int(period.now.timestamp()) <= int(period.start.timestamp()):
            # The first second of a month: an empty window (the API refuses end_time <= start_time).
            return CostAccumulator(period).report(Freshness(period.now, "the month has just begun"), requests=0)
        counter = [0]
        params: list[tuple[str, str | int]] = [
            ("start_time", int(period.start.timestamp())),
            ("end_time", int(period.now.timestamp())),
            ("bucket_width", "1d"),
            ("group_by", "line_item"),
            ("group_by", "project_id"),
        ]
        headers = {"Authorization": f"Bearer {key}"}
        with self.deps.http_factory(self.deps.base_urls["openai"], headers=headers) as client:
            acc = fetch_month(
                client, PATH, params, parse_costs_page, period,
                deadline=deadline, counter=counter, limits=(PAGE_LIMIT, 1),
            )  # fmt: skip
        return acc.report(Freshness(period.now, "near real-time; today's bucket is still growing"), requests=counter[0])


def from_config(account: Any, deps: Deps) -> OpenAICosts:
    assert isinstance(account, OpenAIAccount)
    return OpenAICosts(account, deps)
