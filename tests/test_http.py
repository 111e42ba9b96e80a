"""The one retry policy and pagination helper: what is retried, for how long, and what is not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from errors import Cause, ProviderError
from providers._http import MAX_BODY_BYTES, Deadline, pages, request_json


def _client(handler: Any) -> httpx.Client:
    return httpx.Client(base_url="http://127.0.0.1:1", transport=httpx.MockTransport(handler))


def _sequence(*responses: httpx.Response) -> tuple[Any, list[int]]:
    calls = [0]

    def handler(req: httpx.Request) -> httpx.Response:
        calls[0] += 1
        return responses[min(calls[0], len(responses)) - 1]

    return handler, calls


def test_429_then_success_is_retried() -> None:
    """A 429 with Retry-After is retried and the later answer is used."""
    handler, calls = _sequence(httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(200, json={"ok": 1}))
    assert request_json(_client(handler), "GET", "/x", deadline=Deadline(30)) == {"ok": 1}
    assert calls[0] == 2


def test_5xx_retries_are_bounded() -> None:
    """Persistent 503s stop after 3 attempts with SERVER_ERROR."""
    handler, calls = _sequence(httpx.Response(503, text="unavailable"))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.SERVER_ERROR and calls[0] == 3


def test_retry_after_beyond_the_deadline_fails_now() -> None:
    """A Retry-After longer than the time left is not slept through."""
    handler, calls = _sequence(httpx.Response(429, headers={"retry-after": "3600"}))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.RATE_LIMIT and calls[0] == 1


@pytest.mark.parametrize(
    ("status", "cause"), [(401, Cause.AUTH), (403, Cause.PERMISSION), (404, Cause.NOT_FOUND), (400, Cause.CLIENT_ERROR)]
)
def test_client_errors_are_not_retried(status: int, cause: Cause) -> None:
    """4xx other than 429 fail at once with their cause."""
    handler, calls = _sequence(httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is cause and calls[0] == 1


def test_connection_errors_and_timeouts_are_classified() -> None:
    """Connect errors are retried then CONNECTION; read timeouts become TIMEOUT."""

    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(ProviderError) as exc:
        request_json(_client(refuse), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.CONNECTION
    with pytest.raises(ProviderError) as exc:
        request_json(_client(slow), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.TIMEOUT


def test_body_size_is_capped() -> None:
    """A response over the cap is a bad response, not an out-of-memory."""
    big = b"[" + b"0," * (MAX_BODY_BYTES // 2) + b"0]"
    handler, _ = _sequence(httpx.Response(200, content=big, headers={"content-type": "application/json"}))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.BAD_RESPONSE


def test_non_object_json_is_a_bad_response() -> None:
    """A JSON array or string where an object is expected is a bad response."""
    handler, _ = _sequence(httpx.Response(200, json=[1, 2]))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(30))
    assert exc.value.cause is Cause.BAD_RESPONSE


def test_no_time_left_is_a_timeout() -> None:
    """With the deadline spent no request is sent."""
    handler, calls = _sequence(httpx.Response(200, json={}))
    with pytest.raises(ProviderError) as exc:
        request_json(_client(handler), "GET", "/x", deadline=Deadline(0))
    assert exc.value.cause is Cause.TIMEOUT and calls[0] == 0


def test_pagination_loop_and_endless_has_more_stop() -> None:
    """A repeated cursor or more than max_pages pages is a bad response."""
    with pytest.raises(ProviderError, match="loop"):
        list(pages(lambda cur: {"has_more": True, "next_page": "same"}))
    counter = iter(range(10_000))
    with pytest.raises(ProviderError, match="more than 5 pages"):
        list(pages(lambda cur: {"has_more": True, "next_page": f"p{next(counter)}"}, max_pages=5))
    with pytest.raises(ProviderError, match="next_page is missing"):
        list(pages(lambda cur: {"has_more": True, "next_page": None}))


def test_threads_asking_at_once_build_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight fetch threads creating clients at the same moment load the CA bundle once, not eight times."""
    import ssl
    import threading
    import time

    from providers import _http

    built: list[str] = []
    real = ssl.create_default_context

    def slow_counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(threading.current_thread().name)
        time.sleep(0.1)  # hold the first builder so the others arrive while it builds
        return real(*args, **kwargs)

    monkeypatch.setattr(_http.ssl, "create_default_context", slow_counting)
    _http._build_tls_context.cache_clear()
    start = threading.Barrier(8)
    contexts: list[ssl.SSLContext] = []

    def make() -> None:
        start.wait()
        contexts.append(_http._tls_context())

    threads = [threading.Thread(target=make) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        _http._build_tls_context.cache_clear()
    assert len(built) == 1
    assert len(contexts) == 8 and all(c is contexts[0] for c in contexts)
