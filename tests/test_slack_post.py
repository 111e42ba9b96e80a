"""Posting to an incoming webhook: no blind re-POST, permanent errors classified with the fix, plain-text fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts import slack
from devservers import free_port
from errors import Cause, NotifyError
from simulator import SlackReceiver

PAYLOAD = {"text": "*Total* crossed 50%", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}


@pytest.fixture(scope="module")
def receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver.start() as r:
        yield r


@pytest.fixture
def hook(receiver: SlackReceiver) -> SlackReceiver:
    receiver.reset()
    return receiver


def test_a_reset_after_slack_accepted_is_not_posted_again(hook: SlackReceiver) -> None:
    """Slack accepted and the answer was lost: one POST, and the error says it may have been delivered."""
    hook.add_fault("accept_then_reset", count=1)
    with pytest.raises(NotifyError) as info:
        slack.post(hook.hook_url, PAYLOAD)
    assert hook.attempts() == 1 and len(hook.messages()) == 1
    assert info.value.cause is Cause.CONNECTION and info.value.maybe_delivered and not info.value.permanent


def test_a_reset_before_slack_read_the_request_is_not_posted_again_either(hook: SlackReceiver) -> None:
    """A reset cannot prove the request went unread: one attempt, maybe delivered."""
    hook.add_fault("reset", count=1)
    with pytest.raises(NotifyError) as info:
        slack.post(hook.hook_url, PAYLOAD)
    assert hook.attempts() == 1 and info.value.maybe_delivered


def test_connection_refused_was_never_sent() -> None:
    """Nothing listening: a connection error that did not deliver anything (retrying it is safe)."""
    with pytest.raises(NotifyError) as info:
        slack.post(f"http://127.0.0.1:{free_port()}/hook", PAYLOAD, timeout=2)
    assert info.value.cause is Cause.CONNECTION and not info.value.maybe_delivered


def test_only_errors_that_prove_nothing_was_sent_are_retried() -> None:
    """The retry handler accepts refused/DNS errors and rejects resets, dropped answers and timeouts."""
    import socket
    import urllib.error
    from http.client import RemoteDisconnected

    handler = slack._send_once_retry_handler()
    ok = [
        ConnectionRefusedError(),
        urllib.error.URLError(ConnectionRefusedError()),
        urllib.error.URLError(socket.gaierror()),
    ]
    no = [ConnectionResetError(), RemoteDisconnected(), urllib.error.URLError(ConnectionResetError()), TimeoutError()]
    assert [handler._can_retry(state=None, request=None, error=e) for e in ok] == [True] * len(ok)
    assert [handler._can_retry(state=None, request=None, error=e) for e in no] == [False] * len(no)


@pytest.mark.parametrize(
    ("mode", "cause", "fix"),
    [
        ("no_service", Cause.WEBHOOK_REVOKED, "create a new incoming webhook"),
        ("http_410", Cause.CHANNEL_ARCHIVED, "unarchive the channel"),
        ("http_403", Cause.POSTING_DENIED, "workspace admin"),
        ("invalid_payload", Cause.MESSAGE_REJECTED, "plain text"),
        ("invalid_blocks", Cause.MESSAGE_REJECTED, "plain text"),
    ],
)
def test_permanent_errors_are_named_with_the_fix(hook: SlackReceiver, mode: str, cause: Cause, fix: str) -> None:
    """Revoked, archived, denied, rejected: permanent, a cause in words, and what to do."""
    hook.add_fault(mode, count=1)
    with pytest.raises(NotifyError) as info:
        slack.post(hook.hook_url, PAYLOAD)
    err = info.value
    assert err.cause is cause and err.permanent and fix in (err.fix or "") and not err.maybe_delivered
    assert cause.describe in str(err) or "rejected" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "cause", "permanent"),
    [
        (403, "invalid_token", Cause.WEBHOOK_REVOKED, True),
        (404, "channel_not_found", Cause.WEBHOOK_REVOKED, True),
        (403, "posting_to_general_channel_denied", Cause.POSTING_DENIED, True),
        (400, "too_many_attachments", Cause.MESSAGE_REJECTED, True),
        (404, "", Cause.WEBHOOK_REVOKED, True),
        (429, "rate_limited", Cause.RATE_LIMIT, False),
        (500, "rollup_error", Cause.SERVER_ERROR, False),
        (418, "teapot", Cause.CLIENT_ERROR, False),
    ],
)
def test_classification_by_slack_error_string_then_status(
    status: int, body: str, cause: Cause, permanent: bool
) -> None:
    """Slack's error string decides the cause; the HTTP status only when the string is unknown."""
    err = slack._classified(status, body)
    assert (err.cause, err.permanent) == (cause, permanent)


def test_a_rejected_message_is_delivered_as_plain_text(hook: SlackReceiver) -> None:
    """deliver(): Slack rejects the blocks, the text goes out alone, the rejection is returned."""
    hook.add_fault("invalid_blocks", count=1)
    rejected = slack.deliver(hook.hook_url, PAYLOAD)
    assert rejected is not None and rejected.cause is Cause.MESSAGE_REJECTED
    (msg,) = hook.messages()
    assert set(msg) == {"text"} and msg["text"].startswith("*Total* crossed 50%") and "plain text" in msg["text"]


def test_deliver_does_not_fall_back_for_other_errors(hook: SlackReceiver) -> None:
    """A revoked webhook is not retried as plain text: one attempt, the error raised."""
    hook.add_fault("no_service", count=1)
    with pytest.raises(NotifyError):
        slack.deliver(hook.hook_url, PAYLOAD)
    assert hook.attempts() == 1
