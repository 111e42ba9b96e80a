"""The local simulator: provider APIs as documented, exact expected sums, clock, faults, Slack, Secret Manager, CLI."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import (
    PROVIDER_FAULT_MODES,
    Scenario,
    ScenarioError,
    SecretManagerFake,
    Simulator,
    SlackReceiver,
    crc32c,
    render_terminal,
)

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
NOV_1 = dt.datetime(2026, 11, 1, tzinfo=UTC)
OPENAI_PROD = "sk-admin-sim-prod-7Qm2vXc9LpA4"
OPENAI_RESEARCH = "sk-admin-sim-research-Hn3kT8wZ2rJe"
ANTHROPIC_MAIN = "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"
XAI_CORE = "xai-mgmt-sim-core-Zt5nW2eK8uLs"
OPENROUTER_ROUTER = "sk-or-v1-mgmt-sim-router-Qa7Lk2Wd9Xe3"
TEAM = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
COSTS = "/v1/organization/costs"
COST_REPORT = "/v1/organizations/cost_report"
USAGE = f"/v1/billing/teams/{TEAM}/usage"
XAI_GET = f"/v1/billing/teams/{TEAM}/"


# --- fixtures and small clients -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Simulator]:
    with Simulator.start(clock=NOW) as server:
        yield server


@pytest.fixture
def sim(sim_server: Simulator) -> Iterator[Simulator]:
    sim_server.reset()
    yield sim_server
    sim_server.reset()


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def ts(instant: dt.datetime) -> int:
    return int(instant.timestamp())


def iso(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def openai_get(http: httpx.Client, params: Any, key: str = OPENAI_PROD) -> httpx.Response:
    return http.get(COSTS, params=params, headers={"Authorization": f"Bearer {key}"})


def anthropic_get(http: httpx.Client, params: Any, key: str = ANTHROPIC_MAIN) -> httpx.Response:
    return http.get(COST_REPORT, params=params, headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


def xai_body(start: dt.datetime, end: dt.datetime, group_by: list[str] | None = None) -> dict[str, Any]:
    return {
        "analyticsRequest": {
            "timeRange": {
                "startTime": start.strftime("%Y-%m-%d %H:%M:%S"),
                "endTime": end.strftime("%Y-%m-%d %H:%M:%S"),
                "timezone": "Etc/GMT",
            },
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": group_by or [],
            "filters": [],
        }
    }


def xai_post(http: httpx.Client, body: Any, key: str = XAI_CORE, path: str = USAGE) -> httpx.Response:
    return http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


def xai_read(http: httpx.Client, endpoint: str, key: str = XAI_CORE) -> httpx.Response:
    return http.get(XAI_GET + endpoint, headers={"Authorization": f"Bearer {key}"})


def openai_month(
    http: httpx.Client, start: dt.datetime, limit: int, group_by: list[str], key: str = OPENAI_PROD
) -> tuple[Decimal, dict[dt.date, Decimal], int]:
    """Follow every page like a correct client: (total, per-day, pages)."""
    daily: dict[dt.date, Decimal] = {}
    total, pages, cursor = Decimal(0), 0, None
    while True:
        params: list[tuple[str, str | int]] = [("start_time", ts(start)), ("limit", limit), ("bucket_width", "1d")]
        params += [("group_by", g) for g in group_by]
        if cursor:
            params.append(("page", cursor))
        doc = openai_get(http, params, key).raise_for_status().json()
        pages += 1
        for bucket in doc["data"]:
            day = dt.datetime.fromtimestamp(bucket["start_time"], UTC).date()
            amount = sum((Decimal(str(r["amount"]["value"])) for r in bucket["results"]), Decimal(0))
            daily[day] = daily.get(day, Decimal(0)) + amount
            total += amount
        if not doc["has_more"]:
            return total, daily, pages
        cursor = doc["next_page"]


def anthropic_month(
    http: httpx.Client, start: dt.datetime, ending_at: dt.datetime | None, limit: int, group_by: list[str]
) -> tuple[Decimal, dict[dt.date, Decimal], int]:
    daily: dict[dt.date, Decimal] = {}
    total, pages, cursor = Decimal(0), 0, None
    while True:
        params: list[tuple[str, str | int]] = [("starting_at", iso(start)), ("limit", limit)]
        if ending_at is not None:
            params.append(("ending_at", iso(ending_at)))
        params += [("group_by[]", g) for g in group_by]
        if cursor:
            params.append(("page", cursor))
        doc = anthropic_get(http, params).raise_for_status().json()
        pages += 1
        for bucket in doc["data"]:
            day = dt.date.fromisoformat(bucket["starting_at"][:10])
            amount = sum((Decimal(r["amount"]) / 100 for r in bucket["results"]), Decimal(0))
            daily[day] = amount
            total += amount
        if not doc["has_more"]:
            return total, daily, pages
        cursor = doc["next_page"]


def xai_month(http: httpx.Client, start: dt.datetime, end: dt.datetime, group_by: list[str]) -> Decimal:
    doc = xai_post(http, xai_body(start, end, group_by)).raise_for_status().json()
    return sum((Decimal(str(v)) for s in doc["timeSeries"] for p in s["dataPoints"] for v in p["values"]), Decimal(0))


# --- scenario ---------------------------------------------------------------------------------------


def test_demo_scenario_has_the_documented_accounts() -> None:
    """The bundled demo has openai prod/research, anthropic main, xai core, openrouter router and bedrock main."""
    scenario = Scenario.load()
    found = {(a.scope, a.key, a.team_id) for a in scenario.accounts}
    assert found == {
        ("openai/prod", OPENAI_PROD, None),
        ("openai/research", OPENAI_RESEARCH, None),
        ("anthropic/main", ANTHROPIC_MAIN, None),
        ("xai/core", XAI_CORE, TEAM),
        ("openrouter/router", OPENROUTER_ROUTER, None),
        ("bedrock/main", "aws-sim-main-111122223333", None),
    }
    assert scenario.find("xai/core").spending_limit_usd == Decimal(1000)
    readme = (ROOT / "simulator" / "README.md").read_text()
    assert all(key in readme for key in (OPENAI_PROD, OPENAI_RESEARCH, ANTHROPIC_MAIN, XAI_CORE, TEAM))


def test_demo_amounts_are_realistic_with_one_clear_spike() -> None:
    """Daily spend is tens to hundreds of dollars and 2026-11-24 is a spike on openai/prod."""
    scenario = Scenario.load()
    daily = scenario.expected_daily("openai/prod", now=dt.datetime(2026, 12, 1, tzinfo=UTC), month_start=NOV_1)
    assert daily.pop(dt.date(2026, 12, 1)) == 0 and len(daily) == 30
    ordinary = [v for d, v in daily.items() if d.day != 24]
    assert all(Decimal(100) < v < Decimal(400) for v in ordinary)
    assert daily[dt.date(2026, 11, 24)] > 3 * max(ordinary[:23])
    mtd = {a.scope: scenario.expected_mtd(a, now=NOW) for a in scenario.accounts}
    assert Decimal(5000) < mtd["openai/prod"] < Decimal(8000)
    assert Decimal(500) < mtd["xai/core"] < Decimal(1000)  # past 50% of the $1,000 limit
    assert all(Decimal(10) < v / 28 < Decimal(400) for v in mtd.values())


def test_scenario_errors_name_the_field() -> None:
    """An invalid scenario raises ScenarioError naming the field to fix."""
    base = {"provider": "openai", "label": "x", "key": "k", "spend": {"base_daily_usd": 1}}
    with pytest.raises(ScenarioError, match="team_id"):
        Scenario.from_dict({"accounts": [{**base, "provider": "xai"}]})
    with pytest.raises(ScenarioError, match="unknown field 'budget'"):
        Scenario.from_dict({"accounts": [{**base, "budget": 3}]})
    with pytest.raises(ScenarioError, match="no dimension 'workspace_id'"):
        Scenario.from_dict({"accounts": [{**base, "breakdown": {"workspace_id": [{"id": None}]}}]})
    with pytest.raises(ScenarioError, match="own key"):
        Scenario.from_dict({"accounts": [base, {**base, "label": "y"}]})


def test_start_is_fast_and_binds_loopback_only() -> None:
    """Simulator.start() takes well under 100 ms and listens on 127.0.0.1."""
    started = time.perf_counter()
    sim = Simulator.start()
    elapsed = time.perf_counter() - started
    try:
        assert elapsed < 0.1
        assert sim.url.startswith("http://127.0.0.1:")
        assert sim.env() == {
            **{k: sim.url for k in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "XAI_MANAGEMENT_BASE_URL")},
            "OPENROUTER_BASE_URL": sim.url + "/api/v1",
        }
    finally:
        sim.stop()


# --- exact sums over a whole month --------------------------------------------------------------------

# Every day of November at a different hour and minute, plus the month's first and last moments.
MONTH_INSTANTS = [
    dt.datetime(2026, 11, 1, 0, 30, tzinfo=UTC),
    *(dt.datetime(2026, 11, day, (day * 7) % 24, (day * 13) % 60, tzinfo=UTC) for day in range(1, 31)),
    dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
]


def test_openai_pages_sum_exactly_to_expected_over_the_month(sim: Simulator, http: httpx.Client) -> None:
    """Following next_page with small limits, Decimal(str(value)) sums equal expected_mtd and each day exactly."""
    for now in MONTH_INSTANTS:
        sim.set_clock(now)
        for key in (OPENAI_PROD, OPENAI_RESEARCH):
            total, daily, pages = openai_month(http, NOV_1, 3, ["line_item", "project_id"], key)
            assert total == sim.expected_mtd(key)
            assert daily == sim.expected_daily(key)
            assert pages == -(-now.day // 3)
    assert pages >= 3


def test_openai_grouping_styles_and_ungrouped_agree(sim: Simulator, http: httpx.Client) -> None:
    """group_by=x&group_by=y, group_by[]=x and no grouping all sum to the same exact total."""
    plain = openai_month(http, NOV_1, 31, ["line_item", "project_id"])[0]
    params = [("start_time", ts(NOV_1)), ("limit", 31), ("group_by[]", "line_item"), ("group_by[]", "project_id")]
    doc = openai_get(http, params).json()
    brackets = sum((Decimal(str(r["amount"]["value"])) for b in doc["data"] for r in b["results"]), Decimal(0))
    ungrouped = openai_month(http, NOV_1, 31, [])[0]
    assert plain == brackets == ungrouped == sim.expected_mtd("openai/prod")
    first = doc["data"][0]["results"][0]
    assert first["object"] == "organization.costs.result" and first["amount"]["currency"] == "usd"
    assert first["line_item"] and first["project_id"].startswith("proj_") and first["api_key_id"] is None
    lines = {r["line_item"] for b in doc["data"] for r in b["results"]}
    expected_lines = sim.expected_breakdown("openai/prod")["line_item"]
    assert lines == set(expected_lines)


def test_anthropic_pages_sum_exactly_to_expected_over_the_month(sim: Simulator, http: httpx.Client) -> None:
    """Cent strings / 100 over every page (limit 4, ending_at tomorrow) equal expected_mtd and each day exactly."""
    for now in MONTH_INSTANTS:
        sim.set_clock(now)
        tomorrow = now.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
        total, daily, pages = anthropic_month(http, NOV_1, tomorrow, 4, ["workspace_id", "description"])
        assert total == sim.expected_mtd(ANTHROPIC_MAIN)
        assert daily == sim.expected_daily(ANTHROPIC_MAIN)
        assert pages == -(-now.day // 4)
        assert anthropic_month(http, NOV_1, None, 31, [])[0] == total
    assert pages >= 3


def test_xai_usage_dollars_sum_exactly_to_expected_over_the_month(sim: Simulator, http: httpx.Client) -> None:
    """xAI usage values, grouped or not, sum (Decimal(str(float))) to expected_mtd exactly."""
    for now in MONTH_INSTANTS:
        sim.set_clock(now)
        end = now.replace(microsecond=0)
        expected = sim.expected_mtd("xai/core")
        assert xai_month(http, NOV_1, end, []) == expected
        assert xai_month(http, NOV_1, end, ["description"]) == expected


def test_expected_endpoint_matches_in_process_values(sim: Simulator, http: httpx.Client) -> None:
    """GET /_sim/expected returns per-account decimal strings equal to expected_mtd and its daily series."""
    doc = http.get("/_sim/expected", params={"now": "2026-11-28T18:00:00Z"}).json()
    prod = doc["accounts"]["openai/prod"]
    assert prod["provider"] == "openai" and prod["label"] == "prod"
    assert Decimal(prod["mtd_usd"]) == sim.expected_mtd("openai/prod")
    assert prod["daily"]["2026-11-24"] == str(sim.expected_daily("openai/prod")[dt.date(2026, 11, 24)])
    assert len(prod["daily"]) == 28
    assert Decimal(doc["total_usd"]) == sum(Decimal(a["mtd_usd"]) for a in doc["accounts"].values())
    assert set(doc["accounts"]["anthropic/main"]["breakdown"]["workspace_id"]) == {
        "null",
        "wrkspc_01SimCustomerAgents",
        "wrkspc_01SimDataPipeline",
    }


# --- OpenAI details ------------------------------------------------------------------------------------


def test_openai_limit_is_validated_with_the_error_envelope(http: httpx.Client) -> None:
    """limit outside 1..180 or not an integer answers 400 with OpenAI's error envelope; default is 7 buckets."""
    for bad in (0, 181, "seven"):
        response = openai_get(http, {"start_time": ts(NOV_1), "limit": bad})
        assert response.status_code == 400
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == "limit"
    assert openai_get(http, {"start_time": ts(NOV_1), "limit": 180}).status_code == 200
    doc = openai_get(http, {"start_time": ts(NOV_1)}).json()
    assert len(doc["data"]) == 7 and doc["has_more"] is True and doc["next_page"].startswith("page_")
    missing = openai_get(http, {"limit": 7})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "start_time"
    bad_cursor = openai_get(http, {"start_time": ts(NOV_1), "page": "nope"})
    assert bad_cursor.status_code == 400


