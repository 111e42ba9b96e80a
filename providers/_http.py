"""One HTTP client factory, one retry policy, one pagination helper for every HTTP provider.

Retry policy: only 429, 5xx (incl. Anthropic's 529) and connection errors/timeouts are retried, at
most `ATTEMPTS` times and never past the check's deadline. A `Retry-After` header is honoured when
it fits in the time left; when it does not, the call fails now as rate-limited instead of sleeping
through the function's timeout. Everything else fails at once with a classified `ProviderError`.

Bounds: the check's `Deadline` holds for the whole request (connect, headers and body, across
retries), and a body is streamed raw and decoded layer by layer under `MAX_BODY_BYTES` decoded
(see `_read_body`), so neither a dripping server nor a nested gzip bomb outlives or outgrows a check.
"""

from __future__ import annotations

import functools
import json
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import stamina

from errors import Cause, ProviderError
from models import Deadline

__all__ = [
    "ACCEPT_ENCODING",
    "ATTEMPTS",
    "MAX_BODY_BYTES",
    "MAX_PAGES",
    "USER_AGENT",
    "RequestCount",
    "ResponseTooLarge",
    "count_requests",
    "make_client",
    "pages",
    "request_json",
]

USER_AGENT = "llm-budget-alert/1.0 (+https://github.com/llm-budget-alert)"
ATTEMPTS = 3
MAX_BODY_BYTES = 16 * 1024 * 1024  # a month of heavily grouped costs is ~1-5 MB; more is a fault
MAX_PAGES = 60


