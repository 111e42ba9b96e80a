"""What sources keep between checks: one small JSON object next to the alert state, in the same kind of Store.

A source whose reads are billed per request keeps its last answer here and reuses it until its cadence
says to fetch again (`providers.Memo`). The object is separate from the alert state on purpose:

* the alert state is the exactly-once ledger, with its own versioned schema and CAS discipline; a
  cache entry changing every few hours would add writes (and conflicts) to the ledger for no gain;
* losing this object costs at most one extra paid read, never a repeated or a lost alert, so it is
  read leniently (anything that does not parse is "nothing stored") while the ledger is read strictly.

Document (versioned, so a later layout is recognised rather than misread)::

    {"version": 1, "entries": {"<source key>": {"saved_at": "<ISO instant>", "doc": {...}}}}

Writes are compare-and-swap (`Store.write(if_generation=...)`), re-read and merged on a conflict, so
two accounts saving at once in one check (they fetch in parallel threads) both land.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import logs
from alerts.state import Store
from errors import StateConflict, StateError

__all__ = ["VERSION", "ReadOnlyMemo", "StoreMemo"]

VERSION = 1
CAS_ATTEMPTS = 4
MAX_ENTRIES = 200  # one per account of a cadenced source: far more than any budget document lists
log = logging.getLogger("llm_budget_alert.source_cache")


class StoreMemo:
    """`providers.Memo` over a `Store`, opened on first use (a check with no cadenced source never reads it)."""

    def __init__(self, open_store: Callable[[], Store], *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._open = open_store
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._broken = False  # the store failed once this check: not asked again (each try costs seconds)

    def _get_store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self._open()
            return self._store

    def _read(self) -> tuple[dict[str, Any], int]:
        data, generation = self._get_store().read()
        if data is None:
            return {}, generation
        try:
            doc = json.loads(data)
        except ValueError:
            return {}, generation
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("entries"), dict):
            return {}, generation
        return doc["entries"], generation

    def load(self, key: str) -> Mapping[str, Any] | None:
        if self._broken:
            return None
        try:
            entries, _ = self._read()
        except (StateError, OSError) as exc:
            self._broken = True
            logs.event(log, logging.WARNING, "source cache unreadable; fetching instead", key=key, error=str(exc))
            return None
        entry = entries.get(key)
        doc = entry.get("doc") if isinstance(entry, dict) else None
        return doc if isinstance(doc, dict) else None

    def save(self, key: str, doc: Mapping[str, Any]) -> None:
        if self._broken:
            logs.event(log, logging.WARNING, "source cache not saved: its store failed earlier in this check", key=key)
            return
        for _ in range(CAS_ATTEMPTS):
            try:
                entries, generation = self._read()
                entries = {**entries, key: {"saved_at": self._clock().isoformat(), "doc": dict(doc)}}
                if len(entries) > MAX_ENTRIES:  # keep the newest: an account removed long ago ages out
                    ordered = sorted(entries.items(), key=lambda kv: str(kv[1].get("saved_at", "")), reverse=True)
                    entries = dict(ordered[:MAX_ENTRIES])
                body = json.dumps({"version": VERSION, "entries": entries}, sort_keys=True).encode()
                self._get_store().write(body, if_generation=generation)
                return
            except StateConflict:
                continue
            except (StateError, OSError, TypeError, ValueError) as exc:
                self._broken = isinstance(exc, StateError | OSError)
                logs.event(log, logging.WARNING, "source cache not saved", key=key, error=str(exc))
                return
        logs.event(log, logging.WARNING, "source cache not saved: too many concurrent writers", key=key)


class ReadOnlyMemo:
    """A memo that reads and never writes: a dry run records nothing, its cache included."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def load(self, key: str) -> Mapping[str, Any] | None:
        loaded: Mapping[str, Any] | None = self._inner.load(key)
        return loaded

    def save(self, key: str, doc: Mapping[str, Any]) -> None:
        return None
