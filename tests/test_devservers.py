"""The emulator launchers (devservers) against the real client libraries: GCS preconditions, BigQuery SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery import ArrayQueryParameter, QueryJobConfig, ScalarQueryParameter, SchemaField

import devservers
from devservers import DevServerError, Server
from devservers._proc import group_members
from devservers.emulator_venv import REPO_ROOT, venv_is_current

pytestmark = pytest.mark.emulator

PROJECT = "devservers-test"
BUCKET = "alert-state"
STATE_OBJECT = "state/alert-state.json"


@pytest.fixture(scope="module")
def gcs() -> Iterator[Server]:
    with devservers.gcs_server() as server:
        devservers.create_bucket(server, BUCKET)
        yield server


@pytest.fixture(scope="module")
def bq() -> Iterator[Server]:
    with devservers.bigquery_server(project=PROJECT) as server:
        yield server


@pytest.fixture
def bucket(gcs: Server) -> Any:
    return devservers.storage_client(gcs).bucket(BUCKET)


def _object_name() -> str:
    return f"state/{uuid.uuid4().hex}.json"


def _assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert group_members(pid) == []


# -- GCS -------------------------------------------------------------------------------------------


def test_gcs_create_only_upload_succeeds_once(bucket: Any) -> None:
    """if_generation_match=0 creates the object once; a second create-only upload is a 412."""
    name = _object_name()
    first = bucket.blob(name)
    first.upload_from_string(b'{"v": 1}', content_type="application/json", if_generation_match=0)
    assert first.generation
    with pytest.raises(gexc.PreconditionFailed) as info:
        bucket.blob(name).upload_from_string(b'{"v": 2}', if_generation_match=0)
    assert info.value.code == 412
    assert bucket.blob(name).download_as_bytes() == b'{"v": 1}'


def test_gcs_stale_generation_is_412(bucket: Any) -> None:
    """An upload conditioned on a generation that has since changed fails with 412."""
    name = _object_name()
    bucket.blob(name).upload_from_string(b"1", if_generation_match=0)
    reader = bucket.blob(name)
    reader.reload()
    stale = reader.generation
    bucket.blob(name).upload_from_string(b"2", if_generation_match=stale)
    with pytest.raises(gexc.PreconditionFailed) as info:
        bucket.blob(name).upload_from_string(b"3", if_generation_match=stale)
    assert info.value.code == 412
    assert bucket.blob(name).download_as_bytes() == b"2"


def test_gcs_five_writer_race_has_exactly_one_winner(gcs: Server) -> None:
    """Five writers holding the same read generation: exactly one conditional write wins."""
    name = _object_name()
    bucket = devservers.storage_client(gcs).bucket(BUCKET)
    bucket.blob(name).upload_from_string(b'{"writer": null}', if_generation_match=0)
    seen = bucket.get_blob(name)
    assert seen is not None
    generation = seen.generation
    barrier = threading.Barrier(5)
    outcomes: dict[int, str] = {}

    def write(writer: int) -> None:
        blob = devservers.storage_client(gcs).bucket(BUCKET).blob(name)
        barrier.wait()
        try:
            blob.upload_from_string(json.dumps({"writer": writer}).encode(), if_generation_match=generation)
            outcomes[writer] = "won"
        except gexc.PreconditionFailed:
            outcomes[writer] = "412"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [writer for writer, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == 5 and len(winners) == 1
    assert json.loads(bucket.blob(name).download_as_bytes()) == {"writer": winners[0]}


def test_gcs_plain_client_from_env_sees_generation(gcs: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """STORAGE_EMULATOR_HOST alone makes a plain storage.Client() anonymous; reload/download give the generation."""
    from google.cloud import storage  # type: ignore[attr-defined, unused-ignore]

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    client = storage.Client()
    blob = client.bucket(BUCKET).blob(_object_name())
    blob.upload_from_string(b"{}", if_generation_match=0)
    written = blob.generation
    reloaded = client.bucket(BUCKET).blob(blob.name)
    reloaded.reload()
    downloaded = client.bucket(BUCKET).blob(blob.name)
    assert downloaded.download_as_bytes() == b"{}"
    assert reloaded.generation == written == downloaded.generation


def test_gcs_missing_object_is_not_found(bucket: Any) -> None:
    """Downloading an object that does not exist raises NotFound (first run: no state yet)."""
    with pytest.raises(gexc.NotFound):
        bucket.blob(_object_name()).download_as_bytes()


# -- BigQuery --------------------------------------------------------------------------------------

_BILLING_SCHEMA = [
    SchemaField("service", "RECORD", fields=[SchemaField("id", "STRING"), SchemaField("description", "STRING")]),
    SchemaField("sku", "RECORD", fields=[SchemaField("id", "STRING"), SchemaField("description", "STRING")]),
    SchemaField("project", "RECORD", fields=[SchemaField("id", "STRING"), SchemaField("name", "STRING")]),
    SchemaField("usage_start_time", "TIMESTAMP"),
    SchemaField("export_time", "TIMESTAMP"),
    SchemaField("cost", "FLOAT"),
    SchemaField("currency", "STRING"),
    SchemaField("currency_conversion_rate", "FLOAT"),
    SchemaField(
        "credits",
        "RECORD",
        mode="REPEATED",
        fields=[
            SchemaField("name", "STRING"),
            SchemaField("amount", "FLOAT"),
            SchemaField("full_name", "STRING"),
            SchemaField("id", "STRING"),
            SchemaField("type", "STRING"),
        ],
    ),
    SchemaField("invoice", "RECORD", fields=[SchemaField("month", "STRING")]),
    SchemaField("cost_type", "STRING"),
]


def _row(service: str, usage: str, cost: float, month: str, credits: list[float]) -> dict[str, Any]:
    return {
        "service": {"id": service[:4].upper(), "description": service},
        "sku": {"id": "sku-1", "description": f"{service} tokens"},
        "project": {"id": "proj-1", "name": "Project One"},
        "usage_start_time": usage,
        "export_time": usage,
        "cost": cost,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "credits": [
            {"name": "c", "amount": amount, "full_name": "Credit", "id": f"c{i}", "type": "PROMOTION"}
            for i, amount in enumerate(credits)
        ],
        "invoice": {"month": month},
        "cost_type": "regular",
    }


@pytest.fixture(scope="module")
def billing_table(bq: Server) -> str:
    client = devservers.bigquery_client(bq)
    client.create_dataset("billing", exists_ok=True)
    table_id = f"{PROJECT}.billing.gcp_billing_export_v1_TEST"
    client.create_table(bigquery.Table(table_id, schema=_BILLING_SCHEMA))
    errors = client.insert_rows_json(
        table_id,
        [
            _row("Vertex AI", "2026-11-03T10:00:00Z", 10.5, "202611", [-1.25, -0.25]),
            _row("Gemini API", "2026-11-04T10:00:00Z", 2.0, "202611", []),
            _row("Compute Engine", "2026-11-04T10:00:00Z", 99.0, "202611", [-5.0]),
            _row("Vertex AI", "2026-10-30T10:00:00Z", 7.0, "202610", [-1.0]),
        ],
    )
    assert errors == []
    return table_id


_GEMINI_SQL = """
SELECT service.description AS service,
       SUM(cost) AS cost,
       SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS credits
