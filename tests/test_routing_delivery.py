"""Routing end to end: one message per destination per check, exactly once per (event, destination).

The real pipeline against the provider simulator and one local Slack receiver per destination (so
one can fail alone); alert state in a local file, or in the real fake-gcs-server behind the
precondition-enforcing proxy for the concurrent checks. The month-long replay drives the simulator's
clock as `tools.replay` does.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import main
import output
from check import CheckOutcome, default_deps, run_check
from config import ConfigError, SecretResolver, Settings
from simulator import Scenario, Simulator, SlackReceiver

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEYS = {"SIM_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4", "SIM_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"}
HOOKS = {"finops": "HOOK_FINOPS", "search": "HOOK_SEARCH", "support": "HOOK_SUPPORT"}
BUDGETS: dict[str, Any] = {
    "total_budget_usd": 14000,
    "providers": {
        "openai": {"budget_usd": 9000, "notify": ["search"], "accounts": [{"label": "prod", "key_env": "SIM_PROD"}]},
        "anthropic": {
            "budget_usd": 3000,
            "notify": ["support"],
            "accounts": [{"label": "main", "key_env": "SIM_MAIN"}],
        },
    },
    "destinations": {name: {"webhook_env": var} for name, var in HOOKS.items()},
    "default_destination": "finops",
    "digest": {"enabled": False},
}
OPENAI_50 = "threshold:2026-11:openai:50"
TOTAL_50 = "threshold:2026-11:total:50"
LIMIT = "limit:2026-11:openai/prod:proj_sim_search"  # the demo's project hard limit, routed like its account
ANTHROPIC = {f"threshold:2026-11:anthropic:{p}" for p in (50, 80, 100)}
EXPECTED = {
    "finops": {TOTAL_50},
    "search": {OPENAI_50 + "@search", LIMIT + "@search"},
    "support": {k + "@support" for k in ANTHROPIC},
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, dict[str, SlackReceiver]]]:
    with (
        Simulator.start(clock=NOW) as sim,
        SlackReceiver.start() as finops,
        SlackReceiver.start() as search,
        SlackReceiver.start() as support,
    ):
        yield sim, {"finops": finops, "search": search, "support": support}


def _env(sim: Simulator, slack: dict[str, SlackReceiver], budgets: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        **sim.env(),
        **KEYS,
        "BUDGET_CONFIG": json.dumps(budgets),
        **{HOOKS[name]: r.hook_url for name, r in slack.items()},
        "CHECK_DEADLINE_SECONDS": "30",
        **extra,
    }


@pytest.fixture
def world(servers: tuple[Simulator, dict[str, SlackReceiver]], tmp_path: Path) -> dict[str, Any]:
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    for r in slack.values():
        r.reset()
    env = _env(sim, slack, BUDGETS, STATE_FILE=str(tmp_path / "state.json"))
    return {"sim": sim, "slack": slack, "env": env, "settings": Settings.from_env(env)}


def _check(world: dict[str, Any], now: dt.datetime = NOW, **kw: Any) -> CheckOutcome:
    world["sim"].set_clock(now)
    settings = world["settings"]
    return run_check(settings, default_deps(settings, SecretResolver(env=world["env"])), now, **kw)


def _texts(receiver: SlackReceiver) -> list[str]:
    return [m["text"] for m in receiver.messages()]


def test_each_destination_gets_one_message_with_only_its_events_and_scopes(world: dict[str, Any]) -> None:
    """Three destinations: one message each, holding its own alerts and scopes; the JSON lists each."""
    out = _check(world)
    assert {d: set(r.delivered) for d, r in out.deliveries.items()} == EXPECTED
    assert out.posted and out.notify_error is None and out.pending == []
    finops, search, support = (_texts(world["slack"][d]) for d in ("finops", "search", "support"))
    assert len(finops) == len(search) == len(support) == 1
    assert "*Total*" in finops[0] and "OpenAI" not in finops[0] and "Anthropic" not in finops[0]
    assert "*OpenAI*" in search[0] and "Total" not in search[0] and "Anthropic" not in search[0]
    assert "*Anthropic* crossed *100%*" in support[0] and "Total" not in support[0]
    blocks = json.dumps(world["slack"]["search"].messages()[0]["blocks"])
    assert "Anthropic" not in blocks and "Total" not in blocks, "the blocks too hold only the destination's scopes"
    doc = output.to_json(out)
    assert doc["destinations"]["support"]["delivered"] == sorted(EXPECTED["support"])
    assert doc["destinations"]["finops"]["posted"] is True and doc["slack"]["posted"] is True


def test_copy_all_to_default_gives_the_default_every_alert_as_well(world: dict[str, Any]) -> None:
    """With copy_all_to_default the default destination's one message holds every alert and scope."""
    env = {**world["env"], "BUDGET_CONFIG": json.dumps({**BUDGETS, "copy_all_to_default": True})}
    world.update(env=env, settings=Settings.from_env(env))
    out = _check(world)
    assert set(out.deliveries["finops"].delivered) == {TOTAL_50, OPENAI_50, LIMIT, *ANTHROPIC}
    [text] = _texts(world["slack"]["finops"])
    assert "*Total*" in text and "*OpenAI*" in text and "*Anthropic*" in text
    assert len(_texts(world["slack"]["search"])) == 1


