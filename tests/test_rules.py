"""Budget rules: scopes, thresholds, forecast from settled days, spikes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from support import budgets, failed_for, report_for

from alerts import rules
from errors import Cause
from models import UTC, BillingPeriod, DailyCost, Freshness, SourceResult

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def test_scopes_roll_accounts_into_providers_and_total() -> None:
    """Account figures sum into their provider and the total; order is total, provider, its accounts."""
    cfg = budgets(
        providers={
            "openai": {"budget_usd": 500, "accounts": [{"label": "a", "budget_usd": 100}, {"label": "b"}]},
            "anthropic": {"budget_usd": 400},
        }
    )
    results = [
        report_for("openai", "a", NOW, ["10.005"]),
        report_for("openai", "b", NOW, ["20"]),
        report_for("anthropic", "default", NOW, ["1.5"]),
    ]
    scopes = {s.name: s for s in rules.evaluate(cfg, results, NOW)}
    assert [s.name for s in rules.evaluate(cfg, results, NOW)] == [
        "total",
        "openai",
        "openai/a",
        "openai/b",
        "anthropic",
        "anthropic/default",
    ]
    assert scopes["openai"].mtd_usd == Decimal("30.005")
    assert scopes["total"].mtd_usd == Decimal("31.505")
    assert scopes["openai/a"].pct == Decimal("10.0") and scopes["openai/b"].budget_usd is None


def test_failed_account_makes_scopes_partial_not_zero() -> None:
    """A failed account leaves its provider partial (a lower bound) and never adds $0 silently."""
    results = [failed_for("openai", "default", NOW, Cause.AUTH), report_for("anthropic", "default", NOW, ["5"])]
    scopes = {s.name: s for s in rules.evaluate(budgets(), results, NOW)}
    assert scopes["openai"].mtd_usd is None and scopes["openai"].partial
    assert scopes["total"].partial and scopes["total"].failed_parts == ("openai/default",)
    assert scopes["anthropic"].partial is False


def test_threshold_events_hold_for_every_crossed_threshold() -> None:
    """At 85% the 50 and 80 thresholds hold; keys carry month, scope and percentage."""
    results = [report_for("openai", "default", NOW, ["425"]), report_for("anthropic", "default", NOW, ["0"])]
    events = rules.budget_events(budgets(), rules.evaluate(budgets(), results, NOW))
    keys = {e.key for e in events if e.kind == "threshold"}
    assert keys == {"threshold:2026-11:openai:50", "threshold:2026-11:openai:80"}


def test_partial_total_crossing_still_alerts_labelled() -> None:
    """A partial total over a threshold alerts (it is a lower bound) and says so."""
    results = [failed_for("openai", "default", NOW, Cause.TIMEOUT), report_for("anthropic", "default", NOW, ["600"])]
    events = rules.budget_events(budgets(), rules.evaluate(budgets(), results, NOW))
    total = [e for e in events if e.scope == "total"]
    assert {e.key for e in total} == {"threshold:2026-11:total:50"}
    assert "partial data" in total[0].line


def test_forecast_needs_two_settled_days() -> None:
    """On the 1st and 2nd there is no forecast; on the 3rd there is."""
    for day, expect in ((1, False), (2, False), (3, True)):
        now = dt.datetime(2026, 11, day, 12, tzinfo=UTC)
        period = BillingPeriod.containing(now)
        daily = [DailyCost(dt.date(2026, 11, d), Decimal(10)) for d in range(1, day + 1)]
        fc = rules.forecast(daily, Decimal(100), period, settled_before=period.today)
        assert (fc is not None) is expect


def test_forecast_uses_settled_days_and_names_the_crossing_day() -> None:
    """$10/day over 9 settled days projects $300 in November and reaches $250 on Nov 25."""
    now = dt.datetime(2026, 11, 10, 6, tzinfo=UTC)
    period = BillingPeriod.containing(now)
    daily = [DailyCost(dt.date(2026, 11, d), Decimal(10)) for d in range(1, 10)] + [
        DailyCost(dt.date(2026, 11, 10), Decimal("0.5"))
    ]  # today's partial bucket is ignored
    fc = rules.forecast(daily, Decimal(250), period, settled_before=period.today)
    assert fc is not None and fc.projected_usd == Decimal("300.00") and fc.settled_days == 9
    assert fc.crossing_day == dt.date(2026, 11, 25)


def test_forecast_respects_lagging_data() -> None:
    """Days the source's data does not fully cover yet are not settled."""
    now = dt.datetime(2026, 11, 10, 6, tzinfo=UTC)
    period = BillingPeriod.containing(now)
    daily = [DailyCost(dt.date(2026, 11, d), Decimal(10)) for d in range(1, 9)] + [
        DailyCost(dt.date(2026, 11, 9), Decimal(1))
    ]
    fc = rules.forecast(daily, Decimal(1000), period, settled_before=dt.date(2026, 11, 9))
    assert fc is not None and fc.settled_days == 8 and fc.projected_usd == Decimal("300.00")


