"""Deterministic spend: which keys exist, and exactly how much each account spends in every UTC hour.

The unit of truth is the **hourly cell**: the spend of one account, in one UTC hour, on one breakdown
combination (an OpenAI line item x project, an Anthropic description x workspace, an xAI description).
Each cell is a `Decimal` quantised to the precision its provider can carry exactly on the wire:

* OpenAI: dollars with 8 decimals (emitted as JSON floats whose `repr` round-trips),
* Anthropic: dollars with 7 decimals = cents with 5 decimals (emitted as decimal strings),
* xAI: dollars with 8 decimals (emitted as JSON floats).
* OpenRouter: dollars with 8 decimals (JSON floats), served by `simulator/providers_server.py` too.
* Bedrock: dollars with 8 decimals (Cost Explorer decimal strings), served by moto: `simulator/_bedrock.py`
  turns the cells into `GetCostAndUsage` answers that `devservers.moto.load_cost_and_usage` queues.

Every amount the servers emit is a sum of whole cells, so a client that sums `Decimal(str(float))`
(OpenAI, xAI) or `Decimal(string) / 100` (Anthropic) gets `expected_mtd()` exactly.

A day's spend is `base_daily_usd x (1 + daily_growth_pct/100)^(day_of_month - 1) x spike x jitter`,
spread over the 24 hours by `hourly_profile` and over the breakdown by the weights. Growth restarts
on the 1st of each month; jitter is a fixed pseudo-random factor per account and day (CRC32 of the
label and date), so every run of the same scenario gives the same numbers.

Cells come from the cartesian product of the `breakdown` weights and, besides it, from an account's
explicit `cells` (`{"values": {dimension: id | null}, "share": "0.13"}`): correlated combinations the
product cannot express (a project that spends on one line item only, a row without a project). The
explicit cells take their shares of the account's spend and the product shares the rest.

A scenario-level `teams` block mirrors the budget document's `teams.<name>.match` (the same JSON can
be copied into it). `expected_team`, `expected_unassigned` and `expected_total` sum the hourly cells
(and, for Gemini, the billing-export rows passed in) with their own matching code, never the
product's, so a test can hold the product to them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import itertools
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator import billing_export

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "xai", "openrouter", "bedrock")
QUANTUM: Mapping[str, Decimal] = {
    "openai": Decimal("1e-8"),
    "anthropic": Decimal("1e-7"),
    "xai": Decimal("1e-8"),
    "openrouter": Decimal("1e-8"),  # JSON doubles, like OpenAI
    "bedrock": Decimal("1e-8"),  # Cost Explorer's Amount is a decimal string; 8 places like its exports
}
DIMENSIONS: Mapping[str, tuple[str, ...]] = {
    "openai": ("line_item", "project_id", "api_key_id"),
    "anthropic": ("description", "workspace_id"),
    "xai": ("description",),
    "openrouter": ("model",),
    "bedrock": ("service", "usage_type"),
}
ANTHROPIC_ATTRS: tuple[str, ...] = (
    "cost_type",
    "model",
    "token_type",
    "service_tier",
    "context_window",
    "inference_geo",
)
# Low at night UTC, busy through the European and American working day.
DEFAULT_HOURLY_PROFILE: tuple[Decimal, ...] = tuple(
    Decimal(w) for w in (3, 2, 2, 2, 2, 3, 4, 5, 6, 7, 7, 7, 8, 9, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3)
)
DEMO_PATH = Path(__file__).with_name("scenarios") / "demo.json"
_CACHE_LIMIT = 4096


class ScenarioError(ValueError):
    """The scenario document is invalid; the message names the field."""


def utc_day_start(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start_of(instant: dt.datetime) -> dt.datetime:
    return utc_day_start(instant).replace(day=1)


@dataclasses.dataclass(frozen=True)
class Spike:
    day: dt.date
    multiplier: Decimal


@dataclasses.dataclass(frozen=True)
class SpendModel:
    """How much an account spends per day before the hourly and breakdown split."""

    base_daily_usd: Decimal
    daily_growth_pct: Decimal = Decimal(0)
    jitter_pct: Decimal = Decimal(0)
    spikes: tuple[Spike, ...] = ()
    active_from: dt.date | None = None
    hourly_profile: tuple[Decimal, ...] = DEFAULT_HOURLY_PROFILE

    def daily_usd(self, seed: str, day: dt.date) -> Decimal:
        """The day's target spend (before per-cell rounding; the true total is the sum of the cells)."""
        if self.active_from is not None and day < self.active_from:
            return Decimal(0)
        amount = self.base_daily_usd * (1 + self.daily_growth_pct / 100) ** (day.day - 1)
        for spike in self.spikes:
            if spike.day == day:
                amount *= spike.multiplier
        if self.jitter_pct:
            unit = Decimal(zlib.crc32(f"{seed}/{day.isoformat()}".encode())) / Decimal(0xFFFFFFFF)
            amount *= 1 + self.jitter_pct / 100 * (2 * unit - 1)
        return amount


