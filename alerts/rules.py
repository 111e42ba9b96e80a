"""Budget rules: turn the sources' month-to-date reports into scopes and candidate events.

Scopes are evaluated at three levels: each account (`<provider>/<label>`), each provider and
the total; with teams in the document, also each team (`team/<name>`) and the spend no team owns
(`unassigned`), both split out of the accounts' cost cells by `alerts.teams`. A scope computed with a
failed or truncated source is *partial*: its number is a lower bound, so a threshold it crosses is
really crossed and still alerts, labelled partial.

The threshold, forecast, spike and digest events are built here, typed (`alerts.events`, where
their keys are listed); alert state uses each key to say each event exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from alerts import teams
from alerts.events import Amounts, Event, Kind, Severity
from config import BudgetConfig
from models import ZERO, BillingPeriod, DailyCost, SourceResult, usd
from providers import spec

__all__ = [
    "Event",
    "Forecast",
    "Scope",
    "budget_events",
    "digest_event",
    "evaluate",
    "forecast",
    "money",
    "spike_events",
]

MIN_SETTLED_DAYS = 2  # a forecast needs at least this many complete days (none on the 1st and 2nd)
FORECAST_WINDOW = 7  # settled days the daily run-rate is taken from


@dataclasses.dataclass(frozen=True)
class Forecast:
    projected_usd: Decimal
    daily_rate_usd: Decimal
    settled_days: int
    crossing_day: dt.date | None  # first day the budget is (projected to be) reached, if it is
    note: str


@dataclasses.dataclass(frozen=True)
class Scope:
    """One budget scope's numbers for this check."""

    name: str  # "total", a provider name, "<provider>/<label>", "team/<name>" or "unassigned"
    level: str  # "total" | "provider" | "account" | "team" | "unassigned"
    title: str  # "Total", the provider's title, "<title> · <label>", "Team <name>" or "Unassigned"
    month: str  # YYYY-MM the scope's alerts are filed under
    mtd_usd: Decimal | None  # None when nothing at all could be read
    budget_usd: Decimal | None
    daily: tuple[DailyCost, ...]
    partial: bool
    failed_parts: tuple[str, ...]  # account scopes that failed
    forecast: Forecast | None
    note: str | None = None  # shown under the scope's figure
    missing_from: dt.date | None = None  # a part's data stops before this day: it and later days are unknown
    as_of: dt.datetime | None = None  # the stalest part's `Freshness.as_of`
    parts: tuple[tuple[str, Decimal | None], ...] = ()  # (account scope, its amount here; None: failed)
    notes: tuple[str, ...] = ()  # team / unassigned: what else qualifies the figure (the parts' notes)
    owned_usd: Decimal | None = None  # unassigned only: the spend some team owns, summed on its own

    @property
    def covered_daily(self) -> tuple[DailyCost, ...]:
        """The days every part's data covers (a day a source has not reported yet is missing, not $0)."""
        if self.missing_from is None:
            return self.daily
        return tuple(d for d in self.daily if d.day < self.missing_from)

    @property
    def complete_through(self) -> dt.date | None:
        """The last day every part's data covers, when one stops short of today."""
        return None if self.missing_from is None else self.missing_from - dt.timedelta(days=1)

    @property
    def pct(self) -> Decimal | None:
        if self.mtd_usd is None or not self.budget_usd:
            return None
        return (self.mtd_usd * 100 / self.budget_usd).quantize(Decimal("0.1"), ROUND_HALF_UP)


money = usd  # $1,234.56: the one money formatter (models.usd), under the name the event lines use


def evaluate(config: BudgetConfig, results: Sequence[SourceResult], now: dt.datetime) -> list[Scope]:
    """Scopes for the total, every provider and account, then every team and the unassigned spend
    (when the document has teams), in a stable order (total first)."""
    by_provider: dict[str, list[SourceResult]] = defaultdict(list)
    for r in results:
        by_provider[r.account.provider].append(r)
    out = [_total_scope(config, results, now)]
    for provider in config.configured():
        rs = by_provider.get(provider, [])
        out.append(_provider_scope(config, provider, rs, now))
        out.extend(_account_scope(config, r) for r in rs)
    if config.teams:
        split = teams.attribute(config, results, now)
        utc_month = BillingPeriod.containing(now)
        for name, sl in split.teams.items():
            out.append(_slice_scope(sl, "team", f"Team {name}", config.teams[name].budget_usd, utc_month))
        rest = _slice_scope(split.unassigned, "unassigned", "Unassigned", None, utc_month)
        out.append(dataclasses.replace(rest, owned_usd=split.owned_usd))
    return out


