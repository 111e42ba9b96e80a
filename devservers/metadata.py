"""A fake Google metadata server on 127.0.0.1 that issues ID tokens: the Google half of AWS federation.

It enforces what Google documents for `computeMetadata/v1` (https://cloud.google.com/compute/docs/metadata/querying-metadata):
requests without `Metadata-Flavor: Google` are refused (403), answers carry `Metadata-Flavor: Google`, and
`instance/service-accounts/default/identity?audience=A` answers a JWT whose `aud` is `A` and whose `sub` /
`azp` are the service account's unique id (https://cloud.google.com/docs/authentication/get-id-token).
The signature is a placeholder: moto, the AWS side, does not verify it (AWS would, against Google's keys).
Point google-auth-style clients at it with `GCE_METADATA_HOST=<host:port>`.

    with MetadataServer() as meta:
        env["GCE_METADATA_HOST"] = meta.host
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["ID_TOKEN_PATH", "SA_UNIQUE_ID", "MetadataServer"]

SA_UNIQUE_ID = "100018646976219416293"
SA_EMAIL = "fn@demo-project.iam.gserviceaccount.com"
ID_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append({"path": url.path, "query": query, "flavor": self.headers.get("Metadata-Flavor")})
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, b"Missing required header: Metadata-Flavor")
            return
        if url.path != ID_TOKEN_PATH or "audience" not in query:
            self._send(404, b"not found")
            return
        claims = {"iss": "https://accounts.google.com", "aud": query["audience"], "azp": SA_UNIQUE_ID,
                  "sub": SA_UNIQUE_ID, "email": SA_EMAIL}  # fmt: skip
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


class _Server(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


class MetadataServer:
    """Started on a free port; `.requests` lists what it was asked; `.host` is `127.0.0.1:PORT`."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.requests

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def host(self) -> str:
        host, port = self.server_address
        return f"{host}:{port}"

    def __enter__(self) -> MetadataServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
