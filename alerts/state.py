"""Alert state: what was already said, kept so each event is posted exactly once.

Storage is one JSON document behind a compare-and-swap interface (`Store`): a local file guarded by
an OS lock, or a GCS object written with `if_generation_match`. Protocol for one check:

1. **read** the document and its generation;
2. **claim** every event to deliver (new ones, and ones a failed post left *pending*) by writing
   `status=claimed, claim=<run id>` conditioned on that generation. If another invocation wrote
   first the write fails (`StateConflict`): re-read and re-decide — the events it claimed are no
   longer ours to send. Of five checks started together, exactly one wins each event;
3. **post** the message with the claimed events;
4. **confirm**: on success mark them `sent`; on failure release them as `pending` (with the
   cause), so a later run delivers them once Slack is back. Confirm/release re-read and retry on
   conflict, and only touch events still claimed by this run.

A claim older than `CLAIM_LEASE` belongs to a run that died between claiming and confirming; a later
run takes it over. That is the one window where a message can be posted twice (the process died
after Slack accepted the post and before the confirm was written) — never zero times.

The document is versioned (`version`). A document that does not parse, or has an unknown version,
raises `StateError`: the check stops before posting anything and reports it, rather than treat
it as empty and repeat every alert of the month. Recover by restoring the previous object
generation (the bucket is versioned) or deleting the object to start over deliberately.

Events are filed by month; months older than the previous one are dropped, so a new month starts
clean while last month's record stays until it cannot matter any more.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from errors import StateConflict, StateError

VERSION = 1
CLAIM_LEASE = dt.timedelta(minutes=10)
KEEP_MONTHS = 2  # the current month and the one before
FAILURE_RECOUNT = dt.timedelta(minutes=5)  # failures closer together than this are one run (retries, overlaps)
CAS_ATTEMPTS = 8

Doc = dict[str, Any]


class Store(Protocol):
    """Compare-and-swap storage for one JSON document."""

    location: str

    def read(self) -> tuple[bytes | None, int]:
        """The stored bytes (None if absent) and their generation (0 if absent)."""
        ...

    def write(self, data: bytes, *, if_generation: int) -> int:
        """Store `data` only if the current generation is `if_generation`; return the new one.

        Raises `StateConflict` when another writer got there first.
        """
        ...


def empty_doc() -> Doc:
    return {"version": VERSION, "events": {}, "health": {}, "updated_at": None}


def decode(data: bytes | None, *, location: str) -> Doc:
    """Parse and validate a state document; anything unexpected is a `StateError`."""
    if data is None:
        return empty_doc()
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise StateError(
            f"alert state at {location} is corrupted (not JSON); refusing to re-send every alert. "
            "Restore the previous object version, or delete it to start over."
        ) from None
    if not isinstance(doc, dict):
        raise StateError(f"alert state at {location} is corrupted (not a JSON object)")
    version = doc.get("version")
    if version != VERSION:
        raise StateError(
            f"alert state at {location} has unknown version {version!r} (this build reads {VERSION}); "
            "refusing to overwrite it. Deploy the matching build or restore a compatible version."
        )
    events, health = doc.get("events"), doc.get("health")
    if not isinstance(events, dict) or not isinstance(health, dict):
        raise StateError(f"alert state at {location} is corrupted (events/health missing)")
    for month, entries in events.items():
        if not isinstance(entries, dict) or not all(isinstance(e, dict) and "status" in e for e in entries.values()):
            raise StateError(f"alert state at {location} is corrupted (month {month!r})")
    return doc


def encode(doc: Doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Ledger:
    """The claim → post → confirm protocol over a `Store`."""

    def __init__(self, store: Store, *, run_id: str | None = None) -> None:
        self.store = store
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.conflicts = 0  # lost CAS races (observability, tests)
        self.writes = 0

    def snapshot(self) -> Doc:
        data, _ = self.store.read()
        return decode(data, location=self.store.location)

    def update(self, mutate: Callable[[Doc], Any]) -> tuple[Doc, Any]:
        """Read, apply `mutate` to a copy, write conditionally; on conflict re-read and re-apply."""
        for _ in range(CAS_ATTEMPTS):
            data, gen = self.store.read()
            doc = decode(data, location=self.store.location)
            new = copy.deepcopy(doc)
            outcome = mutate(new)
            if new == doc:
                return doc, outcome
            try:
                self.store.write(encode(new), if_generation=gen)
                self.writes += 1
                return new, outcome
            except StateConflict:
                self.conflicts += 1
                continue
        raise StateError(f"alert state at {self.store.location}: gave up after {CAS_ATTEMPTS} write conflicts")

    def claim(
        self,
        events: dict[str, dict[str, Any]],
        now: dt.datetime,
        health: Callable[[Doc], dict[str, dict[str, Any]]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Claim the deliverable events among `events` (key → {month, kind, scope, line}).

        Also picks up *pending* events from earlier runs whose posts failed, and expired claims.
        Applies `health` (source failure bookkeeping, which may add failure/recovery events) in the
        same conditional write. Returns the events this run now owns and must post.
        """
        stamp = now.isoformat()

        def mutate(doc: Doc) -> dict[str, dict[str, Any]]:
            candidates = dict(events)
            if health is not None:
                candidates.update(health(doc))
            _prune(doc, now)
            owned: dict[str, dict[str, Any]] = {}
            for month, entries in doc["events"].items():
                for key, e in entries.items():
                    if e["status"] != "sent" and key not in candidates:
                        candidates[key] = {"month": month, **{k: e.get(k) for k in ("kind", "scope", "line")}}
            for key, ev in candidates.items():
                month_entries = doc["events"].setdefault(ev["month"], {})
                cur = month_entries.get(key)
                if cur is not None:
                    if cur["status"] == "sent":
                        continue
                    if cur["status"] == "claimed" and not _expired(cur, now):
                        continue
                entry = {
                    "status": "claimed",
                    "claim": self.run_id,
                    "claimed_at": stamp,
                    "kind": ev.get("kind"),
                    "scope": ev.get("scope"),
                    "line": ev.get("line"),
                    "first_seen": (cur or {}).get("first_seen", stamp),
                    "attempts": (cur or {}).get("attempts", 0),
                }
                month_entries[key] = entry
                owned[key] = {
                    "month": ev["month"],
                    "kind": entry["kind"],
                    "scope": entry["scope"],
                    "line": entry["line"],
                    "delayed": cur is not None and cur["status"] == "pending",
                }
            doc["updated_at"] = stamp
            return owned

        _, owned = self.update(mutate)
        return owned  # type: ignore[no-any-return]

    def confirm(self, keys: dict[str, dict[str, Any]], now: dt.datetime) -> None:
        """Mark our claimed events as sent."""
        self._settle(keys, now, lambda e: e.update(status="sent", sent_at=now.isoformat()))

    def release(self, keys: dict[str, dict[str, Any]], now: dt.datetime, cause: str) -> None:
        """Give our claimed events back as pending, so a later run delivers them."""

        def back(e: dict[str, Any]) -> None:
            e.update(status="pending", last_error=cause, attempts=int(e.get("attempts", 0)) + 1)
            e.pop("claim", None)

        self._settle(keys, now, back)

    def _settle(
        self, keys: dict[str, dict[str, Any]], now: dt.datetime, change: Callable[[dict[str, Any]], None]
    ) -> None:
        def mutate(doc: Doc) -> None:
            for key, ev in keys.items():
                e = doc["events"].get(ev["month"], {}).get(key)
                if e is not None and e.get("status") == "claimed" and e.get("claim") == self.run_id:
                    change(e)
            doc["updated_at"] = now.isoformat()

        self.update(mutate)


