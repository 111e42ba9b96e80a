"""Budget rules: turn the sources' month-to-date reports into scopes and candidate events.

Scopes are evaluated at three levels: each account (`<provider>/<label>`), each provider and
the total. A scope computed with a failed or truncated source is *partial*: its number is a lower
bound, so a threshold it crosses is really crossed and still alerts, labelled partial.

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

    name: str  # "total", a provider name, or "<provider>/<label>"
    level: str  # "total" | "provider" | "account"
    title: str  # "Total", the provider's title, or "<title> · <label>"
    month: str  # YYYY-MM the scope's alerts are filed under
    mtd_usd: Decimal | None  # None when nothing at all could be read
    budget_usd: Decimal | None
    daily: tuple[DailyCost, ...]
    partial: bool
    failed_parts: tuple[str, ...]  # account scopes that failed
    forecast: Forecast | None
    note: str | None = None  # shown under the scope's figure
    missing_from: dt.date | None = None  # a part's data stops before this day: it and later days are unknown

    @property
    def covered_daily(self) -> tuple[DailyCost, ...]:
        """The days every part's data covers (a day a source has not reported yet is missing, not $0)."""
        if self.missing_from is None:
            return self.daily
        return tuple(d for d in self.daily if d.day < self.missing_from)

    @property
    def pct(self) -> Decimal | None:
        if self.mtd_usd is None or not self.budget_usd:
            return None
        return (self.mtd_usd * 100 / self.budget_usd).quantize(Decimal("0.1"), ROUND_HALF_UP)


money = usd  # $1,234.56: the one money formatter (models.usd), under the name the event lines use


def evaluate(config: BudgetConfig, results: Sequence[SourceResult], now: dt.datetime) -> list[Scope]:
    """Scopes for every account, provider and the total, in a stable order (total first)."""
    by_provider: dict[str, list[SourceResult]] = defaultdict(list)
    for r in results:
        by_provider[r.account.provider].append(r)
    out = [_total_scope(config, results, now)]
    for provider in config.configured():
        rs = by_provider.get(provider, [])
        out.append(_provider_scope(config, provider, rs, now))
        out.extend(_account_scope(config, r) for r in rs)
    return out


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
    other = sorted({r.account.provider for r in results if r.period.key != utc_month.key})
    total = _scope_of(
        name="total", level="total", title="Total", parts=same_month, budget=config.total_budget_usd, period=utc_month
    )
    if not other:
        return total
    months = ", ".join(sorted({r.period.key for r in results if r.period.key != utc_month.key}))
    note = f"{', '.join(spec(p).title for p in other)} not included yet: still on its {months} billing month"
    return dataclasses.replace(total, note=note)


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
        if s.pct is None or s.budget_usd is None or s.mtd_usd is None:
            continue
        events += _threshold_events(config, s, s.mtd_usd, s.budget_usd)
        events += _forecast_events(config, s, s.mtd_usd, s.budget_usd)
    return events


def _threshold_events(config: BudgetConfig, s: Scope, mtd: Decimal, budget: Decimal) -> list[Event]:
    """One event per crossed threshold; the highest one crossed is the one that says "crossed"."""
    # Compare exact amounts: the displayed percentage is rounded (49.99999% shows as 50.0%).
    crossed = [t for t in config.thresholds_pct if mtd * 100 >= t * budget]
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
        for t in config.forecast_thresholds_pct
        if mtd * 100 < t * budget and fc.projected_usd * 100 >= t * budget
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
        if s.level != "account" or len(daily) < 4:
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