def test_openai_auth_errors(http: httpx.Client) -> None:
    """A missing, unknown or other-provider key answers 401 invalid_api_key without echoing the key."""
    none = http.get(COSTS, params={"start_time": ts(NOV_1)})
    assert none.status_code == 401 and none.json()["error"]["type"] == "invalid_request_error"
    for key in ("sk-admin-unknown-000000000000", ANTHROPIC_MAIN):
        response = openai_get(http, {"start_time": ts(NOV_1)}, key)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert key not in response.text


def test_openai_partial_first_bucket_and_empty_days(sim: Simulator, http: httpx.Client) -> None:
    """A non-midnight start_time makes a partial first bucket; days with no spend carry results: []."""
    start = dt.datetime(2026, 11, 10, 10, 30, tzinfo=UTC)
    doc = openai_get(http, {"start_time": ts(start), "limit": 2}).json()
    first = doc["data"][0]
    assert first["start_time"] == ts(start) and first["end_time"] == ts(dt.datetime(2026, 11, 11, tzinfo=UTC))
    amount = Decimal(str(first["results"][0]["amount"]["value"]))
    assert amount == sim.expected_mtd(
        "openai/prod", start.replace(hour=11, minute=0), dt.datetime(2026, 11, 11, tzinfo=UTC)
    )
    sim.set_clock("2026-11-02T00:10:00Z")
    doc = openai_get(http, {"start_time": ts(NOV_1)}).json()
    assert [len(b["results"]) > 0 for b in doc["data"]] == [True, False]


def test_openai_end_time_is_exclusive(http: httpx.Client, sim: Simulator) -> None:
    """end_time is exclusive and caps the last bucket; no bucket is returned after today."""
    end = dt.datetime(2026, 11, 5, tzinfo=UTC)
    doc = openai_get(http, {"start_time": ts(NOV_1), "end_time": ts(end), "limit": 31}).json()
    assert len(doc["data"]) == 4
    doc = openai_get(http, {"start_time": ts(NOV_1), "end_time": ts(NOV_1) + 40 * 86400, "limit": 60}).json()
    assert len(doc["data"]) == 28 and doc["data"][-1]["end_time"] == ts(dt.datetime(2026, 11, 29, tzinfo=UTC))


# --- Anthropic details ---------------------------------------------------------------------------------


def test_anthropic_amounts_are_cent_strings_with_documented_fields(http: httpx.Client, sim: Simulator) -> None:
    """Amounts are decimal strings in cents (<= 5 decimals) with the documented result fields."""
    tomorrow = dt.datetime(2026, 11, 29, tzinfo=UTC)
    params = [
        ("starting_at", "2026-11-27T00:00:00Z"),
        ("ending_at", iso(tomorrow)),
        ("group_by[]", "description"),
        ("group_by[]", "workspace_id"),
    ]
    response = anthropic_get(http, params)
    assert response.headers["request-id"].startswith("req_")
    doc = response.json()
    assert [b["starting_at"] for b in doc["data"]] == ["2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"]
    result = doc["data"][0]["results"][0]
    assert set(result) == {
        "amount",
        "currency",
        "workspace_id",
        "description",
        "cost_type",
        "model",
        "token_type",
        "service_tier",
        "context_window",
        "inference_geo",
    }
    assert isinstance(result["amount"], str) and len(result["amount"].split(".")[1]) <= 5
    assert result["currency"] == "USD"
    day = sum((Decimal(r["amount"]) for r in doc["data"][0]["results"]), Decimal(0))
    assert day / 100 == sim.expected_daily("anthropic/main")[dt.date(2026, 11, 27)]
    assert None in {r["workspace_id"] for r in doc["data"][0]["results"]}  # the default workspace
    web = next(r for r in doc["data"][0]["results"] if r["description"] == "Web Search Usage")
    assert web["cost_type"] == "web_search" and web["model"] is None


