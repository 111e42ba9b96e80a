# mypy: disable-error-code="no-untyped-call"
"""Gemini via the Cloud Billing export: Pacific invoice month, credits, currency, as-of, failures.

Most tests run the real query against the BigQuery emulator (one per module, from devservers) on
tables made by `simulator.billing_export`; the expected numbers come from its independent Python
`Decimal` arithmetic. Errors the emulator cannot produce (permission, the bytes-billed cap, 5xx,
timeouts) are raised by a spec'd fake at the Google-client seam.

The emulator reads `_PARTITIONTIME` as CURRENT_TIMESTAMP(), so the partition predicate is true for
every month that has started by the wall clock: these scenarios (Nov-Dec 2026) are in the past.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from conftest import ROOT
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import bigquery
from google.cloud.bigquery.job.base import _error_result_to_exception
from requests import exceptions as req_exc
from support import load_fixture, make_deps

import devservers
from errors import Cause, ProviderError
from models import CENT, PACIFIC, UTC, BillingPeriod
from providers import Deadline, gemini
from providers.gemini import GeminiAccount
from simulator import billing_export as sim

PROJECT = "gemini-test"
USD_TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
EUR_TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01EEEE_555555_99EEEE"
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
IDS = sim.GEMINI_SERVICE_IDS
emulator = pytest.mark.emulator


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bq() -> Iterator[devservers.Server]:
    with devservers.bigquery_server(project=PROJECT) as server:
        yield server


@pytest.fixture(scope="module")
def client(bq: devservers.Server) -> bigquery.Client:
    return devservers.bigquery_client(bq)


@pytest.fixture(scope="module")
def usd_rows(client: bigquery.Client) -> list[dict[str, Any]]:
    rows = sim.scenario_rows("2026-11")
    sim.create_export_table(client, USD_TABLE)
    sim.load(client, USD_TABLE, rows)
    return rows


@pytest.fixture(scope="module")
def eur_rows(client: bigquery.Client) -> list[dict[str, Any]]:
    rows = sim.scenario_rows(
        "2026-11", currency="EUR", conversion_rate="0.92", billing_account_id="01EEEE-555555-99EEEE"
    )
    sim.create_export_table(client, EUR_TABLE)
    sim.load(client, EUR_TABLE, rows)
    return rows


def _source(table: str, **deps: Any) -> gemini.GeminiBilling:
    return gemini.from_config(GeminiAccount(billing_export_table=table), make_deps(**deps))


def _emulated(table: str, bq: devservers.Server) -> gemini.GeminiBilling:
    """The production client path: no factory, just BIGQUERY_EMULATOR_HOST's value."""
    return _source(table, bigquery_job_project=PROJECT, bigquery_emulator_host=bq.url)


def _fetch(src: gemini.GeminiBilling, now: dt.datetime = NOW) -> Any:
    return src.fetch(src.billing_period(now), Deadline(30))


def _expected(rows: list[dict[str, Any]], month: str, now: dt.datetime) -> Decimal:
    return sim.expected_net_usd(rows, month, IDS, now)


def _table(client: bigquery.Client, name: str, rows: list[dict[str, Any]], only: Any = None) -> str:
    table = f"{PROJECT}.billing.{name}"
    sim.create_export_table(client, table, only=only, replace=True)
    if rows:
        sim.load(client, table, rows)
    return table


def _row(**over: Any) -> dict[str, Any]:
    """One Gemini API export row of 2026-11-10 (USD), fields overridable."""
    row: dict[str, Any] = {
        "billing_account_id": "01ABCD-234567-89ABCD",
        "service": {"id": sim.GEMINI_API[0], "description": "Gemini API"},
        "sku": {"id": "B0D2-1A3F-9C41", "description": "Gemini 2.5 Pro input tokens"},
        "usage_start_time": "2026-11-10T17:00:00Z",
        "usage_end_time": "2026-11-10T18:00:00Z",
        "project": {"id": "llm-prod-123456", "name": "LLM Prod"},
        "export_time": "2026-11-10T21:00:00Z",
        "cost": 10.0,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "credits": [],
        "invoice": {"month": "202611"},
        "cost_type": "regular",
    }
    row.update(over)
    return row


# --- the month, end to end on the emulator --------------------------------------------------------


@emulator
def test_month_to_date_equals_the_independent_total_to_the_cent(bq: devservers.Server, usd_rows: Any) -> None:
    """A month of Gemini API + Vertex AI rows sums to simulator.expected_net_usd, days to the total."""
    src = _emulated(USD_TABLE, bq)
    report = _fetch(src)
    expected = _expected(usd_rows, "202611", NOW)
    assert report.period.key == "2026-11" and report.period.tz_name == "America/Los_Angeles"
    assert report.mtd_usd.quantize(CENT) == expected.quantize(CENT)
    assert report.mtd_usd == expected  # per-row nano-dollars: exact, not just to the cent
    assert sum(d.amount for d in report.daily) == report.mtd_usd
    assert [d.day.day for d in report.daily] == list(range(1, 29))  # Pacific 1st .. today (the 28th)
    assert report.requests == 1


