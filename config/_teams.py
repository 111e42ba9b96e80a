"""The budget document's teams, Slack destinations and weekly report, and the checks between them.

A team is a budget over a slice of spend across providers (`match`, one block per provider, each
declared by the vendor as `ProviderSpec.team_match`). A destination is a Slack incoming webhook;
every budget may `notify` destinations by name, and `default_destination` gets what is not routed.
Everything here is checked at load time, each problem named with its path and its fix
(`check_document`), so a run never meets an unknown destination or an overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

import providers
from providers import TeamMatch, Usd
from providers._spec import ENV_NAME_RE, LABEL_RE, SECRET_NAME_RE

if TYPE_CHECKING:
    from config._budget import BudgetConfig

__all__ = [
    "IMPLICIT_DESTINATION",
    "RESERVED_TEAM_NAMES",
    "Destination",
    "MatchTable",
    "Team",
    "WeeklyReport",
    "check_document",
    "usd_thresholds",
]

IMPLICIT_DESTINATION = "default"  # the one destination of a document without `destinations` (SLACK_WEBHOOK_*)
RESERVED_TEAM_NAMES = frozenset({"unassigned", "total"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def usd_thresholds(v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    """`thresholds_usd` (absolute amounts, beside the percentages): sorted, each once."""
    return tuple(sorted(set(v)))


UsdThresholds = Annotated[tuple[Usd, ...], AfterValidator(usd_thresholds)]


class Destination(_Strict):
    """A Slack incoming webhook: `webhook_secret` in the cloud, `webhook_env` locally."""

    webhook_secret: str | None = None
    webhook_env: str | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and not SECRET_NAME_RE.match(v):
            raise ValueError("must be a Secret Manager version name: projects/P/secrets/S/versions/latest")
        return v

    @field_validator("webhook_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME_RE.match(v):
            raise ValueError("must be an environment variable name such as SLACK_SEARCH_WEBHOOK_URL")
        return v

    @model_validator(mode="after")
    def _one(self) -> Destination:
        if self.webhook_secret and self.webhook_env:
            raise ValueError("set either webhook_secret (cloud) or webhook_env (local), not both")
        if not (self.webhook_secret or self.webhook_env):
            raise ValueError(
                "set webhook_secret (cloud: projects/P/secrets/S/versions/latest) or webhook_env "
                "(local: an environment variable holding the webhook URL)"
            )
        return self


class WeeklyReport(_Strict):
    """Last week's spend per scope, week over week, with the top movers: once a week per destination."""

    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    hour_utc: int = Field(default=8, ge=0, le=23)
    destinations: tuple[str, ...] = ()  # () → every destination
    top: int = Field(default=5, ge=1, le=20)  # movers listed before "and N more"

    @property
    def weekday_index(self) -> int:
        """Monday 0 … Sunday 6, as `datetime.weekday()`."""
        return WEEKDAYS.index(self.weekday)


class MatchTable(_Strict):
    """`teams.<t>.match`: one optional block per registered provider (built by `document_schema`)."""

    def blocks(self) -> dict[str, TeamMatch]:
        """The provider blocks the team gives, in registry order."""
        return {name: m for name in type(self).model_fields if (m := getattr(self, name)) is not None}


class Team(_Strict):
    """A monthly budget over a slice of spend across providers, alerting its own destinations."""

    budget_usd: Usd
    thresholds_pct: tuple[Decimal, ...] | None = None  # None: the document's thresholds_pct
    forecast_thresholds_pct: tuple[Decimal, ...] | None = None  # None: the document's
    thresholds_usd: UsdThresholds = ()
    notify: tuple[str, ...] = ()
    match: MatchTable

    @field_validator("thresholds_pct", "forecast_thresholds_pct")
    @classmethod
    def _pcts(cls, v: tuple[Decimal, ...] | None) -> tuple[Decimal, ...] | None:
        if v is None:
            return None
        for p in v:
            if not p.is_finite() or not (0 < p <= 1000):
                raise ValueError("each threshold is a percentage of budget with 0 < p <= 1000, e.g. 80")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _selects_something(self) -> Team:
        if not self.match.blocks():
            known = ", ".join(type(self.match).model_fields)
            raise ValueError(f"match: select some spend: give at least one of {known}, with accounts, ids or patterns")
        return self


# --- checks across the document ------------------------------------------------------------------


def check_document(doc: BudgetConfig) -> None:
    """Raise ValueError (path, problem, fix) for what only the whole document can tell."""
    _check_team_names(doc)
    for name, team in doc.teams.items():
        _check_team_blocks(doc, name, team)
    if not doc.allow_overlap:
        _check_overlap(doc)
    _check_destinations(doc)


