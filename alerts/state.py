"""Alert state: what was already said, kept so each event is posted exactly once.

Storage is one JSON document behind a compare-and-swap interface (`Store`): a local file guarded by
an OS lock, or a GCS object written with `if_generation_match`. Protocol for one check:

1. **read** the document and its generation;
2. **claim** every event to deliver (new ones, and ones a failed post left *pending*) by writing
   `status=claimed, claim=<run id>` conditioned on that generation. If another invocation wrote
   first the write fails (`StateConflict`): re-read and re-decide — the events it claimed are no
   longer ours to send. Of five checks started together, exactly one wins each event;
3. **post** the message with the claimed events;
4. **settle**: mark the posted ones `sent` and release the others as `pending` (with the cause),
   so a later run delivers them once Slack is back, in one write. Settling re-reads and retries on
   conflict, and only touches events still claimed by this run.

A read is one request (the download names the generation it served), and a read that loses a race
is a conflict like a lost write: re-read and re-decide. A write whose answer was lost and whose retry
was refused (412: the first attempt had landed) is recognised as our own by its bytes (they carry
`claim=<run id>` and this run's stamp), and a claim this run holds is ours on re-read.

A claim older than `CLAIM_LEASE` belongs to a run that died between claiming and confirming (or
whose confirm could not be written); a later run takes it over and marks it `uncertain`: the earlier
run may have posted it. A release after a post whose answer was lost (reset, timeout after sending)
is `uncertain` too. Those are the windows where a message can be posted twice — never zero times —
and the re-delivery says it may be a repeat.

The document is versioned (`version`) and validated field by field (`StateDocument`). Version 2
stores each event's typed fields (severity, title, level, amounts: `alerts.events.Event`); this
build reads version 1 too, upgrades it in memory (`upgrade`) and writes version 2 at its next change.
A build that reads only version 1 refuses a version 2 document (it posts nothing, never twice):
to roll back, restore the object generation written before this build. A document
that does not parse, has an unknown version or breaks the schema raises `StateError` naming the
object and the field: the check stops before writing or posting anything, rather than treat it as
empty and repeat every alert of the month (or crash on it in every later run). Recover by restoring
the previous object generation (the bucket is versioned) or deleting the object to start over.

Events are filed by month; months older than the previous one are dropped, so a new month starts
clean while last month's record stays until it cannot matter any more.

Exactly once holds per (event, Slack destination) (`claim_deliveries`, `alerts.routing`): the entry
of an event for the default destination keeps the event's key, for any other destination it is
`<key>@<destination>`, and the entry names its destination in `dest` (an entry without `dest`, as
every document before destinations, is the default's). One claim covers all destinations; after the
concurrent posts, `settle` marks what each destination took as sent and releases the rest pending
in one conditional write, so one destination down delays nothing for the others. A pending entry
whose destination left the budget document is marked `dropped` (never posted, never retried). The
`dest` field and the `dropped` status are optional additions to version 2: a build from before them
refuses a document that uses them (it posts nothing, never twice), like a rollback over version 2.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fcntl
import json
import os
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from alerts.events import Event, Kind
from alerts.routing import Delivery, delivery_key, event_key
from errors import StateConflict, StateError

__all__ = [
    "CLAIM_LEASE",
    "VERSION",
    "Doc",
    "FileStore",
    "GCSStore",
    "Ledger",
    "Store",
    "decode",
    "empty_doc",
    "encode",
    "upgrade",
    "validate",
]

VERSION = 2  # 2: each event's typed fields (severity, title, level, amounts). 1 is read and upgraded
READABLE = (1, 2)
CLAIM_LEASE = dt.timedelta(minutes=10)
KEEP_MONTHS = 2  # the current month and the one before
CAS_ATTEMPTS = 8
IMPLICIT = "default"  # the one destination of a budget document without `destinations` (config._teams)

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


# --- the document's schema -------------------------------------------------------------------


def _aware_iso(text: str) -> str:
    """An ISO 8601 instant with an offset, as `datetime.isoformat()` writes it (the code compares them)."""
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError("timestamp has no time zone offset")
    return text


Stamp = Annotated[StrictStr, AfterValidator(_aware_iso)]
Text = Annotated[StrictStr, Field(min_length=1, max_length=10_000)]
Month = Annotated[StrictStr, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class EventEntry(_Strict):
    """One event of one month: what it says, and where its delivery stands."""

    status: Literal["claimed", "pending", "sent", "dropped"]  # dropped: its destination is gone
    kind: Text
    scope: Text
    line: Text
    first_seen: Stamp
    attempts: Annotated[StrictInt, Field(ge=0)]
    claim: StrictStr | None = None
    claimed_at: Stamp | None = None
    sent_at: Stamp | None = None
    last_error: StrictStr | None = None
    uncertain: StrictBool = False  # an earlier attempt may have reached Slack

    @model_validator(mode="after")
    def _claim_has_owner(self) -> EventEntry:
        if self.status == "claimed" and (self.claim is None or self.claimed_at is None):
            raise ValueError("a claimed event needs claim and claimed_at")
        return self


class EventEntryV2(EventEntry):
    """Version 2: the event's typed fields too, so a later run posts it as the rules said it."""

    severity: Annotated[StrictInt, Field(ge=1, le=3)]
    title: StrictStr = ""
    level: StrictStr | None = None  # a decimal string: the threshold or forecast percentage
    amounts: dict[StrictStr, StrictStr] | None = None  # decimal strings, by `alerts.events.Amounts` field
    dest: StrictStr | None = None  # the Slack destination (absent: the default destination, keyed bare)


