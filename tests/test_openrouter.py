"""OpenRouter: strict parsers for /activity, /keys, /credits, the month's assembly, and the simulator's faults."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from errors import Cause, ProviderError
from models import BillingPeriod, Deadline
from providers import openrouter
from providers._http import make_client
from simulator._openrouter import FAULTS, Key, OpenRouterSimulator, Spend

FIX = Path(__file__).resolve().parent / "fixtures" / "openrouter"
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
PERIOD = BillingPeriod.containing(NOW)
MGMT = "sk-or-mgmt-test"


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIX / f"{name}.json").read_text())
    return doc


# --- parsers on the documented shapes ---------------------------------------------------------


def test_activity_rows_parse_to_decimal() -> None:
    """Each documented row becomes (day, model, usage, BYOK) in exact Decimal."""
    rows = openrouter.parse_activity(fixture("activity"))
    assert len(rows) == 4
    assert rows[1] == openrouter.ActivityRow(dt.date(2026, 12, 1), "openai/gpt-4.1", Decimal("0.015"), Decimal("0.012"))


def test_keys_and_credits_parse() -> None:
    """Key counters include disabled keys; credits give all-time headroom (purchased − used)."""
    keys = openrouter.parse_keys(fixture("keys"))
    assert [(k.disabled, k.usage_monthly) for k in keys] == [(False, Decimal("3.815")), (True, Decimal("0.0"))]
    head = openrouter.parse_credits(fixture("credits"))
    assert (head.limit_usd, head.used_usd, head.remaining_usd) == (Decimal("100.5"), Decimal("25.75"), Decimal("74.75"))
    assert head.source == "OpenRouter prepaid credits"


def test_month_uses_completed_days_per_model_and_key_counters_for_today() -> None:
    """Completed days come from activity by model; today is the key counters' remainder; BYOK is not added."""
    report = openrouter.month_report(
        PERIOD, openrouter.parse_activity(fixture("activity")), openrouter.parse_keys(fixture("keys"))
    )
    assert report.mtd_usd == Decimal("3.815")
    assert [(d.day.day, d.amount) for d in report.daily] == [
        (1, Decimal("1.115")),
        (2, Decimal("2.2")),
        (3, Decimal("0.5")),
    ]
    models = {b.key: b.amount for b in report.breakdown}
    assert models == {"openai/gpt-4.1": Decimal("1.115"), "anthropic/claude-sonnet-4.5": Decimal("2.2"),
                      openrouter.TODAY_LINE: Decimal("0.5")}  # fmt: skip
    assert report.freshness.as_of == NOW and report.freshness.missing_from is None
    assert "completed UTC days through Dec 02" in (report.freshness.note or "")
    assert any("BYOK" in n and "$0.01" in n and "not added" in n for n in report.notes)


def test_without_key_counters_today_is_missing_not_zero() -> None:
    """With activity only, the total is the completed days and today is reported missing."""
    report = openrouter.month_report(PERIOD, openrouter.parse_activity(fixture("activity")), None)
    assert report.mtd_usd == Decimal("3.315")
    assert report.freshness.missing_from == dt.date(2026, 12, 3)
    assert report.freshness.as_of == dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    assert [d.day.day for d in report.daily] == [1, 2]


def test_counters_below_activity_do_not_invent_a_negative_today() -> None:
    """A deleted key's spend leaves /keys: today is then missing, and the note says why."""
    keys = [openrouter.KeyUsage("h", False, None, Decimal("1.0"), Decimal(0))]
    report = openrouter.month_report(PERIOD, openrouter.parse_activity(fixture("activity")), keys)
    assert report.mtd_usd == Decimal("3.315")
    assert report.freshness.missing_from == dt.date(2026, 12, 3)
    assert any("deleted key" in n for n in report.notes)


