"""Shared test setup: no network beyond loopback, no retry sleeps, a repo-root import path."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulator.loopback import guarded_connect  # noqa: E402  (needs the repo root on sys.path)

_guarded_connect = guarded_connect("test tried to reach {host}: tests may only use 127.0.0.1")

# The helpers tests import live in tests/support.py; re-exported for `from conftest import ...`.
from support import budgets, failed_for, load_fixture, make_deps, mock_http_factory, report_for  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True, scope="session")
def _no_retry_sleeps() -> Iterator[None]:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    """Each test ends as a new process would begin: no secrets cached, logging not set up, the real clock."""
    yield
    from runtime import PROCESS

    PROCESS.reset()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[Any]:
    """The real fake-gcs-server (enforces if_generation_match), for the whole session."""
    from devservers import gcs_server

    with gcs_server() as server:
        yield server


@pytest.fixture
def gcs_bucket(gcs_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the GCS emulator, with STORAGE_EMULATOR_HOST pointing at it."""
    import uuid

    from devservers import create_bucket

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    name = f"state-{uuid.uuid4().hex[:12]}"
    create_bucket(gcs_emulator, name)
    return name


@pytest.fixture(scope="session")
def gcs_proxy(gcs_emulator: Any) -> Iterator[Any]:
    """fake-gcs-server behind `GCSProxy`, which enforces download/metadata preconditions as GCS does."""
    from devservers.gcs_proxy import GCSProxy

    with GCSProxy(gcs_emulator.url) as proxy:
        yield proxy


@pytest.fixture
def proxied_bucket(gcs_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket reached through the precondition-enforcing proxy (STORAGE_EMULATOR_HOST)."""
    import uuid

    from devservers import create_bucket

    gcs_proxy.clear()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_proxy.url)
    name = f"state-{uuid.uuid4().hex[:12]}"
    create_bucket(gcs_proxy.url, name)
    return name


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[Any]:
    """The BigQuery emulator (bqemulator on DuckDB), for the whole session."""
    from devservers import bigquery_server

    with bigquery_server(project="demo-project") as server:
        yield server


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[Any]:
    """moto (STS + Cost Explorer, devservers/moto.py; builds .venv-moto on first use), for the whole session."""
    from devservers.moto import moto_server

    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def metadata_emulator() -> Iterator[Any]:
    """The fake Google metadata server that issues ID tokens (devservers/metadata.py), for the whole session."""
    from devservers.metadata import MetadataServer

    with MetadataServer() as server:
        yield server


# --- the fault table: tests/test_faults.py adds one row per fault case, printed after the run -------

FAULT_ROWS: list[tuple[str, str, str]] = []
SENTINEL_SCANS: list[tuple[int, int]] = []  # (outputs scanned, leaks found), one per final scan


def record_fault(fault: str, expected: str, observed: str) -> None:
    """One row of the fault table: what was injected, what a user expects, what was observed."""
    FAULT_ROWS.append((fault, expected, observed))


def record_sentinel_scan(outputs: int, leaks: int) -> None:
    SENTINEL_SCANS.append((outputs, leaks))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table (fault → expected → observed), the survival count and the sentinel scan."""
    if not FAULT_ROWS:
        return
    tr = terminalreporter
    fw = max(len(f) for f, _, _ in FAULT_ROWS)
    ew = max(len(e) for _, e, _ in FAULT_ROWS)
    tr.section("fault injection: fault → expected → observed")
    tr.write_line(f"  {'fault':<{fw}}  {'expected':<{ew}}  observed")
    for fault, expected, observed in FAULT_ROWS:
        mark = " " if observed == expected else "✗"
        tr.write_line(f"{mark} {fault:<{fw}}  {expected:<{ew}}  {observed}")
    survived = sum(expected == observed for _, expected, observed in FAULT_ROWS)
    tr.write_line(f"faults tried {len(FAULT_ROWS)} / survived {survived}")
    for outputs, leaks in SENTINEL_SCANS:
        tr.write_line(
            f"sentinel secrets: {outputs} outputs scanned (logs, HTTP/CLI answers, Slack payloads, errors), "
            f"{leaks} leak(s)"
        )