def _slice_scope(sl: teams.Slice, level: str, title: str, budget: Decimal | None, utc_month: BillingPeriod) -> Scope:
    """A team's or the unassigned scope, from its synthetic parts (`alerts.teams`), on the UTC month
    like the total. Nothing to count (every part it reaches is owned elsewhere, or still on another
    billing month) is a real $0, not missing data."""
    scope = _scope_of(name=sl.name, level=level, title=title, parts=sl.parts, budget=budget, period=utc_month)
    month_note = _other_month_note(sl.left_out, utc_month)
    notes = tuple(dict.fromkeys(n for p in sl.parts if p.report is not None for n in p.report.notes))
    scope = dataclasses.replace(
        scope, note="; ".join([*sl.notes, *([month_note] if month_note else [])]) or None, notes=notes
    )
    if not sl.parts:
        scope = dataclasses.replace(scope, mtd_usd=ZERO, partial=False)
    return scope


def _account_scope(config: BudgetConfig, r: SourceResult) -> Scope:
    budgets = {a.label: a.budget_usd for a in config.accounts(r.account.provider)}
    return _scope_of(
        name=r.account.scope,
        level="account",
        title=f"{spec(r.account.provider).title} · {r.account.label}",
        parts=[r],
        budget=budgets.get(r.account.label),
        period=r.period,
    )


def _provider_scope(config: BudgetConfig, provider: str, rs: Sequence[SourceResult], now: dt.datetime) -> Scope:
    return _scope_of(
        name=provider,
        level="provider",
        title=spec(provider).title,
        parts=list(rs),
        budget=config.configured()[provider].budget_usd,
        period=rs[0].period if rs else BillingPeriod.containing(now),
    )


def _total_scope(config: BudgetConfig, results: Sequence[SourceResult], now: dt.datetime) -> Scope:
    """The total is a UTC-month budget. A source still on another billing month (one billed by a US
    Pacific invoice month, in the first hours of a UTC month) has spent nothing in this one yet: it
    is left out rather than count last month's spend against this month's total, and the note says so."""
    utc_month = BillingPeriod.containing(now)
    same_month = [r for r in results if r.period.key == utc_month.key]
    total = _scope_of(
        name="total", level="total", title="Total", parts=same_month, budget=config.total_budget_usd, period=utc_month
    )
    note = _other_month_note(results, utc_month)
    return total if note is None else dataclasses.replace(total, note=note)


def _other_month_note(results: Sequence[SourceResult], utc_month: BillingPeriod) -> str | None:
    """The note of a UTC-month scope that leaves out sources still on another billing month."""
    other = sorted({r.account.provider for r in results if r.period.key != utc_month.key})
    if not other:
        return None
    months = ", ".join(sorted({r.period.key for r in results if r.period.key != utc_month.key}))
    return f"{', '.join(spec(p).title for p in other)} not included yet: still on its {months} billing month"


def _scope_of(
    *, name: str, level: str, title: str, parts: Sequence[SourceResult], budget: Decimal | None, period: BillingPeriod
) -> Scope:
    ok = [p.report for p in parts if p.report is not None]
    failed = tuple(p.account.scope for p in parts if p.report is None)
    truncated = any(r.partial_reason for r in ok)
    mtd = sum((r.mtd_usd for r in ok), ZERO) if ok else None
    daily = _sum_daily([r.daily for r in ok])
    as_of_days = [r.freshness.as_of for r in ok if r.freshness.as_of is not None]
    missing_from = min((r.freshness.missing_from for r in ok if r.freshness.missing_from is not None), default=None)
    settled_before = min(
        [*(period.local_day(t) for t in as_of_days), *([missing_from] if missing_from else [])],
        default=period.today,
    )
    fc = forecast(daily, budget, period, settled_before=settled_before) if (mtd is not None and budget) else None
    shares = tuple((p.account.scope, None if p.report is None else p.report.mtd_usd) for p in parts)
    return Scope(
        name=name,
        level=level,
        title=title,
        month=period.key,
        mtd_usd=mtd,
        budget_usd=budget,
        daily=daily,
        partial=bool(failed) or truncated or not parts,
        failed_parts=failed,
        forecast=fc,
        missing_from=missing_from,
        as_of=min(as_of_days, default=None),
        parts=shares,
    )


def _sum_daily(series: Sequence[Sequence[DailyCost]]) -> tuple[DailyCost, ...]:
    acc: dict[dt.date, Decimal] = defaultdict(Decimal)
    for s in series:
        for d in s:
            acc[d.day] += d.amount
    return tuple(DailyCost(day, acc[day]) for day in sorted(acc))