class HealthEntry(_Strict):
    """Failure bookkeeping of one account (see `alerts.health`)."""

    failures: Annotated[StrictInt, Field(ge=0)]
    since: Stamp
    notified: StrictBool
    last_counted: Stamp | None = None
    cause: StrictStr | None = None


class StateDocument(_Strict):
    """The whole state document, version 1."""

    version: Literal[1]
    events: dict[Month, dict[Text, EventEntry]]
    health: dict[Text, HealthEntry]
    updated_at: Stamp | None = None


class StateDocumentV2(_Strict):
    """The whole state document, version 2."""

    version: Literal[2]
    events: dict[Month, dict[Text, EventEntryV2]]
    health: dict[Text, HealthEntry]
    updated_at: Stamp | None = None


_SCHEMAS: dict[int, type[BaseModel]] = {1: StateDocument, 2: StateDocumentV2}


def _where(loc: tuple[int | str, ...]) -> str:
    """A validation error's location in words: the object, then the field."""
    parts = [str(p) for p in loc]
    if parts[-1:] == ["[key]"]:
        container = {2: "events (month key)", 3: f"month {parts[1]!r} (event key)"}.get(len(parts) - 1, "health key")
        if parts[0] == "health":
            container = "health (account key)"
        return f"{container} {parts[-2]!r}"
    if parts[:1] == ["events"] and len(parts) >= 3:
        obj, rest = f"event {parts[2]!r} of month {parts[1]!r}", parts[3:]
    elif parts[:1] == ["events"] and len(parts) == 2:
        obj, rest = f"month {parts[1]!r}", []
    elif parts[:1] == ["health"] and len(parts) >= 2:
        obj, rest = f"health entry {parts[1]!r}", parts[2:]
    else:
        obj, rest = "the document", parts
    return f"{obj}, field {'.'.join(rest)!r}" if rest else f"{obj} (the whole entry)"


def validate(doc: Any, *, location: str) -> None:
    """Check `doc` against `StateDocument`; a `StateError` names the first bad object and field."""
    try:
        _SCHEMAS[doc.get("version") if doc.get("version") in _SCHEMAS else VERSION].model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise StateError(
            f"alert state at {location} is corrupted: {_where(tuple(first['loc']))}: {first['msg']}{more}. "
            "Nothing was written or posted. Restore the previous object version, or fix that field."
        ) from None
    except RecursionError:
        raise StateError(f"alert state at {location} is corrupted: nested too deeply") from None


def empty_doc() -> Doc:
    return {"version": VERSION, "events": {}, "health": {}, "updated_at": None}