def test_first_of_the_month_has_no_completed_day() -> None:
    """On the 1st only the key counters know anything; rows of last month are ignored."""
    first = BillingPeriod.containing(dt.datetime(2026, 12, 1, 0, 40, tzinfo=dt.UTC))
    keys = [openrouter.KeyUsage("h", False, None, Decimal("0.25"), Decimal(0))]
    report = openrouter.month_report(first, openrouter.parse_activity(fixture("activity"))[:1], keys)
    assert report.mtd_usd == Decimal("0.25")
    assert "no completed UTC day yet" in (report.freshness.note or "")
    assert any("left out" in n for n in openrouter.month_report(first, openrouter.parse_activity(fixture("activity")),
                                                                 keys).notes)  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "doc", "needle"),
    [
        (openrouter.parse_activity, {}, "no data list"),
        (openrouter.parse_activity, {"data": {}}, "no data list"),
        (openrouter.parse_activity, {"data": [{"date": "2026-12-01", "model": "m", "usage": "0.1",
                                               "byok_usage_inference": 0}]}, "usage is not a number"),
        (openrouter.parse_activity, {"data": [{"date": "2026-12-01", "model": "m", "usage": True,
                                               "byok_usage_inference": 0}]}, "usage is not a number"),
        (openrouter.parse_activity, {"data": [{"date": "2026-12-01", "model": "m", "usage": 0.1}]},
         "byok_usage_inference is not a number"),
        (openrouter.parse_activity, {"data": [{"date": "12/01/2026", "model": "m", "usage": 0.1,
                                               "byok_usage_inference": 0}]}, "YYYY-MM-DD"),
        (openrouter.parse_activity, {"data": [{"date": "2026-12-01", "usage": 0.1, "byok_usage_inference": 0}]},
         "model is missing"),
        (openrouter.parse_activity, {"error": {"code": 500, "message": "x"}}, "error envelope"),
        (openrouter.parse_keys, {"data": [{"hash": "h", "disabled": "no", "usage_monthly": 1,
                                           "byok_usage_monthly": 0}]}, "disabled"),
        (openrouter.parse_keys, {"data": [{"hash": "h", "disabled": False, "byok_usage_monthly": 0}]},
         "usage_monthly is not a number"),
        (openrouter.parse_credits, {"data": {"total_credits": 1}}, "total_usage"),
        (openrouter.parse_credits, {"data": []}, "no data object"),
    ],
)  # fmt: skip
def test_drifted_shapes_are_classified(parse: Any, doc: dict[str, Any], needle: str) -> None:
    """Every drifted shape is BAD_RESPONSE naming the field; nothing becomes $0."""
    with pytest.raises(ProviderError) as err:
        parse(doc)
    assert err.value.cause is Cause.BAD_RESPONSE
    assert needle in err.value.message


def test_keys_pagination_follows_offset_and_refuses_loops() -> None:
    """Full pages of 100 advance the offset; a page that repeats a key is a loop, not more spend."""

    def key(i: int) -> dict[str, Any]:
        return {"hash": f"h{i}", "disabled": False, "usage_monthly": 1, "byok_usage_monthly": 0}

    asked: list[int] = []

    def pages(offset: int) -> dict[str, Any]:
        asked.append(offset)
        return {"data": [key(i) for i in range(offset, min(offset + 100, 230))]}

    assert len(openrouter.all_keys(pages)) == 230
    assert asked == [0, 100, 200]
    with pytest.raises(ProviderError, match="pagination loop"):
        openrouter.all_keys(lambda offset: {"data": [key(i) for i in range(100)]})


# --- end to end against the simulator ---------------------------------------------------------


def _spend() -> list[Spend]:
    prod, batch = Key("prod"), Key("batch", workspace_id="research", disabled=True)
    at = lambda d, h: dt.datetime(2026, 12, d, h, 15, tzinfo=dt.UTC)  # noqa: E731
    return [
        Spend(dt.datetime(2026, 11, 30, 22, tzinfo=dt.UTC), prod, "openai/gpt-4.1", Decimal("9.99")),
        Spend(at(1, 9), prod, "openai/gpt-4.1", Decimal("1.125"), byok_usd=Decimal("0.5")),
        Spend(at(1, 12), prod, "openai/gpt-4.1", Decimal("0.375"), endpoint_id="ep-2", provider_name="Azure"),
        Spend(at(2, 3), batch, "anthropic/claude-sonnet-4.5", Decimal("2.2")),
        Spend(at(3, 8), prod, "anthropic/claude-sonnet-4.5", Decimal("0.3")),
        Spend(at(3, 11), prod, "openai/gpt-4.1", Decimal("7")),  # after the simulator's now: not yet spent
    ]


@pytest.fixture
def sim() -> Iterator[OpenRouterSimulator]:
    server = OpenRouterSimulator(_spend(), now=NOW, extra_keys=tuple(Key(f"idle-{i:03d}") for i in range(120))).start()
    try:
        yield server
    finally:
        server.stop()


def _fetch(sim: OpenRouterSimulator, key: str = MGMT) -> Any:
    with make_client(sim.url, headers={"Authorization": f"Bearer {key}"}) as client:
        return openrouter.fetch_month(client, PERIOD, deadline=Deadline(30))


def test_month_equals_the_scenario_to_the_cent(sim: OpenRouterSimulator) -> None:
    """Month to date over paged keys (disabled included) equals the simulator's exact sum; BYOK apart."""
    report = _fetch(sim)
    assert report.mtd_usd == sim.month_to_date() == Decimal("4.0")
    assert report.headroom.remaining_usd == Decimal("500") - Decimal("13.99")
    assert {b.key: b.amount for b in report.breakdown}["openai/gpt-4.1"] == Decimal("1.5")
    assert report.requests == 6  # activity, workspaces, two pages of default keys, research keys, credits


