"""The one shape every vendor module declares (`SPEC = ProviderSpec(...)`), and what sources are built from.

A leaf: imports pydantic, httpx, `models` and `providers._http` only. Vendor modules import this module,
never the `providers` package and never `config`, so `config` can build the budget document's
schema from the registry without an import cycle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Protocol

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from models import UTC, BillingPeriod, CostReport, Deadline
from providers._http import make_client

__all__ = [
    "ENV_NAME_RE",
    "LABEL_RE",
    "SECRET_NAME_RE",
    "Account",
    "CostSource",
    "Deps",
    "KeyedAccount",
    "Memo",
    "Probe",
    "ProbeResult",
    "ProbeStatus",
    "ProviderSpec",
    "SecretSource",
    "TeamMatch",
    "Usd",
    "admin_key",
    "glob_patterns",
]

SECRET_NAME_RE = re.compile(r"^projects/[^/\s]+/secrets/[A-Za-z0-9_-]{1,255}/versions/(latest|[0-9]+)$")
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _positive(v: Decimal) -> Decimal:
    if not v.is_finite() or not (Decimal("0.01") <= v <= Decimal("1e12")):
        raise ValueError('must be a positive amount of US dollars from 0.01 to 1000000000000, e.g. 500 or "1250.00"')
    return v


Usd = Annotated[Decimal, AfterValidator(_positive)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Strict):
    """One organisation / team / billing account of a provider."""

    label: str = "default"
    budget_usd: Usd | None = None
    thresholds_usd: tuple[Usd, ...] = ()  # alert once a month at each of these month-to-date amounts
    notify: tuple[str, ...] = ()  # the destinations its alerts go to (default: its provider's)

    @field_validator("thresholds_usd")
    @classmethod
    def _usd_thresholds(cls, v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        return tuple(sorted(set(v)))

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not LABEL_RE.match(v):
            raise ValueError("use 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit")
        return v


class KeyedAccount(Account):
    """An account whose admin key is a secret: `key_secret` in the cloud, `key_env` locally."""

    key_secret: str | None = Field(default=None, description="projects/P/secrets/S/versions/latest")
    key_env: str | None = Field(default=None, description="environment variable holding the key")

    @field_validator("key_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and not SECRET_NAME_RE.match(v):
            raise ValueError("must be a Secret Manager version name: projects/P/secrets/S/versions/latest")
        return v

    @field_validator("key_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME_RE.match(v):
            raise ValueError("must be an environment variable name such as OPENAI_ADMIN_KEY")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> KeyedAccount:
        if self.key_secret and self.key_env:
            raise ValueError("set either key_secret (cloud) or key_env (local), not both")
        return self


def glob_patterns(v: tuple[str, ...]) -> tuple[str, ...]:
    """A team match's patterns: case-sensitive globs (`fnmatch.fnmatchcase`), none empty."""
    for p in v:
        if not p.strip():
            raise ValueError('a pattern is empty: use a glob such as "gpt-5.4*"')
        if len(p) > 200:
            raise ValueError(f"pattern {p[:40]!r}... is longer than 200 characters")
    return v


class TeamMatch(_Strict):
    """What a team takes of one provider's spend (`teams.<team>.match.<provider>`).

    `accounts` narrows to those accounts (default: every account of the provider). A vendor whose
    billing data carries owner dimensions (projects, workspaces, SKUs) declares a subclass that adds
    its selectors as fields and names them in `ID_FIELD` (owner ids: a cell's value must be one of
    them) and `PATTERN_FIELDS` (globs: a cell's value must match one); ids and every pattern list must
    all hold. With none, the team owns the whole of each account it names.
    """

    ID_FIELD: ClassVar[tuple[str, str] | None] = None  # (field, cell dimension)
    PATTERN_FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()  # ((field, cell dimension), ...)
    NULL_ID: ClassVar[str | None] = None  # how a match names a cell whose owner the provider sent as null

    accounts: tuple[str, ...] = ()

    def _owner_ids(self) -> tuple[str, ...]:
        return tuple(getattr(self, self.ID_FIELD[0])) if self.ID_FIELD else ()

    def _patterns(self) -> list[tuple[str, tuple[str, ...]]]:
        """(cell dimension, patterns) for every pattern field given."""
        return [(dim, ps) for field, dim in self.PATTERN_FIELDS if (ps := tuple(getattr(self, field)))]

    def dims(self) -> tuple[str, ...]:
        """The cell dimensions `selects` reads (what the source must keep joint)."""
        ids = (self.ID_FIELD[1],) if self.ID_FIELD and self._owner_ids() else ()
        return (*ids, *(dim for dim, _ in self._patterns()))

    def ids(self) -> frozenset[str] | None:
        """The owner ids it names, for the load-time overlap check; None: every cell of its accounts."""
        return frozenset(self._owner_ids()) or None

    def has_selectors(self) -> bool:
        return bool(self.dims())

    def selects(self, cell: Mapping[str, str | None]) -> bool:
        """Whether a cell (dimension → value, None for a provider's null) is this team's."""
        ids = self._owner_ids()
        if ids and self.ID_FIELD is not None and (cell.get(self.ID_FIELD[1]) or self.NULL_ID) not in ids:
            return False
        return all(self._glob(cell.get(dim), ps) for dim, ps in self._patterns())

    @staticmethod
    def _glob(value: str | None, patterns: tuple[str, ...]) -> bool:
        return not patterns or (value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns))


