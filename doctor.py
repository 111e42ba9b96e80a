"""`doctor`: prove a configuration against the real accounts, read-only, before the first alert is due.

    python main.py doctor [--json] [--post-test]        # or POST {"doctor": true, "post_test": false}

One row per check, in pipeline order:

    config    the budget document and environment parse (nothing else runs without them)
    secret    every key and the Slack webhook is read the way a check reads it: not found, permission
              denied, empty and "surrounding whitespace stripped" are each their own row
    provider  one read call per account (each provider's `probe`, next to its `fetch`), reporting
              what our parsing assumes of the answer: grouping honoured, today's data served, the
              answer's shape, or a query's bytes and monthly cost against its cap
    state     the state object is readable, and a doctor object next to it is created with
              `if_generation_match=0` (and refused a second time), then deleted by generation.
              The real state object is never written
    slack     the webhook's shape; a test message only with `--post-test`

Status: `ok`, `warn` (works, but look: e.g. whitespace stripped, today not served yet), `skip` (not
run: opt-in, or blocked by an earlier row), `fail` (something a check needs is broken). Exit code 0
when no row failed, 1 otherwise. Nothing here prints a secret: keys are only sent to their provider,
and every line of output passes `logs.redact`.

The probes call the providers' own request constants and parsers; a provider without one gets a
`skip` row.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import logs
from config import SecretResolver, Settings
from errors import ConfigError, NotifyError, ProviderError, SecretError, StateConflict, StateError
from models import UTC, Deadline
from preload import import_client_libraries
from providers import Deps, KeyedAccount, ProbeStatus, SecretSource, admin_key, spec

__all__ = [
    "DOCTOR_MESSAGE",
    "PROBE_TIMEOUT_S",
    "Clients",
    "Report",
    "Row",
    "Status",
    "run",
    "table",
    "to_json_text",
]

Status = ProbeStatus
log = logs.get("doctor")

PROBE_TIMEOUT_S = 15.0  # each provider probe; one slow provider does not starve the others
DOCTOR_MESSAGE = "llm-budget-alert doctor: test message. The webhook works; nothing is over budget."


@dataclasses.dataclass(frozen=True)
class Row:
    """One check's outcome. `facts` is what the provider actually returned that our assumptions use."""

    check: str
    target: str
    status: Status
    detail: str
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]

    @property
    def ready(self) -> bool:
        return not any(r.status == "fail" for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ready else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "exit_code": self.exit_code,
            "checks": [dataclasses.asdict(r) for r in self.rows],
        }


@dataclasses.dataclass
class Clients:
    """What the probes are built from; tests pass local servers' clients, the default is production's."""

    secrets: SecretResolver | None = None
    http_factory: Callable[..., Any] | None = None
    bigquery_factory: Callable[[str | None], Any] | None = None
    storage_client: Any = None


def run(
    env: dict[str, str] | None = None,
    *,
    post_test: bool = False,
    now: dt.datetime | None = None,
    clients: Clients | None = None,
) -> Report:
    """Every check for the configuration in `env` (default: the process environment)."""
    clients = clients or Clients()
    now = now or dt.datetime.now(UTC)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        return Report((Row("config", "environment", "fail", str(exc)),))
    refs = [(p, a) for p in settings.budgets.configured() for a in settings.budgets.accounts(p)]
    rows = [_config_row(settings, refs)]
    # A fresh resolver: a warm instance's cache would hide a secret that broke since it was read.
    secrets = clients.secrets or SecretResolver(env=env, emulator_host=settings.secret_manager_emulator_host)
    deps = _deps_for(settings, secrets, clients)
    import_client_libraries(settings)  # first imports on this thread, not in two worker threads at once
    more, webhooks = _secret_and_provider_rows(settings, deps, refs, now)
    rows.extend(more)
    rows.extend(_guarded("state", settings.state_bucket or str(settings.state_file),
                         lambda: _state_rows(settings, clients.storage_client, now)))  # fmt: skip
    for target, webhook in webhooks.items():  # one per Slack destination ("webhook" alone without destinations)
        rows.extend(_guarded("slack", target, functools.partial(_slack_rows, webhook, post_test, now, target)))
    return Report(tuple(rows))