def test_one_destination_down_keeps_only_its_alerts_pending_and_gets_them_once_labelled_delayed(
    world: dict[str, Any],
) -> None:
    """search answering 500: finops and support are posted; search's alert is pending, then posted once, delayed."""
    search = world["slack"]["search"]
    search.add_fault("http_500")
    out = _check(world)
    assert set(out.deliveries["finops"].delivered) == EXPECTED["finops"]
    assert set(out.deliveries["support"].delivered) == EXPECTED["support"]
    assert out.deliveries["search"].pending == sorted(EXPECTED["search"]) and not out.deliveries["search"].posted
    assert out.pending == sorted(EXPECTED["search"]) and out.posted
    assert out.notify_error is not None and out.notify_error.startswith("search: ")
    assert out.notify_permanent is None and main._http_status(out) == ("ok", 200)
    assert search.messages() == []
    search.clear_faults()
    later = _check(world, NOW + dt.timedelta(hours=1))
    assert later.delivered == sorted(EXPECTED["search"]) and list(later.deliveries) == ["search"]
    [text] = _texts(search)
    assert "_(delayed)_" in text
    assert _check(world, NOW + dt.timedelta(hours=2)).delivered == []
    assert [len(_texts(r)) for r in world["slack"].values()] == [1, 1, 1]


def test_a_hanging_destination_does_not_hold_the_others(world: dict[str, Any]) -> None:
    """search never answering: the others are posted in the same check; search's alert is pending, maybe-posted."""
    world["slack"]["search"].add_fault("timeout", seconds=20)
    out = _check(world)
    assert out.deliveries["finops"].posted and out.deliveries["support"].posted
    assert not out.deliveries["search"].posted and out.deliveries["search"].pending == sorted(EXPECTED["search"])
    assert len(_texts(world["slack"]["finops"])) == len(_texts(world["slack"]["support"])) == 1


def test_a_permanent_refusal_by_one_destination_answers_502_and_names_the_fix(world: dict[str, Any]) -> None:
    """support's webhook revoked (404 no_service): the others are posted, the check answers 502 with the fix."""
    world["slack"]["support"].add_fault("no_service")
    out = _check(world)
    assert out.deliveries["support"].permanent == "webhook_revoked" and out.deliveries["support"].fix
    assert out.notify_permanent == "webhook_revoked" and out.notify_fix == out.deliveries["support"].fix
    assert main._http_status(out) == ("slack_refused", 502)
    assert out.deliveries["finops"].posted and out.deliveries["search"].posted


def test_a_destination_whose_variable_is_unset_fails_alone_and_the_error_names_it(world: dict[str, Any]) -> None:
    """HOOK_SUPPORT unset at run time: support is pending with an error naming the variable, never a URL."""
    env = {k: v for k, v in world["env"].items() if k != "HOOK_SUPPORT"}
    world.update(env=env, settings=Settings.from_env(env))
    out = _check(world)
    error = out.deliveries["support"].error or ""
    assert "HOOK_SUPPORT" in error and 'destination "support"' in error
    assert "http" not in error and set(out.deliveries["support"].pending) == EXPECTED["support"]
    assert out.deliveries["finops"].posted and out.deliveries["search"].posted


def test_a_dry_run_lists_per_destination_what_would_be_posted(world: dict[str, Any]) -> None:
    """--dry-run: each destination's pending deliveries and its message; nothing posted, nothing recorded."""
    out = _check(world, dry_run=True)
    assert {d: set(r.pending) for d, r in out.deliveries.items()} == EXPECTED
    assert set(out.payloads) == {"finops", "search", "support"}
    assert "*OpenAI*" in out.payloads["search"]["text"]
    assert all(r.messages() == [] for r in world["slack"].values())
    assert "Slack → search (would post)" in output.cli_text(out, output.to_json(out))
    assert {d: set(r.delivered) for d, r in _check(world).deliveries.items()} == EXPECTED