def test_anthropic_limit_version_and_key_errors(http: httpx.Client) -> None:
    """limit outside 1..31 is 400 invalid_request_error; a missing version is 400; a bad key is 401."""
    for bad in (0, 32):
        response = anthropic_get(http, {"starting_at": iso(NOV_1), "limit": bad})
        body = response.json()
        assert response.status_code == 400 and body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error" and body["request_id"].startswith("req_")
    assert anthropic_get(http, {"starting_at": iso(NOV_1), "limit": 31}).status_code == 200
    assert len(anthropic_get(http, {"starting_at": iso(NOV_1)}).json()["data"]) == 7
    no_version = http.get(COST_REPORT, params={"starting_at": iso(NOV_1)}, headers={"x-api-key": ANTHROPIC_MAIN})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    bad_key = anthropic_get(http, {"starting_at": iso(NOV_1)}, key="sk-ant-admin01-wrong")
    assert bad_key.status_code == 401 and bad_key.json()["error"]["type"] == "authentication_error"
    assert anthropic_get(http, {}).status_code == 400  # starting_at is required


def test_anthropic_ending_at_returns_only_buckets_that_end_before_it(http: httpx.Client, sim: Simulator) -> None:
    """ending_at=now drops today's unfinished bucket; ending_at=tomorrow includes it."""
    to_now = anthropic_month(http, NOV_1, NOW, 31, [])
    to_tomorrow = anthropic_month(http, NOV_1, dt.datetime(2026, 11, 29, tzinfo=UTC), 31, [])
    assert max(to_now[1]) == dt.date(2026, 11, 27) and max(to_tomorrow[1]) == dt.date(2026, 11, 28)
    assert to_tomorrow[0] == sim.expected_mtd("anthropic/main")
    assert to_now[0] == sim.expected_mtd("anthropic/main", now=dt.datetime(2026, 11, 28, tzinfo=UTC))


