"""Team budgets: the part of each account's spend every team owns, and the spend no team owns.

Pure: from the check's `SourceResult`s and the budget document, no I/O. `alerts.rules` turns what
`attribute` returns into the `team/<name>` and `unassigned` scopes.

A team's share of an account is the exact Decimal sum of the account's cost cells (`CostReport.cells`,
joint over the dimensions the document asked for) that its match selects (`TeamMatch.selects`); a
match without selectors (`TeamMatch.dims()` empty: a whole account, the only kind a source without
cells offers) takes the account's `mtd_usd` and daily series as they are. *Unassigned* is the sum of
the cells no team selects plus the accounts no team reaches, summed on its own: with overlap off,
Σ teams + unassigned == total is checked by the tests (and `owned_usd` + unassigned == total by the
JSON's reconciliation), never assumed. With `allow_overlap`, a cell counts for every team selecting
it, and unassigned stays "selected by none".

Each share is handed on as a synthetic `SourceResult` of the real account (its period, freshness,
truncation and notes; the share's amount, daily series and cells), so a team's partial flag, failed
parts, freshness and forecast come from the same code as an account's (`rules._scope_of`):

    account failed                     every slice reaching it is partial and names it
    account truncated (partial_reason)  every slice reaching it is partial
    account lacks a dimension a match  that team's share there is unknown: partial, with a note; the
      reads (no cells kept for it)      spend is counted as unassigned (partial too), so sums balance
    account on another billing month   left out, like the total leaves it out (`rules`' month note)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from config import BudgetConfig
from models import ZERO, AccountRef, BillingPeriod, CostCell, CostReport, DailyCost, Dims, SourceResult
from providers import TeamMatch

__all__ = ["UNASSIGNED", "Attribution", "Slice", "attribute", "team_scope_name"]

UNASSIGNED = "unassigned"


def team_scope_name(team: str) -> str:
    """`team/<name>`: the scope a team's alerts and state entries are filed under."""
    return f"team/{team}"


@dataclasses.dataclass(frozen=True)
class Slice:
    """One team's (or the unassigned) part of the check: a synthetic result per account it reaches."""

    name: str  # "team/<name>" or "unassigned"
    parts: tuple[SourceResult, ...]  # on the check's UTC month; a failed account as it failed
    left_out: tuple[SourceResult, ...] = ()  # reached, but still on another billing month
    notes: tuple[str, ...] = ()  # what makes its figure partial beyond a failed or truncated part


@dataclasses.dataclass(frozen=True)
class Attribution:
    teams: dict[str, Slice]  # by team name, in document order
    unassigned: Slice
    owned_usd: Decimal  # spend at least one team selects, on the UTC month, summed on its own


@dataclasses.dataclass
class _Builder:
    parts: list[SourceResult] = dataclasses.field(default_factory=list)
    left_out: list[SourceResult] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def build(self, name: str) -> Slice:
        return Slice(name, tuple(self.parts), tuple(self.left_out), tuple(dict.fromkeys(self.notes)))


def attribute(config: BudgetConfig, results: Sequence[SourceResult], now: dt.datetime) -> Attribution:
    """Split every account's spend between the document's teams and the unassigned rest."""
    month = BillingPeriod.containing(now).key
    teams = {name: _Builder() for name in config.teams}
    rest = _Builder()
    owned = ZERO
    for r in results:
        reach = [(name, b) for name, team in config.teams.items() if (b := _block(team.match.blocks(), r.account))]
        if r.period.key != month or r.report is None:
            # Nothing to split: a failed account makes every slice it could feed partial; one on
            # another billing month is left out of them all, like the total leaves it out.
            feeds = [teams[name] for name, _ in reach]
            if not any(not b.dims() for _, b in reach):  # unless a team takes it whole
                feeds.append(rest)
            for feed in feeds:
                (feed.parts if r.period.key == month else feed.left_out).append(r)
            continue
        split = _split(r, r.report, reach)
        for name, (share, note) in split.teams.items():
            teams[name].parts.append(share)
            if note:
                teams[name].notes.append(note)
        if split.unassigned is not None:
            rest.parts.append(split.unassigned)
            rest.notes.extend(split.unassigned_notes)
        owned += split.owned
    return Attribution(
        teams={name: b.build(team_scope_name(name)) for name, b in teams.items()},
        unassigned=rest.build(UNASSIGNED),
        owned_usd=owned,
    )


