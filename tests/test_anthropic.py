"""Anthropic cost_report: cents strings, pagination, freshness from the buckets, the 1st, classified failures."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from support import load_fixture, make_deps

from errors import Cause, ProviderError
from models import UTC, BillingPeriod
from providers import Deadline
from providers._aggregate import CostAccumulator
from providers.anthropic import PRIORITY_TIER_NOTE, AnthropicAccount, AnthropicCosts, parse_cost_report_page
from simulator import Scenario, Simulator

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def _fetch(handler: Any, now: dt.datetime = NOW) -> Any:
    src = AnthropicCosts(AnthropicAccount(), make_deps(handler))
    return src.fetch(src.billing_period(now), Deadline(30))


def test_amounts_are_cent_strings() -> None:
    """ "123.78912" cents is $1.2378912; "5000" cents is $50; summed exactly."""
    acc = CostAccumulator(BillingPeriod.containing(NOW))
    parse_cost_report_page(load_fixture("anthropic", "cost_report"), acc)
    assert acc.total() == Decimal("51.2428912")
    lines = {(b.dimension, b.key): b.amount for b in acc.breakdown()}
    assert lines[("model", "claude-opus-4-6")] == Decimal("50")
    assert lines[("model", "Code Execution Usage")] == Decimal("0.005")
    assert lines[("workspace", "Default")] == Decimal("50.005")


@pytest.mark.parametrize(
    "doc",
    [
        load_fixture("anthropic", "cost_report_error"),
        {"has_more": False},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": 12.5, "currency": "USD"}]}]},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": "12", "currency": "EUR"}]}]},
        {"data": [{"starting_at": "2026-11-01", "results": []}]},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": "NaN", "currency": "USD"}]}]},
    ],
)
def test_error_envelopes_and_drift_are_bad_responses(doc: dict[str, Any]) -> None:
    """Error envelope, missing data, numeric amount (unit unknown), other currency, NaN all raise."""
    with pytest.raises(ProviderError) as exc:
        parse_cost_report_page(doc, CostAccumulator(BillingPeriod.containing(NOW)))
    assert exc.value.cause is Cause.BAD_RESPONSE


def _bucket(day: int, cents: str) -> dict[str, Any]:
    return {
        "starting_at": f"2026-11-{day:02d}T00:00:00Z",
        "ending_at": f"2026-11-{day + 1:02d}T00:00:00Z",
        "results": [{"amount": cents, "currency": "USD", "workspace_id": None, "description": "x", "model": "m"}],
    }


def test_three_pages_headers_and_window() -> None:
    """Follows next_page over 3 pages with x-api-key + anthropic-version; ending_at is tomorrow 00:00 UTC."""
    seen: list[httpx.Request] = []
    pages = {
        None: {"data": [_bucket(1, "100")], "has_more": True, "next_page": "page_a"},
        "page_a": {"data": [_bucket(2, "250.5")], "has_more": True, "next_page": "page_b"},
        "page_b": {"data": [_bucket(3, "0.00001")], "has_more": False, "next_page": None},
    }

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=pages[req.url.params.get("page")])

    rep = _fetch(handler)
    assert rep.mtd_usd == Decimal("3.5050001") and rep.requests == 3
    q = seen[0].url.params
    assert q["starting_at"] == "2026-11-01T00:00:00Z" and q["ending_at"] == "2026-11-29T00:00:00Z"
    assert q["limit"] == "31" and q.get_list("group_by[]") == ["description", "workspace_id"]
    assert seen[0].headers["x-api-key"] == "sk-ant-admin01-unit-test"
    assert seen[0].headers["anthropic-version"] == "2023-06-01"


DATE_RANGE_400 = {  # the message other clients quote (langwatch/langwatch#7177)
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "Invalid date range: ending date must be after starting date",
    },
}
FIRST = dt.datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def test_first_minutes_of_the_month_with_no_complete_day() -> None:
    """The date-range 400 on the 1st (no complete day yet) is a correct $0, complete days through Nov 30."""
    rep = _fetch(lambda req: httpx.Response(400, json=DATE_RANGE_400), FIRST)
    assert rep.mtd_usd == 0 and rep.period.key == "2026-12"
    assert rep.freshness.missing_from == dt.date(2026, 12, 1) and rep.freshness.complete_through == dt.date(
        2026, 11, 30
    )
    assert rep.freshness.note and "complete days through Nov 30" in rep.freshness.note
    assert [d.day for d in rep.daily] == [dt.date(2026, 12, 1)]


@pytest.mark.parametrize("message", ["no complete buckets", "starting_at: Field required", ""])
def test_any_other_400_on_the_first_is_a_failure(message: str) -> None:
    """A 400 on the 1st that is not the date-range error is a classified failure, never a $0."""
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    with pytest.raises(ProviderError) as exc:
        _fetch(lambda req: httpx.Response(400, json=body), FIRST)
    assert exc.value.cause is Cause.CLIENT_ERROR


@pytest.mark.parametrize("body", [DATE_RANGE_400, {"type": "error", "error": {"type": "invalid_request_error"}}])
def test_400_later_in_the_month_is_a_failure(body: dict[str, Any]) -> None:
    """The date-range 400 (or any 400) on the 28th is a classified failure, not a silent $0."""
    with pytest.raises(ProviderError) as exc:
        _fetch(lambda req: httpx.Response(400, json=body))
    assert exc.value.cause is Cause.CLIENT_ERROR


def _page(*buckets: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(buckets), "has_more": False, "next_page": None}


def _empty(day: int) -> dict[str, Any]:
    return {**_bucket(day, "0"), "results": []}


def test_complete_days_only_freshness_is_the_newest_bucket() -> None:
    """Buckets through Nov 27 and none for today: as of Nov 28 00:00, complete days through Nov 27, today missing."""
    rep = _fetch(lambda req: httpx.Response(200, json=_page(*(_bucket(d, "1000") for d in range(1, 28)))))
    f = rep.freshness
    assert f.as_of == dt.datetime(2026, 11, 28, tzinfo=UTC)
    assert f.missing_from == dt.date(2026, 11, 28) and f.complete_through == dt.date(2026, 11, 27)
    assert f.note and f.note.startswith("complete days through Nov 27")
    assert rep.mtd_usd == Decimal(270)


def test_processing_lag_of_a_day_moves_the_date_back() -> None:
    """With yesterday not yet processed (newest bucket Nov 26), the data is complete through Nov 26 only."""
    rep = _fetch(lambda req: httpx.Response(200, json=_page(*(_bucket(d, "1000") for d in range(1, 27)))))
    assert rep.freshness.missing_from == dt.date(2026, 11, 27)
    assert rep.freshness.as_of == dt.datetime(2026, 11, 27, tzinfo=UTC)


def test_todays_bucket_with_data_is_today_so_far() -> None:
    """A bucket for today holding rows: nothing missing, as of the documented ~5 minutes, "today so far"."""
    rep = _fetch(lambda req: httpx.Response(200, json=_page(_bucket(27, "100"), _bucket(28, "50"))))
    f = rep.freshness
    assert f.missing_from is None and f.complete_through is None
    assert f.as_of == NOW - dt.timedelta(minutes=5)
    assert f.note and f.note.startswith("today so far")


def test_an_empty_bucket_for_today_is_not_read_as_a_quiet_day() -> None:
    """Today's bucket with no rows may be unprocessed: complete days through yesterday, today missing."""
    rep = _fetch(lambda req: httpx.Response(200, json=_page(_bucket(27, "100"), _empty(28))))
    assert rep.freshness.missing_from == dt.date(2026, 11, 28)
    assert rep.freshness.as_of == dt.datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    "bucket",
    [
        {"starting_at": "2026-11-01T00:00:00Z", "results": []},
        {"starting_at": "2026-11-01T00:00:00Z", "ending_at": "2026-11-02", "results": []},
        {"starting_at": "2026-11-02T00:00:00Z", "ending_at": "2026-11-01T00:00:00Z", "results": []},
    ],
)
def test_a_bucket_without_a_usable_end_is_a_bad_response(bucket: dict[str, Any]) -> None:
    """Freshness comes from ending_at: a bucket missing it, or ending before it starts, is a drifted shape."""
    with pytest.raises(ProviderError) as exc:
        _fetch(lambda req: httpx.Response(200, json=_page(bucket)))
    assert exc.value.cause is Cause.BAD_RESPONSE