class SecretSource(Protocol):
    """What `Deps.secrets` offers; `config.SecretResolver` is the implementation."""

    stripped: set[str]

    def get(self, *, secret: str | None, env_name: str | None, what: str, time_left: float | None = None) -> str:
        """The value of `secret` (a Secret Manager version name) or of the variable `env_name`."""
        ...


class CostSource(Protocol):
    """What every provider module offers for one account."""

    provider: str

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        """The provider's billing month that contains `now`."""
        ...

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        """Month-to-date cost for `period`, or raise `ProviderError`."""
        ...


class Memo(Protocol):
    """Small JSON documents a source keeps between checks (a paid read's last answer); `source_cache` implements it.

    Best effort by contract: `load` answers None when nothing usable is stored, `save` never raises.
    """

    def load(self, key: str) -> Mapping[str, Any] | None: ...

    def save(self, key: str, doc: Mapping[str, Any]) -> None: ...


@dataclasses.dataclass
class Deps:
    """What sources are built from. Passed in, never reached for, so tests and benchmarks swap them."""

    secrets: SecretSource
    base_urls: Mapping[str, str]
    bigquery_job_project: str | None = None
    bigquery_emulator_host: str | None = None
    http_factory: Callable[..., httpx.Client] = make_client
    bigquery_factory: Callable[[str | None], Any] | None = None
    deep_scan_hour_utc: int | None = None  # the UTC hour whose check also runs a source's daily deep query
    memo: Memo | None = None  # None: nothing is kept between checks (every check fetches)
    cell_dims: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Per provider, the dimensions its report keeps joint in `CostReport.cells` (team matches, weekly
    movers); `check.fetch_all` sets it from the budget document. A provider not named keeps none."""
    owner_ids: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    """Per account scope (`openai/prod`), the owner ids the budget document's teams name there (projects,
    workspaces); `check.fetch_all` sets it. The OpenAI source reads those projects' spend limits."""
    past_as_of: dt.datetime | None = None
    """Set for a previous-period fetch (the weekly report's history): the check's instant. That
    period's `now` is its last second, so a source with its own as-of cutoff reads up to this instead,
    and rows exported after the period ended (billed on it) are counted."""


def admin_key(
    deps: Deps, default_env: str | None, account: KeyedAccount, what: str, deadline: Deadline | None = None
) -> str:
    """The account's key: its Secret Manager version, else its env var, else the provider's `default_env`.

    With `deadline`, a Secret Manager read is cut to the time the check has left.
    """
    env_name = account.key_env or (None if account.key_secret else default_env)
    time_left = deadline.remaining() if deadline is not None else None
    return deps.secrets.get(
        secret=account.key_secret, env_name=env_name, what=f"{what} ({account.label})", time_left=time_left
    )


ProbeStatus = Literal["ok", "warn", "skip", "fail"]
ProbeResult = tuple[ProbeStatus, str, dict[str, Any]]
Probe = Callable[[Any, Deps, dt.datetime, Deadline], ProbeResult]
"""`doctor`'s one read call for an account: (status, detail, facts), or raise `ProviderError`."""


@dataclasses.dataclass(frozen=True)
class ProviderSpec:
    """Everything the rest of the product knows about one vendor. One per `providers/<name>.py`."""

    name: str  # budget-document key and scope prefix
    title: str  # how messages name it
    console_url: str  # where a person looks at the spend
    account_schema: type[Account]
    build: Callable[[Any, Deps], CostSource]
    key_env: str | None = None  # default key variable of a keyed account that names none
    base_url_env: str | None = None  # the variable that points the source at another host (Terraform sets it)
    default_base_url: str | None = None
    month_tz: dt.tzinfo = UTC
    month_wording: str = "UTC month"
    month_note: str | None = None  # the footer's note when billing months differ
    accounts_required: str | None = None  # the field every account must name; None: one default account
    client_imports: tuple[str, ...] = ()  # imported on the main thread before the fetch threads
    probe: Probe | None = None  # doctor's read call; None: the doctor row says "skip"
    team_match: type[TeamMatch] = TeamMatch  # what `teams.<t>.match.<name>` may select (default: accounts)
    mover_dims: tuple[str, ...] = ()  # the cell dimensions the weekly report ranks movers by
    past_months: bool = True  # `fetch` reads a complete past billing period (the weekly report's history)
    owner_words: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False, compare=False)
    """Cell dimension → how messages name one of its values ("project", "SKU")."""

    def default_accounts(self) -> tuple[Account, ...]:
        """The accounts of a provider listed without `accounts`: one "default" account."""
        return (self.account_schema(),)
