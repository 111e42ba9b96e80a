"""A GCS stand-in that enforces what fake-gcs-server does not: preconditions on reads.

`GCSProxy` is a small HTTP proxy in front of fake-gcs-server (which enforces ``ifGenerationMatch`` on
uploads only). For every object metadata GET and download (``objects.get``, with or without
``alt=media``) it evaluates the generation preconditions against the object as it is at that moment,
as GCS documents (https://cloud.google.com/storage/docs/request-preconditions and the JSON API's
``objects.get`` parameters ``ifGenerationMatch`` / ``ifGenerationNotMatch`` /
``ifMetagenerationMatch`` / ``ifMetagenerationNotMatch``):

* a ``*Match`` that does not hold → **412 Precondition Failed** with GCS's JSON error body
  (``reason: conditionNotMet``, https://cloud.google.com/storage/docs/json_api/v1/status-codes#412);
* a ``*NotMatch`` that does not hold on a GET → **304 Not Modified** (no body).

Each request is evaluated and forwarded under one lock, so a precondition check and the request it
guards see the same generation (as on GCS). Deterministic fault hooks, each firing a given number
of times:

* ``on("after_metadata", action)`` — after a metadata GET was answered upstream and before the
  client sees it: "a write lands between metadata and download";
* ``on("before_download", action)`` — before a download is evaluated;
* ``on("after_download", action)`` — after a download was fetched, before the client gets it:
  "a write lands between the read and the conditional write";
* ``drop_write_answers(n)`` — forward the next n uploads, then reset the client's connection
  instead of answering (the client retries the write it believes lost).

Actions run outside the lock, so they may write through the proxy itself. Started in-process (a
thread), it serves child processes too: point them at ``proxy.url`` with ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Literal, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["GCSProxy", "Hook"]

Hook = Literal["after_metadata", "before_download", "after_download"]
_OBJECT = re.compile(r"^(?:/download)?/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>[^?]+)$")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"})
_NOT_MET = "At least one of the pre-conditions you specified did not hold."


class GCSProxy:
    """Preconditions enforced on reads, plus deterministic race and lost-answer hooks."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        split = urlsplit(upstream)
        self._upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self._upstream_url = upstream.rstrip("/")
        self._lock = threading.Lock()  # one request at a time upstream: checks and the request they guard
        self._hooks: dict[str, list[tuple[Callable[[], None], int]]] = {}
        self._drop_writes = 0
        self.refused = 0  # 412/304 answered by the proxy (observability, tests)
        self.dropped = 0  # write answers dropped
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcs-proxy", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    # --- faults ------------------------------------------------------------------------------------

    def on(self, when: Hook, action: Callable[[], None], *, count: int = 1) -> None:
        """Run `action` the next `count` times `when` happens."""
        with self._lock:
            self._hooks.setdefault(when, []).append((action, count))

    def drop_write_answers(self, count: int = 1) -> None:
        """Forward the next `count` uploads, then reset the connection instead of answering."""
        with self._lock:
            self._drop_writes += count

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()
            self._drop_writes = 0

    def _fire(self, when: Hook) -> None:
        with self._lock:
            queue = self._hooks.get(when) or []
            if not queue:
                return
            action, left = queue[0]
            if left <= 1:
                queue.pop(0)
            else:
                queue[0] = (action, left - 1)
        action()

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drop_writes <= 0:
                return False
            self._drop_writes -= 1
            self.dropped += 1
            return True

    # --- forwarding --------------------------------------------------------------------------------

    def _forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _refusal(self, method: str, bucket: str, name: str, query: dict[str, list[str]]) -> int | None:
        """412 or 304 when a precondition of this read does not hold now; None when all hold."""
        wanted = {k: v[-1] for k, v in query.items() if k.lower().startswith(("ifgeneration", "ifmetageneration"))}
        if not wanted:
            return None
        status, _, raw = self._forward("GET", f"/storage/v1/b/{bucket}/o/{name}", b"", {})  # name: as encoded
        if status != 200:
            return None  # absent object: upstream answers the request itself (404)
        meta = json.loads(raw)
        current = {"generation": str(meta.get("generation")), "metageneration": str(meta.get("metageneration"))}
        for param, value in wanted.items():
            field = "metageneration" if param.lower().startswith("ifmetageneration") else "generation"
            if param.lower().endswith("notmatch"):
                if value == current[field]:
                    return 304 if method == "GET" else 412
            elif value != current[field]:
                return 412
        return None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                match = _OBJECT.match(split.path) if self.command == "GET" else None
                download = match is not None and (
                    split.path.startswith("/download/") or "media" in query.get("alt", [])
                )
                if download:
                    proxy._fire("before_download")
                with proxy._lock:
                    refused = None
                    if match is not None:
                        refused = proxy._refusal(self.command, match["bucket"], match["name"], query)
                    if refused is None:
                        status, out_headers, out = proxy._forward(self.command, self.path, body, headers)
                    else:
                        proxy.refused += 1
                if refused is not None:
                    self._refuse(refused)
                    return
                if match is not None:
                    proxy._fire("after_download" if download else "after_metadata")
                if self.command == "POST" and split.path.startswith("/upload/") and proxy._take_drop():
                    self._reset()
                    return
                # Object resources carry links (mediaLink, selfLink) to fake-gcs-server's own address:
                # the client downloads from mediaLink after a reload, so they must lead back here.
                out = out.replace(proxy._upstream_url.encode(), proxy.url.encode())
                self.send_response(status)
                for k, v in out_headers:
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _refuse(self, status: int) -> None:
                if status == 304:
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                error = {"message": _NOT_MET, "domain": "global", "reason": "conditionNotMet",
                         "locationType": "header", "location": "If-Match"}  # fmt: skip
                payload = json.dumps({"error": {"code": 412, "message": _NOT_MET, "errors": [error]}}).encode()
                self.send_response(412)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _reset(self) -> None:
                self.close_connection = True
                try:  # SO_LINGER 0: close with RST, as a connection lost mid-answer looks to the client
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

        return Handler
