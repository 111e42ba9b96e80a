"""BigQuery: ``bqemulator`` (DuckDB + sqlglot, REST and gRPC) through ``_bq_launcher.py``.

Clients: ``bigquery.Client(project=P, credentials=AnonymousCredentials(),
client_options={"api_endpoint": server.url})``, or ``BIGQUERY_EMULATOR_HOST=<url>`` (which
google-cloud-bigquery reads as its API endpoint) plus AnonymousCredentials. Use
``client.query(...).result()``: ``query_and_wait()`` returns 0 rows on a missing table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from devservers._proc import Server, free_port, launch, launch_with_port_retry
from devservers.emulator_venv import REPO_ROOT, ensure_emulator_venv

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = ["DEFAULT_PROJECT", "bigquery_client", "bigquery_server", "start_bigquery"]

DEFAULT_PROJECT = "demo-project"
_LAUNCHER = Path(__file__).resolve().parent / "_bq_launcher.py"


def start_bigquery(
    project: str = DEFAULT_PROJECT,
    port: int = 0,
    *,
    grpc_port: int = 0,
    repo_root: Path | None = None,
    log_dir: Path | None = None,
    log_level: str = "info",
    timeout: float = 60.0,
) -> Server:
    """Start bqemulator (ephemeral, in memory) on 127.0.0.1:``port`` (0: a free one); wait for /readyz.

    ``server.url`` is the REST endpoint. Builds ``.venv-emulators`` first if it is missing or stale.
    Logs go to ``<log_dir>/bigquery-PORT.log`` (default ``<repo_root>/.run``).
    """
    root = repo_root or REPO_ROOT
    venv_python = ensure_emulator_venv(root)
    logs = log_dir or root / ".run"
    # The emulator reads BQEMU_* variables and a .bqemu.toml in its cwd: start it clean.
    env = {key: value for key, value in os.environ.items() if not key.startswith("BQEMU_")}
    env["BQEMU_METRICS_ENABLED"] = "false"

    def start(chosen: int) -> Server:
        chosen_grpc = grpc_port or free_port()
        url = f"http://127.0.0.1:{chosen}"
        argv = [
            str(venv_python), "-I", str(_LAUNCHER), "start",
            "--rest-host", "127.0.0.1", "--rest-port", str(chosen),
            "--grpc-host", "127.0.0.1", "--grpc-port", str(chosen_grpc),
            "--ephemeral", "--project", project, "--log-level", log_level,
        ]  # fmt: skip
        return launch(
            name="bigquery",
            argv=argv,
            port=chosen,
            url=url,
            ready_url=f"{url}/readyz",
            log_dir=logs,
            timeout=timeout,
            env=env,
            cwd=logs,
            project=project,
            grpc_port=chosen_grpc,
        )

    return launch_with_port_retry(start, port)


@contextmanager
def bigquery_server(
    project: str = DEFAULT_PROJECT,
    port: int = 0,
    *,
    grpc_port: int = 0,
    repo_root: Path | None = None,
    log_dir: Path | None = None,
    log_level: str = "info",
    timeout: float = 60.0,
) -> Iterator[Server]:
    """``start_bigquery`` as a context manager (wrap it in a session fixture); stops it on exit."""
    server = start_bigquery(
        project,
        port,
        grpc_port=grpc_port,
        repo_root=repo_root,
        log_dir=log_dir,
        log_level=log_level,
        timeout=timeout,
    )
    try:
        yield server
    finally:
        server.stop()


def bigquery_client(server: Server | str, project: str | None = None) -> bigquery.Client:
    """An anonymous ``bigquery.Client`` bound to the emulator (project defaults to the server's)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    if isinstance(server, str):
        url, default_project = server, DEFAULT_PROJECT
    else:
        url, default_project = server.url, server.project or DEFAULT_PROJECT
    return bigquery.Client(
        project=project or default_project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": url},
    )
