"""The budget document: its schema (built from the provider registry), parsed strictly, errors naming the fix."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

import providers
from config._teams import (
    IMPLICIT_DESTINATION,
    Destination,
    MatchTable,
    Team,
    UsdThresholds,
    WeeklyReport,
    check_document,
    dynamic_fields,
)
from errors import ConfigError
from providers import Account, ProviderSpec, TeamMatch, Usd

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_EXPLAINED",
    "BudgetConfig",
    "Destination",
    "Digest",
    "ProviderBudget",
    "ProviderTable",
    "Spike",
    "Team",
    "WeeklyReport",
    "document_schema",
    "parse_budget_config",
    "repeated",
]

# --- the budget document ---------------------------------------------------------------------


def _percent(v: Decimal) -> Decimal:
    if not v.is_finite() or not (0 < v <= 1000):
        raise ValueError("each threshold is a percentage of budget with 0 < p <= 1000, e.g. 80")
    return v


Percent = Annotated[Decimal, AfterValidator(_percent)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


A = TypeVar("A", bound=Account)


class ProviderBudget(_Strict, Generic[A]):
    budget_usd: Usd | None = None
    thresholds_usd: UsdThresholds = ()
    notify: tuple[str, ...] = ()  # the destinations of its alerts and its accounts' (default: the default)
    accounts: tuple[A, ...] = ()

    @model_validator(mode="after")
    def _accounts(self) -> ProviderBudget[A]:
        dupes = repeated(a.label for a in self.accounts)
        if dupes:
            shown = ", ".join(dupes[:10]) + (f" and {len(dupes) - 10} more" if len(dupes) > 10 else "")
            raise ValueError(f"account labels must be unique; repeated: {shown}")
        return self


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted; one pass over `values` (40k labels: linear)."""
    counts = Counter(values)
    return sorted(v for v, n in counts.items() if n > 1)


class Spike(_Strict):
    factor: Decimal = Field(default=Decimal(2), gt=1, le=1000)
    min_usd: Decimal = Field(default=Decimal(10), ge=0, le=Decimal("1e12"))
    baseline_days: int = Field(default=7, ge=3, le=28)


class Digest(_Strict):
    enabled: bool = True
    hour_utc: int = Field(default=9, ge=0, le=23)


class ProviderTable(_Strict):
    """The budget document's `providers`: one optional field per registered provider (`document_schema`)."""

    def configured(self) -> dict[str, ProviderBudget[Any]]:
        """The providers the document configures, in registry order."""
        return {name: pb for name in type(self).model_fields if (pb := getattr(self, name)) is not None}


