"""Splitting an account's cells between teams costs time linear in the cells.

    .venv/bin/python -m bench.teams_split

Prints, for `alerts.rules.evaluate` on a document with teams (the path every check takes once the
cells are fetched): one OpenAI-shaped account of 31 days × P projects × 20 line items (cells), with
T teams each owning P/T projects (one with a line-item pattern), the wall time of one evaluation
(best of 3) and the time per cell, which stays flat when the work is linear (a combination's match is
decided once, not once per day, so more teams add little). Every run checks
that Σ teams + unassigned equals the total to the last digit; nothing else is asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts import rules
from config import parse_budget_config
from models import UTC, AccountRef, BillingPeriod, Freshness, SourceResult
from providers._aggregate import CostAccumulator

NOW = dt.datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
LINE_ITEMS = 20


def _case(projects: int, teams: int) -> tuple[float, int]:
    ids = [f"proj_{i:05d}" for i in range(projects)]
    per = max(1, projects // teams)
    doc_teams = {}
    for t in range(teams):
        block: dict[str, object] = {"project_ids": ids[t * per : (t + 1) * per]}
        if t == 0:
            block["line_item_patterns"] = ["model-1*"]
        doc_teams[f"t{t}"] = {"budget_usd": 100, "match": {"openai": block}}
    document = {"total_budget_usd": 10**6, "providers": {"openai": {"budget_usd": 10**6}}, "teams": doc_teams}
    config = parse_budget_config(json.dumps(document), origin="bench")
    period = BillingPeriod.containing(NOW)
    acc = CostAccumulator(period, config.cell_dims()["openai"])
    for day in range(1, 31):
        for p in ids:
            for li in range(LINE_ITEMS):
                acc.add(dt.date(2026, 11, day), Decimal("0.00012345"), {"project": p, "line_item": f"model-{li}"})
    report = acc.report(Freshness(NOW), requests=1)
    results = [SourceResult(AccountRef("openai", "default"), period, report=report)]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        scopes = {s.name: s for s in rules.evaluate(config, results, NOW)}
        best = min(best, time.perf_counter() - started)
    owned = sum((s.mtd_usd or Decimal(0) for s in scopes.values() if s.level == "team"), Decimal(0))
    assert owned + (scopes["unassigned"].mtd_usd or 0) == scopes["total"].mtd_usd, "unbalanced"
    return best, len(report.cells)


def run() -> str:
    lines = [f"{'cells':>8} {'teams':>6} {'evaluate':>10} {'per cell':>10}"]
    for projects, teams in ((50, 5), (100, 5), (200, 5), (100, 10), (100, 20)):
        seconds, cells = _case(projects, teams)
        lines.append(f"{cells:>8,} {teams:>6} {seconds * 1000:>8.0f}ms {seconds / cells * 1e6:>8.2f}µs")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
