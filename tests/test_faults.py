"""Fault injection: the real check against every fault the local servers can produce.

Each case arms one fault, runs the real check (`run_check`, the CLI or the HTTP function) against the
simulator (OpenAI, Anthropic, xAI), the BigQuery emulator (Gemini), the Secret Manager fake (every key
but one, and the Slack webhook), the Slack receiver and fake-gcs-server, and holds it to what an
operator expects: the check ends within its time budget; the faulty source is *failed* with a
classified cause, never $0, and labelled FAILED in Slack; the other sources still report; the failure
is logged at ERROR (a clean run logs nothing at ERROR); the next check neither repeats nor loses an
alert. Each case adds a row "fault → expected → observed" to the table printed after the run. Both
columns use the same words; the observed one is rendered from what actually happened.

Faults no local server produces, and how they are made instead:

* GCS 503: `Gcs503Proxy`, a small HTTP proxy in front of fake-gcs-server, answers 503 itself; the
  real storage client sees the 503 (and applies its own retry policy to it).
* GCS precondition conflict: `InterleavingStore` wraps the real `GCSStore` and runs a whole second
  check between the ledger's read and its conditional write, as an overlapping invocation would.
* BigQuery permission denied and the bytes-billed cap: a spec'd fake `bigquery.Client` at the
  `Deps.bigquery_factory` seam (the emulator has neither IAM nor byte metering).

Time budgets: most cases run with CHECK_DEADLINE_SECONDS=20 (the sources get 5 s of it, the rest is
kept for state and Slack); a provider or a webhook that never answers runs with 5 s, the least allowed
(the sources get 1 s), so a timeout costs a second. Faults under which a Google client library retries
on its own (Secret Manager unavailable or silent, BigQuery silent or refusing connections, GCS 503 for
good) run the CLI as `python main.py check` subprocesses, started half a second apart and killed once
they outlive their budget: a library that retries for minutes shows up as a failed row, not as a
stalled suite.

Keys, Secret Manager values and the webhook path are sentinels: no log line, HTTP or CLI answer,
Slack payload or error message produced by this module may contain one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, record_sentinel_scan
from faults_harness import (
    ACCOUNTS,
    DEADLINE_S,
    HOOK_PATH,
    HOUR,
    KILL_AFTER_S,
    LAB_STAGGER_S,
    MISSING_SECRET,
    MISSING_TABLE,
    NOW,
    OUTPUTS,
    PROJECT,
    SECRETS,
    SLOW_SOURCE_DEADLINE_S,
    STATE_OBJECT,
    TABLE,
    TIGHT_DEADLINE_S,
    AwsFaultFront,
    Gcs503Proxy,
    InterleavingStore,
    Run,
    Servers,
    SilentServer,
    World,
    _account_state,
    _alerted,
    _budget,
    _budgets,
    _errors,
    _failed_label,
    _leaks,
    _log_lines,
    _note,
    _once,
    _others,
    _recovered,
    _row,
    _scenario,
    _secret_values,
    _where,
)
from google.api_core import exceptions as gexc
from google.cloud import bigquery
from google.cloud.bigquery.job.base import _error_result_to_exception

import devservers
from alerts.state import GCSStore
from config import BASE_URL_ENV
from devservers.moto import load_cost_and_usage
from providers import Deps
from simulator import SecretManagerFake, Simulator, SlackReceiver
from simulator import billing_export as export
from simulator._bedrock import cost_and_usage_results

pytestmark = pytest.mark.emulator  # every check includes Gemini, read from the BigQuery emulator

# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(aws_emulator: Any) -> Iterator[Servers]:
    load_cost_and_usage(aws_emulator, cost_and_usage_results(_scenario().find("bedrock/main"), now=NOW))
    with (
        devservers.bigquery_server(project=PROJECT) as bq,
        Simulator.start(_scenario(), clock=NOW) as sim,
        SlackReceiver.start() as slack,
        SecretManagerFake.start() as sm,
    ):
        client = devservers.bigquery_client(bq)
        export.create_export_table(client, TABLE)
        export.load(client, TABLE, export.scenario_rows("2026-11"))
        for name, value in _secret_values(slack).items():
            sm.set_secret(name, value)
        silent = SilentServer()
        aws = AwsFaultFront(aws_emulator.url)
        try:
            yield Servers(sim, slack, sm, bq.url, silent, f"http://127.0.0.1:{devservers.free_port()}", aws)
        finally:
            silent.close()
            aws.close()


@pytest.fixture
def world(servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    servers.sim.reset()
    servers.sim.set_clock(NOW)
    servers.slack.reset()
    servers.sm.clear_faults()
    w = World(servers, tmp_path, monkeypatch)
    w.capture_logs()
    yield w
    servers.sim.clear_faults()  # a timed-out case may leave a hung handler; nothing else may be armed
    outputs = w.scan_outputs()
    OUTPUTS.extend(outputs)
    assert not _leaks(outputs), "a sentinel secret reached a log line, an answer, a Slack payload or an error"


@pytest.fixture(scope="module")
def gcs_proxy(gcs_emulator: Any) -> Iterator[Gcs503Proxy]:
    proxy = Gcs503Proxy(gcs_emulator.url)
    try:
        yield proxy
    finally:
        proxy.close()


# --- a clean run --------------------------------------------------------------------------------------


def test_clean_run_reports_everything_and_logs_nothing_at_error(world: World) -> None:
    """Without faults every account reports, nothing is at ERROR, and the next check repeats nothing."""
    first = world.run(NOW)
    second = world.run(NOW + HOUR)
    states = {_account_state(first.doc, (scope,)) for scope in ACCOUNTS}
    _row(
        "(none: baseline)",
        [f"≤{DEADLINE_S}s", "all reported", "no ERROR", "once"],
        [
            _budget(DEADLINE_S, first.seconds),
            "all reported" if states == {"reported"} else ", ".join(sorted(states)),
            _errors(first.logs + second.logs, set()),
            _once(first, second, world.state()),
        ],
    )


# --- one source fails: providers, Gemini, Secret Manager ------------------------------------------


@dataclasses.dataclass(frozen=True)
class SourceFault:
    """A fault that hits some accounts: they fail with `cause` (or, with `note`, report and are flagged)."""

    name: str
    targets: tuple[str, ...]
    arm: Callable[[World], dict[str, Any]]  # arms the fault; returns extra arguments for the faulty run
    cause: str | None = None
    note: str | None = None  # the unit-error note the Slack message must carry
    alert_prefix: str = "threshold:"  # an alert that must still fire when the amounts look wrong
    deadline: float = DEADLINE_S
    via: str = "run_check"


def _sim(
    provider: str, mode: str, account: str | None, seconds: float | None = None
) -> Callable[[World], dict[str, Any]]:
    def arm(w: World) -> dict[str, Any]:
        w.sim.add_fault(provider, mode, account=account, seconds=seconds)
        return {}

    return arm


def _env(**values: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"env": dict(values)}


def _refused(provider: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"env": {BASE_URL_ENV[provider]: w.servers.closed_url}}


def _bigquery_fails(at: str, error: BaseException) -> Callable[[World], dict[str, Any]]:
    """A spec'd BigQuery client whose query() or job result() raises `error`, as the real one would."""

    def hook(deps: Deps) -> None:
        fake = mock.create_autospec(bigquery.Client, instance=True)
        job = mock.create_autospec(bigquery.QueryJob, instance=True)
        fake.query.return_value = job
        (fake.query if at == "query" else job.result).side_effect = error
        deps.bigquery_factory = lambda project: fake

    return lambda w: {"deps_hook": hook}


