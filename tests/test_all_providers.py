"""All six providers through the real CLI: OpenAI, Anthropic, xAI, OpenRouter (simulator), Gemini (BigQuery
emulator) and AWS Bedrock (moto's STS and Cost Explorer, with the fake metadata server's ID token).

Two accounts per provider where it matters: two OpenAI organisations, two Gemini billing accounts
(one in USD, one in EUR converted with its conversion rate), two AWS accounts (one through
federation, one through an access key pair).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import logs
import main
from runtime import PROCESS
from simulator import Simulator, SlackReceiver
from simulator import billing_export as export
from simulator._bedrock import cost_and_usage_results

pytestmark = pytest.mark.emulator
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
USD_TABLE = "demo-project.billing_all.gcp_billing_export_v1_01AAAA_111111_AAAAAA"
EUR_TABLE = "demo-project.billing_all.gcp_billing_export_v1_01EEEE_555555_99EEEE"
SERVICES = ("AEFD-7695-64FA", "C7E2-9256-1C43")
KEYS = {
    "K_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4",
    "K_RESEARCH": "sk-admin-sim-research-Hn3kT8wZ2rJe",
    "K_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd",
    "K_XAI": "xai-mgmt-sim-core-Zt5nW2eK8uLs",
    "K_ROUTER": "sk-or-v1-mgmt-sim-router-Qa7Lk2Wd9Xe3",
    "K_AWS_PAIR": json.dumps({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrSIMEXAMPLEKEY"}),
}
ROLE = "arn:aws:iam::111122223333:role/llm-budget-alert-ce-read"
MOTO_KEY_ACCOUNT = "123456789012"  # moto's account for a key pair it did not issue
BUDGETS = {
    "total_budget_usd": 30000,
    "providers": {
        "openai": {
            "budget_usd": 9000,
            "accounts": [
                {"label": "prod", "budget_usd": 7000, "key_env": "K_PROD"},
                {"label": "research", "key_env": "K_RESEARCH"},
            ],
        },
        "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "K_MAIN"}]},
        "xai": {
            "budget_usd": 1000,
            "accounts": [{"label": "core", "team_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "key_env": "K_XAI"}],
        },
        "gemini": {
            "budget_usd": 6000,
            "accounts": [
                {"label": "us", "billing_export_table": USD_TABLE},
                {"label": "eu", "billing_export_table": EUR_TABLE},
            ],
        },
        "bedrock": {
            "budget_usd": 4000,
            "accounts": [{"label": "main", "role_arn": ROLE}, {"label": "legacy", "key_env": "K_AWS_PAIR"}],
        },
        "openrouter": {"budget_usd": 2000, "accounts": [{"label": "router", "key_env": "K_ROUTER"}]},
    },
}


def _bedrock_scenario(sim: Simulator) -> Any:
    """The demo's bedrock/main cells, for both AWS accounts (the legacy one is the same spend, on its own account)."""
    return sim.scenario.find("bedrock/main")


def load_aws(aws: Any, sim: Simulator, now: dt.datetime) -> None:
    """Queue `now`'s Cost Explorer answers for both AWS accounts (moto serves each new body the next one)."""
    from devservers.moto import load_cost_and_usage, reset

    reset(aws)
    results = cost_and_usage_results(_bedrock_scenario(sim), now=now)
    load_cost_and_usage(aws, results, account_id="111122223333")
    load_cost_and_usage(aws, results, account_id=MOTO_KEY_ACCOUNT)


@pytest.fixture(scope="module")
def world(bigquery_emulator: Any, aws_emulator: Any, metadata_emulator: Any) -> Iterator[dict[str, Any]]:
    from devservers import bigquery_client

    client = bigquery_client(bigquery_emulator, "demo-project")
    usd = export.scenario_rows("2026-11")
    eur = export.scenario_rows(
        "2026-11", currency="EUR", conversion_rate="0.92", billing_account_id="01EEEE-555555-99EEEE"
    )
    for table, rows in ((USD_TABLE, usd), (EUR_TABLE, eur)):
        export.create_export_table(client, table, replace=True)
        export.load(client, table, rows)
    with Simulator.start(clock=NOW) as sim, SlackReceiver.start() as slack:
        yield {"sim": sim, "slack": slack, "bq": bigquery_emulator, "usd": usd, "eur": eur, "aws": aws_emulator,
               "metadata": metadata_emulator}  # fmt: skip


