"""Frozen value types shared by `providers/`, `alerts/` and `check.py`.

Money is `Decimal` USD everywhere; each provider normalises its own units before building these.
Instants are tz-aware UTC `datetime`s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from zoneinfo import ZoneInfo

from errors import Cause

__all__ = [
    "CENT",
    "PACIFIC",
    "UTC",
    "ZERO",
    "AccountRef",
    "BillingPeriod",
    "BreakdownLine",
    "CostCell",
    "CostReport",
    "DailyCost",
    "Deadline",
    "Freshness",
    "Headroom",
    "SourceResult",
    "Status",
    "cents",
    "require_aware",
    "usd",
    "usd_plain",
]

UTC = dt.UTC
PACIFIC = ZoneInfo("America/Los_Angeles")
ZERO = Decimal(0)
CENT = Decimal("0.01")


class Deadline:
    """The time a check has left, on a monotonic clock (part of every `CostSource.fetch` signature)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())


# --- money as people read it: one rounding rule for the JSON document, Slack and the CLI -----------
#
# Half a cent rounds away from zero (ROUND_HALF_UP), as invoices and spreadsheets round: $0.125 →
# $0.13, -$0.005 → -$0.01. Banker's rounding (Decimal's default, ROUND_HALF_EVEN) would show $0.12
# for the same amount in one place and $0.13 in another. Only what is *shown* is rounded: budgets
# are evaluated on the exact sums.


def cents(v: Decimal) -> Decimal:
    """`v` rounded to the cent, half away from zero; never `-0.00`."""
    if not v.is_finite():
        raise ValueError(f"not an amount of money: {v}")
    with localcontext() as ctx:  # enough digits that a huge amount quantizes instead of raising
        ctx.prec = max(ctx.prec, v.adjusted() + 4)
        q = v.quantize(CENT, ROUND_HALF_UP)
    return q if q else abs(q)


def usd_plain(v: Decimal) -> str:
    """`1234.57`: the rounded decimal string the JSON document carries next to the exact one."""
    return format(cents(v), "f")


def usd(v: Decimal) -> str:
    """`$1,234.57` / `-$0.01`: how Slack and the CLI show an amount."""
    q = cents(v)
    return f"-${-q:,.2f}" if q < 0 else f"${q:,.2f}"


def require_aware(now: dt.datetime) -> dt.datetime:
    """Return `now` in UTC; a naive datetime is a programming error."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("time must be timezone-aware (pass an instant with an offset, e.g. ...Z)")
    return now.astimezone(UTC)


@dataclasses.dataclass(frozen=True)
class BillingPeriod:
    """One provider's billing month: calendar month `year`-`month` in `tz`, from `start` to `now`.

    Most sources bill by UTC month; one billed by the US Pacific invoice month (`ProviderSpec.month_tz`)
    is still in the previous month for the first hours of a UTC month.
    """

    year: int
    month: int
    tz_name: str
    start: dt.datetime  # first instant of the month, in UTC
    end: dt.datetime  # first instant of the next month, in UTC
    now: dt.datetime  # the check's instant, in UTC (start <= now < end)

    @classmethod
    def containing(cls, now: dt.datetime, tz: dt.tzinfo = UTC) -> BillingPeriod:
        now = require_aware(now)
        local = now.astimezone(tz)
        start_local = dt.datetime(local.year, local.month, 1, tzinfo=tz)
        ny, nm = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end_local = dt.datetime(ny, nm, 1, tzinfo=tz)
        return cls(
            year=local.year,
            month=local.month,
            tz_name=str(tz) if tz is not UTC else "UTC",
            start=start_local.astimezone(UTC),
            end=end_local.astimezone(UTC),
            now=now,
        )

    @property
    def key(self) -> str:
        """`YYYY-MM`, the month key alert state is filed under."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def days_in_month(self) -> int:
        ny, nm = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return (dt.date(ny, nm, 1) - dt.date(self.year, self.month, 1)).days

    @property
    def tz(self) -> dt.tzinfo:
        return UTC if self.tz_name == "UTC" else ZoneInfo(self.tz_name)

    def local_day(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.tz).date()

    @property
    def today(self) -> dt.date:
        return self.local_day(self.now)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days_in_month - 1)