def _secret_fault(mode: str) -> Callable[[World], dict[str, Any]]:
    def arm(w: World) -> dict[str, Any]:
        w.sm.add_fault(mode, secret=SECRETS["anthropic/main"])
        return {}

    return arm


FAILING_MODES: dict[str, tuple[str, str]] = {  # simulator mode: (what the table says, expected cause)
    "timeout": ("no answer (timeout)", "timeout"),
    "http_429": ("HTTP 429 with Retry-After", "rate_limit"),
    "http_429_no_retry_after": ("HTTP 429 without Retry-After", "rate_limit"),
    "http_500": ("HTTP 500", "server_error"),
    "http_502": ("HTTP 502", "server_error"),
    "http_503": ("HTTP 503", "server_error"),
    "http_529": ("HTTP 529 overloaded", "server_error"),
    "http_401": ("HTTP 401 key rejected", "auth"),
    "http_403": ("HTTP 403 key under-privileged", "permission"),
    "html": ("HTML error page, HTTP 502", "server_error"),
    "html_200": ("HTML page with HTTP 200", "bad_response"),
    "error_envelope_200": ("error envelope in HTTP 200", "bad_response"),
    "drift_missing_data": ("drifted shape: data missing", "bad_response"),
    "drift_amount_type": ("drifted shape: amount of another type", "bad_response"),
    "truncated_json": ("truncated JSON", "bad_response"),
    "pagination_loop": ("pagination loop (same next_page)", "bad_response"),
    "endless_has_more": ("endless has_more", "bad_response"),
    "huge": ("huge response (32 MB)", "bad_response"),
    "drip": ("body at one byte a second", "timeout"),
    "stall": ("headers, then silence", "timeout"),
    "gzip_bomb": ("gzip bomb: gzip, gzip to 1 GiB", "bad_response"),
    "gzip_bomb_single": ("gzip inside one declared gzip", "bad_response"),
}
SLOW_MODES = frozenset({"timeout", "drip", "stall"})  # run with the tight deadline: each costs its budget
VIA = {"http_401": "http", "http_403": "http", "html": "cli", "html_200": "cli"}  # the rest: run_check
VIA_LABEL = {"run_check": "", "cli": " [CLI]", "http": " [HTTP fn]"}
FAULTED = {"openai": ("prod", ("openai/prod",)), "anthropic": (None, ("anthropic/main",)), "xai": (None, ("xai/core",)),
           "openrouter": (None, ("openrouter/router",))}  # fmt: skip