def _config_row(settings: Settings, refs: list[tuple[str, Any]]) -> Row:
    return Row(
        "config",
        "environment",
        "ok",
        f"{len(refs)} account(s): " + (", ".join(f"{p}/{a.label}" for p, a in refs) or "none"),
        {"accounts": [f"{p}/{a.label}" for p, a in refs], "state_backend": settings.state_backend},
    )


def _deps_for(settings: Settings, secrets: SecretResolver, clients: Clients) -> Deps:
    deps = Deps(
        secrets=secrets,
        base_urls=settings.base_urls,
        bigquery_job_project=settings.bigquery_job_project,
        bigquery_emulator_host=settings.bigquery_emulator_host,
        bigquery_factory=clients.bigquery_factory,
    )
    if clients.http_factory is not None:
        deps.http_factory = clients.http_factory
    return deps


def _secret_and_provider_rows(
    settings: Settings, deps: Deps, refs: list[tuple[str, Any]], now: dt.datetime
) -> tuple[list[Row], dict[str, str | None]]:
    """The key and webhook reads, then one probe per account whose key was read, and the webhook URL.

    Reads and probes run side by side, each bounded (SECRET_TIMEOUT_S, PROBE_TIMEOUT_S), so the
    whole doctor stays well inside the function's timeout however many accounts there are.
    """
    keyed = [(p, a) for p, a in refs if isinstance(a, KeyedAccount)]
    with concurrent.futures.ThreadPoolExecutor(max(1, min(8, len(refs) + 1)), thread_name_prefix="doctor") as pool:
        key_reads = [pool.submit(_secret_row, deps, p, a) for p, a in keyed]
        dests = tuple(settings.budgets.destinations) or (None,)
        webhook_reads = [pool.submit(_webhook_secret, settings, deps.secrets, d) for d in dests]
        key_rows = [f.result() for f in key_reads]
        webhook_rows = [f.result() for f in webhook_reads]
        unreadable = {f"{p}/{a.label}" for (p, a), r in zip(keyed, key_rows, strict=True) if r.status == "fail"}
        slots: list[Row | concurrent.futures.Future[Row]] = []
        for provider, account in refs:
            scope = f"{provider}/{account.label}"
            if scope in unreadable:
                slots.append(
                    Row("provider", scope, "skip", "not called: its key could not be read (see the secret row)")
                )
            else:
                slots.append(pool.submit(_provider_row, provider, account, deps, now))
        rows = [
            *key_rows,
            *(row for row, _ in webhook_rows),
            *(slot if isinstance(slot, Row) else slot.result() for slot in slots),
        ]
    targets = ("webhook" if d is None else f"webhook {d}" for d in dests)
    return rows, dict(zip(targets, (url for _, url in webhook_rows), strict=True))


def _guarded(check: str, target: str, probe: Callable[[], list[Row]]) -> list[Row]:
    """A probe's rows, or one failed row for an error nobody classified (logged, never raised)."""
    try:
        return probe()
    except Exception as exc:  # recorded as a failed row: one broken probe hides no other
        log.exception("doctor probe crashed")
        return [Row(check, target, "fail", f"internal error: {type(exc).__name__}")]


# --- secrets -----------------------------------------------------------------------------------


def _secret_row(deps: Deps, provider: str, account: KeyedAccount) -> Row:
    scope = f"{provider}/{account.label}"
    default_env = spec(provider).key_env
    source = account.key_secret or account.key_env or f"${default_env}"
    try:
        admin_key(deps, default_env, account, f"{provider} admin key")
    except SecretError as exc:
        return Row("secret", f"{scope} key", "fail", str(exc), {"source": source, "reason": exc.reason})
    return _read_ok(f"{scope} key", source, deps.secrets)


