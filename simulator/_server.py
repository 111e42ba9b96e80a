"""Shared plumbing: a threaded HTTP server bound to 127.0.0.1 that stops fast, and its handler base.

Every local server of the simulator (providers, Slack, Secret Manager) is a `LocalServer` driven by a
`Handler` subclass whose `route()` turns a parsed request into a `Reply`. A reply is either a plain
body, a streamed body of known length, a connection reset, or a hang (an interruptible sleep that ends
without an answer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"

Query = dict[str, list[str]]


@dataclasses.dataclass
class Reply:
    """What a handler answers. `stream` (with `length`) replaces `body` for very large answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stream: Callable[[], Iterator[bytes]] | None = None
    length: int | None = None
    action: Literal["reset", "hang"] | None = None
    hang_s: float = 0.0


def json_reply(status: int, obj: object, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode(), "application/json", dict(headers or {}))


def text_reply(
    status: int, text: str, content_type: str = "text/plain; charset=utf-8", headers: Mapping[str, str] | None = None
) -> Reply:
    return Reply(status, text.encode(), content_type, dict(headers or {}))


def reset_reply() -> Reply:
    return Reply(0, action="reset")


def hang_reply(seconds: float) -> Reply:
    return Reply(0, action="hang", hang_s=seconds)


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Query
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; `ValueError` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


def parse_instant(value: str) -> dt.datetime:
    """An ISO-8601 / RFC 3339 instant with an offset (`Z` allowed), returned in UTC."""
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset (add Z or +00:00)")
    return parsed.astimezone(dt.UTC)


def iso_z(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LatencyKnob:
    """Per-request latency injected by a simulated server (state classes set `_lock`, `_latency_s`)."""

    _lock: threading.Lock
    _latency_s: float

    @property
    def latency_s(self) -> float:
        with self._lock:
            return self._latency_s

    def set_latency(self, ms: float) -> None:
        if ms < 0:
            raise ValueError("latency ms must be >= 0")
        with self._lock:
            self._latency_s = ms / 1000


class LocalServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` on 127.0.0.1 whose `stop()` wakes sleeping handlers and drops connections."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((HOST, port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sim-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections: make their handler threads return now
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # Let the woken handlers close their own sockets before the caller goes on: a handler still
        # unwinding (a hang that just woke) would otherwise leave its socket to the garbage collector,
        # whose ResourceWarning then lands in whichever test runs next.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with self._conns_lock:
                if not self._conns:
                    break
            time.sleep(0.01)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)


class Handler(BaseHTTPRequestHandler):
    """Parses each request into a `Request`, asks `route()` for a `Reply` and writes it."""

    protocol_version = "HTTP/1.1"
    server_version = "llm-budget-alert-simulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; each server keeps its own request log."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def stopping(self) -> threading.Event:
        server = self.server
        assert isinstance(server, LocalServer)
        return server.stopping

    def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when the server is stopping (the caller should give up)."""
        if seconds <= 0:
            return not self.stopping.is_set()
        return not self.stopping.wait(seconds)

    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._write(self.route(request))

    def _write(self, reply: Reply) -> None:
        if reply.action == "reset":
            self._reset()
            return
        if reply.action == "hang":
            self.pause(reply.hang_s)
            self.close_connection = True  # whoever waited has given up; answer nothing
            return
        length = reply.length if reply.stream is not None else len(reply.body)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(length))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.stream is not None:
                for chunk in reply.stream():
                    if self.stopping.is_set():
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading (e.g. a size cap): fine

    def _reset(self) -> None:
        """Close the socket with SO_LINGER 0 so the client sees a TCP reset, not a response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class Running:
    """A started server as its owner sees it: where it listens, and how to stop it (also `with`)."""

    def __init__(self, server: LocalServer) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Recorder:
    """A thread-safe list of JSON-able records (request logs, received messages)."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def append(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._items]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