UNPAGED = ("xai", "openrouter")  # no next_page / has_more to loop on (OpenRouter pages keys by offset)
AMOUNTS_NOTED = ("openai", "anthropic", "xai")  # the simulator's amount faults (negative, absurd) hit these
NEGATIVE_NOTE = "negative amount(s) in the provider data: possible refund or unit error"
ABSURD_NOTE = "a day above $1,000,000: possible unit error in the provider data (still alerted)"


def _source_faults() -> Iterator[Any]:
    for provider, (account, targets) in FAULTED.items():
        who = targets[0]
        for mode, (what, cause) in FAILING_MODES.items():
            if (mode in ("pagination_loop", "endless_has_more") and provider in UNPAGED) or (
                mode == "http_529" and provider != "anthropic"
            ):
                continue
            slow = mode in SLOW_MODES
            via = VIA.get(mode, "run_check")
            yield pytest.param(
                SourceFault(
                    f"{who}: {what}{VIA_LABEL[via]}",
                    targets,
                    _sim(provider, mode, account, seconds=3 if slow else None),
                    cause=cause,
                    deadline=SLOW_SOURCE_DEADLINE_S if slow else DEADLINE_S,
                    via=via,
                ),
                id=f"{provider}-{mode}",
            )
        every = tuple(a for a in ACCOUNTS if a.startswith(provider))
        yield pytest.param(
            SourceFault(f"{provider}/*: connection refused", every, _refused(provider), cause="connection"),
            id=f"{provider}-refused",
        )
        if provider not in AMOUNTS_NOTED:
            continue
        yield pytest.param(
            SourceFault(
                f"{who}: negative amounts", targets, _sim(provider, "negative_amounts", account), note=NEGATIVE_NOTE
            ),
            id=f"{provider}-negative",
        )
        yield pytest.param(
            SourceFault(
                f"{who}: absurd amounts ($1e9)",
                targets,
                _sim(provider, "absurd_amounts", account),
                note=ABSURD_NOTE,
                alert_prefix=f"threshold:2026-11:{provider}:",
            ),
            id=f"{provider}-absurd",
        )
    yield from _bedrock_faults()
    gemini = ("gemini/billing",)
    yield pytest.param(
        SourceFault(
            "gemini/billing: export table missing",
            gemini,
            _env(BUDGET_CONFIG=_budgets(gemini_table=MISSING_TABLE)),
            cause="not_found",
        ),
        id="gemini-missing-table",
    )
    yield pytest.param(
        SourceFault(
            "gemini/billing: BigQuery accepts, never answers [in process]",
            gemini,
            lambda w: {"env": {"BIGQUERY_EMULATOR_HOST": w.servers.silent.url}},
            cause="timeout",
            deadline=SLOW_SOURCE_DEADLINE_S,
        ),
        id="gemini-stalled",
    )
    denied = gexc.Forbidden(
        "Access Denied: Table llm-faults:billing.gcp_billing_export_v1: User does not have permission",
        errors=[{"reason": "accessDenied", "message": "Access Denied"}],
    )
    yield pytest.param(
        SourceFault(
            "gemini/billing: permission denied [spec'd client]",
            gemini,
            _bigquery_fails("query", denied),
            cause="permission",
        ),
        id="gemini-permission",
    )
    capped = _error_result_to_exception(
        {"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit for bytes billed: 5368709120."}
    )
    yield pytest.param(
        SourceFault(
            "gemini/billing: bytes-billed cap hit [spec'd client]",
            gemini,
            _bigquery_fails("result", capped),
            cause="quota",
        ),
        id="gemini-bytes-billed",
    )
    anthropic = ("anthropic/main",)
    yield pytest.param(
        SourceFault(
            "anthropic/main: Secret Manager secret not found",
            anthropic,
            _env(BUDGET_CONFIG=_budgets(anthropic_secret=MISSING_SECRET)),
            cause="secret",
        ),
        id="secret-not-found",
    )
    yield pytest.param(
        SourceFault(
            "anthropic/main: Secret Manager permission denied", anthropic, _secret_fault("http_403"), cause="secret"
        ),
        id="secret-permission-denied",
    )


