"""Team budgets: team and unassigned scopes split out of the accounts' cost cells, exact to the cent,
partial where a part is failed, truncated or cannot be split, and `thresholds_usd` once a month.

The end-to-end test runs the real CLI check against the simulator and compares every team with sums
taken here, hour by hour, straight from the scenario's cells (not from the servers' bucket code).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import io
import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field
from support import failed_for, load_fixture, report_for

import logs
import main
import providers
from alerts import rules, slack
from alerts.events import Amounts, Event, Kind, Severity
from alerts.state import FileStore, Ledger
from check import run_check
from config import BudgetConfig, SecretResolver, Settings, parse_budget_config
from errors import Cause
from models import PACIFIC, UTC, AccountRef, BillingPeriod, CostReport, DailyCost, Deadline, Freshness, SourceResult
from output import table, to_json
from providers import Account, Deps, ProviderSpec, gemini
from providers._aggregate import CostAccumulator
from runtime import PROCESS
from simulator import Scenario, Simulator, SlackReceiver

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
PROVIDERS = {
    "openai": {"budget_usd": 5000, "accounts": [{"label": "prod"}, {"label": "research"}]},
    "anthropic": {"budget_usd": 3000, "accounts": [{"label": "main"}]},
    "xai": {"budget_usd": 1000, "accounts": [{"label": "core", "team_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]},
}
TEAMS: dict[str, Any] = {
    "search": {
        "budget_usd": 100,
        "match": {
            "openai": {"accounts": ["prod"], "project_ids": ["proj_search"], "line_item_patterns": ["gpt-5.4, *"]},
            "anthropic": {"workspace_ids": ["wrkspc_01Search"]},
        },
    },
    "support": {
        "budget_usd": 50,
        "match": {
            "openai": {"accounts": ["prod"], "project_ids": ["proj_support"]},
            "anthropic": {"workspace_ids": ["default"]},
            "xai": {"accounts": ["core"]},
        },
    },
    "research": {"budget_usd": 40, "match": {"openai": {"accounts": ["research"]}}},
}


def _doc(teams: Mapping[str, Any] = TEAMS, **extra: Any) -> BudgetConfig:
    document = {"total_budget_usd": 9000, "providers": PROVIDERS, "teams": teams, **extra}
    return parse_budget_config(json.dumps(document), origin="test")


def _cells(
    config: BudgetConfig,
    provider: str,
    label: str,
    rows: list[tuple[int, dict[str, str | None], str]],
    *,
    now: dt.datetime = NOW,
    cell_dims: tuple[str, ...] | str | None = "document",
    partial_reason: str | None = None,
) -> SourceResult:
    """A report built by the real accumulator from (day of month, dims, USD) rows, keeping the cells the
    document asks for (as `check.fetch_all` has the sources do), the dimensions given, or none (None)."""
    period = BillingPeriod.containing(now)
    dims = config.cell_dims().get(provider) if isinstance(cell_dims, str) else cell_dims
    acc = CostAccumulator(period, dims)
    for day, values, amount in rows:
        acc.add(dt.date(period.year, period.month, day), Decimal(amount), values)
    rep = dataclasses.replace(acc.report(Freshness(now, "test"), requests=1), partial_reason=partial_reason)
    return SourceResult(AccountRef(provider, label), period, report=rep)


def _world(config: BudgetConfig) -> list[SourceResult]:
    """Cells of every kind: a team's, one a line-item pattern leaves out, a null project, a default
    workspace, a whole account with no cells."""
    return [
        _cells(
            config,
            "openai",
            "prod",
            [
                (1, {"project": "proj_search", "line_item": "gpt-5.4, input"}, "10.00000001"),
                (2, {"project": "proj_search", "line_item": "gpt-5.4-mini, input"}, "3.5"),
                (2, {"project": "proj_support", "line_item": "gpt-5.4, output"}, "7.25"),
                (3, {"project": None, "line_item": "gpt-5.4, input"}, "0.3"),
                (3, {"project": "proj_batch", "line_item": "gpt-5.4, input"}, "4"),
            ],
        ),
        _cells(config, "openai", "research", [(1, {"project": "proj_evals", "line_item": "o4, output"}, "2.125")]),
        _cells(
            config,
            "anthropic",
            "main",
            [
                (1, {"workspace": None}, "1.1"),
                (2, {"workspace": "wrkspc_01Search"}, "2.2"),
                (3, {"workspace": "wrkspc_01Pipeline"}, "3.3"),
            ],
        ),
        report_for("xai", "core", NOW, ["5", "0", "1.5"]),
    ]


def _scopes(config: BudgetConfig, results: list[SourceResult], now: dt.datetime = NOW) -> dict[str, rules.Scope]:
    return {s.name: s for s in rules.evaluate(config, results, now)}


def test_team_sums_are_the_exact_cells_their_match_selects() -> None:
    """Each team is the Decimal sum of its selected cells (a whole account taken as is); the rest is unassigned."""
    config = _doc()
    scopes = _scopes(config, _world(config))
    assert scopes["team/search"].mtd_usd == Decimal("10.00000001") + Decimal("2.2")
    assert scopes["team/support"].mtd_usd == Decimal("7.25") + Decimal("1.1") + Decimal("6.5")
    assert scopes["team/research"].mtd_usd == Decimal("2.125")
    assert scopes["unassigned"].mtd_usd == Decimal("3.5") + Decimal("0.3") + Decimal("4") + Decimal("3.3")
    assert dict(scopes["unassigned"].parts) == {
        "openai/prod": Decimal("7.8"),
        "anthropic/main": Decimal("3.3"),
    }, "accounts a team takes whole are no part of unassigned"
    assert dict(scopes["team/support"].parts) == {
        "openai/prod": Decimal("7.25"),
        "anthropic/main": Decimal("1.1"),
        "xai/core": Decimal("6.5"),
    }
    owned = sum((s.mtd_usd or Decimal(0) for s in scopes.values() if s.level == "team"), Decimal(0))
    assert owned + scopes["unassigned"].mtd_usd == scopes["total"].mtd_usd  # type: ignore[operator]
    assert scopes["unassigned"].owned_usd == owned
    assert [s.level for s in rules.evaluate(config, _world(config), NOW)][-4:] == ["team"] * 3 + ["unassigned"]
    assert not any(s.partial for s in scopes.values())


def test_team_daily_series_is_zero_filled_over_the_accounts_days() -> None:
    """A team's daily series sums its cells per day, every day from the 1st to today present (zeros too)."""
    config = _doc()
    search = _scopes(config, _world(config))["team/search"]
    assert len(search.daily) == NOW.day
    assert search.daily[0] == DailyCost(dt.date(2026, 11, 1), Decimal("10.00000001"))
    assert search.daily[1] == DailyCost(dt.date(2026, 11, 2), Decimal("2.2"))
    assert all(d.amount == 0 for d in search.daily[2:])
    assert search.title == "Team search" and search.month == "2026-11" and search.budget_usd == Decimal(100)


