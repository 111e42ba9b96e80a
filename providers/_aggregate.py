"""Aggregate cost rows as pages arrive: memory grows with days × breakdown keys, never with pages."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from errors import Cause, ProviderError
from models import ZERO, BillingPeriod, BreakdownLine, CostCell, CostReport, DailyCost, Deadline, Dims, Freshness
from providers._http import ResponseTooLarge, pages, request_json

__all__ = [
    "ABSURD_DAILY_USD",
    "MAX_DIGITS",
    "CostAccumulator",
    "PageParse",
    "fetch_month",
    "to_decimal",
]

ABSURD_DAILY_USD = Decimal(1_000_000)
MAX_DIGITS = 15  # |value| >= 1e15: beyond this a value is a unit/shape fault (and would overflow Decimal sums)


def reject_error_envelope(doc: dict[str, Any], endpoint: str) -> None:
    """Raise BAD_RESPONSE for an error body that came back with HTTP 200, in any of the shapes the
    vendors use: `{"error": ...}` (OpenAI, xAI), `{"type": "error", "error": {...}}` (Anthropic), or
    a google.rpc.Status `{"code": ..., "message": ...}` as gRPC gateways render it."""
    if "error" in doc or doc.get("type") == "error":
        err = doc.get("error")
        detail = (err.get("message") or err.get("type") or "") if isinstance(err, dict) else (err or "")
        raise ProviderError(Cause.BAD_RESPONSE, f"{endpoint}: error envelope in a 200 answer: {str(detail)[:200]}")
    if "code" in doc and "message" in doc:
        raise ProviderError(
            Cause.BAD_RESPONSE, f"{endpoint}: error status in a 200 answer: {str(doc['message'])[:200]}"
        )


def str_or_none(value: Any) -> str | None:
    """A breakdown label: the string, or None for anything else (an absent or null grouping)."""
    return value if isinstance(value, str) else None


def to_decimal(value: Any, *, what: str) -> Decimal:
    """Parse a JSON money value strictly: numbers and numeric strings only, finite.

    Floats go through `str()` so 0.1 stays 0.1 (not 0.1000000000000000055...). Booleans, objects,
    null and NaN/Infinity are a drifted shape.
    """
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected a number, got {type(value).__name__}")
    if isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected a number, got {type(value).__name__}")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: {text[:40]!r} is not a number") from None
    if not d.is_finite():
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: {text[:40]!r} is not a finite number")
    if d.adjusted() >= MAX_DIGITS:  # no context arithmetic: abs() itself would overflow on 1e999999999
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: {text[:40]!r} is out of any plausible range")
    return d


class CostAccumulator:
    """Sums USD amounts per day of a billing period, per breakdown key and, over `cell_dims` only,
    per (day, joint dimensions): memory is days × the joint keys asked for, never pages. With no
    `cell_dims` (no team match or weekly report needs them) the cells are one per day."""

    def __init__(self, period: BillingPeriod, cell_dims: tuple[str, ...] | None = None) -> None:
        self.period = period
        self.cell_dims = tuple(sorted(set(cell_dims))) if cell_dims is not None else None
        self._daily: dict[dt.date, Decimal] = defaultdict(Decimal)
        self._lines: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self._cells: dict[tuple[dt.date, Dims], Decimal] = defaultdict(Decimal)
        self.rows = 0
        self.negative_rows = 0

    def add(
        self,
        day: dt.date,
        usd: Decimal,
        dims: dict[str, str | None] | None = None,
        *,
        raw: dict[str, str | None] | None = None,
    ) -> None:
        """Add one row. `dims` label the breakdown (a null shown as "(none)"); `raw` are the
        provider's own values for cells, when they differ from the labels (default: `dims`)."""
        if not (self.period.first_day <= day <= self.period.last_day):
            return  # a bucket outside this billing month (a provider's partial first bucket is inside)
        self.rows += 1
        if usd < 0:
            self.negative_rows += 1
        self._daily[day] += usd
        for dim, key in (dims or {}).items():
            self._lines[(dim, key if key else "(none)")] += usd
        if self.cell_dims is not None:
            values = raw if raw is not None else (dims or {})
            self._cells[(day, tuple((d, values.get(d)) for d in self.cell_dims))] += usd

    def cells(self) -> tuple[CostCell, ...]:
        """The kept cells, oldest day first; their sum is `total()` exactly (the same Decimal rows)."""
        return tuple(CostCell(day, dims, amt) for (day, dims), amt in sorted(self._cells.items(), key=_cell_order))

    def daily(self) -> tuple[DailyCost, ...]:
        """Every day from the 1st to today (zeros included), oldest first."""
        out = []
        day = self.period.first_day
        end = min(self.period.today, self.period.last_day)
        while day <= end:
            out.append(DailyCost(day, self._daily.get(day, ZERO)))
            day += dt.timedelta(days=1)
        return tuple(out)

    def total(self) -> Decimal:
        return sum(self._daily.values(), ZERO)

    def breakdown(self) -> tuple[BreakdownLine, ...]:
        lines = [BreakdownLine(dim, key, amt) for (dim, key), amt in self._lines.items()]
        lines.sort(key=lambda line: (line.dimension, -line.amount, line.key))
        return tuple(lines)

    def report(self, freshness: Freshness, *, requests: int) -> CostReport:
        """The month-to-date report of what was added (an empty accumulator is a real $0)."""
        return CostReport(
            period=self.period,
            mtd_usd=self.total(),
            daily=self.daily(),
            breakdown=self.breakdown(),
            freshness=freshness,
            notes=self.anomaly_notes(),
            requests=requests,
            cells=self.cells(),
            cell_dims=self.cell_dims,
        )

    def anomaly_notes(self) -> tuple[str, ...]:
        notes = []
        if self.negative_rows:
            notes.append(f"{self.negative_rows} negative amount(s) in the provider data: possible refund or unit error")
        if any(v > ABSURD_DAILY_USD for v in self._daily.values()):
            notes.append("a day above $1,000,000: possible unit error in the provider data (still alerted)")
        return tuple(notes)


def _cell_order(item: tuple[tuple[dt.date, Dims], Decimal]) -> tuple[dt.date, tuple[tuple[str, str], ...]]:
    (day, dims), _ = item
    return day, tuple((d, v or "") for d, v in dims)


PageParse = Callable[[dict[str, Any], "CostAccumulator"], None]


def fetch_month(
    client: httpx.Client,
    path: str,
    params: Sequence[tuple[str, str | int]],
    parse: PageParse,
    period: BillingPeriod,
    *,
    deadline: Deadline,
    limits: Sequence[int] = (31, 1),
    cell_dims: tuple[str, ...] | None = None,
) -> CostAccumulator:
    """GET every page of a bucketed cost listing (`limit` + `page` cursor) and aggregate it as it arrives.

    A whole month is normally one page of `limits[0]` buckets. If that page is too large for the
    response cap (a month of very heavy grouping), start over with `limits[1]` buckets per page:
    more requests, each small.
    """
    for i, limit in enumerate(limits):
        acc = CostAccumulator(period, cell_dims)

        def fetch_page(cursor: str | None, limit: int = limit) -> dict[str, Any]:
            query = [*params, ("limit", limit)] + ([("page", cursor)] if cursor else [])
            return request_json(client, "GET", path, params=query, deadline=deadline)

        try:
            for page in pages(fetch_page):
                parse(page, acc)
            return acc
        except ResponseTooLarge:
            if i == len(limits) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