BEDROCK_MODES: dict[str, tuple[str, str]] = {  # AwsFaultFront mode: (what the table says, expected cause)
    "http_401": ("HTTP 400 UnrecognizedClientException (key rejected)", "auth"),
    "http_403": ("HTTP 400 AccessDeniedException (no ce:GetCostAndUsage)", "permission"),
    "http_429": ("HTTP 400 ThrottlingException", "rate_limit"),
    "limit_exceeded": ("HTTP 400 LimitExceededException", "rate_limit"),
    "http_500": ("HTTP 500 InternalServerError", "server_error"),
    "http_503": ("HTTP 503 ServiceUnavailableException", "server_error"),
    "html": ("HTML error page, HTTP 502", "server_error"),
    "html_200": ("HTML page with HTTP 200", "bad_response"),
    "drift_missing_data": ("drifted shape: ResultsByTime missing", "bad_response"),
    "drift_amount_type": ("drifted shape: Amount a number", "bad_response"),
    "truncated_json": ("truncated JSON", "bad_response"),
}


def _aws(mode: str) -> Callable[[World], dict[str, Any]]:
    def arm(w: World) -> dict[str, Any]:
        w.servers.aws.arm(mode)
        return {}

    return arm


def _bedrock_faults() -> Iterator[Any]:
    """Cost Explorer's faults, from the fault front before moto (each check without a cache: it fetches)."""
    for mode, (what, cause) in BEDROCK_MODES.items():
        yield pytest.param(
            SourceFault(f"bedrock/main: {what}", ("bedrock/main",), _aws(mode), cause=cause), id=f"bedrock-{mode}"
        )
    yield pytest.param(
        SourceFault("bedrock/*: connection refused", ("bedrock/main",), _refused("bedrock"), cause="connection"),
        id="bedrock-refused",
    )