def test_anthropic_complete_days_only_knob(http: httpx.Client, sim: Simulator) -> None:
    """With complete_days_only, only finished days come back and a range without one answers 400."""
    sim.set_complete_days_only(True)
    total, daily, _ = anthropic_month(http, NOV_1, None, 31, [])
    assert max(daily) == dt.date(2026, 11, 27)
    assert total == sim.expected_mtd("anthropic/main", now=dt.datetime(2026, 11, 28, tzinfo=UTC))
    sim.set_clock("2026-12-01T00:30:00Z")
    response = anthropic_get(http, {"starting_at": "2026-12-01T00:00:00Z"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert http.post("/_sim/options", json={"complete_days_only": False}).json() == {"complete_days_only": False}
    assert anthropic_get(http, {"starting_at": "2026-12-01T00:00:00Z"}).json()["data"][0]["results"] == []


# --- xAI details --------------------------------------------------------------------------------------


def test_xai_usage_series_shapes(http: httpx.Client, sim: Simulator) -> None:
    """groupBy [] gives one series; ["description"] one series per model description, daily UTC points."""
    one = xai_post(http, xai_body(NOV_1, NOW)).json()
    assert one["limitReached"] is False and len(one["timeSeries"]) == 1
    points = one["timeSeries"][0]["dataPoints"]
    assert points[0]["timestamp"] == "2026-11-01T00:00:00Z" and len(points) == 28
    assert all(isinstance(p["values"][0], float) for p in points)
    grouped = xai_post(http, xai_body(NOV_1, NOW, ["description"])).json()
    labels = {s["groupLabels"][0] for s in grouped["timeSeries"]}
    assert labels == set(sim.expected_breakdown("xai/core")["description"])
    assert "grok-4.3 input tokens" in labels
    bad = xai_post(http, {"analyticsRequest": {"timeRange": {"startTime": "2026-11-01"}}})
    assert bad.status_code == 400 and "error" in bad.json()


def test_xai_invoice_preview_limits_and_balance_are_cents(http: httpx.Client, sim: Simulator) -> None:
    """Invoice preview, spending limits and balance are whole-cent strings, some wrapped as {"val": ..}."""
    preview = xai_read(http, "postpaid/invoice/preview").json()
    invoice = preview["coreInvoice"]
    cents = int(invoice["amountAfterVat"])
    assert invoice["amountBeforeVat"] == invoice["amountAfterVat"] == invoice["totalWithCorr"]["val"]
    assert cents == sum(int(line["amount"]) for line in invoice["lines"])
    assert abs(Decimal(cents) / 100 - sim.expected_mtd("xai/core")) <= Decimal("0.01") * len(invoice["lines"])
    assert invoice["prepaidCredits"] == {"val": "-20000"} and invoice["prepaidCreditsUsed"] == {"val": "20000"}
    assert preview["effectiveSpendingLimit"] == "100000" and preview["billingCycle"] == {"year": 2026, "month": 11}
    limits = xai_read(http, "postpaid/spending-limits").json()["spendingLimits"]
    assert limits["softSl"] == {"val": "100000"} and limits["effectiveHardSl"] == "100000"
    balance = xai_read(http, "prepaid/balance").json()
    assert balance["total"] == {"val": "0"}  # the $200 of credit is used up
    sim.set_clock("2026-11-02T00:00:00Z")
    balance = xai_read(http, "prepaid/balance").json()
    left = Decimal(20000) - (sim.expected_mtd("xai/core") * 100).quantize(Decimal(1))
    assert Decimal(balance["total"]["val"]) == -left < 0  # negative while credit is left


def test_xai_auth_team_and_mutating_endpoints(http: httpx.Client, sim: Simulator) -> None:
    """Unknown key 401, another team 403; mutating endpoints answer {} and are flagged in the log."""
    assert xai_post(http, xai_body(NOV_1, NOW), key="xai-unknown").status_code == 401
    other = xai_post(http, xai_body(NOV_1, NOW), path="/v1/billing/teams/other-team/usage")
    assert other.status_code == 403
    headers = {"Authorization": f"Bearer {XAI_CORE}"}
    for path in ("prepaid/top-up", "postpaid/spending-limits", "billing-info", "payment-method/default"):
        response = http.post(XAI_GET + path, json={"desiredSoftSpendingLimit": {"val": "1"}}, headers=headers)
        assert response.status_code == 200 and response.json() == {}
    mutating = [r for r in sim.requests("xai") if r["mutating"]]
    assert [r["path"].rsplit(TEAM + "/", 1)[1] for r in mutating] == [
        "prepaid/top-up",
        "postpaid/spending-limits",
        "billing-info",
        "payment-method/default",
    ]
    assert mutating[0]["body"] == {"desiredSoftSpendingLimit": {"val": "1"}}


# --- the clock ---------------------------------------------------------------------------------------


def test_clock_shows_only_finished_hours_of_today(http: httpx.Client, sim: Simulator) -> None:
    """At 18:00 and 18:59 today holds 18 hours; at 19:00 it holds 19; the lag hides recent hours."""
    day = dt.datetime(2026, 11, 28, tzinfo=UTC)

    def today() -> Decimal:
        doc = openai_get(http, {"start_time": ts(day)}).json()
        return sum((Decimal(str(r["amount"]["value"])) for r in doc["data"][0]["results"]), Decimal(0))

    eighteen = sim.expected_mtd("openai/prod", day, day + dt.timedelta(hours=18))
    assert today() == eighteen
    sim.set_clock(day + dt.timedelta(hours=18, minutes=59))
    assert today() == eighteen
    sim.set_clock(day + dt.timedelta(hours=19))
    assert today() > eighteen
    seventeen = sim.expected_mtd("openai/prod", day, day + dt.timedelta(hours=17))
    sim.set_lag(90)  # visible until 17:30: the 17:00-18:00 hour is not reported yet
    assert today() == seventeen == sim.expected_mtd("openai/prod", day) < eighteen


def test_first_minutes_of_a_month_are_zero_not_missing(http: httpx.Client, sim: Simulator) -> None:
    """At 00:05 on the 1st every provider answers an empty but well-formed month."""
    sim.set_clock("2026-12-01T00:05:00Z")
    dec = dt.datetime(2026, 12, 1, tzinfo=UTC)
    assert openai_get(http, {"start_time": ts(dec)}).json()["data"] == [
        {"object": "bucket", "start_time": ts(dec), "end_time": ts(dec) + 86400, "results": []}
    ]
    doc = anthropic_get(http, {"starting_at": iso(dec), "ending_at": "2026-12-02T00:00:00Z"}).json()
    assert doc["data"] == [{"starting_at": iso(dec), "ending_at": "2026-12-02T00:00:00Z", "results": []}]
    assert xai_post(http, xai_body(dec, sim.now())).json() == {"timeSeries": [], "limitReached": False}
    assert sim.expected_mtd("openai/prod") == 0 and sim.expected_daily("openai/prod") == {dt.date(2026, 12, 1): 0}


def test_december_to_january_and_leap_february(http: httpx.Client, sim: Simulator) -> None:
    """Month boundaries: Dec->Jan starts a new month; February 2028 has 29 daily buckets."""
    sim.set_clock("2027-01-01T06:00:00Z")
    jan = dt.datetime(2027, 1, 1, tzinfo=UTC)
    total, daily, _ = openai_month(http, jan, 31, [])
    assert list(daily) == [jan.date()] and total == sim.expected_mtd("openai/prod") > 0
    dec_total, dec_daily, _ = openai_month(http, dt.datetime(2026, 12, 1, tzinfo=UTC), 31, [])
    assert len(dec_daily) == 32 and dec_daily[jan.date()] == total  # December's query runs on to today
    assert dec_total - total == sim.expected_mtd("openai/prod", dt.datetime(2026, 12, 1, tzinfo=UTC), jan)
    sim.set_clock("2028-03-01T00:00:00Z")
    feb = dt.datetime(2028, 2, 1, tzinfo=UTC)
    total, daily, _ = anthropic_month(http, feb, dt.datetime(2028, 3, 1, tzinfo=UTC), 31, [])
    assert len(daily) == 29 and dt.date(2028, 2, 29) in daily
    assert total == sim.expected_mtd("anthropic/main", feb, dt.datetime(2028, 3, 1, tzinfo=UTC))
    assert len(sim.expected_daily("xai/core", feb, dt.datetime(2028, 2, 29, 23, 59, tzinfo=UTC))) == 29
    march = dt.datetime(2028, 3, 1, tzinfo=UTC)
    assert xai_month(http, feb, march, []) == sim.expected_mtd("xai/core", feb, march) > 0


def test_clock_control_api(http: httpx.Client, sim: Simulator) -> None:
    """POST /_sim/clock sets, advances and releases the clock; GET reads it."""
    assert http.post("/_sim/clock", json={"now": "2026-11-15T12:00:00+00:00"}).json() == {"now": "2026-11-15T12:00:00Z"}
    assert http.post("/_sim/clock", json={"advance_minutes": 90}).json() == {"now": "2026-11-15T13:30:00Z"}
    assert sim.now() == dt.datetime(2026, 11, 15, 13, 30, tzinfo=UTC)
    assert http.post("/_sim/clock", json={"now": "2026-11-15T12:00:00"}).status_code == 400  # no offset
    http.post("/_sim/clock", json={"now": None})
    assert abs(sim.now() - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)


# --- faults -----------------------------------------------------------------------------------------


def _call(http: httpx.Client, provider: str, **kw: Any) -> httpx.Response:
    if provider == "openai":
        return openai_get(http, {"start_time": ts(NOV_1), "limit": 31}, **kw)
    if provider == "anthropic":
        return anthropic_get(http, {"starting_at": iso(NOV_1), "limit": 31}, **kw)
    return xai_post(http, xai_body(NOV_1, NOW), **kw)


def _is_error_envelope(provider: str, body: Any) -> bool:
    if provider == "openai":
        return set(body["error"]) == {"message", "type", "param", "code"}
    if provider == "anthropic":
        return body["type"] == "error" and "type" in body["error"] and body["request_id"].startswith("req_")
    return set(body) == {"code", "error"}


STATUS_MODES = ["http_401", "http_403", "http_404", "http_429", "http_429_no_retry_after"]
STATUS_MODES += ["http_500", "http_502", "http_503", "http_529"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "xai"])
def test_status_faults_answer_the_provider_envelope(http: httpx.Client, sim: Simulator, provider: str) -> None:
    """Each http_* fault answers its status with the provider's JSON error envelope; 429 carries Retry-After: 1."""
    for mode in STATUS_MODES:
        sim.add_fault(provider, mode, count=1)
        response = _call(http, provider)
        status = 429 if mode.startswith("http_429") else int(mode.removeprefix("http_"))
        assert response.status_code == status, mode
        assert response.headers["content-type"] == "application/json"
        assert _is_error_envelope(provider, response.json()), mode
        assert response.headers.get("retry-after") == ("1" if mode == "http_429" else None), mode
    assert _call(http, provider).status_code == 200
    sim.add_fault("anthropic", "http_529", count=1)
    assert _call(http, "anthropic").json()["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "xai"])
def test_body_faults_html_envelope_drift_truncation(http: httpx.Client, sim: Simulator, provider: str) -> None:
    """html, html_200, error_envelope_200, drift_missing_data, drift_amount_type and truncated_json on the wire."""
    sim.add_fault(provider, "html", count=1)
    response = _call(http, provider)
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<html>")
    sim.add_fault(provider, "html_200", count=1)
    response = _call(http, provider)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    sim.add_fault(provider, "error_envelope_200", count=1)
    response = _call(http, provider)
    assert response.status_code == 200 and _is_error_envelope(provider, response.json())

    main_key = {"openai": "data", "anthropic": "data", "xai": "timeSeries"}[provider]
    sim.add_fault(provider, "drift_missing_data", count=1)
    response = _call(http, provider)
    assert response.status_code == 200 and main_key not in response.json() and response.json()

    sim.add_fault(provider, "drift_amount_type", count=1)
    doc = _call(http, provider).json()
    if provider == "openai":
        assert isinstance(doc["data"][0]["results"][0]["amount"]["value"], dict)
    elif provider == "anthropic":
        assert doc["data"][0]["results"][0]["amount"] is True
    else:
        assert isinstance(doc["timeSeries"][0]["dataPoints"][0]["values"][0], dict)

    sim.add_fault(provider, "truncated_json", count=1)
    response = _call(http, provider)
    assert response.status_code == 200 and int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert [r["fault"] for r in sim.requests(provider)] == [
        "html",
        "html_200",
        "error_envelope_200",
        "drift_missing_data",
        "drift_amount_type",
        "truncated_json",
    ]


def test_negative_and_absurd_amounts(http: httpx.Client, sim: Simulator) -> None:
    """negative_amounts flips every sign; absurd_amounts reports $1e9 per row."""
    sim.add_fault("openai", "negative_amounts", count=1)
    total = openai_month(http, NOV_1, 31, [])[0]
    assert total == -sim.expected_mtd("openai/prod")
    sim.add_fault("anthropic", "absurd_amounts", count=1)
    doc = anthropic_get(http, {"starting_at": iso(NOV_1), "limit": 31}).json()
    assert {r["amount"] for b in doc["data"] for r in b["results"]} == {"100000000000.00000"}
    sim.add_fault("xai", "negative_amounts", count=1)
    assert xai_month(http, NOV_1, NOW, []) == -sim.expected_mtd("xai/core")
    sim.add_fault("xai", "absurd_amounts", count=1, endpoint="invoice/preview")
    assert xai_read(http, "postpaid/invoice/preview").json()["coreInvoice"]["amountAfterVat"] == "100000000000"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_pagination_faults(http: httpx.Client, sim: Simulator, provider: str) -> None:
    """pagination_loop hands back the same cursor forever; endless_has_more issues new cursors forever."""
    get = openai_get if provider == "openai" else anthropic_get
    params: dict[str, Any] = (
        {"start_time": ts(NOV_1), "limit": 5} if provider == "openai" else {"starting_at": iso(NOV_1), "limit": 5}
    )
    sim.add_fault(provider, "pagination_loop")
    first = get(http, params).json()
    seen = [get(http, {**params, "page": first["next_page"]}).json() for _ in range(4)]
    assert all(doc["has_more"] and doc["next_page"] == first["next_page"] for doc in seen)
    sim.clear_faults()
    sim.add_fault(provider, "endless_has_more")
    tokens, cursor = [], None
    for _ in range(10):
        doc = get(http, {**params, **({"page": cursor} if cursor else {})}).json()
        assert doc["has_more"] is True
        cursor = doc["next_page"]
        tokens.append(cursor)
    assert len(set(tokens)) == 10


def test_xai_limit_reached_fault(http: httpx.Client, sim: Simulator) -> None:
    """limit_reached returns partial series with limitReached: true."""
    sim.add_fault("xai", "limit_reached", count=1)
    doc = xai_post(http, xai_body(NOV_1, NOW, ["description"])).json()
    assert doc["limitReached"] is True and len(doc["timeSeries"]) == 1
    assert len(doc["timeSeries"][0]["dataPoints"]) == 14


def test_huge_fault_streams_a_valid_body_over_30_mb(http: httpx.Client, sim: Simulator) -> None:
    """huge streams a valid-looking JSON page of more than 30 MB with a correct Content-Length."""
    sim.add_fault("openai", "huge", count=1)
    headers = {"Authorization": f"Bearer {OPENAI_PROD}"}
    with http.stream("GET", COSTS, params={"start_time": ts(NOV_1)}, headers=headers) as response:
        declared = int(response.headers["content-length"])
        body = response.read()
    assert declared == len(body) > 30 * 1024 * 1024
    doc = json.loads(body)
    assert doc["object"] == "page" and len(doc["data"]) > 100_000


def test_timeout_and_reset_faults(http: httpx.Client, sim: Simulator) -> None:
    """timeout never answers (a client timeout fires); reset drops the connection without a response."""
    sim.add_fault("openai", "timeout", count=1, seconds=5)
    started = time.perf_counter()
    with httpx.Client(base_url=sim.url, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        openai_get(impatient, {"start_time": ts(NOV_1)})
    assert time.perf_counter() - started < 2
    sim.add_fault("anthropic", "reset", count=1)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        anthropic_get(http, {"starting_at": iso(NOV_1)})
    assert anthropic_get(http, {"starting_at": iso(NOV_1)}).status_code == 200
    logged = [(r["provider"], r["fault"], r["status"]) for r in sim.requests()]
    assert logged[:2] == [("openai", "timeout", None), ("anthropic", "reset", None)]


def test_stop_interrupts_a_hanging_timeout_quickly() -> None:
    """Stopping the server wakes a handler sleeping in the 120 s timeout fault."""
    sim = Simulator.start(clock=NOW)
    sim.add_fault("xai", "timeout")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with httpx.Client(base_url=sim.url, timeout=30) as client:
                xai_post(client, xai_body(NOV_1, NOW))
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    sim.stop()
    thread.join(5)
    assert time.perf_counter() - started < 2 and not thread.is_alive() and errors


def test_fault_count_account_and_endpoint_scope(http: httpx.Client, sim: Simulator) -> None:
    """count limits uses; account limits the fault to one label; endpoint to a path substring."""
    sim.add_fault("openai", "http_500", count=2)
    assert [openai_get(http, {"start_time": ts(NOV_1)}).status_code for _ in range(3)] == [500, 500, 200]
    sim.add_fault("openai", "http_503", account="research")
    assert openai_get(http, {"start_time": ts(NOV_1)}, OPENAI_PROD).status_code == 200
    assert openai_get(http, {"start_time": ts(NOV_1)}, OPENAI_RESEARCH).status_code == 503
    assert sim.faults() == [
        {
            "mode": "http_503",
            "count": None,
            "provider": "openai",
            "account": "research",
            "endpoint": None,
            "seconds": 120.0,
        }
    ]
    sim.clear_faults()
    sim.add_fault("xai", "http_502", endpoint="spending-limits")
    assert xai_read(http, "postpaid/spending-limits").status_code == 502
    assert xai_read(http, "postpaid/invoice/preview").status_code == 200


def test_fault_validation_and_control_api(http: httpx.Client, sim: Simulator) -> None:
    """Unknown modes, wrong providers and labels are refused; POST/DELETE /_sim/faults arm and clear."""
    with pytest.raises(ValueError, match="unknown fault mode"):
        sim.add_fault("openai", "http_418")
    with pytest.raises(ValueError, match="paginated"):
        sim.add_fault("xai", "pagination_loop")
    with pytest.raises(ValueError, match="no openai account labelled 'main'"):
        sim.add_fault("openai", "http_500", account="main")
    assert http.post("/_sim/faults", json={"provider": "openai", "mode": "nope"}).status_code == 400
    armed = http.post("/_sim/faults", json={"provider": "anthropic", "mode": "http_529", "count": 1})
    assert armed.json()["faults"][0]["mode"] == "http_529"
    assert http.delete("/_sim/faults").json() == {"faults": []}
    assert anthropic_get(http, {"starting_at": iso(NOV_1)}).status_code == 200
    assert set(PROVIDER_FAULT_MODES) >= {"timeout", "reset", "huge", "pagination_loop", "http_529"}


# --- latency, request log, reset ----------------------------------------------------------------------


def test_latency_applies_to_each_request_and_overlaps(sim: Simulator) -> None:
    """With 300 ms latency, 4 parallel requests each take >= 300 ms but finish together well under 1.2 s."""
    sim.set_latency(300)

    def one(_: int) -> float:
        started = time.perf_counter()
        with httpx.Client(base_url=sim.url, timeout=10) as client:
            assert openai_get(client, {"start_time": ts(NOV_1)}).status_code == 200
        return time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        each = list(pool.map(one, range(4)))
    assert min(each) >= 0.3 and time.perf_counter() - started < 4 * 0.3


def test_request_log_records_and_clears(http: httpx.Client, sim: Simulator) -> None:
    """The log holds method, path, query, body, provider, account and status; control calls are not logged."""
    openai_get(http, [("start_time", ts(NOV_1)), ("group_by", "line_item"), ("group_by", "project_id")])
    xai_post(http, xai_body(NOV_1, NOW))
    http.get("/_sim/clock")
    log = http.get("/_sim/requests").json()
    assert log["count"] == 2
    first, second = log["requests"]
    assert first["method"] == "GET" and first["path"] == COSTS and first["status"] == 200
    assert first["query"]["group_by"] == ["line_item", "project_id"] and first["account"] == "prod"
    assert second["body"]["analyticsRequest"]["timeUnit"] == "TIME_UNIT_DAY" and second["provider"] == "xai"
    assert OPENAI_PROD not in json.dumps(log)  # keys are never logged
    assert http.get("/_sim/requests", params={"provider": "xai"}).json()["count"] == 1
    http.delete("/_sim/requests")
    assert sim.requests() == []


def test_reset_restores_every_knob(http: httpx.Client, sim: Simulator) -> None:
    """POST /_sim/reset clears faults, latency, lag, options, the log and the clock."""
    sim.add_fault("openai", "http_500")
    sim.set_latency(50)
    sim.set_lag(30)
    sim.set_complete_days_only(True)
    sim.set_clock("2027-05-05T05:05:05Z")
    openai_get(http, {"start_time": ts(NOV_1)})
    assert http.post("/_sim/reset").json() == {"ok": True}
    scenario = http.get("/_sim/scenario").json()
    assert scenario["now"] == "2026-11-28T18:00:00Z" and scenario["latency_ms"] == 0
    assert scenario["lag_minutes"] == {"openai": 0, "anthropic": 0, "xai": 0, "openrouter": 0, "bedrock": 0}
    assert scenario["complete_days_only"] is False and sim.faults() == [] and sim.requests() == []
    assert {a["scope"] for a in scenario["accounts"]} == {
        "openai/prod",
        "openai/research",
        "anthropic/main",
        "xai/core",
        "openrouter/router",
        "bedrock/main",
    }


# --- Slack receiver -----------------------------------------------------------------------------------

MESSAGE: dict[str, Any] = {
    "text": "OpenAI prod passed 80% of its budget",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: LLM budget: 83% used"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*openai/prod* spent *$6,350.34* of <https://x.test|budget>"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Budget*\n$7,500"},
                {"type": "mrkdwn", "text": "*Forecast*\n$7,010"},
            ],
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "as of 18:00 UTC"}, {"type": "plain_text", "text": "hourly"}],
        },
    ],
}


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver.start() as receiver:
        yield receiver


