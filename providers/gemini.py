"""Google Gemini API and Vertex AI spend from the Cloud Billing export in BigQuery.

There is no Gemini cost API: actual spend is only in the standard usage cost export table
(`gcp_billing_export_v1_<BILLING_ACCOUNT_ID>`). Each check runs one parameterised query on it (two
in the digest's hour: see `GeminiBilling.fetch`) for the Google **invoice month**, which runs on
US Pacific time. Why the SQL reads as it does (money, bytes, as-of) is written next to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

import logs
from errors import Cause, ProviderError
from models import PACIFIC, UTC, BillingPeriod, CostReport, Deadline, Freshness
from providers._aggregate import CostAccumulator
from providers._spec import Account, Deps, ProbeResult, ProviderSpec, TeamMatch, glob_patterns

__all__ = [
    "BIGQUERY_IMPORTS",
    "COLUMNS_READ",
    "FRESHNESS_NOTE",
    "GEMINI_API_SERVICE_ID",
    "GEMINI_DEEP_SCAN_DAYS",
    "PROJECT_ID_RE",
    "SPEC",
    "VERTEX_AI_SERVICE_ID",
    "GeminiAccount",
    "GeminiBilling",
    "GeminiTeamMatch",
    "QueryParams",
    "QueryStats",
    "build_query",
    "classify",
    "from_config",
    "make_client",
    "parse_rows",
    "probe",
]

log = logging.getLogger(__name__)

GEMINI_API_SERVICE_ID = "AEFD-7695-64FA"
VERTEX_AI_SERVICE_ID = "C7E2-9256-1C43"
EXPORT_TABLE_RE = re.compile(r"^[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_$-]{1,1024}$")
GEMINI_DEEP_SCAN_DAYS = 35
"""Partitions below the invoice month that the daily deep query reads (and the margin's maximum)."""


# gcloud projects create: "must start with a lowercase letter and can have lowercase ASCII letters,
# digits or hyphens. Project IDs must be between 6 and 30 characters" (no trailing hyphen); a
# domain-scoped project ("example.com:my-proj") keeps its domain prefix.
PROJECT_ID_RE = re.compile(r"^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class GeminiTeamMatch(TeamMatch):
    """`teams.<t>.match.gemini`: GCP projects (`project.id` of the export), optionally narrowed by SKU
    description globs (display strings Google may rename). A row without a project (the export's
    24-hour caution for new projects) belongs to no project."""

    ID_FIELD = ("project_ids", "project")
    PATTERN_FIELDS = (("sku_patterns", "sku"),)

    project_ids: tuple[str, ...] = ()
    sku_patterns: Annotated[tuple[str, ...], AfterValidator(glob_patterns)] = ()

    @field_validator("project_ids")
    @classmethod
    def _projects(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not PROJECT_ID_RE.match(p):
                raise ValueError(
                    f"{p[:60]!r} is not a Google Cloud project id (6-30 lowercase letters, digits or hyphens, "
                    'starting with a letter), e.g. "llm-prod-123456"'
                )
        return v


class GeminiAccount(Account):
    """A Cloud Billing export table; the function's service account reads it (no key)."""

    billing_export_table: str
    service_ids: tuple[str, ...] = (GEMINI_API_SERVICE_ID, VERTEX_AI_SERVICE_ID)
    maximum_bytes_billed: int = Field(default=5 * 1024**3, gt=0)
    # Partitions below the invoice month that the hourly query still reads (see `QueryParams`).
    late_row_margin_days: int = Field(default=10, ge=0, le=GEMINI_DEEP_SCAN_DAYS)

    @field_validator("billing_export_table")
    @classmethod
    def _table(cls, v: str) -> str:
        if not EXPORT_TABLE_RE.match(v):
            raise ValueError(
                "must be project.dataset.table, e.g. my-proj.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
            )
        return v

    @field_validator("service_ids")
    @classmethod
    def _services(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f'list at least one service id, e.g. ["{GEMINI_API_SERVICE_ID}"]')
        for sid in v:
            if not re.match(r"^[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}$", sid):
                raise ValueError(f"{sid!r} is not a Cloud Billing service id like {GEMINI_API_SERVICE_ID}")
        return v


FRESHNESS_NOTE = "Cloud Billing export lags by hours; Google invoice month (US Pacific)"
TIME_ZONE = "America/Los_Angeles"  # the invoice month's clock, as BigQuery names it
COLUMNS_READ: tuple[str, ...] = (
    "_PARTITIONTIME",
    "invoice.month",
    "service.id",
    "export_time",
    "usage_start_time",
    "sku.description",
    "project.id",
    "currency",
    "cost",
    "credits.amount",
    "currency_conversion_rate",
)
"""Every column the query references; BigQuery bills only these (nested leaves included)."""

RESULT_COLUMNS: tuple[str, ...] = (
    "usage_day",
    "sku",
    "project_id",
    "currency",
    "row_count",
    "unusable_rows",
    "net_nano_usd",
    "last_export_time",
    "first_partition",
)

# Money: per row, `cost` (gross, billing-account currency) plus the row's own credits (negative),
# summed with a correlated subquery (a join on UNNEST(credits) would repeat `cost` once per credit).
# `currency_conversion_rate` is the "exchange rate from US dollars to the local currency" (local =
# USD x rate), so USD = local / rate, per row because the rate drifts within the month. Each row's
# USD is rounded to a whole nano-dollar (INT64) and those are summed: exact at NUMERIC's 9 decimals.
# (CAST AS NUMERIC is not used: the emulator turns it into DECIMAL(18,3), and a parameterised
# NUMERIC(38, 9) is not portable to BigQuery.) A row with no cost or no usable rate fails the fetch
# (`unusable_rows`) instead of vanishing from the sum.
#
# Bytes: the export is day-partitioned on the ingestion-time pseudo-column `_PARTITIONTIME`, and a
# top-level comparison with a constant parameter is what BigQuery prunes partitions on; the job
# carries `maximum_bytes_billed` (hitting it is QUOTA, never $0); only `COLUMNS_READ` are referenced.
# `first_partition` tells the daily deep query how far below the floor a late row sat.
#
# As of: `export_time <= @as_of` (the check's `now`), so a replay sees the table as it was then.
#
# The BigQuery emulator reads `_PARTITIONTIME` as CURRENT_TIMESTAMP() (it stores no partitions);
# `simulator.billing_export.PartitionedClient` stands in stored partition times for tests and benchmarks.
QUERY_TEMPLATE = """\
SELECT
  DATE(usage_start_time, '{tz}') AS usage_day,
  sku.description AS sku,
  project.id AS project_id,
  currency,
  COUNT(*) AS row_count,
  COUNTIF(cost IS NULL OR currency_conversion_rate IS NULL OR currency_conversion_rate <= 0) AS unusable_rows,
  SUM(CAST(ROUND(1e9 * SAFE_DIVIDE(
    cost + IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) AS c), 0),
    currency_conversion_rate
  )) AS INT64)) AS net_nano_usd,
  MAX(export_time) AS last_export_time,
  MIN(_PARTITIONTIME) AS first_partition
FROM `{table}`
WHERE _PARTITIONTIME >= @partition_floor
  AND invoice.month = @invoice_month
  AND service.id IN UNNEST(@service_ids)
  AND export_time <= @as_of
GROUP BY usage_day, sku, project_id, currency
"""


def build_query(table: str) -> str:
    """The month-to-date query for `table` (`project.dataset.table`, validated by config).

    The table is the only interpolated text, as a backticked identifier; every value is a parameter.
    """
    if "`" in table or "\n" in table:
        raise ValueError("billing_export_table must be a plain project.dataset.table name")
    return QUERY_TEMPLATE.format(table=table, tz=TIME_ZONE)


@dataclasses.dataclass(frozen=True)
class QueryParams:
    """The values bound to the query's parameters for one billing period."""

    invoice_month: str  # YYYYMM
    service_ids: tuple[str, ...]
    partition_floor: dt.datetime  # UTC midnight, `margin_days` before the month's first UTC day
    as_of: dt.datetime  # the check's now: rows exported later are not seen
    margin_days: int = 0

    @classmethod
    def for_period(
        cls,
        period: BillingPeriod,
        account: GeminiAccount,
        *,
        margin_days: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> QueryParams:
        """The parameters for `period`; `margin_days` defaults to the account's `late_row_margin_days`,
        `as_of` to `period.now` (a later one reads a past invoice month with the rows exported since:
        the export keeps adding rows to an invoice month for days after it ends).

        The floor keeps every partition written during the month plus a margin below it. Google does
        not define `_PARTITIONTIME` for the standard export, and Red Hat's project-koku, which reads
        real exports, found partition dates behind export dates (project-koku/nise#399: partition
        2022-07-03 holds rows exported 2022-07-04T05:36) and rescans the last 10 days of partitions
        (project-koku/koku, masu/external/downloader/gcp/gcp_report_downloader.py,
        `GCPReportDownloader.scan_start`: `dh.today - relativedelta(days=10)`). Hence the 10-day
        default; a correction older than that is caught by the daily deep query (`fetch`).
        """
        margin = account.late_row_margin_days if margin_days is None else margin_days
        floor_day = period.start.astimezone(UTC).date() - dt.timedelta(days=margin)
        return cls(
            invoice_month=f"{period.year:04d}{period.month:02d}",
            service_ids=tuple(account.service_ids),
            partition_floor=dt.datetime.combine(floor_day, dt.time(), UTC),
            as_of=max(period.now, as_of) if as_of is not None else period.now,
            margin_days=margin,
        )

    def to_bigquery(self) -> list[Any]:
        from google.cloud import bigquery

        return [
            bigquery.ScalarQueryParameter("invoice_month", "STRING", self.invoice_month),
            bigquery.ArrayQueryParameter("service_ids", "STRING", list(self.service_ids)),
            bigquery.ScalarQueryParameter("partition_floor", "TIMESTAMP", self.partition_floor),
            bigquery.ScalarQueryParameter("as_of", "TIMESTAMP", self.as_of),
        ]


@dataclasses.dataclass(frozen=True)
class QueryStats:
    """What the last query cost; benchmarks read it from `GeminiBilling.last_query`.

    `total_bytes_processed` / `total_bytes_billed` come from the finished job (None or 0 on the
    emulator, which does not meter bytes); `maximum_bytes_billed` is the cap sent with the job.
    """

    job_id: str | None
    sql: str
    params: QueryParams
    maximum_bytes_billed: int
    total_bytes_processed: int | None
    total_bytes_billed: int | None
    cache_hit: bool | None
    result_rows: int


# --- parsing (pure) ------------------------------------------------------------------------------


def parse_rows(
    rows: Iterable[Mapping[str, Any]], period: BillingPeriod, cell_dims: tuple[str, ...] | None = None
) -> CostReport:
    """Turn the query's grouped rows into a report. A drifted row shape raises BAD_RESPONSE.

    Zero rows is a real $0 (nothing billed yet this invoice month). Rows dated outside the month
    (corrections for earlier usage billed on this invoice) count on the month's first day; rows
    dated after today count today, so the total always equals the sum of the days.
    """
    acc = CostAccumulator(period, cell_dims)
    last_export: dt.datetime | None = None
    currencies: set[str] = set()
    moved = 0
    first, last = period.first_day, min(period.today, period.last_day)
    for row in rows:
        day, usd, exported, currency = _group(row)
        currencies.add(currency)
        if day < first or day > last:
            moved += 1
            day = first if day < first else last
        acc.add(
            day,
            usd,
            {"sku": _nullable_str(row["sku"], "sku"), "project": _nullable_str(row["project_id"], "project_id")},
        )
        last_export = exported if last_export is None else max(last_export, exported)
    notes = [*acc.anomaly_notes(), *_report_notes(period, currencies, moved)]
    if last_export is None:
        empty = f"no Gemini API / Vertex AI rows in the Cloud Billing export for invoice month {period.key} yet"
        freshness = Freshness(None, f"{empty}; {FRESHNESS_NOTE}")
    else:
        freshness = Freshness(last_export, FRESHNESS_NOTE)
    return CostReport(
        period=period,
        mtd_usd=acc.total(),
        daily=acc.daily(),
        breakdown=acc.breakdown(),
        freshness=freshness,
        notes=tuple(notes),
        requests=1,
        cells=acc.cells(),
        cell_dims=acc.cell_dims,
    )


def _group(row: Mapping[str, Any]) -> tuple[dt.date, Decimal, dt.datetime, str]:
    """One result row checked: its day, net USD, newest export time (UTC) and billing currency."""
    missing = [c for c in RESULT_COLUMNS if c not in row]
    if missing:
        raise ProviderError(Cause.BAD_RESPONSE, f"billing export result row lacks {', '.join(missing)}")
    unusable = _int(row["unusable_rows"], "unusable_rows")
    if unusable:
        raise ProviderError(
            Cause.BAD_RESPONSE,
            f"{unusable} billing export row(s) without cost or a positive currency_conversion_rate "
            "(they cannot be converted to USD)",
        )
    if _int(row["row_count"], "row_count") <= 0:
        raise ProviderError(Cause.BAD_RESPONSE, "billing export group with no rows")
    day = row["usage_day"]
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ProviderError(Cause.BAD_RESPONSE, f"usage_day is not a date: {type(day).__name__}")
    if row["net_nano_usd"] is None:
        raise ProviderError(Cause.BAD_RESPONSE, "net_nano_usd is NULL for a group with usable rows")
    usd = Decimal(_int(row["net_nano_usd"], "net_nano_usd")).scaleb(-9)
    exported = row["last_export_time"]
    if not isinstance(exported, dt.datetime) or exported.tzinfo is None:
        raise ProviderError(Cause.BAD_RESPONSE, "last_export_time is not a timezone-aware timestamp")
    currency = row["currency"]
    if not isinstance(currency, str) or not currency:
        raise ProviderError(Cause.BAD_RESPONSE, "currency is missing from a billing export row")
    return day, usd, exported.astimezone(UTC), currency.upper()


def _report_notes(period: BillingPeriod, currencies: set[str], moved: int) -> list[str]:
    notes = []
    foreign = sorted(currencies - {"USD"})
    if foreign:
        notes.append(f"billing currency {', '.join(foreign)} converted to USD at the export's currency_conversion_rate")
    if moved:
        notes.append(
            f"{moved} group(s) of usage dated outside {period.key} (corrections billed on this invoice) "
            "counted on the nearest day of the month"
        )
    return notes


def row_count(rows: Iterable[Mapping[str, Any]]) -> int:
    """How many export rows the grouped result counts (rows already passed `parse_rows`)."""
    return sum(_int(row["row_count"], "row_count") for row in rows)


def first_partition(rows: Iterable[Mapping[str, Any]]) -> dt.datetime | None:
    """The oldest `_PARTITIONTIME` holding a counted row, or None for no rows."""
    oldest: dt.datetime | None = None
    for row in rows:
        value = row["first_partition"]
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ProviderError(Cause.BAD_RESPONSE, "first_partition is not a timezone-aware timestamp")
        oldest = value if oldest is None else min(oldest, value)
    return oldest


def late_row_note(hourly: CostReport, deep: CostReport, missed_rows: int, oldest: dt.datetime, margin: int) -> str:
    """The note of a deep query that found rows below the hourly floor: how much, and what to raise."""
    first_utc_day = deep.period.start.astimezone(UTC).date()
    need = max((first_utc_day - oldest.astimezone(UTC).date()).days, margin + 1)
    return (
        f"the {margin}-day late-row margin missed {_money(deep.mtd_usd - hourly.mtd_usd)} "
        f"({missed_rows} export row(s) in partitions from {oldest.astimezone(UTC):%Y-%m-%d}); "
        f"the daily deep query counted them: raise late_row_margin_days to {need}"
    )


def _money(v: Decimal) -> str:
    # The sign and two decimals of alerts.rules.money (providers do not import alerts/).
    q = v.quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"-${-q:,.2f}" if q < 0 else f"${q:,.2f}"


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected an integer, got {type(value).__name__}")
    return value


def _nullable_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected a string, got {type(value).__name__}")


# --- errors --------------------------------------------------------------------------------------

_REASON_CAUSES: Mapping[str, Cause] = {
    "bytesBilledLimitExceeded": Cause.QUOTA,  # our maximum_bytes_billed cap (the client maps it to 500)
    "billingTierLimitExceeded": Cause.QUOTA,
    "notFound": Cause.NOT_FOUND,
    "accessDenied": Cause.PERMISSION,
    "billingNotEnabled": Cause.PERMISSION,
    "rateLimitExceeded": Cause.RATE_LIMIT,
    "quotaExceeded": Cause.RATE_LIMIT,
    "invalidQuery": Cause.CLIENT_ERROR,
    "invalid": Cause.CLIENT_ERROR,
    "responseTooLarge": Cause.BAD_RESPONSE,
    "backendError": Cause.SERVER_ERROR,
    "internalError": Cause.SERVER_ERROR,
}

_HINTS: Mapping[Cause, str] = {
    Cause.NOT_FOUND: "check billing_export_table (project.dataset.gcp_billing_export_v1_...) and that the export is on",
    Cause.PERMISSION: "grant the function's service account roles/bigquery.jobUser on the job project and "
    "roles/bigquery.dataViewer on the billing export dataset",
    Cause.QUOTA: "the query would read more than maximum_bytes_billed; raise it or lower late_row_margin_days",
    Cause.CLIENT_ERROR: "is billing_export_table a standard usage cost export (gcp_billing_export_v1_...)?",
    Cause.AUTH: "no usable Google credentials for BigQuery",
}


def classify(exc: BaseException, table: str) -> ProviderError:
    """The `ProviderError` for an exception raised while querying BigQuery (never leaks secrets).

    The error's `reason` decides first, because the client turns a failed job's errorResult into an
    HTTP-status exception by a fixed table (an unknown reason such as `bytesBilledLimitExceeded`
    becomes a 500). The exception class decides otherwise.
    """
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        exc = exc.cause  # the retry gave up: classify what it was retrying
    status: int | None = None
    reason: str | None = None
    detail = type(exc).__name__
    if isinstance(exc, gexc.GoogleAPICallError):
        status = int(exc.code) if isinstance(exc.code, int) else None
        errors = exc.errors or []
        first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
        reason = first.get("reason") if isinstance(first.get("reason"), str) else None
        message = first.get("message") if isinstance(first.get("message"), str) else exc.message
        detail = f"{reason or type(exc).__name__}: {str(message).splitlines()[0][:200] if message else ''}".rstrip(": ")

    if reason is not None and reason in _REASON_CAUSES:
        cause = _REASON_CAUSES[reason]
    else:
        cause = next((c for types, c in _class_causes() if isinstance(exc, types)), Cause.BAD_RESPONSE)
    hint = _HINTS.get(cause)
    message = f"BigQuery query on {table}: {detail}" + (f" ({hint})" if hint else "")
    return ProviderError(cause, message, status=status)


def _class_causes() -> list[tuple[tuple[type[BaseException], ...], Cause]]:
    """Exception classes → cause, the first match wins (order matters: NotFound is a ClientError)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from requests import exceptions as req_exc

    return [
        ((gexc.NotFound,), Cause.NOT_FOUND),
        ((gexc.Forbidden, gexc.PermissionDenied), Cause.PERMISSION),
        ((gexc.Unauthorized, gexc.Unauthenticated, auth_exc.GoogleAuthError), Cause.AUTH),
        ((gexc.TooManyRequests, gexc.ResourceExhausted), Cause.RATE_LIMIT),
        ((gexc.DeadlineExceeded, gexc.RetryError, TimeoutError, req_exc.Timeout), Cause.TIMEOUT),
        ((gexc.ServerError,), Cause.SERVER_ERROR),
        ((gexc.ClientError,), Cause.CLIENT_ERROR),
        ((req_exc.ConnectionError,), Cause.CONNECTION),
    ]


def _handled_errors() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from requests import exceptions as req_exc

    return (gexc.GoogleAPIError, auth_exc.GoogleAuthError, req_exc.RequestException, TimeoutError)


# --- the client ----------------------------------------------------------------------------------

# What this module imports on first use (see `check.import_client_libraries`).
BIGQUERY_IMPORTS = (
    "google.cloud.bigquery",
    "google.cloud.bigquery.retry",
    "google.auth.credentials",
    "google.auth.exceptions",
    "google.api_core.exceptions",
    "requests.exceptions",
)

_CLIENTS: dict[tuple[str | None, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def make_client(project: str | None, emulator_host: str | None) -> Any:
    """A `bigquery.Client`, one per (project, endpoint) per process (warm instances reuse it).

    With `emulator_host` it is anonymous and bound to that endpoint. google.cloud.bigquery is
    imported here, not at module import, so a cold start that never reaches Gemini pays nothing.
    """
    key = (project, emulator_host)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            from google.cloud import bigquery

            if emulator_host:
                from google.auth.credentials import AnonymousCredentials

                endpoint = emulator_host if "://" in emulator_host else f"http://{emulator_host}"
                client = bigquery.Client(
                    project=project,
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": endpoint},
                )
            else:
                client = bigquery.Client(project=project)
            _CLIENTS[key] = client
        return client


# --- the source ----------------------------------------------------------------------------------


@dataclasses.dataclass
class GeminiBilling:
    """Month-to-date Gemini API + Vertex AI spend of one Cloud Billing export table."""

    account: GeminiAccount
    deps: Deps
    provider: str = "gemini"
    last_query: QueryStats | None = None  # the hourly query of the last fetch
    last_deep_query: QueryStats | None = None  # its deep query, when that fetch ran one
    _client: Any = dataclasses.field(default=None, repr=False)

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now, SPEC.month_tz)

    def deep_scan_due(self, now: dt.datetime) -> bool:
        """Whether the check at `now` also runs the deep query: once a day, in `deps.deep_scan_hour_utc`.

        check.py passes the digest's hour whether or not the digest is enabled: the deep query guards
        the figure, not the message. A margin already at the deep floor needs no second query.
        """
        hour = self.deps.deep_scan_hour_utc
        return (
            hour is not None
            and now.astimezone(UTC).hour == hour
            and self.account.late_row_margin_days < GEMINI_DEEP_SCAN_DAYS
        )

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        """The hourly query; in the deep-scan hour, then the same query with a floor 35 days down.

        Both jobs share the check's deadline and each carries `maximum_bytes_billed`. The deep query
        admits a superset of the hourly one's partitions with the same `as_of`: if it counts more
        rows and some sit below the hourly floor (`first_partition`), the report is the deep one,
        with a note saying what the margin missed and what to raise it to. A failed deep query
        keeps the hourly figure (as good as any other hour's) and says so in a note; it never
        fails the source.

        Long because the comparison of the two queries and the note it writes read best in one place.
        """
        params = QueryParams.for_period(period, self.account, as_of=self.deps.past_as_of)
        rows, self.last_query = self._query(params, deadline)
        self.last_deep_query = None
        hourly = parse_rows(rows, period, self.deps.cell_dims.get(SPEC.name))
        if not self.deep_scan_due(period.now):
            return hourly
        deep_params = QueryParams.for_period(
            period, self.account, margin_days=GEMINI_DEEP_SCAN_DAYS, as_of=self.deps.past_as_of
        )
        try:
            deep_rows, self.last_deep_query = self._query(deep_params, deadline)
            deep = parse_rows(deep_rows, period, self.deps.cell_dims.get(SPEC.name))
            missed = row_count(deep_rows) - row_count(rows)
            oldest = first_partition(deep_rows)
        except ProviderError as exc:
            logs.event(
                log,
                logging.WARNING,
                f"gemini/{self.account.label}: daily deep query failed",
                cause=exc.cause.value,
                error=exc.message,
            )
            note = (
                f"the daily deep query for late rows below the {params.margin_days}-day margin failed "
                f"({exc.cause.describe}); this figure may miss them"
                + ("; raise maximum_bytes_billed for it" if exc.cause is Cause.QUOTA else "")
            )
            return dataclasses.replace(hourly, notes=(*hourly.notes, note), requests=2)
        if missed <= 0 or oldest is None or oldest >= params.partition_floor:
            # Nothing below the hourly floor (extra rows there were exported between the two jobs).
            return dataclasses.replace(hourly, requests=2)
        note = late_row_note(hourly, deep, missed, oldest, params.margin_days)
        logs.event(
            log,
            logging.WARNING,
            f"gemini/{self.account.label}: rows below the late-row margin",
            missed_rows=missed,
            missed_usd=str(deep.mtd_usd - hourly.mtd_usd),
            oldest_partition=oldest.isoformat(),
            note=note,
        )
        return dataclasses.replace(deep, notes=(*deep.notes, note), requests=2)

    def _query(self, params: QueryParams, deadline: Deadline) -> tuple[list[dict[str, Any]], QueryStats]:
        """Run the month-to-date query with `params`: its rows and what the job cost."""
        table = self.account.billing_export_table
        sql = build_query(table)
        left = deadline.remaining()
        if left <= 0.05:
            raise ProviderError(Cause.TIMEOUT, "no time left in the check's deadline for the BigQuery query")
        try:
            client = self._bigquery()
            from google.cloud import bigquery
            from google.cloud.bigquery.retry import DEFAULT_RETRY

            job_config = bigquery.QueryJobConfig(
                query_parameters=params.to_bigquery(),
                maximum_bytes_billed=self.account.maximum_bytes_billed,
                use_query_cache=True,  # same SQL + params + unchanged table: free and identical
            )
            job = client.query(
                sql,
                job_config=job_config,
                timeout=left,
                retry=DEFAULT_RETRY.with_timeout(left),
                job_retry=None,  # else the library wraps jobs.insert in its own 10-minute retry
            )
            result = job.result(
                timeout=max(deadline.remaining(), 0.1),
                retry=DEFAULT_RETRY.with_timeout(max(deadline.remaining(), 0.1)),
            )
            rows = [dict(row.items()) for row in result]
        except ProviderError:
            raise
        except _handled_errors() as exc:
            raise classify(exc, table) from None
        return rows, self._stats(job, sql, params, len(rows))

    def _stats(self, job: Any, sql: str, params: QueryParams, result_rows: int) -> QueryStats:
        return QueryStats(
            job_id=getattr(job, "job_id", None),
            sql=sql,
            params=params,
            maximum_bytes_billed=self.account.maximum_bytes_billed,
            total_bytes_processed=getattr(job, "total_bytes_processed", None),
            total_bytes_billed=getattr(job, "total_bytes_billed", None),
            cache_hit=getattr(job, "cache_hit", None),
            result_rows=result_rows,
        )

    def _bigquery(self) -> Any:
        if self._client is None:
            project = self.deps.bigquery_job_project
            if self.deps.bigquery_factory is not None:
                self._client = self.deps.bigquery_factory(project)
            else:
                if project is None and self.deps.bigquery_emulator_host:
                    project = self.account.billing_export_table.split(".", 1)[0]  # the emulator needs one
                self._client = make_client(project, self.deps.bigquery_emulator_host)
        return self._client


def from_config(account: Any, deps: Deps) -> GeminiBilling:
    assert isinstance(account, GeminiAccount)
    return GeminiBilling(account, deps)


# --- doctor --------------------------------------------------------------------------------------

RUNS_PER_MONTH = 720  # Cloud Scheduler hourly, 30 days
# BigQuery on-demand analysis: $6.25 per TiB, a 10 MB minimum per table referenced, first 1 TiB per
# month free per billing account (https://cloud.google.com/bigquery/pricing#on_demand_pricing). The
# estimate ignores the free tier: it is shared with everything else on the billing account.
USD_PER_TIB = Decimal("6.25")
MIN_BILLED_BYTES = 10 * 1024**2
EXPORT_STALE = dt.timedelta(hours=48)  # the export lags hours; two days without a row means it is off


def probe(account: Any, deps: Deps, now: dt.datetime, deadline: Deadline) -> ProbeResult:
    """Doctor: a dry run of the check's own query and parameters, then the newest `export_time` (one column).

    Reports the bytes per run, the monthly bytes and cost at `RUNS_PER_MONTH` runs, and whether
    `maximum_bytes_billed` would be hit. Both BigQuery calls share `deadline`.
    """
    source = from_config(account, deps)
    period = source.billing_period(now)
    params = QueryParams.for_period(period, account)
    client, processed = _dry_run(source, params, deadline)
    cap = account.maximum_bytes_billed
    per_run = max(math.ceil(processed / 1024**2) * 1024**2, MIN_BILLED_BYTES)  # what the cap is held against
    monthly = per_run * RUNS_PER_MONTH
    cost = (Decimal(monthly) / Decimal(1024**4) * USD_PER_TIB).quantize(Decimal("0.01"))
    facts: dict[str, Any] = {
        "bytes_processed": processed,
        "maximum_bytes_billed": cap,
        "bytes_billed_per_run": per_run,
        "would_hit_cap": per_run > cap,
        "runs_per_month": RUNS_PER_MONTH,
        "monthly_bytes_billed": monthly,
        "monthly_cost_usd": str(cost),
    }
    summary = f"dry run: {_bytes(processed)} per run, {_bytes(monthly)} / ~${cost} a month at {RUNS_PER_MONTH} runs"
    if per_run > cap:
        return (
            "fail",
            f"{summary}; over maximum_bytes_billed ({_bytes(cap)}): every check would fail as quota. "
            "Raise maximum_bytes_billed or lower late_row_margin_days",
            facts,
        )
    newest = _newest_export(client, account.billing_export_table, params, cap, deadline)
    facts["newest_export_time"] = newest.isoformat() if newest else None
    if newest is None:
        return "warn", f"{summary}; no export rows since the partition floor: is the billing export on?", facts
    if now - newest > EXPORT_STALE:
        return "warn", f"{summary}; newest export_time {newest:%Y-%m-%d %H:%M}Z is over 2 days old", facts
    return "ok", f"{summary}; newest export_time {newest:%Y-%m-%d %H:%M}Z", facts


def _dry_run(source: GeminiBilling, params: QueryParams, deadline: Deadline) -> tuple[Any, int]:
    """The check's own client and the bytes its month query would process (a dry run bills nothing)."""
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    table = source.account.billing_export_table
    try:
        client = source._bigquery()  # the check's own client path (factory, emulator, job project)
        # Dry run: validates the SQL against the real table and returns the estimate in
        # statistics.query.totalBytesProcessed, billing nothing. No maximum_bytes_billed on it: the
        # point is to learn the number and compare it with the cap ourselves.
        # (https://cloud.google.com/bigquery/docs/samples/bigquery-query-dry-run)
        job = client.query(
            build_query(table),
            job_config=bigquery.QueryJobConfig(
                dry_run=True, use_query_cache=False, query_parameters=params.to_bigquery()
            ),
            timeout=deadline.remaining(),
            retry=DEFAULT_RETRY.with_timeout(deadline.remaining()),
            job_retry=None,
        )
        return client, int(job.total_bytes_processed or 0)
    except _handled_errors() as exc:
        raise classify(exc, table) from None


def _newest_export(client: Any, table: str, params: Any, cap: int, deadline: Deadline) -> dt.datetime | None:
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    if "`" in table or "\n" in table:
        raise ValueError("billing_export_table must be a plain project.dataset.table name")
    sql = (
        f"SELECT MAX(export_time) AS newest FROM `{table}` "
        "WHERE _PARTITIONTIME >= @partition_floor AND export_time <= @as_of"
    )  # one column over the month query's partitions: a fraction of its bytes, under the same cap
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("partition_floor", "TIMESTAMP", params.partition_floor),
            bigquery.ScalarQueryParameter("as_of", "TIMESTAMP", params.as_of),
        ],
        maximum_bytes_billed=cap,
    )
    try:
        left = max(deadline.remaining(), 0.1)
        job = client.query(sql, job_config=config, timeout=left, retry=DEFAULT_RETRY.with_timeout(left), job_retry=None)
        left = max(deadline.remaining(), 0.1)
        rows = list(job.result(timeout=left, retry=DEFAULT_RETRY.with_timeout(left)))
    except _handled_errors() as exc:
        raise classify(exc, table) from None
    value = rows[0]["newest"] if rows else None
    if value is not None and not isinstance(value, dt.datetime):
        raise ProviderError(Cause.BAD_RESPONSE, "MAX(export_time) is not a timestamp")
    return value.astimezone(UTC) if value is not None else None


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


SPEC = ProviderSpec(
    name="gemini",
    title="Gemini / Vertex AI",
    console_url="https://console.cloud.google.com/billing/reports",
    account_schema=GeminiAccount,
    build=from_config,
    month_tz=PACIFIC,
    month_wording="US Pacific invoice month",
    month_note="Google bills by the US Pacific invoice month",
    accounts_required="billing_export_table",
    client_imports=BIGQUERY_IMPORTS,
    probe=probe,
    team_match=GeminiTeamMatch,
    mover_dims=("sku", "project"),
    owner_words={"project": "project", "sku": "SKU"},
)