def _block(blocks: dict[str, TeamMatch], account: AccountRef) -> TeamMatch | None:
    """The team's match block for this account's provider, if it reaches this account."""
    block = blocks.get(account.provider)
    if block is None or (block.accounts and account.label not in block.accounts):
        return None
    return block


@dataclasses.dataclass
class _Split:
    teams: dict[str, tuple[SourceResult, str | None]]  # team → (its share, why it is not known there)
    unassigned: SourceResult | None  # None: a team takes the whole account
    unassigned_notes: list[str]
    owned: Decimal


def _split(r: SourceResult, rep: CostReport, reach: Sequence[tuple[str, TeamMatch]]) -> _Split:
    """One account's report shared out between the teams reaching it and the unassigned rest."""
    kept = set(rep.cell_dims) if rep.cell_dims is not None else None
    readable = [(n, b) for n, b in reach if b.dims() and kept is not None and set(b.dims()) <= kept]
    blind = [(n, b) for n, b in reach if b.dims() and (kept is None or not set(b.dims()) <= kept)]
    whole = [n for n, b in reach if not b.dims()]

    taken, free, owned = _take(rep.cells, readable) if readable else ({}, [], ZERO)

    shares: dict[str, tuple[SourceResult, str | None]] = {}
    for n in whole:
        shares[n] = (r, None)
    for n, cells in taken.items():
        shares[n] = (_share(r, rep, cells), None)
    for n, b in blind:
        missing = ", ".join(sorted(set(b.dims()) - (kept or set())))
        why = f"{r.account.scope}: its data does not keep {missing}, so this team's share of it is not known"
        shares[n] = (_share(r, rep, (), unknown=why), f"{why} (counted as unassigned)")

    if whole:
        return _Split(shares, None, [], rep.mtd_usd)
    notes = []
    if blind:
        who = ", ".join(n for n, _ in blind)
        notes.append(f"{r.account.scope}: includes spend of {who} that its data cannot split by team")
    rest = _share(r, rep, free, unknown=notes[0] if notes else None) if readable else _whole(r, notes)
    return _Split(shares, rest, notes, owned)


def _take(
    cells: Sequence[CostCell], readable: Sequence[tuple[str, TeamMatch]]
) -> tuple[dict[str, list[CostCell]], list[CostCell], Decimal]:
    """Each team's cells, the cells no team selects, and the sum of those some team selects."""
    taken: dict[str, list[CostCell]] = {n: [] for n, _ in readable}
    free: list[CostCell] = []
    owned = ZERO
    memo: dict[Dims, list[str]] = {}  # a combination recurs every day: match it once
    for cell in cells:
        takers = memo.get(cell.dims)
        if takers is None:
            values = dict(cell.dims)
            takers = memo[cell.dims] = [n for n, b in readable if b.selects(values)]
        for n in takers:
            taken[n].append(cell)
        if takers:
            owned += cell.amount
        else:
            free.append(cell)
    return taken, free, owned


def _whole(r: SourceResult, notes: Sequence[str]) -> SourceResult:
    """The whole account as a slice's part (a truncation note added when it cannot be split)."""
    if not notes:
        return r
    assert r.report is not None
    return dataclasses.replace(r, report=_with_reason(r.report, notes[0]))


def _share(r: SourceResult, rep: CostReport, cells: Sequence[CostCell], *, unknown: str | None = None) -> SourceResult:
    """A synthetic result of `r`'s account holding these cells only: their exact sum, their daily
    series on the account's own days (zero-filled, as `CostAccumulator.daily`), the account's
    freshness and truncation."""
    by_day = dict.fromkeys((d.day for d in rep.daily), ZERO)
    for c in cells:
        by_day[c.day] = by_day.get(c.day, ZERO) + c.amount
    report = CostReport(
        period=rep.period,
        mtd_usd=sum((c.amount for c in cells), ZERO),
        daily=tuple(DailyCost(day, by_day[day]) for day in sorted(by_day)),
        breakdown=(),
        freshness=rep.freshness,
        partial_reason=rep.partial_reason,
        notes=rep.notes,
        cells=tuple(cells),
        cell_dims=rep.cell_dims,
    )
    return dataclasses.replace(r, report=_with_reason(report, unknown) if unknown else report)


def _with_reason(rep: CostReport, reason: str) -> CostReport:
    joined = f"{rep.partial_reason}; {reason}" if rep.partial_reason else reason
    return dataclasses.replace(rep, partial_reason=joined)