@pytest.mark.parametrize("case", list(_source_faults()))
def test_source_fault(world: World, case: SourceFault) -> None:
    """A faulty source fails classified and labelled (or reports, flagged); the rest report; alerts once."""
    first = world.run(NOW, via=case.via, deadline=case.deadline, **case.arm(world))
    world.heal()
    second = world.run(NOW + HOUR)
    state = world.state()
    expected = [f"≤{case.deadline:g}s"]
    observed = [_budget(case.deadline, first.seconds)]
    if case.cause is not None:
        expected += [f"failed:{case.cause}", "others ok", "FAILED shown", "ERROR", "once"]
        observed += [
            _account_state(first.doc, case.targets),
            _others(first.doc, case.targets),
            _failed_label(first.posts, case.targets),
            _errors(first.logs, {(t, case.cause) for t in case.targets}),
            _once(first, second, state),
        ]
    else:
        assert case.note is not None
        expected += ["reported", "others ok", "note shown", "alerted", "no ERROR", "once"]
        observed += [
            _account_state(first.doc, case.targets),
            _others(first.doc, case.targets),
            _note(first.posts, case.note),
            _alerted(first, case.alert_prefix),
            _errors(first.logs, set()),
            _once(first, second, state),
        ]
    _row(case.name, expected, observed)


# --- Slack refuses or fails the post ------------------------------------------------------------------


SLACK_FAULTS = [  # mode, how many posts it spoils, expected cause, deadline, HTTP answer, what the table says
    pytest.param("http_429", 3, "rate_limit", DEADLINE_S, 200, "Slack: HTTP 429 rate_limited (after its retries)",
                 id="429"),
    pytest.param("http_500", 1, "server_error", DEADLINE_S, 200, "Slack: HTTP 500 rollup_error", id="500"),
    pytest.param("timeout", 1, "timeout", TIGHT_DEADLINE_S, 200, "Slack: webhook never answers (timeout)",
                 id="timeout"),
    # Permanent: nothing posted, alerts kept, and the answer says so (502) with the fix.
    pytest.param("no_service", 1, "webhook_revoked", DEADLINE_S, 502, "Slack: webhook revoked, HTTP 404 no_service",
                 id="no-service"),
    pytest.param("http_410", 1, "channel_archived", DEADLINE_S, 502, "Slack: channel archived, HTTP 410", id="410"),
    pytest.param("http_403", 1, "posting_denied", DEADLINE_S, 502, "Slack: posting denied, HTTP 403", id="403"),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "count", "cause", "deadline", "code", "name"), SLACK_FAULTS)
def test_slack_fault(world: World, mode: str, count: int, cause: str, deadline: int, code: int, name: str) -> None:
    """A refused post keeps its alerts pending; the first check after recovery posts them exactly once."""
    world.slack.add_fault(mode, count=count, seconds=30 if mode == "timeout" else None)
    first = world.run(NOW, via="http", deadline=deadline)
    pending_state = {e["status"] for k, e in world.state()["events"]["2026-11"].items() if k in first.pending}
    world.heal()
    second = world.run(NOW + HOUR)
    third = world.run(NOW + 2 * HOUR)
    assert first.doc is not None
    _row(
        f"{name} [HTTP fn]",
        [f"≤{deadline}s", f"HTTP {code}", f"not posted:{cause}", "pending kept", "ERROR", "1 post after recovery"],
        [
            _budget(deadline, first.seconds),
            f"HTTP {first.code}",
            _slack_outcome(first),
            "pending kept" if first.pending and pending_state == {"pending"} else f"state {sorted(pending_state)}",
            _errors(first.logs, {("slack", cause)}),
            _recovered(first, second, third, world.state()),
        ],
    )


@pytest.mark.parametrize("mode", ["invalid_payload", "invalid_blocks"])
def test_slack_rejects_the_message(world: World, mode: str) -> None:
    """Slack rejects the message's content: the same run posts it as plain text, once; ERROR names it."""
    world.slack.add_fault(mode, count=1)
    first = world.run(NOW, via="http")
    second = world.run(NOW + HOUR)
    assert first.doc is not None
    plain = len(first.posts) == 1 and "blocks" not in first.posts[0] and first.doc["slack"]["posted"]
    _row(
        f"Slack: HTTP 400 {mode} [HTTP fn]",
        [f"≤{DEADLINE_S}s", "HTTP 200", "posted as plain text", "ERROR", "once"],
        [
            _budget(DEADLINE_S, first.seconds),
            f"HTTP {first.code}",
            "posted as plain text" if plain else f"{len(first.posts)} posts",
            _errors(first.logs, {("slack", "message_rejected")}),
            _once(first, second, world.state()),
        ],
    )


