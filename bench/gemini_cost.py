"""6. Gemini query cost: what the billing-export query may read, and what that can cost per month.

The BigQuery emulator meters no bytes (`total_bytes_processed` is 0) and ignores
`maximum_bytes_billed`, so neither can be measured here. What can be proved locally:

* the job the real client sends (captured on the wire by a spy on its HTTP session) carries the
  cap (`maximumBytesBilled`) and a top-level `_PARTITIONTIME >= @partition_floor` conjunct with a
  parameter bound to a constant: the form BigQuery prunes ingestion-time partitions on;
* the query runs on a table that holds only `COLUMNS_READ`, so it references no other column
  (BigQuery bills the columns a query references);
* from the bound floor, the share of a 13-month table's day partitions the predicate admits.

From the cap follows the worst-case bill; the deployed stack's running cost is read from the
"Running cost" section of terraform/README.md (not re-invented here).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Any

from bench._common import NOW, ROOT, Figure, Section
from bench._google import BigQuerySpy

TIB = 2**40
GIB = 2**30
USD_PER_TIB = Decimal("6.25")
FREE_TIB = 1
RUNS = (720, 744)  # hourly runs in a 30- and a 31-day month
TABLE_MONTHS = 13


def _deps(emu: Any, spy: BigQuerySpy) -> Any:
    from config import SecretResolver
    from providers import Deps

    return Deps(secrets=SecretResolver(env={}), base_urls={}, bigquery_job_project=None, bigquery_factory=spy)


def _source(table: str, deps: Any) -> Any:
    from config import GeminiAccount
    from providers import gemini

    return gemini.from_config(GeminiAccount(billing_export_table=table), deps)


def _where_conjuncts(sql: str) -> list[str]:
    where = sql.split("WHERE", 1)[1].split("GROUP BY", 1)[0]
    return [c.strip() for c in re.split(r"\n\s*AND\s+", where.strip())]


def _param_value(value: dict[str, Any]) -> Any:
    if "arrayValues" in value:
        return [v.get("value") for v in value["arrayValues"]]
    return value.get("value")


def _leaves(fields: Any) -> int:
    return sum(_leaves(f.fields) if f.fields else 1 for f in fields)


def _month_start(d: dt.date, back: int) -> dt.date:
    y, m = divmod(d.year * 12 + d.month - 1 - back, 12)
    return dt.date(y, m + 1, 1)


def readme_running_cost() -> tuple[list[tuple[str, str]], str, Decimal]:
    """(item, without-free-tier) rows of terraform/README.md's "Running cost" table, its total, and their sum."""
    text = (ROOT / "terraform" / "README.md").read_text(encoding="utf-8")
    section = text.split("## Running cost", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str]] = []
    total = ""
    listed = Decimal(0)
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("item", "") or set(cells[0]) <= {"-", " "}:
            continue
        if "total" in cells[0]:
            total = f"{cells[3]} within free tiers; {cells[4]} without".replace("*", "")
            continue
        rows.append((cells[0], cells[4]))
        m = re.search(r"\$(\d+(?:\.\d+)?)", cells[4])
        if m and "BigQuery" not in cells[0]:
            listed += Decimal(m.group(1))
    return rows, total, listed