def _expired(entry: dict[str, Any], now: dt.datetime) -> bool:
    try:
        claimed = dt.datetime.fromisoformat(entry["claimed_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return now - claimed >= CLAIM_LEASE


def _prune(doc: Doc, now: dt.datetime) -> None:
    y, m = now.year, now.month
    keep = set()
    for _ in range(KEEP_MONTHS):
        keep.add(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    # Days (spike/digest events are filed under their month too) and months both use YYYY-MM.
    for month in list(doc["events"]):
        if month not in keep and month < min(keep):
            del doc["events"][month]


# --- stores ----------------------------------------------------------------------------------


class FileStore:
    """A local JSON file; generation is kept in a sidecar and guarded by an exclusive flock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._gen_path = self.path.with_name(self.path.name + ".gen")
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise StateError(f"alert state at {self.location}: cannot open ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _generation(self) -> int:
        if not self.path.exists():
            return 0
        try:
            return int(self._gen_path.read_text().strip() or "1")
        except (OSError, ValueError):
            return 1

    def read(self) -> tuple[bytes | None, int]:
        with self._locked():
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return None, 0
            except OSError as exc:
                raise StateError(f"alert state at {self.location}: cannot read ({exc.strerror})") from None
            return data, self._generation()

    def write(self, data: bytes, *, if_generation: int) -> int:
        with self._locked():
            if self._generation() != if_generation:
                raise StateConflict(f"{self.location} changed since it was read")
            new = if_generation + 1
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, self.path)
                self._gen_path.write_text(str(new))
            except OSError as exc:
                raise StateError(f"alert state at {self.location}: cannot write ({exc.strerror})") from None
            return new


STATE_RETRY_S = 5.0  # one GCS call, retries included


STATE_CALL_S = 10.0  # one attempt's timeout (connect, and each read)
STATE_FLOOR_S = 2.0  # what a call gets even past the deadline: a lost confirm would repeat an alert


def _retry(seconds: float = STATE_RETRY_S) -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(seconds)


class GCSStore:
    """One object in a GCS bucket, written with `if_generation_match` (0 = must not exist yet)."""

    def __init__(
        self, bucket: str, name: str, *, client: Any = None, time_left: Callable[[], float] | None = None
    ) -> None:
        self.bucket_name = bucket
        self.name = name
        self.location = f"gs://{bucket}/{name}"
        self._client = client
        self._time_left = time_left  # the check's deadline, when the store serves one check

    def _bounds(self) -> tuple[float, Any]:
        """(timeout, retry) of the next call: our caps, cut to what the check has left (`STATE_FLOOR_S` at least)."""
        left = self._time_left() if self._time_left is not None else STATE_CALL_S
        return max(STATE_FLOOR_S, min(STATE_CALL_S, left)), _retry(max(STATE_FLOOR_S, min(STATE_RETRY_S, left)))

    def _blob(self) -> Any:
        if self._client is None:
            from google.cloud import storage  # type: ignore[attr-defined]  # heavy: only on the GCS path

            self._client = storage.Client()
        return self._client.bucket(self.bucket_name).blob(self.name)

    def read(self) -> tuple[bytes | None, int]:
        from google.api_core import exceptions as gexc

        blob = self._blob()
        try:
            timeout, retry = self._bounds()
            blob.reload(timeout=timeout, retry=retry)
            timeout, retry = self._bounds()
            data = blob.download_as_bytes(if_generation_match=blob.generation, timeout=timeout, retry=retry)
            return data, int(blob.generation)
        except gexc.NotFound:
            return None, 0
        except gexc.PreconditionFailed:
            raise StateConflict(f"{self.location} changed while being read") from None
        except gexc.GoogleAPIError as exc:
            raise StateError(f"alert state at {self.location}: read failed ({type(exc).__name__})") from None

    def write(self, data: bytes, *, if_generation: int) -> int:
        from google.api_core import exceptions as gexc

        blob = self._blob()
        timeout, retry = self._bounds()
        try:
            blob.upload_from_string(
                data, content_type="application/json", if_generation_match=if_generation, timeout=timeout, retry=retry
            )
        except gexc.PreconditionFailed:
            raise StateConflict(f"{self.location} changed since it was read") from None
        except gexc.GoogleAPIError as exc:
            raise StateError(f"alert state at {self.location}: write failed ({type(exc).__name__})") from None
        return int(blob.generation)
