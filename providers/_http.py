"""One HTTP client factory, one retry policy, one pagination helper for every HTTP provider.

Retry policy: only 429, 5xx (incl. Anthropic's 529) and connection errors/timeouts are retried, at
most `ATTEMPTS` times and never past the check's deadline. A `Retry-After` header is honoured when
it fits in the time left; when it does not, the call fails now as rate-limited instead of sleeping
through the function's timeout. Everything else fails at once with a classified `ProviderError`.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import stamina

from errors import Cause, ProviderError

USER_AGENT = "llm-budget-alert/1.0 (+https://github.com/llm-budget-alert)"
ATTEMPTS = 3
MAX_BODY_BYTES = 16 * 1024 * 1024  # a month of heavily grouped costs is ~1-5 MB; more is a fault
MAX_PAGES = 60


class Deadline:
    """The time a check has left, on a monotonic clock."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())


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
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
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
    """A response over `MAX_BODY_BYTES`: a fault, or a month too heavily grouped for one page."""

    def __init__(self, message: str) -> None:
        super().__init__(Cause.BAD_RESPONSE, message)


def _read_body(resp: httpx.Response) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ResponseTooLarge(f"response of {int(declared)} bytes exceeds the {MAX_BODY_BYTES} byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ResponseTooLarge(f"response larger than the {MAX_BODY_BYTES} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def request_json(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    deadline: Deadline,
    params: Any = None,
    json_body: Any = None,
    counter: list[int] | None = None,
) -> dict[str, Any]:
    """Send one request (with bounded retries) and return its JSON object body.

    Raises `ProviderError` with a classified cause on any failure, including a 2xx whose body is not
    a JSON object. `counter[0]` is incremented per HTTP attempt (benchmarks count requests).
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
                return _once(
                    client, method, path, deadline=deadline, params=params, json_body=json_body, counter=counter
                )
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
    counter: list[int] | None,
) -> dict[str, Any]:
    left = deadline.remaining()
    if left <= 0.05:
        raise ProviderError(Cause.TIMEOUT, "no time left in the check's deadline")
    timeout = httpx.Timeout(min(20.0, left), connect=min(5.0, left))
    if counter is not None:
        counter[0] += 1
    try:
        with client.stream(method, path, params=params, json=json_body, timeout=timeout) as resp:
            body = _read_body(resp)
    except httpx.TimeoutException:
        raise _Retry(ProviderError(Cause.TIMEOUT, f"{method} {path}: timed out"), None) from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise _Retry(ProviderError(Cause.CONNECTION, f"{method} {path}: {type(exc).__name__}"), None) from None
    except httpx.HTTPError as exc:
        raise ProviderError(Cause.CONNECTION, f"{method} {path}: {type(exc).__name__}") from None

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