def run(emu: Any) -> Section:
    from google.cloud import bigquery

    import devservers
    from bench._common import EXPORT_TABLE
    from config import GeminiAccount
    from providers import gemini
    from providers._http import Deadline
    from simulator import billing_export

    sec = Section("6. Gemini query cost (billing export in BigQuery)")
    spy = BigQuerySpy(emu.bq.url)
    src = _source(EXPORT_TABLE, _deps(emu, spy))
    period = src.billing_period(NOW)
    report = src.fetch(period, Deadline(60))
    inserts = spy.job_inserts()
    if len(inserts) != 1:
        raise RuntimeError(f"expected one query job, the client sent {len(inserts)}")
    job = inserts[0].body["configuration"]["query"]
    sent_sql: str = job["query"]
    params = {p["name"]: _param_value(p["parameterValue"]) for p in job.get("queryParameters", [])}
    cap_sent = int(job.get("maximumBytesBilled", 0))
    stats = src.last_query
    assert stats is not None
    conjuncts = _where_conjuncts(sent_sql)
    pruning = "_PARTITIONTIME >= @partition_floor" in conjuncts and " OR " not in " ".join(conjuncts).upper()
    floor = stats.params.partition_floor

    # Column pruning: the same query on a table holding only the declared columns.
    client = devservers.bigquery_client(emu.bq)
    narrow_table = EXPORT_TABLE + "_narrow"
    billing_export.create_export_table(client, narrow_table, only=gemini.COLUMNS_READ, replace=True)
    billing_export.load(client, narrow_table, billing_export.narrow(emu.rows, gemini.COLUMNS_READ))
    narrow_report = _source(narrow_table, _deps(emu, BigQuerySpy(emu.bq.url))).fetch(period, Deadline(60))
    leaves_all = _leaves(billing_export.schema())
    leaves_read = _leaves(client.get_table(narrow_table).schema)
    columns_ok = narrow_report.mtd_usd == report.mtd_usd == emu.expected_gemini_usd

    # Partitions a 13-month table holds at NOW, and how many the floor admits (the month + the margin).
    today = NOW.date()
    first = _month_start(period.start.astimezone(dt.UTC).date(), TABLE_MONTHS - 1)
    total_parts = (today - first).days + 1
    admitted = (today - floor.date()).days + 1
    month_days = (today - period.start.astimezone(dt.UTC).date()).days + 1
    margin = admitted - month_days
    share = admitted / total_parts

    sec.say(f"job sent by google-cloud-bigquery {bigquery.__version__} (captured on the wire, jobs.insert):")
    sec.say(
        f"    maximumBytesBilled = {cap_sent:,} ({cap_sent / GIB:g} GiB); useQueryCache = {job.get('useQueryCache')}"
    )
    sec.say(f"    parameters: {', '.join(f'{k}={v}' for k, v in sorted(params.items()))}")
    sec.say("    WHERE, top-level AND conjuncts: " + " | ".join(conjuncts))
    sec.say(
        f"    _PARTITIONTIME compared with a constant parameter, no OR: {'yes' if pruning else 'NO'} "
        "(the form BigQuery prunes partitions on)"
    )
    sec.say(
        f"emulator's own figures (last_query): total_bytes_processed={stats.total_bytes_processed}, "
        f"total_bytes_billed={stats.total_bytes_billed}, rows={stats.result_rows}: it meters nothing, so "
        "bytes are not measurable locally"
    )
    sec.say(
        f"columns: the query ran on a table holding only COLUMNS_READ ({leaves_read} of the export's "
        f"{leaves_all} leaf columns, plus the _PARTITIONTIME pseudo-column) with the same result "
        f"(${narrow_report.mtd_usd:.2f} = expected ${emu.expected_gemini_usd:.2f}): {'yes' if columns_ok else 'NO'}"
    )
    sec.say(
        f"partitions: a {TABLE_MONTHS}-month table on {today} holds {total_parts} day partitions "
        f"({first} .. {today}); floor {floor:%Y-%m-%d} admits {admitted} = {month_days} days of the month + "
        f"{margin} margin days = {share:.1%} (a full scan would read {total_parts / admitted:.1f}x more); "
        f"on the 1st it is {margin + 1} of {(period.start.date() - first).days + 1}"
    )
    worst = {}
    for runs in RUNS:
        tib = Decimal(runs * cap_sent) / TIB
        gross = (tib * USD_PER_TIB).quantize(Decimal("0.01"))
        net = (max(tib - FREE_TIB, Decimal(0)) * USD_PER_TIB).quantize(Decimal("0.01"))
        worst[runs] = {"tib": float(tib), "usd": float(gross), "usd_after_free_tib": float(net)}
        sec.say(
            f"worst case, {runs} runs x cap {cap_sent / GIB:g} GiB = {tib:.3f} TiB x ${USD_PER_TIB}/TiB = "
            f"${gross} (${net} after the free TiB)"
        )
    rows, total, listed = readme_running_cost()
    sec.say("deployed stack, terraform/README.md 'Running cost' (without free tier):")
    for item, cost in rows:
        sec.say(f"    {item:<38} {cost}")
    sec.say(f"    total: {total}; the listed non-BigQuery amounts add up to ${listed}")

    sec.details |= {
        "job": {"maximumBytesBilled": cap_sent, "parameters": params, "where": conjuncts},
        "last_query": {k: v for k, v in dataclasses.asdict(stats).items() if k != "params"},
        "columns_read": leaves_read,
        "columns_total": leaves_all,
        "partitions_total": total_parts,
        "partitions_admitted": admitted,
        "share_admitted": share,
        "worst_case": worst,
        "readme_running_cost": {"rows": rows, "total": total, "listed_sum_usd": str(listed)},
    }
    sec.figures += [
        Figure(
            "gemini: job carries partition filter + cap",
            f"_PARTITIONTIME >= {floor:%Y-%m-%d}, cap {cap_sent / GIB:g} GiB, {leaves_read}/{leaves_all} cols",
            "pruned, capped, declared cols",
            pruning and cap_sent == GeminiAccount.model_fields["maximum_bytes_billed"].default and columns_ok,
        ),
        Figure(
            f"gemini: partitions read, {TABLE_MONTHS}-month table",
            f"{admitted}/{total_parts} = {share:.1%}",
            f"month + {margin} margin days",
            admitted == month_days + GeminiAccount.model_fields["late_row_margin_days"].default,
            share,
        ),
        Figure(
            "gemini: worst-case query bill (720 runs at cap)",
            f"${worst[720]['usd']:.2f} (${worst[720]['usd_after_free_tib']:.2f} after free TiB)",
            value=worst[720]["usd"],
        ),
        Figure("running cost, whole stack (terraform/README)", total),
    ]
    return sec