class BudgetConfig(_Strict):
    """The budget document. See README "Configuration" for a complete example."""

    total_budget_usd: Usd
    thresholds_pct: tuple[Percent, ...] = (Decimal(50), Decimal(80), Decimal(100))
    forecast_thresholds_pct: tuple[Percent, ...] = (Decimal(100),)
    providers: ProviderTable
    spike: Spike = Spike()
    failure_notice_after_runs: int = Field(default=2, ge=1, le=48)
    digest: Digest = Digest()
    thresholds_usd: UsdThresholds = ()  # the total's dollar thresholds
    teams: dict[str, Team] = {}
    allow_overlap: bool = False  # True: a spend two teams match counts for both
    destinations: dict[str, Destination] = {}  # {} → one destination, "default", from SLACK_WEBHOOK_*
    default_destination: str | None = None  # required with several destinations
    copy_all_to_default: bool = False  # the default destination also gets every routed alert
    weekly_report: WeeklyReport | None = None

    @field_validator("thresholds_pct", "forecast_thresholds_pct")
    @classmethod
    def _sorted(cls, v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _complete(self) -> BudgetConfig:
        configured = self.configured()
        if not configured:
            known = ", ".join(type(self.providers).model_fields)
            raise ValueError(f"providers: configure at least one of {known}")
        for name, pb in configured.items():
            if pb.budget_usd is None:
                raise ValueError(
                    f"providers.{name}.budget_usd is missing: every configured provider needs a "
                    f'monthly budget in USD, e.g. "budget_usd": 500'
                )
            need = providers.spec(name).accounts_required
            if need is not None and not pb.accounts:
                raise ValueError(f"providers.{name}.accounts: list at least one account with its {need}")
        check_document(self)
        return self

    def destination_names(self) -> tuple[str, ...]:
        """The destinations, in document order ("default" alone when the document names none)."""
        return tuple(self.destinations) or (IMPLICIT_DESTINATION,)

    @property
    def default_dest(self) -> str:
        """The destination of whatever no budget routes elsewhere."""
        return self.default_destination or self.destination_names()[0]

    def cell_dims(self) -> dict[str, tuple[str, ...]]:
        """Per provider, the cell dimensions the check must keep joint: those the teams' matches
        read, and with a weekly report the vendor's mover dimensions."""
        out: dict[str, set[str]] = {}
        for team in self.teams.values():
            for provider, block in team.match.blocks().items():
                out.setdefault(provider, set()).update(block.dims())
        if self.weekly_report is not None:
            for provider in self.configured():
                out.setdefault(provider, set()).update(providers.spec(provider).mover_dims)
        return {p: tuple(sorted(d)) for p, d in out.items()}

    def reached(self, provider: str, block: TeamMatch) -> tuple[str, ...]:
        """The labels of the accounts a team's `match.<provider>` block reaches: those it names, else all."""
        return block.accounts or tuple(a.label for a in self.accounts(provider))

    def owner_ids(self) -> dict[str, frozenset[str]]:
        """Per account scope (`<provider>/<label>`), the owner ids (projects, workspaces) the teams name there."""
        out: dict[str, set[str]] = {}
        for team in self.teams.values():
            for provider, block in team.match.blocks().items():
                ids = block.ids()
                for label in self.reached(provider, block) if ids else ():
                    out.setdefault(f"{provider}/{label}", set()).update(ids or ())
        return {scope: frozenset(ids) for scope, ids in out.items()}

    def configured(self) -> dict[str, ProviderBudget[Any]]:
        """The configured providers, in registry order."""
        return self.providers.configured()

    def accounts(self, provider: str) -> tuple[Account, ...]:
        pb = self.configured()[provider]
        if pb.accounts:
            return tuple(pb.accounts)
        # A provider with no account list has one "default" account (keyed by its default env var).
        return providers.spec(provider).default_accounts()


@functools.cache
def document_schema(specs: tuple[ProviderSpec, ...]) -> type[BudgetConfig]:
    """The budget document's model for these providers: `providers.<name>` is a `ProviderBudget` of
    each spec's account schema. Built once per spec tuple, so a provider registered for a test
    takes effect at the next parse."""
    fields: dict[str, Any] = {s.name: (ProviderBudget[s.account_schema] | None, None) for s in specs}  # type: ignore[name-defined]
    table = create_model("Providers", __base__=ProviderTable, **fields)
    match = create_model("TeamMatch", __base__=MatchTable, **dynamic_fields(specs))
    team = create_model("Team", __base__=Team, match=(match, ...))
    schema: type[BudgetConfig] = create_model(
        "BudgetConfig",
        __base__=BudgetConfig,
        providers=(table, ...),
        teams=(dict[str, team], {}),  # type: ignore[valid-type]
    )
    return schema


MAX_DOCUMENT_BYTES = 1024 * 1024
"""A budget document is at most 1 MiB (the example is 2 KiB; 40,000 accounts of bare labels are
0.8 MiB): a larger one is refused before it is parsed. Checks are linear: that document validates
in about 0.5 s (`python -m bench.budget_document`)."""
MAX_DEPTH = 32
"""Nesting levels allowed (a budget document needs 5: document, providers, provider, accounts,
account). Checked before `json.loads`, whose recursion a deeply nested document would exhaust."""
MAX_EXPLAINED = 20  # validation problems listed one by one; the rest are counted
# A string (possessive, so never rescanned; an unterminated one runs to the end instead of failing
# and being retried from each later quote, which would be quadratic), or a bracket.
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)|[\[\]{}]')


