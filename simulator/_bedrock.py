"""A scenario's Bedrock accounts as Cost Explorer `GetCostAndUsage` answers, for moto to serve.

moto (devservers/moto.py) speaks STS and Cost Explorer's wire protocol but has no data of its own: it
serves the full responses queued through `POST /moto-api/static/ce/cost-and-usage-results`, one per
new request body. `cost_and_usage_results` builds those responses from the scenario's hourly cells
in the shape of botocore's `ce/2017-10-25` model (`GetCostAndUsageResponse`): DAILY `ResultsByTime`
with `TimePeriod` (`End` exclusive), `Total: {}` when grouped, `Groups[].Keys` = [SERVICE, USAGE_TYPE],
`Metrics.UnblendedCost = {"Amount": "<decimal string>", "Unit": "USD"}`, `Estimated: true` for days
that are not final, `DimensionValueAttributes: []`, and `NextPageToken` between pages (each page is a
separate paid request at AWS, which the cadence test counts).

Cells: the account's `service` dimension holds SERVICE values (`Amazon Bedrock`, or a Marketplace
model's `<model> (Amazon Bedrock Edition)`), `usage_type` the usage types. Every day also carries one
non-Bedrock row (`AWS Lambda`), which a correct client leaves out: the expected sums are the cells only.

    results = cost_and_usage_results(scenario.find("bedrock/main"), now=NOW, lag=dt.timedelta(0))
    load_cost_and_usage(aws, results)            # devservers.moto, then point the source at moto
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from simulator.scenario import DAY, Account, month_start_of, utc_day_start

__all__ = ["OTHER_SERVICE", "cost_and_usage_results"]

OTHER_SERVICE = ("AWS Lambda", "USE1-Request", Decimal("0.12345678"))  # not Bedrock: must be left out
FINAL_AFTER = dt.timedelta(days=1)  # a day is still an AWS estimate until a day after it ends (simulated)


def _day_groups(account: Account, day_start: dt.datetime, visible_until: dt.datetime, metric: str) -> list[Any]:
    amounts = account.window(day_start, day_start + DAY, visible_until)
    groups: dict[tuple[str, str], Decimal] = {}
    for cell, amount in zip(account.cells, amounts, strict=True):
        key = (str(cell.values.get("service") or "Amazon Bedrock"), str(cell.values.get("usage_type") or "-"))
        groups[key] = groups.get(key, Decimal(0)) + amount
    rows = [(k, v) for k, v in groups.items() if v]
    if day_start < visible_until:
        rows.append(((OTHER_SERVICE[0], OTHER_SERVICE[1]), OTHER_SERVICE[2]))
    return [
        {"Keys": list(keys), "Metrics": {metric: {"Amount": f"{amount:f}", "Unit": "USD"}}} for keys, amount in rows
    ]


def cost_and_usage_results(
    account: Account,
    *,
    now: dt.datetime,
    lag: dt.timedelta = dt.timedelta(0),
    metric: str = "UnblendedCost",
    pages: int = 2,
) -> list[dict[str, Any]]:
    """The month-to-date answer for `now` (Start = the 1st, End = tomorrow), split into `pages` pages."""
    if account.provider != "bedrock":
        raise ValueError(f"{account.scope} is not a Bedrock account")
    now = now.astimezone(dt.UTC)
    start = month_start_of(now)
    visible_until = now - lag
    results = []
    day = start
    while day <= utc_day_start(now):
        results.append(
            {
                "TimePeriod": {"Start": day.date().isoformat(), "End": (day + DAY).date().isoformat()},
                "Total": {},
                "Groups": _day_groups(account, day, visible_until, metric),
                "Estimated": day + DAY + FINAL_AFTER > now,
            }
        )
        day += DAY
    size = max(1, -(-len(results) // max(1, pages)))
    chunks = [results[i : i + size] for i in range(0, len(results), size)] or [[]]
    out = []
    for i, chunk in enumerate(chunks):
        page: dict[str, Any] = {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"},
                                                     {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
                                "ResultsByTime": chunk, "DimensionValueAttributes": []}  # fmt: skip
        if i + 1 < len(chunks):
            page["NextPageToken"] = f"sim-page-{i + 2}"
        out.append(page)
    return out