def forecast(
    daily: Sequence[DailyCost], budget: Decimal | None, period: BillingPeriod, *, settled_before: dt.date
) -> Forecast | None:
    """Project month-end spend from complete ("settled") days only.

    Today's partial bucket, and for lagging sources the days their data does not fully cover yet
    (`settled_before`: the earliest `as_of` day or `missing_from` of the scope's parts), are left out
    and replaced by the run-rate, so data lag, or a today a source has not reported, does not drag the
    projection down as if it were a $0 day.
    Returns None (with no alert possible) before `MIN_SETTLED_DAYS` complete days exist.
    """
    settled = [d for d in daily if d.day < settled_before]
    if len(settled) < MIN_SETTLED_DAYS:
        return None
    window = settled[-FORECAST_WINDOW:]
    rate = sum((d.amount for d in window), ZERO) / len(window)
    spent = sum((d.amount for d in settled), ZERO)
    remaining_days = period.days_in_month - len(settled)
    projected = spent + rate * remaining_days
    crossing = _crossing_day(settled, budget, rate, projected) if budget is not None else None
    note = f"run-rate of the last {len(window)} complete day(s); today's partial day excluded"
    if settled_before < period.today:
        note = (
            f"run-rate of the last {len(window)} complete day(s); "
            f"from {settled_before:%b %d} not fully reported yet, projected at that rate"
        )
    return Forecast(
        projected.quantize(Decimal("0.01"), ROUND_HALF_UP),
        rate.quantize(Decimal("0.01"), ROUND_HALF_UP),
        len(settled),
        crossing,
        note,
    )


def _crossing_day(settled: Sequence[DailyCost], budget: Decimal, rate: Decimal, projected: Decimal) -> dt.date | None:
    """The day the budget was reached, or is projected to be at `rate`; None if it is not."""
    running = ZERO
    for d in settled:
        running += d.amount
        if running >= budget:
            return d.day
    if rate > 0 and projected >= budget:
        spent = running
        days_needed = int(((budget - spent) / rate).to_integral_value(rounding="ROUND_CEILING"))
        return settled[-1].day + dt.timedelta(days=max(days_needed, 1))
    return None


def budget_events(config: BudgetConfig, scopes: Sequence[Scope]) -> list[Event]:
    """Threshold and forecast events that hold right now (state decides which are new)."""
    events: list[Event] = []
    for s in scopes:
        if s.mtd_usd is None:
            continue
        if s.pct is not None and s.budget_usd is not None:
            events += _threshold_events(config, s, s.mtd_usd, s.budget_usd)
            events += _forecast_events(config, s, s.mtd_usd, s.budget_usd)
        events += _usd_threshold_events(config, s, s.mtd_usd)
    return events


@dataclasses.dataclass(frozen=True)
class _Levels:
    """The thresholds one scope is evaluated against."""

    pct: tuple[Decimal, ...]
    forecast_pct: tuple[Decimal, ...]
    usd: tuple[Decimal, ...]


def _levels(config: BudgetConfig, s: Scope) -> _Levels:
    """A team's own percentages (else the document's); each budget's own `thresholds_usd`."""
    pct, fc = config.thresholds_pct, config.forecast_thresholds_pct
    usd_levels: tuple[Decimal, ...] = ()
    if s.level == "total":
        usd_levels = config.thresholds_usd
    elif s.level == "provider":
        usd_levels = config.configured()[s.name].thresholds_usd
    elif s.level == "account":
        provider, label = s.name.split("/", 1)
        usd_levels = next((a.thresholds_usd for a in config.accounts(provider) if a.label == label), ())
    elif s.level == "team":
        team = config.teams[s.name.removeprefix("team/")]
        pct = team.thresholds_pct if team.thresholds_pct is not None else pct
        fc = team.forecast_thresholds_pct if team.forecast_thresholds_pct is not None else fc
        usd_levels = team.thresholds_usd
    return _Levels(pct, fc, usd_levels)


def _threshold_events(config: BudgetConfig, s: Scope, mtd: Decimal, budget: Decimal) -> list[Event]:
    """One event per crossed threshold; the highest one crossed is the one that says "crossed"."""
    # Compare exact amounts: the displayed percentage is rounded (49.99999% shows as 50.0%).
    crossed = [t for t in _levels(config, s).pct if mtd * 100 >= t * budget]
    label = " (partial data: at least this much)" if s.partial else ""
    return [
        Event(
            key=f"threshold:{s.month}:{s.name}:{_pct(t)}",
            kind=Kind.THRESHOLD,
            scope=s.name,
            month=s.month,
            line=(
                f"*{s.title}* crossed *{_pct(t)}%* of its {money(budget)} budget: "
                f"{money(mtd)} month-to-date ({s.pct}%){label}"
            ),
            severity=Severity.CROSSED if t == max(crossed) else Severity.WARNING,
            title=s.title,
            level=t,
            amounts=Amounts(mtd_usd=mtd, budget_usd=budget),
        )
        for t in crossed
    ]