def test_slack_accepts_records_and_counts(slack: SlackReceiver) -> None:
    """A webhook POST answers 200 'ok' text/plain and is recorded; /services/... paths work too."""
    with httpx.Client(base_url=slack.url) as client:
        response = client.post("/hook", json=MESSAGE)
        assert response.status_code == 200 and response.text == "ok"
        assert response.headers["content-type"].startswith("text/plain")
        assert client.post("/services/T000/B000/XXX", data={"payload": json.dumps({"text": "hi"})}).text == "ok"
        assert client.post("/hook", content=b"not json").text == "invalid_payload"
        assert client.post("/hook", json={"username": "x"}).text == "no_text"
        too_long = {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}
        assert client.post("/hook", json=too_long).text == "invalid_blocks"
        assert client.post("/hook", json={"text": "x", "blocks": [{"type": "divider"}] * 51}).status_code == 400
        doc = client.get("/_slack/messages").json()
    assert doc["messages"] == [MESSAGE, {"text": "hi"}] and doc["count"] == 2 and doc["attempts"] == 6
    assert slack.messages() == doc["messages"] and slack.attempts() == 6
    slack.clear_messages()
    assert slack.messages() == [] and slack.attempts() == 0


@pytest.mark.parametrize(
    ("mode", "status", "body"),
    [
        ("http_429", 429, "rate_limited"),
        ("http_500", 500, "rollup_error"),
        ("invalid_payload", 400, "invalid_payload"),
        ("no_service", 404, "no_service"),
        ("http_410", 410, "channel_is_archived"),
        ("http_403", 403, "action_prohibited"),
    ],
)
def test_slack_faults(slack: SlackReceiver, mode: str, status: int, body: str) -> None:
    """Each Slack fault answers its status and plain-text error once, then messages go through."""
    with httpx.Client(base_url=slack.url) as client:
        assert client.post("/_slack/faults", json={"mode": mode, "count": 1}).status_code == 200
        response = client.post("/hook", json=MESSAGE)
        assert (response.status_code, response.text) == (status, body)
        assert response.headers.get("retry-after") == ("1" if status == 429 else None)
        assert client.post("/hook", json=MESSAGE).text == "ok"
    assert len(slack.messages()) == 1 and slack.attempts() == 2


