"""Alert state protocol over the local file store: claim → post → confirm/release, CAS, corruption."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from alerts.state import CLAIM_LEASE, FileStore, Ledger, decode, encode
from errors import StateConflict, StateError
from models import UTC

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


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
        (b'{"version": 1, "events": [], "health": {}}', "events/health missing"),
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
    doc = {"version": 1, "events": {"2026-11": {"a": {"status": "sent"}}}, "health": {}, "updated_at": None}
    assert decode(encode(doc), location="x") == doc