def test_forecast_event_once_projection_exceeds_budget() -> None:
    """A projection over 100% of budget yields one forecast event per scope and month."""
    now = dt.datetime(2026, 11, 10, 6, tzinfo=UTC)
    results = [
        report_for("openai", "default", now, ["30"] * 9 + ["1"]),
        report_for("anthropic", "default", now, ["0"] * 10),
    ]
    events = rules.budget_events(budgets(), rules.evaluate(budgets(), results, now))
    fc = [e for e in events if e.kind == "forecast"]
    assert {e.key for e in fc} == {"forecast:2026-11:openai:100"}
    assert "reaching it on Nov 17" in fc[0].line


def test_spike_far_above_the_trailing_median() -> None:
    """A day at 5x the trailing median and above the minimum is a spike for that day and account."""
    now = dt.datetime(2026, 11, 12, 6, tzinfo=UTC)
    daily = ["10"] * 10 + ["50", "1"]
    results = [report_for("openai", "default", now, daily), report_for("anthropic", "default", now, ["10"] * 12)]
    events = rules.spike_events(budgets(), rules.evaluate(budgets(), results, now))
    assert [e.key for e in events] == ["spike:2026-11-11:openai/default"]
    assert "5.0×" in events[0].line


def test_small_or_steady_days_are_not_spikes() -> None:
    """Below the dollar minimum, or under the factor, nothing fires."""
    now = dt.datetime(2026, 11, 12, 6, tzinfo=UTC)
    results = [
        report_for("openai", "default", now, ["1"] * 10 + ["5", "0"]),
        report_for("anthropic", "default", now, ["10"] * 10 + ["19", "0"]),
    ]
    assert rules.spike_events(budgets(), rules.evaluate(budgets(), results, now)) == []


def test_money_formatting() -> None:
    """Two decimals, half up, thousands separators."""
    assert rules.money(Decimal("1234.565")) == "$1,234.57" and rules.money(Decimal("-2")) == "-$2.00"


def test_threshold_compares_exact_amounts_not_the_rounded_percentage() -> None:
    """$1,499.9999991 of $3,000 displays as 50.0% but has not crossed 50%."""
    cfg = budgets(providers={"openai": {"budget_usd": 3000}}, total_budget_usd=100000)
    results = [report_for("openai", "default", NOW, ["1499.9999991"])]
    scopes = rules.evaluate(cfg, results, NOW)
    assert next(s for s in scopes if s.name == "openai").pct == Decimal("50.0")
    assert rules.budget_events(cfg, scopes) == []


def test_total_leaves_out_a_source_still_on_last_month() -> None:
    """At Dec 1 03:00 UTC Gemini is still on November (Pacific): its spend does not count against December."""
    from models import PACIFIC

    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    cfg = budgets(
        providers={
            "openai": {"budget_usd": 500},
            "gemini": {
                "budget_usd": 2000,
                "accounts": [{"label": "b", "billing_export_table": "proj-1.billing.gcp_billing_export_v1_X"}],
            },
        }
    )
    results = [report_for("openai", "default", now, ["10"]), report_for("gemini", "b", now, ["70"] * 30, tz=PACIFIC)]
    scopes = {s.name: s for s in rules.evaluate(cfg, results, now)}
    assert scopes["total"].mtd_usd == Decimal(10) and scopes["total"].month == "2026-12"
    assert scopes["total"].note and "Gemini / Vertex AI not included yet" in scopes["total"].note
    assert scopes["gemini"].mtd_usd == Decimal(2100) and scopes["gemini"].month == "2026-11"
    keys = {e.key for e in rules.budget_events(cfg, list(scopes.values()))}
    assert "threshold:2026-11:gemini:100" in keys
    assert not any(k.startswith("threshold:2026-12:total") for k in keys)