def test_slack_timeout_latency_and_real_webhook_client(slack: SlackReceiver) -> None:
    """timeout never answers, reset drops the connection; slack_sdk's WebhookClient posts and sees 429s."""
    from slack_sdk.webhook import WebhookClient

    slack.add_fault("timeout", count=1, seconds=3)
    slack.add_fault("reset", count=1)
    with httpx.Client(base_url=slack.url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/hook", json=MESSAGE)
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post("/hook", json=MESSAGE)
    webhook = WebhookClient(slack.hook_url, timeout=5)
    slack.set_latency(100)
    started = time.perf_counter()
    sent = webhook.send(text=MESSAGE["text"], blocks=MESSAGE["blocks"])
    assert (sent.status_code, sent.body) == (200, "ok") and time.perf_counter() - started >= 0.1
    slack.add_fault("http_429", count=1)
    limited = webhook.send(text="again")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert slack.messages()[0]["blocks"] == MESSAGE["blocks"]


def test_render_terminal_shows_block_kit_readably() -> None:
    """Header, mrkdwn sections, fields side by side, dividers and context render as plain text."""
    text = render_terminal(MESSAGE, width=60)
    lines = text.splitlines()
    assert lines[0] == "🚨 LLM budget: 83% used" and set(lines[1]) == {"═"}
    assert "openai/prod spent $6,350.34 of budget (https://x.test)" in text
    assert any(line.startswith("Budget") and "Forecast" in line for line in lines)
    assert "─" * 60 in lines and lines[-1] == "  as of 18:00 UTC · hourly"
    assert render_terminal({"text": "plain &amp; <@U1>"}) == "plain & @U1"
    assert "\x1b[1m" in render_terminal(MESSAGE, color=True)


def test_slack_print_flag_writes_rendered_messages() -> None:
    """With print_messages the receiver writes each accepted message, rendered, to its stream."""
    out = io.StringIO()
    with SlackReceiver.start(print_messages=True, out=out) as receiver, httpx.Client() as client:
        client.post(receiver.hook_url, json=MESSAGE)
    assert "LLM budget: 83% used" in out.getvalue()


# --- Secret Manager fake with the real client ---------------------------------------------------------

SECRET = "projects/demo/secrets/openai-admin-key"


def test_crc32c_matches_the_castagnoli_reference() -> None:
    """The pure-Python CRC32C matches the standard check value and google-crc32c."""
    import google_crc32c

    assert crc32c(b"123456789") == 0xE3069283
    for data in (b"", b"sk-admin-sim", os.urandom(1000)):
        assert crc32c(data) == int(google_crc32c.value(data))


@pytest.fixture
def secrets() -> Iterator[tuple[SecretManagerFake, Any]]:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager import SecretManagerServiceClient

    with SecretManagerFake.start({SECRET: "sk-admin-sim-prod-7Qm2vXc9LpA4"}) as fake:
        client = SecretManagerServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=fake.url),
        )
        yield fake, client
        client.transport.close()  # type: ignore[no-untyped-call]


def test_secret_manager_fake_serves_the_real_client(secrets: tuple[SecretManagerFake, Any]) -> None:
    """access_secret_version returns the value, the numbered name and a correct CRC32C."""
    fake, client = secrets
    response = client.access_secret_version(name=f"{SECRET}/versions/latest")
    assert response.payload.data == b"sk-admin-sim-prod-7Qm2vXc9LpA4"
    assert response.name == f"{SECRET}/versions/1"
    assert response.payload.data_crc32c == crc32c(response.payload.data)
    assert fake.set_secret(SECRET, "rotated") == 2
    assert client.access_secret_version(name=f"{SECRET}/versions/latest").payload.data == b"rotated"
    assert client.access_secret_version(name=f"{SECRET}/versions/1").payload.data.startswith(b"sk-admin")
    assert fake.request_count == 3 and fake.requests()[0] == {"name": f"{SECRET}/versions/latest", "status": 200}


def test_secret_manager_errors_map_to_google_exceptions(secrets: tuple[SecretManagerFake, Any]) -> None:
    """Unknown secrets raise NotFound, 403 Forbidden (not its subclass PermissionDenied), 503 ServiceUnavailable."""
    from google.api_core import exceptions as gexc

    fake, client = secrets
    with pytest.raises(gexc.NotFound, match="not found or has no versions"):
        client.access_secret_version(name="projects/demo/secrets/missing/versions/latest")
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(name=f"{SECRET}/versions/9")
    fake.add_fault("http_403", secret=SECRET, count=1)
    with pytest.raises(gexc.Forbidden) as denied:
        client.access_secret_version(name=f"{SECRET}/versions/latest")
    assert not isinstance(denied.value, gexc.PermissionDenied)  # the REST transport maps by HTTP status
    assert "secretmanager.versions.access" in str(denied.value)
    fake.add_fault("http_503", count=1)
    with pytest.raises(gexc.ServiceUnavailable):
        client.access_secret_version(name=f"{SECRET}/versions/latest", retry=None)
    assert client.access_secret_version(name=f"{SECRET}/versions/latest").payload.data.startswith(b"sk-")
    with httpx.Client(base_url=fake.url) as http:
        assert http.post("/_sm/secrets", json={"projects/p/secrets/s": "v"}).json() == {
            "versions": {"projects/p/secrets/s": 1}
        }
        assert client.access_secret_version(name="projects/p/secrets/s/versions/latest").payload.data == b"v"
        assert http.get("/_sm/requests").json()["count"] == 6


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_serve_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`python -m simulator serve` prints its URLs, writes the ready file and exits 0 on SIGTERM."""
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--slack-port", "0", "--secrets-port", "0"]
    command += ["--clock", "2026-11-28T18:00:00Z", "--ready-file", str(ready)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("simulator ready providers=http://127.0.0.1:")
        info = json.loads(ready.read_text())
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{info['providers_url']}/_sim/clock").json() == {"now": "2026-11-28T18:00:00Z"}
            assert client.post(info["slack_url"], json={"text": "hi"}).text == "ok"
            assert client.get(f"{info['secrets_url']}/_sm/requests").json()["count"] == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "simulator stopped" in out and not ready.exists()


def test_cli_expected_and_accounts(capsys: pytest.CaptureFixture[str]) -> None:
    """`expected --now` prints the expected document; `accounts` lists keys and team ids."""
    from simulator.__main__ import main

    assert main(["expected", "--now", "2026-11-28T18:00:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Decimal(doc["accounts"]["xai/core"]["mtd_usd"]) == Scenario.load().expected_mtd("xai/core", now=NOW)
    assert main(["accounts"]) == 0
    assert f"team_id={TEAM}" in capsys.readouterr().out


# --- explicit cells, teams and their expected sums ------------------------------------------------------

DEC_1 = dt.datetime(2026, 12, 1, tzinfo=UTC)
# Every instant of the month sweep, Google's month turn (08:00 UTC on the 1st) on both sides, and the 2nd.
TEAM_INSTANTS = [
    *MONTH_INSTANTS[::3],
    DEC_1 + dt.timedelta(minutes=30),
    DEC_1 + dt.timedelta(hours=7, minutes=59),
    DEC_1 + dt.timedelta(hours=9),
    DEC_1 + dt.timedelta(days=1, hours=12),
]
PRO = "Gemini 2.5 Pro"


@pytest.fixture(scope="module")
def gemini_rows() -> list[dict[str, Any]]:
    """The demo's export table: November on a USD billing account, December on a EUR one."""
    from simulator import billing_export

    return billing_export.scenario_rows("2026-11") + billing_export.scenario_rows(
        "2026-12", currency="EUR", conversion_rate="0.92", billing_account_id="01EURO-000000-000000"
    )


def test_explicit_cells_correlate_project_and_line_item() -> None:
    """proj_sim_batch_jobs spends on embeddings only and 2% of openai/prod has no project; the mtd is unchanged."""
    scenario = Scenario.load()
    cells = scenario.expected_cells("openai/prod", now=NOW)
    batch = {dict(k)["line_item"] for (_, k), v in cells.items() if dict(k)["project_id"] == "proj_sim_batch_jobs"}
    assert batch == {"text-embedding-3-large, input"}
    no_project = {dict(k)["line_item"] for (_, k), _v in cells.items() if dict(k)["project_id"] is None}
    assert no_project == {"gpt-5.4-mini, output"}
    mtd = scenario.expected_mtd("openai/prod", now=NOW)
    projects = scenario.expected_breakdown("openai/prod", now=NOW)["project_id"]
    assert projects["null"] / mtd == pytest.approx(Decimal("0.02"), abs=Decimal("1e-6"))
    assert projects["proj_sim_search"] / mtd == pytest.approx(Decimal("0.30"), abs=Decimal("1e-6"))
    assert f"{mtd:,.2f}" == "6,350.34" and "$6,350.34" in (ROOT / "simulator" / "README.md").read_text()


