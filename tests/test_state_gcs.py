"""Alert state in GCS against the real fake-gcs-server behind `GCSProxy` (preconditions enforced on
uploads by fake-gcs-server, on metadata GETs and downloads by the proxy, as GCS does).

Through the production `GCSStore` (a plain `storage.Client()` with STORAGE_EMULATOR_HOST) and the
whole check: concurrent checks post once, a write landing mid-read or a lost write answer changes
nothing, Slack outages and refusals lose nothing, corruption stops the flood.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from alerts.events import MAYBE_REPEAT
from alerts.state import GCSStore, Ledger
from check import default_deps, run_check
from config import SecretResolver, Settings
from devservers.gcs_proxy import GCSProxy
from errors import StateConflict, StateError
from simulator import Simulator, SlackReceiver

pytestmark = pytest.mark.emulator
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEYS = {"SIM_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4", "SIM_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"}
BUDGETS = {
    "total_budget_usd": 14000,
    "providers": {
        "openai": {"budget_usd": 9000, "accounts": [{"label": "prod", "key_env": "SIM_PROD"}]},
        "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_MAIN"}]},
    },
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver]]:
    with Simulator.start(clock=NOW) as sim, SlackReceiver.start() as slack:
        yield sim, slack


@pytest.fixture
def world(servers: tuple[Simulator, SlackReceiver], proxied_bucket: str, gcs_proxy: GCSProxy) -> dict[str, Any]:
    sim, slack = servers
    gcs_bucket = proxied_bucket
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    env = {
        **sim.env(),
        **KEYS,
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "STATE_BACKEND": "gcs",
        "STATE_BUCKET": gcs_bucket,
        "STATE_OBJECT": "llm-budget-alert/state.json",
        "SLACK_WEBHOOK_URL": slack.hook_url,
        "CHECK_DEADLINE_SECONDS": "30",
    }
    settings = Settings.from_env(env)
    return {"sim": sim, "slack": slack, "settings": settings, "env": env, "bucket": gcs_bucket, "proxy": gcs_proxy}


def _check(world: dict[str, Any], now: dt.datetime = NOW) -> Any:
    world["sim"].set_clock(now)
    return run_check(world["settings"], default_deps(world["settings"], SecretResolver(env=world["env"])), now)


def test_gcs_store_compare_and_swap(proxied_bucket: str) -> None:
    """Create-only and stale-generation writes are refused with StateConflict."""
    store = GCSStore(proxied_bucket, "cas/state.json")
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
    store.write(b'{"version": 3, "events": {}, "health": {}}', if_generation=0)
    out = _check(world)
    assert out.state_error and "unknown version 3" in out.state_error and world["slack"].attempts() == 0


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


OBJECT = "llm-budget-alert/state.json"


class TwoRequestStore(GCSStore):
    """The read the store used to do: metadata, then a download conditioned on that generation."""

    def read(self) -> tuple[bytes | None, int]:
        from google.api_core import exceptions as gexc

        blob = self._blob()
        try:
            blob.reload(timeout=10)
            return blob.download_as_bytes(if_generation_match=blob.generation, timeout=10), int(blob.generation)
        except gexc.NotFound:
            return None, 0
        except gexc.PreconditionFailed:
            raise StateConflict(f"{self.location} changed while being read") from None


class ArmAfterWrites(GCSStore):
    """Arms `arm()` once this store has written `writes` times (0: at once): 1 targets the confirm."""

    def __init__(self, bucket: str, *, writes: int, arm: Any) -> None:
        super().__init__(bucket, OBJECT)
        self.left, self.arm = writes, arm
        if writes == 0:
            arm()

    def write(self, data: bytes, *, if_generation: int) -> int:
        gen = super().write(data, if_generation=if_generation)
        self.left -= 1
        if self.left == 0:
            self.arm()
        return gen


def _another_run_writes(world: dict[str, Any]) -> Any:
    """What an overlapping run does: claim an event of its own and confirm it (real conditional writes)."""
    other = {"other:2026-11": {"month": "2026-11", "kind": "digest", "scope": "total", "line": "other run"}}

    def run() -> None:
        ledger = Ledger(GCSStore(world["bucket"], OBJECT))
        ledger.confirm(ledger.claim(other, NOW), NOW)

    return run


def _settled_once(world: dict[str, Any], out: Any) -> None:
    assert out.state_error is None and out.posted and out.delivered
    assert len(world["slack"].messages()) == 1 and world["slack"].attempts() == 1
    doc = Ledger(GCSStore(world["bucket"], OBJECT)).snapshot()
    assert {k: e["status"] for k, e in doc["events"]["2026-11"].items() if k != "other:2026-11"} == dict.fromkeys(
        out.delivered, "sent"
    )
    assert _check(world, NOW + dt.timedelta(hours=1)).delivered == [] and len(world["slack"].messages()) == 1


@pytest.mark.parametrize("at", ["claim", "confirm"])
@pytest.mark.parametrize("when", ["after_metadata", "before_download", "after_download"])
def test_a_write_landing_mid_read_is_retried_at_claim_and_confirm(world: dict[str, Any], at: str, when: str) -> None:
    """Another writer lands between metadata and download (or read and write): each alert posted once."""
    proxy: GCSProxy = world["proxy"]
    refused = proxy.refused
    arm = lambda: proxy.on(when, _another_run_writes(world))  # noqa: E731
    store_cls = TwoRequestStore if when == "after_metadata" else GCSStore
    store = ArmAfterWrites(world["bucket"], writes=0 if at == "claim" else 1, arm=arm)
    store.read = store_cls.read.__get__(store)  # type: ignore[method-assign]
    if at == "claim":
        GCSStore(world["bucket"], OBJECT).write(b'{"version":1,"events":{},"health":{}}', if_generation=0)
    world["sim"].set_clock(NOW)
    out = run_check(
        world["settings"], default_deps(world["settings"], SecretResolver(env=world["env"])), NOW, store=store
    )
    _settled_once(world, out)
    if when == "after_metadata":
        assert proxy.refused > refused, "the proxy answered the stale download 412, as GCS does"


@pytest.mark.parametrize("writes", [0, 1], ids=["claim", "confirm"])
def test_a_lost_write_answer_is_recognised_as_our_own(world: dict[str, Any], writes: int) -> None:
    """The write landed, its answer was reset, the client's retry got 412: the run carries on and posts once."""
    proxy: GCSProxy = world["proxy"]
    store = ArmAfterWrites(world["bucket"], writes=writes, arm=lambda: proxy.drop_write_answers(1))
    dropped = proxy.dropped
    world["sim"].set_clock(NOW)
    out = run_check(
        world["settings"], default_deps(world["settings"], SecretResolver(env=world["env"])), NOW, store=store
    )
    assert proxy.dropped == dropped + 1
    _settled_once(world, out)