@dataclasses.dataclass(frozen=True)
class Cell:
    """One breakdown combination: its group values and its share (weights normalised to sum to 1)."""

    values: Mapping[str, str | None]
    share: Decimal


@dataclasses.dataclass(frozen=True, eq=False)
class Account:
    """One simulated organisation / team, identified by its admin (or management) key."""

    provider: str
    label: str
    key: str
    spend: SpendModel
    cells: tuple[Cell, ...]
    attrs: Mapping[str, Mapping[str, str | None]] = dataclasses.field(default_factory=dict)  # by description
    team_id: str | None = None  # xAI
    spending_limit_usd: Decimal | None = None  # xAI postpaid limit
    prepaid_credit_usd: Decimal = Decimal(0)  # xAI prepaid credit bought this month
    spend_limit_usd: Decimal | None = None  # OpenAI organisation hard limit (None: not set)
    project_spend_limits: Mapping[str, Decimal | None] = dataclasses.field(default_factory=dict)  # OpenAI; None: 404
    _hourly: dict[dt.date, tuple[tuple[Decimal, ...], ...]] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )
    _prefix: dict[dt.date, tuple[tuple[Decimal, ...], ...]] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def scope(self) -> str:
        return f"{self.provider}/{self.label}"

    def hourly(self, day: dt.date) -> tuple[tuple[Decimal, ...], ...]:
        """The 24 x len(cells) hourly amounts of `day` (USD, quantised for the provider)."""
        rows = self._hourly.get(day)
        if rows is None:
            daily = self.spend.daily_usd(self.scope, day)
            profile = self.spend.hourly_profile
            total_weight = sum(profile, Decimal(0))
            quantum = QUANTUM[self.provider]
            rows = tuple(
                tuple((daily * weight / total_weight * cell.share).quantize(quantum) for cell in self.cells)
                for weight in profile
            )
            if len(self._hourly) > _CACHE_LIMIT:
                self._hourly.clear()
            self._hourly[day] = rows
        return rows

    def _cumulative(self, day: dt.date) -> tuple[tuple[Decimal, ...], ...]:
        rows = self._prefix.get(day)
        if rows is None:
            running = [Decimal(0)] * len(self.cells)
            acc = [tuple(running)]
            for hour in self.hourly(day):
                running = [a + b for a, b in zip(running, hour, strict=True)]
                acc.append(tuple(running))
            rows = tuple(acc)
            if len(self._prefix) > _CACHE_LIMIT:
                self._prefix.clear()
            self._prefix[day] = rows
        return rows

    def window(self, start: dt.datetime, end: dt.datetime, visible_until: dt.datetime) -> list[Decimal]:
        """Per-cell spend of the hours that start in [start, end) and ended at or before `visible_until`."""
        totals = [Decimal(0)] * len(self.cells)
        day_start = utc_day_start(start)
        while day_start < end and day_start < visible_until:
            h0 = max(0, _ceil_hours(start - day_start))
            h1 = min(24, _ceil_hours(end - day_start), _floor_hours(visible_until - day_start))
            if h1 > h0:
                cum = self._cumulative(day_start.date())
                totals = [t + b - a for t, a, b in zip(totals, cum[h0], cum[h1], strict=True)]
            day_start += DAY
        return totals

    def group(self, amounts: Sequence[Decimal], dims: Sequence[str]) -> list[tuple[dict[str, str | None], Decimal]]:
        """Sum per-cell `amounts` by the values of `dims` (first-seen order); zero groups are dropped."""
        groups: dict[tuple[str | None, ...], Decimal] = {}
        for cell, amount in zip(self.cells, amounts, strict=True):
            key = tuple(cell.values.get(d) for d in dims)
            groups[key] = groups.get(key, Decimal(0)) + amount
        return [(dict(zip(dims, key, strict=True)), total) for key, total in groups.items() if total != 0]