def test_expected_cells_add_up_to_each_day_for_every_account() -> None:
    """Per account, the joint cells of each day sum to expected_daily exactly, at any instant."""
    scenario = Scenario.load()
    for now in (NOW, DEC_1 + dt.timedelta(hours=5, minutes=10)):
        for account in scenario.accounts:
            by_day: dict[dt.date, Decimal] = {}
            for (day, _), amount in scenario.expected_cells(account, now=now).items():
                by_day[day] = by_day.get(day, Decimal(0)) + amount
            daily = {d: v for d, v in scenario.expected_daily(account, now=now).items() if v}
            assert by_day == daily, account.scope


def test_simulator_serves_the_explicit_cells(sim: Simulator, http: httpx.Client) -> None:
    """OpenAI grouped by project answers project_id null for the unowned cell; per-project sums are exact."""
    doc = openai_get(http, [("start_time", ts(NOV_1)), ("limit", 31), ("group_by", "project_id")]).json()
    served: dict[str, Decimal] = {}
    for bucket in doc["data"]:
        for r in bucket["results"]:
            name = "null" if r["project_id"] is None else r["project_id"]
            served[name] = served.get(name, Decimal(0)) + Decimal(str(r["amount"]["value"]))
    assert served == sim.expected_breakdown("openai/prod")["project_id"] and "null" in served


def test_explicit_cell_errors_name_the_field() -> None:
    """Shares over 1, a missing dimension, a duplicate combination or a lone partial share are refused."""
    base = {"provider": "openai", "label": "x", "key": "k", "spend": {"base_daily_usd": 1}}
    axes = {"project_id": [{"id": "proj_a"}], "line_item": [{"id": "a"}]}

    def cells(*entries: Any, breakdown: Any = axes) -> dict[str, Any]:
        return {"accounts": [{**base, "breakdown": breakdown, "cells": list(entries)}]}

    one = {"values": {"project_id": None, "line_item": "b"}, "share": "0.1"}
    assert len(Scenario.from_dict(cells(one)).accounts[0].cells) == 2
    cases = [
        (cells({**one, "share": "0.7"}, {**one, "values": {"project_id": "p", "line_item": "b"}, "share": "0.4"}),
         "more than the whole account"),
        (cells({**one, "values": {"project_id": None}}), "name every dimension"),
        (cells({**one, "values": {"project_id": "proj_a", "line_item": "a"}}), "already a breakdown combination"),
        (cells(one, breakdown=None), "must add up to 1"),
        (cells({**one, "share": 1}), "leave the breakdown nothing"),
        (cells({**one, "values": {"project_id": None, "line_item": "b", "model": "m"}}), "no dimension 'model'"),
        (cells({**one, "weight": 3}), "unknown field 'weight'"),
        (cells({**one, "attrs": {"model": "m"}}), "only an Anthropic cell"),
    ]  # fmt: skip
    for doc, message in cases:
        with pytest.raises(ScenarioError, match=message):
            Scenario.from_dict(doc)


def test_teams_and_unassigned_partition_the_scenario_total(gemini_rows: list[dict[str, Any]]) -> None:
    """Σ expected_team + expected_unassigned == expected_total == Σ accounts + Gemini, exactly, all month."""
    from simulator import billing_export

    scenario = Scenario.load()
    assert [t.name for t in scenario.teams] == ["search", "support", "research"]
    for now in TEAM_INSTANTS:
        teams = {t.name: scenario.expected_team(t.name, now=now, gemini_rows=gemini_rows) for t in scenario.teams}
        unassigned = scenario.expected_unassigned(now=now, gemini_rows=gemini_rows)
        total = scenario.expected_total(now=now, gemini_rows=gemini_rows)
        utc_month = f"{now:%Y%m}"
        gemini = billing_export.expected_net_usd(gemini_rows, utc_month, billing_export.GEMINI_SERVICE_IDS, now)
        accounts = sum((scenario.expected_mtd(a, now=now) for a in scenario.accounts), Decimal(0))
        assert total == accounts + gemini
        assert abs(sum(teams.values(), Decimal(0)) + unassigned - total) < Decimal("1e-8"), now
        assert all(v > 0 for v in teams.values()) or now.day == 1, now
    # Before Google's month turns, December has no Gemini rows: a UTC-month scope holds none.
    early = DEC_1 + dt.timedelta(hours=7, minutes=59)
    assert scenario.expected_team("search", now=early, gemini_rows=gemini_rows) == scenario.expected_team(
        "search", now=early
    )


def test_team_sums_agree_with_the_marginal_breakdowns(gemini_rows: list[dict[str, Any]]) -> None:
    """Each demo team equals its projects, workspaces, accounts and Gemini rows summed another way."""
    from simulator import billing_export

    scenario = Scenario.load()
    openai = scenario.expected_breakdown("openai/prod", now=NOW)["project_id"]
    workspaces = scenario.expected_breakdown("anthropic/main", now=NOW)["workspace_id"]

    def gemini(keep: Any) -> Decimal:
        return billing_export.expected_net_usd(
            gemini_rows, "202611", billing_export.GEMINI_SERVICE_IDS, NOW, where=keep
        )

    search_rows = gemini(
        lambda r: (r["project"] or {}).get("id") == "llm-prod-123456" and r["sku"]["description"].startswith(PRO)
    )
    assert search_rows > 0
    assert scenario.expected_team("search", now=NOW, gemini_rows=gemini_rows) == (
        openai["proj_sim_search"] + workspaces["wrkspc_01SimCustomerAgents"] + search_rows
    )
    assert scenario.expected_team("support", now=NOW, gemini_rows=gemini_rows) == (
        openai["proj_sim_support_bot"] + workspaces["null"] + scenario.expected_mtd("xai/core", now=NOW)
    )
    assert scenario.expected_team("research", now=NOW) == scenario.expected_mtd("openai/research", now=NOW)
    unowned_gemini = gemini(
        lambda r: not ((r["project"] or {}).get("id") == "llm-prod-123456" and r["sku"]["description"].startswith(PRO))
    )
    assert scenario.expected_unassigned(now=NOW, gemini_rows=gemini_rows) == (
        openai["proj_sim_batch_jobs"] + openai["null"] + workspaces["wrkspc_01SimDataPipeline"]
        + scenario.expected_mtd("openrouter/router", now=NOW) + scenario.expected_mtd("bedrock/main", now=NOW)
        + unowned_gemini
    )  # fmt: skip


def test_gemini_rows_without_a_project_are_counted_and_unowned(gemini_rows: list[dict[str, Any]]) -> None:
    """The export's 24-hour caution: Gemini rows with project null count in the total, in no team."""
    from simulator import billing_export

    nov = [r for r in gemini_rows if r["invoice"]["month"] == "202611"]
    orphans = [r for r in nov if r["project"] is None]
    assert len(orphans) == 2 and all(r["service"]["id"] == billing_export.GEMINI_API[0] for r in orphans)
    assert all(r["sku"]["description"].startswith(PRO) for r in orphans)  # a SKU pattern alone cannot claim them
    net = sum((billing_export.row_net_usd(r) for r in orphans), Decimal(0))
    by_project = billing_export.expected_breakdown(nov, "202611", billing_export.GEMINI_SERVICE_IDS, NOW, "project")
    assert by_project["(none)"] == net > 0
    scenario = Scenario.load()
    assert not any(t.selects_row(r) for t in scenario.teams for r in orphans)
    without = [r for r in gemini_rows if r["project"] is not None]
    assert (
        scenario.expected_unassigned(now=NOW, gemini_rows=gemini_rows)
        - scenario.expected_unassigned(now=NOW, gemini_rows=without)
        == net
    )


def test_simulator_team_sums_follow_lag_and_complete_days(sim: Simulator) -> None:
    """Simulator.expected_team / _unassigned use the served lags: in complete-days mode they add up to the accounts."""
    sim.set_lag(90, provider="openai")
    sim.set_complete_days_only(True)
    teams = sum((sim.expected_team(t.name) for t in sim.scenario.teams), Decimal(0))
    accounts = sum((sim.expected_mtd(a) for a in sim.scenario.accounts), Decimal(0))
    assert teams + sim.expected_unassigned() == sim.expected_total() == accounts
    assert sim.expected_team("support") < sim.scenario.expected_team("support", now=NOW)


def test_scenario_teams_mirror_the_budget_documents_match() -> None:
    """The demo's scenario teams, copied as they are into a budget document, load with the product's config."""
    from config import parse_budget_config

    scenario = Scenario.load()
    doc = {
        "total_budget_usd": 20000,
        "providers": {
            "openai": {"budget_usd": 9000, "accounts": [{"label": "prod"}, {"label": "research"}]},
            "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main"}]},
            "xai": {"budget_usd": 1000, "accounts": [{"label": "core", "team_id": TEAM}]},
            "gemini": {"budget_usd": 2000, "accounts": [{"label": "billing", "billing_export_table": "p-123456.b.t"}]},
        },
        "teams": {t.name: {"budget_usd": 1000, "match": t.match} for t in scenario.teams},
    }
    config = parse_budget_config(json.dumps(doc), origin="test")
    assert set(config.teams) == {"search", "support", "research"}
    assert set(config.teams["search"].match.blocks()) == {"openai", "anthropic", "gemini"}


