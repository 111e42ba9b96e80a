"""Routing: the Slack destinations of each event, and the scopes each destination's message shows.

Pure: built from the budget document (`Routes.of`), asked about scope names and events.

    scope                          its destinations
    <provider>/<label> (account)   the account's `notify`, else its provider's, else the default
    <provider>                     the provider's `notify`, else the default
    team/<name>                    the team's `notify`, else the default
    total, unassigned              the default
    failure / recovery of an account   the account's destinations ∪ those of every team reaching it
    digest                         every destination that shows a scope, each message with its own
    weekly                         `weekly_report.destinations`, else every destination

`copy_all_to_default` adds the default to everything. A scope with a suffix after ":" (a provider
limit's `<provider>/<label>:<project>`) is routed as the account before it. A destination *shows* the
scopes routed to it: the default shows the total, unassigned and whatever is not routed elsewhere
(everything, with `copy_all_to_default`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from alerts.events import Event

if TYPE_CHECKING:
    from config import BudgetConfig

__all__ = ["BROADCAST", "TEAM_PREFIX", "UNASSIGNED", "Delivery", "Routes", "delivery_key", "event_key"]

TEAM_PREFIX = "team/"
UNASSIGNED = "unassigned"
BROADCAST = frozenset({"digest"})  # kinds every destination receives (each with its own scopes)
HEALTH = frozenset({"failure", "recovery"})  # an account's source: its owners hear of it
WEEKLY = "weekly"


def delivery_key(key: str, dest: str, default: str) -> str:
    """The alert-state key of `key` delivered to `dest`: the bare key for the default destination."""
    return key if dest == default else f"{key}@{dest}"


def event_key(dkey: str) -> str:
    """The event key of a delivery key (`delivery_key`'s inverse; event keys never contain "@")."""
    return dkey.split("@", 1)[0]


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One event for one destination: what alert state says exactly once."""

    event: Event
    dest: str


@dataclasses.dataclass(frozen=True)
class Routes:
    """Where each scope's alerts go, as the budget document says."""

    names: tuple[str, ...]  # every destination, in document order
    default: str
    copy_all: bool
    explicit: Mapping[str, tuple[str, ...]]  # scope name → its own `notify` (accounts inherit below)
    provider_of: Mapping[str, str]  # account scope → provider
    reaching: Mapping[str, tuple[str, ...]]  # account scope → team scopes whose match reaches it
    weekly: tuple[str, ...]
    with_scopes: tuple[str, ...]  # the destinations some scope is routed to (the default always)

    @classmethod
    def of(cls, budgets: BudgetConfig) -> Routes:
        explicit: dict[str, tuple[str, ...]] = {}
        provider_of: dict[str, str] = {}
        for provider, pb in budgets.configured().items():
            if pb.notify:
                explicit[provider] = tuple(pb.notify)
            for acc in budgets.accounts(provider):
                scope = f"{provider}/{acc.label}"
                provider_of[scope] = provider
                if acc.notify:
                    explicit[scope] = tuple(acc.notify)
        reaching: dict[str, list[str]] = {}
        for name, team in budgets.teams.items():
            if team.notify:
                explicit[TEAM_PREFIX + name] = tuple(team.notify)
            for provider, block in team.match.blocks().items():
                for label in budgets.reached(provider, block):
                    reaching.setdefault(f"{provider}/{label}", []).append(TEAM_PREFIX + name)
        names = budgets.destination_names()
        weekly = tuple(budgets.weekly_report.destinations) if budgets.weekly_report else ()
        return cls(
            names=names,
            default=budgets.default_dest,
            copy_all=budgets.copy_all_to_default,
            explicit=explicit,
            provider_of=provider_of,
            reaching={k: tuple(v) for k, v in reaching.items()},
            weekly=weekly or names,
            with_scopes=tuple(d for d in names if d == budgets.default_dest or any(d in v for v in explicit.values())),
        )

    def of_scope(self, scope: str) -> tuple[str, ...]:
        """The destinations of a scope's alerts (document order, each once)."""
        scope = scope.split(":", 1)[0]
        own = self.explicit.get(scope)
        if own is None and scope in self.provider_of:
            own = self.explicit.get(self.provider_of[scope])
        return self._ordered(own or (self.default,))

    def of_event(self, event: Event) -> tuple[str, ...]:
        """The destinations `event` is delivered to."""
        kind = str(event.kind)
        if kind in BROADCAST:  # a destination named only by the weekly report has no scope to digest
            return self.with_scopes
        if kind == WEEKLY:
            return self._ordered(self.weekly)
        dests = list(self.of_scope(event.scope))
        if kind in HEALTH:
            for team in self.reaching.get(event.scope.split(":", 1)[0], ()):
                dests.extend(self.of_scope(team))
        return self._ordered(dests)

    def shows(self, dest: str, scope: str) -> bool:
        """Whether `dest`'s message shows `scope` (its figure, bar and forecast)."""
        return dest in self.of_scope(scope)

    def shown(self, dest: str, scopes: Iterable[str]) -> frozenset[str]:
        """The scope names among `scopes` that `dest` shows."""
        return frozenset(s for s in scopes if self.shows(dest, s))

    def split(self, events: Sequence[Event]) -> dict[str, list[Event]]:
        """`events` by destination (every destination present, possibly with none)."""
        out: dict[str, list[Event]] = {d: [] for d in self.names}
        for e in events:
            for d in self.of_event(e):
                out[d].append(e)
        return out

    def _ordered(self, dests: Iterable[str]) -> tuple[str, ...]:
        wanted = set(dests)
        if self.copy_all:
            wanted.add(self.default)
        return tuple(d for d in self.names if d in wanted)