def _read_ok(target: str, source: str, secrets: SecretSource) -> Row:
    name = source.removeprefix("$")
    if name in secrets.stripped:
        return Row(
            "secret",
            target,
            "warn",
            f"read from {source}; surrounding whitespace stripped (a trailing newline from `echo`?): "
            "the check uses the stripped value, re-add it with `printf %s` to be exact",
            {"source": source, "reason": "stripped"},
        )
    return Row("secret", target, "ok", f"read from {source}", {"source": source})


def _webhook_secret(settings: Settings, secrets: SecretSource, dest: str | None = None) -> tuple[Row, str | None]:
    """The webhook of destination `dest` read as a check reads it (None: SLACK_WEBHOOK_*, no destinations)."""
    target = "slack webhook" if dest is None else f"slack webhook {dest}"
    try:
        settings.require_slack()
    except ConfigError as exc:
        return Row("secret", target, "fail", str(exc), {"reason": "unset"}), None
    secret, env_name = settings.webhook_of(dest or "default")
    source = secret or f"${env_name}"
    what = "Slack webhook URL" if dest is None else f'Slack webhook URL of destination "{dest}"'
    try:
        url = secrets.get(secret=secret, env_name=env_name, what=what)
    except SecretError as exc:
        return Row("secret", target, "fail", str(exc), {"source": source, "reason": exc.reason}), None
    return _read_ok(target, source, secrets), url


# --- providers ---------------------------------------------------------------------------------


def _provider_row(provider: str, account: Any, deps: Deps, now: dt.datetime) -> Row:
    scope = f"{provider}/{account.label}"
    probe = spec(provider).probe
    if probe is None:
        return Row("provider", scope, "skip", "no doctor probe for this provider")
    try:
        status, detail, facts = probe(account, deps, now, Deadline(PROBE_TIMEOUT_S))
    except ProviderError as exc:
        facts = {"cause": str(exc.cause)} | ({"http_status": exc.status} if exc.status is not None else {})
        return Row("provider", scope, "fail", f"{exc.cause.describe}: {exc.message}", facts)
    except SecretError as exc:  # read fine a moment ago; only a concurrent rotation gets here
        return Row("provider", scope, "fail", str(exc), {"cause": "secret"})
    except Exception as exc:  # recorded as a failed row: one broken probe hides no other
        log.exception("doctor probe crashed")
        return Row("provider", scope, "fail", f"internal error: {type(exc).__name__}", {"cause": "internal"})
    return Row("provider", scope, status, detail, facts)


# --- state -------------------------------------------------------------------------------------


def _state_rows(settings: Settings, storage_client: Any, now: dt.datetime) -> list[Row]:
    from alerts.state import FileStore, GCSStore, Store, decode

    main: Store
    probe: Store
    if settings.state_backend == "gcs":
        assert settings.state_bucket is not None
        if storage_client is None:
            from google.cloud import storage  # type: ignore[attr-defined]

            storage_client = storage.Client()
        main = GCSStore(settings.state_bucket, settings.state_object, client=storage_client)
        probe_name = f"{settings.state_object}.doctor-{uuid.uuid4().hex[:8]}"
        probe = GCSStore(settings.state_bucket, probe_name, client=storage_client)
    else:
        main = FileStore(settings.state_file)
        probe = FileStore(settings.state_file.with_name(f"{settings.state_file.name}.doctor-{uuid.uuid4().hex[:8]}"))

    rows: list[Row] = []
    try:
        data, gen = main.read()
        doc = decode(data, location=main.location)
        if data is None:
            rows.append(Row("state", main.location, "ok", "absent: the first check creates it", {"generation": 0}))
        else:
            months = sorted(doc["events"])
            rows.append(
                Row("state", main.location, "ok", f"readable, generation {gen}, months {months or 'none'}",
                    {"generation": gen, "months": months})
            )  # fmt: skip
    except StateError as exc:
        rows.append(Row("state", main.location, "fail", str(exc)))

    return _state_probe(probe, rows, storage_client, now)


