"""A Cloud Billing standard usage cost export table, for the BigQuery emulator.

Google writes `gcp_billing_export_v1_<BILLING_ACCOUNT_ID>` itself; locally this module creates a
table of the same shape (`SCHEMA`, day-partitioned on ingestion time like the real one) and loads a
deterministic month of rows into it. The demo and the end-to-end tests call it like this::

    create_export_table(client, "demo-project.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD")
    rows = scenario_rows("2026-11")                      # a month of Gemini API + Vertex AI + others
    load(client, table_id, rows)
    expected_net_usd(rows, "202611", GEMINI_SERVICE_IDS, as_of=now)   # what the provider must report

or from a shell::

    python -m simulator.billing_export --endpoint http://127.0.0.1:9050 --project demo-project \\
        --table demo-project.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD --month 2026-11

What the month holds (all of it deterministic for a given seed):

* Gemini API and Vertex AI rows for every Pacific day, two usage windows a day per SKU and project,
  and rows of Compute Engine, BigQuery and Cloud Storage that a Gemini total must not count;
* credits: a free tier on Gemini Flash rows, a promotion on every LLM row of the first week (so
  those Flash rows carry two credits);
* the Pacific month boundary on both sides: usage in the first half hour of the 1st (Pacific),
  usage on the previous month's last evening (previous invoice month), usage on the last day at
  19:00 Pacific, which is 03:00 UTC on the next month's 1st but still this invoice month, and the
  next month's first half hour (next invoice month, exported by 08:45 UTC on its 1st);
* late rows (Vertex AI on the 10th and 20th exported three days later) and one correction: a
  negative adjustment for usage two days before the month, billed on this invoice;
* two Gemini API rows on the 12th with `project: null` (usage within 24 hours of a project's
  creation, the export's documented caution): spend no project-matching team owns;
* `currency` and `conversion_rate` choose the billing account's currency: costs and credits are
  in that currency, `currency_conversion_rate` drifts slightly from day to day around the rate.

`expected_net_usd` recomputes the provider's number independently, in Python `Decimal`. It uses
only `insert_rows_json` (the emulator cannot run `load_table_from_json`).

Partitions: the emulator stores none and reads `_PARTITIONTIME` as CURRENT_TIMESTAMP(). A table
made with `partition_column=True` also stores each row's partition (`PARTITION_COLUMN`: the UTC
midnight of its `export_time` unless `late_correction` placed it lower), and a client wrapped in
`PartitionedClient(client)` reads `_PARTITIONTIME` from it, so a partition floor prunes rows as it does
in BigQuery::

    create_export_table(client, table_id, partition_column=True)
    load(client, table_id, with_partitions(rows + [late_correction("2026-11", days_below=20)]))
    source built with Deps(bigquery_factory=lambda project: PartitionedClient(client))
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from google.cloud import bigquery

UTC = dt.UTC
PACIFIC = ZoneInfo("America/Los_Angeles")
GEMINI_API = ("AEFD-7695-64FA", "Gemini API")
VERTEX_AI = ("C7E2-9256-1C43", "Vertex AI")
GEMINI_SERVICE_IDS: tuple[str, ...] = (GEMINI_API[0], VERTEX_AI[0])
DEFAULT_BILLING_ACCOUNT = "01ABCD-234567-89ABCD"
NANO = Decimal("1e-9")  # the provider's query rounds each row to a whole nano-dollar, half away from zero

Row = dict[str, Any]

# --- schema ------------------------------------------------------------------------------------

# (name, type, mode, sub-fields) of the standard usage cost export, as documented by Google.
_KV = (("key", "STRING", "NULLABLE", ()), ("value", "STRING", "NULLABLE", ()))
_FIELDS: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = (
    ("billing_account_id", "STRING", "NULLABLE", ()),
    ("service", "RECORD", "NULLABLE", (("id", "STRING", "NULLABLE", ()), ("description", "STRING", "NULLABLE", ()))),
    ("sku", "RECORD", "NULLABLE", (("id", "STRING", "NULLABLE", ()), ("description", "STRING", "NULLABLE", ()))),
    ("usage_start_time", "TIMESTAMP", "NULLABLE", ()),
    ("usage_end_time", "TIMESTAMP", "NULLABLE", ()),
    (
        "project",
        "RECORD",
        "NULLABLE",
        (
            ("id", "STRING", "NULLABLE", ()),
            ("number", "STRING", "NULLABLE", ()),
            ("name", "STRING", "NULLABLE", ()),
            ("labels", "RECORD", "REPEATED", _KV),
            ("ancestry_numbers", "STRING", "NULLABLE", ()),
        ),
    ),
    ("labels", "RECORD", "REPEATED", _KV),
    ("system_labels", "RECORD", "REPEATED", _KV),
    (
        "location",
        "RECORD",
        "NULLABLE",
        (
            ("location", "STRING", "NULLABLE", ()),
            ("country", "STRING", "NULLABLE", ()),
            ("region", "STRING", "NULLABLE", ()),
            ("zone", "STRING", "NULLABLE", ()),
        ),
    ),
    ("transaction_type", "STRING", "NULLABLE", ()),
    ("seller_name", "STRING", "NULLABLE", ()),
    ("export_time", "TIMESTAMP", "NULLABLE", ()),
    ("cost", "FLOAT", "NULLABLE", ()),
    ("currency", "STRING", "NULLABLE", ()),
    ("currency_conversion_rate", "FLOAT", "NULLABLE", ()),
    (
        "usage",
        "RECORD",
        "NULLABLE",
        (
            ("amount", "FLOAT", "NULLABLE", ()),
            ("unit", "STRING", "NULLABLE", ()),
            ("amount_in_pricing_units", "FLOAT", "NULLABLE", ()),
            ("pricing_unit", "STRING", "NULLABLE", ()),
        ),
    ),
    (
        "credits",
        "RECORD",
        "REPEATED",
        (
            ("name", "STRING", "NULLABLE", ()),
            ("amount", "FLOAT", "NULLABLE", ()),
            ("full_name", "STRING", "NULLABLE", ()),
            ("id", "STRING", "NULLABLE", ()),
            ("type", "STRING", "NULLABLE", ()),
        ),
    ),
    ("invoice", "RECORD", "NULLABLE", (("month", "STRING", "NULLABLE", ()),)),
    ("cost_type", "STRING", "NULLABLE", ()),
    (
        "adjustment_info",
        "RECORD",
        "NULLABLE",
        (
            ("id", "STRING", "NULLABLE", ()),
            ("description", "STRING", "NULLABLE", ()),
            ("mode", "STRING", "NULLABLE", ()),
            ("type", "STRING", "NULLABLE", ()),
        ),
    ),
    ("cost_at_list", "FLOAT", "NULLABLE", ()),
)


def schema(only: Iterable[str] | None = None) -> list[bigquery.SchemaField]:
    """The export's schema; with `only` (dotted paths such as `sku.description`), just those fields.

    A narrowed table proves a query reads nothing else: BigQuery rejects any other column.
    """
    from google.cloud import bigquery

    wanted = None if only is None else {p for p in only if not p.startswith("_")}

    def build(
        fields: Sequence[tuple[str, str, str, tuple[Any, ...]]], prefix: str, filtered: bool
    ) -> list[bigquery.SchemaField]:
        out = []
        for name, kind, mode, sub in fields:
            path = f"{prefix}{name}"
            whole = not filtered or wanted is None or path in wanted
            if not whole and not any(w.startswith(path + ".") for w in wanted or ()):
                continue
            children = build(sub, path + ".", not whole) if sub else []
            out.append(bigquery.SchemaField(name, kind, mode=mode, fields=children))
        return out

    return build(_FIELDS, "", True)


def create_export_table(
    client: bigquery.Client,
    table_id: str,
    *,
    only: Iterable[str] | None = None,
    replace: bool = False,
    partition_column: bool = False,
) -> bigquery.Table:
    """Create `table_id` (`project.dataset.table`, dataset created too), day-partitioned like the export.

    The real export is partitioned on ingestion time (`_PARTITIONTIME`, no column): so is this one.
    `only` narrows the schema (see `schema`); `replace` drops an existing table first;
    `partition_column` adds `PARTITION_COLUMN`, the stored stand-in `PartitionedClient` reads.
    """
    from google.cloud import bigquery

    project, dataset, _ = _split(table_id)
    client.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), exists_ok=True)
    if replace:
        client.delete_table(table_id, not_found_ok=True)
    fields = schema(only)
    if partition_column:
        fields.append(bigquery.SchemaField(PARTITION_COLUMN, "TIMESTAMP", mode="REQUIRED"))
    table = bigquery.Table(table_id, schema=fields)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    table.description = "Cloud Billing standard usage cost export (simulated)"
    return client.create_table(table, exists_ok=not replace)


class LoadError(RuntimeError):
    """The endpoint refused some rows."""


def load(client: bigquery.Client, table_id: str, rows: Sequence[Row], *, batch: int = 500) -> int:
    """Insert `rows` with `insert_rows_json`, in batches; returns how many. Refused rows raise."""
    for i in range(0, len(rows), batch):
        chunk = list(rows[i : i + batch])
        errors = client.insert_rows_json(table_id, chunk)
        if errors:
            raise LoadError(f"{table_id}: {len(errors)} row(s) refused, first: {json.dumps(errors[0])[:300]}")
    return len(rows)


# --- partitions ------------------------------------------------------------------------------------

PARTITION_COLUMN = "sim_partition_time"
"""The stored partition of a row in a `partition_column` table (BigQuery's is a pseudo-column)."""

_PSEUDO = re.compile(r"\b_PARTITIONTIME\b", re.IGNORECASE)


def partition_time(row: Row) -> dt.datetime:
    """A row's partition: the one `late_correction` placed, else the UTC midnight of its `export_time`.

    Ingestion-time partitions hold the UTC day a row was written (never after its `export_time`).
    """
    if row.get(PARTITION_COLUMN):
        return _parse_ts(row[PARTITION_COLUMN])
    exported = _parse_ts(row["export_time"])
    return dt.datetime.combine(exported.date(), dt.time(), UTC)


def with_partitions(rows: Iterable[Row]) -> list[Row]:
    """`rows` with `PARTITION_COLUMN` filled in, to load into a `partition_column` table."""
    return [{**r, PARTITION_COLUMN: _ts(partition_time(r))} for r in rows]


class PartitionedClient:
    """A BigQuery client whose queries read `_PARTITIONTIME` from `PARTITION_COLUMN`.

    Only `query` changes (the SQL the provider sends keeps the pseudo-column); everything else is
    the wrapped client's. Use it on tables made with `partition_column=True`.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._client.query(_PSEUDO.sub(PARTITION_COLUMN, sql), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def late_correction(
    month: str,
    *,
    days_below: int,
    usd: Decimal | str = "-4.000000",
    exported: dt.datetime | None = None,
    billing_account_id: str = DEFAULT_BILLING_ACCOUNT,
) -> Row:
    """A Vertex AI correction billed on invoice `month` (`YYYY-MM`), in a partition `days_below` days
    below the month's first UTC day: a row Google stamps by usage day rather than by ingestion.

    Its usage is that partition's day; it is exported on the month's 15th at 12:00 UTC unless
    `exported` says otherwise. USD billing account (rate 1).
    """
    year, mon = (int(x) for x in month.split("-"))
    first_utc = dt.datetime(year, mon, 1, tzinfo=PACIFIC).astimezone(UTC).date()
    part = dt.datetime.combine(first_utc - dt.timedelta(days=days_below), dt.time(), UTC)
    begin = part + dt.timedelta(hours=17)  # 09:00 or 10:00 Pacific on that day
    amount = Decimal(str(usd))
    return {
        "billing_account_id": billing_account_id,
        "service": {"id": VERTEX_AI[0], "description": VERTEX_AI[1]},
        "sku": {"id": _LLM_SKUS[3][1], "description": _LLM_SKUS[3][2]},
        "usage_start_time": _ts(begin),
        "usage_end_time": _ts(begin + dt.timedelta(hours=1)),
        "project": {"id": _PROJECTS[0][0], "name": _PROJECTS[0][1], "number": _PROJECTS[0][2]},
        "export_time": _ts(exported or dt.datetime(year, mon, 15, 12, tzinfo=UTC)),
        "cost": float(amount),
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "credits": [],
        "invoice": {"month": f"{year:04d}{mon:02d}"},
        "cost_type": "adjustment",
        "adjustment_info": {
            "id": f"ADJ-LATE-{days_below}",
            "description": f"Correction of Vertex AI usage {days_below} days before the month",
            "mode": "MANUAL_ADJUSTMENT",
            "type": "USAGE_CORRECTION",
        },
        PARTITION_COLUMN: _ts(part),
    }


def narrow(rows: Iterable[Row], only: Iterable[str]) -> list[Row]:
    """`rows` keeping only the fields of `schema(only)` (to load into a narrowed table)."""
    fields = schema(only)

    def keep(value: Any, spec: Sequence[Any]) -> Any:
        if isinstance(value, list):
            return [keep(v, spec) for v in value]
        if not spec or not isinstance(value, dict):
            return value
        return {f.name: keep(value.get(f.name), f.fields) for f in spec if f.name in value}

    return [keep(row, fields) for row in rows]


def _split(table_id: str) -> tuple[str, str, str]:
    parts = table_id.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"table id must be project.dataset.table, not {table_id!r}")
    return parts[0], parts[1], parts[2]


# --- the scenario --------------------------------------------------------------------------------

# SKU ids are invented; the services' ids and names are the real ones.
_LLM_SKUS: tuple[tuple[tuple[str, str], str, str, Decimal], ...] = (
    # (service, sku id, sku description, typical USD per usage window)
    (GEMINI_API, "B0D2-1A3F-9C41", "Gemini 2.5 Pro input tokens", Decimal("3.20")),
    (GEMINI_API, "B0D2-1A3F-9C42", "Gemini 2.5 Pro output tokens", Decimal("9.75")),
    (GEMINI_API, "C1E3-2B4A-0D52", "Gemini 2.5 Flash input tokens", Decimal("0.85")),
    (VERTEX_AI, "D2F4-3C5B-1E63", "Gemini 2.5 Pro on Vertex AI output tokens", Decimal("6.40")),
    (VERTEX_AI, "E3A5-4D6C-2F74", "Vertex AI online prediction node hours", Decimal("2.10")),
)
_OTHER_SKUS: tuple[tuple[tuple[str, str], str, str, Decimal], ...] = (
    (("6F81-5844-456A", "Compute Engine"), "CP-N2-CORE", "N2 Instance Core running in Americas", Decimal("4.00")),
    (("24E6-581D-38E5", "BigQuery"), "BQ-ANALYSIS-US", "Analysis", Decimal("1.50")),
    (("95FF-2EF5-5EA1", "Cloud Storage"), "GCS-STANDARD-US", "Standard Storage US Multi-region", Decimal("0.40")),
)
_PROJECTS: tuple[tuple[str, str, str], ...] = (
    ("llm-prod-123456", "LLM Prod", "123456789012"),
    ("llm-staging-654321", "LLM Staging", "210987654321"),
)
_DATA_PROJECT = ("data-platform-777", "Data Platform", "777777777777")
_WINDOWS_PACIFIC = (9, 15)  # usage windows start at 09:00 and 15:00 Pacific, one hour each
_EXPORT_LAG_H = (2, 8)
_LATE_DAYS = (10, 20)  # Vertex AI rows of these days are exported three days late
_MONEY = Decimal("1e-6")


def scenario_rows(
    month: str,
    *,
    currency: str = "USD",
    conversion_rate: Decimal | str = "1",
    billing_account_id: str = DEFAULT_BILLING_ACCOUNT,
    until: dt.datetime | None = None,
    seed: int = 7,
) -> list[Row]:
    """A month (`YYYY-MM`, Pacific) of export rows plus the boundary rows around it.

    `until` keeps only rows exported by then: the table as it looked at that instant.
    """
    year, mon = (int(x) for x in month.split("-"))
    rate0 = Decimal(str(conversion_rate))
    if rate0 <= 0:
        raise ValueError("conversion_rate must be positive")
    if currency.upper() == "USD" and rate0 != 1:
        raise ValueError("a USD billing account has conversion rate 1")
    rng = random.Random(f"{seed}:{month}:{currency}:{billing_account_id}")
    start = dt.datetime(year, mon, 1, tzinfo=PACIFIC)
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=PACIFIC)
    prev_month = _invoice_month(start - dt.timedelta(days=1))
    this_month = _invoice_month(start)
    next_month = _invoice_month(nxt)

    def rate_on(day: dt.date) -> Decimal:
        if rate0 == 1:
            return rate0
        return (rate0 * (1 + Decimal((day.toordinal() % 7) - 3) / 1000)).quantize(_MONEY)

    def make(
        service: tuple[str, str],
        sku: tuple[str, str],
        project: tuple[str, str, str] | None,
        begin: dt.datetime,
        usd: Decimal,
        invoice: str,
        *,
        credits: Sequence[tuple[str, str, Decimal]] = (),
        lag: dt.timedelta | None = None,
        cost_type: str = "regular",
        minutes: int = 60,
    ) -> Row:
        end = begin + dt.timedelta(minutes=minutes)
        rate = rate_on(begin.astimezone(PACIFIC).date())
        local = (usd * rate).quantize(_MONEY, ROUND_HALF_UP)
        lag = lag if lag is not None else dt.timedelta(hours=rng.uniform(*_EXPORT_LAG_H))
        row: Row = {
            "billing_account_id": billing_account_id,
            "service": {"id": service[0], "description": service[1]},
            "sku": {"id": sku[0], "description": sku[1]},
            "usage_start_time": _ts(begin),
            "usage_end_time": _ts(end),
            "project": None
            if project is None
            else {
                "id": project[0],
                "name": project[1],
                "number": project[2],
                "labels": [{"key": "env", "value": project[0].split("-")[1]}],
                "ancestry_numbers": f"/123456789/{project[2]}/",
            },
            "labels": [],
            "system_labels": [],
            "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": None},
            "transaction_type": "GOOGLE",
            "seller_name": "Google",
            "export_time": _ts(end + lag),
            "cost": float(local),
            "currency": currency.upper(),
            "currency_conversion_rate": float(rate),
            "usage": {
                "amount": float(usd * 1000),
                "unit": "count",
                "amount_in_pricing_units": float(usd),
                "pricing_unit": "count",
            },
            "credits": [
                {
                    "name": name,
                    "amount": float(-(amount * rate).quantize(_MONEY, ROUND_HALF_UP)),
                    "full_name": name,
                    "id": f"{kind}:{sku[0]}",
                    "type": kind,
                }
                for name, kind, amount in credits
            ],
            "invoice": {"month": invoice},
            "cost_type": cost_type,
            "adjustment_info": None,
            "cost_at_list": float(local),
        }
        return row

    rows: list[Row] = []
    day = start
    while day < nxt:
        local_day = day.date()
        first_week = local_day.day <= 7
        for hour in _WINDOWS_PACIFIC:
            begin = dt.datetime.combine(local_day, dt.time(hour), PACIFIC)
            for service, sku_id, sku_desc, typical in _LLM_SKUS:
                for project in _PROJECTS if service == GEMINI_API else _PROJECTS[:1]:
                    usd = (typical * Decimal(str(round(rng.uniform(0.6, 1.4), 4)))).quantize(_MONEY)
                    credits: list[tuple[str, str, Decimal]] = []
                    if "Flash" in sku_desc:
                        credits.append(("Gemini API free tier", "FREE_TIER", min(usd, Decimal("0.25"))))
                    if first_week:
                        promo = (usd * Decimal("0.2")).quantize(_MONEY)
                        credits.append(("Vertex AI and Gemini launch promotion", "PROMOTION", promo))
                    late = service == VERTEX_AI and local_day.day in _LATE_DAYS and hour == _WINDOWS_PACIFIC[0]
                    rows.append(
                        make(
                            service,
                            (sku_id, sku_desc),
                            project,
                            begin,
                            usd,
                            this_month,
                            credits=credits,
                            lag=dt.timedelta(days=3) if late else None,
                        )
                    )
            for service, sku_id, sku_desc, typical in _OTHER_SKUS:
                usd = (typical * Decimal(str(round(rng.uniform(0.8, 1.2), 4)))).quantize(_MONEY)
                rows.append(make(service, (sku_id, sku_desc), _DATA_PROJECT, begin, usd, this_month))
        day = dt.datetime.combine(local_day + dt.timedelta(days=1), dt.time(), PACIFIC)

    pro_in = (_LLM_SKUS[0][1], _LLM_SKUS[0][2])
    prod = _PROJECTS[0]
    # The month's first half hour (Pacific): counts in this month, on the 1st.
    rows.append(make(GEMINI_API, pro_in, prod, start, Decimal("1.111111"), this_month, minutes=30))
    # The previous month's last evening (its invoice month): never counts here.
    rows.append(make(GEMINI_API, pro_in, prod, start - dt.timedelta(hours=4), Decimal("2.222222"), prev_month))
    # 19:00 Pacific on the last day = 03:00 UTC on the next month's 1st: still this invoice month.
    tail = nxt - dt.timedelta(hours=5)
    rows.append(make(GEMINI_API, pro_in, prod, tail, Decimal("3.333333"), this_month, lag=dt.timedelta(hours=1)))
    # The next month's first half hour (exported 15 minutes later): its own invoice month.
    rows.append(
        make(GEMINI_API, pro_in, prod, nxt, Decimal("4.444444"), next_month, minutes=30, lag=dt.timedelta(minutes=15))
    )
    # A correction billed on this invoice for usage two days before the month.
    correction = make(
        VERTEX_AI, (_LLM_SKUS[3][1], _LLM_SKUS[3][2]), prod, start - dt.timedelta(days=2), Decimal("-1.500000"),
        this_month, lag=dt.timedelta(days=3), cost_type="adjustment",
    )  # fmt: skip
    correction["adjustment_info"] = {
        "id": "ADJ-0001",
        "description": "Correction of Vertex AI usage",
        "mode": "MANUAL_ADJUSTMENT",
        "type": "USAGE_CORRECTION",
    }
    rows.append(correction)
    # A project created on the 12th: the export's caution says "project information might not be present
    # on usage that occurs within 24 hours of project creation", so its first Gemini rows have no project.
    # It matches no project id (a team's `sku_patterns` alone cannot claim it): unassigned spend.
    # (Fixed amounts and lags, drawn after the month's rows: the seeded figures above stay as they were.)
    created = dt.datetime.combine(dt.date(year, mon, 12), dt.time(11), PACIFIC)
    for hours, usd in ((0, Decimal("2.468024")), (6, Decimal("5.791357"))):
        begin = created + dt.timedelta(hours=hours)
        rows.append(make(GEMINI_API, pro_in, None, begin, usd, this_month, lag=dt.timedelta(hours=4)))

    if until is not None:
        cutoff = until.astimezone(UTC)
        rows = [r for r in rows if _parse_ts(r["export_time"]) <= cutoff]
    return rows


def _invoice_month(instant: dt.datetime) -> str:
    local = instant.astimezone(PACIFIC)
    return f"{local.year:04d}{local.month:02d}"


def _ts(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# --- the expected answer --------------------------------------------------------------------------


def row_net_usd(row: Row) -> Decimal:
    """One row's net in USD: (cost + its credits) / currency_conversion_rate, rounded to a nano-dollar."""
    cost = Decimal(str(row["cost"]))
    credits = sum((Decimal(str(c["amount"])) for c in row.get("credits") or ()), Decimal(0))
    rate = Decimal(str(row["currency_conversion_rate"]))
    return ((cost + credits) / rate).quantize(NANO, ROUND_HALF_UP)


def _counted(
    rows: Iterable[Row],
    invoice_month: str,
    service_ids: Iterable[str],
    as_of: dt.datetime,
    partition_floor: dt.datetime | None = None,
    where: Callable[[Row], bool] | None = None,
) -> list[Row]:
    ids = set(service_ids)
    cutoff = as_of.astimezone(UTC)
    return [
        r
        for r in rows
        if (r.get("invoice") or {}).get("month") == invoice_month
        and (r.get("service") or {}).get("id") in ids
        and _parse_ts(r["export_time"]) <= cutoff
        and (partition_floor is None or partition_time(r) >= partition_floor)
        and (where is None or where(r))
    ]


def expected_net_usd(
    rows: Iterable[Row],
    invoice_month: str,
    service_ids: Iterable[str],
    as_of: dt.datetime,
    *,
    partition_floor: dt.datetime | None = None,
    where: Callable[[Row], bool] | None = None,
) -> Decimal:
    """Net USD of the rows of `invoice_month` (`YYYYMM`) and `service_ids` exported by `as_of`
    (with `partition_floor`, in partitions from that instant on; with `where`, the rows it accepts,
    e.g. a team's projects and SKU patterns: see `Scenario.expected_team`)."""
    counted = _counted(rows, invoice_month, service_ids, as_of, partition_floor, where)
    return sum((row_net_usd(r) for r in counted), Decimal(0))


def expected_breakdown(
    rows: Iterable[Row],
    invoice_month: str,
    service_ids: Iterable[str],
    as_of: dt.datetime,
    dimension: Literal["sku", "project"],
) -> dict[str, Decimal]:
    """`expected_net_usd` per SKU description or per project id (`(none)` for rows without one)."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for r in _counted(rows, invoice_month, service_ids, as_of):
        holder = r.get("sku" if dimension == "sku" else "project") or {}
        key = holder.get("description" if dimension == "sku" else "id") or "(none)"
        out[key] += row_net_usd(r)
    return dict(out)


# --- CLI -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.billing_export",
        description="(Re)create a Cloud Billing export table in a BigQuery endpoint and load a month of rows; "
        "prints the table, row count and the expected Gemini net USD as JSON.",
    )
    parser.add_argument("--endpoint", required=True, help="BigQuery REST endpoint, e.g. http://127.0.0.1:9050")
    parser.add_argument("--project", required=True, help="project the client (and the emulator) runs as")
    parser.add_argument("--table", required=True, help="project.dataset.table to create")
    parser.add_argument("--month", default=None, help="YYYY-MM (Pacific invoice month); default: the current one")
    parser.add_argument("--currency", default="USD", help="billing account currency, e.g. EUR")
    parser.add_argument("--rate", default="1", help="USD -> currency conversion rate, e.g. 0.92")
    parser.add_argument("--until", default=None, help="keep rows exported by this ISO instant (default: all)")
    args = parser.parse_args(argv)

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    month = args.month or dt.datetime.now(PACIFIC).strftime("%Y-%m")
    until = dt.datetime.fromisoformat(args.until) if args.until else None
    if until is not None and until.tzinfo is None:
        parser.error("--until needs an offset, e.g. 2026-11-20T12:00:00Z")
    client = bigquery.Client(
        project=args.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": args.endpoint},
    )
    create_export_table(client, args.table, replace=True)  # rerunning never doubles the money
    rows = scenario_rows(month, currency=args.currency, conversion_rate=args.rate, until=until)
    loaded = load(client, args.table, rows)
    invoice_month = month.replace("-", "")
    as_of = until or max(_parse_ts(r["export_time"]) for r in rows)
    summary = {
        "table": args.table,
        "rows": loaded,
        "invoice_month": invoice_month,
        "currency": args.currency.upper(),
        "as_of": as_of.isoformat(),
        "expected_net_usd": str(expected_net_usd(rows, invoice_month, GEMINI_SERVICE_IDS, as_of)),
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