def test_a_failed_account_makes_the_teams_it_reaches_partial_and_names_it() -> None:
    """A failed account is no $0: every team reaching it, and unassigned, are partial and name it."""
    config = _doc()
    results = [
        r if r.account.scope != "anthropic/main" else failed_for("anthropic", "main", NOW, Cause.AUTH)
        for r in _world(config)
    ]
    scopes = _scopes(config, results)
    for name in ("team/search", "team/support", "unassigned"):
        assert scopes[name].partial and scopes[name].failed_parts == ("anthropic/main",), name
        assert dict(scopes[name].parts)["anthropic/main"] is None
    assert scopes["team/search"].mtd_usd == Decimal("10.00000001"), "the parts that answered still count"
    assert not scopes["team/research"].partial and scopes["team/research"].failed_parts == ()


def test_a_truncated_account_makes_its_teams_partial() -> None:
    """An account whose provider says its data is truncated leaves every slice it feeds partial."""
    config = _doc()
    results = _world(config)
    results[2] = _cells(config, "anthropic", "main", [(1, {"workspace": None}, "1")], partial_reason="cut short")
    scopes = _scopes(config, results)
    assert scopes["team/search"].partial and scopes["team/support"].partial and scopes["unassigned"].partial
    assert scopes["team/search"].failed_parts == () and not scopes["team/research"].partial


