"""Google Gemini API and Vertex AI spend from the Cloud Billing export in BigQuery.

There is no Gemini cost API: actual spend is only in the standard usage cost export table
(`gcp_billing_export_v1_<BILLING_ACCOUNT_ID>`). One parameterised query per check reads it.

Month: the Google **invoice month** (`invoice.month`, `YYYYMM`), which runs on US Pacific time, so
at 2026-12-01 03:00 UTC it is still November. Days are Pacific days of `usage_start_time`.

Money: per row, `cost` (gross, billing-account currency) plus the row's own credits (negative),
summed with a correlated `(SELECT SUM(c.amount) FROM UNNEST(credits) c)` (a join would repeat
`cost` once per credit). The export's `currency_conversion_rate` is the "exchange rate from US
dollars to the local currency" (local = USD x rate), so USD = local / rate, per row because the rate
can change during the month. Each row's USD is rounded to a whole nano-dollar (INT64) and those are
summed: exact integer sums at NUMERIC's 9 decimals. (CAST AS NUMERIC is not used: the emulator
turns it into DECIMAL(18,3), rounding every row to a tenth of a cent, and a parameterised
NUMERIC(38, 9) in CAST is not portable to BigQuery.) A row with no cost or no usable rate fails
the fetch: it would otherwise vanish from the sum.

Bytes: the export tables are day-partitioned on the ingestion-time pseudo-column `_PARTITIONTIME`
(a UTC midnight never later than a row's `export_time`). The query keeps partitions from
`late_row_margin_days` before the UTC date of the invoice month's start and prunes every older
one: rows exported during the month are always inside, and so are corrections dated up to the
margin before the month. Should Google stamp partitions by usage day, a correction for usage older
than the margin would fall below the floor: raise `late_row_margin_days` (up to 31) to read it, at
the cost of that many more days of partitions. The job carries `maximum_bytes_billed`; hitting it
is a QUOTA failure, never $0. Only the columns in `COLUMNS_READ` are referenced.

As of: `export_time <= @as_of` (the check's `now`), so a replay sees the table as it was then.

The BigQuery emulator used in tests (bqemulator) reads `_PARTITIONTIME` as CURRENT_TIMESTAMP()
(it has no ingestion partitions), so there the partition predicate is true for every month that
has started; the SQL is the same in both places.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from config import GeminiAccount
from errors import Cause, ProviderError
from models import PACIFIC, UTC, BillingPeriod, CostReport, Freshness
from providers import Deps
from providers._aggregate import CostAccumulator
from providers._http import Deadline

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
)

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
  MAX(export_time) AS last_export_time
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
    partition_floor: dt.datetime  # UTC midnight, late_row_margin_days before the month's start
    as_of: dt.datetime  # the check's now: rows exported later are not seen

    @classmethod
    def for_period(cls, period: BillingPeriod, account: GeminiAccount) -> QueryParams:
        first_utc_day = period.start.astimezone(UTC).date()
        floor_day = first_utc_day - dt.timedelta(days=account.late_row_margin_days)
        return cls(
            invoice_month=f"{period.year:04d}{period.month:02d}",
            service_ids=tuple(account.service_ids),
            partition_floor=dt.datetime.combine(floor_day, dt.time(), UTC),
            as_of=period.now,
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


def parse_rows(rows: Iterable[Mapping[str, Any]], period: BillingPeriod) -> CostReport:
    """Turn the query's grouped rows into a report. A drifted row shape raises BAD_RESPONSE.

    Zero rows is a real $0 (nothing billed yet this invoice month). Rows dated outside the month
    (corrections for earlier usage billed on this invoice) count on the month's first day; rows
    dated after today count today, so the total always equals the sum of the days.
    """
    acc = CostAccumulator(period)
    last_export: dt.datetime | None = None
    currencies: set[str] = set()
    moved = 0
    first, last = period.first_day, min(period.today, period.last_day)
    for row in rows:
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
        currencies.add(currency.upper())
        if day < first or day > last:
            moved += 1
            day = first if day < first else last
        acc.add(day, usd, {"sku": _opt_str(row["sku"], "sku"), "project": _opt_str(row["project_id"], "project_id")})
        exported = exported.astimezone(UTC)
        last_export = exported if last_export is None else max(last_export, exported)

    notes = list(acc.anomaly_notes())
    foreign = sorted(currencies - {"USD"})
    if foreign:
        notes.append(f"billing currency {', '.join(foreign)} converted to USD at the export's currency_conversion_rate")
    if moved:
        notes.append(
            f"{moved} group(s) of usage dated outside {period.key} (corrections billed on this invoice) "
            "counted on the nearest day of the month"
        )
    if last_export is None:
        freshness = Freshness(
            None,
            f"no Gemini API / Vertex AI rows in the Cloud Billing export for invoice month {period.key} yet; "
            + FRESHNESS_NOTE,
        )
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
    )


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderError(Cause.BAD_RESPONSE, f"{what}: expected an integer, got {type(value).__name__}")
    return value


def _opt_str(value: Any, what: str) -> str | None:
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
    from google.auth import exceptions as auth_exc
    from requests import exceptions as req_exc

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

    cause: Cause
    if reason is not None and reason in _REASON_CAUSES:
        cause = _REASON_CAUSES[reason]
    elif isinstance(exc, gexc.NotFound):
        cause = Cause.NOT_FOUND
    elif isinstance(exc, gexc.Forbidden | gexc.PermissionDenied):
        cause = Cause.PERMISSION
    elif isinstance(exc, gexc.Unauthorized | gexc.Unauthenticated | auth_exc.GoogleAuthError):
        cause = Cause.AUTH
    elif isinstance(exc, gexc.TooManyRequests | gexc.ResourceExhausted):
        cause = Cause.RATE_LIMIT
    elif isinstance(exc, gexc.DeadlineExceeded | gexc.RetryError | TimeoutError | req_exc.Timeout):
        cause = Cause.TIMEOUT
    elif isinstance(exc, gexc.ServerError):
        cause = Cause.SERVER_ERROR
    elif isinstance(exc, gexc.ClientError):
        cause = Cause.CLIENT_ERROR
    elif isinstance(exc, req_exc.ConnectionError):
        cause = Cause.CONNECTION
    else:
        cause = Cause.BAD_RESPONSE
    hint = _HINTS.get(cause)
    message = f"BigQuery query on {table}: {detail}" + (f" ({hint})" if hint else "")
    return ProviderError(cause, message, status=status)


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
    last_query: QueryStats | None = None
    _client: Any = dataclasses.field(default=None, repr=False)

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now, PACIFIC)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        table = self.account.billing_export_table
        sql = build_query(table)
        params = QueryParams.for_period(period, self.account)
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
        self.last_query = QueryStats(
            job_id=getattr(job, "job_id", None),
            sql=sql,
            params=params,
            maximum_bytes_billed=self.account.maximum_bytes_billed,
            total_bytes_processed=getattr(job, "total_bytes_processed", None),
            total_bytes_billed=getattr(job, "total_bytes_billed", None),
            cache_hit=getattr(job, "cache_hit", None),
            result_rows=len(rows),
        )
        return parse_rows(rows, period)

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