def _slack_outcome(run: Run) -> str:
    if run.doc is None:
        return "no result"
    if run.doc["slack"]["posted"]:
        return "posted"
    causes = [line.get("cause") for line in run.logs if line.get("severity") == "ERROR" and _where(line) == "slack"]
    return f"not posted:{causes[0] if causes else '?'}"


class _PathEchoingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy in front of Slack whose 502 page echoes the path it could not reach (the webhook token)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f"502 Bad Gateway: {self.path} ({urlsplit(self.path).path.rsplit('/', 1)[-1]})".encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("via", ["http", "cli"])
def test_slack_behind_a_proxy_echoing_the_webhook_path(world: World, via: str) -> None:
    """A proxy's error page that echoes the webhook path: not posted, pending, and no part of the path anywhere."""
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PathEchoingProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}{HOOK_PATH}"
        first = world.run(NOW, via=via, env={"SLACK_WEBHOOK_SECRET": "", "SLACK_WEBHOOK_URL": url})
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert first.doc is not None
    error = str(first.doc["slack"]["error"])
    _row(
        f"Slack: proxy 502 page echoing the webhook path [{via}]",
        ["not posted:server_error", "pending kept", "ERROR", "path shown as [REDACTED]"],
        [
            _slack_outcome(first),
            "pending kept" if first.pending else "nothing pending",
            _errors(first.logs, {("slack", "server_error")}),
            "path shown as [REDACTED]" if "[REDACTED]" in error and "SENTINEL" not in error else error,
        ],
    )


# --- alert state in GCS -------------------------------------------------------------------------------


def test_gcs_precondition_conflict(world: World, gcs_bucket: str, gcs_emulator: Any) -> None:
    """A check whose conditional write loses to an overlapping check re-reads and posts nothing twice."""
    world.use_gcs(gcs_bucket, gcs_emulator.url)
    overlapping: list[Run] = []
    store = InterleavingStore(GCSStore(gcs_bucket, STATE_OBJECT), lambda: overlapping.append(world.run(NOW)))
    late = world.run(NOW, store=store)
    posts = len(world.slack.messages())
    second = world.run(NOW + HOUR)
    (early,) = overlapping
    twice = early.delivered & late.delivered
    _row(
        "state: GCS precondition conflict (overlapping check)",
        [f"≤{DEADLINE_S}s", "lost the race, re-read", "each alert once", "no ERROR", "once"],
        [
            _budget(DEADLINE_S, late.seconds),
            "lost the race, re-read" if store.conflicts else "no conflict",
            "each alert once"
            if posts == 1 and early.delivered and not twice
            else f"{posts} posts, twice {sorted(twice)}",
            _errors(late.logs, set()),
            _once(early, second, world.state()),
        ],
    )


def test_gcs_corrupted_object(world: World, gcs_bucket: str, gcs_emulator: Any) -> None:
    """A corrupted state object: exit 3 naming it, nothing posted, the object left as it was, no flood later."""
    world.use_gcs(gcs_bucket, gcs_emulator.url)
    garbage = b'{"version": 1, "events": {"2026-11": '
    GCSStore(gcs_bucket, STATE_OBJECT).write(garbage, if_generation=0)
    first = world.run(NOW, via="cli")
    second = world.run(NOW + HOUR, via="cli")
    assert first.doc is not None
    _row(
        "state: GCS object corrupted [CLI]",
        [f"≤{DEADLINE_S}s", "exit 3", "state error named", "nothing posted", "object untouched", "ERROR", "no flood"],
        [
            _budget(DEADLINE_S, first.seconds),
            f"exit {first.code}",
            "state error named" if "corrupted" in (first.doc["state_error"] or "") else "state error unnamed",
            "nothing posted" if world.slack.attempts() == 0 else f"{world.slack.attempts()} posts",
            "object untouched" if GCSStore(gcs_bucket, STATE_OBJECT).read()[0] == garbage else "object changed",
            _errors(first.logs, {("state", "-")}),
            "no flood"
            if second.code == 3 and not second.posts
            else f"rerun exit {second.code}, {len(second.posts)} posts",
        ],
    )