def decode(data: bytes | None, *, location: str) -> Doc:
    """Parse and validate a state document; anything unexpected is a `StateError`."""
    if data is None:
        return empty_doc()
    try:
        doc = json.loads(data)
    except RecursionError:
        raise StateError(f"alert state at {location} is corrupted: nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise StateError(
            f"alert state at {location} is corrupted (not JSON); refusing to re-send every alert. "
            "Restore the previous object version, or delete it to start over."
        ) from None
    if not isinstance(doc, dict):
        raise StateError(f"alert state at {location} is corrupted (not a JSON object)")
    version = doc.get("version")
    if version not in READABLE or isinstance(version, bool):
        raise StateError(
            f"alert state at {location} has unknown version {version!r} (this build reads versions 1 and 2); "
            "refusing to overwrite it. Deploy the matching build or restore a compatible version."
        )
    validate(doc, location=location)
    return doc


# What builds before version 2 assumed of an event they had not derived themselves.
_LEGACY_SEVERITY = {"threshold": 3, "forecast": 2, "spike": 2, "failure": 2, "recovery": 1, "digest": 1}
_LEGACY_THRESHOLD = re.compile(
    r"^\*(?P<title>[^*]+)\* crossed \*[0-9.]+%\* of its \$(?P<budget>[0-9,]+\.[0-9]{2}) budget"
)


def upgrade(doc: Doc) -> Doc:
    """`doc` (as `decode` returns it) as version 2: a version 1 document's events get the typed
    fields that version left out. The one place an event's text is parsed, and only for events
    stored before version 2: a threshold's title and budget from its line, its level from its key."""
    if doc.get("version") == VERSION:
        return doc
    out = copy.deepcopy(doc)
    out["version"] = VERSION
    for entries in out["events"].values():
        for key, entry in entries.items():
            entry["severity"] = _LEGACY_SEVERITY.get(entry["kind"], 1)
            m = _LEGACY_THRESHOLD.match(entry["line"]) if entry["kind"] == Kind.THRESHOLD else None
            if m is not None and re.fullmatch(r"[0-9]+(\.[0-9]+)?", level := key.rsplit(":", 1)[-1]):
                entry.update(title=m["title"], level=level, amounts={"budget_usd": m["budget"].replace(",", "")})
    return out