def test_a_report_without_the_dimension_a_match_reads_is_partial_never_a_silent_zero() -> None:
    """Cells that do not keep `line_item`: the team's share there is unknown (partial, noted), counted as unassigned."""
    config = _doc()
    results = _world(config)
    results[0] = _cells(config, "openai", "prod", [(1, {"project": "proj_search"}, "9")], cell_dims=("project",))
    scopes = _scopes(config, results)
    search, rest = scopes["team/search"], scopes["unassigned"]
    assert search.partial and search.note and "openai/prod: its data does not keep line_item" in search.note
    assert dict(search.parts)["openai/prod"] == 0
    assert dict(scopes["team/support"].parts)["openai/prod"] == 0, "support reads `project`, which is kept"
    assert rest.partial and rest.note and "includes spend of search" in rest.note
    assert dict(rest.parts)["openai/prod"] == Decimal(9)
    owned = sum((s.mtd_usd or Decimal(0) for s in scopes.values() if s.level == "team"), Decimal(0))
    assert owned + (rest.mtd_usd or 0) == scopes["total"].mtd_usd, "the unsplit spend still balances"


def test_a_report_with_no_cells_at_all_cannot_be_split() -> None:
    """No cells kept (cell_dims None): teams matching by id are partial; only a whole-account match is exact."""
    config = _doc()
    results = _world(config)
    results[0] = _cells(config, "openai", "prod", [(1, {"project": "proj_search"}, "9")], cell_dims=None)
    scopes = _scopes(config, results)
    assert scopes["team/search"].partial and scopes["team/support"].partial
    assert dict(scopes["unassigned"].parts)["openai/prod"] == Decimal(9)


TABLE = "my-billing-proj.billing_export.gcp_billing_export_v1_01ABCD_234567_89ABCD"


def test_a_source_still_on_last_month_is_left_out_of_its_teams_with_the_totals_note() -> None:
    """Like the total, a team leaves out a source still on its previous (Pacific) billing month, and says so."""
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # Nov 30 19:00 in California
    doc = {
        "total_budget_usd": 9000,
        "providers": {
            "openai": {"budget_usd": 500},
            "gemini": {"budget_usd": 500, "accounts": [{"label": "billing", "billing_export_table": TABLE}]},
        },
        "teams": {"ml": {"budget_usd": 50, "match": {"gemini": {"project_ids": ["llm-prod-123456"]}}}},
    }
    config = parse_budget_config(json.dumps(doc), origin="test")
    results = [
        report_for("openai", "default", now, ["1"]),
        report_for("gemini", "billing", now, ["40"] * 30, tz=PACIFIC),
    ]
    scopes = _scopes(config, results, now)
    ml, rest = scopes["team/ml"], scopes["unassigned"]
    assert ml.mtd_usd == 0 and not ml.partial and ml.month == "2026-12"
    assert ml.note == scopes["total"].note and ml.note and "still on its 2026-11 billing month" in ml.note
    assert rest.mtd_usd == Decimal(1) and rest.note == scopes["total"].note


def test_with_overlap_allowed_a_cell_counts_for_every_team_selecting_it() -> None:
    """allow_overlap: a shared project counts in both teams; unassigned stays "selected by none"; the union balances."""
    teams = {
        "a": {"budget_usd": 10, "match": {"openai": {"project_ids": ["proj_search", "proj_support"]}}},
        "b": {"budget_usd": 10, "match": {"openai": {"project_ids": ["proj_search"]}}},
    }
    config = _doc(teams, allow_overlap=True)
    results = _world(config)[:2]
    scopes = _scopes(config, results)
    search = Decimal("10.00000001") + Decimal("3.5")
    assert scopes["team/a"].mtd_usd == search + Decimal("7.25") and scopes["team/b"].mtd_usd == search
    assert scopes["unassigned"].mtd_usd == Decimal("4.3") + Decimal("2.125")
    assert scopes["unassigned"].owned_usd == scopes["team/a"].mtd_usd
    doc = to_json(_outcome(scopes, results))
    assert doc["reconciliation"]["balanced"] is True


def test_without_teams_there_are_no_team_scopes() -> None:
    """A document without teams evaluates as before: no team scopes, no unassigned, null in the JSON."""
    config = parse_budget_config(json.dumps({"total_budget_usd": 10, "providers": PROVIDERS}), origin="test")
    scopes = rules.evaluate(config, _world(config), NOW)
    assert {s.level for s in scopes} == {"total", "provider", "account"}
    doc = to_json(_outcome({s.name: s for s in scopes}, _world(config)))
    assert doc["teams"] == {} and doc["unassigned"] is None and doc["reconciliation"] is None


