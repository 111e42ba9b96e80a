"""`doctor`: prove a configuration against the real accounts, read-only, before the first alert is due.

    python main.py doctor [--json] [--post-test]        # or POST {"doctor": true, "post_test": false}

One row per check, in pipeline order:

    config    the budget document and environment parse (nothing else runs without them)
    secret    every key and the Slack webhook is read the way a check reads it: not found, permission
              denied, empty and "surrounding whitespace stripped" are each their own row
    provider  one read call per account, reporting what our parsing assumes of the answer:
              openai    whether the repeated `group_by` really came back grouped
              anthropic the newest bucket's end, and whether today's bucket is served
              xai       the shape of the usage answer (an idle team's, too) and whether it parses
              gemini    a BigQuery dry run of the real month-to-date query: bytes, the monthly
                        bytes and cost at 720 runs, whether `maximum_bytes_billed` would be hit;
                        then the newest `export_time`
    state     the state object is readable, and a doctor object next to it is created with
              `if_generation_match=0` (and refused a second time), then deleted by generation.
              The real state object is never written
    slack     the webhook's shape; a test message only with `--post-test`

Status: `ok`, `warn` (works, but look: e.g. whitespace stripped, today not served yet), `skip` (not
run: opt-in, or blocked by an earlier row), `fail` (something a check needs is broken). Exit code 0
when no row failed, 1 otherwise. Nothing here prints a secret: keys are only sent to their provider,
and every line of output passes `logs.redact`.

The probes call the providers' own request constants and parsers; they live here rather than as a
`probe()` in each provider module only to keep this change apart from the provider slices, and can
move next to each `fetch` later.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import logs
from config import DEFAULT_KEY_ENV, KeyedAccount, SecretResolver, Settings
from errors import Cause, ConfigError, NotifyError, ProviderError, SecretError, StateConflict, StateError
from models import UTC, BillingPeriod
from providers import Deps, admin_key
from providers._aggregate import CostAccumulator
from providers._http import Deadline, request_json

Status = Literal["ok", "warn", "skip", "fail"]
log = logs.get("doctor")

PROBE_TIMEOUT_S = 15.0  # each provider probe; one slow provider does not starve the others
RUNS_PER_MONTH = 720  # Cloud Scheduler hourly, 30 days
# BigQuery on-demand analysis: $6.25 per TiB, a 10 MB minimum per table referenced, first 1 TiB per
# month free per billing account (https://cloud.google.com/bigquery/pricing#on_demand_pricing). The
# estimate ignores the free tier: it is shared with everything else on the billing account.
USD_PER_TIB = Decimal("6.25")
MIN_BILLED_BYTES = 10 * 1024**2
EXPORT_STALE = dt.timedelta(hours=48)  # the export lags hours; two days without a row means it is off
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
    rows: list[Row] = [
        Row(
            "config",
            "environment",
            "ok",
            f"{len(refs)} account(s): " + (", ".join(f"{p}/{a.label}" for p, a in refs) or "none"),
            {"accounts": [f"{p}/{a.label}" for p, a in refs], "state_backend": settings.state_backend},
        )
    ]
    # A fresh resolver: a warm instance's cache would hide a secret that broke since it was read.
    secrets = clients.secrets or SecretResolver(env=env, emulator_host=settings.secret_manager_emulator_host)
    deps = Deps(
        secrets=secrets,
        base_urls=settings.base_urls,
        bigquery_job_project=settings.bigquery_job_project,
        bigquery_emulator_host=settings.bigquery_emulator_host,
        bigquery_factory=clients.bigquery_factory,
    )
    if clients.http_factory is not None:
        deps.http_factory = clients.http_factory

    # Reads and probes run side by side, each bounded (SECRET_TIMEOUT_S, PROBE_TIMEOUT_S), so the
    # whole doctor stays well inside the function's timeout however many accounts there are.
    from check import import_client_libraries

    import_client_libraries(settings)  # first imports on this thread, not in two worker threads at once
    keyed = [(p, a) for p, a in refs if isinstance(a, KeyedAccount)]
    with concurrent.futures.ThreadPoolExecutor(max(1, min(8, len(refs) + 1)), thread_name_prefix="doctor") as pool:
        key_reads = [pool.submit(_secret_row, deps, p, a) for p, a in keyed]
        webhook_read = pool.submit(_webhook_secret, settings, secrets)
        key_rows = [f.result() for f in key_reads]
        webhook_row, webhook = webhook_read.result()
        rows.extend([*key_rows, webhook_row])
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
        rows.extend(slot if isinstance(slot, Row) else slot.result() for slot in slots)

    rows.extend(_guarded("state", settings.state_bucket or str(settings.state_file),
                         lambda: _state_rows(settings, clients.storage_client, now)))  # fmt: skip
    rows.extend(_guarded("slack", "webhook", lambda: [_slack_row(webhook, post_test, now)]))
    return Report(tuple(rows))


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
    source = account.key_secret or account.key_env or f"${DEFAULT_KEY_ENV[provider]}"
    try:
        admin_key(deps, provider, account, f"{provider} admin key")
    except SecretError as exc:
        return Row("secret", f"{scope} key", "fail", str(exc), {"source": source, "reason": exc.reason})
    return _read_ok(f"{scope} key", source, deps.secrets)


def _read_ok(target: str, source: str, secrets: SecretResolver) -> Row:
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


def _webhook_secret(settings: Settings, secrets: SecretResolver) -> tuple[Row, str | None]:
    try:
        settings.require_slack()
    except ConfigError as exc:
        return Row("secret", "slack webhook", "fail", str(exc), {"reason": "unset"}), None
    source = settings.slack_webhook_secret or "$SLACK_WEBHOOK_URL"
    try:
        url = secrets.get(
            secret=settings.slack_webhook_secret,
            env_name=None if settings.slack_webhook_secret else "SLACK_WEBHOOK_URL",
            what="Slack webhook URL",
        )
    except SecretError as exc:
        return Row("secret", "slack webhook", "fail", str(exc), {"source": source, "reason": exc.reason}), None
    return _read_ok("slack webhook", source, secrets), url


# --- providers ---------------------------------------------------------------------------------


def _provider_row(provider: str, account: Any, deps: Deps, now: dt.datetime) -> Row:
    scope = f"{provider}/{account.label}"
    probe = _PROBES[provider]
    try:
        status, detail, facts = probe(account, deps, now)
    except ProviderError as exc:
        facts = {"cause": str(exc.cause)} | ({"http_status": exc.status} if exc.status is not None else {})
        return Row("provider", scope, "fail", f"{exc.cause.describe}: {exc.message}", facts)
    except SecretError as exc:  # read fine a moment ago; only a concurrent rotation gets here
        return Row("provider", scope, "fail", str(exc), {"cause": "secret"})
    except Exception as exc:  # recorded as a failed row: one broken probe hides no other
        log.exception("doctor probe crashed")
        return Row("provider", scope, "fail", f"internal error: {type(exc).__name__}", {"cause": "internal"})
    return Row("provider", scope, status, detail, facts)


Probe = Callable[[Any, Deps, dt.datetime], tuple[Status, str, dict[str, Any]]]


def _probe_openai(account: Any, deps: Deps, now: dt.datetime) -> tuple[Status, str, dict[str, Any]]:
    """One page of `/organization/costs` for this month, grouped as the check groups it."""
    from providers import openai

    period = BillingPeriod.containing(now)
    key = admin_key(deps, "openai", account, "OpenAI admin key")
    params: list[tuple[str, str | int]] = [
        ("start_time", int(period.start.timestamp())),
        ("end_time", max(int(now.timestamp()), int(period.start.timestamp()) + 1)),
        ("bucket_width", "1d"),
        ("group_by", "line_item"),
        ("group_by", "project_id"),
        ("limit", openai.PAGE_LIMIT),
    ]
    with deps.http_factory(deps.base_urls["openai"], headers={"Authorization": f"Bearer {key}"}) as client:
        doc = request_json(client, "GET", openai.PATH, params=params, deadline=Deadline(PROBE_TIMEOUT_S))
    acc = CostAccumulator(period)
    openai.parse_costs_page(doc, acc)  # the check's own parser: a drifted shape fails here
    results = [r for b in doc["data"] for r in b["results"]]
    grouped = {dim: any(isinstance(r.get(dim), str) for r in results) for dim in ("line_item", "project_id")}
    facts = {"http_status": 200, "buckets": len(doc["data"]), "results": len(results), "grouped": grouped}
    if not results:
        return "ok", "HTTP 200, no cost rows this month yet: grouping not verifiable", facts
    missing = [dim for dim, ok in grouped.items() if not ok]
    if missing:
        return (
            "warn",
            f"HTTP 200, but results are not grouped by {', '.join(missing)}: the repeated group_by was not "
            "honoured (totals are right, the breakdown will be coarser)",
            facts,
        )
    return "ok", f"HTTP 200, {len(results)} result(s) grouped by line_item and project_id", facts


def _probe_anthropic(account: Any, deps: Deps, now: dt.datetime) -> tuple[Status, str, dict[str, Any]]:
    """`/organizations/cost_report` from yesterday (or the 1st) to tomorrow: is today's bucket served?"""
    from providers import anthropic

    period = BillingPeriod.containing(now)
    today = dt.datetime.combine(now.astimezone(UTC).date(), dt.time(), UTC)
    start = max(period.start, today - dt.timedelta(days=1))
    key = admin_key(deps, "anthropic", account, "Anthropic admin key")
    params: list[tuple[str, str | int]] = [
        ("starting_at", start.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", (today + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("bucket_width", "1d"),
        ("group_by[]", "description"),
        ("group_by[]", "workspace_id"),
        ("limit", anthropic.PAGE_LIMIT),
    ]
    headers = {"x-api-key": key, "anthropic-version": anthropic.API_VERSION}
    with deps.http_factory(deps.base_urls["anthropic"], headers=headers) as client:
        doc = request_json(client, "GET", anthropic.PATH, params=params, deadline=Deadline(PROBE_TIMEOUT_S))
    anthropic.parse_cost_report_page(doc, CostAccumulator(period))  # the check's own parser
    starts = [_instant(b.get("starting_at")) for b in doc["data"]]
    ends = [_instant(b.get("ending_at")) for b in doc["data"]]
    newest_end = max((e for e in ends if e is not None), default=None)
    served = today in starts
    facts = {
        "http_status": 200,
        "buckets": len(doc["data"]),
        "newest_bucket_end": newest_end.isoformat() if newest_end else None,
        "today_served": served,
    }
    if not served:
        shown = f"{newest_end:%Y-%m-%d %H:%M}Z" if newest_end else "none"
        return "warn", f"HTTP 200, but no bucket for today (newest bucket ends {shown}): MTD will lag", facts
    return "ok", f"HTTP 200, today's bucket is served (newest bucket ends {newest_end:%Y-%m-%d %H:%M}Z)", facts


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _probe_xai(account: Any, deps: Deps, now: dt.datetime) -> tuple[Status, str, dict[str, Any]]:
    """The check's own `usage` call; reports the answer's shape (what an idle team returns matters)."""
    from providers import xai

    period = BillingPeriod.containing(now)
    key = admin_key(deps, "xai", account, "xAI management key")
    body = xai.usage_request(period)
    with deps.http_factory(deps.base_urls["xai"], headers={"Authorization": f"Bearer {key}"}) as client:
        doc = xai._call(client, xai.USAGE, account.team_id, body=body, deadline=Deadline(PROBE_TIMEOUT_S), counter=[0])
    series = doc.get("timeSeries")
    shape = {
        "keys": sorted(doc)[:12],
        "time_series": "absent" if series is None else (len(series) if isinstance(series, list) else "not a list"),
        "limit_reached": doc.get("limitReached", "absent"),
    }
    facts = {"http_status": 200, "shape": shape}
    try:
        usage = xai.parse_usage(doc)
    except ProviderError as exc:
        raise ProviderError(exc.cause, f"{exc.message}; the answer had keys {shape['keys']}") from None
    if not usage.points:
        return "ok", f"HTTP 200, idle team shape parses as $0 (timeSeries {shape['time_series']})", facts
    return "ok", f"HTTP 200, {len(usage.points)} data point(s) in {shape['time_series']} series", facts


def _probe_gemini(account: Any, deps: Deps, now: dt.datetime) -> tuple[Status, str, dict[str, Any]]:
    """A dry run of the check's own query and parameters, then the newest `export_time` (one column)."""
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    from providers import gemini

    table = account.billing_export_table
    source = gemini.from_config(account, deps)
    period = source.billing_period(now)
    params = gemini.QueryParams.for_period(period, account)
    sql = gemini.build_query(table)
    deadline = Deadline(PROBE_TIMEOUT_S)  # both BigQuery calls together, like one provider probe
    try:
        client = source._bigquery()  # the check's own client path (factory, emulator, job project)
        # Dry run: validates the SQL against the real table and returns the estimate in
        # statistics.query.totalBytesProcessed, billing nothing. No maximum_bytes_billed on it: the
        # point is to learn the number and compare it with the cap ourselves.
        # (https://cloud.google.com/bigquery/docs/samples/bigquery-query-dry-run)
        job = client.query(
            sql,
            job_config=bigquery.QueryJobConfig(
                dry_run=True, use_query_cache=False, query_parameters=params.to_bigquery()
            ),
            timeout=deadline.remaining(),
            retry=DEFAULT_RETRY.with_timeout(deadline.remaining()),
            job_retry=None,
        )
        processed = int(job.total_bytes_processed or 0)
    except gemini._handled_errors() as exc:
        raise gemini.classify(exc, table) from None
    cap = account.maximum_bytes_billed
    per_run = max(math.ceil(processed / 1024**2) * 1024**2, MIN_BILLED_BYTES)  # what the cap is held against
    monthly = per_run * RUNS_PER_MONTH
    cost = (Decimal(monthly) / Decimal(1024**4) * USD_PER_TIB).quantize(Decimal("0.01"))
    facts: dict[str, Any] = {
        "bytes_processed": processed,
        "maximum_bytes_billed": cap,
        "bytes_billed_per_run": per_run,
        "would_hit_cap": per_run > cap,
        "runs_per_month": RUNS_PER_MONTH,
        "monthly_bytes_billed": monthly,
        "monthly_cost_usd": str(cost),
    }
    summary = f"dry run: {_bytes(processed)} per run, {_bytes(monthly)} / ~${cost} a month at {RUNS_PER_MONTH} runs"
    if per_run > cap:
        return (
            "fail",
            f"{summary}; over maximum_bytes_billed ({_bytes(cap)}): every check would fail as quota. "
            "Raise maximum_bytes_billed or lower late_row_margin_days",
            facts,
        )
    newest = _newest_export(client, table, params, cap, deadline)
    facts["newest_export_time"] = newest.isoformat() if newest else None
    if newest is None:
        return "warn", f"{summary}; no export rows since the partition floor: is the billing export on?", facts
    if now - newest > EXPORT_STALE:
        return "warn", f"{summary}; newest export_time {newest:%Y-%m-%d %H:%M}Z is over 2 days old", facts
    return "ok", f"{summary}; newest export_time {newest:%Y-%m-%d %H:%M}Z", facts


def _newest_export(client: Any, table: str, params: Any, cap: int, deadline: Deadline) -> dt.datetime | None:
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    from providers import gemini

    if "`" in table or "\n" in table:
        raise ValueError("billing_export_table must be a plain project.dataset.table name")
    sql = (
        f"SELECT MAX(export_time) AS newest FROM `{table}` "
        "WHERE _PARTITIONTIME >= @partition_floor AND export_time <= @as_of"
    )  # one column over the month query's partitions: a fraction of its bytes, under the same cap
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("partition_floor", "TIMESTAMP", params.partition_floor),
            bigquery.ScalarQueryParameter("as_of", "TIMESTAMP", params.as_of),
        ],
        maximum_bytes_billed=cap,
    )
    try:
        left = max(deadline.remaining(), 0.1)
        job = client.query(sql, job_config=config, timeout=left, retry=DEFAULT_RETRY.with_timeout(left), job_retry=None)
        left = max(deadline.remaining(), 0.1)
        rows = list(job.result(timeout=left, retry=DEFAULT_RETRY.with_timeout(left)))
    except gemini._handled_errors() as exc:
        raise gemini.classify(exc, table) from None
    value = rows[0]["newest"] if rows else None
    if value is not None and not isinstance(value, dt.datetime):
        raise ProviderError(Cause.BAD_RESPONSE, "MAX(export_time) is not a timestamp")
    return value.astimezone(UTC) if value is not None else None


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


