"""Alert state in GCS against the real fake-gcs-server (if_generation_match enforced).

Through the production `GCSStore` (a plain `storage.Client()` with STORAGE_EMULATOR_HOST) and the
whole check: concurrent checks post once, Slack outages lose nothing, corruption stops the flood.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from alerts.state import GCSStore, Ledger
from check import default_deps, run_check
from config import SecretResolver, Settings
from errors import StateConflict, StateError
from simulator import Simulator, SlackReceiver

pytestmark = pytest.mark.emulator
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEYS = {"SIM_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4", "SIM_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"}
BUDGETS = {"total_budget_usd": 14000, "providers": {
    "openai": {"budget_usd": 9000, "accounts": [{"label": "prod", "key_env": "SIM_PROD"}]},
    "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_MAIN"}]}}}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver]]:
    with Simulator.start(clock=NOW) as sim, SlackReceiver.start() as slack:
        yield sim, slack


@pytest.fixture
def world(servers: tuple[Simulator, SlackReceiver], gcs_bucket: str) -> dict[str, Any]:
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    env = {**sim.env(), **KEYS, "BUDGET_CONFIG": json.dumps(BUDGETS), "STATE_BACKEND": "gcs",
           "STATE_BUCKET": gcs_bucket, "STATE_OBJECT": "llm-budget-alert/state.json",
           "SLACK_WEBHOOK_URL": slack.hook_url, "CHECK_DEADLINE_SECONDS": "30"}
    settings = Settings.from_env(env)
    return {"sim": sim, "slack": slack, "settings": settings, "env": env, "bucket": gcs_bucket}


def _check(world: dict[str, Any], now: dt.datetime = NOW) -> Any:
    world["sim"].set_clock(now)
    return run_check(world["settings"], default_deps(world["settings"], SecretResolver(env=world["env"])), now)


def test_gcs_store_compare_and_swap(gcs_bucket: str) -> None:
    """Create-only and stale-generation writes are refused with StateConflict."""
    store = GCSStore(gcs_bucket, "cas/state.json")
    assert store.read() == (None, 0)
    gen = store.write(b"{}", if_generation=0)
    with pytest.raises(StateConflict):
        store.write(b"{}", if_generation=0)
    with pytest.raises(StateConflict):
        store.write(b"{}", if_generation=gen + 1)
    data, read_gen = store.read()
    assert data == b"{}" and read_gen == gen
    assert store.write(b"[]", if_generation=gen) != gen


def test_five_concurrent_checks_post_each_alert_once(world: dict[str, Any]) -> None:
    """Five checks started together against one GCS object: exactly one Slack post carries the alerts."""
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda _: _check(world), range(5)))
    delivered = [k for o in outcomes for k in o.delivered]
    assert len(delivered) == len(set(delivered)) and delivered, "each alert delivered by exactly one check"
    assert {"threshold:2026-11:openai:50", "threshold:2026-11:total:50"} <= set(delivered)
    assert len(world["slack"].messages()) == 1
    assert sum(o.posted for o in outcomes) == 1
    assert _check(world, NOW + dt.timedelta(hours=1)).delivered == []
    assert len(world["slack"].messages()) == 1


def test_slack_down_three_runs_then_one_post_after_recovery(world: dict[str, Any]) -> None:
    """Slack failing (500, timeout, 500) for 3 hourly runs: nothing lost, exactly one post after recovery."""
    slack = world["slack"]
    for hour, mode in enumerate(["http_500", "timeout", "http_500"]):
        slack.add_fault(mode, count=1, seconds=15 if mode == "timeout" else None)
        out = _check(world, NOW + dt.timedelta(hours=hour))
        assert not out.posted and out.pending and out.notify_error
        slack.clear_faults()
    doc = json.loads(GCSStore(world["bucket"], "llm-budget-alert/state.json").read()[0] or b"{}")
    assert {e["status"] for e in doc["events"]["2026-11"].values()} == {"pending"}
    out = _check(world, NOW + dt.timedelta(hours=3))
    assert out.posted and len(slack.messages()) == 1
    assert _check(world, NOW + dt.timedelta(hours=4)).delivered == []
    assert len(slack.messages()) == 1


def test_corrupted_state_object_is_reported_without_a_flood(world: dict[str, Any]) -> None:
    """A corrupted object: the check reports a state error, posts nothing, and leaves the object as it was."""
    store = GCSStore(world["bucket"], "llm-budget-alert/state.json")
    store.write(b'{"version": 1, "events": {"2026-11": ', if_generation=0)
    out = _check(world)
    assert out.state_error and "corrupted" in out.state_error
    assert world["slack"].attempts() == 0
    assert store.read()[0] == b'{"version": 1, "events": {"2026-11": '
    with pytest.raises(StateError):
        Ledger(store).snapshot()


def test_unknown_version_is_not_overwritten(world: dict[str, Any]) -> None:
    """A state object from a newer build is refused, not reset."""
    store = GCSStore(world["bucket"], "llm-budget-alert/state.json")
    store.write(b'{"version": 2, "events": {}, "health": {}}', if_generation=0)
    out = _check(world)
    assert out.state_error and "unknown version 2" in out.state_error and world["slack"].attempts() == 0


def test_failing_provider_five_runs_then_recovery(world: dict[str, Any]) -> None:
    """OpenAI failing 5 hourly runs then recovering: one failure notice, one recovery notice, nothing between."""
    sim, slack = world["sim"], world["slack"]
    _check(world)  # thresholds posted first, so later messages are only health notices
    slack.clear_messages()
    sim.add_fault("openai", "http_401")
    kinds: list[list[str]] = []
    for hour in range(1, 6):
        kinds.append([k.split(":")[0] for k in _check(world, NOW + dt.timedelta(hours=hour)).delivered])
    sim.clear_faults()
    for hour in range(6, 9):
        kinds.append([k.split(":")[0] for k in _check(world, NOW + dt.timedelta(hours=hour)).delivered])
    assert kinds == [[], ["failure"], [], [], [], ["recovery"], [], []]
    texts = [m["text"] for m in slack.messages()]
    assert len(texts) == 2 and "admin key rejected" in texts[0] and "reporting again" in texts[1]
