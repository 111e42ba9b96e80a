"""5. Scale: parse-and-aggregate throughput and memory through the production parse functions.

A heavily grouped month (500 projects x 200 line items, every UTC day of December) is cut into
pages of JSON bytes held in memory, then driven page by page through the production pagination
helper (`providers._http.pages`), `json.loads` (what `request_json` does with a body) and the
provider's parse function into one `CostAccumulator`, exactly as a fetch aggregates pages as they
arrive. 100,000 rows is the unit; CPU time is `time.process_time`, memory `tracemalloc`'s peak.
Every run also checks the total to the last digit against the generator's own `Decimal` sum.

Pages are cut by rows here (the real APIs cut by day buckets: with `limit=31` a month is one page);
the single-page case is measured too, because that is the shape production sees.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench._common import Figure, Section

ROWS = 100_000
PROJECTS, LINE_ITEMS = 500, 200
DAYS = 31
CPU_TARGET_S = 1.0
FLAT_TARGET = 1.10
MONTH_START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _keys(i: int) -> tuple[int, str, str]:
    # 7 and 13 are coprime with 500 and 200: any 500 consecutive rows use every project and line item,
    # so every page size used here sees the whole key space and the accumulator is equally large.
    return i % DAYS, f"proj_{(i * 7) % PROJECTS:03d}", f"model-{(i * 13) % LINE_ITEMS:03d}, output"


def _openai_rows(start: int, n: int) -> tuple[list[dict[str, Any]], Decimal]:
    buckets: dict[int, list[dict[str, Any]]] = {}
    total = Decimal(0)
    for i in range(start, start + n):
        day, project, item = _keys(i)
        units = (i * 7919) % 9_999_999 + 1  # 1e-8 dollars: the 8 decimals OpenAI floats carry
        total += Decimal(units).scaleb(-8)
        buckets.setdefault(day, []).append(
            {
                "object": "organization.costs.result",
                "amount": {"value": units / 1e8, "currency": "usd"},
                "line_item": item,
                "project_id": project,
            }
        )
    data = [
        {
            "object": "bucket",
            "start_time": int((MONTH_START + dt.timedelta(days=d)).timestamp()),
            "end_time": int((MONTH_START + dt.timedelta(days=d + 1)).timestamp()),
            "results": rows,
        }
        for d, rows in sorted(buckets.items())
    ]
    return data, total


def _anthropic_rows(start: int, n: int) -> tuple[list[dict[str, Any]], Decimal]:
    buckets: dict[int, list[dict[str, Any]]] = {}
    total = Decimal(0)
    for i in range(start, start + n):
        day, project, item = _keys(i)
        units = (i * 7919) % 99_999_999 + 1  # 1e-5 cents: the 5 decimals Anthropic strings carry
        cents = f"{units // 100_000}.{units % 100_000:05d}"
        total += Decimal(cents) / 100
        buckets.setdefault(day, []).append(
            {
                "currency": "USD",
                "amount": cents,
                "workspace_id": project.replace("proj", "wrkspc"),
                "description": item,
                "cost_type": "tokens",
                "model": item.split(",")[0],
                "token_type": "output_tokens",
                "service_tier": "standard",
                "context_window": "0-200k",
                "inference_geo": "global",
            }
        )
    data = [
        {
            "starting_at": (MONTH_START + dt.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ending_at": (MONTH_START + dt.timedelta(days=d + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "results": rows,
        }
        for d, rows in sorted(buckets.items())
    ]
    return data, total


def make_pages(provider: str, n_pages: int, rows_per_page: int) -> tuple[list[bytes], Decimal]:
    """`n_pages` JSON bodies of `rows_per_page` rows each, linked by next_page cursors; and their exact total."""
    gen = _openai_rows if provider == "openai" else _anthropic_rows
    pages: list[bytes] = []
    total = Decimal(0)
    for p in range(n_pages):
        data, sub = gen(p * rows_per_page, rows_per_page)
        total += sub
        more = p < n_pages - 1
        doc: dict[str, Any] = {"data": data, "has_more": more, "next_page": f"page_{p + 1}" if more else None}
        if provider == "openai":
            doc = {"object": "page", **doc}
        pages.append(json.dumps(doc).encode())
    return pages, total


def _parser(provider: str) -> Callable[[dict[str, Any], Any], None]:
    if provider == "openai":
        from providers.openai import parse_costs_page

        return parse_costs_page
    from providers.anthropic import parse_cost_report_page

    return parse_cost_report_page


def aggregate(provider: str, pages: list[bytes]) -> Any:
    """Drive `pages` through the production pagination helper and parser into one accumulator."""
    from models import BillingPeriod
    from providers._aggregate import CostAccumulator
    from providers._http import pages as paginate

    parse = _parser(provider)
    acc = CostAccumulator(BillingPeriod.containing(dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)))

    def fetch(cursor: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(pages[0 if cursor is None else int(cursor.split("_")[1])])
        return doc

    for page in paginate(fetch, max_pages=len(pages) + 1):
        parse(page, acc)
    acc.breakdown()  # the sorted breakdown lines are part of the report
    return acc


def _cpu(provider: str, pages: list[bytes], total: Decimal) -> float:
    gc.collect()
    started = time.process_time()
    acc = aggregate(provider, pages)
    spent = time.process_time() - started
    if acc.total() != total or acc.rows != ROWS:
        raise RuntimeError(f"{provider}: total {acc.total()} != expected {total} (rows {acc.rows})")
    return spent


def _peak(provider: str, pages: list[bytes], total: Decimal) -> float:
    """tracemalloc peak (MB) of aggregating `pages`; the page bytes themselves existed before tracing."""
    gc.collect()
    tracemalloc.start()
    try:
        acc = aggregate(provider, pages)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if acc.total() != total:
        raise RuntimeError(f"{provider}: total {acc.total()} != expected {total}")
    return peak / 1e6


def run() -> Section:
    from providers._http import MAX_BODY_BYTES

    sec = Section("5. scale: parse + aggregate (production parse functions)")
    sec.say(
        f"{ROWS:,} rows = {PROJECTS} projects x {LINE_ITEMS} line items spread over {DAYS} days; "
        "pages held as JSON bytes in memory"
    )
    for provider in ("openai", "anthropic"):
        stats: dict[str, Any] = {}
        for n_pages in (100, 10):
            pages, total = make_pages(provider, n_pages, ROWS // n_pages)
            stats[f"cpu_{n_pages}p_s"] = min(_cpu(provider, pages, total) for _ in range(2))
            del pages
        cpu = max(stats["cpu_100p_s"], stats["cpu_10p_s"])
        rate = ROWS / cpu
        # Memory: the same page size (1,000 rows), 10 pages vs 100 pages.
        small, t_small = make_pages(provider, 10, 1000)
        big, t_big = make_pages(provider, 100, 1000)
        p10, p100 = _peak(provider, small, t_small), _peak(provider, big, t_big)
        del small, big
        # The production shape: the whole month in one page (limit=31 buckets).
        one, t_one = make_pages(provider, 1, ROWS)
        body = len(one[0])
        p1 = _peak(provider, one, t_one)
        del one
        growth = p100 / p10
        sec.say(
            f"{provider:<9} CPU for {ROWS:,} rows: {stats['cpu_100p_s']:.3f} s in 100 pages, "
            f"{stats['cpu_10p_s']:.3f} s in 10 pages -> {rate:,.0f} rows/s (worst of the two)"
        )
        sec.say(
            f"{'':<9} peak allocations, 1,000-row pages: 10 pages {p10:.2f} MB, 100 pages {p100:.2f} MB "
            f"({growth:.2f}x for 10x the pages and rows)"
        )
        sec.say(
            f"{'':<9} one page holding all {ROWS:,} rows: body {body / 1e6:.1f} MB "
            f"({body / ROWS:.0f} B/row; response cap {MAX_BODY_BYTES / 2**20:.0f} MiB = "
            f"~{MAX_BODY_BYTES / (body / ROWS):,.0f} rows), peak {p1:.1f} MB"
        )
        sec.details[provider] = {
            **stats,
            "rows_per_s": rate,
            "peak_10_pages_mb": p10,
            "peak_100_pages_mb": p100,
            "peak_growth": growth,
            "single_page_body_bytes": body,
            "single_page_peak_mb": p1,
            "max_rows_per_page_under_cap": MAX_BODY_BYTES / (body / ROWS),
        }
        sec.figures.append(
            Figure(
                f"scale: {provider} CPU for 100k rows",
                f"{cpu:.2f} s ({rate / 1000:,.0f}k rows/s)",
                f"<= {CPU_TARGET_S:.0f} s",
                cpu <= CPU_TARGET_S,
                cpu,
            )
        )
        sec.figures.append(
            Figure(
                f"scale: {provider} peak mem 100 vs 10 pages",
                f"{growth:.2f}x ({p10:.2f} -> {p100:.2f} MB)",
                f"flat (<= {FLAT_TARGET:.2f}x)",
                growth <= FLAT_TARGET,
                growth,
            )
        )
    return sec