def _reported_through(result: SourceResult, missing_from: dt.date) -> SourceResult:
    """`result` as a complete-days source reports it: data ends at `missing_from` 00:00 UTC."""
    assert result.report is not None
    as_of = dt.datetime.combine(missing_from, dt.time(), UTC)
    fresh = Freshness(as_of, "complete days", missing_from=missing_from)
    return dataclasses.replace(result, report=dataclasses.replace(result.report, freshness=fresh))


def test_forecast_does_not_dip_for_days_a_source_has_not_reported() -> None:
    """Complete through Nov 26 (Nov 27 and today missing, $0 in the series): the projection stays $300."""
    anthropic = _reported_through(
        report_for("anthropic", "default", NOW, ["10"] * 26 + ["0", "0"]), dt.date(2026, 11, 27)
    )
    scopes = {s.name: s for s in rules.evaluate(budgets(), [anthropic], NOW)}
    fc = scopes["anthropic"].forecast  # the provider scope carries the budget
    assert fc is not None and fc.projected_usd == Decimal("300.00") and fc.settled_days == 26
    assert "from Nov 27 not fully reported yet" in fc.note
    assert scopes["anthropic/default"].covered_daily[-1].day == dt.date(2026, 11, 26)
    naive = {
        s.name: s
        for s in rules.evaluate(budgets(), [report_for("anthropic", "default", NOW, ["10"] * 26 + ["0", "0"])], NOW)
    }
    dipped = naive["anthropic"].forecast
    assert dipped is not None and dipped.projected_usd < Decimal(300), "reading the missing day as $0 dips"


def test_the_total_forecast_waits_for_its_slowest_source() -> None:
    """OpenAI serves today, Anthropic is complete through Nov 27: the total settles through Nov 27 only."""
    openai = report_for("openai", "default", NOW, ["20"] * 27 + ["5"])
    anthropic = _reported_through(report_for("anthropic", "default", NOW, ["10"] * 27 + ["0"]), dt.date(2026, 11, 28))
    total = next(s for s in rules.evaluate(budgets(), [openai, anthropic], NOW) if s.name == "total")
    assert total.missing_from == dt.date(2026, 11, 28)
    assert total.forecast is not None and total.forecast.projected_usd == Decimal("900.00")


def test_spike_on_the_newest_complete_day_of_a_lagging_source() -> None:
    """Complete through Nov 26 with Nov 26 at 10x: the spike is found there, not hidden behind missing $0 days."""
    daily = ["10"] * 25 + ["100", "0", "0"]
    lagging = _reported_through(report_for("anthropic", "default", NOW, daily), dt.date(2026, 11, 27))
    events = rules.spike_events(budgets(), rules.evaluate(budgets(), [lagging], NOW))
    assert [e.key for e in events] == ["spike:2026-11-26:anthropic/default"]
    assert (
        rules.spike_events(budgets(), rules.evaluate(budgets(), [report_for("anthropic", "default", NOW, daily)], NOW))
        == []
    )


def test_a_missing_today_is_not_a_quiet_day_in_any_baseline() -> None:
    """A quiet, complete-through-yesterday source: no spike read out of the missing today, none from nothing."""
    quiet = _reported_through(report_for("anthropic", "default", NOW, ["10"] * 27 + ["0"]), dt.date(2026, 11, 28))
    scopes = rules.evaluate(budgets(), [quiet], NOW)
    assert rules.spike_events(budgets(), scopes) == []
    assert next(s for s in scopes if s.name == "anthropic/default").covered_daily[-1] == DailyCost(
        dt.date(2026, 11, 27), Decimal(10)
    )