_TLS_LOCK = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs ~16 ms of CPU.

    Behind a lock because the fetch threads ask for it at the same moment: `functools.cache` alone
    let each of them miss and build its own (every cold check with two accounts built two).
    """
    with _TLS_LOCK:
        return _build_tls_context()


@functools.cache
def _build_tls_context() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def make_client(base_url: str, *, headers: Mapping[str, str] | None = None) -> httpx.Client:
    """A client with explicit timeouts, no redirects and a User-Agent. Callers own closing it."""
    return httpx.Client(
        base_url=base_url,
        verify=_tls_context(),
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            **(headers or {}),
        },
        timeout=httpx.Timeout(20.0, connect=5.0),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
    )


class _Retry(Exception):
    """A retryable outcome; `after` is the server's Retry-After in seconds, if any."""

    def __init__(self, error: ProviderError, after: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.after = after


def _status_cause(status: int) -> Cause:
    if status == 401:
        return Cause.AUTH
    if status == 403:
        return Cause.PERMISSION
    if status == 404:
        return Cause.NOT_FOUND
    if status == 429:
        return Cause.RATE_LIMIT
    if status >= 500:
        return Cause.SERVER_ERROR
    return Cause.CLIENT_ERROR


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _error_detail(resp: httpx.Response, body: bytes) -> str:
    """A short, secret-free description of an error answer (the provider's message, if JSON)."""
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype:
        try:
            doc = json.loads(body)
        except ValueError:
            return "invalid JSON error body"
        if isinstance(doc, dict):
            err = doc.get("error")
            if isinstance(err, dict):
                kind = err.get("type") or err.get("status") or err.get("code") or ""
                msg = str(err.get("message") or "")[:200]
                return f"{kind}: {msg}".strip(": ")
            if isinstance(err, str):
                return err[:200]
        return "JSON error body"
    if "html" in ctype or body.lstrip()[:1] == b"<":
        return "HTML error page"
    return body[:120].decode("utf-8", "replace").strip() or "empty body"


class ResponseTooLarge(ProviderError):
    """A response over `MAX_BODY_BYTES` (on the wire or decoded): a fault, or a month too big for one page."""

    def __init__(self, message: str) -> None:
        super().__init__(Cause.BAD_RESPONSE, message)


class _BodyUnusable(Exception):
    """The body could not be read as declared (unknown or corrupt encoding); the status still counts."""


def _limit_text(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"


# Content-Encoding layers we decode ourselves, each with its own incremental decoder, so that no
# layer ever holds more than `_PIECE` decoded bytes at once (httpx 0.28's own decoders call
# `decompress(data)` without `max_length` (`_decoders.py`), inflating a whole network chunk in one
# call: 64 KiB of a gzip bomb is ~64 MiB, and `gzip, gzip` multiplies that again). The names and
# their order are RFC 9110 §8.4: codings are listed in the order they were applied, so they are
# undone from the last one; "x-gzip" is a gzip alias (RFC 9110 §8.4.1.3). Brotli/zstd are not decodable here (no
# decoder in requirements.txt), so we never offer them in Accept-Encoding and a body that uses them
# anyway is a classified failure.
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024


class _Inflate:
    """One gzip or deflate layer, decoded incrementally with `decompressobj(...).decompress(max_length)`."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # 16 + MAX_WBITS: gzip header and trailer (zlib docs, "wbits"); deflate is zlib-wrapped per
        # RFC 9110 §8.4.1.2, but some servers send raw deflate: retried raw on a bad first header.
        self._wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        self._d = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d.eof:  # a gzip body may be several members back to back (RFC 1952 §2.2)
                if self.coding != "gzip":
                    raise _BodyUnusable(f"data after the end of the {self.coding} stream")
                self._d = zlib.decompressobj(self._wbits)
            try:
                out = self._d.decompress(data, _PIECE)
            except zlib.error:
                if self.coding == "deflate" and not self._started:
                    self._wbits = -zlib.MAX_WBITS
                    self._d = zlib.decompressobj(self._wbits)
                    self._started = True
                    continue
                raise _BodyUnusable(f"corrupt {self.coding} body") from None
            self._started = True
            if out:
                yield out
            data = self._d.unused_data if self._d.eof else self._d.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        while not self._d.eof:  # drain output zlib still holds (at most one match), then demand the end
            out = self._d.decompress(b"", _PIECE)
            if not out:
                raise _BodyUnusable(f"truncated {self.coding} body")
            yield out


def _layers(resp: httpx.Response) -> list[_Inflate]:
    """Decoders for the declared codings, outermost (last applied) first; unknown codings fail."""
    codings = [c.strip().lower() for c in resp.headers.get_list("content-encoding", split_commas=True)]
    layers: list[_Inflate] = []
    for coding in reversed([c for c in codings if c and c != "identity"]):
        if coding in ("gzip", "x-gzip"):
            layers.append(_Inflate("gzip"))
        elif coding == "deflate":
            layers.append(_Inflate("deflate"))
        else:
            raise _BodyUnusable(f"unsupported Content-Encoding {coding!r} (we accept {ACCEPT_ENCODING})")
    return layers


def _read_body(resp: httpx.Response, deadline: Deadline) -> bytes:
    """The body, decoded through every declared Content-Encoding layer, read as a stream.

    Bounded three ways: `MAX_BODY_BYTES` on the wire, `MAX_BODY_BYTES` decoded (so a nested gzip
    bomb stops after the cap, whatever its ratio), and the check's deadline between network chunks
    (the wait for each chunk is cut at the deadline by `_Watchdog`). Only what the headers declare
    is decoded: a gzip inside a single declared gzip stays compressed and fails the JSON parse.
    """
    limit = MAX_BODY_BYTES  # read at call time: tests lower it
    _check_declared_length(resp, limit)
    if resp.is_stream_consumed:  # an in-memory `httpx.Response(content=...)` (MockTransport): already decoded
        if len(resp.content) > limit:
            raise ResponseTooLarge(f"response body over {_limit_text(limit)} decoded (limit MAX_BODY_BYTES)")
        return resp.content
    return _read_stream(resp, deadline, limit)


def _read_stream(resp: httpx.Response, deadline: Deadline, limit: int) -> bytes:
    """`_read_body` for a streamed answer: raw chunks through the declared decoding layers."""
    layers = _layers(resp)
    out: list[bytes] = []
    size = 0

    def sink(piece: bytes, depth: int) -> None:
        nonlocal size
        if depth == len(layers):
            size += len(piece)
            if size > limit:
                raise ResponseTooLarge(f"response body over {_limit_text(limit)} decoded (limit MAX_BODY_BYTES)")
            out.append(piece)
            return
        for inner in layers[depth].feed(piece):
            sink(inner, depth + 1)

    wire = 0
    for chunk in resp.iter_raw():
        wire += len(chunk)
        if wire > limit:
            raise ResponseTooLarge(f"response body over {_limit_text(limit)} on the wire (limit MAX_BODY_BYTES)")
        sink(chunk, 0)
        if deadline.remaining() <= 0:
            raise _DeadlinePassed
    for depth, layer in enumerate(layers):
        for inner in layer.finish():
            sink(inner, depth + 1)
    return b"".join(out)


def _check_declared_length(resp: httpx.Response, limit: int) -> None:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(
            f"response body of {int(declared)} bytes over {_limit_text(limit)} on the wire (limit MAX_BODY_BYTES)"
        )


class _DeadlinePassed(Exception):
    """The check's deadline passed while the body was still arriving."""


class _Watchdog:
    """Cuts a request's socket when the deadline passes, so no wait (headers or a body chunk) outlives it.

    httpx's read timeout bounds each socket read, not the request (encode/httpx#1450, "low-and-slow"),
    and httpcore 1.0 fixes it once for the whole body (`_sync/http11.py` `_receive_response_body`
    reads `extensions["timeout"]["read"]` before its loop), so a server that drips one byte a second
    never trips it. The socket is taken from httpcore's `trace` extension as soon as a new connection
    is up ("connection.connect_tcp.complete", then "connection.start_tls.complete", whose
    `return_value` is the network stream), or from the response's `network_stream` extension for a
    pooled one. `socket.socket.shutdown` (the base method, also for an `SSLSocket`) wakes a thread
    blocked in `recv`, which then fails with a read error that `_once` reports as a timeout.
    """

    _CONNECTED = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})

    def __init__(self, deadline: Deadline) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(deadline.remaining(), 0.0), self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event in self._CONNECTED:
            self.watch(info.get("return_value"))

    def watch(self, stream: Any) -> None:
        """Watch `stream`'s socket (a TLS socket replaces the TCP one it wraps)."""
        get = getattr(stream, "get_extra_info", None)
        sock = get("socket") if get is not None else None
        if not isinstance(sock, socket.socket):
            return  # not a socket (a mock transport): the between-chunk deadline check still holds
        with self._lock:
            self._sock = sock
            if not self._timer.is_alive() and not self.fired:
                self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self._sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has ended anyway

    def close(self) -> None:
        self._timer.cancel()


