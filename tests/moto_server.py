"""The local AWS server for the Bedrock tests: moto (STS + Cost Explorer) and a fake metadata server.

Not a conftest: a test module that needs them imports the fixture functions
(`from moto_server import aws_fixture, aws_server_fixture, metadata_fixture`; the fixtures are named
`aws`, `aws_server`, `metadata`),
so nothing starts for the other tests. The moto fixture is module-scoped and resets moto before each
test; it builds `.venv-moto` on first use (devservers/moto.py).

Two adapters, each for a documented difference between moto and AWS, and nothing else:

* `aws_client`: moto 5.2.5 answers Cost Explorer with `Content-Type: text/html; charset=utf-8`, where
  AWS's JSON 1.1 protocol sends `application/x-amz-json-1.1` (botocore `ce` model); the adapter
  restores AWS's type on a moto answer so the product's parser stays strict about content types.
* the metadata fake enforces what Google documents for `computeMetadata/v1`: requests without
  `Metadata-Flavor: Google` are refused (403), answers carry `Metadata-Flavor: Google`, and the ID
  token's `aud` is the `audience` asked for.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from devservers._proc import Server
from devservers.moto import ensure_moto_venv, reset, start_moto

SA_UNIQUE_ID = "100018646976219416293"


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


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


class _Metadata(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append({"path": url.path, "query": query, "flavor": self.headers.get("Metadata-Flavor")})  # type: ignore[attr-defined]
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, b"Missing required header: Metadata-Flavor")
            return
        if url.path != "/computeMetadata/v1/instance/service-accounts/default/identity" or "audience" not in query:
            self._send(404, b"not found")
            return
        claims = {"iss": "https://accounts.google.com", "aud": query["audience"], "azp": SA_UNIQUE_ID,
                  "sub": SA_UNIQUE_ID, "email": "fn@demo-project.iam.gserviceaccount.com"}  # fmt: skip
        self._send(200, f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl".encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/text")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(name="metadata")
def metadata_fixture() -> Iterator[ThreadingHTTPServer]:
    """A fake GCE/Cloud Run metadata server on 127.0.0.1; `.requests` lists what it was asked."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