# --- teams: the scenario's own copy of the budget document's `match` ------------------------------

DEFAULT_WORKSPACE = "default"  # Anthropic's default workspace has no id: its costs come back workspace_id null
GEMINI = "gemini"  # not a served account: its spend is the billing-export rows passed to the expected_* sums
# What a team's match may name per provider (the budget document's selectors; patterns are
# case-sensitive globs, as `fnmatch.fnmatchcase` reads them). Gemini has one export table here.
TEAM_SELECTORS: Mapping[str, tuple[str, ...]] = {
    "openai": ("accounts", "project_ids", "line_item_patterns"),
    "anthropic": ("accounts", "workspace_ids", "description_patterns", "model_patterns"),
    "xai": ("accounts",),
    "openrouter": ("accounts",),
    "bedrock": ("accounts",),
    GEMINI: ("project_ids", "sku_patterns"),
}
UNASSIGNED = "unassigned"


def _glob(value: str | None, patterns: tuple[str, ...]) -> bool:
    return not patterns or (value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns))


@dataclasses.dataclass(frozen=True)
class TeamPart:
    """What one team takes of one provider: whole accounts, or the cells / rows its selectors name."""

    provider: str
    selectors: Mapping[str, tuple[str, ...]]

    def _get(self, name: str) -> tuple[str, ...]:
        return self.selectors.get(name, ())

    def selects_cell(self, account: Account, cell: Cell) -> bool:
        """Whether this part owns `cell` of `account` (ids AND patterns; no selector = the whole account)."""
        if account.provider != self.provider:
            return False
        if self._get("accounts") and account.label not in self._get("accounts"):
            return False
        values = cell.values
        if self.provider == "openai":
            projects = self._get("project_ids")
            if projects and values.get("project_id") not in projects:
                return False
            return _glob(values.get("line_item"), self._get("line_item_patterns"))
        if self.provider == "anthropic":
            workspaces = self._get("workspace_ids")
            if workspaces and (values.get("workspace_id") or DEFAULT_WORKSPACE) not in workspaces:
                return False
            description = values.get("description")
            model = account.attrs.get(description, {}).get("model") if description is not None else None
            return _glob(description, self._get("description_patterns")) and _glob(model, self._get("model_patterns"))
        return True

    def selects_row(self, row: billing_export.Row) -> bool:
        """Whether this (Gemini) part owns a billing-export row; a row without a project has no project id."""
        if self.provider != GEMINI:
            return False
        projects = self._get("project_ids")
        if projects and (row.get("project") or {}).get("id") not in projects:
            return False
        return _glob((row.get("sku") or {}).get("description"), self._get("sku_patterns"))


@dataclasses.dataclass(frozen=True)
class ScenarioTeam:
    """A team of the scenario: its parts by provider, and the `match` document they were read from."""

    name: str
    parts: tuple[TeamPart, ...]
    match: Mapping[str, Mapping[str, Any]]  # as written: copy it into the budget document's teams.<name>.match
    notes: str = ""

    def selects_cell(self, account: Account, cell: Cell) -> bool:
        return any(p.selects_cell(account, cell) for p in self.parts)

    def selects_row(self, row: billing_export.Row) -> bool:
        return any(p.selects_row(row) for p in self.parts)


