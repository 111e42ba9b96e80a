"""OpenAI organisation costs: `GET /v1/organization/costs` (admin key), plus the hard spend limits.

Units: `amount.value` is a float in **dollars** (not cents). Buckets are UTC days. The window
starts at the 1st 00:00 UTC exactly (a later start would make a partial first bucket) and ends at
now (a future `end_time` has been reported to fail). `limit=31` makes a month one page; cursors are
still followed.

Headroom is context: the organisation's hard spend limit (`GET /v1/organization/spend_limit`) and
those of the projects the teams name or that spent this month (`GET /v1/organization/projects/{id}/
spend_limit`, at most `MAX_PROJECT_LIMITS`), in **integer cents**. A limit's failure is a note, never
a failed account; only the GETs in `READ_CALLS` are ever sent.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, field_validator

from errors import Cause, ProviderError
from models import UTC, ZERO, BillingPeriod, CostCell, CostReport, Deadline, Freshness, Headroom
from providers._aggregate import CostAccumulator, fetch_month, reject_error_envelope, str_or_none, to_decimal
from providers._http import count_requests, request_json
from providers._spec import Deps, KeyedAccount, ProbeResult, ProviderSpec, TeamMatch, admin_key, glob_patterns

__all__ = [
    "MAX_PROJECT_LIMITS",
    "ORG_SPEND_LIMIT",
    "PAGE_LIMIT",
    "PATH",
    "PROJECT_ID_RE",
    "PROJECT_SPEND_LIMIT",
    "READ_CALLS",
    "SPEC",
    "OpenAIAccount",
    "OpenAICosts",
    "OpenAITeamMatch",
    "SpendLimit",
    "from_config",
    "limit_projects",
    "parse_costs_page",
    "parse_spend_limit",
    "probe",
]

PATH = "/v1/organization/costs"
COSTS = ("GET", PATH)
ORG_SPEND_LIMIT = ("GET", "/v1/organization/spend_limit")
PROJECT_SPEND_LIMIT = ("GET", "/v1/organization/projects/{project}/spend_limit")
READ_CALLS: frozenset[tuple[str, str]] = frozenset({COSTS, ORG_SPEND_LIMIT, PROJECT_SPEND_LIMIT})
"""Every (method, path template) this module may send. `_call` refuses anything else: the same paths
take POST (create or replace a limit) and DELETE (remove it), which the alerter must never send."""
MAX_PROJECT_LIMITS = 20  # project limits read per account and check: one request each
LIMIT_WORKERS = 4  # concurrent limit reads (the org's, then the projects') beside the costs pages
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

    ID_FIELD = ("project_ids", "project")
    PATTERN_FIELDS = (("line_item_patterns", "line_item"),)

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


# --- hard spend limits (integer cents) ---------------------------------------------------------
#
# openai/openai-node src/resources/admin/organization/spend-limit.ts (OrganizationSpendLimit, commit
# 04671d278ef1531692ae31a870251eec90f3c2d2) and .../projects/spend-limit.ts (ProjectSpendLimit, commit
# 6369d9bb010aec7e9ef93394e7551f1c515d1e60), both generated from OpenAI's OpenAPI spec:
#   object: 'organization.spend_limit' | 'project.spend_limit'
#   threshold_amount: number   "The hard spend limit amount, in cents."
#   currency: "Currently, only `USD` is supported."   interval: "Currently, only `month` is supported."
#   enforcement.status: 'inactive' | 'enforcing' (an open string): "Whether the hard spend limit is
#   currently enforcing."
# No limit set: a 200 with threshold_amount 0 (a third-party copy of the API reference shows it), or a
# 404; both read as "no limit", never as "$0 limit reached". At the limit, "affected API requests return
# a `429` error with the `organization_spend_limit_exceeded` or `project_spend_limit_exceeded` code"
# (https://developers.openai.com/api/docs/guides/spend-limits.md). Whether the spend OpenAI tracks
# against it equals the Costs API's month-to-date is not documented: the headroom says which it uses.

ORG_LIMIT_OBJECT = "organization.spend_limit"
PROJECT_LIMIT_OBJECT = "project.spend_limit"
ENFORCEMENT = {"enforcing": True, "inactive": False}
MAX_CENTS = 10**15  # beyond any real limit: a unit or shape fault
LIMIT_SOURCE = "OpenAI hard spend limit"
LIMIT_BASIS = "by the Costs API's month-to-date"
ORG_REFUSAL = "429 (`organization_spend_limit_exceeded`)"
PROJECT_REFUSAL = "429 (`project_spend_limit_exceeded`)"


@dataclasses.dataclass(frozen=True)
class SpendLimit:
    usd: Decimal
    enforcing: bool | None  # None: a status this module does not know (the SDK's type is an open string)
    status: str


def parse_spend_limit(doc: dict[str, Any], *, object_type: str) -> SpendLimit | None:
    """A `spend_limit` answer in USD; None when no limit is set (`threshold_amount` 0). Drift raises."""
    what = object_type.replace(".", " ")
    reject_error_envelope(doc, what)
    if doc.get("object") != object_type:
        got = repr(doc.get("object"))[:60]
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected object {object_type!r}, got {got}")
    cents = doc.get("threshold_amount")
    if not isinstance(cents, int) or isinstance(cents, bool) or not 0 <= cents < MAX_CENTS:
        got = f"{type(cents).__name__} {repr(cents)[:40]}"
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: threshold_amount must be whole cents, got {got}")
    currency, interval = doc.get("currency"), doc.get("interval")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: currency {repr(currency)[:20]} (only USD is documented)")
    if interval != "month":
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: interval {repr(interval)[:20]} (only month is documented)")
    enforcement = doc.get("enforcement")
    status = enforcement.get("status") if isinstance(enforcement, dict) else None
    if not isinstance(status, str):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: enforcement.status is missing")
    if cents == 0:
        return None
    return SpendLimit(Decimal(cents) / 100, ENFORCEMENT.get(status), status)


def limit_projects(
    cells: Iterable[CostCell], named: Iterable[str], cap: int = MAX_PROJECT_LIMITS
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The projects whose limits to read: the ones the teams name, then the month's largest spenders,
    `cap` in all; and the ones left out. Only well-formed project ids (they go into a path)."""
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for c in cells:
        if (p := c.get("project")) is not None:
            spend[p] += c.amount
    wanted = set(named)
    ids = sorted(
        (p for p in {*spend, *wanted} if PROJECT_ID_RE.match(p)),
        key=lambda p: (p not in wanted, -spend.get(p, ZERO), p),
    )
    return tuple(ids[:cap]), tuple(ids[cap:])