# --- the property: owned + unassigned = total, exactly -----------------------------------------

PROJECTS = ("proj_a", "proj_b", "proj_c", "proj_d", None)
LINE_ITEMS = ("gpt-5.4, input", "gpt-5.4, output", "gpt-5.4-mini, input")
AMOUNTS = st.decimals(min_value=Decimal("-5"), max_value=Decimal("100000"), places=8, allow_nan=False)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 28), st.sampled_from(PROJECTS), st.sampled_from(LINE_ITEMS), AMOUNTS), max_size=40
    ),
    owners=st.lists(st.integers(0, 3), min_size=4, max_size=4),  # which team owns each named project (3: none)
    pattern=st.sampled_from([None, "gpt-5.4, *", "*mini*"]),
    take_research=st.booleans(),
)
def test_owned_plus_unassigned_is_the_total_exactly(
    rows: list[tuple[int, str | None, str, Decimal]], owners: list[int], pattern: str | None, take_research: bool
) -> None:
    """Any cells, any disjoint teams (ids, a line-item pattern, a whole account): Σ teams + unassigned == total."""
    teams: dict[str, Any] = {}
    for t in range(3):
        ids = [p for p, o in zip(PROJECTS[:4], owners, strict=True) if o == t]
        if ids:
            block: dict[str, Any] = {"accounts": ["prod"], "project_ids": ids}
            if pattern and t == 0:
                block["line_item_patterns"] = [pattern]
            teams[f"t{t}"] = {"budget_usd": 10, "match": {"openai": block}}
    if take_research or not teams:
        teams["whole"] = {"budget_usd": 10, "match": {"openai": {"accounts": ["research"]}}}
    config = _doc(teams)
    results = [
        _cells(config, "openai", "prod", [(d, {"project": p, "line_item": li}, str(a)) for d, p, li, a in rows]),
        _cells(
            config, "openai", "research", [(d, {"project": p, "line_item": li}, str(a)) for d, p, li, a in rows[:5]]
        ),
        report_for("anthropic", "main", NOW, ["1.5"]),
        report_for("xai", "core", NOW, ["2"]),
    ]
    scopes = _scopes(config, results)
    team_sum = sum((s.mtd_usd or Decimal(0) for s in scopes.values() if s.level == "team"), Decimal(0))
    assert team_sum + scopes["unassigned"].mtd_usd == scopes["total"].mtd_usd  # type: ignore[operator]
    for name, team in teams.items():
        block = team["match"]["openai"]
        if block["accounts"] == ["research"]:
            expected = sum((a for _, _, _, a in rows[:5]), Decimal(0))
        else:
            patterns = block.get("line_item_patterns", ["*"])
            expected = sum(
                (a for _, p, li, a in rows if p in block["project_ids"] and fnmatch.fnmatchcase(li, patterns[0])),
                Decimal(0),
            )
        assert scopes[f"team/{name}"].mtd_usd == expected, name
    assert to_json(_outcome(scopes, results))["reconciliation"]["balanced"] is True


# --- thresholds per team, in dollars, forecasts and spikes ----------------------------------------


def test_team_thresholds_fall_back_to_the_documents() -> None:
    """A team's thresholds_pct replace the document's; a team without them uses the document's."""
    teams = {**TEAMS, "search": {**TEAMS["search"], "thresholds_pct": [5]}}
    config = _doc(teams, thresholds_pct=[20, 90])
    events = rules.budget_events(config, rules.evaluate(config, _world(config), NOW))
    keys = {e.key for e in events if e.kind == Kind.THRESHOLD and ":team/" in e.key}
    # search $12.20 of $100 (own 5%), support $14.85 of $50 (the document's 20%), research $2.13 of $40
    assert keys == {"threshold:2026-11:team/search:5", "threshold:2026-11:team/support:20"}


