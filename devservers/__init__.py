"""Launchers for the local Google emulators used by tests, the demo and the benchmarks.

Both run from their own virtualenv, ``.venv-emulators`` (see ``requirements-emulators.txt``), as
real servers on 127.0.0.1, each the leader of its own process group::

    from devservers import gcs_server, bigquery_server

    with gcs_server() as gcs, bigquery_server(project="demo-project") as bq:
        os.environ.update(gcs.env)   # STORAGE_EMULATOR_HOST=http://127.0.0.1:P
        ...                          # bigquery_client(bq) / BIGQUERY_EMULATOR_HOST=bq.url

The CLI (``python -m devservers start|stop|env|status|venv``) does the same for the Makefile demo
and ``.ci/run``. Google client libraries are imported lazily, only by the client helpers.
"""

from __future__ import annotations

from devservers._proc import DevServerError, Server, free_port
from devservers.bigquery import DEFAULT_PROJECT, bigquery_client, bigquery_server, start_bigquery
from devservers.emulator_venv import ensure_emulator_venv, venv_is_current
from devservers.gcs import create_bucket, gcs_server, start_gcs, storage_client

__all__ = [
    "DEFAULT_PROJECT",
    "DevServerError",
    "Server",
    "bigquery_client",
    "bigquery_server",
    "create_bucket",
    "ensure_emulator_venv",
    "free_port",
    "gcs_server",
    "start_bigquery",
    "start_gcs",
    "storage_client",
    "venv_is_current",
]
