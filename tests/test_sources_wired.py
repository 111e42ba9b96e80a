"""Bedrock and OpenRouter through the check's own fetch step: read-only calls, and Cost Explorer's cadence
kept across checks by the source cache next to the alert state (moto, the metadata fake, the simulator)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from check import default_deps, fetch_all, make_cache_store, run_check
from config import SecretResolver, Settings
from devservers.moto import load_cost_and_usage, reset
from models import Deadline
from providers import bedrock, openrouter
from providers._http import make_client
from simulator import Simulator
from simulator._bedrock import cost_and_usage_results

pytestmark = pytest.mark.emulator
DAY = dt.datetime(2026, 11, 20, 0, 5, tzinfo=dt.UTC)
ROLE = "arn:aws:iam::111122223333:role/llm-budget-alert-ce-read"
ROUTER_KEY = "sk-or-v1-mgmt-sim-router-Qa7Lk2Wd9Xe3"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator.start(clock=DAY) as server:
        yield server


@pytest.fixture
def world(
    sim: Simulator, aws_emulator: Any, metadata_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """moto with the day's Cost Explorer answer queued for the role's account; env for both sources."""
    reset(aws_emulator)
    sim.reset()
    sim.set_clock(DAY)
    load_cost_and_usage(
        aws_emulator, cost_and_usage_results(sim.scenario.find("bedrock/main"), now=DAY), account_id="111122223333"
    )
    budgets = {
        "total_budget_usd": 5000,
        "providers": {
            "bedrock": {"budget_usd": 3000, "accounts": [{"label": "main", "role_arn": ROLE}]},
            "openrouter": {"budget_usd": 2000, "accounts": [{"label": "router", "key_env": "K_ROUTER"}]},
        },
    }
    env = {
        **sim.env(),
        "AWS_COST_EXPLORER_BASE_URL": aws_emulator.url,
        "GCE_METADATA_HOST": metadata_emulator.host,
        "K_ROUTER": ROUTER_KEY,
        "BUDGET_CONFIG": json.dumps(budgets),
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T/B/x",
        "STATE_FILE": str(tmp_path / "state.json"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BUDGET_CONFIG_FILE", raising=False)
    return {"sim": sim, "aws": aws_emulator, "metadata": metadata_emulator, "settings": Settings.from_env()}


def _logged(log: list[httpx.Request]) -> Callable[..., httpx.Client]:
    """The production client factory, recording every request it sends."""

    def factory(base_url: str, **kw: Any) -> httpx.Client:
        client = make_client(base_url, **kw)
        client.event_hooks["request"] = [*client.event_hooks["request"], log.append]
        return client

    return factory


def _call(r: httpx.Request) -> tuple[str, str]:
    if r.headers.get("x-amz-target"):
        return r.method, r.headers["x-amz-target"]
    if r.method == "POST" and r.url.path == "/":
        return r.method, "sts:" + parse_qs(r.content.decode())["Action"][0]
    return r.method, r.url.path


def _results(settings: Settings, now: dt.datetime, log: list[httpx.Request]) -> dict[str, Any]:
    deps = default_deps(settings, SecretResolver())
    deps.http_factory = _logged(log)
    return {r.account.scope: r for r in fetch_all(settings, deps, now, Deadline(20))}


def test_bedrock_federation_and_openrouter_make_read_only_calls(world: dict[str, Any]) -> None:
    """One check: metadata ID token → STS → Cost Explorer pages, and OpenRouter GETs; nothing else is sent."""
    log: list[httpx.Request] = []
    results = _results(world["settings"], DAY, log)
    sim = world["sim"]
    assert results["bedrock/main"].report is not None, results["bedrock/main"].error
    assert results["bedrock/main"].report.mtd_usd == sim.expected_mtd("bedrock/main", now=DAY)
    assert results["openrouter/router"].report is not None, results["openrouter/router"].error
    assert results["openrouter/router"].report.mtd_usd == sim.expected_mtd("openrouter/router", now=DAY)
    aws_calls = [_call(r) for r in log if not r.url.path.startswith("/api/v1")]
    assert aws_calls == [
        ("GET", bedrock.ID_TOKEN_PATH),
        ("POST", "sts:AssumeRoleWithWebIdentity"),
        ("POST", bedrock.CE_TARGET),
        ("POST", bedrock.CE_TARGET),
    ]
    assert set(aws_calls) <= bedrock.READ_CALLS
    routed = [(r.method, r.url.path.removeprefix("/api/v1")) for r in log if r.url.path.startswith("/api/v1")]
    assert routed and set(routed) <= openrouter.READ_CALLS
    assert not [r for r in sim.requests("openrouter") if r["mutating"] or r["method"] != "GET"]
    assert world["metadata"].requests[-1]["query"] == {"audience": "sts.amazonaws.com", "format": "full"}


def test_a_replayed_day_of_checks_stays_within_the_cadence(world: dict[str, Any]) -> None:
    """24 hourly checks: Cost Explorer is asked 3 times (8-hour slots, 2 pages each), reused in between."""
    log: list[httpx.Request] = []
    as_of = []
    for hour in range(24):
        now = DAY.replace(hour=hour)
        result = _results(world["settings"], now, log)["bedrock/main"]
        assert result.report is not None, result.error
        assert result.report.mtd_usd == world["sim"].expected_mtd("bedrock/main", now=DAY)  # the queued answer
        as_of.append(result.report.freshness.note)
    ce = [r for r in log if r.headers.get("x-amz-target") == bedrock.CE_TARGET]
    every = bedrock.BedrockAccount().fetch_every_hours
    assert every == 8 and len(ce) == (24 // every) * 2
    assert sum(1 for n in as_of if "00:05 UTC" in n) == 8, "checks in a slot say the fetch time they reuse"
    cache = json.loads(Path(world["settings"].state_file).with_name("state.sources.json").read_text())
    assert cache["version"] == 1 and len(cache["entries"]) == 1


def test_a_dry_run_reads_the_cache_but_never_writes_it(world: dict[str, Any]) -> None:
    """A dry run records nothing: no alert state and no source cache, though it fetched."""
    settings = world["settings"]
    deps = default_deps(settings, SecretResolver())
    outcome = run_check(settings, deps, DAY, dry_run=True)
    assert {r.account.scope: r.report is not None for r in outcome.results} == {
        "bedrock/main": True,
        "openrouter/router": True,
    }
    assert make_cache_store(settings).read() == (None, 0)


def test_an_unusable_cache_is_a_fetch_not_a_failure(world: dict[str, Any]) -> None:
    """A corrupt or foreign cache object costs one fetch; the report is right."""
    settings = world["settings"]
    path = Path(settings.state_file).with_name("state.sources.json")
    path.write_text('{"version": 99, "entries": {"x": 1}}')
    log: list[httpx.Request] = []
    result = _results(settings, DAY, log)["bedrock/main"]
    assert result.report is not None and result.report.mtd_usd > Decimal(0)
    assert sum(1 for r in log if r.headers.get("x-amz-target")) == 2
    assert json.loads(path.read_text())["version"] == 1