def test_thresholds_usd_for_every_kind_of_budget() -> None:
    """thresholds_usd on the total, a provider, an account and a team each fire at their amount, typed."""
    providers_doc = json.loads(json.dumps(PROVIDERS))
    providers_doc["openai"]["thresholds_usd"] = [20, 5]
    providers_doc["openai"]["accounts"][0]["thresholds_usd"] = ["25.01"]
    teams = {**TEAMS, "support": {**TEAMS["support"], "thresholds_usd": [14, "14.86"]}}
    document = {"total_budget_usd": 9000, "providers": providers_doc, "teams": teams, "thresholds_usd": [40, 1500]}
    config = parse_budget_config(json.dumps(document), origin="test")
    events = {e.key: e for e in rules.budget_events(config, rules.evaluate(config, _world(config), NOW))}
    usd_keys = sorted(k for k in events if ":usd" in k)
    assert usd_keys == [
        "threshold:2026-11:openai/prod:usd25.01",  # $25.05 month-to-date
        "threshold:2026-11:openai:usd20",
        "threshold:2026-11:openai:usd5",
        "threshold:2026-11:team/support:usd14",  # $14.85: not yet $14.86
        "threshold:2026-11:total:usd40",  # $40.27500001: not $1,500
    ]
    e = events["threshold:2026-11:team/support:usd14"]
    assert e.line == "*Team support* crossed *$14.00* month-to-date: $14.85 of its $50.00 budget"
    assert e.kind == Kind.THRESHOLD and e.level is None and e.severity == Severity.CROSSED
    assert e.amounts == Amounts(mtd_usd=Decimal("14.85"), budget_usd=Decimal(50), threshold_usd=Decimal(14))
    assert events["threshold:2026-11:openai:usd5"].severity == Severity.WARNING, "only the highest says crossed"
    acct = events["threshold:2026-11:openai/prod:usd25.01"]
    assert acct.line == "*OpenAI · prod* crossed *$25.01* month-to-date: $25.05", "an account without a budget"
    assert acct.headline() == "OpenAI · prod crossed $25.01 month-to-date"


def test_a_usd_threshold_event_survives_alert_state() -> None:
    """Its dollar amount is stored and read back, so Slack folds it without parsing its key."""
    e = Event(
        key="threshold:2026-11:team/a:usd1500",
        kind=Kind.THRESHOLD,
        scope="team/a",
        month="2026-11",
        line="*Team a* crossed *$1,500.00* month-to-date: $1,612.40 of its $2,000.00 budget",
        severity=Severity.CROSSED,
        title="Team a",
        amounts=Amounts(mtd_usd=Decimal("1612.40"), budget_usd=Decimal(2000), threshold_usd=Decimal(1500)),
    )
    assert Event.from_record(e.key, e.month, e.to_record()) == e


def _threshold(scope: str, pct: str | None, usd_amount: str | None, severity: Severity) -> Event:
    budget = Decimal(2000)
    level = None if pct is None else Decimal(pct)
    amount = None if usd_amount is None else Decimal(usd_amount)
    key = f"threshold:2026-11:{scope}:" + (pct if pct is not None else f"usd{usd_amount}")
    return Event(
        key,
        Kind.THRESHOLD,
        scope,
        "2026-11",
        f"line {key}",
        severity,
        title=f"Team {scope}",
        level=level,
        amounts=Amounts(mtd_usd=Decimal(1612), budget_usd=budget, threshold_usd=amount),
    )


def test_slack_keeps_the_top_percentage_and_the_top_dollar_threshold_of_a_scope() -> None:
    """Folding per scope: the highest pct and the highest usd threshold each survive; the headline names one budget."""
    events = [
        _threshold("a", "50", None, Severity.CROSSED),
        _threshold("a", "25", None, Severity.WARNING),
        _threshold("a", None, "1500", Severity.CROSSED),
        _threshold("a", None, "1000", Severity.WARNING),
    ]
    kept = slack._fold(events)
    assert [e.key for e in kept] == ["threshold:2026-11:a:50", "threshold:2026-11:a:usd1500"]
    assert slack.headline(kept, False, NOW).endswith("Team a crossed $1,500.00 month-to-date"), "$1,500 > 50% of $2,000"
    two = [*kept, _threshold("b", "80", None, Severity.CROSSED)]
    assert slack.headline(slack._fold(two), False, NOW).endswith("2 LLM budgets crossed a threshold")


