"""The weekly report: week boundaries, ISO keys, week-over-week change, movers, partial scopes, and the
real check path over a replayed month against the simulator (sums taken from `simulator.Scenario`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import providers
from alerts import weekly
from alerts.events import Kind, Severity
from alerts.state import FileStore
from check import default_deps, run_check
from config import BudgetConfig, SecretResolver, Settings, parse_budget_config
from errors import Cause, ProviderError
from models import (
    PACIFIC,
    UTC,
    AccountRef,
    BillingPeriod,
    CostCell,
    CostReport,
    DailyCost,
    Freshness,
    SourceResult,
    usd,
)
from providers import Account, Deadline, ProviderSpec
from providers._aggregate import CostAccumulator
from simulator import Scenario, Simulator, SlackReceiver

D = Decimal
MONDAY_DEC_7 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # reports Nov 30 – Dec 6 against Nov 23 – 29


def _doc(**extra: Any) -> BudgetConfig:
    doc: dict[str, Any] = {
        "total_budget_usd": 1000,
        "providers": {"openai": {"budget_usd": 500}, "anthropic": {"budget_usd": 400}},
        "weekly_report": {"weekday": "monday", "hour_utc": 8, "top": 2},
        **extra,
    }
    return parse_budget_config(json.dumps(doc), origin="test")


def _result(
    provider: str,
    now: dt.datetime,
    cells: Mapping[tuple[str, tuple[tuple[str, str | None], ...]], str],
    *,
    label: str = "default",
    cell_dims: tuple[str, ...] | None = ("line_item", "project"),
    missing_from: dt.date | None = None,
) -> SourceResult:
    """A report of the billing period containing `now`, from cells {(ISO day, dims): USD}."""
    period = BillingPeriod.containing(now)
    kept = tuple(CostCell(dt.date.fromisoformat(day), dims, D(v)) for (day, dims), v in sorted(cells.items()))
    per_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    for c in kept:
        per_day[c.day] += c.amount
    daily = tuple(
        DailyCost(period.first_day + dt.timedelta(days=i), per_day.get(period.first_day + dt.timedelta(days=i), D(0)))
        for i in range((min(period.today, period.last_day) - period.first_day).days + 1)
    )
    report = CostReport(
        period=period,
        mtd_usd=sum((c.amount for c in kept), D(0)),
        daily=daily,
        breakdown=(),
        freshness=Freshness(now, missing_from=missing_from),
        cells=kept if cell_dims is not None else (),
        cell_dims=cell_dims,
    )
    return SourceResult(AccountRef(provider, label), period, report=report)


def _oa(project: str, line_item: str = "gpt-5.4, input") -> tuple[tuple[str, str | None], ...]:
    return (("line_item", line_item), ("project", project))


def _previous_period(now: dt.datetime) -> dt.datetime:
    """An instant at the last second of the month before `now`'s."""
    return BillingPeriod.containing(now).start - dt.timedelta(seconds=1)


# --- weeks and keys -------------------------------------------------------------------------------


