"""Source health: count each account's failed runs, and say once when it fails for long and once when it recovers.

The bookkeeping lives in alert state's `health` (one entry per failing account, changed in the
same conditional write as the claim), so overlapping runs count a failure once and post its
notice once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from alerts.events import Event, Kind, Severity
from errors import Cause
from models import SourceResult
from providers import spec

__all__ = ["FAILURE_RECOUNT", "Streak", "bookkeeping"]

FAILURE_RECOUNT = dt.timedelta(minutes=5)  # failures closer together than this are one run (retries, overlaps)


@dataclasses.dataclass
class Streak:
    """One account's failing runs, as alert state stores it (`HealthEntry`)."""

    failures: int
    since: str  # ISO instant of the first failure
    notified: bool
    last_counted: str | None = None
    cause: str | None = None

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Streak:
        return cls(
            failures=int(entry.get("failures", 0)),
            since=entry["since"],
            notified=bool(entry.get("notified")),
            last_counted=entry.get("last_counted"),
            cause=entry.get("cause"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"failures": self.failures, "since": self.since, "notified": self.notified}
        if self.last_counted is not None:
            out["last_counted"] = self.last_counted
        if self.cause is not None:
            out["cause"] = self.cause
        return out


def bookkeeping(
    results: Sequence[SourceResult], now: dt.datetime, after_runs: int
) -> Callable[[dict[str, Any]], list[Event]]:
    """A change of the state's health entries for this run's `results`, returning the notices it
    calls for: a failure after `after_runs` failed runs, a recovery when a notified source reports."""
    month = f"{now:%Y-%m}"

    def change(health: dict[str, Any]) -> list[Event]:
        out: list[Event] = []
        for r in results:
            scope = r.account.scope
            title = f"{spec(r.account.provider).title} · {r.account.label}"
            entry = health.get(scope)
            if r.report is None:
                streak = _count_failure(Streak.from_dict(entry) if entry else None, r, now)
                health[scope] = streak.to_dict()
                if streak.failures >= after_runs and not streak.notified:
                    health[scope]["notified"] = True
                    out.append(_failure(scope, title, month, streak, r.cause))
            elif entry is not None:
                streak = Streak.from_dict(entry)
                if streak.notified:
                    out.append(_recovery(scope, title, month, streak))
                del health[scope]
        return out

    return change


def _count_failure(streak: Streak | None, r: SourceResult, now: dt.datetime) -> Streak:
    """The streak with this run counted (once per `FAILURE_RECOUNT`) and its latest cause."""
    streak = streak or Streak(failures=0, since=now.isoformat(), notified=False)
    last = streak.last_counted
    if last is None or now - dt.datetime.fromisoformat(last) >= FAILURE_RECOUNT:
        streak.failures += 1
        streak.last_counted = now.isoformat()
    streak.cause = r.cause.value if r.cause else "unknown"
    return streak


def _failure(scope: str, title: str, month: str, streak: Streak, cause: Cause | None) -> Event:
    described = cause.describe if cause else "failed"
    return Event(
        key=f"failure:{streak.since}:{scope}",
        kind=Kind.FAILURE,
        scope=scope,
        month=month,
        line=(
            f"*{title}* has failed {streak.failures} runs in a row: *{described}*. "
            f"Its spend is missing from the totals until it recovers."
        ),
        severity=Severity.WARNING,
        title=title,
    )


def _recovery(scope: str, title: str, month: str, streak: Streak) -> Event:
    return Event(
        key=f"recovery:{streak.since}:{scope}",
        kind=Kind.RECOVERY,
        scope=scope,
        month=month,
        line=f"*{title}* is reporting again (it had failed {streak.failures} runs: {_describe(streak.cause)}).",
        severity=Severity.INFO,
        title=title,
    )


def _describe(cause: Any) -> str:
    try:
        return Cause(cause).describe
    except ValueError:
        return str(cause)