def test_team_forecast_and_spike() -> None:
    """A team gets a forecast from its settled days and a spike from its own daily series."""
    config = _doc({"t": {"budget_usd": 100, "match": {"openai": {"accounts": ["prod"], "project_ids": ["proj_a"]}}}})
    rows: list[tuple[int, dict[str, str | None], str]] = [(d, {"project": "proj_a"}, "2") for d in range(1, 27)]
    rows += [(27, {"project": "proj_a"}, "40"), (27, {"project": "proj_b"}, "1000")]
    results = [_cells(config, "openai", "prod", rows), *_world(config)[1:]]
    scopes = _scopes(config, results)
    team = scopes["team/t"]
    assert team.forecast is not None and team.forecast.settled_days == 27
    spikes = [e.key for e in rules.spike_events(config, list(scopes.values())) if "team/" in e.key]
    assert spikes == ["spike:2026-11-27:team/t"]


# --- through the real check: the JSON, the table and state across runs ----------------------------


def _outcome(scopes: Mapping[str, rules.Scope], results: list[SourceResult]) -> Any:
    from check import CheckOutcome

    return CheckOutcome(now=NOW, results=results, scopes=list(scopes.values()), events_now=[])


class CellAccount(Account):
    """An account of the `cells` test source: a fixed amount a day on each of its projects."""

    daily_usd: dict[str, Decimal] = Field(default_factory=dict)


@dataclasses.dataclass
class CellSource:
    account: CellAccount
    deps: Deps
    provider: str = "cells"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        acc = CostAccumulator(period, self.deps.cell_dims.get("cells"))
        day = period.first_day
        while day <= period.today:
            for project, amount in self.account.daily_usd.items():
                acc.add(day, amount, {"project": project})
            day += dt.timedelta(days=1)
        return acc.report(Freshness(period.now), requests=1)


class CellsMatch(providers.TeamMatch):
    project_ids: tuple[str, ...] = ()

    def dims(self) -> tuple[str, ...]:
        return ("project",) if self.project_ids else ()

    def ids(self) -> frozenset[str] | None:
        return frozenset(self.project_ids) if self.project_ids else None

    def selects(self, cell: Mapping[str, str | None]) -> bool:
        return not self.project_ids or cell.get("project") in self.project_ids


CELLS = ProviderSpec(
    name="cells",
    title="Cells",
    console_url="https://example.invalid/cells",
    account_schema=CellAccount,
    build=lambda account, deps: CellSource(account, deps),
    team_match=CellsMatch,
)


@pytest.fixture
def cells_source() -> Iterator[ProviderSpec]:
    with providers.registered(CELLS) as spec:
        yield spec


def test_thresholds_usd_fire_once_a_month_across_runs(cells_source: ProviderSpec, tmp_path: Path) -> None:
    """Hourly checks with FileStore state: each dollar threshold is delivered once, and again next month."""
    document = {
        "total_budget_usd": 100000,
        "thresholds_usd": [100],
        "providers": {
            "cells": {"budget_usd": 100000, "accounts": [{"label": "one", "daily_usd": {"p_a": 10, "p_b": 1}}]}
        },
        "teams": {"a": {"budget_usd": 1000, "thresholds_usd": [25, 50], "match": {"cells": {"project_ids": ["p_a"]}}}},
        "digest": {"enabled": False},
    }
    sent: list[tuple[str, str]] = []
    start = dt.datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
    with SlackReceiver.start() as receiver:
        env = {
            "BUDGET_CONFIG": json.dumps(document),
            "STATE_FILE": str(tmp_path / "s.json"),
            "SLACK_WEBHOOK_URL": receiver.hook_url,
        }
        settings_ = Settings.from_env(env)
        deps = Deps(secrets=SecretResolver(env=env), base_urls={})
        store = FileStore(tmp_path / "s.json")
        for hour in range(0, 24 * 40, 6):
            now = start + dt.timedelta(hours=hour)
            outcome = run_check(settings_, deps, now, store=store)
            sent += [(f"{now:%m-%d}", k) for k in outcome.delivered if ":usd" in k]
        posted = receiver.messages()
    assert sent == [
        ("11-03", "threshold:2026-11:team/a:usd25"),  # $10/day: $30 on the 3rd
        ("11-05", "threshold:2026-11:team/a:usd50"),
        ("11-10", "threshold:2026-11:total:usd100"),  # $11/day: $110 on the 10th
        ("12-03", "threshold:2026-12:team/a:usd25"),
        ("12-05", "threshold:2026-12:team/a:usd50"),
        ("12-10", "threshold:2026-12:total:usd100"),
    ]
    assert Ledger(store).snapshot()["events"], "kept in alert state"
    assert any(
        "*Team a* crossed *$25.00* month-to-date: $30.00 of its $1,000.00 budget" in json.dumps(p) for p in posted
    )


