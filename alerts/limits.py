"""Headroom to the providers' own hard limits, and the "limit before month end" alert. Pure.

A provider that reads a limit past which it refuses requests sets `Headroom.refusal` on it: the
account's own (`CostReport.headroom`) or one below the account (`CostReport.limits`, e.g. a project's).
For each, the scope's daily series (the account's, or the sum of the cells the limit covers) is
forecast against the limit with the budget rules' own run-rate (`rules.forecast`). One event per
scope and month, `limit:<month>:<account scope>[:<ids>]`, when the limit has been reached or is
projected to be reached by the last day of the month.

A headroom without `refusal` (a postpaid spending limit that is not read against this month's spend,
prepaid credits) is shown as the provider reports it and never alerts here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from alerts.events import Amounts, Event, Kind, Severity
from alerts.rules import forecast, money
from models import ZERO, CostReport, DailyCost, Headroom, SourceResult
from providers import spec

__all__ = ["LimitView", "limit_events", "views"]


@dataclasses.dataclass(frozen=True)
class LimitView:
    """One hard limit of one account, with its forecast crossing day."""

    account: str  # the account's scope, "openai/prod": the limit's events are routed as its events
    scope: str  # "openai/prod" (the account's own limit) or "openai/prod:proj_abc"
    title: str  # "OpenAI · prod" or "OpenAI · prod project proj_abc"
    month: str
    headroom: Headroom
    used_usd: Decimal
    crossing_day: dt.date | None  # the day it was reached, or is projected to be; None: not this month
    projected_usd: Decimal | None  # month-end spend at the run-rate (None before two complete days)
    reached: bool
    partial: bool

    @property
    def ahead(self) -> bool:
        """Whether requests start failing before the month ends (or already do)."""
        return self.reached or self.crossing_day is not None


def views(r: SourceResult) -> tuple[LimitView, ...]:
    """The account's hard limits (its own first), each with its crossing day."""
    rep = r.report
    if rep is None:
        return ()
    rooms = [h for h in (rep.headroom, *rep.limits) if h is not None and h.refusal is not None]
    return tuple(_view(r.account.scope, r.account.provider, r.account.label, rep, h) for h in rooms)


def _view(account: str, provider: str, label: str, rep: CostReport, h: Headroom) -> LimitView:
    daily = rep.daily if not h.match else _cells_daily(rep, h.match)
    used = h.used_usd if h.used_usd is not None else sum((d.amount for d in daily), ZERO)
    fc = forecast(daily, h.limit_usd, rep.period, settled_before=_settled_before(rep))
    reached = used >= h.limit_usd
    crossing = fc.crossing_day if fc is not None else None
    if reached:
        crossing = _reached_on(daily, h.limit_usd) or crossing or rep.period.today
    elif crossing is not None and crossing > rep.period.last_day:
        crossing = None
    suffix = ":".join(v for _, v in h.match)
    return LimitView(
        account=account,
        scope=f"{account}:{suffix}" if suffix else account,
        title=f"{spec(provider).title} · {label}" + (f" {h.name}" if h.name else ""),
        month=rep.period.key,
        headroom=h,
        used_usd=used,
        crossing_day=crossing,
        projected_usd=fc.projected_usd if fc is not None else None,
        reached=reached,
        partial=rep.partial_reason is not None,
    )


def _reached_on(daily: Sequence[DailyCost], limit: Decimal) -> dt.date | None:
    running = ZERO
    for d in daily:
        running += d.amount
        if running >= limit:
            return d.day
    return None


def _cells_daily(rep: CostReport, match: tuple[tuple[str, str], ...]) -> tuple[DailyCost, ...]:
    """The days of the cells `match` selects, on the account's own calendar (a quiet day is $0)."""
    by_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    for c in rep.cells:
        if all(c.get(dim) == value for dim, value in match):
            by_day[c.day] += c.amount
    return tuple(DailyCost(d.day, by_day.get(d.day, ZERO)) for d in rep.daily)


def _settled_before(rep: CostReport) -> dt.date:
    """The first day the source has not fully reported, as the budget rules take it (`rules._scope_of`)."""
    days = [rep.period.today]
    if rep.freshness.as_of is not None:
        days.append(rep.period.local_day(rep.freshness.as_of))
    if rep.freshness.missing_from is not None:
        days.append(rep.freshness.missing_from)
    return min(days)


def limit_events(results: Sequence[SourceResult]) -> list[Event]:
    """One event per hard limit reached, or projected to be reached before the month ends."""
    return [_event(v) for r in results for v in views(r) if v.ahead]


def _event(v: LimitView) -> Event:
    h = v.headroom
    partial = " (partial data: at least this much)" if v.partial else ""
    basis = f" {h.basis}" if h.basis else ""
    if v.reached:
        line = (
            f"*{v.title}* has reached its {money(h.limit_usd)} hard limit: {money(v.used_usd)}{basis}{partial}; "
            f"requests fail with {h.refusal}"
        )
    else:
        assert v.crossing_day is not None
        line = (
            f"*{v.title}*: its {money(h.limit_usd)} hard limit is reached around {v.crossing_day:%b %d} "
            f"({h.basis + ', ' if h.basis else ''}{money(v.used_usd)} so far{partial}); "
            f"requests will then fail with {h.refusal}"
        )
    return Event(
        key=f"limit:{v.month}:{v.scope}",
        kind=Kind.LIMIT,
        scope=v.account,
        month=v.month,
        line=line,
        severity=Severity.CROSSED if v.reached else Severity.WARNING,
        title=v.title,
        amounts=Amounts(mtd_usd=v.used_usd, budget_usd=h.limit_usd, projected_usd=v.projected_usd),
    )