@dataclasses.dataclass(frozen=True)
class DailyCost:
    """Spend on one billing-timezone day."""

    day: dt.date
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class BreakdownLine:
    """Month-to-date spend of one model / project / workspace / SKU."""

    dimension: str  # "model", "line_item", "project", "workspace", "sku"
    key: str
    amount: Decimal


Dims = tuple[tuple[str, str | None], ...]
"""A cell's dimensions, sorted by name: (dimension, value), None where the provider sent null."""


@dataclasses.dataclass(frozen=True)
class CostCell:
    """Spend of one billing day on one joint combination of the dimensions a check asked to keep
    (`Deps.cell_dims`: what team matches and the weekly report's movers need).

    Kept joint, not as per-dimension marginals, so "project P *and* line item L" can be summed
    exactly; a provider's null stays None (a row of no project, a default workspace that has no id).
    """

    day: dt.date
    dims: Dims
    amount: Decimal

    def get(self, dimension: str) -> str | None:
        for name, value in self.dims:
            if name == dimension:
                return value
        return None


@dataclasses.dataclass(frozen=True)
class Freshness:
    """How current a number is: `as_of` is the newest instant the provider's data covers.

    `missing_from` is set by a source that has not reported every day up to today (a source serving
    complete days only): that day and every later one are *missing*, not $0, so the rules neither
    count them as quiet days nor look for spikes in them. None means the data reaches today.
    """

    as_of: dt.datetime | None
    note: str | None = None
    missing_from: dt.date | None = None

    @property
    def complete_through(self) -> dt.date | None:
        """The last day the data covers when it stops short of today (`missing_from` − 1 day)."""
        return None if self.missing_from is None else self.missing_from - dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Headroom:
    """A provider's own spending limit and how much of it is left (a postpaid spending limit)."""

    limit_usd: Decimal
    used_usd: Decimal | None
    remaining_usd: Decimal | None
    source: str  # what the limit is, in the provider's words
    name: str = ""  # "" for the account's own limit; else what it limits, e.g. "project proj_abc"
    match: tuple[tuple[str, str], ...] = ()  # the cells a sub-account limit covers, e.g. (("project", "proj_abc"),)
    enforcing: bool | None = None  # the provider says it is refusing requests now (None: not said)
    refusal: str | None = None  # what requests get once it is reached, in the provider's words, e.g. "429
    # (`project_spend_limit_exceeded`)"; None: reaching it refuses nothing we know of (no limit alert)
    basis: str = ""  # how `used_usd` is measured when that is not the provider's own count of it


@dataclasses.dataclass(frozen=True)
class CostReport:
    """What a provider fetch returns on success. `mtd_usd` is the sum of `daily`."""

    period: BillingPeriod
    mtd_usd: Decimal
    daily: tuple[DailyCost, ...]
    breakdown: tuple[BreakdownLine, ...]  # all lines, largest first
    freshness: Freshness
    partial_reason: str | None = None  # set when the provider says its data is truncated
    headroom: Headroom | None = None
    notes: tuple[str, ...] = ()
    requests: int = 0  # HTTP requests / queries made for this report
    cells: tuple[CostCell, ...] = ()  # by (day, dims), over `cell_dims`; their sum is `mtd_usd`
    cell_dims: tuple[str, ...] | None = None  # the dimensions `cells` keep; None: no cells were kept
    limits: tuple[Headroom, ...] = ()  # the provider's limits below the account (e.g. per project)


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class AccountRef:
    provider: str
    label: str

    @property
    def scope(self) -> str:
        return f"{self.provider}/{self.label}"


@dataclasses.dataclass(frozen=True)
class SourceResult:
    """One account's outcome in a check: a report, or a classified failure. Never a silent $0."""

    account: AccountRef
    period: BillingPeriod
    report: CostReport | None = None
    cause: Cause | None = None
    error: str | None = None  # safe message, no secrets
    elapsed_s: float = 0.0

    @property
    def status(self) -> Status:
        return Status.OK if self.report is not None else Status.FAILED

    @property
    def partial(self) -> bool:
        return self.report is None or self.report.partial_reason is not None