@emulator
def test_breakdown_by_sku_and_project(bq: devservers.Server, usd_rows: Any) -> None:
    """Breakdown lines are sku.description and project.id, each dimension summing to the total."""
    report = _fetch(_emulated(USD_TABLE, bq))
    for dim in ("sku", "project"):
        got = {b.key: b.amount for b in report.breakdown if b.dimension == dim}
        assert got == sim.expected_breakdown(usd_rows, "202611", IDS, NOW, dim)
        assert sum(got.values()) == report.mtd_usd
    skus = [b.key for b in report.breakdown if b.dimension == "sku"]
    assert skus[0] == "Gemini 2.5 Pro output tokens"  # largest first
    assert not any("Instance Core" in k or k == "Analysis" for k in skus)  # other services excluded


@emulator
def test_freshness_is_the_newest_export_time(bq: devservers.Server, usd_rows: Any) -> None:
    """Freshness.as_of is MAX(export_time) of the counted rows, with the Pacific/lag note."""
    report = _fetch(_emulated(USD_TABLE, bq))
    counted = [
        r for r in usd_rows
        if r["invoice"]["month"] == "202611" and r["service"]["id"] in IDS
        and dt.datetime.fromisoformat(r["export_time"]) <= NOW
    ]  # fmt: skip
    assert report.freshness.as_of == max(dt.datetime.fromisoformat(r["export_time"]) for r in counted)
    assert report.freshness.note == gemini.FRESHNESS_NOTE


@emulator
def test_utc_december_morning_is_still_pacific_november(bq: devservers.Server, usd_rows: Any) -> None:
    """At 2026-12-01 07:30 UTC the month is November and usage at 12-01 03:00 UTC counts in it."""
    now = dt.datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    report = _fetch(_emulated(USD_TABLE, bq), now)
    assert report.period.key == "2026-11"
    assert report.mtd_usd == _expected(usd_rows, "202611", now)
    without_tail = [r for r in usd_rows if r["usage_start_time"] != "2026-12-01T03:00:00.000000Z"]
    assert report.mtd_usd - _expected(without_tail, "202611", now) == Decimal("3.333333")
    assert report.daily[-1].day == dt.date(2026, 11, 30)