def test_request_log_shows_read_only_calls(sim: OpenRouterSimulator) -> None:
    """Only GETs to /activity, /keys and /credits are sent, each with the key, disabled keys asked for."""
    _fetch(sim)
    calls = sim.log.items()
    assert {(c["method"], c["path"].removeprefix("/api/v1")) for c in calls} <= openrouter.READ_CALLS
    assert all(c["has_auth"] for c in calls)
    assert all(c["query"].get("include_disabled") == ["true"] for c in calls if c["path"].endswith("/keys"))
    asked = sorted(c["query"].get("workspace_id", [""])[0] for c in calls if c["path"].endswith("/keys"))
    assert asked == ["default", "default", "research"]


def test_workspace_listing_parses_and_pages() -> None:
    """Workspace ids page by offset until total_count; a drifted count or a loop is refused."""

    def page(offset: int) -> dict[str, Any]:
        ids = [f"w{i}" for i in range(offset, min(offset + 100, 130))]
        return {"data": [{"id": w} for w in ids], "total_count": 130}

    assert len(openrouter.all_workspaces(page)) == 130
    with pytest.raises(ProviderError, match="loop"):
        openrouter.all_workspaces(lambda offset: {"data": [{"id": "w"}], "total_count": 5})
    with pytest.raises(ProviderError, match="total_count"):
        openrouter.parse_workspaces({"data": [], "total_count": "1"})


_FAULT_CAUSES = [
    ("http_401", Cause.AUTH),
    ("http_403", Cause.PERMISSION),
    ("http_429", Cause.RATE_LIMIT),
    ("http_500", Cause.SERVER_ERROR),
    ("http_502", Cause.SERVER_ERROR),
    ("http_503", Cause.SERVER_ERROR),
    ("html", Cause.SERVER_ERROR),
    ("html_200", Cause.BAD_RESPONSE),
    ("error_envelope_200", Cause.BAD_RESPONSE),
    ("drift_missing_data", Cause.BAD_RESPONSE),
    ("drift_amount_type", Cause.BAD_RESPONSE),
]
_FAULT_CASES = [
    *((endpoint, mode, cause) for endpoint in ("activity", "workspaces", "keys") for mode, cause in _FAULT_CAUSES),
    ("keys", "pagination_loop", Cause.BAD_RESPONSE),  # /activity has no pagination
    ("workspaces", "pagination_loop", Cause.BAD_RESPONSE),
]


@pytest.mark.parametrize(("endpoint", "mode", "cause"), _FAULT_CASES)
def test_faults_are_classified_failures_never_zero(
    sim: OpenRouterSimulator, endpoint: str, mode: str, cause: Cause
) -> None:
    """Each fault on a required endpoint fails the account with its cause; none is reported as $0."""
    sim.arm(mode, endpoint=endpoint)
    with pytest.raises(ProviderError) as err:
        _fetch(sim)
    assert err.value.cause is cause


def test_a_credits_failure_is_a_note_not_a_failed_account(sim: OpenRouterSimulator) -> None:
    """Headroom is context: a 500 on /credits leaves the spend and says headroom is unavailable."""
    sim.arm("http_500", endpoint="credits")
    report = _fetch(sim)
    assert report.mtd_usd == sim.month_to_date()
    assert report.headroom is None
    assert any("credits unavailable" in n for n in report.notes)


def test_an_inference_key_is_told_to_use_a_management_key(sim: OpenRouterSimulator) -> None:
    """OpenRouter's 403 for an inference key becomes PERMISSION naming the key type; the key is not echoed."""
    with pytest.raises(ProviderError) as err:
        _fetch(sim, key="sk-or-v1-test")
    assert err.value.cause is Cause.PERMISSION
    assert "management key" in err.value.message
    assert "sk-or-v1-test" not in err.value.message


def test_a_row_for_today_is_left_out(sim: OpenRouterSimulator) -> None:
    """An /activity row dated today (not a completed day) is not counted twice with the key counters."""
    sim.arm("today_row", endpoint="activity")
    report = _fetch(sim)
    assert report.mtd_usd == sim.month_to_date()
    assert any("not a completed day" in n for n in report.notes)


def test_simulator_refuses_writes_and_bad_dates(sim: OpenRouterSimulator) -> None:
    """The simulator answers 405 to a write and 400 to a date outside the last 30 completed days."""
    import httpx

    with httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {MGMT}"}) as c:
        assert c.post("/keys", json={"name": "x"}).status_code == 405
        assert c.get("/activity", params={"date": "2026-12-03"}).status_code == 400
        assert c.get("/activity", params={"date": "2026-12-02"}).json()["data"][0]["usage"] == 2.2
        assert c.get("/activity").status_code == 200
        assert c.get("/credits", headers={"Authorization": ""}).status_code == 401
    assert set(FAULTS) >= {"http_401", "http_403", "http_429", "http_500", "html", "drift_amount_type"}