class RequestCount:
    """The HTTP requests a client sent, retries included: an httpx `request` event hook.

    httpx calls every `event_hooks["request"]` hook once per request it sends, before sending it
    (httpx `_client.py`, `Client._send_handling_redirects`); `Client.event_hooks` is the live dict,
    so appending to it works on any client, a test's `MockTransport` client too. Thread-safe: the
    xAI source sends its three calls at once on one client.
    """

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> None:
        with self._lock:
            self.value += 1


def count_requests(client: httpx.Client) -> RequestCount:
    """Start counting the requests `client` sends (for `CostReport.requests`)."""
    counter = RequestCount()
    client.event_hooks["request"].append(counter)
    return counter


def request_json(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    deadline: Deadline,
    params: Any = None,
    json_body: Any = None,
) -> dict[str, Any]:
    """Send one request (with bounded retries) and return its JSON object body.

    Raises `ProviderError` with a classified cause on any failure, including a 2xx whose body is not
    a JSON object. Count the attempts with `count_requests(client)`.
    """

    def hook(exc: Exception) -> bool | float:
        if not isinstance(exc, _Retry):
            return False
        left = deadline.remaining()
        if exc.after is not None:
            return exc.after if exc.after + 1.0 < left else False
        return left > 2.0

    try:
        for attempt in stamina.retry_context(
            on=hook, attempts=ATTEMPTS, timeout=max(deadline.remaining(), 0.1), wait_initial=0.5, wait_max=4.0
        ):
            with attempt:
                return _once(client, method, path, deadline=deadline, params=params, json_body=json_body)
    except _Retry as exc:
        raise exc.error from None
    raise AssertionError("unreachable")  # pragma: no cover


def _once(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    deadline: Deadline,
    params: Any,
    json_body: Any,
) -> dict[str, Any]:
    """One attempt: send, read the body within the deadline, and classify the answer."""
    resp, body = _send(client, method, path, deadline=deadline, params=params, json_body=json_body)
    return _json_object(resp, body, method, path)