def encode(doc: Doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Ledger:
    """The claim → post → confirm protocol over a `Store`."""

    def __init__(self, store: Store, *, run_id: str | None = None) -> None:
        self.store = store
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.conflicts = 0  # lost CAS races (observability, tests)
        self.own_writes_recognised = 0  # writes refused on retry that had landed (answer lost)
        self.dropped: list[str] = []  # the last claim's entries whose destination is gone

    def snapshot(self) -> Doc:
        data, _ = self.store.read()
        return decode(data, location=self.store.location)

    def update(self, mutate: Callable[[Doc], Any]) -> tuple[Doc, Any]:
        """Read, apply `mutate` to a copy, write conditionally; on conflict re-read and re-apply.

        A conflict is a read that lost a race as much as a write that did. A write refused with a
        conflict whose bytes are nevertheless what is stored now was our own (its answer was lost
        and the client's retry met the generation it had created): it counts as written.
        """
        for _ in range(CAS_ATTEMPTS):
            try:
                data, gen = self.store.read()
            except StateConflict:
                self.conflicts += 1
                continue
            doc = upgrade(decode(data, location=self.store.location))
            new = copy.deepcopy(doc)
            outcome = mutate(new)
            if new == doc:
                return doc, outcome
            validate(new, location=self.store.location)  # never write what the next read would refuse
            payload = encode(new)
            try:
                self.store.write(payload, if_generation=gen)
            except StateConflict:
                self.conflicts += 1
                if self._stored_is(payload):
                    self.own_writes_recognised += 1
                    return new, outcome
                continue
            return new, outcome
        raise StateError(f"alert state at {self.store.location}: gave up after {CAS_ATTEMPTS} write conflicts")

    def _stored_is(self, payload: bytes) -> bool:
        """Whether the stored document is byte for byte `payload` (it names this run and its stamp)."""
        try:
            data, _ = self.store.read()
        except StateConflict:
            return False
        return data == payload

    def claim(
        self,
        events: dict[str, dict[str, Any]],
        now: dt.datetime,
        health: Callable[[Doc], dict[str, dict[str, Any]]] | None = None,
        *,
        destinations: Collection[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Claim the deliverable events among `events` (key → {month, kind, scope, line[, dest]}).

        Also picks up *pending* events from earlier runs whose posts failed, and expired claims.
        Applies `health` (source failure bookkeeping, which may add failure/recovery events) in the
        same conditional write. Returns the events this run now owns and must post.

        `destinations`: the Slack destinations configured now. An unsent entry whose `dest` is not
        among them is marked `dropped` (listed in `self.dropped`), not claimed: nobody could post it.
        """
        dropped: list[str] = []

        def mutate(doc: Doc) -> dict[str, dict[str, Any]]:
            candidates = _candidates(doc, events, health, now)
            owned: dict[str, dict[str, Any]] = {}
            dropped.clear()
            for key, ev in candidates.items():
                month_entries = doc["events"].setdefault(ev["month"], {})
                cur = month_entries.get(key)
                if destinations is not None and ev.get("dest") is not None and ev["dest"] not in destinations:
                    if cur is not None and cur["status"] in ("pending", "claimed"):
                        cur.update(status="dropped", last_error=f"destination {ev['dest']!r} is no longer configured")
                        cur.pop("claim", None)
                        dropped.append(key)
                    continue
                entry = self._take(cur, ev, now)
                if entry is not None:
                    month_entries[key] = entry
                    owned[key] = _owned(ev["month"], entry)
            doc["updated_at"] = now.isoformat()
            return owned

        _, owned = self.update(mutate)
        self.dropped = sorted(dropped)
        return owned  # type: ignore[no-any-return]

    def _take(self, cur: dict[str, Any] | None, ev: Mapping[str, Any], now: dt.datetime) -> dict[str, Any] | None:
        """The entry claiming `ev` for this run, or None when it is not ours to send (sent, or
        another run's live claim). Our own claim (a retry, or a re-read after it) stays as it is."""
        if cur is not None and cur["status"] == "claimed" and cur.get("claim") == self.run_id:
            return cur
        uncertain = False
        attempts = 0
        if cur is not None:
            if cur["status"] in ("sent", "dropped"):
                return None
            if cur["status"] == "claimed" and not _expired(cur, now):
                return None
            attempts = int(cur.get("attempts", 0))
            uncertain = bool(cur.get("uncertain"))
            if cur["status"] == "claimed":  # an expired claim: that run may have posted before dying
                attempts += 1
                uncertain = True
        stamp = now.isoformat()
        entry = {
            "status": "claimed",
            "claim": self.run_id,
            "claimed_at": stamp,
            **_typed(ev),
            "first_seen": (cur or {}).get("first_seen", stamp),
            "attempts": attempts,
        }
        if uncertain:
            entry["uncertain"] = True
        return entry

    def confirm(self, keys: dict[str, dict[str, Any]], now: dt.datetime) -> None:
        """Mark our claimed events as sent."""
        self.settle(keys, {}, now)

    def settle(
        self, sent: Mapping[str, Mapping[str, Any]], released: Mapping[str, Mapping[str, Any]], now: dt.datetime
    ) -> None:
        """One conditional write for a check's outcome: `sent` (key → {month}) marked sent, `released`
        (key → {month, cause, maybe_posted}) given back as pending. Only our own claims change."""
        stamp = now.isoformat()
        changes: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
            key: (ev["month"], lambda e: e.update(status="sent", sent_at=stamp)) for key, ev in sent.items()
        }
        for key, ev in released.items():
            changes[key] = (ev["month"], _back(str(ev["cause"]), bool(ev.get("maybe_posted"))))

        def mutate(doc: Doc) -> None:
            for key, (month, change) in changes.items():
                e = doc["events"].get(month, {}).get(key)
                if e is not None and e.get("status") == "claimed" and e.get("claim") == self.run_id:
                    change(e)
            doc["updated_at"] = stamp

        self.update(mutate)

    def release(
        self, keys: dict[str, dict[str, Any]], now: dt.datetime, cause: str, *, maybe_posted: bool = False
    ) -> None:
        """Give our claimed events back as pending, so a later run delivers them.

        `maybe_posted`: the post may have reached Slack (its answer was lost); the re-delivery says
        it may be a repeat.
        """

        self.settle({}, {k: {**ev, "cause": cause, "maybe_posted": maybe_posted} for k, ev in keys.items()}, now)

    # --- typed events: what the check uses -------------------------------------------------------

    def claim_events(
        self,
        events: Iterable[Event],
        now: dt.datetime,
        health: Callable[[dict[str, Any]], list[Event]] | None = None,
    ) -> dict[str, Event]:
        """`claim` for typed events: the events this run owns, each `delayed` / `uncertain` as its
        delivery history says. `health` receives the document's health entries (to change in place)
        and returns the failure / recovery events they call for."""
        records = {e.key: _record(e) for e in events}
        bookkeeping = None
        if health is not None:
            keep = health

            def bookkeeping(doc: Doc) -> dict[str, dict[str, Any]]:
                return {e.key: _record(e) for e in keep(doc["health"])}

        owned = self.claim(records, now, bookkeeping)
        return {key: _event(key, rec) for key, rec in owned.items()}

    def confirm_events(self, owned: Mapping[str, Event], now: dt.datetime) -> None:
        """Mark the claimed `owned` events as sent."""
        self.confirm({k: {"month": e.month} for k, e in owned.items()}, now)

    def release_events(
        self, owned: Mapping[str, Event], now: dt.datetime, cause: str, *, maybe_posted: bool = False
    ) -> None:
        """Give the claimed `owned` events back as pending (see `release`)."""
        self.release({k: {"month": e.month} for k, e in owned.items()}, now, cause, maybe_posted=maybe_posted)

    def unsent(self, events: Iterable[Event]) -> dict[str, Event]:
        """The `events` not yet sent, by key, without writing anything (a dry run)."""
        said = self._said()
        return {e.key: e for e in events if e.key not in said}

    def _said(self) -> set[str]:
        doc = self.snapshot()
        done = ("sent", "dropped")
        return {k for entries in doc["events"].values() for k, e in entries.items() if e["status"] in done}

    # --- deliveries: (event, destination) pairs, each said once ----------------------------------

    def claim_deliveries(
        self,
        events: Iterable[Event],
        now: dt.datetime,
        route: Callable[[Event], Iterable[str]],
        *,
        default: str,
        destinations: Collection[str],
        health: Callable[[dict[str, Any]], list[Event]] | None = None,
    ) -> dict[str, Delivery]:
        """`claim_events` per (event, destination): each event once for every destination `route`
        names, keyed by `routing.delivery_key`. One conditional write for all of them; pending
        deliveries to a destination no longer in `destinations` are dropped (`self.dropped`)."""

        def records(evs: Iterable[Event]) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for e in evs:
                for dest in route(e):
                    rec = _record(e)
                    if not dest == default == IMPLICIT:  # a document without destinations keeps today's entries
                        rec["dest"] = dest
                    out[delivery_key(e.key, dest, default)] = rec
            return out

        bookkeeping = None
        if health is not None:
            keep = health

            def bookkeeping(doc: Doc) -> dict[str, dict[str, Any]]:
                return records(keep(doc["health"]))

        owned = self.claim(records(events), now, bookkeeping, destinations=destinations)
        return {k: Delivery(_event(event_key(k), rec), rec.get("dest") or default) for k, rec in owned.items()}

    def unsent_deliveries(
        self, events: Iterable[Event], route: Callable[[Event], Iterable[str]], *, default: str
    ) -> dict[str, Delivery]:
        """The (event, destination) pairs not yet sent, by delivery key, writing nothing (a dry run)."""
        said = self._said()
        out: dict[str, Delivery] = {}
        for e in events:
            for dest in route(e):
                if (key := delivery_key(e.key, dest, default)) not in said:
                    out[key] = Delivery(e, dest)
        return out


_TYPED = ("kind", "scope", "line", "severity", "title", "level", "amounts", "dest")


def _back(cause: str, maybe_posted: bool) -> Callable[[dict[str, Any]], None]:
    """Give a claimed entry back as pending after a failed post (`Ledger.release`)."""

    def back(e: dict[str, Any]) -> None:
        e.update(status="pending", last_error=cause, attempts=int(e.get("attempts", 0)) + 1)
        if maybe_posted:
            e["uncertain"] = True
        e.pop("claim", None)

    return back


def _candidates(
    doc: Doc,
    events: Mapping[str, dict[str, Any]],
    health: Callable[[Doc], dict[str, dict[str, Any]]] | None,
    now: dt.datetime,
) -> dict[str, dict[str, Any]]:
    """What a claim considers: `events`, the health notices, and every unsent event of the kept months."""
    candidates = dict(events)
    if health is not None:
        candidates.update(health(doc))
    _prune(doc, now)
    for month, entries in doc["events"].items():
        for key, e in entries.items():
            if e["status"] not in ("sent", "dropped") and key not in candidates:
                candidates[key] = {"month": month, **{k: e.get(k) for k in _TYPED if k in e}}
    return candidates


def _typed(ev: Mapping[str, Any]) -> dict[str, Any]:
    """An event's stored fields: version 2's typed ones, with the legacy severity for a record
    that names none (a caller of the record-level `claim` that predates typed events)."""
    out = {k: ev.get(k) for k in ("kind", "scope", "line")}
    out["severity"] = ev.get("severity") or _LEGACY_SEVERITY.get(str(ev.get("kind")), 1)
    out.update({k: ev[k] for k in ("title", "level", "amounts", "dest") if ev.get(k) not in (None, "")})
    return out


def _owned(month: str, entry: dict[str, Any]) -> dict[str, Any]:
    """What the check needs of an event it owns; `delayed` when earlier attempts failed."""
    return {
        "month": month,
        **{k: entry[k] for k in _TYPED if k in entry},
        "delayed": int(entry.get("attempts", 0)) > 0,
        "uncertain": bool(entry.get("uncertain")),
    }


def _record(e: Event) -> dict[str, Any]:
    return {"month": e.month, **e.to_record()}


def _event(key: str, rec: Mapping[str, Any]) -> Event:
    delayed, uncertain = bool(rec.get("delayed")), bool(rec.get("uncertain"))
    return Event.from_record(key, rec["month"], rec, delayed=delayed, uncertain=uncertain)


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


# One GCS call, retries included (always cut to the check's time left). 10 s leaves a write whose
# answer was lost three to four attempts under the library's 1 s, 2 s, 4 s backoff; 5 s left one or
# two, and ten loaded checks at once ran out of it (tests/test_delivery_processes.py).
STATE_RETRY_S = 10.0
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
        """One download; its generation is the one the answer names.

        A metadata GET followed by a download conditioned on its generation is two requests: real
        GCS answers the second with 412 when a writer lands between them (fake-gcs-server does not
        enforce download preconditions). One `objects.get?alt=media` serves one consistent
        generation and names it in the `x-goog-generation` response header
        (https://cloud.google.com/storage/docs/xml-api/reference-headers#xgooggeneration);
        google-cloud-storage copies that header into `blob.generation`
        (`Blob._extract_headers_from_download`, google/cloud/storage/blob.py, 3.x). A 412 that
        still comes back (a retried request meeting a precondition) is a conflict: re-read.
        """
        from google.api_core import exceptions as gexc

        blob = self._blob()
        timeout, retry = self._bounds()

        def download() -> bytes:
            # Retried here rather than by the library: a refused download leaves its streamed
            # response (and its socket) open, and the library's own retry drops it unclosed.
            try:
                return bytes(blob.download_as_bytes(timeout=timeout, retry=None))
            except gexc.GoogleAPIError as exc:
                with contextlib.suppress(Exception):
                    getattr(exc, "response", None).close()  # type: ignore[union-attr]
                raise

        try:
            data = retry(download)()
        except gexc.NotFound:
            return None, 0
        except gexc.PreconditionFailed:
            raise StateConflict(f"{self.location} changed while being read") from None
        except gexc.GoogleAPIError as exc:
            raise StateError(f"alert state at {self.location}: read failed ({type(exc).__name__})") from None
        try:
            generation = int(blob.generation)
        except (TypeError, ValueError):
            raise StateError(
                f"alert state at {self.location}: the download named no generation (x-goog-generation missing)"
            ) from None
        return data, generation

    def write(self, data: bytes, *, if_generation: int) -> int:
        """Upload with `ifGenerationMatch`. The client retries a conditional upload whose answer was
        lost (DEFAULT_RETRY; the library's own default for uploads is
        DEFAULT_RETRY_IF_GENERATION_SPECIFIED, google/cloud/storage/retry.py): when the first attempt
        had landed, the retry gets 412 and this raises `StateConflict`; `Ledger.update` then
        recognises the stored bytes as its own.
        """
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