def _call(
    client: httpx.Client, call: tuple[str, str], *, deadline: Deadline, project: str | None = None
) -> dict[str, Any]:
    """Send one of `READ_CALLS`; anything else is refused before it leaves the process."""
    if call not in READ_CALLS:
        raise ValueError(f"{call[0]} {call[1]} is not a read call the alerter may make")
    method, template = call
    path = template.format(project=quote(project or "", safe=""))
    return request_json(client, method, path, deadline=deadline)


def _read_limit(
    future: concurrent.futures.Future[dict[str, Any]], object_type: str
) -> tuple[SpendLimit | None, ProviderError | None]:
    try:
        return parse_spend_limit(future.result(), object_type=object_type), None
    except ProviderError as exc:
        if exc.cause == Cause.NOT_FOUND:
            return None, None  # no limit set (or spend limits not offered to this organisation)
        return None, exc


def _headroom(limit: SpendLimit, used: Decimal, *, name: str = "", project: str | None = None) -> Headroom:
    return Headroom(
        limit_usd=limit.usd,
        used_usd=used,
        remaining_usd=limit.usd - used,
        source=LIMIT_SOURCE,
        name=name,
        match=(("project", project),) if project else (),
        enforcing=limit.enforcing,
        refusal=PROJECT_REFUSAL if project else ORG_REFUSAL,
        basis=LIMIT_BASIS,
    )


def _limits(
    report: CostReport,
    org: concurrent.futures.Future[dict[str, Any]],
    projects: Mapping[str, concurrent.futures.Future[dict[str, Any]]],
    skipped: tuple[str, ...],
) -> tuple[Headroom | None, tuple[Headroom, ...], tuple[str, ...]]:
    """The account's and the projects' headroom, and notes on what could not be read."""
    notes: list[str] = []
    org_limit, err = _read_limit(org, ORG_LIMIT_OBJECT)
    if err is not None:
        notes.append(f"spend-limit context unavailable: organization: {err.cause.describe}")
    if org_limit is not None and org_limit.enforcing is None:
        notes.append(f"organization spend limit: unknown enforcement status {org_limit.status[:40]!r}")
    room = _headroom(org_limit, report.mtd_usd) if org_limit is not None else None
    used: dict[str, Decimal] = defaultdict(Decimal)
    for c in report.cells:
        if (p := c.get("project")) is not None:
            used[p] += c.amount
    rooms: list[Headroom] = []
    failed: dict[str, list[str]] = defaultdict(list)
    for project, future in projects.items():
        limit, err = _read_limit(future, PROJECT_LIMIT_OBJECT)
        if err is not None:
            failed[err.cause.describe].append(project)
        elif limit is not None:
            rooms.append(_headroom(limit, used.get(project, ZERO), name=f"project {project}", project=project))
    for cause, ids in failed.items():
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        notes.append(f"spend-limit context unavailable: {len(ids)} project(s) ({cause}): {shown}")
    if skipped:
        notes.append(
            f"spend limits of {len(skipped)} more project(s) not read (at most {MAX_PROJECT_LIMITS} per check)"
        )
    return room, tuple(rooms), tuple(notes)


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
        # The project limits are matched to cells by project: keep it, beside what the teams asked for.
        dims = tuple(sorted({*(self.deps.cell_dims.get(SPEC.name) or ()), "project"}))
        named = self.deps.owner_ids.get(f"{SPEC.name}/{self.account.label}", frozenset())
        with (
            self.deps.http_factory(self.deps.base_urls[SPEC.name], headers=headers) as client,
            concurrent.futures.ThreadPoolExecutor(LIMIT_WORKERS, thread_name_prefix="openai-limits") as pool,
        ):
            sent = count_requests(client)
            org = pool.submit(_call, client, ORG_SPEND_LIMIT, deadline=deadline)  # alongside the costs pages
            acc = fetch_month(
                client, PATH, params, parse_costs_page, period,
                deadline=deadline, limits=(PAGE_LIMIT, 1), cell_dims=dims,
            )  # fmt: skip
            report = acc.report(Freshness(period.now, "near real-time; today's bucket is still growing"), requests=0)
            wanted, skipped = limit_projects(report.cells, named)
            calls = {p: pool.submit(_call, client, PROJECT_SPEND_LIMIT, project=p, deadline=deadline) for p in wanted}
            room, rooms, notes = _limits(report, org, calls, skipped)
        return dataclasses.replace(
            report, headroom=room, limits=rooms, notes=(*report.notes, *notes), requests=sent.value
        )


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
