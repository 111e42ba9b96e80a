"""OpenAI organisation costs: `GET /v1/organization/costs` (admin key).

Units: `amount.value` is a float in **dollars** (not cents). Buckets are UTC days. The window
starts at the 1st 00:00 UTC exactly (a later start would make a partial first bucket) and ends at
now (a future `end_time` has been reported to fail). `limit=31` makes a month one page; cursors are
still followed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, field_validator

from errors import Cause, ProviderError
from models import UTC, BillingPeriod, CostReport, Deadline, Freshness
from providers._aggregate import CostAccumulator, fetch_month, reject_error_envelope, str_or_none, to_decimal
from providers._http import count_requests, request_json
from providers._spec import Deps, KeyedAccount, ProbeResult, ProviderSpec, TeamMatch, admin_key, glob_patterns

__all__ = [
    "PAGE_LIMIT",
    "PATH",
    "PROJECT_ID_RE",
    "SPEC",
    "OpenAIAccount",
    "OpenAICosts",
    "OpenAITeamMatch",
    "from_config",
    "parse_costs_page",
    "probe",
]

PATH = "/v1/organization/costs"
PAGE_LIMIT = 31
KEY_ENV = "OPENAI_ADMIN_KEY"


class OpenAIAccount(KeyedAccount):
    """An OpenAI organisation, read with an admin key."""


# The Costs API's project ids: the spec gives no pattern; its examples and the SDK say "proj_abc" /
# 'proj_123' (openai/openai-openapi openapi.yaml; openai/openai-node src/resources/admin/organization/
# projects/spend-limit.ts). Only the prefix is checked: it rejects a project *name* ("search-prod"),
# an org id ("org-..."), a key ("sk-..."), without guessing the length of a real id.
PROJECT_ID_RE = re.compile(r"^proj_[A-Za-z0-9_]{1,64}$")


class OpenAITeamMatch(TeamMatch):
    """`teams.<t>.match.openai`: projects, and optionally line items (display strings OpenAI may rename)."""

    project_ids: tuple[str, ...] = ()
    line_item_patterns: Annotated[tuple[str, ...], AfterValidator(glob_patterns)] = ()

    @field_validator("project_ids")
    @classmethod
    def _projects(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not PROJECT_ID_RE.match(p):
                raise ValueError(
                    f"{p[:60]!r} is not an OpenAI project id: use the id from platform.openai.com → "
                    'Settings → Projects, e.g. "proj_abc123" (not the project name)'
                )
        return v

    def dims(self) -> tuple[str, ...]:
        return (*(("project",) if self.project_ids else ()), *(("line_item",) if self.line_item_patterns else ()))

    def ids(self) -> frozenset[str] | None:
        return frozenset(self.project_ids) if self.project_ids else None

    def selects(self, cell: Mapping[str, str | None]) -> bool:
        if self.project_ids and cell.get("project") not in self.project_ids:
            return False
        return self._glob(cell.get("line_item"), self.line_item_patterns)


def parse_costs_page(doc: dict[str, Any], acc: CostAccumulator) -> None:
    """Add one `/organization/costs` page to `acc`. An error envelope or drifted shape raises."""
    reject_error_envelope(doc, PATH)
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
            acc.add(
                day,
                usd,
                {"line_item": str_or_none(row.get("line_item")), "project": str_or_none(row.get("project_id"))},
            )


@dataclasses.dataclass
class OpenAICosts:
    account: OpenAIAccount
    deps: Deps
    provider: str = "openai"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        key = admin_key(self.deps, KEY_ENV, self.account, "OpenAI admin key", deadline)
        if int(period.now.timestamp()) <= int(period.start.timestamp()):
            # The first second of a month: an empty window (the API refuses end_time <= start_time).
            return CostAccumulator(period).report(Freshness(period.now, "the month has just begun"), requests=0)
        params: list[tuple[str, str | int]] = [
            ("start_time", int(period.start.timestamp())),
            ("end_time", int(period.now.timestamp())),
            ("bucket_width", "1d"),
            ("group_by", "line_item"),
            ("group_by", "project_id"),
        ]
        headers = {"Authorization": f"Bearer {key}"}
        with self.deps.http_factory(self.deps.base_urls[SPEC.name], headers=headers) as client:
            sent = count_requests(client)
            acc = fetch_month(
                client, PATH, params, parse_costs_page, period,
                deadline=deadline, limits=(PAGE_LIMIT, 1), cell_dims=self.deps.cell_dims.get(SPEC.name),
            )  # fmt: skip
        return acc.report(Freshness(period.now, "near real-time; today's bucket is still growing"), requests=sent.value)


def from_config(account: Any, deps: Deps) -> OpenAICosts:
    assert isinstance(account, OpenAIAccount)
    return OpenAICosts(account, deps)


def probe(account: Any, deps: Deps, now: dt.datetime, deadline: Deadline) -> ProbeResult:
    """Doctor: one page of `/organization/costs` for this month, grouped as the check groups it."""
    period = BillingPeriod.containing(now)
    key = admin_key(deps, KEY_ENV, account, "OpenAI admin key")
    params: list[tuple[str, str | int]] = [
        ("start_time", int(period.start.timestamp())),
        ("end_time", max(int(now.timestamp()), int(period.start.timestamp()) + 1)),
        ("bucket_width", "1d"),
        ("group_by", "line_item"),
        ("group_by", "project_id"),
        ("limit", PAGE_LIMIT),
    ]
    with deps.http_factory(deps.base_urls[SPEC.name], headers={"Authorization": f"Bearer {key}"}) as client:
        doc = request_json(client, "GET", PATH, params=params, deadline=deadline)
    parse_costs_page(doc, CostAccumulator(period))  # the check's own parser: a drifted shape fails here
    results = [r for b in doc["data"] for r in b["results"]]
    grouped = {dim: any(isinstance(r.get(dim), str) for r in results) for dim in ("line_item", "project_id")}
    facts = {"http_status": 200, "buckets": len(doc["data"]), "results": len(results), "grouped": grouped}
    if not results:
        return "ok", "HTTP 200, no cost rows this month yet: grouping not verifiable", facts
    missing = [dim for dim, ok in grouped.items() if not ok]
    if missing:
        return (
            "warn",
            f"HTTP 200, but results are not grouped by {', '.join(missing)}: the repeated group_by was not "
            "honoured (totals are right, the breakdown will be coarser)",
            facts,
        )
    return "ok", f"HTTP 200, {len(results)} result(s) grouped by line_item and project_id", facts


SPEC = ProviderSpec(
    name="openai",
    title="OpenAI",
    console_url="https://platform.openai.com/settings/organization/usage",
    account_schema=OpenAIAccount,
    build=from_config,
    key_env=KEY_ENV,
    base_url_env="OPENAI_BASE_URL",
    default_base_url="https://api.openai.com",
    probe=probe,
    team_match=OpenAITeamMatch,
    mover_dims=("line_item", "project"),
    owner_words={"project": "project", "line_item": "line item"},
)
