"""The sources' cache next to the alert state: versioned, lenient on read, compare-and-swap on write."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from alerts.state import FileStore
from errors import StateConflict, StateError
from source_cache import VERSION, ReadOnlyMemo, StoreMemo


def test_saved_documents_come_back_by_key(tmp_path: Path) -> None:
    """Two keys saved in turn are both kept, in a versioned document."""
    memo = StoreMemo(lambda: FileStore(tmp_path / "c.json"))
    memo.save("a", {"n": 1})
    memo.save("b", {"n": 2})
    assert memo.load("a") == {"n": 1} and memo.load("b") == {"n": 2} and memo.load("c") is None
    assert json.loads((tmp_path / "c.json").read_text())["version"] == VERSION


def test_concurrent_saves_all_land(tmp_path: Path) -> None:
    """Accounts saving at once (the fetch threads) conflict, re-read and merge: none is lost."""
    memo = StoreMemo(lambda: FileStore(tmp_path / "c.json"))
    threads = [threading.Thread(target=memo.save, args=(f"k{i}", {"i": i})) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(memo.load(f"k{i}") == {"i": i} for i in range(4))


def test_a_conflict_is_retried_on_a_fresh_read(tmp_path: Path) -> None:
    """A writer landing between read and write costs one retry; both entries survive."""
    inner = FileStore(tmp_path / "c.json")

    class Interloper:
        location = inner.location
        done = False

        def read(self) -> tuple[bytes | None, int]:
            return inner.read()

        def write(self, data: bytes, *, if_generation: int) -> int:
            if not self.done:
                self.done = True
                StoreMemo(lambda: inner).save("other", {"x": 1})
            return inner.write(data, if_generation=if_generation)

    StoreMemo(Interloper).save("mine", {"y": 2})
    memo = StoreMemo(lambda: inner)
    assert memo.load("other") == {"x": 1} and memo.load("mine") == {"y": 2}


def test_unreadable_or_foreign_documents_are_nothing_stored(tmp_path: Path) -> None:
    """Not JSON, another version, or a store error: `load` answers None (the source fetches)."""
    path = tmp_path / "c.json"
    memo = StoreMemo(lambda: FileStore(path))
    for text in ("not json", '{"version": 2, "entries": {"a": {"doc": {}}}}', '{"version": 1, "entries": []}'):
        path.write_text(text)
        assert memo.load("a") is None

    class Broken:
        location = "x"

        def read(self) -> tuple[bytes | None, int]:
            raise StateError("unreachable")

        def write(self, data: bytes, *, if_generation: int) -> int:
            raise StateConflict("always")

    broken = StoreMemo(Broken)
    assert broken.load("a") is None
    broken.save("a", {"z": 1})  # logged, never raised: a lost cache entry costs one paid read


def test_read_only_memo_never_writes(tmp_path: Path) -> None:
    """A dry run's memo reads what is stored and writes nothing."""
    StoreMemo(lambda: FileStore(tmp_path / "c.json")).save("a", {"n": 1})
    before = (tmp_path / "c.json").read_bytes()
    ro = ReadOnlyMemo(StoreMemo(lambda: FileStore(tmp_path / "c.json")))
    ro.save("a", {"n": 2})
    assert ro.load("a") == {"n": 1} and (tmp_path / "c.json").read_bytes() == before


def test_a_failed_store_is_not_asked_again_in_the_check(tmp_path: Path) -> None:
    """After one store error the memo answers "nothing stored" and skips writes: a failing state
    backend costs a source one fetch, not a second timeout."""
    calls: list[str] = []

    class Failing:
        location = "x"

        def read(self) -> tuple[bytes | None, int]:
            calls.append("read")
            raise StateError("503")

        def write(self, data: bytes, *, if_generation: int) -> int:
            calls.append("write")
            raise StateError("503")

    memo = StoreMemo(Failing)
    assert memo.load("a") is None and memo.load("b") is None
    memo.save("a", {"n": 1})
    assert calls == ["read"]