def test_reported_week_is_the_last_complete_monday_to_sunday() -> None:
    """On a Wednesday the report covers the Monday–Sunday before this week, across a month boundary."""
    week = weekly.reported_week(dt.datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    assert (week.start, week.end) == (dt.date(2026, 11, 23), dt.date(2026, 11, 29))
    week = weekly.reported_week(MONDAY_DEC_7)
    assert (week.start, week.end) == (dt.date(2026, 11, 30), dt.date(2026, 12, 6)), "a week in two months"
    assert week.days()[0].month == 11 and week.days()[-1].month == 12


@pytest.mark.parametrize(
    ("now", "key"),
    [
        (dt.datetime(2027, 1, 4, 8, tzinfo=UTC), "weekly:2026-W53"),  # Dec 28 – Jan 3: 2026 has 53 ISO weeks
        (dt.datetime(2025, 1, 6, 8, tzinfo=UTC), "weekly:2025-W01"),  # Dec 30 2024 – Jan 5: ISO year 2025
        (dt.datetime(2027, 1, 11, 8, tzinfo=UTC), "weekly:2027-W01"),
    ],
)
def test_iso_week_key_in_the_first_days_of_january(now: dt.datetime, key: str) -> None:
    """The key is the ISO year and week of the reported week, not the calendar year of `now`."""
    config = _doc()
    report = weekly.build(config, [], [], now)
    assert report.key == key
    event = weekly.weekly_event(report)
    assert (event.key, event.kind, event.severity, event.month) == (key, Kind.WEEKLY, Severity.INFO, f"{now:%Y-%m}")


def test_due_only_in_the_configured_weekday_and_hour() -> None:
    """The report is due on Monday at 08:00 UTC only, and never without a weekly_report."""
    config = _doc()
    assert weekly.is_due(config, MONDAY_DEC_7)
    assert not weekly.is_due(config, MONDAY_DEC_7 + dt.timedelta(hours=1))
    assert not weekly.is_due(config, MONDAY_DEC_7 + dt.timedelta(days=1))
    plain = {"total_budget_usd": 5, "providers": {"openai": {"budget_usd": 5}}}
    assert not weekly.is_due(parse_budget_config(json.dumps(plain), origin="t"), MONDAY_DEC_7)


def test_history_needed_only_when_the_two_weeks_reach_before_the_first() -> None:
    """Monday Dec 14 compares Dec 7–13 with Nov 30 – Dec 6 (the previous month); Monday Mar 15 2027 does not."""
    assert weekly.needs_history(dt.date(2026, 12, 1), dt.datetime(2026, 12, 14, 8, tzinfo=UTC))
    assert not weekly.needs_history(dt.date(2026, 12, 1), dt.datetime(2026, 12, 21, 8, tzinfo=UTC))
    assert not weekly.needs_history(dt.date(2027, 3, 1), dt.datetime(2027, 3, 15, 8, tzinfo=UTC))
    assert weekly.needs_history(dt.date(2027, 3, 1), dt.datetime(2027, 3, 14, 8, tzinfo=UTC)), "a Sunday the 14th"


# --- change, movers, partial ----------------------------------------------------------------------


def test_week_over_week_change_amount_and_percent_across_two_billing_months() -> None:
    """This week's and the week before's sums take days from the month's report and from the history."""
    now = MONDAY_DEC_7
    current = _result("openai", now, {("2026-12-01", _oa("proj_a")): "30", ("2026-12-06", _oa("proj_a")): "20"})
    past = _result(
        "openai",
        _previous_period(now),
        {
            ("2026-11-23", _oa("proj_a")): "10",  # the week before
            ("2026-11-29", _oa("proj_a")): "30",
            ("2026-11-30", _oa("proj_a")): "25",  # this week
            ("2026-11-10", _oa("proj_a")): "999",  # neither week
        },
    )
    report = weekly.build(_doc(), [current], [past], now)
    openai = report.scope("openai")
    assert (openai.this_usd, openai.prev_usd) == (D(75), D(40))
    assert openai.change_usd == D(35) and openai.change_pct == D("87.5")
    assert openai.describe() == "+$35.00 (+87.5%)"
    assert report.scope("total").this_usd == D(75)
    assert not openai.partial, "anthropic has no data, but openai's own parts are complete"


def test_new_when_the_week_before_was_zero_and_a_fall_is_negative() -> None:
    """$0 the week before is "new" (no percentage); a fall shows a negative amount and percent."""
    assert weekly.Change(D(5), D(0)).new and weekly.Change(D(5), D(0)).change_pct is None
    assert weekly.Change(D(5), D(0)).describe() == "new"
    assert weekly.Change(D(0), D(0)).describe() == "no change" and not weekly.Change(D(0), D(0)).new
    fall = weekly.Change(D(30), D(40))
    assert (fall.change_usd, fall.change_pct, fall.describe()) == (D(-10), D("-25.0"), "-$10.00 (-25.0%)")


def test_top_movers_by_absolute_change_with_the_tail_folded() -> None:
    """Movers rank by |change| across both weeks; past `top` (2) the rest are counted as "and N more"."""
    now = dt.datetime(2026, 12, 21, 8, tzinfo=UTC)  # Dec 14–20 against Dec 7–13: no history needed
    cells = {
        ("2026-12-14", _oa("proj_up")): "100",
        ("2026-12-07", _oa("proj_up")): "10",  # +90
        ("2026-12-15", _oa("proj_down")): "5",
        ("2026-12-08", _oa("proj_down")): "80",  # -75
        ("2026-12-16", _oa("proj_new")): "20",  # +20, new
        ("2026-12-09", _oa("proj_flat")): "7",
        ("2026-12-17", _oa("proj_flat")): "7",  # no change: not a mover
        ("2026-12-18", _oa("proj_small")): "1",  # +1
    }
    report = weekly.build(_doc(), [_result("openai", now, cells)], [], now)
    groups = {g.dimension: g for g in report.scope("openai").movers}
    projects = groups["project"]
    assert projects.label == "OpenAI projects"
    assert [(m.key, m.change_usd) for m in projects.movers] == [("proj_up", D(90)), ("proj_down", D(-75))]
    assert projects.more == 2, "proj_new and proj_small folded; proj_flat did not move"
    assert groups["line_item"].label == "OpenAI line items"
    text = json.dumps(weekly.render_blocks(report, ["openai"]))
    assert "and 2 more" in text and "proj_up" in text and "proj_small" not in text


def test_a_failed_previous_period_makes_its_scopes_partial_in_the_weekly_report_only() -> None:
    """A history fetch that failed labels openai and the total partial (with why); anthropic stays whole."""
    now = MONDAY_DEC_7
    current = _result("openai", now, {("2026-12-01", _oa("proj_a")): "30"})
    past = SourceResult(
        AccountRef("openai", "default"),
        BillingPeriod.containing(_previous_period(now)),
        cause=Cause.SERVER_ERROR,
        error="HTTP 500",
    )
    anth = _result(
        "anthropic", now, {("2026-12-01", (("model", "m"),)): "4"}, cell_dims=("model", "workspace"), label="default"
    )
    anth_past = _result("anthropic", _previous_period(now), {("2026-11-24", (("model", "m"),)): "2"}, cell_dims=None)
    report = weekly.build(_doc(), [current, anth], [past, anth_past], now)
    assert report.scope("openai").partial and "openai/default 2026-11 failed: HTTP 500" in report.scope("openai").notes
    assert report.scope("total").partial
    assert not report.scope("anthropic").partial
    assert (report.scope("anthropic").this_usd, report.scope("anthropic").prev_usd) == (D(4), D(2))
    assert report.scope("openai").this_usd == D(30), "what was read is still shown, a lower bound"
    assert "partial data" in weekly.weekly_event(report).line
    own = weekly.weekly_event(report, "anthropic")
    assert own.scope == "anthropic" and "Anthropic $4.00" in own.line and "partial" not in own.line


def test_days_a_source_has_not_reported_make_it_partial() -> None:
    """A source serving complete days only, missing the reported week's Sunday, is partial and says so."""
    now = dt.datetime(2026, 12, 21, 0, 30, tzinfo=UTC).replace(hour=8)
    anth = _result(
        "anthropic",
        now,
        {("2026-12-10", (("model", "m"),)): "4"},
        cell_dims=("model", "workspace"),
        missing_from=dt.date(2026, 12, 20),
    )
    report = weekly.build(_doc(), [anth], [], now)
    scope = report.scope("anthropic")
    assert scope.partial and any("no data yet for Dec 20" in n for n in scope.notes)


def test_teams_and_unassigned_add_up_to_the_total() -> None:
    """A team takes its projects' cells; unassigned is the rest, so team + unassigned = total, each week."""
    now = dt.datetime(2026, 12, 21, 8, tzinfo=UTC)
    config = _doc(teams={"search": {"budget_usd": 100, "match": {"openai": {"project_ids": ["proj_search"]}}}})
    cells = {
        ("2026-12-14", _oa("proj_search")): "12.5",
        ("2026-12-08", _oa("proj_search")): "10",
        ("2026-12-15", _oa("proj_batch")): "3",
        ("2026-12-09", _oa("proj_batch")): "6",
    }
    anth = _result("anthropic", now, {("2026-12-15", (("model", "m"),)): "1"}, cell_dims=("model", "workspace"))
    report = weekly.build(config, [_result("openai", now, cells), anth], [], now)
    team, rest, total = report.scope("team/search"), report.scope("unassigned"), report.scope("total")
    assert (team.this_usd, team.prev_usd) == (D("12.5"), D(10))
    assert (rest.this_usd, rest.prev_usd) == (D(4), D(6))
    assert team.this_usd + rest.this_usd == total.this_usd and team.prev_usd + rest.prev_usd == total.prev_usd
    assert [m.key for g in team.movers if g.dimension == "project" for m in g.movers] == ["proj_search"]


def test_render_blocks_are_valid_block_kit_for_the_scopes_asked() -> None:
    """The blocks parse and validate as Block Kit, and hold only the scopes a destination shows."""
    from slack_sdk.models.blocks import Block

    now = MONDAY_DEC_7
    report = weekly.build(_doc(), [_result("openai", now, {("2026-12-01", _oa("proj_a")): "30"})], [], now)
    blocks = weekly.render_blocks(report, ["total"])
    for b in blocks:
        parsed = Block.parse(dict(b))
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == b, "the shape slack_sdk itself writes"
    text = json.dumps(blocks)
    assert "*Total*" in text and "*OpenAI*" not in text
    assert len(weekly.render_blocks(report, None, room=2)) == 0, "no room: nothing rather than a broken message"


def test_to_json_carries_exact_decimals_and_the_movers() -> None:
    """The JSON form has exact amounts as strings, "new", the partial flag and the movers' tail."""
    now = dt.datetime(2026, 12, 21, 8, tzinfo=UTC)
    cells = {("2026-12-14", _oa("proj_a")): "0.125", ("2026-12-15", _oa("proj_b")): "1"}
    doc = weekly.to_json(weekly.build(_doc(), [_result("openai", now, cells)], [], now))
    openai = next(s for s in doc["scopes"] if s["name"] == "openai")
    assert openai["this_week_usd"] == "1.125" and openai["new"] is True and openai["change_pct"] is None
    assert doc["key"] == "weekly:2026-W51" and doc["week"]["start"] == "2026-12-14"
    assert json.loads(json.dumps(doc)) == doc


# --- the real check path over a replayed month --------------------------------------------------

SCENARIO = {
    "name": "weekly",
    "accounts": [
        {
            "provider": "openai",
            "label": "prod",
            "key": "sk-admin-weekly-prod-000001",
            "spend": {"base_daily_usd": "100", "daily_growth_pct": "2"},
            "breakdown": {
                "line_item": [{"id": "gpt-5.4, input", "weight": 3}, {"id": "gpt-5.4, output", "weight": 1}],
                "project_id": [{"id": "proj_search", "weight": 2}, {"id": "proj_batch", "weight": 1}],
            },
        },
        {
            "provider": "anthropic",
            "label": "main",
            "key": "sk-ant-admin01-weekly-main-01",
            "spend": {"base_daily_usd": "50", "daily_growth_pct": "1"},
            "breakdown": {"description": [{"id": "Claude Usage", "weight": 1}]},
        },
    ],
}
BUDGETS = {
    "total_budget_usd": 100000,
    "providers": {
        "openai": {"budget_usd": 60000, "accounts": [{"label": "prod", "key_env": "WEEKLY_OPENAI"}]},
        "anthropic": {"budget_usd": 40000, "accounts": [{"label": "main", "key_env": "WEEKLY_ANTHROPIC"}]},
    },
    "teams": {"search": {"budget_usd": 10000, "match": {"openai": {"project_ids": ["proj_search"]}}}},
    "digest": {"enabled": False},
    "weekly_report": {"weekday": "monday", "hour_utc": 8, "top": 3},
}
PARTS = {"openai": ["openai/prod"], "anthropic": ["anthropic/main"], "total": ["openai/prod", "anthropic/main"]}
REPLAY_FROM = dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
REPLAY_TO = dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


def _week_sum(sim: Simulator, scope: str, week: weekly.Week) -> Decimal:
    start = dt.datetime.combine(week.start, dt.time(), UTC)
    end = start + dt.timedelta(days=7)
    daily = sim.scenario.expected_daily(scope, now=end, month_start=start, lag=dt.timedelta(0))
    return sum((v for d, v in daily.items() if week.holds(d)), Decimal(0))


def _week_project(sim: Simulator, scope: str, week: weekly.Week, project: str) -> Decimal:
    start = dt.datetime.combine(week.start, dt.time(), UTC)
    end = start + dt.timedelta(days=7)
    spent = sim.scenario.expected_breakdown(scope, now=end, month_start=start, lag=dt.timedelta(0))
    return spent["project_id"].get(project, Decimal(0))


def test_replayed_month_says_one_weekly_report_per_iso_week_equal_to_the_scenario(tmp_path: Path) -> None:
    """Hourly over December: one weekly event per ISO week (FileStore state), each scope's two weeks equal
    to the scenario's own sums, the previous month read in the weekly hour only and never counted in MTD."""
    state = FileStore(tmp_path / "state.json")
    with Simulator.start(Scenario.from_dict(SCENARIO), clock=REPLAY_FROM) as sim, SlackReceiver.start() as slack:
        env = {
            **sim.env(),
            "BUDGET_CONFIG": json.dumps(BUDGETS),
            "WEEKLY_OPENAI": SCENARIO["accounts"][0]["key"],
            "WEEKLY_ANTHROPIC": SCENARIO["accounts"][1]["key"],
            "STATE_FILE": str(tmp_path / "state.json"),
        }
        settings = Settings.from_env(env)
        deps = default_deps(settings, SecretResolver(env=env))
        reports: dict[str, weekly.WeekReport] = {}
        delivered: list[str] = []
        t = REPLAY_FROM
        while t <= REPLAY_TO:
            sim.set_clock(t)
            outcome = run_check(settings, deps, t, store=state, webhook_url=slack.hook_url)
            assert outcome.state_error is None and outcome.notify_error is None
            assert bool(outcome.history) == (outcome.weekly is not None and t.day < 15), t
            if outcome.weekly is not None:
                reports[t.isoformat()] = outcome.weekly
                total = next(s for s in outcome.scopes if s.level == "total")
                mtd = sum((sim.expected_mtd(s, now=t) for s in ("openai/prod", "anthropic/main")), D(0))
                assert total.mtd_usd == mtd, "the previous period never counts toward month-to-date"
            delivered.extend(k for k in outcome.delivered if k.startswith("weekly:"))
            t += dt.timedelta(hours=1)
        posted = [m for m in slack.messages() if "Weekly LLM spend" in json.dumps(m)]
    assert sorted(reports) == [f"2026-12-{d:02d}T08:00:00+00:00" for d in (7, 14, 21, 28)]
    assert sorted(delivered) == ["weekly:2026-W49", "weekly:2026-W50", "weekly:2026-W51", "weekly:2026-W52"]
    assert len(posted) == 4, "one Slack message with the weekly report per week"
    doc = json.loads((tmp_path / "state.json").read_text())
    stored = [k for k in doc["events"].get("2026-12", {}) if k.startswith("weekly:")]
    assert sorted(stored) == sorted(delivered), "filed once each, under the month of the check"
    for report in reports.values():
        for scope, parts in PARTS.items():
            s = report.scope(scope)
            this = sum((_week_sum(sim, p, report.week) for p in parts), D(0))
            prev = sum((_week_sum(sim, p, report.previous) for p in parts), D(0))
            assert (s.this_usd, s.prev_usd, s.change_usd) == (this, prev, this - prev), (report.key, scope)
            assert not s.partial, (report.key, scope, s.notes)
        team = report.scope("team/search")
        assert team.this_usd == _week_project(sim, "openai/prod", report.week, "proj_search")
        assert team.prev_usd == _week_project(sim, "openai/prod", report.previous, "proj_search")
        assert team.this_usd + report.scope("unassigned").this_usd == report.scope("total").this_usd


# --- each source reads a past, complete billing period ------------------------------------------

WEEKLY_HOUR = dt.datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _previous(source: Any, now: dt.datetime) -> BillingPeriod:
    """The period `check.fetch_with_history` asks for: the one containing `start - 1 s`, in the source's zone."""
    current = source.billing_period(now)
    return BillingPeriod.containing(current.start - dt.timedelta(seconds=1), current.tz)


@pytest.mark.parametrize("complete_days_only", [False, True], ids=["today-served", "complete-days"])
def test_simulated_sources_read_the_whole_previous_month(tmp_path: Path, complete_days_only: bool) -> None:
    """OpenAI and Anthropic (both day modes) fetched for November at its last second, a week later, give
    every November day, complete, summing to the scenario's November exactly, with cells."""
    from providers import build_source

    scenario = Scenario.from_dict(SCENARIO)
    with Simulator.start(scenario, clock=WEEKLY_HOUR, complete_days_only=complete_days_only) as sim:
        env = {
            **sim.env(),
            "BUDGET_CONFIG": json.dumps(BUDGETS),
            "WEEKLY_OPENAI": SCENARIO["accounts"][0]["key"],
            "WEEKLY_ANTHROPIC": SCENARIO["accounts"][1]["key"],
            "STATE_FILE": str(tmp_path / "state.json"),
        }
        settings = Settings.from_env(env)
        deps = default_deps(settings, SecretResolver(env=env))
        deps.cell_dims = settings.budgets.cell_dims()
        for provider, account in (("openai", "prod"), ("anthropic", "main")):
            acc = next(a for a in settings.budgets.accounts(provider) if a.label == account)
            source = build_source(provider, acc, deps)
            period = _previous(source, WEEKLY_HOUR)
            assert (period.key, period.now) == ("2026-11", dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
            report = source.fetch(period, Deadline(30))
            nov = scenario.expected_daily(
                f"{provider}/{account}",
                now=dt.datetime(2026, 12, 1, tzinfo=UTC),
                month_start=dt.datetime(2026, 11, 1, tzinfo=UTC),
                lag=dt.timedelta(0),
            )
            assert {d.day: d.amount for d in report.daily} == {d: v for d, v in nov.items() if d.month == 11}
            assert report.mtd_usd == sum(nov.values(), D(0)) > 0
            assert report.freshness.missing_from is None and report.partial_reason is None
            assert report.cell_dims is not None and sum((c.amount for c in report.cells), D(0)) == report.mtd_usd


@pytest.mark.emulator
def test_gemini_reads_the_previous_invoice_month_with_the_rows_exported_since(bigquery_emulator: Any) -> None:
    """Gemini's previous (Pacific) invoice month, asked at its last second from the weekly hour, counts the
    export's rows of that month exported by the check (a late row of Nov 30 exported Dec 2 included)."""
    import devservers
    from providers import gemini
    from providers.gemini import GeminiAccount
    from simulator import billing_export as sim

    client = devservers.bigquery_client(bigquery_emulator)
    table = f"{client.project}.billing.gcp_billing_export_v1_01WEEK_234567_89WEEK"
    rows = sim.scenario_rows("2026-11")
    late = {
        **next(r for r in rows if r["invoice"]["month"] == "202611"),
        "usage_start_time": "2026-12-01T06:00:00Z",  # Nov 30, 22:00 Pacific
        "usage_end_time": "2026-12-01T07:00:00Z",
        "export_time": "2026-12-02T09:00:00Z",  # after the invoice month ended
        "cost": 42.5,
        "credits": [],
    }
    rows = [*rows, late]
    sim.create_export_table(client, table, replace=True)
    sim.load(client, table, rows)
    settings = Settings.from_env({"BUDGET_CONFIG": json.dumps(BUDGETS), "STATE_FILE": "/nonexistent/s.json"})
    deps = default_deps(settings, SecretResolver(env={}))
    deps.bigquery_emulator_host, deps.bigquery_job_project, deps.memo = bigquery_emulator.url, client.project, None
    deps.deep_scan_hour_utc, deps.past_as_of = None, WEEKLY_HOUR
    source = gemini.from_config(GeminiAccount(billing_export_table=table), deps)
    period = _previous(source, WEEKLY_HOUR)
    assert period.key == "2026-11" and period.now.astimezone(PACIFIC).strftime("%d %H:%M:%S") == "30 23:59:59"
    report = source.fetch(period, Deadline(30))
    ids = sim.GEMINI_SERVICE_IDS
    assert report.mtd_usd == sim.expected_net_usd(rows, "202611", ids, WEEKLY_HOUR)
    assert report.mtd_usd - sim.expected_net_usd(rows, "202611", ids, period.now) == sim.row_net_usd(late) > 0
    assert len(report.daily) == 30 and report.daily[-1].day == dt.date(2026, 11, 30)


# --- the check's hook: previous periods in the weekly hour, kept apart ---------------------------


@dataclasses.dataclass
class _DailySource:
    """$10 every day of any period it is asked for; a past period fails or succeeds as told."""

    past_fails: bool
    asked: list[str]
    provider: str = "weeklyfake"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        self.asked.append(period.key)
        if self.past_fails and period.now < MONDAY_DEC_7 - dt.timedelta(days=6):
            raise ProviderError(Cause.SERVER_ERROR, "HTTP 500 from the billing API")
        acc = CostAccumulator(period)
        day = period.first_day
        while day <= min(period.today, period.last_day):
            acc.add(day, D(10))
            day += dt.timedelta(days=1)
        return acc.report(Freshness(period.now), requests=1)


def _fake_spec(source: _DailySource, *, past_months: bool = True) -> ProviderSpec:
    return ProviderSpec(
        name="weeklyfake",
        title="Weekly Fake",
        console_url="https://example.invalid/weekly",
        account_schema=Account,
        build=lambda account, deps: source,
        past_months=past_months,
    )


def _fake_settings(tmp_path: Path) -> Settings:
    doc = {
        "total_budget_usd": 100000,
        "providers": {"weeklyfake": {"budget_usd": 100000}},
        "weekly_report": {"weekday": "monday", "hour_utc": 8},
    }
    return Settings.from_env({"BUDGET_CONFIG": json.dumps(doc), "STATE_FILE": str(tmp_path / "state.json")})


@pytest.mark.parametrize(("past_fails", "past_months"), [(False, True), (True, True), (False, False)])
def test_previous_period_is_read_in_the_weekly_hour_only_and_never_counts_toward_the_month(
    tmp_path: Path, past_fails: bool, past_months: bool
) -> None:
    """The weekly hour asks for November too (unless the source cannot read a past month); the month-to-date
    is December's alone; a failed or unreadable November makes the weekly scopes partial, never the check."""
    source = _DailySource(past_fails, [])
    with providers.registered(_fake_spec(source, past_months=past_months)):
        settings = _fake_settings(tmp_path)
        deps = default_deps(settings, SecretResolver(env={}))
        quiet = run_check(settings, deps, MONDAY_DEC_7 + dt.timedelta(hours=1), dry_run=True)
        assert source.asked == ["2026-12"] and quiet.history == [] and quiet.weekly is None
        source.asked.clear()
        outcome = run_check(settings, deps, MONDAY_DEC_7, dry_run=True)
    assert sorted(source.asked) == (["2026-11", "2026-12"] if past_months else ["2026-12"])
    assert next(s for s in outcome.scopes if s.level == "total").mtd_usd == D(70), "Dec 1–7 only"
    assert not outcome.partial, "the previous period never makes the check partial"
    assert outcome.weekly is not None and "weekly:2026-W49" in outcome.pending
    scope = outcome.weekly.scope("weeklyfake")
    broken = past_fails or not past_months
    assert scope.partial == broken and outcome.weekly.scope("total").partial == broken
    if broken:
        assert scope.this_usd == D(60), "Dec 1–6 read; Nov 30 unknown, not $0 and not guessed"
        why = "HTTP 500 from the billing API" if past_fails else "Weekly Fake cannot report a past billing month"
        assert any(why in n for n in scope.notes), scope.notes
        assert outcome.history[0].status == "failed"
    else:
        assert (scope.this_usd, scope.prev_usd, scope.describe()) == (D(70), D(70), "no change")


def test_simulated_xai_reads_the_whole_previous_month(tmp_path: Path) -> None:
    """xAI's usage for November, asked at its last second a week later, is every November day, exactly."""
    from providers import build_source

    demo = json.loads((Path(__file__).resolve().parent.parent / "simulator/scenarios/demo.json").read_text())
    xai = next(a for a in demo["accounts"] if a["provider"] == "xai")
    scenario = Scenario.from_dict({"name": "weekly-xai", "accounts": [xai]})
    doc = {
        "total_budget_usd": 5000,
        "providers": {
            "xai": {
                "budget_usd": 5000,
                "accounts": [{"label": xai["label"], "team_id": xai["team_id"], "key_env": "WEEKLY_XAI"}],
            }
        },
    }
    with Simulator.start(scenario, clock=WEEKLY_HOUR) as sim:
        env = {**sim.env(), "BUDGET_CONFIG": json.dumps(doc), "WEEKLY_XAI": xai["key"]}
        env["STATE_FILE"] = str(tmp_path / "state.json")
        settings = Settings.from_env(env)
        deps = default_deps(settings, SecretResolver(env=env))
        source = build_source("xai", settings.budgets.accounts("xai")[0], deps)
        period = _previous(source, WEEKLY_HOUR)
        report = source.fetch(period, Deadline(30))
    nov = scenario.expected_daily(
        f"xai/{xai['label']}",
        now=dt.datetime(2026, 12, 1, tzinfo=UTC),
        month_start=dt.datetime(2026, 11, 1, tzinfo=UTC),
        lag=dt.timedelta(0),
    )
    assert {d.day: d.amount for d in report.daily} == {d: v for d, v in nov.items() if d.month == 11}
    assert report.mtd_usd == sum(nov.values(), D(0)) > 0 and report.partial_reason is None


def test_each_destination_gets_the_weekly_report_once_a_week_with_its_own_scopes(tmp_path: Path) -> None:
    """Three destinations, December at 07-09 UTC daily: each gets one weekly report per ISO week (acceptance 4);
    the search channel's says Team search's week over week, the default's the total and the providers."""
    budgets = {
        **BUDGETS,
        "teams": {
            "search": {**BUDGETS["teams"]["search"], "notify": ["search"]},  # type: ignore[index]
        },
        "destinations": {
            "finops": {"webhook_env": "WEEKLY_FINOPS_HOOK"},
            "search": {"webhook_env": "WEEKLY_SEARCH_HOOK"},
            "exec": {"webhook_env": "WEEKLY_EXEC_HOOK"},
        },
        "default_destination": "finops",
    }
    state = FileStore(tmp_path / "state.json")
    with Simulator.start(Scenario.from_dict(SCENARIO), clock=REPLAY_FROM) as sim, SlackReceiver.start() as slack:
        env = {
            **sim.env(),
            "BUDGET_CONFIG": json.dumps(budgets),
            "WEEKLY_OPENAI": SCENARIO["accounts"][0]["key"],
            "WEEKLY_ANTHROPIC": SCENARIO["accounts"][1]["key"],
            **{f"WEEKLY_{d.upper()}_HOOK": slack.hook_url(d) for d in ("finops", "search", "exec")},
        }
        settings = Settings.from_env(env)
        deps = default_deps(settings, SecretResolver(env=env))
        reports: dict[str, weekly.WeekReport] = {}
        for day in range(1, 32):
            for hour in (7, 8, 9):
                t = dt.datetime(2026, 12, day, hour, tzinfo=UTC)
                sim.set_clock(t)
                outcome = run_check(settings, deps, t, store=state)
                assert outcome.state_error is None and outcome.notify_error is None, t
                if outcome.weekly is not None:
                    reports[outcome.weekly.key] = outcome.weekly

        def weekly_texts(dest: str) -> list[str]:
            out = []
            for m in slack.messages(path=slack.hook_path(dest)):
                blocks = json.dumps(m.get("blocks", []))
                if "Weekly LLM spend" in blocks:
                    out.append(blocks)
            return out

        per_dest = {d: weekly_texts(d) for d in ("finops", "search", "exec")}
    weeks = ["weekly:2026-W49", "weekly:2026-W50", "weekly:2026-W51", "weekly:2026-W52"]
    assert sorted(reports) == weeks
    assert {d: len(v) for d, v in per_dest.items()} == {"finops": 4, "search": 4, "exec": 4}
    doc = json.loads((tmp_path / "state.json").read_text())
    stored = sorted(k for k in doc["events"]["2026-12"] if k.startswith("weekly:"))
    assert stored == sorted([*weeks, *(f"{w}@search" for w in weeks), *(f"{w}@exec" for w in weeks)])
    for blocks, report in zip(per_dest["search"], (reports[w] for w in weeks), strict=True):
        team = report.scope("team/search")
        assert "Team search" in blocks and usd(team.this_usd) in blocks and "*Total*" not in blocks
        assert team.describe() in blocks, "the week-over-week change is in the team's channel"
    for blocks, report in zip(per_dest["finops"], (reports[w] for w in weeks), strict=True):
        total = report.scope("total")
        assert "*Total*" in blocks and usd(total.this_usd) in blocks and total.describe() in blocks
        assert "Team search" not in blocks, "the team's own channel shows its week; the default does not repeat it"
    assert all("*Total*" in b and "Team search" in b for b in per_dest["exec"]), "named by the report only: all of it"