def _forecast_events(config: BudgetConfig, s: Scope, mtd: Decimal, budget: Decimal) -> list[Event]:
    """A warning ahead of time: once spend itself is past t%, the forecast adds nothing."""
    fc = s.forecast
    if fc is None:
        return []
    when = f", reaching it on {fc.crossing_day:%b %d}" if fc.crossing_day else ""
    return [
        Event(
            key=f"forecast:{s.month}:{s.name}:{_pct(t)}",
            kind=Kind.FORECAST,
            scope=s.name,
            month=s.month,
            line=(
                f"*{s.title}* is projected to spend {money(fc.projected_usd)} this month, "
                f"above {_pct(t)}% of its {money(budget)} budget{when}"
            ),
            severity=Severity.WARNING,
            title=s.title,
            level=t,
            amounts=Amounts(mtd_usd=mtd, budget_usd=budget, projected_usd=fc.projected_usd),
        )
        for t in _levels(config, s).forecast_pct
        if mtd * 100 < t * budget and fc.projected_usd * 100 >= t * budget
    ]


def _usd_threshold_events(config: BudgetConfig, s: Scope, mtd: Decimal) -> list[Event]:
    """`thresholds_usd` (absolute amounts, beside the percentages): one event per amount month-to-date
    spend has reached, once a month each, beside the percentages; the highest says "crossed"."""
    crossed = [t for t in _levels(config, s).usd if mtd >= t]
    of_budget = f" of its {money(s.budget_usd)} budget" if s.budget_usd else ""
    label = " (partial data: at least this much)" if s.partial else ""
    return [
        Event(
            key=f"threshold:{s.month}:{s.name}:usd{format(t.normalize(), 'f')}",
            kind=Kind.THRESHOLD,
            scope=s.name,
            month=s.month,
            line=f"*{s.title}* crossed *{money(t)}* month-to-date: {money(mtd)}{of_budget}{label}",
            severity=Severity.CROSSED if t == max(crossed) else Severity.WARNING,
            title=s.title,
            amounts=Amounts(mtd_usd=mtd, budget_usd=s.budget_usd, threshold_usd=t),
        )
        for t in crossed
    ]


def spike_events(config: BudgetConfig, scopes: Sequence[Scope]) -> list[Event]:
    """The newest two reported days (yesterday and today so far, or for a source that reports complete
    days only, its newest two complete days) far above the trailing median of the days before them.

    Days the source has not reported yet are neither checked nor part of any baseline.
    """
    spike = config.spike
    events = []
    for s in scopes:
        daily = s.covered_daily
        if s.level not in ("account", "team") or len(daily) < 4:
            continue
        for idx in (len(daily) - 2, len(daily) - 1):
            if idx < 3:
                continue
            day = daily[idx]
            base_days = daily[max(0, idx - spike.baseline_days) : idx]
            baseline = Decimal(statistics.median([d.amount for d in base_days]))
            if day.amount >= spike.min_usd and day.amount >= spike.factor * baseline:
                ratio = f"{(day.amount / baseline):.1f}×" if baseline > 0 else "from nothing"
                events.append(
                    Event(
                        key=f"spike:{day.day.isoformat()}:{s.name}",
                        kind=Kind.SPIKE,
                        scope=s.name,
                        month=s.month,
                        line=(
                            f"*{s.title}* spend spike on {day.day:%b %d}: {money(day.amount)}, {ratio} the median "
                            f"of the {len(base_days)} days before ({money(baseline)})"
                        ),
                        severity=Severity.WARNING,
                        title=s.title,
                        amounts=Amounts(day_usd=day.amount, baseline_usd=baseline),
                    )
                )
    return events


def digest_event(config: BudgetConfig, now: dt.datetime) -> Event | None:
    """The daily digest, in the configured UTC hour (when enabled)."""
    d = config.digest
    if not d.enabled or now.hour != d.hour_utc:
        return None
    return Event(
        key=f"digest:{now:%Y-%m-%d}",
        kind=Kind.DIGEST,
        scope="total",
        month=f"{now:%Y-%m}",
        line=f"Daily digest for {now:%b %d}",
        severity=Severity.INFO,
        title="Total",
    )


def _pct(p: Decimal) -> str:
    return f"{p.normalize():f}"