def _ceil_hours(delta: dt.timedelta) -> int:
    return -(-delta // HOUR)


def _floor_hours(delta: dt.timedelta) -> int:
    return delta // HOUR


def _hours(start: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Whole UTC hours starting at or after `start` and ending at or before `until`."""
    hour = utc_day_start(start) + HOUR * _ceil_hours(start - utc_day_start(start))
    while hour + HOUR <= until:
        yield hour
        hour += HOUR


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Accounts keyed by their API key, plus the default lag and Anthropic day-completeness knobs."""

    name: str
    description: str
    accounts: tuple[Account, ...]
    lag_minutes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    complete_days_only: bool = False
    teams: tuple[ScenarioTeam, ...] = ()

    def by_key(self, key: str) -> Account | None:
        for account in self.accounts:
            if account.key == key:
                return account
        return None

    def find(self, key_or_account: str | Account) -> Account:
        """An account by key, by scope (`openai/prod`) or by label when the label is unique."""
        if isinstance(key_or_account, Account):
            return key_or_account
        found = self.by_key(key_or_account)
        if found is not None:
            return found
        matches = [a for a in self.accounts if key_or_account in (a.scope, a.label)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise KeyError(f"label {key_or_account!r} is ambiguous: use provider/label, e.g. {matches[0].scope}")
        raise KeyError(f"no account with key, scope or label {key_or_account!r} in scenario {self.name!r}")

    def lag(self, provider: str) -> dt.timedelta:
        return dt.timedelta(minutes=self.lag_minutes.get(provider, 0))

    def team(self, name: str) -> ScenarioTeam:
        for team in self.teams:
            if team.name == name:
                return team
        known = ", ".join(t.name for t in self.teams) or "none"
        raise KeyError(f"no team {name!r} in scenario {self.name!r} (teams: {known})")

    # --- expected sums, computed hour by hour (independently of the servers' bucket code) ---------

    def expected_daily(
        self,
        key_or_account: str | Account,
        *,
        now: dt.datetime,
        month_start: dt.datetime | None = None,
        lag: dt.timedelta | None = None,
    ) -> dict[dt.date, Decimal]:
        """USD per UTC day, from `month_start` (default: the 1st of `now`'s UTC month) to `now - lag`."""
        account = self.find(key_or_account)
        now = now.astimezone(UTC)
        start = month_start.astimezone(UTC) if month_start is not None else month_start_of(now)
        visible_until = now - (self.lag(account.provider) if lag is None else lag)
        daily: dict[dt.date, Decimal] = {}
        day = utc_day_start(start)
        while day <= now:
            daily[day.date()] = Decimal(0)
            day += DAY
        for hour in _hours(start, visible_until):
            daily[hour.date()] += sum(account.hourly(hour.date())[hour.hour], Decimal(0))
        return daily

    def expected_mtd(
        self,
        key_or_account: str | Account,
        *,
        now: dt.datetime,
        month_start: dt.datetime | None = None,
        lag: dt.timedelta | None = None,
    ) -> Decimal:
        """Month-to-date USD a correct client must sum, exactly."""
        return sum(self.expected_daily(key_or_account, now=now, month_start=month_start, lag=lag).values(), Decimal(0))

    def expected_breakdown(
        self,
        key_or_account: str | Account,
        *,
        now: dt.datetime,
        month_start: dt.datetime | None = None,
        lag: dt.timedelta | None = None,
    ) -> dict[str, dict[str, Decimal]]:
        """Month-to-date USD per breakdown dimension and value (`null` values keyed as "null")."""
        account = self.find(key_or_account)
        now = now.astimezone(UTC)
        start = month_start.astimezone(UTC) if month_start is not None else month_start_of(now)
        visible_until = now - (self.lag(account.provider) if lag is None else lag)
        out: dict[str, dict[str, Decimal]] = {}
        for hour in _hours(start, visible_until):
            for cell, amount in zip(account.cells, account.hourly(hour.date())[hour.hour], strict=True):
                for dim, value in cell.values.items():
                    bucket = out.setdefault(dim, {})
                    name = "null" if value is None else value
                    bucket[name] = bucket.get(name, Decimal(0)) + amount
        return out

    def expected_cells(
        self,
        key_or_account: str | Account,
        *,
        now: dt.datetime,
        month_start: dt.datetime | None = None,
        lag: dt.timedelta | None = None,
    ) -> dict[tuple[dt.date, tuple[tuple[str, str | None], ...]], Decimal]:
        """Month-to-date USD per (UTC day, joint cell): the cell's `(dimension, value)` pairs sorted by
        dimension, in the wire's names (`project_id`, `workspace_id`, ...; None = null). Zero cells are left out."""
        account = self.find(key_or_account)
        out: dict[tuple[dt.date, tuple[tuple[str, str | None], ...]], Decimal] = {}
        keys = [tuple(sorted(cell.values.items())) for cell in account.cells]
        for hour in self._visible_hours(account, now, month_start, lag):
            for key, amount in zip(keys, account.hourly(hour.date())[hour.hour], strict=True):
                if amount:
                    out[(hour.date(), key)] = out.get((hour.date(), key), Decimal(0)) + amount
        return out

    def expected_team(
        self,
        name: str,
        *,
        now: dt.datetime,
        gemini_rows: Iterable[billing_export.Row] | None = None,
        month_start: dt.datetime | None = None,
        lags: Mapping[str, dt.timedelta] | None = None,
    ) -> Decimal:
        """Month-to-date USD of team `name`: its cells of every account, plus its Gemini rows (see `_gemini`)."""
        team = self.team(name)
        return self._matching(team.selects_cell, team.selects_row, now, gemini_rows, month_start, lags)

    def expected_unassigned(
        self,
        *,
        now: dt.datetime,
        gemini_rows: Iterable[billing_export.Row] | None = None,
        month_start: dt.datetime | None = None,
        lags: Mapping[str, dt.timedelta] | None = None,
    ) -> Decimal:
        """Month-to-date USD that no team owns. A cell or row two teams claim raises `ScenarioError`
        (the scenario's teams must partition its spend for owned + unassigned = total to mean anything)."""

        def owners(matches: Sequence[bool], what: str) -> bool:
            claimed = [t.name for t, hit in zip(self.teams, matches, strict=True) if hit]
            if len(claimed) > 1:
                raise ScenarioError(f"teams {' and '.join(claimed)} both match {what}: give each cell one owner")
            return not claimed

        def cell_free(account: Account, cell: Cell) -> bool:
            return owners([t.selects_cell(account, cell) for t in self.teams], f"{account.scope} {dict(cell.values)}")

        def row_free(row: billing_export.Row) -> bool:
            return owners([t.selects_row(row) for t in self.teams], f"the Gemini row {row.get('sku')}")

        return self._matching(cell_free, row_free, now, gemini_rows, month_start, lags)

    def expected_total(
        self,
        *,
        now: dt.datetime,
        gemini_rows: Iterable[billing_export.Row] | None = None,
        month_start: dt.datetime | None = None,
        lags: Mapping[str, dt.timedelta] | None = None,
    ) -> Decimal:
        """Month-to-date USD of every account (plus the Gemini rows), summed hour by hour like the teams."""
        return self._matching(lambda a, c: True, lambda r: True, now, gemini_rows, month_start, lags)

    def _visible_hours(
        self, account: Account, now: dt.datetime, month_start: dt.datetime | None, lag: dt.timedelta | None
    ) -> Iterator[dt.datetime]:
        now = now.astimezone(UTC)
        start = month_start.astimezone(UTC) if month_start is not None else month_start_of(now)
        return _hours(start, now - (self.lag(account.provider) if lag is None else lag))

    def _matching(
        self,
        cell_wanted: Callable[[Account, Cell], bool],
        row_wanted: Callable[[billing_export.Row], bool],
        now: dt.datetime,
        gemini_rows: Iterable[billing_export.Row] | None,
        month_start: dt.datetime | None,
        lags: Mapping[str, dt.timedelta] | None,
    ) -> Decimal:
        total = Decimal(0)
        for account in self.accounts:
            wanted = [cell_wanted(account, cell) for cell in account.cells]
            if not any(wanted):
                continue
            lag = None if lags is None else lags.get(account.provider)
            for hour in self._visible_hours(account, now, month_start, lag):
                row = account.hourly(hour.date())[hour.hour]
                total += sum((a for a, w in zip(row, wanted, strict=True) if w), Decimal(0))
        return total + self._gemini(row_wanted, now, gemini_rows)

    @staticmethod
    def _gemini(
        row_wanted: Callable[[billing_export.Row], bool],
        now: dt.datetime,
        rows: Iterable[billing_export.Row] | None,
    ) -> Decimal:
        """The Gemini part: rows of the Gemini services on the invoice month named like `now`'s UTC month,
        exported by `now`. Before Google's month turns (8 hours after UTC's) that month has no rows yet,
        so a UTC-month scope holds no Gemini spend then, rather than the previous invoice month's."""
        if rows is None:
            return Decimal(0)
        utc = now.astimezone(UTC)
        month = f"{utc.year:04d}{utc.month:02d}"
        return billing_export.expected_net_usd(rows, month, billing_export.GEMINI_SERVICE_IDS, now, where=row_wanted)

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> Scenario:
        """Load a scenario JSON file (default: the bundled `scenarios/demo.json`)."""
        source = Path(path) if path is not None else DEMO_PATH
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ScenarioError(f"{source}: cannot read scenario: {exc}") from None
        return cls.from_dict(data, origin=str(source))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "scenario") -> Scenario:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{origin}: the document must be a JSON object")
        raw_accounts = data.get("accounts")
        if not isinstance(raw_accounts, list) or not raw_accounts:
            raise ScenarioError(f"{origin}: 'accounts' must be a non-empty list")
        accounts = tuple(_account(a, f"{origin}: accounts[{i}]") for i, a in enumerate(raw_accounts))
        keys = [a.key for a in accounts]
        if len(set(keys)) != len(keys):
            raise ScenarioError(f"{origin}: every account needs its own key")
        scopes = [a.scope for a in accounts]
        if len(set(scopes)) != len(scopes):
            raise ScenarioError(f"{origin}: account labels must be unique per provider")
        lag = data.get("lag_minutes", {})
        if not isinstance(lag, Mapping) or any(p not in PROVIDERS or not _is_int(v) for p, v in lag.items()):
            raise ScenarioError(f"{origin}: lag_minutes maps a provider name to whole minutes")
        return cls(
            name=str(data.get("name", origin)),
            description=str(data.get("description", "")),
            accounts=accounts,
            lag_minutes={p: int(v) for p, v in lag.items()},
            complete_days_only=bool(data.get("complete_days_only", False)),
            teams=_teams(data.get("teams"), f"{origin}: teams"),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScenarioError(f"{where}: expected a number or a decimal string")
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise ScenarioError(f"{where}: {value!r} is not a number") from None
    if not result.is_finite() or result < 0:
        raise ScenarioError(f"{where}: must be a non-negative number")
    return result


def _date(value: object, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _spend(raw: object, where: str) -> SpendModel:
    if not isinstance(raw, Mapping) or "base_daily_usd" not in raw:
        raise ScenarioError(f"{where}: needs an object with base_daily_usd")
    spikes = tuple(
        Spike(_date(s.get("date"), f"{where}.spikes[{i}].date"), _decimal(s.get("multiplier"), f"{where}.spikes[{i}]"))
        for i, s in enumerate(raw.get("spikes", []))
    )
    profile = raw.get("hourly_profile")
    hourly = DEFAULT_HOURLY_PROFILE
    if profile is not None:
        if not isinstance(profile, list) or len(profile) != 24:
            raise ScenarioError(f"{where}.hourly_profile: give 24 weights, one per UTC hour")
        hourly = tuple(_decimal(w, f"{where}.hourly_profile") for w in profile)
        if not any(hourly):
            raise ScenarioError(f"{where}.hourly_profile: at least one weight must be positive")
    active = raw.get("active_from")
    return SpendModel(
        base_daily_usd=_decimal(raw["base_daily_usd"], f"{where}.base_daily_usd"),
        daily_growth_pct=_decimal(raw.get("daily_growth_pct", 0), f"{where}.daily_growth_pct"),
        jitter_pct=_decimal(raw.get("jitter_pct", 0), f"{where}.jitter_pct"),
        spikes=spikes,
        active_from=_date(active, f"{where}.active_from") if active is not None else None,
        hourly_profile=hourly,
    )


def _cells(
    provider: str, raw: object, explicit: object, where: str
) -> tuple[tuple[Cell, ...], dict[str, dict[str, str | None]]]:
    """The product of the `breakdown` weights, scaled to what the explicit `cells` leave, then those cells."""
    product, attrs = _product_cells(provider, raw, f"{where}.breakdown")
    if explicit is None:
        return product, attrs
    named = {d for d in DIMENSIONS[provider] if isinstance(raw, Mapping) and d in raw}
    cells, more_attrs = _explicit_cells(provider, explicit, named, f"{where}.cells")
    attrs = {**more_attrs, **attrs}
    taken = sum((c.share for c in cells), Decimal(0))
    if taken > 1:
        raise ScenarioError(f"{where}.cells: shares add up to {taken}, more than the whole account (1)")
    if not named and taken != 1:
        raise ScenarioError(f"{where}.cells: without a breakdown the shares must add up to 1, not {taken}")
    if named and taken == 1:
        raise ScenarioError(f"{where}.cells: the shares take the whole account and leave the breakdown nothing")
    combos = {tuple(sorted(c.values.items())) for c in product} if named else set()
    for i, cell in enumerate(cells):
        if tuple(sorted(cell.values.items())) in combos:
            raise ScenarioError(f"{where}.cells[{i}]: {dict(cell.values)} is already a breakdown combination")
    scaled = tuple(Cell(c.values, c.share * (1 - taken)) for c in product) if named else ()
    return (*scaled, *cells), attrs


def _explicit_cells(
    provider: str, raw: object, named: set[str], where: str
) -> tuple[list[Cell], dict[str, dict[str, str | None]]]:
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{where}: a non-empty list of {{values: {{dimension: id | null}}, share}}")
    cells: list[Cell] = []
    attrs: dict[str, dict[str, str | None]] = {}
    seen: set[tuple[tuple[str, str | None], ...]] = set()
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("values"), Mapping) or "share" not in entry:
            raise ScenarioError(f"{at}: needs values (dimension -> id or null) and a share of the account")
        unknown = sorted(set(entry) - {"values", "share", "attrs"})
        if unknown:
            raise ScenarioError(f"{at}: unknown field {unknown[0]!r} (known: attrs, share, values)")
        values = dict(entry["values"])
        bad = sorted(set(values) - set(DIMENSIONS[provider]))
        if bad:
            raise ScenarioError(f"{at}.values: {provider} has no dimension {bad[0]!r}")
        wanted = named or set(cells[0].values if cells else values)
        if set(values) != wanted:
            raise ScenarioError(f"{at}.values: name every dimension the other cells name: {', '.join(sorted(wanted))}")
        if any(v is not None and not isinstance(v, str) for v in values.values()):
            raise ScenarioError(f"{at}.values: each id is a string or null")
        share = _decimal(entry["share"], f"{at}.share")
        if share == 0:
            raise ScenarioError(f"{at}.share: must be positive (leave the cell out instead)")
        key = tuple(sorted(values.items()))
        if key in seen:
            raise ScenarioError(f"{at}: the same values as an earlier cell")
        seen.add(key)
        cells.append(Cell(values, share))
        extra = entry.get("attrs")
        if extra is not None:
            described = isinstance(values.get("description"), str)
            if provider != "anthropic" or not isinstance(extra, Mapping) or not described:
                raise ScenarioError(f"{at}.attrs: only an Anthropic cell with a description has attrs")
            attrs[values["description"]] = {a: extra.get(a) for a in ANTHROPIC_ATTRS}
    return cells, attrs


def _product_cells(provider: str, raw: object, where: str) -> tuple[tuple[Cell, ...], dict[str, dict[str, str | None]]]:
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: breakdown maps a dimension to a list of {{id, weight}}")
    allowed = DIMENSIONS[provider]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where}: {provider} has no dimension {unknown[0]!r} (use {', '.join(allowed)})")
    axes: list[list[tuple[str, str | None, Decimal]]] = []
    attrs: dict[str, dict[str, str | None]] = {}
    for dim in allowed:
        entries = raw.get(dim)
        if entries is None:
            continue
        if not isinstance(entries, list) or not entries:
            raise ScenarioError(f"{where}.{dim}: a non-empty list of {{id, weight}}")
        axis: list[tuple[str, str | None, Decimal]] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "id" not in entry:
                raise ScenarioError(f"{where}.{dim}[{i}]: needs an id (null allowed for the default workspace)")
            ident = entry["id"]
            if ident is not None and not isinstance(ident, str):
                raise ScenarioError(f"{where}.{dim}[{i}].id: a string or null")
            axis.append((dim, ident, _decimal(entry.get("weight", 1), f"{where}.{dim}[{i}].weight")))
            if provider == "anthropic" and dim == "description" and ident is not None:
                attrs[ident] = {a: entry.get(a) for a in ANTHROPIC_ATTRS}
        if len({ident for _, ident, _ in axis}) != len(axis):
            raise ScenarioError(f"{where}.{dim}: ids must be unique")
        total = sum((w for _, _, w in axis), Decimal(0))
        if total <= 0:
            raise ScenarioError(f"{where}.{dim}: weights must not all be zero")
        axes.append([(d, ident, w / total) for d, ident, w in axis])
    cells = []
    for combo in itertools.product(*axes):
        share = Decimal(1)
        values: dict[str, str | None] = {}
        for dim, ident, weight in combo:
            share *= weight
            values[dim] = ident
        cells.append(Cell(values, share))
    return tuple(cells), attrs


_ACCOUNT_FIELDS = frozenset(
    {
        "provider",
        "label",
        "key",
        "team_id",
        "spend",
        "breakdown",
        "cells",
        "spending_limit_usd",
        "prepaid_credit_usd",
        "notes",
    }
    | {"spend_limit_usd", "project_spend_limits"}  # OpenAI hard spend limits
)


def _account(raw: object, where: str) -> Account:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: must be an object")
    unknown = sorted(set(raw) - _ACCOUNT_FIELDS)
    if unknown:
        raise ScenarioError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_ACCOUNT_FIELDS))})")
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise ScenarioError(f"{where}.provider: one of {', '.join(PROVIDERS)}")
    label, key = raw.get("label"), raw.get("key")
    if not isinstance(label, str) or not label or not isinstance(key, str) or not key:
        raise ScenarioError(f"{where}: label and key are required strings")
    team_id = raw.get("team_id")
    if provider == "xai" and (not isinstance(team_id, str) or not team_id):
        raise ScenarioError(f"{where}.team_id: every xAI account needs a team_id")
    cells, attrs = _cells(provider, raw.get("breakdown"), raw.get("cells"), where)
    limit = raw.get("spending_limit_usd")
    return Account(
        provider=provider,
        label=label,
        key=key,
        spend=_spend(raw.get("spend"), f"{where}.spend"),
        cells=cells,
        attrs=attrs,
        team_id=team_id if provider == "xai" else None,
        spending_limit_usd=_decimal(limit, f"{where}.spending_limit_usd") if limit is not None else None,
        prepaid_credit_usd=_decimal(raw.get("prepaid_credit_usd", 0), f"{where}.prepaid_credit_usd"),
        **_spend_limits(provider, raw, where),
    )


