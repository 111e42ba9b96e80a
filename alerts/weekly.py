"""The weekly report: last week's spend per scope, the change from the week before, and the top movers.

    results (this billing period) + history (the period before, fetched in the weekly hour only)
        ─► parts: one per account, its days and cells over the two weeks, and what it could not cover
        ─► scopes: total, each provider, each team (`team/<name>`), unassigned
        ─► WeekReport ─► weekly_event (key `weekly:<ISO year>-W<ww>`), render_blocks, to_json

The reported week is the last complete Monday–Sunday before the check's UTC day; the week before it
is the comparison. Both often reach into the previous billing month, hence the history fetch
(`check.fetch_history`), which never counts toward month-to-date. Days are the billing days each
source reports (UTC days; a source billed by a Pacific invoice month reports Pacific days).

A scope is *partial* when one of its parts failed (this period or the one before), was truncated,
kept no cells for what a team selects, or has not reported some day of the two weeks: its figures
are then lower bounds and its notes say which part and why. A failed part is never $0.
Pure: no I/O, no clock; `now` is an argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from alerts import blocks as kit
from alerts.events import Event, Kind, Severity
from config import BudgetConfig
from models import ZERO, AccountRef, CostCell, SourceResult, usd
from providers import TeamMatch, spec

__all__ = [
    "Change",
    "Mover",
    "MoverGroup",
    "Week",
    "WeekReport",
    "WeeklyScope",
    "build",
    "is_due",
    "needs_history",
    "render_blocks",
    "reported_week",
    "to_json",
    "weekly_event",
]

MAX_BLOCKS = 50  # Slack's per-message limit; `render_blocks` leaves room for the message around it
MAX_SECTION = 3000


# --- weeks ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Week:
    """Monday `start` to Sunday `end`, UTC days."""

    start: dt.date

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=6)

    @property
    def iso(self) -> str:
        """`2027-W01`: ISO 8601 year and week (the Monday's; a week in two years belongs to one)."""
        year, week, _ = self.start.isocalendar()
        return f"{year:04d}-W{week:02d}"

    @property
    def label(self) -> str:
        return f"{self.start:%b %d} – {self.end:%b %d}"

    def holds(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def days(self) -> tuple[dt.date, ...]:
        return tuple(self.start + dt.timedelta(days=i) for i in range(7))


def reported_week(now: dt.datetime) -> Week:
    """The last complete Monday–Sunday before `now`'s UTC day."""
    today = now.astimezone(dt.UTC).date()
    return Week(today - dt.timedelta(days=today.weekday() + 7))


def is_due(config: BudgetConfig, now: dt.datetime) -> bool:
    """Whether the check at `now` is in the weekly report's weekday and UTC hour."""
    w = config.weekly_report
    t = now.astimezone(dt.UTC)
    return w is not None and t.weekday() == w.weekday_index and t.hour == w.hour_utc


def needs_history(first_day: dt.date, now: dt.datetime) -> bool:
    """Whether a billing period starting on `first_day` misses days of the two weeks the report compares."""
    return reported_week(now).start - dt.timedelta(days=7) < first_day


# --- the report ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Change:
    """This week against the week before, exact."""

    this_usd: Decimal
    prev_usd: Decimal

    @property
    def change_usd(self) -> Decimal:
        return self.this_usd - self.prev_usd

    @property
    def new(self) -> bool:
        """Spend this week where the week before had none (a percentage would be infinite)."""
        return self.prev_usd == 0 and self.this_usd != 0

    @property
    def change_pct(self) -> Decimal | None:
        """The change in % of the week before (one decimal); None when the week before was $0."""
        if self.prev_usd == 0:
            return None
        return (self.change_usd * 100 / abs(self.prev_usd)).quantize(Decimal("0.1"), ROUND_HALF_UP)

    def describe(self) -> str:
        """`+$120.00 (+15.0%)`, `new`, `no change`."""
        if self.new:
            return "new"
        if self.change_usd == 0:
            return "no change"
        sign = "+" if self.change_usd > 0 else "-"
        return f"{sign}{usd(abs(self.change_usd))} ({sign}{abs(self.change_pct or ZERO)}%)"


@dataclasses.dataclass(frozen=True)
class Mover(Change):
    key: str | None = None  # the dimension's value; None where the provider reports none


@dataclasses.dataclass(frozen=True)
class MoverGroup:
    """One provider's movers along one dimension, largest absolute change first, the tail counted."""

    provider: str
    dimension: str
    label: str  # "OpenAI projects"
    movers: tuple[Mover, ...]
    more: int  # movers left out ("and N more")


@dataclasses.dataclass(frozen=True)
class WeeklyScope(Change):
    name: str = ""  # "total", a provider, "team/<name>", "unassigned"
    level: str = ""  # "total" | "provider" | "team" | "unassigned"
    title: str = ""
    partial: bool = False
    notes: tuple[str, ...] = ()  # why it is partial
    movers: tuple[MoverGroup, ...] = ()


@dataclasses.dataclass(frozen=True)
class WeekReport:
    week: Week
    previous: Week
    month: str  # YYYY-MM of `now`: where the event is filed
    scopes: tuple[WeeklyScope, ...]
    top: int

    @property
    def key(self) -> str:
        return f"weekly:{self.week.iso}"

    def scope(self, name: str) -> WeeklyScope:
        return next(s for s in self.scopes if s.name == name)


# --- parts: each account's two weeks -------------------------------------------------------------


@dataclasses.dataclass
class _Part:
    ref: AccountRef
    days: dict[dt.date, Decimal]  # per day of the two weeks
    cells: list[CostCell]  # of the two weeks, when every period fetched kept them
    cell_dims: frozenset[str] | None  # None: some period kept no cells
    problems: list[str]


def _parts(
    config: BudgetConfig, results: Sequence[SourceResult], history: Sequence[SourceResult], window: tuple[Week, Week]
) -> dict[AccountRef, _Part]:
    by_ref: dict[AccountRef, list[SourceResult]] = defaultdict(list)
    for r in [*results, *history]:
        by_ref[r.account].append(r)
    wanted = [*window[1].days(), *window[0].days()]
    out: dict[AccountRef, _Part] = {}
    for provider in config.configured():
        for account in config.accounts(provider):
            ref = AccountRef(provider, account.label)
            out[ref] = _part(ref, by_ref.get(ref, []), wanted)
    return out


def _part(ref: AccountRef, results: Sequence[SourceResult], wanted: Sequence[dt.date]) -> _Part:
    part = _Part(ref, {d: ZERO for d in wanted}, [], frozenset(), [])
    covered: set[dt.date] = set()
    kept: list[frozenset[str] | None] = []  # each read period's cell dimensions
    failed = False
    for r in results:
        if r.report is None:
            failed = True
            part.problems.append(f"{ref.scope} {r.period.key} failed: {r.error or r.cause}")
            continue
        rep = r.report
        period = r.period
        if rep.partial_reason:
            part.problems.append(f"{ref.scope} {period.key} truncated: {rep.partial_reason}")
        last = min(period.today, period.last_day)
        stop = rep.freshness.missing_from
        covered.update(d for d in wanted if period.first_day <= d <= last and (stop is None or d < stop))
        for daily in rep.daily:
            if daily.day in part.days and period.first_day <= daily.day <= period.last_day:
                part.days[daily.day] += daily.amount
        kept.append(None if rep.cell_dims is None else frozenset(rep.cell_dims))
        part.cells.extend(c for c in rep.cells if c.day in part.days)
    part.cell_dims = None if not kept or None in kept else frozenset.intersection(*(k for k in kept if k is not None))
    missing = [d for d in wanted if d not in covered]
    if missing and not failed:
        part.problems.append(f"{ref.scope}: no data yet for {_days(missing)}")
    return part


def _days(days: Sequence[dt.date]) -> str:
    first, last = min(days), max(days)
    return f"{first:%b %d}" if first == last else f"{first:%b %d}–{last:%b %d}"


# --- scopes --------------------------------------------------------------------------------------

_Select = Callable[[CostCell], bool] | None  # None: the whole part
_Take = tuple[_Part, _Select]


def build(
    config: BudgetConfig,
    results: Sequence[SourceResult],
    history: Sequence[SourceResult],
    now: dt.datetime,
) -> WeekReport:
    """The weekly report at `now` from this period's `results` and the previous period's `history`."""
    week = reported_week(now)
    previous = Week(week.start - dt.timedelta(days=7))
    parts = _parts(config, results, history, (week, previous))
    top = config.weekly_report.top if config.weekly_report is not None else 5
    every = list(parts.values())

    def scope(name: str, level: str, title: str, takes: Sequence[_Take], extra: Sequence[str] = ()) -> WeeklyScope:
        this = sum((_amount(p, sel, week) for p, sel in takes), ZERO)
        prev = sum((_amount(p, sel, previous) for p, sel in takes), ZERO)
        notes = [*extra, *dict.fromkeys(n for p, _ in takes for n in p.problems)]
        movers = _movers(takes, week, previous, top) if level != "total" else ()
        return WeeklyScope(
            this_usd=this,
            prev_usd=prev,
            name=name,
            level=level,
            title=title,
            partial=bool(notes),
            notes=tuple(notes),
            movers=movers,
        )

    scopes = [scope("total", "total", "Total", [(p, None) for p in every])]
    for provider in config.configured():
        mine = [(p, None) for p in every if p.ref.provider == provider]
        scopes.append(scope(provider, "provider", spec(provider).title, mine))
    claims = _team_claims(config, parts)
    for name, (takes, notes) in claims.items():
        scopes.append(scope(f"team/{name}", "team", f"Team {name}", takes, notes))
    if config.teams:
        takes, notes = _unassigned(config, parts)
        scopes.append(scope("unassigned", "unassigned", "Unassigned", takes, notes))
    return WeekReport(week, previous, f"{now.astimezone(dt.UTC):%Y-%m}", tuple(scopes), top)


def _amount(part: _Part, select: _Select, week: Week) -> Decimal:
    if select is None:
        return sum((a for d, a in part.days.items() if week.holds(d)), ZERO)
    return sum((c.amount for c in part.cells if week.holds(c.day) and select(c)), ZERO)


def _selector(block: TeamMatch) -> Callable[[CostCell], bool]:
    return lambda c: block.selects(dict(c.dims))


def _cells_missing(part: _Part, block: TeamMatch) -> str | None:
    if part.cell_dims is not None and set(block.dims()) <= part.cell_dims:
        return None
    return f"{part.ref.scope}: no {', '.join(block.dims())} cells kept to select from"


def _team_claims(config: BudgetConfig, parts: Mapping[AccountRef, _Part]) -> dict[str, tuple[list[_Take], list[str]]]:
    """Per team, what it takes of each part, and the parts it cannot select from."""
    out: dict[str, tuple[list[_Take], list[str]]] = {}
    for name, team in config.teams.items():
        takes: list[_Take] = []
        notes: list[str] = []
        for provider, block in team.match.blocks().items():
            for label in config.reached(provider, block):
                part = parts.get(AccountRef(provider, label))
                if part is None:
                    continue
                if not block.has_selectors():
                    takes.append((part, None))
                    continue
                if (missing := _cells_missing(part, block)) is not None:
                    notes.append(missing)
                takes.append((part, _selector(block)))
        out[name] = (takes, notes)
    return out


def _unassigned(config: BudgetConfig, parts: Mapping[AccountRef, _Part]) -> tuple[list[_Take], list[str]]:
    """Per part, the spend no team's match selects (a part a team takes whole leaves none)."""
    blocks: dict[AccountRef, list[TeamMatch]] = defaultdict(list)
    for team in config.teams.values():
        for provider, block in team.match.blocks().items():
            for label in config.reached(provider, block):
                blocks[AccountRef(provider, label)].append(block)
    takes: list[_Take] = []
    notes: list[str] = []
    for ref, part in parts.items():
        mine = blocks.get(ref, [])
        if not mine:
            takes.append((part, None))
        elif any(not b.has_selectors() for b in mine):
            continue
        else:
            notes.extend(n for b in mine if (n := _cells_missing(part, b)) is not None)
            takes.append((part, _none_of(mine)))
    return takes, list(dict.fromkeys(notes))


def _none_of(blocks: Sequence[TeamMatch]) -> Callable[[CostCell], bool]:
    def select(c: CostCell) -> bool:
        cell = dict(c.dims)
        return not any(b.selects(cell) for b in blocks)

    return select


def _movers(takes: Sequence[_Take], week: Week, previous: Week, top: int) -> tuple[MoverGroup, ...]:
    """Per provider and mover dimension, the values whose spend changed most (absolute), top first."""
    sums: dict[tuple[str, str], dict[str | None, list[Decimal]]] = {}
    for part, select in takes:
        if part.cell_dims is None:
            continue
        for dim in spec(part.ref.provider).mover_dims:
            if dim not in part.cell_dims:
                continue
            acc = sums.setdefault((part.ref.provider, dim), {})
            for c in part.cells:
                if select is not None and not select(c):
                    continue
                pair = acc.setdefault(c.get(dim), [ZERO, ZERO])
                if week.holds(c.day):
                    pair[0] += c.amount
                elif previous.holds(c.day):
                    pair[1] += c.amount
    groups = []
    for (provider, dim), values in sums.items():
        moved = [Mover(this_usd=t, prev_usd=p, key=key) for key, (t, p) in values.items() if t != p]
        moved.sort(key=lambda m: (-abs(m.change_usd), m.key or ""))
        s = spec(provider)
        label = f"{s.title} {_plural(s.owner_words.get(dim, dim.replace('_', ' ')))}"
        groups.append(MoverGroup(provider, dim, label, tuple(moved[:top]), max(0, len(moved) - top)))
    return tuple(groups)


def _plural(word: str) -> str:
    return word if word.endswith("s") else word + "s"


# --- the event, Slack and JSON -------------------------------------------------------------------


def weekly_event(report: WeekReport, scope: str = "total") -> Event:
    """The weekly report's event: INFO, once per ISO week, its line self-contained (a delayed delivery
    still says the week's figure) about `scope`: the total by default; a destination that is shown
    only a team's spend gets the line of its own scope, not the company's total."""
    s = report.scope(scope)
    label = " (partial data)" if s.partial else ""
    return Event(
        key=report.key,
        kind=Kind.WEEKLY,
        scope=s.name,
        month=report.month,
        line=(
            f"*Weekly report {report.week.iso}* ({report.week.label}): {s.title} {usd(s.this_usd)}, "
            f"{s.describe()} on the week before{label}"
        ),
        severity=Severity.INFO,
        title=s.title,
    )


def _scope_text(s: WeeklyScope, previous: Week) -> str:
    mark = " :warning: partial" if s.partial else ""
    lines = [
        f"*{s.title}*  {usd(s.this_usd)}  ({s.describe()}; {usd(s.prev_usd)} the week of {previous.start:%b %d}){mark}"
    ]
    for g in s.movers:
        if not g.movers:
            continue
        shown = " · ".join(f"{_mover_name(g, m)} {m.describe()}" for m in g.movers)
        more = f" · and {g.more} more" if g.more else ""
        lines.append(f"   _{g.label}:_ {shown}{more}")
    if s.notes:
        lines.append("   _partial: " + "; ".join(s.notes) + "_")
    text = "\n".join(lines)
    return text if len(text) <= MAX_SECTION else text[: MAX_SECTION - 1] + "…"


def _mover_name(g: MoverGroup, m: Mover) -> str:
    if m.key is None:
        word = spec(g.provider).owner_words.get(g.dimension, g.dimension)
        return f"(no {word})"
    return f"`{m.key}`"


def render_blocks(
    report: WeekReport, scopes_to_show: Iterable[str] | None = None, *, room: int = 20
) -> list[kit.Block]:
    """The weekly report's blocks for one destination: a header, one section per scope it shows
    (in the report's order; None: all), at most `room` blocks ("…and N more scopes" past that)."""
    wanted = None if scopes_to_show is None else set(scopes_to_show)
    shown = [s for s in report.scopes if wanted is None or s.name in wanted]
    head = f":calendar: Weekly LLM spend, {report.week.label} ({report.week.iso})"
    blocks: list[kit.Block] = [kit.header(head[:150])]
    room = min(room, MAX_BLOCKS)
    if room < 3:  # a header, one scope and the footer: no room left in the message around it
        return []
    for i, s in enumerate(shown):
        if len(blocks) + 2 > room and i < len(shown) - 1:
            blocks.append(kit.section(f"…and {len(shown) - i} more scopes"))
            break
        blocks.append(kit.section(_scope_text(s, report.previous)))
    foot = f"last week {report.week.label} vs {report.previous.label} (UTC days); movers: largest change first"
    blocks.append(kit.context(foot))
    return blocks


def to_json(report: WeekReport) -> dict[str, Any]:
    """The report as the JSON document carries it (exact decimals as strings)."""

    def change(c: Change) -> dict[str, Any]:
        return {
            "this_week_usd": str(c.this_usd),
            "previous_week_usd": str(c.prev_usd),
            "change_usd": str(c.change_usd),
            "change_pct": None if c.change_pct is None else str(c.change_pct),
            "new": c.new,
        }

    return {
        "key": report.key,
        "week": {"iso": report.week.iso, "start": report.week.start.isoformat(), "end": report.week.end.isoformat()},
        "previous_week": {"start": report.previous.start.isoformat(), "end": report.previous.end.isoformat()},
        "scopes": [
            {
                "name": s.name,
                "level": s.level,
                "title": s.title,
                **change(s),
                "partial": s.partial,
                "notes": list(s.notes),
                "movers": [
                    {
                        "provider": g.provider,
                        "dimension": g.dimension,
                        "label": g.label,
                        "top": [{"key": m.key, **change(m)} for m in g.movers],
                        "more": g.more,
                    }
                    for g in s.movers
                ],
            }
            for s in report.scopes
        ],
    }