def test_a_pending_alert_whose_destination_was_removed_is_dropped_with_a_warning(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """search down, then removed from the document: its pending alert is dropped (WARN), never posted elsewhere."""
    world["slack"]["search"].add_fault("http_500")
    _check(world)
    world["slack"]["search"].clear_faults()
    budgets = json.loads(json.dumps(BUDGETS))
    del budgets["destinations"]["search"]
    budgets["providers"]["openai"]["notify"] = []
    env = {**world["env"], "BUDGET_CONFIG": json.dumps(budgets)}
    world.update(env=env, settings=Settings.from_env(env))
    out = _check(world, NOW + dt.timedelta(hours=1))
    assert out.dropped == sorted(EXPECTED["search"])
    assert any(r.levelname == "WARNING" and "dropped" in r.getMessage() for r in caplog.records)
    assert world["slack"]["search"].messages() == []
    assert set(out.delivered) == {OPENAI_50, LIMIT}, "now the default's: new deliveries, said once"


def test_destinations_and_the_slack_webhook_variables_together_are_a_config_error(world: dict[str, Any]) -> None:
    """A document with destinations and SLACK_WEBHOOK_URL set: ConfigError naming the variable and the fix."""
    with pytest.raises(ConfigError, match=r"SLACK_WEBHOOK_URL is set.*unset SLACK_WEBHOOK_URL.*\"finops\""):
        Settings.from_env({**world["env"], "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"})
    world["settings"].require_slack()  # each destination names its own webhook: nothing more to require


def test_doctor_reads_and_tests_each_destinations_webhook(world: dict[str, Any]) -> None:
    """doctor: one secret row and one Slack row per destination; an unset variable fails that row alone."""
    import doctor

    env = {k: v for k, v in world["env"].items() if k != "HOOK_SUPPORT"}
    report = doctor.run(env, post_test=True, now=NOW)
    rows = {(r.check, r.target): r for r in report.rows}
    assert rows[("secret", "slack webhook finops")].status == "ok"
    assert rows[("secret", "slack webhook support")].status == "fail"
    assert "HOOK_SUPPORT" in rows[("secret", "slack webhook support")].detail
    assert rows[("slack", "webhook search")].status == "ok" and rows[("slack", "webhook support")].status == "skip"
    assert [len(world["slack"][d].messages()) for d in ("finops", "search", "support")] == [1, 1, 0]


# --- five concurrent checks against GCS -----------------------------------------------------------


@pytest.mark.emulator
def test_five_concurrent_checks_post_each_alert_once_per_destination(
    servers: tuple[Simulator, dict[str, SlackReceiver]], proxied_bucket: str
) -> None:
    """5 checks at once × 3 destinations against one GCS object: each (event, destination) posted exactly once."""
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    for r in slack.values():
        r.reset()
    env = _env(sim, slack, BUDGETS, STATE_BACKEND="gcs", STATE_BUCKET=proxied_bucket)
    world = {"sim": sim, "env": env, "settings": Settings.from_env(env)}
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda _: _check(world), range(5)))
    delivered = Counter(k for o in outcomes for k in o.delivered)
    assert set(delivered) == set().union(*EXPECTED.values()) and set(delivered.values()) == {1}
    assert [len(r.messages()) for r in slack.values()] == [1, 1, 1], "one message per destination"
    assert _check(world, NOW + dt.timedelta(hours=1)).delivered == []
    assert [len(r.messages()) for r in slack.values()] == [1, 1, 1]


# --- a month replayed hour by hour ------------------------------------------------------------


START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)
END = dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)
DOWN = [START + dt.timedelta(hours=h) for h in range(9, 14)]  # search fails 09:00-13:00 on Dec 1: 5 runs
SCENARIO = {
    "name": "flat",
    "accounts": [
        {
            "provider": "openai",
            "label": "prod",
            "key": KEYS["SIM_PROD"],
            "spend": {"base_daily_usd": "100"},
            "breakdown": {"line_item": [{"id": "gpt-5.4, input", "weight": 1}]},
        },
        {
            "provider": "anthropic",
            "label": "main",
            "key": KEYS["SIM_MAIN"],
            "spend": {"base_daily_usd": "50"},
            "breakdown": {"description": [{"id": "Claude Usage", "weight": 1}]},
        },
    ],
}
REPLAY_BUDGETS = {
    **BUDGETS,
    "total_budget_usd": 5000,
    "providers": {
        "openai": {
            "budget_usd": 3000,
            "notify": ["search"],
            "accounts": [{"label": "prod", "budget_usd": 40, "key_env": "SIM_PROD"}],
        },
        "anthropic": {
            "budget_usd": 2000,
            "notify": ["support"],
            "accounts": [{"label": "main", "key_env": "SIM_MAIN"}],
        },
    },
    "digest": {"enabled": True, "hour_utc": 9},
}
Delivered = list[tuple[dt.datetime, str]]


