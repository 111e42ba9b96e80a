"""The one retry policy and pagination helper: what is retried, for how long, and what is not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from errors import Cause, ProviderError
from providers._http import (
    ACCEPT_ENCODING,
    MAX_BODY_BYTES,
    Deadline,
    ResponseTooLarge,
    make_client,
    pages,
    request_json,
)
from simulator.faults import gzip_bomb, gzip_layers


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


# --- the body: decoded through every declared Content-Encoding, under one cap ----------------------


def _streamed(body: bytes, encoding: str | None, status: int = 200) -> Any:
    """A handler answering `body` as a stream (not pre-read, as a real transport delivers it)."""
    headers = {"content-type": "application/json", **({"content-encoding": encoding} if encoding else {})}

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    return handler


def _get(handler: Any, deadline: float = 30) -> dict[str, Any]:
    return request_json(_client(handler), "GET", "/x", deadline=Deadline(deadline))


def _deflate(data: bytes, *, raw: bool = False) -> bytes:
    import zlib

    enc = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return enc.compress(data) + enc.flush()


DOC = b'{"object": "page", "data": [], "has_more": false}'


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip_layers([DOC], 1)),
        ("x-gzip", gzip_layers([DOC], 1)),
        ("gzip, gzip", gzip_layers([DOC], 2)),
        ("deflate", _deflate(DOC)),
        ("deflate", _deflate(DOC, raw=True)),
        ("gzip, identity", gzip_layers([DOC], 1)),
        ("deflate, gzip", gzip_layers([_deflate(DOC)], 1)),
    ],
    ids=["gzip", "x-gzip", "gzip-gzip", "deflate-zlib", "deflate-raw", "gzip-identity", "deflate-then-gzip"],
)
def test_every_declared_encoding_layer_is_decoded(encoding: str, body: bytes) -> None:
    """Each coding the headers list is undone, last applied first, and the JSON underneath is returned."""
    assert _get(_streamed(body, encoding)) == {"object": "page", "data": [], "has_more": False}


def test_a_gzip_body_of_several_members_is_decoded_whole() -> None:
    """Concatenated gzip members (RFC 1952 §2.2) decode to their concatenation."""
    half = len(DOC) // 2
    body = gzip_layers([DOC[:half]], 1) + gzip_layers([DOC[half:]], 1)
    assert _get(_streamed(body, "gzip")) == {"object": "page", "data": [], "has_more": False}


def test_a_nested_gzip_bomb_stops_at_the_decoded_cap_and_names_it() -> None:
    """`gzip, gzip` over 64 MiB of whitespace fails once 16 MiB are decoded, naming the limit."""
    bomb = gzip_bomb(64 * 1024 * 1024, 2)
    assert len(bomb) < 100_000
    with pytest.raises(ResponseTooLarge) as exc:
        _get(_streamed(bomb, "gzip, gzip"))
    assert exc.value.cause is Cause.BAD_RESPONSE
    assert "response body over 16 MiB decoded (limit MAX_BODY_BYTES)" in exc.value.message


def test_only_declared_layers_are_decoded() -> None:
    """A gzip inside a single declared gzip stays compressed: the JSON parse fails, classified."""
    with pytest.raises(ProviderError) as exc:
        _get(_streamed(gzip_bomb(64 * 1024 * 1024, 2), "gzip"))
    assert exc.value.cause is Cause.BAD_RESPONSE and "not valid JSON" in exc.value.message


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_an_encoding_we_cannot_decode_is_a_bad_response(encoding: str) -> None:
    """A body in a coding we never offered fails as a bad response naming that coding."""
    with pytest.raises(ProviderError) as exc:
        _get(_streamed(b"\x0b\x02\x80{}\x03", encoding))
    assert exc.value.cause is Cause.BAD_RESPONSE and "unsupported Content-Encoding" in exc.value.message


@pytest.mark.parametrize(
    ("body", "what"), [(gzip_layers([DOC], 1)[:-12], "truncated gzip"), (b"not gzip at all", "corrupt gzip")]
)
def test_a_truncated_or_corrupt_gzip_body_is_a_bad_response(body: bytes, what: str) -> None:
    """A gzip stream cut short or not gzip at all is a bad response, not a partial document."""
    with pytest.raises(ProviderError) as exc:
        _get(_streamed(body, "gzip"))
    assert exc.value.cause is Cause.BAD_RESPONSE and what in exc.value.message


def test_an_error_status_with_an_exploding_body_is_still_classified_by_status() -> None:
    """A 401 whose body is a gzip bomb is an AUTH failure: the cap stops the body, the status decides."""
    with pytest.raises(ProviderError) as exc:
        _get(_streamed(gzip_bomb(64 * 1024 * 1024, 2), "gzip, gzip", status=401))
    assert exc.value.cause is Cause.AUTH


def test_the_client_offers_only_the_encodings_it_decodes() -> None:
    """make_client sends Accept-Encoding: gzip, deflate (no br/zstd, which we could not bound)."""
    with make_client("http://127.0.0.1:1") as client:
        assert client.headers["accept-encoding"] == ACCEPT_ENCODING == "gzip, deflate"


# --- the deadline holds for the whole request, against the real simulator --------------------------


@pytest.fixture(scope="module")
def sim() -> Any:
    from simulator import Simulator

    with Simulator.start() as server:
        yield server


@pytest.mark.parametrize("mode", ["drip", "stall"])
def test_a_dripping_or_stalled_body_ends_at_the_deadline_as_a_timeout(sim: Any, mode: str) -> None:
    """A body at one byte a second, or headers then silence, fails TIMEOUT once the deadline passes.

    The elapsed-time check is a correctness bound, not a performance one: before the fix a dripping
    body ran for its whole length (4096 s here) because httpx's read timeout is per chunk.
    """
    import time

    sim.clear_faults()
    sim.add_fault("openai", mode, seconds=60)
    started = time.monotonic()
    with make_client(sim.url) as client, pytest.raises(ProviderError) as exc:
        request_json(client, "GET", "/v1/organization/costs", deadline=Deadline(2.0))
    elapsed = time.monotonic() - started
    assert exc.value.cause is Cause.TIMEOUT and "deadline" in exc.value.message
    assert elapsed < 2.0 + 5.0  # wide margin: proves the deadline, not a speed


def test_a_gzip_bomb_from_the_simulator_is_a_classified_failure(sim: Any) -> None:
    """The simulator's 1 GiB double-gzip bomb fails BAD_RESPONSE at the decoded cap."""
    sim.clear_faults()
    sim.add_fault("openai", "gzip_bomb")
    with make_client(sim.url) as client, pytest.raises(ResponseTooLarge, match="16 MiB decoded"):
        request_json(client, "GET", "/v1/organization/costs", deadline=Deadline(30))