def test_gcs_transient_503(world: World, gcs_bucket: str, gcs_proxy: Gcs503Proxy) -> None:
    """A passing GCS 503 is retried by the storage client: the check posts once, nothing at ERROR."""
    world.use_gcs(gcs_bucket, gcs_proxy.url)
    gcs_proxy.fail(1)
    try:
        first = world.run(NOW, via="http")
    finally:
        gcs_proxy.heal()
    second = world.run(NOW + HOUR)
    _row(
        "state: GCS 503 once [HTTP fn, via 503 proxy]",
        [f"≤{DEADLINE_S}s", "HTTP 200", "503 retried", "no ERROR", "once"],
        [
            _budget(DEADLINE_S, first.seconds),
            f"HTTP {first.code}",
            "503 retried" if gcs_proxy.refused == 1 and first.delivered else f"{gcs_proxy.refused} refused",
            _errors(first.logs, set()),
            _once(first, second, world.state()),
        ],
    )


# --- faults a Google client library retries on its own: subprocess checks, killed if they overrun ---


@dataclasses.dataclass(frozen=True)
class HangFault:
    name: str
    targets: tuple[str, ...] = ()  # accounts that must fail with `cause`; none: alert state is unusable
    cause: str | None = None


HANG_FAULTS = {
    "gemini-silent": HangFault("gemini/billing: BigQuery never answers", ("gemini/billing",), "timeout"),
    "gemini-refused": HangFault("gemini/billing: BigQuery connection refused", ("gemini/billing",), "connection"),
    "secret-unavailable": HangFault(
        "anthropic/main: Secret Manager 503 UNAVAILABLE, sustained", ("anthropic/main",), "secret"
    ),
    "secret-silent": HangFault("anthropic/main: Secret Manager never answers", ("anthropic/main",), "secret"),
    "gcs-503": HangFault("state: GCS 503, sustained [503 proxy]"),
}


@dataclasses.dataclass
class LabCase:
    """One subprocess check with servers of its own (Slack, Secret Manager, state), so faults stay apart."""

    servers: Servers
    state_dir: Path
    proc: subprocess.Popen[bytes]
    started: float
    proxy: Gcs503Proxy | None = None
    bucket: str | None = None


def _arm_lab(key: str, servers: Servers, env: dict[str, str], gcs: Any, stack: contextlib.ExitStack) -> Any:
    """Arm `key`'s fault on the case's own servers; returns its 503 proxy and bucket for GCS."""
    if key == "gemini-silent":
        env["BIGQUERY_EMULATOR_HOST"] = servers.silent.url
    elif key == "gemini-refused":
        env["BIGQUERY_EMULATOR_HOST"] = servers.closed_url
    elif key == "secret-unavailable":
        servers.sm.add_fault("http_503", secret=SECRETS["anthropic/main"])
    elif key == "secret-silent":
        servers.sm.add_fault("timeout", secret=SECRETS["anthropic/main"], seconds=120)
    elif key == "gcs-503":
        proxy = Gcs503Proxy(gcs.url)
        stack.callback(proxy.close)
        bucket = f"lab-gcs-503-{os.getpid()}"
        devservers.create_bucket(gcs, bucket)
        proxy.fail(None)
        env.update(STATE_BACKEND="gcs", STATE_BUCKET=bucket, STATE_OBJECT=STATE_OBJECT, STORAGE_EMULATOR_HOST=proxy.url)
        return proxy, bucket
    return None, None