SIM_TEAMS: dict[str, Any] = {
    "search": {
        "budget_usd": 3000,
        "thresholds_usd": [500],
        "match": {
            "openai": {"accounts": ["prod"], "project_ids": ["proj_sim_search"], "line_item_patterns": ["gpt-5.4, *"]},
            "anthropic": {"workspace_ids": ["wrkspc_01SimCustomerAgents"], "model_patterns": ["claude-sonnet-*"]},
        },
    },
    "support": {
        "budget_usd": 4000,
        "match": {
            "openai": {"accounts": ["prod"], "project_ids": ["proj_sim_support_bot"]},
            "anthropic": {"workspace_ids": ["default"]},
            "xai": {"accounts": ["core"]},
        },
    },
    "research": {"budget_usd": 1000, "match": {"openai": {"accounts": ["research"]}}},
}
# The same selections over the scenario's own cell values (its dimension names, not the providers').
Pick = Callable[[str, Mapping[str, str | None], Mapping[str, Mapping[str, str | None]]], bool]
PICKS: dict[str, Pick] = {
    "search": lambda scope, v, attrs: (
        (
            scope == "openai/prod"
            and v.get("project_id") == "proj_sim_search"
            and fnmatch.fnmatchcase(v["line_item"] or "", "gpt-5.4, *")
        )
        or (
            scope == "anthropic/main"
            and v.get("workspace_id") == "wrkspc_01SimCustomerAgents"
            and fnmatch.fnmatchcase(attrs[v["description"] or ""].get("model") or "", "claude-sonnet-*")
        )
    ),
    "support": lambda scope, v, attrs: (
        (scope == "openai/prod" and v.get("project_id") == "proj_sim_support_bot")
        or (scope == "anthropic/main" and v.get("workspace_id") is None)
        or scope == "xai/core"
    ),
    "research": lambda scope, v, attrs: scope == "openai/research",
}


def _scenario_sum(scenario: Scenario, pick: Callable[[str, Mapping[str, str | None]], bool]) -> dict[str, Decimal]:
    """Per account, the spend of the scenario's cells `pick` takes, hour by hour up to NOW (lag 0)."""
    out: dict[str, Decimal] = {}
    for account in scenario.accounts:
        hour = dt.datetime(NOW.year, NOW.month, 1, tzinfo=UTC)
        total = Decimal(0)
        while hour + dt.timedelta(hours=1) <= NOW:
            amounts = account.hourly(hour.date())[hour.hour]
            total += sum(
                (a for c, a in zip(account.cells, amounts, strict=True) if pick(account.scope, c.values)), Decimal(0)
            )
            hour += dt.timedelta(hours=1)
        out[account.scope] = total
    return out


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    doc = json.loads((Path(__file__).resolve().parent.parent / "simulator/scenarios/demo.json").read_text())
    doc["accounts"] = [a for a in doc["accounts"] if a["provider"] in ("openai", "anthropic", "xai")]
    doc["complete_days_only"] = False
    doc["lag_minutes"] = {}
    with Simulator.start(Scenario.from_dict(doc), clock=NOW) as server:
        yield server