def test_slack_answer_lost_posts_once_and_the_redelivery_is_labelled(world: dict[str, Any]) -> None:
    """Slack accepted the post and reset the connection: no re-POST in that run; the next run says 'may be a repeat'."""
    slack = world["slack"]
    slack.add_fault("accept_then_reset", count=1)
    first = _check(world)
    assert not first.posted and first.pending and slack.attempts() == 1 and len(slack.messages()) == 1
    assert MAYBE_REPEAT.strip() not in slack.messages()[0]["text"]
    second = _check(world, NOW + dt.timedelta(hours=1))
    assert second.posted and sorted(second.delivered) == sorted(first.pending) and len(slack.messages()) == 2
    assert MAYBE_REPEAT.strip() in slack.messages()[1]["text"]
    assert _check(world, NOW + dt.timedelta(hours=2)).delivered == [] and len(slack.messages()) == 2


def test_an_alert_delivered_after_a_failed_run_is_labelled_delayed(world: dict[str, Any]) -> None:
    """Slack 500 once: the next run's message marks the still-holding alerts delayed."""
    world["slack"].add_fault("http_500", count=1)
    assert not _check(world).posted
    out = _check(world, NOW + dt.timedelta(hours=1))
    text = world["slack"].messages()[0]["text"]
    assert out.posted and "_(delayed)_" in text and MAYBE_REPEAT.strip() not in text