def _state_probe(probe: Any, rows: list[Row], storage_client: Any = None, now: dt.datetime | None = None) -> list[Row]:
    """Create `probe` with `if_generation=0`, expect a second create to be refused, then delete it."""
    body = json.dumps({"doctor": (now or dt.datetime.now(UTC)).isoformat()}).encode()
    target = "create-only write"
    try:
        probe.write(body, if_generation=0)
    except StateError as exc:  # StateConflict included: a fresh random name cannot exist yet
        hint = " (does the bucket exist? check STATE_BUCKET)" if "NotFound" in str(exc) else ""
        rows.append(Row("state", target, "fail", f"{exc}{hint}", {"object": probe.location}))
        return rows
    try:
        probe.write(body, if_generation=0)  # must be refused: the object exists now
    except StateConflict:
        rows.append(Row("state", target, "ok", f"{probe.location} created with if_generation_match=0, a second "
                        "create was refused (412 precondition), deleted", {"precondition_enforced": True}))  # fmt: skip
    except StateError as exc:
        rows.append(Row("state", target, "fail", str(exc)))
    else:
        rows.append(Row("state", target, "fail", "a second create-only write succeeded: the store does not "
                        "enforce if_generation_match, so overlapping checks could both post",
                        {"precondition_enforced": False}))  # fmt: skip
    finally:
        _delete_probe(probe, storage_client)
    return rows


def _delete_probe(probe: Any, storage_client: Any) -> None:
    """Delete the doctor object by its current generation (never an unconditional delete)."""
    from alerts.state import GCSStore

    if isinstance(probe, GCSStore):
        from google.api_core import exceptions as gexc

        blob = storage_client.bucket(probe.bucket_name).blob(probe.name)
        with contextlib.suppress(gexc.GoogleAPIError):  # left behind: a few bytes named *.doctor-*, harmless
            blob.reload(timeout=10)
            blob.delete(if_generation_match=blob.generation, timeout=10)
        return
    path = probe.path
    for p in (path, path.with_name(path.name + ".gen"), path.with_name(path.name + ".lock")):
        with contextlib.suppress(OSError):
            os.unlink(p)


# --- slack -------------------------------------------------------------------------------------


def _slack_rows(url: str | None, post_test: bool, now: dt.datetime, target: str) -> list[Row]:
    return [_slack_row(url, post_test, now, target)]


def _slack_row(url: str | None, post_test: bool, now: dt.datetime, target: str = "webhook") -> Row:
    if url is None:
        return Row("slack", target, "skip", "not checked: the webhook could not be read (see the secret row)")
    local = url.startswith(("http://127.0.0.1", "http://localhost"))
    if not local and not url.startswith("https://hooks.slack.com/"):
        shape = "warn"
        note = "not a https://hooks.slack.com/ incoming-webhook URL"
    else:
        shape, note = "ok", "incoming-webhook URL"
    if not post_test:
        status: Status = "warn" if shape == "warn" else "skip"
        return Row("slack", target, status, f"{note}; no test message sent (add --post-test to send one)")
    from alerts import slack

    payload = {
        "text": DOCTOR_MESSAGE,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f":stethoscope: {DOCTOR_MESSAGE}"}}],
    }
    try:
        slack.post(url, payload)
    except NotifyError as exc:
        facts = {"cause": str(exc.cause)} | ({"http_status": exc.status} if exc.status is not None else {})
        return Row("slack", target, "fail", f"test message refused: {exc.message}", facts)
    return Row("slack", target, "ok", f"{note}; Slack accepted the test message ({now:%H:%M}Z)")


# --- output ------------------------------------------------------------------------------------


def table(report: Report) -> str:
    """The readiness table, one row per check, and a verdict line. Redacted."""
    width = min(max(len(r.target) for r in report.rows), 64)
    lines = [f"{'check':<9} {'target':<{width}} {'status':<6} detail"]
    for r in report.rows:
        lines.append(f"{r.check:<9} {_clip(r.target, width):<{width}} {r.status.upper():<6} {r.detail}")
    failed = sum(r.status == "fail" for r in report.rows)
    lines.append("")
    lines.append("READY" if report.ready else f"NOT READY: {failed} check(s) failed")
    return logs.redact("\n".join(lines))


def to_json_text(report: Report) -> str:
    return logs.redact(json.dumps(report.to_json(), indent=2, default=str))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]