def _spend_limits(provider: str, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """OpenAI `spend_limit_usd` and `project_spend_limits` ({project id: USD, or null for a 404})."""
    org, projects = raw.get("spend_limit_usd"), raw.get("project_spend_limits", {})
    if provider != "openai":
        if org is not None or projects:
            raise ScenarioError(f"{where}: spend_limit_usd and project_spend_limits are OpenAI fields")
        return {}
    if not isinstance(projects, Mapping) or not all(isinstance(p, str) and p for p in projects):
        raise ScenarioError(f"{where}.project_spend_limits: maps a project id to USD (null: no limit, a 404)")
    return {
        "spend_limit_usd": None if org is None else _decimal(org, f"{where}.spend_limit_usd"),
        "project_spend_limits": {
            p: None if v is None else _decimal(v, f"{where}.project_spend_limits.{p}") for p, v in projects.items()
        },
    }


def _teams(raw: object, where: str) -> tuple[ScenarioTeam, ...]:
    """The `teams` block: `{name: {"match": {provider: {selector: [...]}}, "notes"?}}`, checked strictly.

    The shape is checked strictly (providers, selectors, non-empty string lists). An account or provider
    the scenario does not serve selects nothing: tests trim copies of the demo to a few accounts and keep
    its teams. Gemini's spend is the export rows passed to the expected_* sums.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: maps a team name to {{match: {{provider: selectors}}}}")
    teams = []
    for name, body in raw.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not name or name == UNASSIGNED:
            raise ScenarioError(f"{at}: a team needs a non-empty name other than {UNASSIGNED!r}")
        if not isinstance(body, Mapping) or not isinstance(body.get("match"), Mapping) or not body["match"]:
            raise ScenarioError(f"{at}: needs a non-empty match {{provider: selectors}}")
        unknown = sorted(set(body) - {"match", "notes"})
        if unknown:
            raise ScenarioError(f"{at}: unknown field {unknown[0]!r} (known: match, notes)")
        parts = tuple(_team_part(p, sel, f"{at}.match.{p}") for p, sel in body["match"].items())
        match = {part.provider: {k: list(v) for k, v in part.selectors.items()} for part in parts}
        teams.append(ScenarioTeam(name=name, parts=parts, match=match, notes=str(body.get("notes", ""))))
    return tuple(teams)


def _team_part(provider: object, raw: object, where: str) -> TeamPart:
    if provider not in TEAM_SELECTORS:
        raise ScenarioError(f"{where}: no provider {provider!r} (use {', '.join(TEAM_SELECTORS)})")
    assert isinstance(provider, str)
    allowed = TEAM_SELECTORS[provider]
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: maps a selector ({', '.join(allowed)}) to a list of strings")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where}: {provider} has no selector {unknown[0]!r} (use {', '.join(allowed)})")
    selectors: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise ScenarioError(f"{where}.{name}: a non-empty list of non-empty strings")
        selectors[name] = tuple(values)
    return TeamPart(provider=provider, selectors=selectors)