@pytest.fixture(scope="module")
def lab(servers: Servers, gcs_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LabCase]]:
    """Every hang case's `python main.py check`, started a little apart, each with its own Slack, SM and state."""
    cases: dict[str, LabCase] = {}
    with contextlib.ExitStack() as stack:
        for key in HANG_FAULTS:
            slack = stack.enter_context(SlackReceiver.start())
            sm = stack.enter_context(SecretManagerFake.start(_secret_values(slack)))
            own = dataclasses.replace(servers, slack=slack, sm=sm)
            state_dir = tmp_path_factory.mktemp(key)
            env = World(own, state_dir, pytest.MonkeyPatch()).env()
            proxy, bucket = _arm_lab(key, own, env, gcs_emulator, stack)
            with (state_dir / "stdout").open("wb") as out, (state_dir / "stderr").open("wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, str(ROOT / "main.py"), "check", "--json", "--now", NOW.isoformat()],
                    cwd=ROOT,
                    env={"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", **env},
                    stdout=out,
                    stderr=err,
                )
            cases[key] = LabCase(own, state_dir, proc, time.monotonic(), proxy, bucket)
            time.sleep(LAB_STAGGER_S)
        try:
            yield cases
        finally:
            for case in cases.values():
                if case.proc.poll() is None:
                    case.proc.kill()
                case.proc.wait()


def _finish(case: LabCase) -> Run:
    """Wait for the subprocess check until its kill time; kill it if it is still running then."""
    killed = False
    try:
        case.proc.wait(timeout=max(0.0, case.started + KILL_AFTER_S - time.monotonic()))
    except subprocess.TimeoutExpired:
        case.proc.kill()
        case.proc.wait()
        killed = True
    out, err = (case.state_dir / "stdout").read_text(), (case.state_dir / "stderr").read_text()
    OUTPUTS.extend([out, err])
    try:
        doc: dict[str, Any] | None = json.loads(out)
    except ValueError:
        doc = None
    seconds = doc["elapsed_s"] if doc is not None else None
    code = None if killed else case.proc.returncode
    return Run(doc, seconds, code, _log_lines(err), case.servers.slack.messages(), killed)


def _lab_budget(run: Run) -> str:
    if run.killed:
        return "check ended, process hung at exit" if run.doc else f"killed at {KILL_AFTER_S:.0f}s"
    if run.doc is None:
        return f"crashed (exit {run.code})"
    return _budget(DEADLINE_S, run.seconds)


@pytest.mark.parametrize("key", list(HANG_FAULTS))
def test_fault_a_client_library_retries(key: str, lab: dict[str, LabCase], monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent or failing Google endpoint cannot hold the check past its budget, and nothing is lost."""
    fault, case = HANG_FAULTS[key], lab[key]
    first = _finish(case)
    world = World(case.servers, case.state_dir, monkeypatch)
    world.capture_logs()
    world.heal()
    if case.proxy is not None and case.bucket is not None:
        case.proxy.heal()
        world.use_gcs(case.bucket, case.proxy.url)
    second = world.run(NOW + HOUR)
    if fault.cause is not None:
        expected = [f"≤{DEADLINE_S}s", f"failed:{fault.cause}", "others ok", "FAILED shown", "ERROR", "once"]
        observed = [
            _lab_budget(first),
            _account_state(first.doc, fault.targets),
            _others(first.doc, fault.targets),
            _failed_label(first.posts, fault.targets),
            _errors(first.logs, {(t, fault.cause) for t in fault.targets}),
            _once(first, second, world.state()),
        ]
    else:
        third = world.run(NOW + 2 * HOUR)
        expected = [f"≤{DEADLINE_S}s", "exit 3", "nothing posted", "ERROR", "1 post after recovery"]
        observed = [
            _lab_budget(first),
            "killed" if first.killed else f"exit {first.code}",
            "nothing posted" if not first.posts else f"{len(first.posts)} posts",
            _errors(first.logs, {("state", "-")}),
            _recovered(first, second, third, world.state()),
        ]
    OUTPUTS.extend(world.scan_outputs())
    _row(f"{fault.name} [CLI subprocess]", expected, observed)


# --- secrets ----------------------------------------------------------------------------------------


def test_no_sentinel_in_anything_the_suite_produced() -> None:
    """No key, Secret Manager value or webhook path appears in any output of this module (runs last)."""
    leaks = _leaks(OUTPUTS)
    record_sentinel_scan(len(OUTPUTS), len(leaks))
    assert OUTPUTS, "the fault cases produced no output to scan"
    assert not leaks, f"{len(leaks)} sentinel leak(s) in the suite's outputs"