def _send(
    client: httpx.Client, method: str, path: str, *, deadline: Deadline, params: Any, json_body: Any
) -> tuple[httpx.Response, bytes]:
    """The answer and its (bounded) body; a transport failure raises, classified (`_Retry` if worth it)."""
    left = deadline.remaining()
    if left <= 0.05:
        raise ProviderError(Cause.TIMEOUT, "no time left in the check's deadline")
    timeout = httpx.Timeout(min(20.0, left), connect=min(5.0, left))
    watchdog = _Watchdog(deadline)
    try:
        with client.stream(
            method, path, params=params, json=json_body, timeout=timeout, extensions={"trace": watchdog.trace}
        ) as resp:
            watchdog.watch(resp.extensions.get("network_stream"))  # a pooled connection: no connect event
            body = _body_or_empty(resp, deadline, f"{method} {path}")
    except _DeadlinePassed:
        raise ProviderError(Cause.TIMEOUT, f"{method} {path}: the check's deadline passed mid-body") from None
    except httpx.TimeoutException:
        raise _Retry(ProviderError(Cause.TIMEOUT, f"{method} {path}: timed out"), None) from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        if watchdog.fired:
            raise ProviderError(Cause.TIMEOUT, f"{method} {path}: the check's deadline passed mid-request") from None
        raise _Retry(ProviderError(Cause.CONNECTION, f"{method} {path}: {type(exc).__name__}"), None) from None
    except httpx.HTTPError as exc:
        raise ProviderError(Cause.CONNECTION, f"{method} {path}: {type(exc).__name__}") from None
    finally:
        watchdog.close()
    return resp, body


def _body_or_empty(resp: httpx.Response, deadline: Deadline, what: str) -> bytes:
    """The body; for an error answer whose body cannot be used, nothing (its status still classifies it)."""
    try:
        return _read_body(resp, deadline)
    except _BodyUnusable as exc:
        if 200 <= resp.status_code < 300:
            raise ProviderError(Cause.BAD_RESPONSE, f"{what}: {exc}", status=resp.status_code) from None
        return b""
    except ResponseTooLarge:
        if 200 <= resp.status_code < 300:
            raise
        return b""


def _json_object(resp: httpx.Response, body: bytes, method: str, path: str) -> dict[str, Any]:
    """A 200 JSON object, or the classified error the status or the body calls for."""
    status = resp.status_code
    if status >= 400 or status < 200:
        cause = _status_cause(status)
        err = ProviderError(cause, f"{method} {path}: HTTP {status} ({_error_detail(resp, body)})", status=status)
        if status == 429 or status >= 500:
            raise _Retry(err, _retry_after(resp))
        raise err
    if status != 200:
        raise ProviderError(Cause.BAD_RESPONSE, f"{method} {path}: unexpected HTTP {status}", status=status)
    ctype = resp.headers.get("content-type", "")
    if "json" not in ctype:
        raise ProviderError(
            Cause.BAD_RESPONSE,
            f"{method} {path}: expected JSON, got {ctype or 'no content type'} ({_error_detail(resp, body)})",
            status=status,
        )
    try:
        doc = json.loads(body)
    except ValueError:
        raise ProviderError(
            Cause.BAD_RESPONSE, f"{method} {path}: body is not valid JSON (truncated?)", status=status
        ) from None
    if not isinstance(doc, dict):
        raise ProviderError(Cause.BAD_RESPONSE, f"{method} {path}: expected a JSON object, got {type(doc).__name__}")
    return doc


def pages(fetch: Callable[[str | None], dict[str, Any]], *, max_pages: int = MAX_PAGES) -> Iterator[dict[str, Any]]:
    """Yield each page of a `has_more` / `next_page` listing, following cursors until the end.

    A cursor seen twice (a pagination loop) or more than `max_pages` pages is a `BAD_RESPONSE`, so a
    broken server can never keep a check busy until its deadline.
    """
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(max_pages):
        page = fetch(cursor)
        yield page
        has_more = page.get("has_more")
        nxt = page.get("next_page")
        if not isinstance(has_more, bool):
            raise ProviderError(Cause.BAD_RESPONSE, "page without a boolean has_more")
        if not has_more:
            return
        if not isinstance(nxt, str) or not nxt:
            raise ProviderError(Cause.BAD_RESPONSE, "has_more is true but next_page is missing")
        if nxt in seen:
            raise ProviderError(Cause.BAD_RESPONSE, "pagination loop: the same next_page came back twice")
        seen.add(nxt)
        cursor = nxt
    raise ProviderError(Cause.BAD_RESPONSE, f"more than {max_pages} pages: has_more never ended")