@pytest.mark.parametrize(
    ("mode", "cause", "fix"),
    [
        ("no_service", "webhook_revoked", "create a new incoming webhook"),
        ("http_410", "channel_archived", "unarchive the channel"),
        ("http_403", "posting_denied", "workspace admin"),
    ],
)
def test_permanent_slack_errors_are_named_with_the_fix_and_keep_alerts(
    world: dict[str, Any], mode: str, cause: str, fix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Revoked webhook / archived channel / posting denied: named, the fix given once at ERROR, alerts kept."""
    world["slack"].add_fault(mode, count=1)
    out = _check(world)
    assert not out.posted and out.pending and out.notify_permanent == cause and fix in (out.notify_fix or "")
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "Slack refuses" in r.getMessage()]
    assert len(errors) == 1 and fix in errors[0].getMessage()
    doc = Ledger(GCSStore(world["bucket"], OBJECT)).snapshot()
    assert {e["status"] for e in doc["events"]["2026-11"].values()} == {"pending"}
    after = _check(world, NOW + dt.timedelta(hours=1))
    assert after.posted and sorted(after.delivered) == out.pending and len(world["slack"].messages()) == 1


@pytest.mark.parametrize("mode", ["invalid_blocks", "invalid_payload"])
def test_a_message_slack_rejects_is_posted_as_plain_text(world: dict[str, Any], mode: str) -> None:
    """Slack rejects the formatted message: the alerts go out as plain text in the same run, once."""
    world["slack"].add_fault(mode, count=1)
    out = _check(world)
    (msg,) = world["slack"].messages()
    assert out.posted and out.delivered and "blocks" not in msg and "plain text" in msg["text"]
    assert "crossed" in msg["text"] and out.notify_error and out.notify_permanent is None
    assert _check(world, NOW + dt.timedelta(hours=1)).delivered == [] and len(world["slack"].messages()) == 1


def _valid_with_pending(world: dict[str, Any]) -> bytes:
    world["slack"].add_fault("http_500", count=1)
    assert not _check(world).posted
    data = GCSStore(world["bucket"], OBJECT).read()[0]
    assert data is not None
    return data


def _break(data: bytes, how: str) -> bytes:
    doc = json.loads(data)
    _, entry = next(iter(doc["events"]["2026-11"].items()))
    if how == "deep nesting":
        return b'{"version": 1, "events": ' + b"[" * 50_000 + b"]" * 50_000 + b', "health": {}}'
    if how == "health entry a string":
        doc["health"]["openai/prod"] = "failing"
    elif how == "non-numeric counter":
        doc["health"]["openai/prod"] = {"failures": "two", "since": NOW.isoformat(), "notified": False}
    elif how == "naive timestamp":
        entry["first_seen"] = "2026-11-28T17:00:00"
    elif how == "unknown status":
        entry["status"] = "posting"
    elif how == "event without its text":
        del entry["line"]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("deep nesting", "nested too deeply"),
        ("health entry a string", "health entry 'openai/prod'"),
        ("non-numeric counter", "health entry 'openai/prod', field 'failures'"),
        ("naive timestamp", "field 'first_seen'"),
        ("unknown status", "field 'status'"),
        ("event without its text", "field 'line'"),
    ],
)
def test_malformed_state_exits_3_untouched_and_the_restored_object_delivers_once(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str, named: str
) -> None:
    """Malformed state: exit 3 naming object and field, nothing written or posted; restored, all delivered once."""
    import main

    good = _valid_with_pending(world)
    world["slack"].clear_messages()
    store = GCSStore(world["bucket"], OBJECT)
    _, gen = store.read()
    bad = _break(good, how)
    gen = store.write(bad, if_generation=gen)
    for k, v in world["env"].items():
        monkeypatch.setenv(k, v)
    later = NOW + dt.timedelta(hours=1)
    world["sim"].set_clock(later)
    assert main.cli(["check", "--now", later.isoformat()]) == 3
    assert named in capsys.readouterr().err
    assert store.read() == (bad, gen) and world["slack"].attempts() == 0
    store.write(good, if_generation=gen)  # restore the previous object generation
    assert main.cli(["check", "--now", later.isoformat()]) == 0
    assert len(world["slack"].messages()) == 1
    doc = Ledger(store).snapshot()
    assert {e["status"] for e in doc["events"]["2026-11"].values()} == {"sent"}
    assert main.cli(["check", "--now", (later + dt.timedelta(hours=1)).isoformat()]) == 0
    assert len(world["slack"].messages()) == 1


def test_a_render_failure_after_the_claim_still_delivers(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering raises after the claim: the alert lines go out as plain text and are confirmed, not stranded."""
    from alerts import slack

    def broken(msg: Any) -> dict[str, Any]:
        raise KeyError("a bug in rendering")

    monkeypatch.setattr(slack, "render", broken)
    out = _check(world)
    (msg,) = world["slack"].messages()
    assert out.posted and out.delivered and "crossed" in msg["text"] and "blocks" not in msg
    doc = Ledger(GCSStore(world["bucket"], OBJECT)).snapshot()
    assert {e["status"] for e in doc["events"]["2026-11"].values()} == {"sent"}


def test_cli_exits_4_with_the_fix_when_the_webhook_is_revoked(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A revoked webhook: exit code 4, stderr names it and the fix; the next run after the fix posts once."""
    import main

    for k, v in world["env"].items():
        monkeypatch.setenv(k, v)
    world["slack"].add_fault("no_service", count=1)
    assert main.cli(["check", "--now", NOW.isoformat()]) == 4
    err = capsys.readouterr().err
    assert "webhook revoked" in err and "create a new incoming webhook" in err
    assert main.cli(["check", "--now", NOW.isoformat()]) == 0 and len(world["slack"].messages()) == 1
