"""logs: one JSON line per record with severity and the execution id, and redaction of secrets' parts."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

import logs

HOOK = "https://hooks.slack.com/services/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"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Our handler on a StringIO for the test, the root logger restored afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    out = io.StringIO()
    logs.setup("DEBUG", stream=out)
    yield out
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_record_is_one_json_line_even_with_newlines_in_it(stream: io.StringIO) -> None:
    """A message or traceback with newlines still gives exactly one JSON line with a severity."""
    log = logs.get("test")
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        log.exception("failed:\nwith a second line")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    (doc,) = _lines(stream)
    assert doc["severity"] == "ERROR" and doc["error_type"] == "ValueError"


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def test_a_handler_logs_with_its_requests_execution_id_and_span_only(stream: io.StringIO) -> None:
    """per_request: records inside carry labels.execution_id and spanId; after it returns, none do."""

    @logs.per_request
    def handler(request: _Request) -> str:
        logs.get("test").info("inside")
        return "answer"

    headers = {"Function-Execution-Id": "exec-1", "X-Cloud-Trace-Context": "abc123/77;o=1"}
    assert handler(_Request(headers)) == "answer"
    logs.get("test").info("after")
    handler(_Request({}))
    inside, after, no_id = _lines(stream)
    assert inside["logging.googleapis.com/labels"] == {"execution_id": "exec-1"}
    assert inside["logging.googleapis.com/spanId"] == "77"
    assert "logging.googleapis.com/labels" not in after and "logging.googleapis.com/labels" not in no_id


def test_a_thread_logs_with_the_execution_id_of_the_context_it_runs_in(stream: io.StringIO) -> None:
    """The id follows the context, not the thread: copy_context().run in a pool carries it, a bare submit does not."""
    import concurrent.futures
    import contextvars

    def request() -> None:
        logs.bind_execution({"Function-Execution-Id": "exec-pool"})
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            carried = [pool.submit(contextvars.copy_context().run, logs.get("w").info, "carried") for _ in range(6)]
            bare = [pool.submit(logs.get("w").info, "bare") for _ in range(2)]
            for f in carried + bare:
                f.result()

    contextvars.copy_context().run(request)
    docs = _lines(stream)
    carried = [d for d in docs if d["message"] == "carried"]
    assert len(carried) == 6
    assert all(d["logging.googleapis.com/labels"] == {"execution_id": "exec-pool"} for d in carried)
    assert all("logging.googleapis.com/labels" not in d for d in docs if d["message"] == "bare")


def test_setup_replaces_the_frameworks_stream_handlers_and_keeps_others(stream: io.StringIO) -> None:
    """A plain StreamHandler on stderr (what functions-framework installs) goes; other handlers stay."""
    root = logging.getLogger()
    framework = logging.StreamHandler(sys.stderr)
    other = logging.NullHandler()
    root.addHandler(framework)
    root.addHandler(other)
    logs.setup("INFO", stream=stream)
    assert framework not in root.handlers and other in root.handlers
    assert sum(1 for h in root.handlers if getattr(h, "_llm_budget_alert", False)) == 1
    assert logs.installed()


def test_setup_reenables_our_loggers_after_a_dict_config(stream: io.StringIO) -> None:
    """functions-framework's dictConfig disables existing loggers; setup switches ours back on."""
    import logging.config

    log = logs.get("early")
    logging.config.dictConfig({"version": 1, "root": {"level": "WARNING"}})
    assert log.disabled and not logs.installed()
    logs.setup("INFO", stream=stream)
    log.info("back")
    assert [d["message"] for d in _lines(stream)] == ["back"]


def test_redact_covers_the_webhook_path_and_its_segments() -> None:
    """Registering a webhook URL redacts its path, its token segments and their encoded forms."""
    logs.register_secret(HOOK)
    path = "/services/T0LOGSENTL/B0LOGSENTL/logsTokenSENTINEL24chars"
    for echoed in (
        HOOK,
        f"502 Bad Gateway: upstream {path} failed",
        f"POST {path[1:]}",
        "token logsTokenSENTINEL24chars expired",
        f"GET {quote(path, safe='')}",
        "channel B0LOGSENTL/logsTokenSENTINEL24chars",
    ):
        assert "SENTINEL" not in logs.redact(echoed), echoed
        assert "SENTL" not in logs.redact(echoed), echoed
    assert logs.redact("see /services/ for hooks.slack.com") == "see /services/ for hooks.slack.com"


def test_redact_covers_keys_in_their_encoded_forms() -> None:
    """A key is redacted as is, URL-encoded and JSON-escaped; query values of a URL secret too."""
    key = 'sk-admin-SENTINEL/key+with="chars\u00e9'
    logs.register_secret(key)
    logs.register_secret("https://example.test/x?token=querySENTINEL99&v=1")
    echoes = (key, quote(key, safe=""), json.dumps(key), json.dumps(key, ensure_ascii=False), "token=querySENTINEL99")
    for echoed in echoes:
        assert "SENTINEL" not in logs.redact(echoed), echoed


def test_short_values_are_not_treated_as_secrets() -> None:
    """Values and parts under 8 characters are never registered (they would shred every line)."""
    logs.register_secret("abc1234")
    logs.register_secret("https://h.example/T01/abcdefgh1")
    assert logs.redact("abc1234 T01") == "abc1234 T01"
    assert logs.redact("abcdefgh1") == "[REDACTED]"


def test_log_lines_are_redacted(stream: io.StringIO) -> None:
    """A registered secret's part in a log message or field never reaches the line."""
    logs.register_secret(HOOK)
    logs.event(logs.get("t"), logging.ERROR, "proxy said /B0LOGSENTL/logsTokenSENTINEL24chars", body=HOOK[8:])
    assert "SENTINEL" not in stream.getvalue() and "SENTL" not in stream.getvalue()
