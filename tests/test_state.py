"""Alert state protocol over the local file store: claim → post → confirm/release, CAS, corruption."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from alerts.state import CLAIM_LEASE, FileStore, Ledger, decode, encode
from errors import StateConflict, StateError
from models import UTC

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


# An event and a health entry exactly as the build before the schema wrote them.
TODAYS_SENT = {
    "status": "sent", "claim": "3f9c0a1b2d4e", "claimed_at": "2026-11-28T17:00:00+00:00", "kind": "threshold",
    "scope": "total", "line": "*Total* crossed 50%", "first_seen": "2026-11-28T17:00:00+00:00", "attempts": 0,
    "sent_at": "2026-11-28T17:00:00+00:00",
}  # fmt: skip
TODAYS_PENDING = {
    "status": "pending", "claimed_at": "2026-11-28T17:00:00+00:00", "kind": "threshold", "scope": "openai",
    "line": "*OpenAI* crossed 80%", "first_seen": "2026-11-28T17:00:00+00:00", "attempts": 2,
    "last_error": "server_error",
}  # fmt: skip
TODAYS_HEALTH = {
    "failures": 2, "since": "2026-11-28T15:00:00+00:00", "notified": False,
    "last_counted": "2026-11-28T16:00:00+00:00", "cause": "auth",
}  # fmt: skip


def _ev(*keys: str, month: str = "2026-11") -> dict[str, dict[str, Any]]:
    return {k: {"month": month, "kind": "threshold", "scope": "total", "line": f"line {k}"} for k in keys}


def test_file_store_compare_and_swap(tmp_path: Path) -> None:
    """Writes succeed only against the generation that was read."""
    store = FileStore(tmp_path / "s.json")
    assert store.read() == (None, 0)
    g1 = store.write(b"{}", if_generation=0)
    with pytest.raises(StateConflict):
        store.write(b"{}", if_generation=0)
    assert store.write(b"[]", if_generation=g1) == g1 + 1


def test_claim_confirm_says_each_event_once(tmp_path: Path) -> None:
    """A confirmed event is never claimed again, in later runs of the same month."""
    store = FileStore(tmp_path / "s.json")
    first = Ledger(store)
    owned = first.claim(_ev("a", "b"), NOW)
    assert set(owned) == {"a", "b"}
    first.confirm(owned, NOW)
    assert Ledger(store).claim(_ev("a", "b"), NOW + dt.timedelta(hours=1)) == {}
    assert set(Ledger(store).claim(_ev("a", "b", "c"), NOW + dt.timedelta(hours=2))) == {"c"}


def test_released_events_are_delivered_later_once(tmp_path: Path) -> None:
    """A failed post leaves events pending; the next run owns them (marked delayed), then never again."""
    store = FileStore(tmp_path / "s.json")
    run1 = Ledger(store)
    run1.release(run1.claim(_ev("a"), NOW), NOW, "server_error")
    doc = Ledger(store).snapshot()
    assert doc["events"]["2026-11"]["a"]["status"] == "pending" and doc["events"]["2026-11"]["a"]["attempts"] == 1
    run2 = Ledger(store)
    owned = run2.claim({}, NOW + dt.timedelta(hours=1))  # not derived any more: delivered from state
    assert set(owned) == {"a"} and owned["a"]["delayed"] and owned["a"]["line"] == "line a"
    run2.confirm(owned, NOW)
    assert Ledger(store).claim(_ev("a"), NOW + dt.timedelta(hours=2)) == {}


def test_live_claims_are_respected_and_expired_ones_taken_over(tmp_path: Path) -> None:
    """Another run's fresh claim is left alone; after the lease it is taken over."""
    store = FileStore(tmp_path / "s.json")
    Ledger(store).claim(_ev("a"), NOW)  # this run "dies" before confirming
    assert Ledger(store).claim(_ev("a"), NOW + dt.timedelta(minutes=1)) == {}
    assert set(Ledger(store).claim(_ev("a"), NOW + CLAIM_LEASE)) == {"a"}


def test_only_the_claiming_run_confirms(tmp_path: Path) -> None:
    """Confirm/release touch only events this run claimed."""
    store = FileStore(tmp_path / "s.json")
    winner, loser = Ledger(store), Ledger(store)
    owned = winner.claim(_ev("a"), NOW)
    loser.release(owned, NOW, "timeout")
    assert winner.snapshot()["events"]["2026-11"]["a"]["status"] == "claimed"
    winner.confirm(owned, NOW)
    assert winner.snapshot()["events"]["2026-11"]["a"]["status"] == "sent"