FROM `{table}`
WHERE invoice.month = @month
  AND service.description IN UNNEST(@services)
  AND usage_start_time >= @since
GROUP BY service
ORDER BY service
"""


def test_bigquery_billing_query_with_struct_array_unnest_and_params(bq: Server, billing_table: str) -> None:
    """STRUCT/ARRAY<STRUCT> columns, correlated UNNEST(credits) and STRING/ARRAY/TIMESTAMP params work."""
    client = devservers.bigquery_client(bq)
    config = QueryJobConfig(
        query_parameters=[
            ScalarQueryParameter("month", "STRING", "202611"),
            ArrayQueryParameter("services", "STRING", ["Vertex AI", "Gemini API"]),
            ScalarQueryParameter("since", "TIMESTAMP", dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
        ],
        maximum_bytes_billed=10 * 1024**2,
    )
    rows = [dict(row) for row in client.query(_GEMINI_SQL.format(table=billing_table), job_config=config).result()]
    assert rows == [
        {"service": "Gemini API", "cost": 2.0, "credits": 0.0},
        {"service": "Vertex AI", "cost": 10.5, "credits": -1.5},
    ]


def test_bigquery_format_timestamp_with_time_zone(bq: Server) -> None:
    """FORMAT_TIMESTAMP('%Y%m', ts, 'America/Los_Angeles') converts the zone (billing months are Pacific)."""
    client = devservers.bigquery_client(bq)
    sql = "SELECT FORMAT_TIMESTAMP('%Y%m', @ts, 'America/Los_Angeles') AS month"
    config = QueryJobConfig(
        query_parameters=[ScalarQueryParameter("ts", "TIMESTAMP", dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC))]
    )
    assert [row["month"] for row in client.query(sql, job_config=config).result()] == ["202610"]


def test_bigquery_missing_table_raises(bq: Server) -> None:
    """client.query(...).result() on a missing table raises NotFound instead of returning 0 rows."""
    client = devservers.bigquery_client(bq)
    with pytest.raises(gexc.NotFound):
        client.query(f"SELECT SUM(cost) FROM `{PROJECT}.billing.no_such_table`").result()


def test_bigquery_streaming_insert_after_ddl_query(bq: Server) -> None:
    """insert_rows_json right after a CREATE TABLE query job works (broken with duckdb 2.0: HTTP 500)."""
    from google.api_core.retry import Retry

    client = devservers.bigquery_client(bq)
    client.create_dataset("ddl", exists_ok=True)
    client.query(f"CREATE TABLE `{PROJECT}.ddl.costs` (usage_start_time TIMESTAMP, cost FLOAT64)").result()
    no_long_retry = Retry(timeout=5.0)  # the client's default retries a 500 for 600 s
    rows = [{"usage_start_time": "2026-11-02T00:00:00Z", "cost": 1.25}]
    assert client.insert_rows_json(f"{PROJECT}.ddl.costs", rows, retry=no_long_retry) == []
    total = [row["total"] for row in client.query(f"SELECT SUM(cost) AS total FROM `{PROJECT}.ddl.costs`").result()]
    assert total == [1.25]


def test_bigquery_emulator_host_env_is_the_endpoint(bq: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """google-cloud-bigquery takes BIGQUERY_EMULATOR_HOST as its endpoint (credentials still needed)."""
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq.url)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    assert [tuple(row) for row in client.query("SELECT 1 + 1").result()] == [(2,)]


def test_bigquery_known_gaps_of_the_emulator(bq: Server, billing_table: str) -> None:
    """Documents what bqemulator 1.4 does NOT emulate: byte caps and metering, _PARTITIONTIME."""
    client = devservers.bigquery_client(bq)
    sql = f"SELECT SUM(cost) AS total FROM `{billing_table}`"
    job = client.query(sql, job_config=QueryJobConfig(maximum_bytes_billed=1))
    assert [row["total"] for row in job.result()] == [118.5]  # real BigQuery: 400 bytesBilledLimitExceeded
    assert job.total_bytes_processed == 0 and job.total_bytes_billed is None  # no cost model at all
    dry = client.query(sql, job_config=QueryJobConfig(dry_run=True))
    assert dry.state == "DONE" and dry.total_bytes_processed == 0
    pseudo = f"SELECT COUNT(*) AS n, MIN(_PARTITIONTIME) AS pt FROM `{billing_table}`"  # not even partitioned
    (row,) = list(client.query(pseudo).result())
    assert row["n"] == 4 and abs((dt.datetime.now(dt.UTC) - row["pt"]).total_seconds()) < 60  # = CURRENT_TIMESTAMP()


# -- lifecycle -------------------------------------------------------------------------------------


def test_stop_leaves_no_process_behind() -> None:
    """stop() ends each server's whole process group and reaps it; a second stop() is a no-op."""
    gcs = devservers.start_gcs()
    bq = devservers.start_bigquery(project=PROJECT)
    for server in (gcs, bq):
        assert server.alive() and server.rss_bytes() > 0
        server.stop()
        _assert_gone(server.pid)
        assert not server.alive()
        server.stop()


