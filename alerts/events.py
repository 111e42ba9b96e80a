"""Events: one line worth saying in Slack, typed from the rule that found it to the state that keeps it.

An event carries its own fields (kind, scope, month, severity, the scope's title, the threshold or
forecast level and the amounts behind it), so nothing downstream parses its text or its key. The
`key` is built by the constructors in `alerts.rules` / `alerts.health` and is what alert state
uses to say each event exactly once:

    threshold:<month>:<scope>:<pct>      month-to-date crossed pct% of budget      once per month
    threshold:<month>:<scope>:usd<amt>   month-to-date reached $amt (thresholds_usd) once per month
    forecast:<month>:<scope>:<pct>       projected month-end above pct% of budget  once per month
    spike:<day>:<scope>                  one day far above its trailing median     once per day
    failure:<since>:<scope>              a source failing for N runs               once per streak
    recovery:<since>:<scope>             that source reporting again               once per streak
    digest:<day>                         the daily digest                          once per day
    limit:<month>:<scope>                a provider's own limit reached before month end  once per month
    weekly:<ISO year>-W<ww>              the weekly report (of that ISO week)      once per week
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from models import usd

__all__ = ["DELAYED", "MAYBE_REPEAT", "Amounts", "Event", "Kind", "Severity"]

MAYBE_REPEAT = " _(delayed; may be a repeat: an earlier attempt may have reached Slack)_"
DELAYED = " _(delayed)_"


class Kind(enum.StrEnum):
    THRESHOLD = "threshold"
    FORECAST = "forecast"
    SPIKE = "spike"
    FAILURE = "failure"
    RECOVERY = "recovery"
    DIGEST = "digest"
    LIMIT = "limit"
    WEEKLY = "weekly"


class Severity(enum.IntEnum):
    """Ordering and the header icon: 3 the top budget crossed, 2 warnings, 1 information."""

    INFO = 1
    WARNING = 2
    CROSSED = 3


@dataclasses.dataclass(frozen=True)
class Amounts:
    """The money behind an event, exact (rounding is for display only)."""

    mtd_usd: Decimal | None = None
    budget_usd: Decimal | None = None
    projected_usd: Decimal | None = None  # forecast
    day_usd: Decimal | None = None  # spike
    baseline_usd: Decimal | None = None  # spike
    threshold_usd: Decimal | None = None  # a dollar threshold (`thresholds_usd`), where `level` is None

    def to_record(self) -> dict[str, str] | None:
        out = {f.name: str(v) for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}
        return out or None

    @classmethod
    def from_record(cls, rec: Mapping[str, Any] | None) -> Amounts:
        if not rec:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _decimal(v) for k, v in rec.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Event:
    """Something worth one line in Slack, with the key that makes it be said once."""

    key: str
    kind: Kind
    scope: str  # "total", a provider name, "<provider>/<label>", "team/<name>" or "unassigned"
    month: str  # the YYYY-MM it is filed under in alert state
    line: str  # mrkdwn, self-contained (it is stored and may be delivered by a later run)
    severity: Severity
    title: str = ""  # the scope's title ("" for an event stored by a build before typed events)
    level: Decimal | None = None  # the threshold or forecast percentage
    amounts: Amounts = Amounts()
    delayed: bool = False  # owned from state after an earlier failed post
    uncertain: bool = False  # ... and that post may have reached Slack

    @property
    def text(self) -> str:
        """The line as posted: labelled when earlier runs failed to deliver it."""
        label = MAYBE_REPEAT if self.uncertain else DELAYED if self.delayed else ""
        return self.line + label

    def headline(self) -> str:
        """A threshold's header: "<title> crossed <pct>% of its <budget> budget" (or "crossed $<amount>
        month-to-date" for a dollar threshold)."""
        if self.title and self.amounts.threshold_usd is not None:
            return f"{self.title} crossed {usd(self.amounts.threshold_usd)} month-to-date"
        if self.title and self.level is not None and self.amounts.budget_usd is not None:
            return f"{self.title} crossed {_pct(self.level)}% of its {usd(self.amounts.budget_usd)} budget"
        # Stored by a build before typed events and not recognised: the line's own first clause.
        return self.line.split(" month-to-date")[0].replace("*", "").split(":")[0]

    def to_record(self) -> dict[str, Any]:
        """The typed fields as alert state stores them (decimals as strings)."""
        return {
            "kind": str(self.kind),
            "scope": self.scope,
            "line": self.line,
            "severity": int(self.severity),
            "title": self.title,
            "level": None if self.level is None else str(self.level),
            "amounts": self.amounts.to_record(),
        }

    @classmethod
    def from_record(
        cls, key: str, month: str, rec: Mapping[str, Any], *, delayed: bool = False, uncertain: bool = False
    ) -> Event:
        """The event a state entry (version 2) holds, labelled as its delivery history says."""
        level = rec.get("level")
        return cls(
            key=key,
            kind=Kind(rec["kind"]),
            scope=rec["scope"],
            month=month,
            line=rec["line"],
            severity=Severity(rec["severity"]),
            title=rec.get("title") or "",
            level=None if level is None else _decimal(level),
            amounts=Amounts.from_record(rec.get("amounts")),
            delayed=delayed,
            uncertain=uncertain,
        )


def _pct(v: Decimal) -> str:
    return format(v.normalize(), "f")


def _decimal(v: Any) -> Decimal:
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise ValueError(f"{v!r} is not a decimal") from None
    if not d.is_finite():
        raise ValueError(f"{v!r} is not a finite decimal")
    return d