def test_team_errors_name_the_field() -> None:
    """A scenario team with an unknown provider, selector or account, or the reserved name, is refused."""
    doc = json.loads((ROOT / "simulator" / "scenarios" / "demo.json").read_text())

    def with_teams(teams: Any) -> dict[str, Any]:
        return {**doc, "teams": teams}

    cases = [
        ({"t": {"match": {"mistral": {}}}}, "no provider 'mistral'"),
        ({"t": {"match": {"openai": {"workspace_ids": ["x"]}}}}, "no selector 'workspace_ids'"),
        ({"unassigned": {"match": {"xai": {}}}}, "other than 'unassigned'"),
        ({"t": {"match": {}}}, "non-empty match"),
        ({"t": {"match": {"openai": {"project_ids": []}}}}, "non-empty list"),
        ({"t": {"budget_usd": 5, "match": {"xai": {}}}}, "unknown field 'budget_usd'"),
    ]
    for teams, message in cases:
        with pytest.raises(ScenarioError, match=message):
            Scenario.from_dict(with_teams(teams))
    # A trimmed copy of the demo keeps its teams: what it no longer serves selects nothing.
    trimmed = Scenario.from_dict(
        {**doc, "accounts": [a for a in doc["accounts"] if a["label"] in ("prod", "main")][:2]}
    )
    full = Scenario.load()
    assert trimmed.expected_team("research", now=NOW) == 0
    assert (
        trimmed.expected_team("support", now=NOW)
        == full.expected_breakdown("openai/prod", now=NOW)["project_id"]["proj_sim_support_bot"]
        + full.expected_breakdown("anthropic/main", now=NOW)["workspace_id"]["null"]
    )
    overlapping = Scenario.from_dict(
        with_teams({**doc["teams"], "all": {"match": {"openai": {"accounts": ["research"]}}}})
    )
    with pytest.raises(ScenarioError, match="teams research and all both match openai/research"):
        overlapping.expected_unassigned(now=NOW)


def test_the_product_parses_the_new_cells_and_selects_the_same_team_spend(sim: Simulator) -> None:
    """The real OpenAI and Anthropic sources keep the scenario's joint cells (null project and default
    workspace as None) exactly, and the product's team matches select the scenario's team sums."""
    from support import make_deps

    from providers import Deadline, anthropic, openai

    deps = make_deps(env={"OPENAI_ADMIN_KEY": OPENAI_PROD, "ANTHROPIC_ADMIN_KEY": ANTHROPIC_MAIN})
    deps.base_urls = {**deps.base_urls, "openai": sim.url, "anthropic": sim.url}
    deps.cell_dims = {"openai": ("line_item", "project"), "anthropic": ("description", "model", "workspace")}
    sources = {
        "openai/prod": openai.from_config(openai.OpenAIAccount(), deps),
        "anthropic/main": anthropic.from_config(anthropic.AnthropicAccount(), deps),
    }
    names = {
        "project_id": "project",
        "workspace_id": "workspace",
        "line_item": "line_item",
        "description": "description",
    }
    scenario = sim.scenario
    for scope, src in sources.items():
        report = src.fetch(src.billing_period(NOW), Deadline(30))
        account = scenario.find(scope)
        want: dict[tuple[dt.date, tuple[tuple[str, str | None], ...]], Decimal] = {}
        for (day, key), amount in scenario.expected_cells(account, now=NOW).items():
            values = {names[d]: v for d, v in key}
            if account.provider == "anthropic":
                values["model"] = account.attrs.get(values["description"] or "", {}).get("model")
            want[(day, tuple(sorted(values.items())))] = amount
        got = {(c.day, c.dims): c.amount for c in report.cells if c.amount}
        assert got == want, scope
        for team in scenario.teams:
            for part in team.parts:
                if part.provider != account.provider or account.label not in part.selectors.get(
                    "accounts", [account.label]
                ):
                    continue  # the product narrows by `accounts` before `selects`
                match = src_spec(part.provider).team_match(**part.selectors)
                product = sum((c.amount for c in report.cells if match.selects(dict(c.dims))), Decimal(0))
                mine = sum(
                    (v for (_, k), v in scenario.expected_cells(account, now=NOW).items()
                     if part.selects_cell(account, _cell(account, k))),
                    Decimal(0),
                )  # fmt: skip
                assert product == mine > 0, (team.name, scope)


def src_spec(provider: str) -> Any:
    from providers import builtin

    return next(s for s in builtin() if s.name == provider)


def _cell(account: Any, key: tuple[tuple[str, str | None], ...]) -> Any:
    return next(c for c in account.cells if tuple(sorted(c.values.items())) == key)


@pytest.mark.emulator
def test_the_product_reads_gemini_rows_without_a_project(bigquery_emulator: Any) -> None:
    """The real Gemini source over the export with null-project rows: its cells keep project None, sum exactly."""
    from support import make_deps

    from devservers import bigquery_client
    from providers import Deadline, gemini
    from simulator import billing_export

    table = "demo-project.sim_teams.gcp_billing_export_v1_01ABCD_234567_89ABCD"
    rows = billing_export.scenario_rows("2026-11")
    client = bigquery_client(bigquery_emulator, "demo-project")
    billing_export.create_export_table(client, table, replace=True)
    billing_export.load(client, table, rows)
    deps = make_deps(bigquery_job_project="demo-project", bigquery_emulator_host=bigquery_emulator.url)
    deps.cell_dims = {"gemini": ("project", "sku")}
    src = gemini.from_config(gemini.GeminiAccount(billing_export_table=table), deps)
    report = src.fetch(src.billing_period(NOW), Deadline(60))
    ids = billing_export.GEMINI_SERVICE_IDS
    assert report.mtd_usd == billing_export.expected_net_usd(rows, "202611", ids, NOW)
    orphans = sum((c.amount for c in report.cells if c.get("project") is None), Decimal(0))
    assert (
        orphans == billing_export.expected_net_usd(rows, "202611", ids, NOW, where=lambda r: r["project"] is None) > 0
    )
    search = gemini.GeminiTeamMatch(**Scenario.load().team("search").match["gemini"])
    picked = sum((c.amount for c in report.cells if search.selects(dict(c.dims))), Decimal(0))
    assert picked == billing_export.expected_net_usd(
        rows, "202611", ids, NOW, where=Scenario.load().team("search").selects_row
    )


# --- several channels on one receiver -------------------------------------------------------------------


def test_per_hook_fault_fails_only_that_hook(slack: SlackReceiver) -> None:
    """{"mode": "500", "count": 5, "path": "/hook/search"} fails search five times; finops never fails."""
    search, finops = slack.hook_url("search"), slack.hook_url("finops")
    assert search == f"{slack.url}/hook/search" and slack.hook_path("search") == "/hook/search"
    assert slack.hook_url == f"{slack.url}/hook" and isinstance(slack.hook_url, str)
    with httpx.Client(timeout=5) as client:
        armed = client.post(f"{slack.url}/_slack/faults", json={"mode": "500", "count": 5, "path": "/hook/search"})
        assert armed.status_code == 200 and armed.json()["faults"][0]["path"] == "/hook/search"
        for _ in range(5):
            assert (client.post(search, json=MESSAGE).status_code, client.post(finops, json=MESSAGE).text) == (
                500,
                "ok",
            )
        assert client.post(search, json=MESSAGE).text == "ok"
        only = client.get(f"{slack.url}/_slack/messages", params={"path": "/hook/search"}).json()
        everything = client.get(f"{slack.url}/_slack/messages").json()
    assert only == {"messages": [MESSAGE], "count": 1, "attempts": 6}
    assert everything["count"] == 6 and everything["attempts"] == 11
    assert len(slack.messages(path="/hook/finops")) == 5 and slack.attempts("/hook/search") == 6
    assert slack.messages(path="/hook/nobody") == [] and slack.attempts("/hook/nobody") == 0


def test_a_fault_without_a_path_still_fails_every_hook(slack: SlackReceiver) -> None:
    """Global faults are unchanged: the next POST to any hook takes them; a bad path or mode is refused."""
    slack.add_fault("http_429", count=2)
    slack.add_fault("no_service", count=1, path="/hook/support")
    with httpx.Client(timeout=5) as client:
        assert client.post(slack.hook_url("support"), json=MESSAGE).status_code == 429
        assert client.post(slack.hook_url, json=MESSAGE).status_code == 429
        assert client.post(slack.hook_url("search"), json=MESSAGE).text == "ok"
        assert client.post(slack.hook_url("support"), json=MESSAGE).text == "no_service"
        assert client.post(slack.hook_url("support"), json=MESSAGE).text == "ok"
        for body in ({"mode": "http_500", "path": "/elsewhere"}, {"mode": "599", "path": "/hook/a"}):
            assert client.post(f"{slack.url}/_slack/faults", json=body).status_code == 400
    with pytest.raises(ValueError, match="one path segment"):
        slack.hook_url("a/b")
    assert slack.messages(path="/hook/support") == [MESSAGE]