def test_every_report_says_priority_tier_is_not_included() -> None:
    """The Priority Tier exclusion rides on every Anthropic report, also the $0 of the 1st."""
    assert PRIORITY_TIER_NOTE in _fetch(lambda req: httpx.Response(200, json=_page(_bucket(28, "5")))).notes
    assert PRIORITY_TIER_NOTE in _fetch(lambda req: httpx.Response(400, json=DATE_RANGE_400), FIRST).notes
    assert "Priority Tier" in PRIORITY_TIER_NOTE and "not the whole" in PRIORITY_TIER_NOTE


SIM_SCENARIO = {
    "name": "anthropic-only",
    "accounts": [
        {
            "provider": "anthropic",
            "label": "main",
            "key": "sk-ant-admin01-unit-sim-key-0001",
            "spend": {"base_daily_usd": "48"},
            "breakdown": {"description": [{"id": "Claude Usage", "weight": 1}]},
        }
    ],
}


@pytest.fixture(scope="module")
def sim() -> Any:
    with Simulator.start(Scenario.from_dict(SIM_SCENARIO), clock=NOW) as server:
        yield server


def _fetch_from(sim: Simulator, now: dt.datetime) -> Any:
    deps = make_deps(env={"ANTHROPIC_ADMIN_KEY": SIM_SCENARIO["accounts"][0]["key"]})
    deps.base_urls = {**deps.base_urls, "anthropic": sim.url}
    src = AnthropicCosts(AnthropicAccount(), deps)
    return src.fetch(src.billing_period(now), Deadline(30))