def test_port_in_use_fails_with_log_tail() -> None:
    """A server that cannot bind fails fast with a DevServerError quoting its log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DevServerError, match="address already in use") as info:
            devservers.start_gcs(port, timeout=20)
    assert info.value.port_in_use
    assert time.monotonic() - started < 10


def test_emulator_venv_up_to_date_check_is_cheap(tmp_path: Path) -> None:
    """An up-to-date .venv-emulators is detected by its requirements hash; a changed file makes it stale."""
    assert venv_is_current(REPO_ROOT)
    started = time.perf_counter()
    assert devservers.ensure_emulator_venv() == REPO_ROOT / ".venv-emulators" / "bin" / "python"
    assert time.perf_counter() - started < 0.5
    fake_root = tmp_path / "repo"
    (fake_root / ".venv-emulators" / "bin").mkdir(parents=True)
    (fake_root / ".venv-emulators" / "bin" / "python").symlink_to(sys.executable)
    requirements = fake_root / "requirements-emulators.txt"
    requirements.write_text("bqemulator==1.4.0\n")
    marker = fake_root / ".venv-emulators" / ".devservers-requirements.sha256"
    marker.write_text(hashlib.sha256(requirements.read_bytes()).hexdigest() + "\n")
    assert venv_is_current(fake_root)
    requirements.write_text("bqemulator==1.5.0\n")
    assert not venv_is_current(fake_root)


def test_cli_start_env_stop(tmp_path: Path) -> None:
    """`python -m devservers start/env/stop` runs servers in the background and stops them by PID."""

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devservers", *args, "--state-dir", str(tmp_path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = cli("start", "gcs", "--bucket", BUCKET)
    try:
        assert started.returncode == 0, started.stderr
        state = json.loads((tmp_path / "devservers.json").read_text())
        pid = state["servers"]["gcs"]["pid"]
        url = state["servers"]["gcs"]["url"]
        assert cli("env").stdout == f"export STORAGE_EMULATOR_HOST={url}\n"
        assert devservers.storage_client(url).bucket(BUCKET).exists()
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.monotonic() + 5  # the CLI's child is reaped by init, not by us
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pid) == []
    assert not (tmp_path / "devservers.json").exists()
    assert cli("stop").returncode == 0
    assert cli("env").returncode == 1