def parse_budget_config(raw: str | bytes, *, origin: str) -> BudgetConfig:
    """Parse and validate the budget document; errors name the field (or the byte) and the fix.

    Every malformed document is a `ConfigError`, in time linear in its size: too large, not UTF-8,
    nested too deep, not JSON, a key given twice in one object, or a value that fails validation.
    """
    text = _document_text(raw, origin)
    _check_depth(text, origin)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except _DuplicateKey as exc:
        raise ConfigError(
            f'{origin}: the key "{_clip(exc.key)}" appears twice in one object (JSON would keep only the '
            "last one silently): remove or rename one"
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise ConfigError(f"{origin}: not valid JSON: a number has more than 4300 digits") from None
    try:
        return document_schema(providers.specs()).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: invalid budget configuration:\n{_explain(exc)}") from None


def _too_large(origin: str, size: str | None) -> ConfigError:
    what = f"is {size}, larger than" if size else "is larger than"
    return ConfigError(
        f"{origin}: the budget document {what} the limit of 1 MiB ({MAX_DOCUMENT_BYTES:,} bytes); "
        "list fewer accounts or remove what is not configuration"
    )


def _document_text(raw: str | bytes, origin: str) -> str:
    """The document as text: at most MAX_DOCUMENT_BYTES of UTF-8 (a leading BOM is dropped)."""
    if isinstance(raw, str):
        if len(raw) > MAX_DOCUMENT_BYTES:  # a character is at least one byte
            raise _too_large(origin, f"{len(raw):,} characters")
        # os.environ carries undecodable bytes as lone surrogates: back to bytes to find the first one.
        data = _escaped_bytes(raw, origin) if _has_surrogates(raw) else None
        if data is None:
            size = len(raw.encode("utf-8"))
            if size > MAX_DOCUMENT_BYTES:
                raise _too_large(origin, f"{size:,} bytes")
            return raw.removeprefix("\ufeff")
        raw = data
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _too_large(origin, None)  # a file is read up to one byte past the limit, no further
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{origin}: not UTF-8 text: byte offset {exc.start} (line {line}) is 0x{raw[exc.start]:02x}; "
            "save the document as UTF-8"
        ) from None


def _escaped_bytes(text: str, origin: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a surrogate no undecodable byte turns into (not from os.environ)
        raise ConfigError(f"{origin}: not UTF-8 text: character {exc.start} is a lone surrogate") from None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_depth(text: str, origin: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, in one pass that skips strings (brackets in a string
    are not nesting)."""
    depth = 0
    for m in _JSON_TOKEN_RE.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                raise ConfigError(
                    f"{origin}: nested deeper than {MAX_DEPTH} levels (line {line}, column {column}); "
                    "a budget document needs 5 (document, providers, provider, accounts, account)"
                )
        elif token in "]}":
            depth -= 1


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _segment(p: object) -> str:
    """A path segment as written, quoted when it is not a plain name or index (so an empty key shows as "")."""
    s = str(p)
    return s if re.fullmatch(r"[A-Za-z0-9_]+", s) else json.dumps(s)


def _explain(exc: ValidationError) -> str:
    lines = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors[:MAX_EXPLAINED]:
        path = ".".join(_segment(p) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = 'is not a known setting (check the spelling against README "Configuration")'
        lines.append(f"  - {path or '(document)'}: {msg}")
    if len(errors) > MAX_EXPLAINED:
        lines.append(f"  - …and {len(errors) - MAX_EXPLAINED} more problems of the same kinds")
    return "\n".join(lines)