def test_concurrent_claims_have_one_winner_per_event(tmp_path: Path) -> None:
    """Five runs claiming at the same moment: each event is owned by exactly one of them."""
    store = FileStore(tmp_path / "s.json")
    barrier = threading.Barrier(5)
    owned: list[dict[str, Any]] = []
    lock = threading.Lock()

    def run() -> None:
        ledger = Ledger(store)
        barrier.wait()
        got = ledger.claim(_ev("a", "b", "c"), NOW)
        with lock:
            owned.append(got)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [k for o in owned for k in o]
    assert sorted(keys) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"{not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"version": 99, "events": {}, "health": {}}', "unknown version 99"),
        (b'{"version": 1, "events": [], "health": {}}', "field 'events'"),
        (b'{"version": 1, "events": {"2026-11": {"a": 3}}, "health": {}}', "corrupted"),
    ],
)
def test_corrupted_or_unknown_state_is_an_error_not_a_reset(tmp_path: Path, data: bytes, match: str) -> None:
    """A bad document raises StateError and is left untouched (no flood of repeats)."""
    path = tmp_path / "s.json"
    path.write_bytes(data)
    with pytest.raises(StateError, match=match):
        Ledger(FileStore(path)).claim(_ev("a"), NOW)
    assert path.read_bytes() == data


def test_new_month_starts_clean_and_keeps_last_month(tmp_path: Path) -> None:
    """December claims its own keys; November's record stays until it is two months old."""
    store = FileStore(tmp_path / "s.json")
    ledger = Ledger(store)
    ledger.confirm(ledger.claim(_ev("threshold:2026-11:total:50"), NOW), NOW)
    dec = dt.datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    owned = Ledger(store).claim(_ev("threshold:2026-12:total:50", month="2026-12"), dec)
    assert set(owned) == {"threshold:2026-12:total:50"}
    assert set(Ledger(store).snapshot()["events"]) == {"2026-11", "2026-12"}
    Ledger(store).claim({}, dt.datetime(2027, 1, 2, tzinfo=UTC))
    assert set(Ledger(store).snapshot()["events"]) == {"2026-12"}


def test_round_trip_encoding() -> None:
    """encode/decode keep the document."""
    doc = {"version": 1, "events": {"2026-11": {"a": TODAYS_SENT}}, "health": {}, "updated_at": None}
    assert decode(encode(doc), location="x") == doc


def test_a_document_as_the_previous_build_wrote_it_is_read_and_delivered(tmp_path: Path) -> None:
    """Version 1 as written before the schema existed: read as is, its pending event delivered (delayed)."""
    doc = {
        "version": 1,
        "events": {
            "2026-11": {"threshold:2026-11:total:50": TODAYS_SENT, "threshold:2026-11:openai:80": TODAYS_PENDING}
        },
        "health": {"openai/prod": TODAYS_HEALTH},
        "updated_at": "2026-11-28T17:00:00+00:00",
    }
    path = tmp_path / "s.json"
    path.write_bytes(json.dumps(doc).encode())
    owned = Ledger(FileStore(path)).claim(_ev("threshold:2026-11:total:50"), NOW)
    assert list(owned) == ["threshold:2026-11:openai:80"] and owned["threshold:2026-11:openai:80"]["delayed"]


def _with(**change: Any) -> bytes:
    """A valid document with one pending event and one health entry, then `change` applied by path."""
    doc: dict[str, Any] = {
        "version": 1,
        "events": {"2026-11": {"a": dict(TODAYS_PENDING)}},
        "health": {"openai/prod": dict(TODAYS_HEALTH)},
        "updated_at": None,
    }
    for path, value in change.items():
        *parents, leaf = path.split("__")
        target = doc
        for p in parents:
            target = target[p.replace("_", "-") if p[:1].isdigit() else p]
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(doc).encode()


DELETE = object()
EV, HEALTH = "event 'a' of month '2026-11'", "health entry 'openai/prod'"
NESTED = json.loads("[" * 500 + "]" * 500)
DEEP = b'{"version": 1, "events": ' + b"[" * 100_000 + b"]" * 100_000 + b', "health": {}}'
MALFORMED = {
    "deep nesting": (DEEP, "nested too deeply"),
    "deep nesting in a field": (_with(events__2026_11__a__line=NESTED), f"{EV}, field 'line'"),
    "health entry a string": (_with(**{"health__openai/prod": "failing"}), f"{HEALTH} (the whole entry)"),
    "non-numeric counter": (_with(**{"health__openai/prod__failures": "3"}), f"{HEALTH}, field 'failures'"),
    "non-numeric attempts": (_with(events__2026_11__a__attempts="2"), f"{EV}, field 'attempts'"),
    "naive timestamp": (
        _with(events__2026_11__a__first_seen="2026-11-28T17:00:00"),
        f"{EV}, field 'first_seen': Value error, timestamp has no time zone",
    ),
    "naive health timestamp": (_with(**{"health__openai/prod__since": "2026-11-28 15:00"}), f"{HEALTH}, field 'since'"),
    "unknown status": (_with(events__2026_11__a__status="delivered"), f"{EV}, field 'status'"),
    "event without its text": (_with(events__2026_11__a__line=DELETE), f"{EV}, field 'line': Field required"),
    "event without its kind": (_with(events__2026_11__a__kind=DELETE), f"{EV}, field 'kind': Field required"),
    "claimed without owner": (_with(events__2026_11__a__status="claimed"), "needs claim and claimed_at"),
    "month key not a month": (b'{"version": 1, "events": {"soon": {}}, "health": {}}', "events (month key) 'soon'"),
}


