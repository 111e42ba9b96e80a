"""The Google emulators (fake GCS, BigQuery) from devservers, and a billing-export month for Gemini.

Also a spy on the BigQuery client: a `requests` response hook on its HTTP session that records
every call the real client sends (method, path, JSON body), so the bench can count jobs and read
the job configuration (query text, parameters, `maximumBytesBilled`) exactly as it leaves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench._common import BQ_PROJECT, EXPORT_TABLE, NOW, STATE_BUCKET


@dataclasses.dataclass
class Emulators:
    gcs: Any  # devservers.Server
    bq: Any
    rows: list[dict[str, Any]]
    expected_gemini_usd: Any  # Decimal
    startup_s: dict[str, float]


@contextlib.contextmanager
def google_emulators(workdir: Path) -> Iterator[Emulators]:
    """Fake GCS with the state bucket, and BigQuery with one month (2026-12) of billing export."""
    import devservers
    from simulator import billing_export

    t0 = time.perf_counter()
    with devservers.gcs_server(log_dir=workdir) as gcs:
        t_gcs = time.perf_counter() - t0
        devservers.create_bucket(gcs, STATE_BUCKET)
        t1 = time.perf_counter()
        with devservers.bigquery_server(project=BQ_PROJECT, log_dir=workdir, log_level="warning") as bq:
            t_bq = time.perf_counter() - t1
            t2 = time.perf_counter()
            client = devservers.bigquery_client(bq)
            billing_export.create_export_table(client, EXPORT_TABLE, replace=True)
            rows = billing_export.scenario_rows("2026-12")
            billing_export.load(client, EXPORT_TABLE, rows)
            expected = billing_export.expected_net_usd(rows, "202612", billing_export.GEMINI_SERVICE_IDS, NOW)
            startup = {"gcs_s": t_gcs, "bigquery_s": t_bq, "load_rows_s": time.perf_counter() - t2}
            yield Emulators(gcs=gcs, bq=bq, rows=rows, expected_gemini_usd=expected, startup_s=startup)


@dataclasses.dataclass
class SentCall:
    method: str
    path: str
    body: Any
    status: int


class BigQuerySpy:
    """A `Deps.bigquery_factory` whose clients record every HTTP call they make."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.calls: list[SentCall] = []

    def __call__(self, project: str | None) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        client = bigquery.Client(
            project=project or BQ_PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )
        client._http.hooks["response"].append(self._record)
        return client

    def _record(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        request = response.request
        body: Any = None
        if request.body:
            raw = request.body.decode() if isinstance(request.body, bytes) else request.body
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        self.calls.append(SentCall(request.method, urlsplit(request.url).path, body, response.status_code))
        return response

    def clear(self) -> None:
        self.calls.clear()

    def job_inserts(self) -> list[SentCall]:
        """`jobs.insert` calls (POST .../projects/P/jobs): one per query job."""
        return [c for c in self.calls if c.method == "POST" and c.path.rstrip("/").endswith("/jobs")]
