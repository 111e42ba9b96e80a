"""6. Gemini query cost: what the billing-export query may read, and what that can cost per month.

The BigQuery emulator meters no bytes (`total_bytes_processed` is 0) and ignores
`maximum_bytes_billed`, so neither can be measured here. What can be proved locally:

* the job the real client sends (captured on the wire by a spy on its HTTP session) carries the
  cap (`maximumBytesBilled`) and a top-level `_PARTITIONTIME >= @partition_floor` conjunct with a
  parameter bound to a constant: the form BigQuery prunes ingestion-time partitions on;
* the query runs on a table that holds only `COLUMNS_READ`, so it references no other column
  (BigQuery bills the columns a query references);
* from the bound floor, the share of a 13-month table's day partitions the predicate admits;
* the hourly query next to the daily deep one (floor `GEMINI_DEEP_SCAN_DAYS` below the month): both
  jobs on the wire, and the bytes each would bill on a 13-month simulated export, estimated from
  BigQuery's documented logical sizes of the columns it references in the partitions it admits.

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


def _deps(emu: Any, spy: BigQuerySpy, deep_scan_hour_utc: int | None = None) -> Any:
    from config import SecretResolver
    from providers import Deps

    return Deps(
        secrets=SecretResolver(env={}),
        base_urls={},
        bigquery_job_project=None,
        bigquery_factory=spy,
        deep_scan_hour_utc=deep_scan_hour_utc,
    )


# Logical bytes BigQuery bills per value (https://cloud.google.com/bigquery/pricing, "Data size
# calculation"; also Tigani & Naidu, Google BigQuery Analytics, table 7.3): STRING 2 + UTF-8 length,
# INT64 / FLOAT64 / TIMESTAMP 8, NULL 0, a RECORD only its referenced leaves, a REPEATED leaf the sum
# of its values. `_PARTITIONTIME` is a pseudo-column (not stored); it is counted as 0.
_FLOAT_OR_TIME = {"export_time", "usage_start_time", "cost", "credits.amount", "currency_conversion_rate"}
MIN_BILLED_BYTES = 10 * 2**20  # on-demand: at least 10 MB per table a query references (same page)


def _value_bytes(column: str, value: Any) -> int:
    if value is None:
        return 0
    return 8 if column in _FLOAT_OR_TIME else 2 + len(str(value).encode())


def row_bytes(row: dict[str, Any], columns: tuple[str, ...]) -> int:
    """The logical bytes of `columns` (dotted leaves, as COLUMNS_READ) in one export row."""
    total = 0
    for column in columns:
        if column.startswith("_"):
            continue
        head, _, leaf = column.partition(".")
        value = row.get(head)
        if not leaf:
            total += _value_bytes(column, value)
        elif isinstance(value, list):
            total += sum(_value_bytes(column, v.get(leaf)) for v in value)
        elif isinstance(value, dict):
            total += _value_bytes(column, value.get(leaf))
    return total


def estimated_bytes(rows: list[dict[str, Any]], floor: dt.datetime, columns: tuple[str, ...]) -> tuple[int, int]:
    """(bytes, partitions) a query with `_PARTITIONTIME >= floor` scans of `rows` up to NOW.

    Partition pruning is the only predicate that skips storage; the others filter rows already read.
    """
    from simulator import billing_export

    read = [r for r in rows if floor <= billing_export.partition_time(r) <= NOW]
    parts = {billing_export.partition_time(r) for r in read}
    return sum(row_bytes(r, columns) for r in read), len(parts)


def _source(table: str, deps: Any) -> Any:
    from providers import gemini
    from providers.gemini import GeminiAccount

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
    from providers import Deadline, gemini
    from providers.gemini import GEMINI_DEEP_SCAN_DAYS, GeminiAccount
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
        jobs = runs + runs // 24  # every hourly query plus one deep query a day, each at most the cap
        tib = Decimal(jobs * cap_sent) / TIB
        gross = (tib * USD_PER_TIB).quantize(Decimal("0.01"))
        net = (max(tib - FREE_TIB, Decimal(0)) * USD_PER_TIB).quantize(Decimal("0.01"))
        worst[runs] = {"tib": float(tib), "usd": float(gross), "usd_after_free_tib": float(net)}
        sec.say(
            f"worst case, {runs} runs + {runs // 24} deep queries = {jobs} jobs x cap {cap_sent / GIB:g} GiB = "
            f"{tib:.3f} TiB x ${USD_PER_TIB}/TiB = "
            f"${gross} (${net} after the free TiB)"
        )
    # The hourly query and the daily deep one, side by side: both jobs as sent, and their bytes.
    deep_spy = BigQuerySpy(emu.bq.url)
    deep_src = _source(EXPORT_TABLE, _deps(emu, deep_spy, deep_scan_hour_utc=NOW.hour))
    deep_report = deep_src.fetch(period, Deadline(60))
    floors = [
        {p["name"]: _param_value(p["parameterValue"]) for p in i.body["configuration"]["query"]["queryParameters"]}[
            "partition_floor"
        ]
        for i in deep_spy.job_inserts()
    ]
    assert deep_src.last_query is not None and deep_src.last_deep_query is not None
    hourly_floor, deep_floor = (
        deep_src.last_query.params.partition_floor,
        deep_src.last_deep_query.params.partition_floor,
    )
    history = [
        r
        for back in range(TABLE_MONTHS)
        for r in billing_export.scenario_rows(f"{_month_start(period.first_day, back):%Y-%m}")
    ]
    hourly_bytes, hourly_parts = estimated_bytes(history, hourly_floor, gemini.COLUMNS_READ)
    deep_bytes, deep_parts = estimated_bytes(history, deep_floor, gemini.COLUMNS_READ)
    full_bytes, _ = estimated_bytes(history, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), gemini.COLUMNS_READ)
    days = period.days_in_month
    month_bytes = 24 * days * hourly_bytes + days * deep_bytes  # hourly checks + one deep query a day
    deep_ok = (
        len(floors) == 2
        and (period.start.astimezone(dt.UTC).date() - deep_floor.date()).days == GEMINI_DEEP_SCAN_DAYS
        and deep_report.mtd_usd == report.mtd_usd
        and deep_report.requests == 2
    )
    sec.say(
        f"hourly vs daily deep query (check at {NOW:%H}:00 UTC = the deep-scan hour; jobs.insert sent: "
        f"{len(floors)}, partition_floor {' then '.join(str(f)[:10] for f in floors)}):"
    )
    sec.say(f"    {'query':<12} {'floor':<11} {'partitions':>10} {'est. bytes':>12} {'billed (10 MB min)':>19}")
    for name, bound, parts, nbytes in (
        ("hourly", hourly_floor, hourly_parts, hourly_bytes),
        ("daily deep", deep_floor, deep_parts, deep_bytes),
    ):
        sec.say(f"    {name:<12} {bound:%Y-%m-%d}  {parts:>10} {nbytes:>12,} {max(nbytes, MIN_BILLED_BYTES):>19,}")
    sec.say(
        f"    on a simulated {TABLE_MONTHS}-month export ({len(history):,} rows, "
        f"{full_bytes:,} bytes in the read columns): "
        f"deep/hourly = {deep_bytes / hourly_bytes:.2f}x; a {days}-day month of checks reads "
        f"{month_bytes:,} bytes, {month_bytes / (24 * days * hourly_bytes) - 1:+.1%} over hourly queries alone"
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
        "deep_query": {
            "jobs_sent": len(floors),
            "floors": floors,
            "hourly": {"partitions": hourly_parts, "estimated_bytes": hourly_bytes},
            "deep": {"partitions": deep_parts, "estimated_bytes": deep_bytes},
            "month_estimated_bytes": month_bytes,
        },
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
            "gemini: hourly vs daily deep query",
            f"{hourly_parts} vs {deep_parts} partitions, {hourly_bytes:,} vs {deep_bytes:,} B est.",
            f"2 jobs once a day, floor {GEMINI_DEEP_SCAN_DAYS} days down",
            deep_ok,
            deep_bytes / hourly_bytes,
        ),
        Figure(
            "gemini: worst-case query bill (720 + 30 jobs at cap)",
            f"${worst[720]['usd']:.2f} (${worst[720]['usd_after_free_tib']:.2f} after free TiB)",
            value=worst[720]["usd"],
        ),
        Figure("running cost, whole stack (terraform/README)", total),
    ]
    return sec