@pytest.mark.parametrize("data, match", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_state_is_a_state_error_naming_object_and_field(tmp_path: Path, data: bytes, match: str) -> None:
    """Each malformed variant: StateError naming the object and the field; the file is not rewritten."""
    path = tmp_path / "s.json"
    path.write_bytes(data)
    with pytest.raises(StateError, match=re.escape(match)):
        Ledger(FileStore(path)).claim(_ev("a"), NOW)
    assert path.read_bytes() == data and not (tmp_path / "s.json.gen").exists()


class _RacingStore(FileStore):
    """A file store whose next reads lose a race (as a GCS download precondition can) or whose next
    write lands but answers as refused (its answer lost, the client's retry met its own generation)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lost_reads = 0
        self.lost_write_answers = 0

    def read(self) -> tuple[bytes | None, int]:
        if self.lost_reads:
            self.lost_reads -= 1
            raise StateConflict(f"{self.location} changed while being read")
        return super().read()

    def write(self, data: bytes, *, if_generation: int) -> int:
        gen = super().write(data, if_generation=if_generation)
        if self.lost_write_answers:
            self.lost_write_answers -= 1
            raise StateConflict(f"{self.location} changed since it was read")
        return gen


def test_a_read_that_loses_a_race_is_retried_at_claim_and_confirm(tmp_path: Path) -> None:
    """A conflicting read during claim or confirm is re-read, not an unusable state."""
    store = _RacingStore(tmp_path / "s.json")
    ledger = Ledger(store)
    store.lost_reads = 2
    owned = ledger.claim(_ev("a"), NOW)
    store.lost_reads = 2
    ledger.confirm(owned, NOW)
    assert ledger.conflicts == 4 and ledger.snapshot()["events"]["2026-11"]["a"]["status"] == "sent"


def test_a_run_recognises_its_own_claim_after_the_answer_was_lost(tmp_path: Path) -> None:
    """The claim landed but answered 412 on retry: this run still owns (and later confirms) its events."""
    store = _RacingStore(tmp_path / "s.json")
    ledger = Ledger(store)
    store.lost_write_answers = 1
    owned = ledger.claim(_ev("a", "b"), NOW)
    assert set(owned) == {"a", "b"} and ledger.own_writes_recognised == 1
    store.lost_write_answers = 1
    ledger.confirm(owned, NOW)
    assert {e["status"] for e in ledger.snapshot()["events"]["2026-11"].values()} == {"sent"}


def test_a_run_owns_its_claim_when_another_run_wrote_on_top(tmp_path: Path) -> None:
    """Our claim landed, another run then wrote: on re-read the events claimed by our run id are ours."""
    store = FileStore(tmp_path / "s.json")
    ledger = Ledger(store, run_id="run-one")
    first = ledger.claim(_ev("a"), NOW)
    Ledger(store, run_id="run-two").claim(_ev("b"), NOW)
    again = ledger.claim(_ev("a", "b"), NOW)
    assert set(first) == set(again) == {"a"}


def test_takeover_of_an_expired_claim_and_a_lost_post_answer_are_marked_uncertain(tmp_path: Path) -> None:
    """A re-delivery after a run died, or after a post whose answer was lost, says it may be a repeat."""
    store = FileStore(tmp_path / "s.json")
    Ledger(store).claim(_ev("a"), NOW)  # dies after posting, before confirming
    taken = Ledger(store).claim(_ev("a"), NOW + CLAIM_LEASE)
    assert taken["a"]["uncertain"] and taken["a"]["delayed"]
    run = Ledger(store)
    run.release(run.claim(_ev("b"), NOW), NOW, "connection", maybe_posted=True)
    again = Ledger(store).claim({}, NOW + dt.timedelta(hours=1))
    assert again["b"]["uncertain"] and again["b"]["delayed"]
    fresh = Ledger(store).claim(_ev("c"), NOW)
    assert not fresh["c"]["uncertain"] and not fresh["c"]["delayed"]


# --- deliveries: one state entry per (event, destination) ---------------------------------------


def _events(*keys: str) -> list[Any]:
    from alerts.events import Event, Kind, Severity

    return [Event(k, Kind.THRESHOLD, "total", "2026-11", f"line {k}", Severity.CROSSED) for k in keys]


def _both(_: Any) -> tuple[str, ...]:
    return ("finops", "search")


DESTS = ("finops", "search")


def test_each_event_is_claimed_once_per_destination_with_its_destination_stored(tmp_path: Path) -> None:
    """Two destinations: two entries, the default's under the bare key, the other's under key@dest."""
    store = FileStore(tmp_path / "s.json")
    ledger = Ledger(store)
    owned = ledger.claim_deliveries(_events("t:a"), NOW, _both, default="finops", destinations=DESTS)
    assert {k: (d.event.key, d.dest) for k, d in owned.items()} == {
        "t:a": ("t:a", "finops"),
        "t:a@search": ("t:a", "search"),
    }
    entries = json.loads(store.read()[0] or b"{}")["events"]["2026-11"]
    assert {k: e["dest"] for k, e in entries.items()} == {"t:a": "finops", "t:a@search": "search"}


def test_one_destination_failing_settles_in_one_write_and_its_alert_comes_later_once_labelled_delayed(
    tmp_path: Path,
) -> None:
    """settle(sent, released) is one write; the released delivery alone is claimed next run, delayed; then never."""
    store = FileStore(tmp_path / "s.json")
    first = Ledger(store)
    owned = first.claim_deliveries(_events("t:a"), NOW, _both, default="finops", destinations=DESTS)
    gen = store.read()[1]
    first.settle({"t:a": {"month": "2026-11"}}, {"t:a@search": {"month": "2026-11", "cause": "server_error"}}, NOW)
    assert store.read()[1] == gen + 1, "confirm and release in one conditional write"
    assert owned["t:a"].event.delayed is False
    later = NOW + dt.timedelta(hours=1)
    run = Ledger(store)
    again = run.claim_deliveries(_events("t:a"), later, _both, default="finops", destinations=DESTS)
    assert list(again) == ["t:a@search"] and again["t:a@search"].dest == "search"
    assert again["t:a@search"].event.delayed and again["t:a@search"].event.text.endswith("_(delayed)_")
    run.settle({"t:a@search": {"month": "2026-11"}}, {}, later)
    assert Ledger(store).claim_deliveries(_events("t:a"), later, _both, default="finops", destinations=DESTS) == {}


def test_a_pending_delivery_to_a_removed_destination_is_dropped_not_retried(tmp_path: Path) -> None:
    """A pending entry whose destination left the document is marked dropped once, and never claimed."""
    store = FileStore(tmp_path / "s.json")
    first = Ledger(store)
    first.claim_deliveries(_events("t:a"), NOW, _both, default="finops", destinations=DESTS)
    first.settle({"t:a": {"month": "2026-11"}}, {"t:a@search": {"month": "2026-11", "cause": "server_error"}}, NOW)
    later = NOW + dt.timedelta(hours=1)
    run = Ledger(store)
    only = run.claim_deliveries(
        _events("t:a"), later, lambda _: ("finops",), default="finops", destinations=("finops",)
    )
    assert only == {} and run.dropped == ["t:a@search"]
    entry = json.loads(store.read()[0] or b"{}")["events"]["2026-11"]["t:a@search"]
    assert entry["status"] == "dropped" and "search" in entry["last_error"]
    rerun = Ledger(store)
    assert rerun.claim_deliveries(_events("t:a"), later, _both, default="finops", destinations=DESTS) == {}
    assert rerun.dropped == []


def test_an_entry_without_dest_is_the_default_destinations(tmp_path: Path) -> None:
    """A version 2 entry with no dest (every document before routing) is delivered to the default destination."""
    store = FileStore(tmp_path / "s.json")
    pending = {**TODAYS_PENDING, "severity": 2}
    store.write(
        encode({"version": 2, "events": {"2026-11": {"threshold:2026-11:openai:80": pending}}, "health": {}}),
        if_generation=0,
    )
    owned = Ledger(store).claim_deliveries([], NOW, _both, default="finops", destinations=DESTS)
    assert {k: d.dest for k, d in owned.items()} == {"threshold:2026-11:openai:80": "finops"}


def test_a_document_without_destinations_keeps_todays_entries(tmp_path: Path) -> None:
    """With only the implicit "default" destination, entries are keyed and shaped as before (no dest field)."""
    store = FileStore(tmp_path / "s.json")
    owned = Ledger(store).claim_deliveries(
        _events("t:a"), NOW, lambda _: ("default",), default="default", destinations=("default",)
    )
    assert list(owned) == ["t:a"] and owned["t:a"].dest == "default"
    assert "dest" not in json.loads(store.read()[0] or b"{}")["events"]["2026-11"]["t:a"]