_PROBES: dict[str, Probe] = {
    "openai": _probe_openai,
    "anthropic": _probe_anthropic,
    "xai": _probe_xai,
    "gemini": _probe_gemini,
}


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


def _slack_row(url: str | None, post_test: bool, now: dt.datetime) -> Row:
    if url is None:
        return Row("slack", "webhook", "skip", "not checked: the webhook could not be read (see the secret row)")
    local = url.startswith(("http://127.0.0.1", "http://localhost"))
    if not local and not url.startswith("https://hooks.slack.com/"):
        shape = "warn"
        note = "not a https://hooks.slack.com/ incoming-webhook URL"
    else:
        shape, note = "ok", "incoming-webhook URL"
    if not post_test:
        status: Status = "warn" if shape == "warn" else "skip"
        return Row("slack", "webhook", status, f"{note}; no test message sent (add --post-test to send one)")
    from alerts import slack

    payload = {
        "text": DOCTOR_MESSAGE,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f":stethoscope: {DOCTOR_MESSAGE}"}}],
    }
    try:
        slack.post(url, payload)
    except NotifyError as exc:
        facts = {"cause": str(exc.cause)} | ({"http_status": exc.status} if exc.status is not None else {})
        return Row("slack", "webhook", "fail", f"test message refused: {exc.message}", facts)
    return Row("slack", "webhook", "ok", f"{note}; Slack accepted the test message ({now:%H:%M}Z)")


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