@emulator
def test_december_is_reported_from_pacific_midnight(bq: devservers.Server, usd_rows: Any) -> None:
    """At 2026-12-01 09:00 UTC (01:00 Pacific) only December's invoice rows count."""
    report = _fetch(_emulated(USD_TABLE, bq), dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert report.period.key == "2026-12"
    assert report.mtd_usd == Decimal("4.444444")
    assert [(d.day, d.amount) for d in report.daily] == [(dt.date(2026, 12, 1), Decimal("4.444444"))]


@emulator
def test_previous_invoice_month_rows_do_not_count(bq: devservers.Server, usd_rows: Any) -> None:
    """Usage on Oct 31 evening Pacific (Nov 1 UTC) is October's invoice: absent from November."""
    report = _fetch(_emulated(USD_TABLE, bq))
    october = [r for r in usd_rows if r["invoice"]["month"] == "202610"]
    assert len(october) == 1 and october[0]["usage_start_time"].startswith("2026-11-01T03:00")
    assert report.mtd_usd == _expected(usd_rows, "202611", NOW)


@emulator
def test_non_usd_billing_currency_is_converted(bq: devservers.Server, eur_rows: Any) -> None:
    """EUR costs and credits are divided by currency_conversion_rate (USD to EUR) row by row."""
    report = _fetch(_emulated(EUR_TABLE, bq))
    expected = _expected(eur_rows, "202611", NOW)
    assert report.mtd_usd == expected
    local = sum(
        Decimal(str(r["cost"])) + sum(Decimal(str(c["amount"])) for c in r["credits"])
        for r in eur_rows
        if r["invoice"]["month"] == "202611" and r["service"]["id"] in IDS
        and dt.datetime.fromisoformat(r["export_time"]) <= NOW
    )  # fmt: skip
    assert Decimal("1.07") < expected / local < Decimal("1.10")  # 1 / 0.92 = 1.087, not x 0.92
    assert any("EUR converted to USD" in n for n in report.notes)


@emulator
def test_as_of_hides_rows_exported_later(bq: devservers.Server, usd_rows: Any) -> None:
    """export_time <= now: the late Vertex rows of Nov 10 appear only once exported (Nov 13)."""
    src = _emulated(USD_TABLE, bq)
    before, after = dt.datetime(2026, 11, 12, 0, 0, tzinfo=UTC), dt.datetime(2026, 11, 14, 0, 0, tzinfo=UTC)
    late = [
        r for r in usd_rows
        if r["usage_start_time"].startswith("2026-11-10T17") and r["service"]["id"] == sim.VERTEX_AI[0]
    ]  # fmt: skip
    assert late and all(r["export_time"].startswith("2026-11-13") for r in late)
    early = _fetch(src, before)
    assert early.mtd_usd == _expected(usd_rows, "202611", before)
    assert early.freshness.as_of is not None and early.freshness.as_of <= before
    day10 = {d.day.day: d.amount for d in _fetch(src, after).daily}[10]
    assert day10 - {d.day.day: d.amount for d in early.daily}[10] == sum(sim.row_net_usd(r) for r in late)


@emulator
def test_credits_are_netted_once_per_row(bq: devservers.Server, client: bigquery.Client) -> None:
    """A row with two credits counts cost once (a join on UNNEST(credits) would count it twice)."""
    two = [
        {"name": "Free tier", "amount": -1.25, "type": "FREE_TIER"},
        {"name": "Promo", "amount": -2.5, "type": "PROMOTION"},
    ]
    rows = [_row(credits=two), _row(cost=0.5, credits=None), _row(cost=0.25, credits=[])]
    table = _table(client, "credits_once", rows)
    report = _fetch(_emulated(table, bq))
    assert report.mtd_usd == Decimal("7.0")  # 10 - 1.25 - 2.5 + 0.5 + 0.25
    assert report.mtd_usd == sim.expected_net_usd(rows, "202611", IDS, NOW)


@emulator
def test_days_are_pacific_days_of_usage(bq: devservers.Server, client: bigquery.Client) -> None:
    """Usage at 2026-11-10 05:00 UTC (21:00 PST on the 9th) is spend of Nov 9, not Nov 10."""
    rows = [_row(usage_start_time="2026-11-10T05:00:00Z", cost=2.0), _row(usage_start_time="2026-11-10T17:00:00Z")]
    report = _fetch(_emulated(_table(client, "pacific_days", rows), bq))
    days = {d.day.day: d.amount for d in report.daily}
    assert (days[9], days[10]) == (Decimal("2.0"), Decimal("10.0"))


@emulator
def test_only_other_services_is_a_real_zero(bq: devservers.Server, client: bigquery.Client) -> None:
    """Compute Engine rows are not Gemini: zero rows is $0 with no data-as-of, not a failure."""
    compute = {"id": "6F81-5844-456A", "description": "Compute Engine"}
    table = _table(client, "only_compute", [_row(service=compute), _row(service=compute, cost=3.0)])
    report = _fetch(_emulated(table, bq))
    assert report.mtd_usd == 0 and all(d.amount == 0 for d in report.daily) and report.breakdown == ()
    assert report.freshness.as_of is None and "no Gemini API / Vertex AI rows" in (report.freshness.note or "")


@emulator
def test_unconvertible_row_fails_instead_of_vanishing(bq: devservers.Server, client: bigquery.Client) -> None:
    """A row whose currency_conversion_rate is 0 fails the fetch rather than dropping out of the sum."""
    table = _table(client, "zero_rate", [_row(), _row(currency="EUR", currency_conversion_rate=0.0)])
    with pytest.raises(ProviderError) as exc:
        _fetch(_emulated(table, bq))
    assert exc.value.cause is Cause.BAD_RESPONSE and "currency_conversion_rate" in exc.value.message


@emulator
@pytest.mark.parametrize("table", [f"{PROJECT}.billing.no_such_table", f"{PROJECT}.no_such_dataset.t"])
def test_missing_table_is_not_found_never_zero(bq: devservers.Server, client: bigquery.Client, table: str) -> None:
    """A missing table or dataset is a NOT_FOUND failure naming the table, never $0."""
    client.create_dataset(f"{PROJECT}.billing", exists_ok=True)
    with pytest.raises(ProviderError) as exc:
        _fetch(_emulated(table, bq))
    assert exc.value.cause is Cause.NOT_FOUND and table in exc.value.message


@emulator
def test_table_of_another_shape_is_a_client_error(bq: devservers.Server, client: bigquery.Client) -> None:
    """A table without the export's columns (e.g. the wrong table) fails as CLIENT_ERROR with a hint."""
    table = _table(client, "not_an_export", [], only=[c for c in gemini.COLUMNS_READ if c != "credits.amount"])
    with pytest.raises(ProviderError) as exc:
        _fetch(_emulated(table, bq))
    assert exc.value.cause is Cause.CLIENT_ERROR and "standard usage cost export" in exc.value.message


@emulator
def test_query_reads_only_the_columns_it_declares(
    bq: devservers.Server, client: bigquery.Client, usd_rows: Any
) -> None:
    """The query runs on a table holding only COLUMNS_READ: it references no other column."""
    table = _table(client, "narrow", sim.narrow(usd_rows, gemini.COLUMNS_READ), only=gemini.COLUMNS_READ)
    assert {f.name for f in client.get_table(table).schema} == {
        "invoice", "service", "export_time", "usage_start_time", "sku", "project", "currency", "cost", "credits",
        "currency_conversion_rate",
    }  # fmt: skip
    assert _fetch(_emulated(table, bq)).mtd_usd == _expected(usd_rows, "202611", NOW)
    assert "SELECT *" not in gemini.build_query(table) and ".*" not in gemini.build_query(table)


@emulator
def test_job_is_parameterised_capped_and_recorded(client: bigquery.Client, usd_rows: Any) -> None:
    """One job: values only as parameters, maximum_bytes_billed on the wire, stats kept for benchmarks."""
    account = GeminiAccount(billing_export_table=USD_TABLE, maximum_bytes_billed=123_456_789, late_row_margin_days=3)
    src = gemini.from_config(account, make_deps(bigquery_factory=lambda project: client))
    with mock.patch.object(client, "query", wraps=client.query) as spy:
        report = _fetch(src)
    (call,) = spy.call_args_list
    sql, config = call.args[0], call.kwargs["job_config"]
    assert config.maximum_bytes_billed == 123_456_789
    assert config.to_api_repr()["query"]["maximumBytesBilled"] == "123456789"
    params = {p.name: p for p in config.query_parameters}
    assert params["invoice_month"].value == "202611"
    assert params["service_ids"].values == list(IDS)
    assert params["as_of"].value == NOW
    assert params["partition_floor"].value == dt.datetime(2026, 10, 29, tzinfo=UTC)  # Nov 1 (UTC date) - 3 days
    for literal in ("202611", *IDS, "2026-"):
        assert literal not in sql
    assert "_PARTITIONTIME >= @partition_floor" in sql and "export_time <= @as_of" in sql
    assert "FROM UNNEST(credits)" in sql and "JOIN" not in sql.upper()
    stats = src.last_query
    assert stats is not None and stats.sql == sql and stats.maximum_bytes_billed == 123_456_789
    assert stats.result_rows > 0 and stats.total_bytes_processed == 0  # the emulator meters nothing
    assert report.mtd_usd == _expected(usd_rows, "202611", NOW)


@emulator
def test_one_client_per_source(client: bigquery.Client, usd_rows: Any) -> None:
    """The BigQuery client is built once and reused for every fetch of a source."""
    factory = mock.Mock(return_value=client)
    src = gemini.from_config(
        GeminiAccount(billing_export_table=USD_TABLE), make_deps(bigquery_factory=factory, bigquery_job_project="jobs")
    )
    _fetch(src)
    _fetch(src, dt.datetime(2026, 11, 20, tzinfo=UTC))
    factory.assert_called_once_with("jobs")


@emulator
def test_simulator_cli_prepares_a_table_the_provider_agrees_with(
    bq: devservers.Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m simulator.billing_export` loads a month; run twice, the provider reports its expected USD."""
    table = f"{PROJECT}.cli.gcp_billing_export_v1_01CCCC_111111_22CCCC"
    argv = ["--endpoint", bq.url, "--project", PROJECT, "--table", table, "--month", "2026-11"]
    argv += ["--currency", "EUR", "--rate", "0.92", "--until", "2026-11-20T12:00:00Z"]
    assert sim.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert sim.main(argv) == 0  # the table is recreated, not appended to
    summary = json.loads(capsys.readouterr().out)
    assert summary == first and summary["rows"] > 300
    assert summary["invoice_month"] == "202611" and summary["currency"] == "EUR"
    report = _fetch(_emulated(table, bq), dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    assert report.mtd_usd == Decimal(summary["expected_net_usd"]) > 0


# --- late rows below the partition floor (partitions stored by the simulator) ----------------------

LATE_TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01LATE_234567_89ABCD"
LATE_8 = sim.late_correction("2026-11", days_below=8, usd="-4.000000")
LATE_20 = sim.late_correction("2026-11", days_below=20, usd="-7.250000")


@pytest.fixture(scope="module")
def late_rows(client: bigquery.Client) -> list[dict[str, Any]]:
    """November plus two corrections in partitions 8 and 20 days below its first UTC day (Nov 1)."""
    rows = sim.with_partitions([*sim.scenario_rows("2026-11"), LATE_8, LATE_20])
    sim.create_export_table(client, LATE_TABLE, partition_column=True, replace=True)
    sim.load(client, LATE_TABLE, rows)
    return rows


def _late_source(client: bigquery.Client, *, margin: int | None = None, hour: int | None = None) -> Any:
    account = GeminiAccount(billing_export_table=LATE_TABLE)
    if margin is not None:
        account = GeminiAccount(billing_export_table=LATE_TABLE, late_row_margin_days=margin)
    deps = make_deps(bigquery_factory=lambda project: sim.PartitionedClient(client), deep_scan_hour_utc=hour)
    return gemini.from_config(account, deps)


def _floor(days: int) -> dt.datetime:
    return dt.datetime(2026, 11, 1, tzinfo=UTC) - dt.timedelta(days=days)


def test_simulated_partitions_place_rows_where_asked() -> None:
    """Rows sit in their export_time's UTC day; late corrections 8 and 20 days below Nov 1 (UTC)."""
    row = sim.scenario_rows("2026-11")[0]
    exported = dt.datetime.fromisoformat(row["export_time"])
    assert sim.partition_time(row) == dt.datetime.combine(exported.date(), dt.time(), UTC)
    assert sim.partition_time(LATE_8) == dt.datetime(2026, 10, 24, tzinfo=UTC)
    assert sim.partition_time(LATE_20) == dt.datetime(2026, 10, 12, tzinfo=UTC)
    assert LATE_20["invoice"]["month"] == "202611" and LATE_20["export_time"].startswith("2026-11-15")


@emulator
def test_partitioned_client_prunes_below_the_floor(client: bigquery.Client, late_rows: Any) -> None:
    """The simulator's stand-in enforces the floor: with the old 5-day margin both corrections are lost."""
    report = _fetch(_late_source(client, margin=5))
    assert report.mtd_usd == sim.expected_net_usd(late_rows, "202611", IDS, NOW, partition_floor=_floor(5))
    assert report.mtd_usd == _expected(late_rows, "202611", NOW) - sim.row_net_usd(LATE_8) - sim.row_net_usd(LATE_20)


@emulator
def test_correction_eight_days_below_the_month_counts_by_default(client: bigquery.Client, late_rows: Any) -> None:
    """Default margin 10 days: the correction 8 days below counts in the hourly query; one job only."""
    src = _late_source(client, hour=9)  # 18:00 UTC is not the deep-scan hour
    report = _fetch(src)
    assert GeminiAccount.model_fields["late_row_margin_days"].default == 10
    assert src.last_query is not None and src.last_query.params.partition_floor == _floor(10)
    assert report.mtd_usd == _expected(late_rows, "202611", NOW) - sim.row_net_usd(LATE_20)
    assert src.last_deep_query is None and report.requests == 1
    assert not any("late-row margin" in n for n in report.notes)


@emulator
def test_daily_deep_query_finds_the_correction_twenty_days_below(client: bigquery.Client, late_rows: Any) -> None:
    """In the deep-scan hour the 35-day query counts the 20-day correction and says what to raise."""
    src = _late_source(client, hour=NOW.hour)
    report = _fetch(src)
    assert report.mtd_usd == _expected(late_rows, "202611", NOW)  # every row of the invoice month
    assert src.last_deep_query is not None and src.last_deep_query.params.partition_floor == _floor(35)
    assert src.last_query is not None and src.last_query.params.partition_floor == _floor(10)
    assert src.last_deep_query.sql == src.last_query.sql  # the same query, another floor
    assert report.requests == 2
    (note,) = [n for n in report.notes if "late-row margin" in n]
    assert note == (
        "the 10-day late-row margin missed -$7.25 (1 export row(s) in partitions from 2026-10-12); "
        "the daily deep query counted them: raise late_row_margin_days to 20"
    )
    assert sum(d.amount for d in report.daily) == report.mtd_usd


@emulator
def test_deep_query_is_deterministic_for_a_replayed_instant(client: bigquery.Client, late_rows: Any) -> None:
    """The same `now` gives the same figure and note, before and after later rows are exported."""
    now = dt.datetime(2026, 11, 14, 9, 30, tzinfo=UTC)  # before LATE_20 is exported (Nov 15)
    first = _fetch(_late_source(client, hour=9), now)
    again = _fetch(_late_source(client, hour=9), now)
    assert (first.mtd_usd, first.notes) == (again.mtd_usd, again.notes)
    assert first.mtd_usd == _expected(late_rows, "202611", now)
    assert not any("late-row margin" in n for n in first.notes)  # the 20-day correction is not out yet
    later = _fetch(_late_source(client, hour=9), dt.datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
    assert any("raise late_row_margin_days to 20" in n for n in later.notes)


@emulator
def test_deep_query_that_finds_nothing_keeps_the_hourly_figure(client: bigquery.Client, usd_rows: Any) -> None:
    """No rows below the floor: the hourly figure, no note, two jobs."""
    src = gemini.from_config(
        GeminiAccount(billing_export_table=USD_TABLE),
        make_deps(bigquery_factory=lambda p: client, deep_scan_hour_utc=18),
    )
    with mock.patch.object(client, "query", wraps=client.query) as spy:
        report = _fetch(src)
    assert len(spy.call_args_list) == 2 and report.requests == 2
    assert report.mtd_usd == _expected(usd_rows, "202611", NOW)
    assert not any("late-row margin" in n for n in report.notes)


class _DeepQueryFails:
    """The emulator's client for the first query; the second (deep) job fails at our bytes cap."""

    def __init__(self, client: bigquery.Client) -> None:
        self.client, self.calls = client, 0

    def query(self, sql: str, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise _error_result_to_exception(
                {"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit for bytes billed: 5368709120."}
            )
        return self.client.query(sql, **kwargs)


@emulator
def test_failed_deep_query_keeps_the_hourly_figure_with_a_note(client: bigquery.Client, late_rows: Any) -> None:
    """A deep query over the bytes cap never fails the source: hourly figure plus a note naming it."""
    fake = _DeepQueryFails(client)
    src = gemini.from_config(
        GeminiAccount(billing_export_table=LATE_TABLE),
        make_deps(bigquery_factory=lambda p: sim.PartitionedClient(fake), deep_scan_hour_utc=NOW.hour),
    )
    report = _fetch(src)
    assert fake.calls == 2 and report.requests == 2
    assert report.mtd_usd == _expected(late_rows, "202611", NOW) - sim.row_net_usd(LATE_20)
    (note,) = [n for n in report.notes if "daily deep query" in n]
    assert "failed" in note and "may miss" in note and "raise maximum_bytes_billed" in note


@emulator
def test_late_row_note_reaches_slack_and_the_json(client: bigquery.Client, late_rows: Any, tmp_path: Any) -> None:
    """A whole dry-run check in the digest hour: the deep figure and its note in to_json and the Slack payload."""
    import dataclasses

    from check import default_deps, run_check
    from config import SecretResolver, Settings
    from output import to_json

    doc = {
        "total_budget_usd": 5000,
        "digest": {"hour_utc": NOW.hour},
        "providers": {
            "gemini": {"budget_usd": 4000, "accounts": [{"label": "billing", "billing_export_table": LATE_TABLE}]}
        },
    }
    env = {"BUDGET_CONFIG": json.dumps(doc), "STATE_FILE": str(tmp_path / "state.json")}
    settings = Settings.from_env(env)
    deps = dataclasses.replace(
        default_deps(settings, SecretResolver(env={})), bigquery_factory=lambda p: sim.PartitionedClient(client)
    )
    outcome = run_check(settings, deps, NOW, dry_run=True)
    (account,) = to_json(outcome)["providers"]["gemini"]["accounts"]
    assert Decimal(account["mtd_usd"]) == _expected(late_rows, "202611", NOW)  # the deep figure
    wanted = "raise late_row_margin_days to 20"
    assert any(wanted in n for n in account["notes"])
    assert outcome.payload is not None and wanted in json.dumps(outcome.payload)


class _CannedClient:
    """Answers the hourly and then the deep query with canned result rows (the Google-client seam)."""

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers, self.floors = list(answers), []

    def query(self, sql: str, *, job_config: Any, **kwargs: Any) -> Any:
        self.floors.append({p.name: getattr(p, "value", None) for p in job_config.query_parameters}["partition_floor"])
        rows = self.answers.pop(0)
        job = mock.create_autospec(bigquery.QueryJob, instance=True)
        job.result.return_value = [mock.Mock(items=lambda r=r: r.items()) for r in rows]
        return job


def test_extra_rows_inside_the_margin_are_not_reported_as_missed() -> None:
    """More rows in the deep query but none below the hourly floor (exported between jobs): hourly figure."""
    hourly = _typed(load_fixture("gemini", "mtd_query_rows")["rows"])
    newer = {**hourly[0], "row_count": hourly[0]["row_count"] + 1, "net_nano_usd": hourly[0]["net_nano_usd"] + 10**9}
    fake = _CannedClient(hourly, [newer, *hourly[1:]])
    src = _source(USD_TABLE, bigquery_factory=lambda p: fake, deep_scan_hour_utc=NOW.hour)
    report = _fetch(src)
    assert fake.floors == [_floor(10), _floor(35)] and report.requests == 2
    assert report.mtd_usd == gemini.parse_rows(hourly, _nov_period()).mtd_usd
    assert not any("late-row margin" in n for n in report.notes)


def test_deep_scan_runs_only_in_its_hour() -> None:
    """Due in deep_scan_hour_utc (UTC, any minute), never without one or with a margin at the deep floor."""
    src = _source(USD_TABLE, deep_scan_hour_utc=9)
    assert src.deep_scan_due(dt.datetime(2026, 11, 20, 9, 59, tzinfo=UTC))
    assert src.deep_scan_due(dt.datetime(2026, 11, 20, 1, 0, tzinfo=PACIFIC))  # 09:00 UTC
    assert not src.deep_scan_due(dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    assert not _source(USD_TABLE).deep_scan_due(dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    full = gemini.from_config(
        GeminiAccount(billing_export_table=USD_TABLE, late_row_margin_days=35), make_deps(deep_scan_hour_utc=9)
    )
    assert not full.deep_scan_due(dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC))


def test_check_passes_the_digest_hour_even_with_the_digest_off() -> None:
    """default_deps sets deep_scan_hour_utc from digest.hour_utc whether or not the digest is enabled."""
    from check import default_deps
    from config import SecretResolver, Settings

    doc = {
        "total_budget_usd": 100,
        "digest": {"enabled": False, "hour_utc": 6},
        "providers": {"gemini": {"budget_usd": 50, "accounts": [{"billing_export_table": USD_TABLE}]}},
    }
    settings = Settings.from_env({"BUDGET_CONFIG": json.dumps(doc), "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/x"})
    assert default_deps(settings, SecretResolver(env={})).deep_scan_hour_utc == 6


# --- pure: period, parameters, parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "key"),
    [
        (dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC), "2026-11"),  # 19:00 PST on Nov 30
        (dt.datetime(2026, 12, 1, 7, 59, tzinfo=UTC), "2026-11"),
        (dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "2026-12"),  # Pacific midnight (PST, UTC-8)
        (dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "2026-12"),
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "2026-10"),  # 23:30 PDT on Oct 31 (UTC-7)
        (dt.datetime(2027, 1, 1, 7, 59, tzinfo=UTC), "2026-12"),  # Dec -> Jan waits for Pacific midnight
    ],
)
def test_billing_period_is_the_pacific_invoice_month(now: dt.datetime, key: str) -> None:
    """billing_period(now) is the US Pacific month, not the UTC one."""
    assert _source(USD_TABLE).billing_period(now).key == key


def test_query_parameters_for_a_period() -> None:
    """invoice_month is YYYYMM, the partition floor a UTC midnight margin days before, as_of is now."""
    period = BillingPeriod.containing(dt.datetime(2027, 1, 1, 7, 59, tzinfo=UTC), PACIFIC)
    params = gemini.QueryParams.for_period(period, GeminiAccount(billing_export_table=USD_TABLE))
    assert params.invoice_month == "202612"
    assert params.partition_floor == dt.datetime(2026, 11, 21, tzinfo=UTC)  # Dec 1 08:00 UTC -> Dec 1 - 10 days
    assert params.margin_days == 10
    assert params.as_of == period.now and params.service_ids == IDS


def test_table_name_cannot_inject_sql() -> None:
    """The table is the only interpolated text, and a backtick in it is refused."""
    with pytest.raises(ValueError):
        gemini.build_query("p.d.t` WHERE 1=1 --")


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fixture rows as the client yields them: DATE as date, TIMESTAMP as aware datetime."""
    out = []
    for row in rows:
        r = dict(row)
        r["usage_day"] = dt.date.fromisoformat(r["usage_day"])
        r["last_export_time"] = dt.datetime.fromisoformat(r["last_export_time"])
        r["first_partition"] = dt.datetime.fromisoformat(r["first_partition"])
        out.append(r)
    return out


def _nov_period() -> BillingPeriod:
    return BillingPeriod.containing(NOW, PACIFIC)


def test_rows_parse_into_days_breakdown_and_freshness() -> None:
    """Nano-dollars become exact USD; a correction dated before the month counts on the 1st."""
    report = gemini.parse_rows(_typed(load_fixture("gemini", "mtd_query_rows")["rows"]), _nov_period())
    assert report.mtd_usd == Decimal("13.433333334")
    days = {d.day.day: d.amount for d in report.daily}
    assert days[1] == Decimal("11.333333333") and days[15] == Decimal("2.100000001") and days[2] == 0
    assert len(report.daily) == 28 and report.requests == 1
    lines = {(b.dimension, b.key): b.amount for b in report.breakdown}
    assert lines[("project", "(none)")] == Decimal("2.100000001")
    assert lines[("project", "llm-prod-123456")] == Decimal("11.0")
    assert report.freshness.as_of == dt.datetime(2026, 11, 16, 2, 0, tzinfo=UTC)
    assert any("dated outside 2026-11" in n for n in report.notes)


def test_no_rows_is_zero_with_unknown_freshness() -> None:
    """Zero rows: $0 for every day so far, as_of None and a note saying nothing is exported yet."""
    report = gemini.parse_rows([], _nov_period())
    assert report.mtd_usd == 0 and len(report.daily) == 28 and report.breakdown == ()
    assert report.freshness.as_of is None and report.freshness.note and "2026-11" in report.freshness.note


_GOOD = _typed(load_fixture("gemini", "mtd_query_rows")["rows"])[0]


@pytest.mark.parametrize(
    "bad",
    [
        {k: v for k, v in _GOOD.items() if k != "net_nano_usd"},
        {**_GOOD, "unusable_rows": 2},
        {**_GOOD, "net_nano_usd": None},
        {**_GOOD, "net_nano_usd": 1.5},
        {**_GOOD, "net_nano_usd": "12"},
        {**_GOOD, "usage_day": "2026-11-01"},
        {**_GOOD, "usage_day": dt.datetime(2026, 11, 1, tzinfo=UTC)},
        {**_GOOD, "last_export_time": dt.datetime(2026, 11, 1, 12, 0)},  # noqa: DTZ001  (naive on purpose: the rejected shape)
        {**_GOOD, "currency": None},
        {**_GOOD, "row_count": 0},
        {**_GOOD, "sku": 42},
    ],
)
def test_drifted_rows_are_a_bad_response(bad: dict[str, Any]) -> None:
    """A missing column, an unusable row, a float or string amount, a naive time: BAD_RESPONSE, never $0."""
    with pytest.raises(ProviderError) as exc:
        gemini.parse_rows([bad], _nov_period())
    assert exc.value.cause is Cause.BAD_RESPONSE


# --- failures at the Google-client seam ------------------------------------------------------------


def _failing_source(at: str, error: BaseException) -> tuple[gemini.GeminiBilling, Any]:
    """A source whose spec'd BigQuery client raises `error` from query() or from the job's result()."""
    fake = mock.create_autospec(bigquery.Client, instance=True)
    job = mock.create_autospec(bigquery.QueryJob, instance=True)
    fake.query.return_value = job
    (fake.query if at == "query" else job.result).side_effect = error
    return _source(USD_TABLE, bigquery_factory=lambda project: fake), fake


@pytest.mark.parametrize(
    ("at", "error", "cause"),
    [
        ("query", gexc.Forbidden("Access Denied: Table", errors=[{"reason": "accessDenied"}]), Cause.PERMISSION),
        ("query", gexc.PermissionDenied("bigquery.jobs.create denied"), Cause.PERMISSION),
        # A failed job's errorResult becomes an exception by the client's own table: this reason is not
        # in it, so it arrives as a 500; it must still read as our cap, not as a server error.
        (
            "result",
            _error_result_to_exception(
                {"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit for bytes billed: 1000."}
            ),
            Cause.QUOTA,
        ),
        ("query", gexc.BadRequest("limit", errors=[{"reason": "bytesBilledLimitExceeded"}]), Cause.QUOTA),
        ("result", gexc.BadRequest("Unrecognized name: cost", errors=[{"reason": "invalidQuery"}]), Cause.CLIENT_ERROR),
        ("result", gexc.NotFound("Not found: Table", errors=[{"reason": "notFound"}]), Cause.NOT_FOUND),
        ("result", _error_result_to_exception({"reason": "backendError", "message": "x"}), Cause.SERVER_ERROR),
        ("query", gexc.ServiceUnavailable("try again"), Cause.SERVER_ERROR),
        ("result", gexc.TooManyRequests("slow down", errors=[{"reason": "rateLimitExceeded"}]), Cause.RATE_LIMIT),
        ("result", concurrent.futures.TimeoutError(), Cause.TIMEOUT),
        ("result", gexc.RetryError("deadline", cause=None), Cause.TIMEOUT),
        ("query", req_exc.ConnectionError("refused"), Cause.CONNECTION),
        ("query", auth_exc.RefreshError("token expired"), Cause.AUTH),
    ],
)
def test_google_errors_are_classified(at: str, error: BaseException, cause: Cause) -> None:
    """Each BigQuery/client failure becomes a ProviderError with the cause an operator acts on."""
    src, _ = _failing_source(at, error)
    with pytest.raises(ProviderError) as exc:
        _fetch(src)
    assert exc.value.cause is cause and USD_TABLE in exc.value.message


def test_missing_credentials_fail_as_auth() -> None:
    """No Application Default Credentials when building the client: AUTH, naming what to fix."""

    def factory(project: str | None) -> Any:
        raise auth_exc.DefaultCredentialsError("Your default credentials were not found")

    with pytest.raises(ProviderError) as exc:
        _fetch(_source(USD_TABLE, bigquery_factory=factory))
    assert exc.value.cause is Cause.AUTH and "credentials" in exc.value.message


def test_no_time_left_fails_before_querying() -> None:
    """An exhausted deadline is a TIMEOUT and no job is started."""
    src, fake = _failing_source("query", AssertionError("must not be called"))
    with pytest.raises(ProviderError) as exc:
        src.fetch(src.billing_period(NOW), Deadline(0))
    assert exc.value.cause is Cause.TIMEOUT
    fake.query.assert_not_called()


def test_importing_the_provider_does_not_load_bigquery() -> None:
    """Cold start: google.cloud.bigquery is imported only when a Gemini client is built."""
    code = "import sys, providers.gemini; print('google.cloud.bigquery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_clients_are_shared_per_project_and_endpoint() -> None:
    """make_client returns one anonymous client per (project, emulator endpoint) per process."""
    first = gemini.make_client("p1", "127.0.0.1:9")
    assert gemini.make_client("p1", "127.0.0.1:9") is first
    assert gemini.make_client("p2", "127.0.0.1:9") is not first
    assert first.project == "p1"