def _replay(sim: Simulator, slack: dict[str, SlackReceiver], state: Path, *, down: list[dt.datetime]) -> Delivered:
    """Hourly checks over December, moving the simulator's clock as tools.replay does; search fails at `down`."""
    for r in slack.values():
        r.reset()
    env = _env(sim, slack, REPLAY_BUDGETS, STATE_FILE=str(state))
    settings = Settings.from_env(env)
    deps = default_deps(settings, SecretResolver(env=env))
    out: Delivered = []
    t = START
    while t <= END:
        sim.set_clock(t)
        if t in down:
            slack["search"].add_fault("http_500")
        outcome = run_check(settings, deps, t)
        slack["search"].clear_faults()
        assert outcome.state_error is None
        out.extend((t, k) for k in outcome.delivered)
        t += dt.timedelta(hours=1)
    return out


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Delivered, Delivered, dict[str, list[Any]]]]:
    """December replayed twice over three destinations: all up, and with search failing for 5 runs."""
    with (
        Simulator.start(Scenario.from_dict(SCENARIO), clock=START) as sim,
        SlackReceiver.start() as finops,
        SlackReceiver.start() as search,
        SlackReceiver.start() as support,
    ):
        slack = {"finops": finops, "search": search, "support": support}
        calm = _replay(sim, slack, tmp_path_factory.mktemp("calm") / "state.json", down=[])
        stormy = _replay(sim, slack, tmp_path_factory.mktemp("stormy") / "state.json", down=DOWN)
        yield calm, stormy, {name: r.messages() for name, r in slack.items()}


def _of(delivered: Delivered, dest: str) -> Delivered:
    mine = [(t, k) for t, k in delivered if k.endswith("@" + dest)]
    return mine if dest != "finops" else [(t, k) for t, k in delivered if "@" not in k]


def test_a_replayed_month_delivers_each_event_once_per_destination(
    replays: tuple[Delivered, Delivered, dict[str, list[Any]]],
) -> None:
    """Over December hourly, every (event, destination) is delivered once; digests reach each destination daily."""
    calm, stormy, _ = replays
    for run in (calm, stormy):
        keys = [k for _, k in run]
        assert len(keys) == len(set(keys)), "no (event, destination) delivered twice"
    keys = {k for _, k in calm}
    assert {
        "threshold:2026-12:openai/prod:100@search",
        "threshold:2026-12:total:80",
        "forecast:2026-12:openai:100@search",
    } <= keys
    assert {"threshold:2026-12:anthropic:50@support", "threshold:2026-12:openai:100@search"} <= keys
    for dest in ("finops", "search", "support"):
        digests = [k for _, k in _of(calm, dest) if k.startswith("digest:")]
        assert len(digests) == 31, f"{dest} gets December's 31 digests, once each"


def test_one_destination_failing_for_five_runs_leaves_the_others_untouched(
    replays: tuple[Delivered, Delivered, dict[str, list[Any]]],
) -> None:
    """search down 5 runs: finops and support get exactly what they got with all up, at the same hours."""
    calm, stormy, _ = replays
    for dest in ("finops", "support"):
        assert _of(stormy, dest) == _of(calm, dest)


def test_the_failed_destination_gets_each_alert_once_after_recovery_labelled_delayed(
    replays: tuple[Delivered, Delivered, dict[str, list[Any]]],
) -> None:
    """search's alerts of its 5 down hours arrive once, at the first run after recovery, labelled delayed."""
    calm, stormy, messages = replays
    recovered = DOWN[-1] + dt.timedelta(hours=1)
    missed = {k for t, k in _of(calm, "search") if t in DOWN}
    assert missed >= {"threshold:2026-12:openai/prod:50@search", "digest:2026-12-01@search"}
    assert {k for t, k in _of(stormy, "search") if t == recovered} == missed | {
        k for t, k in _of(calm, "search") if t == recovered
    }
    assert {k for _, k in _of(stormy, "search")} == {k for _, k in _of(calm, "search")}, "nothing lost, nothing extra"
    hours = {t for t, _ in _of(stormy, "search")}
    assert len(messages["search"]) == len(hours), "one message per check that had something for search"
    late = [m["text"] for m in messages["search"] if "_(delayed)_" in m["text"]]
    assert len(late) == 1 and "*OpenAI · prod* crossed *100%*" in late[0], "the highest threshold, said once, delayed"