@pytest.mark.parametrize("complete_days_only", [False, True], ids=["today-served", "complete-days"])
@pytest.mark.parametrize(
    "now",
    [NOW, dt.datetime(2026, 12, 1, 12, 30, tzinfo=UTC), dt.datetime(2026, 12, 2, 12, 30, tzinfo=UTC)],
    ids=["28th", "1st", "2nd"],
)
def test_against_the_simulator_in_both_modes(sim: Simulator, complete_days_only: bool, now: dt.datetime) -> None:
    """Both simulator modes: the exact served sum, and freshness that says what was served."""
    sim.reset()
    sim.set_clock(now)
    sim.set_complete_days_only(complete_days_only)
    rep = _fetch_from(sim, now)
    assert rep.mtd_usd == sim.expected_mtd("anthropic/main", now=now)
    midnight = dt.datetime.combine(now.date(), dt.time(), UTC)
    if complete_days_only:
        assert rep.freshness.missing_from == now.date() and rep.freshness.as_of == midnight
        assert rep.freshness.note and rep.freshness.note.startswith(f"complete days through {midnight - DAY:%b %d}")
    else:
        assert rep.freshness.missing_from is None and rep.freshness.note.startswith("today so far")
        assert rep.mtd_usd > sim.expected_mtd("anthropic/main", now=midnight)


def test_simulator_complete_days_400_is_the_date_range_message(sim: Simulator) -> None:
    """The complete-days simulator answers the 1st with the documented date-range 400, which we accept."""
    sim.reset()
    sim.set_clock(FIRST)
    sim.set_complete_days_only(True)
    _fetch_from(sim, FIRST)
    answers = [r for r in sim.requests("anthropic") if r.get("status") == 400]
    assert len(answers) == 1


@pytest.mark.parametrize(
    ("status", "cause"),
    [(401, Cause.AUTH), (403, Cause.PERMISSION), (529, Cause.SERVER_ERROR), (429, Cause.RATE_LIMIT)],
)
def test_status_codes_are_classified(status: int, cause: Cause) -> None:
    """401/403/529/429 map to auth, permission, server error and rate limit."""

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=load_fixture("anthropic", "cost_report_error"))

    with pytest.raises(ProviderError) as exc:
        _fetch(handler)
    assert exc.value.cause is cause


def test_simulator_cli_expected_follows_the_complete_days_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m simulator expected --complete-days-only` sums Anthropic's finished days only."""
    from simulator.__main__ import main as sim_cli

    def anthropic_mtd(*flags: str) -> Decimal:
        assert sim_cli(["expected", "--now", "2026-11-28T18:00:00Z", *flags]) == 0
        return Decimal(json.loads(capsys.readouterr().out)["accounts"]["anthropic/main"]["mtd_usd"])

    scenario = Scenario.load(None)
    midnight = dt.datetime(2026, 11, 28, tzinfo=UTC)
    assert anthropic_mtd() == scenario.expected_mtd("anthropic/main", now=NOW)
    assert anthropic_mtd("--complete-days-only") == scenario.expected_mtd("anthropic/main", now=midnight)
    assert anthropic_mtd("--complete-days-only") < anthropic_mtd()
