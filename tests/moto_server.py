"""The local AWS server for the Bedrock tests: moto (STS + Cost Explorer) and a fake metadata server.

Not a conftest: a test module that needs them imports the fixture functions
(`from moto_server import aws_fixture, aws_server_fixture, metadata_fixture`; the fixtures are named
`aws`, `aws_server`, `metadata`),
so nothing starts for the other tests. The moto fixture is module-scoped and resets moto before each
test; it builds `.venv-moto` on first use (devservers/moto.py).

Two adapters, each for a documented difference between moto and AWS, and nothing else:

* `aws_client`: moto 5.2.5 answers Cost Explorer with `Content-Type: text/html; charset=utf-8`, where
  AWS's JSON 1.1 protocol sends `application/x-amz-json-1.1` (botocore `ce` model). The launcher now
  restores AWS's type on the wire (`devservers/_moto_run.py`, which the CLI and demo rely on); this
  client-side hook stays as a second guard for these unit tests and is a no-op on a restored answer.
* the metadata fake (`devservers/metadata.py`) enforces what Google documents for `computeMetadata/v1`: requests without
  `Metadata-Flavor: Google` are refused (403), answers carry `Metadata-Flavor: Google`, and the ID
  token's `aud` is the `audience` asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devservers._proc import Server
from devservers.metadata import SA_UNIQUE_ID, MetadataServer
from devservers.moto import ensure_moto_venv, reset, start_moto

__all__ = ["SA_UNIQUE_ID", "aws_client", "aws_fixture", "aws_server_fixture", "metadata_fixture", "moto_python"]


def moto_python() -> Path:
    """The python of `.venv-moto` (botocore lives there too: the SigV4 oracle)."""
    return ensure_moto_venv()


@pytest.fixture(scope="module", name="aws_server")
def aws_server_fixture() -> Iterator[Server]:
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="aws")
def aws_fixture(aws_server: Server) -> Server:
    """A running moto server with nothing queued and no credentials issued."""
    reset(aws_server)
    return aws_server


def _restore_aws_content_type(response: httpx.Response) -> None:
    if (
        response.request.headers.get("x-amz-target")
        and response.headers.get("content-type", "").startswith("text/html")
        and response.status_code == 200
    ):
        response.headers["Content-Type"] = "application/x-amz-json-1.1"


def aws_client(base_url: str, log: list[httpx.Request] | None = None) -> httpx.Client:
    """An `_http.make_client`-built client for moto, recording every request it sends in `log`."""
    from providers._http import make_client

    client = make_client(base_url)
    hooks: list[Any] = [_restore_aws_content_type]
    client.event_hooks["response"] = hooks
    if log is not None:
        client.event_hooks["request"] = [log.append]
    return client


@pytest.fixture(name="metadata")
def metadata_fixture() -> Iterator[MetadataServer]:
    """A fake metadata server on 127.0.0.1 (devservers/metadata.py); `.requests` lists what it was asked."""
    with MetadataServer() as server:
        yield server