def test_dry_run_json_lists_every_team_to_the_cent_of_the_scenario(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Acceptance 1: `check --dry-run --json` lists every team and unassigned, equal to the scenario's sums."""
    keys = {a.scope: a.key for a in sim.scenario.accounts}
    team_id = next(a.team_id for a in sim.scenario.accounts if a.provider == "xai")
    document = {
        "total_budget_usd": 20000,
        "providers": {
            "openai": {
                "budget_usd": 9000,
                "accounts": [{"label": "prod", "key_env": "T_PROD"}, {"label": "research", "key_env": "T_RESEARCH"}],
            },
            "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "T_MAIN"}]},
            "xai": {"budget_usd": 1000, "accounts": [{"label": "core", "team_id": team_id, "key_env": "T_XAI"}]},
        },
        "teams": SIM_TEAMS,
    }
    env = {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(document),
        "STATE_FILE": str(tmp_path / "state.json"),
        "T_PROD": keys["openai/prod"],
        "T_RESEARCH": keys["openai/research"],
        "T_MAIN": keys["anthropic/main"],
        "T_XAI": keys["xai/core"],
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("BUDGET_CONFIG_FILE", "SLACK_WEBHOOK_SECRET", "STATE_BACKEND"):
        monkeypatch.delenv(k, raising=False)
    logs.setup("ERROR", stream=io.StringIO())
    PROCESS.reset(logging_ready=True)
    assert main.cli(["check", "--json", "--dry-run", "--now", NOW.isoformat()]) == 0
    doc = json.loads(capsys.readouterr().out)

    assert list(doc["teams"]) == ["search", "support", "research"]
    attrs = {a.scope: a.attrs for a in sim.scenario.accounts}
    expected_rest = {scope: sim.expected_mtd(scope) for scope in keys}
    for name, team in doc["teams"].items():
        want = _scenario_sum(sim.scenario, lambda scope, v, n=name: PICKS[n](scope, v, attrs[scope]))
        parts = {scope: Decimal(v) for scope, v in team["parts"].items()}
        assert parts == {s: v for s, v in want.items() if s in parts}, name
        assert Decimal(team["mtd_usd"]) == sum(parts.values(), Decimal(0)) == sum(want.values(), Decimal(0)), name
        assert team["partial"] is False and team["failed"] == [] and team["freshness"]["as_of"], name
        assert team["budget_usd"] == f"{SIM_TEAMS[name]['budget_usd']}.00" and team["pct"], name
        for scope in parts:
            expected_rest[scope] -= parts[scope]
    rest = doc["unassigned"]
    assert Decimal(rest["mtd_usd"]) == sum(expected_rest.values(), Decimal(0)) > 0
    assert {s: Decimal(v) for s, v in rest["by_account"].items()} == {
        s: v for s, v in expected_rest.items() if s != "openai/research" and s != "xai/core"
    }
    owned = sum((Decimal(t["mtd_usd"]) for t in doc["teams"].values()), Decimal(0))
    assert owned + Decimal(rest["mtd_usd"]) == Decimal(doc["total"]["mtd_usd"])
    assert doc["reconciliation"] == {
        "owned_usd": str(owned),
        "unassigned_usd": rest["mtd_usd"],
        "total_usd": doc["total"]["mtd_usd"],
        "balanced": True,
    }
    assert "threshold:2026-11:team/search:usd500" in doc["alerts"]["holding"]
    text = table(doc)
    assert "search" in text and "unassigned" in text and "(balanced)" in text


def test_a_gemini_team_takes_its_projects_and_skus_from_the_export_rows() -> None:
    """Export rows via the real parser: a project + SKU-glob team is exact, the rest (null project too) unassigned."""
    doc = {
        "total_budget_usd": 9000,
        "providers": {"gemini": {"budget_usd": 500, "accounts": [{"label": "billing", "billing_export_table": TABLE}]}},
        "teams": {"pro": {"budget_usd": 50, "match": {"gemini": {"project_ids": ["llm-prod-123456"],
                                                                 "sku_patterns": ["Gemini 2.5 Pro*"]}}}},
    }  # fmt: skip
    config = parse_budget_config(json.dumps(doc), origin="test")
    rows = load_fixture("gemini", "mtd_query_rows")["rows"]
    typed = [
        {**r, "usage_day": dt.date.fromisoformat(r["usage_day"]),
         "last_export_time": dt.datetime.fromisoformat(r["last_export_time"]),
         "first_partition": dt.datetime.fromisoformat(r["first_partition"])}
        for r in rows
    ]  # fmt: skip
    period = BillingPeriod.containing(NOW, PACIFIC)
    report = gemini.parse_rows(typed, period, config.cell_dims()["gemini"])
    result = SourceResult(AccountRef("gemini", "billing"), period, report=report)
    scopes = _scopes(config, [result])

    def nano(pick: Callable[[dict[str, Any]], bool]) -> Decimal:
        return sum((Decimal(r["net_nano_usd"]).scaleb(-9) for r in rows if pick(r)), Decimal(0))

    pro = nano(lambda r: r["project_id"] == "llm-prod-123456" and r["sku"].startswith("Gemini 2.5 Pro"))
    assert pro > 0 and scopes["team/pro"].mtd_usd == pro
    assert scopes["unassigned"].mtd_usd == nano(lambda r: True) - pro == report.mtd_usd - pro