@pytest.fixture
def run(
    world: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    sim = world["sim"]
    sim.reset()
    sim.set_clock(NOW)
    load_aws(world["aws"], sim, NOW)
    env = {
        **sim.env(),
        "AWS_COST_EXPLORER_BASE_URL": world["aws"].url,
        "GCE_METADATA_HOST": world["metadata"].host,
        **KEYS,
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "BIGQUERY_EMULATOR_HOST": world["bq"].url,
        "BIGQUERY_JOB_PROJECT": "demo-project",
        "SLACK_WEBHOOK_URL": world["slack"].hook_url,
        "STATE_FILE": str(tmp_path / "state.json"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BUDGET_CONFIG_FILE", raising=False)
    logs.setup("INFO", stream=io.StringIO())
    PROCESS.reset(logging_ready=True)  # a fresh process whose logging is already set up

    def go(*args: str) -> dict[str, Any]:
        assert main.cli(["check", "--json", "--dry-run", "--now", NOW.isoformat(), *args]) == 0
        doc: dict[str, Any] = json.loads(capsys.readouterr().out)
        return doc

    return go


def _accounts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{p}/{a['label']}": a for p, v in doc["providers"].items() for a in v["accounts"]}


def test_every_account_and_the_total_equal_the_scenario(run: Any, world: dict[str, Any]) -> None:
    """Every account is listed with status, MTD, freshness; totals equal the sums incl. credits and EUR."""
    doc = run()
    accounts = _accounts(doc)
    assert set(accounts) == {"openai/prod", "openai/research", "anthropic/main", "xai/core", "gemini/us", "gemini/eu",
                             "bedrock/main", "bedrock/legacy", "openrouter/router"}  # fmt: skip
    sim = world["sim"]
    scopes = ("openai/prod", "openai/research", "anthropic/main", "xai/core", "openrouter/router", "bedrock/main")
    want = {s: sim.expected_mtd(s) for s in scopes}
    want["bedrock/legacy"] = want["bedrock/main"]
    want["gemini/us"] = export.expected_net_usd(world["usd"], "202611", SERVICES, NOW)
    want["gemini/eu"] = export.expected_net_usd(world["eur"], "202611", SERVICES, NOW)
    for scope, amount in want.items():
        acc = accounts[scope]
        assert acc["status"] == "ok" and acc["freshness"]["as_of"], scope
        assert Decimal(acc["mtd_usd"]).quantize(Decimal("0.01")) == amount.quantize(Decimal("0.01")), scope
    assert accounts["gemini/eu"]["billing_month"] == "2026-11" and accounts["gemini/eu"]["month_timezone"] != "UTC"
    total = sum(want.values(), Decimal(0))
    assert Decimal(doc["total"]["mtd_usd"]).quantize(Decimal("0.01")) == total.quantize(Decimal("0.01"))
    assert doc["partial"] is False
    text = json.dumps(doc["message"])
    for title in ("OpenAI", "Anthropic", "xAI", "Gemini / Vertex AI", "AWS Bedrock", "OpenRouter"):
        assert f"*{title}*" in text
    for scope in ("bedrock/main", "bedrock/legacy", "openrouter/router"):  # exact, to the cent and below
        assert Decimal(accounts[scope]["mtd_usd"]) == want[scope], scope


def test_one_openai_org_failing_keeps_the_other(run: Any, world: dict[str, Any]) -> None:
    """research failing: prod still reported and rolled into OpenAI and the total, both marked partial."""
    world["sim"].add_fault("openai", "http_401", account="research")
    doc = run()
    accounts = _accounts(doc)
    assert accounts["openai/research"]["status"] == "failed" and accounts["openai/research"]["mtd_usd"] is None
    assert accounts["openai/prod"]["status"] == "ok"
    assert Decimal(doc["providers"]["openai"]["mtd_usd"]) == Decimal(accounts["openai/prod"]["mtd_usd"])
    assert doc["providers"]["openai"]["partial"] is True and doc["providers"]["openai"]["failed"] == ["openai/research"]
    assert doc["total"]["partial"] is True and doc["providers"]["anthropic"]["partial"] is False


def test_pacific_invoice_month_differs_in_the_first_utc_hours(run: Any, world: dict[str, Any]) -> None:
    """At Dec 1 03:00 UTC the HTTP providers report December, Gemini still November, and the message says so."""
    dec = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    world["sim"].set_clock(dec)
    load_aws(world["aws"], world["sim"], dec)
    doc = run("--now", dec.isoformat())
    accounts = _accounts(doc)
    assert accounts["openai/prod"]["billing_month"] == "2026-12"
    assert accounts["gemini/us"]["billing_month"] == "2026-11"
    assert Decimal(accounts["gemini/us"]["mtd_usd"]).quantize(Decimal("0.01")) == export.expected_net_usd(
        world["usd"], "202611", SERVICES, dec
    ).quantize(Decimal("0.01"))
    assert "billing months differ" in json.dumps(doc["message"])
    utc_month = ("openai/prod", "openai/research", "anthropic/main", "xai/core", "bedrock/main", "bedrock/legacy",
                 "openrouter/router")  # fmt: skip
    december = sum((Decimal(accounts[s]["mtd_usd"]) for s in utc_month), Decimal(0))
    assert Decimal(doc["total"]["mtd_usd"]) == december, "November's Gemini spend is not December's total"
    assert "Gemini / Vertex AI not included yet" in doc["total"]["note"]