def _check_team_names(doc: BudgetConfig) -> None:
    for name in doc.teams:
        if name in RESERVED_TEAM_NAMES:
            raise ValueError(f'teams: "{name}" is reserved (it names the spend no team owns, or the total)')
        if not LABEL_RE.match(name):
            raise ValueError(
                f'teams: "{name[:60]}" is not a team name: use 1-40 lowercase letters, digits, "-" or "_", '
                "starting with a letter or digit"
            )


def _check_team_blocks(doc: BudgetConfig, name: str, team: Team) -> None:
    configured = doc.configured()
    for provider, block in team.match.blocks().items():
        where = f"teams.{name}.match.{provider}"
        if provider not in configured:
            raise ValueError(f"{where}: providers.{provider} is not configured, so nothing can match it")
        labels = [a.label for a in doc.accounts(provider)]
        for label in block.accounts:
            if label not in labels:
                raise ValueError(
                    f'{where}.accounts: "{label[:60]}" is not an account of providers.{provider} '
                    f"(accounts: {', '.join(labels)})"
                )


def _reach(doc: BudgetConfig, provider: str, block: TeamMatch) -> Iterator[tuple[str, frozenset[str] | None]]:
    """(account label, the ids the block takes there or None for all of it) for every account it reaches."""
    for label in doc.reached(provider, block):
        yield label, block.ids()


def _check_overlap(doc: BudgetConfig) -> None:
    """Two teams overlap when, on one account, either takes all of it or both name one id. Patterns
    cannot be compared before the data exists, so ids shared with different patterns still overlap."""
    for (a, ta), (b, tb) in itertools.combinations(doc.teams.items(), 2):
        for provider, block_a in ta.match.blocks().items():
            block_b = tb.match.blocks().get(provider)
            if block_b is None:
                continue
            reach_b = dict(_reach(doc, provider, block_b))
            for label, ids_a in _reach(doc, provider, block_a):
                if label not in reach_b:
                    continue
                ids_b = reach_b[label]
                shared = None if ids_a is None or ids_b is None else sorted(ids_a & ids_b)
                if shared is None or shared:
                    what = f"{provider}/{label}" if shared is None else f"{provider}/{label} {shared[0]}"
                    raise ValueError(
                        f'teams: "{a}" and "{b}" both match {what}: each spend can belong to one team; '
                        'remove it from one, or set "allow_overlap": true if counting it in both is intended'
                    )


def _notify_lists(doc: BudgetConfig) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every `notify` (and the weekly report's destinations) with its path."""
    for provider, pb in doc.configured().items():
        yield f"providers.{provider}.notify", pb.notify
        for i, acc in enumerate(pb.accounts):
            yield f"providers.{provider}.accounts[{i}].notify", acc.notify
    for name, team in doc.teams.items():
        yield f"teams.{name}.notify", team.notify
    if doc.weekly_report is not None:
        yield "weekly_report.destinations", doc.weekly_report.destinations


def _check_destinations(doc: BudgetConfig) -> None:
    names = list(doc.destinations) or [IMPLICIT_DESTINATION]
    for name in doc.destinations:
        if not LABEL_RE.match(name):
            raise ValueError(
                f'destinations: "{name[:60]}" is not a destination name: use 1-40 lowercase letters, digits, '
                '"-" or "_", starting with a letter or digit'
            )
    if doc.default_destination is not None and doc.default_destination not in names:
        raise ValueError(
            f'default_destination: "{doc.default_destination[:60]}" is not a destination '
            f"(destinations: {', '.join(names)})"
        )
    if len(doc.destinations) > 1 and doc.default_destination is None:
        raise ValueError(
            "default_destination is missing: with several destinations, name the one that receives what no "
            f'budget routes elsewhere, e.g. "default_destination": "{names[0]}"'
        )
    for where, listed in _notify_lists(doc):
        for dest in listed:
            if dest not in names:
                hint = (
                    f"destinations: {', '.join(names)}"
                    if doc.destinations
                    else 'define it under "destinations" with its webhook_secret or webhook_env'
                )
                raise ValueError(f'{where}: "{dest[:60]}" is not a destination ({hint})')


def dynamic_fields(specs: tuple[providers.ProviderSpec, ...]) -> Mapping[str, Any]:
    """The `MatchTable` fields for these providers: each spec's `team_match`, optional."""
    return {s.name: (s.team_match | None, None) for s in specs}
