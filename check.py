"""One check: billing windows → fetch every account concurrently → evaluate → say what is new → post.

    settings ─► sources (threads, one deadline) ─► rules.evaluate ─► events
                                                        │
    state.Ledger.claim (CAS) ◄──────────────────────────┘
           │ owned events
           ▼
    slack.render ─► slack.deliver ─► Ledger.confirm | Ledger.release (pending, retried next run)

A failing account becomes a failed `SourceResult` (never $0) and never stops the others. A config or
state error stops the check before anything is posted.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import logs
from alerts import rules, slack
from alerts.rules import Event, Scope
from alerts.state import FAILURE_RECOUNT, Doc, FileStore, GCSStore, Ledger, Store
from config import SecretResolver, Settings
from errors import Cause, NotifyError, ProviderError, SecretError, StateError
from models import AccountRef, BillingPeriod, Deadline, SourceResult, require_aware, usd_plain
from preload import import_client_libraries
from providers import Deps, build_source, spec

log = logs.get("check")
NOTIFY_RESERVE_S = 15.0  # of the deadline, kept for state writes and the Slack post
FETCH_GRACE_S = 1.0  # past the sources' deadline, for a fetch to report its own classified timeout


@dataclasses.dataclass
class CheckOutcome:
    now: dt.datetime
    results: list[SourceResult]
    scopes: list[Scope]
    events_now: list[Event]  # everything that holds now (new or not)
    delivered: list[str] = dataclasses.field(default_factory=list)  # keys posted by this run
    pending: list[str] = dataclasses.field(default_factory=list)  # keys left for a later run
    payload: dict[str, Any] | None = None  # the Slack message (posted, or rendered in a dry run)
    posted: bool = False
    notify_error: str | None = None
    notify_permanent: str | None = None  # the Cause of a Slack refusal that retrying will not fix
    notify_fix: str | None = None  # what to do about it
    state_error: str | None = None
    dry_run: bool = False
    elapsed_s: float = 0.0

    @property
    def partial(self) -> bool:
        return any(r.partial for r in self.results)

    @property
    def health(self) -> str:
        """One word for monitoring: "ok" only when every source answered and Slack took the message.

        "notify_failed" (Slack refused or was unreachable), "partial" (a source failed), "dry_run"
        (nothing was meant to be posted) are the others. A state error ends the run before the
        "check finished" line, so it shows as a missing line.
        """
        if self.notify_error is not None:
            return "notify_failed"
        if self.partial:
            return "partial"
        return "dry_run" if self.dry_run else "ok"


def fetch_all(settings: Settings, deps: Deps, now: dt.datetime, deadline: Deadline) -> list[SourceResult]:
    """Every configured account, fetched concurrently; failures are classified results."""
    jobs: list[tuple[AccountRef, Callable[[], SourceResult]]] = []
    periods: dict[AccountRef, BillingPeriod] = {}  # each fetch's own period, for one that never returns
    for provider in settings.budgets.configured():
        for account in settings.budgets.accounts(provider):
            ref = AccountRef(provider, account.label)
            jobs.append((ref, _fetch_one(provider, account, ref, deps, now, deadline, periods)))
    if not jobs:
        return []
    import_client_libraries(settings)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(jobs)), thread_name_prefix="fetch")
    started = time.monotonic()
    try:
        # Each fetch runs in a copy of this context, so its log lines carry the request's execution id
        # (logs.bind_execution); one copy per task, as a Context is entered by one thread at a time.
        futures = [pool.submit(contextvars.copy_context().run, fn) for _, fn in jobs]
        # A thread stuck in a client call that ignores its timeout (a Google library retrying, a
        # socket read that never ends) must not hold the check: wait until the deadline (plus a
        # grace for a fetch to report its own timeout), then report what is still running as failed.
        concurrent.futures.wait(futures, timeout=deadline.remaining() + FETCH_GRACE_S)
        return [
            f.result() if f.done() else _stuck(ref, periods.get(ref) or BillingPeriod.containing(now), started)
            for (ref, _), f in zip(jobs, futures, strict=True)
        ]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a stuck thread ends on its own timeouts, unawaited


def _stuck(ref: AccountRef, period: BillingPeriod, started: float) -> SourceResult:
    return _failed(ref, period, Cause.TIMEOUT, "still running at the check's deadline (abandoned)", started)


def _fetch_one(
    provider: str,
    account: Any,
    ref: AccountRef,
    deps: Deps,
    now: dt.datetime,
    deadline: Deadline,
    periods: dict[AccountRef, BillingPeriod],
) -> Callable[[], SourceResult]:
    def run() -> SourceResult:
        started = time.monotonic()
        period = BillingPeriod.containing(now)
        try:
            source = build_source(provider, account, deps)
            period = periods[ref] = source.billing_period(now)
            report = source.fetch(period, deadline)
        except ProviderError as exc:
            return _failed(ref, period, exc.cause, exc.message, started)
        except SecretError as exc:
            return _failed(ref, period, Cause.SECRET, str(exc), started)
        except Exception as exc:
            log.exception("provider %s crashed", ref.scope)
            return _failed(ref, period, Cause.BAD_RESPONSE, f"internal error: {type(exc).__name__}", started)
        result = SourceResult(ref, period, report=report, elapsed_s=time.monotonic() - started)
        logs.event(
            log,
            logging.INFO,
            f"{ref.scope}: month-to-date fetched",
            scope=ref.scope,
            mtd_usd=str(report.mtd_usd),
            requests=report.requests,
            elapsed_s=round(result.elapsed_s, 3),
            partial=report.partial_reason is not None,
        )
        return result

    return run


def _failed(ref: AccountRef, period: BillingPeriod, cause: Cause, message: str, started: float) -> SourceResult:
    logs.event(log, logging.ERROR, f"{ref.scope}: {cause.describe}", scope=ref.scope, cause=cause.value, error=message)
    return SourceResult(ref, period, cause=cause, error=message, elapsed_s=time.monotonic() - started)


def health_events(
    results: Sequence[SourceResult], now: dt.datetime, after_runs: int
) -> Callable[[Doc], dict[str, Any]]:
    """State mutation for failure/recovery notices: one after `after_runs` failed runs, one on recovery."""
    month = f"{now:%Y-%m}"

    def mutate(doc: Doc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        health = doc["health"]
        for r in results:
            scope = r.account.scope
            title = f"{spec(r.account.provider).title} · {r.account.label}"
            h = health.get(scope)
            if r.report is None:
                h = h or {"failures": 0, "since": now.isoformat(), "notified": False}
                last = h.get("last_counted")
                if last is None or now - dt.datetime.fromisoformat(last) >= FAILURE_RECOUNT:
                    h["failures"] = int(h.get("failures", 0)) + 1
                    h["last_counted"] = now.isoformat()
                h["cause"] = r.cause.value if r.cause else "unknown"
                health[scope] = h
                if h["failures"] >= after_runs and not h.get("notified"):
                    h["notified"] = True
                    cause = r.cause.describe if r.cause else "failed"
                    out[f"failure:{h['since']}:{scope}"] = {
                        "month": month,
                        "kind": "failure",
                        "scope": scope,
                        "line": (
                            f"*{title}* has failed {h['failures']} runs in a row: *{cause}*. "
                            f"Its spend is missing from the totals until it recovers."
                        ),
                    }
            elif h is not None:
                if h.get("notified"):
                    out[f"recovery:{h['since']}:{scope}"] = {
                        "month": month,
                        "kind": "recovery",
                        "scope": scope,
                        "line": f"*{title}* is reporting again (it had failed {h.get('failures', 0)} runs: "
                        f"{_describe(h.get('cause'))}).",
                    }
                del health[scope]
        return out

    return mutate


def _describe(cause: Any) -> str:
    try:
        return Cause(cause).describe
    except ValueError:
        return str(cause)


def digest_event(settings: Settings, now: dt.datetime) -> dict[str, Any]:
    d = settings.budgets.digest
    if not d.enabled or now.hour != d.hour_utc:
        return {}
    return {
        f"digest:{now:%Y-%m-%d}": {
            "month": f"{now:%Y-%m}",
            "kind": "digest",
            "scope": "total",
            "line": f"Daily digest for {now:%b %d}",
        }
    }


def make_store(settings: Settings, deadline: Deadline | None = None) -> Store:
    if settings.state_backend == "gcs":
        assert settings.state_bucket
        time_left = deadline.remaining if deadline is not None else None
        return GCSStore(settings.state_bucket, settings.state_object, time_left=time_left)
    return FileStore(settings.state_file)


def run_check(
    settings: Settings,
    deps: Deps,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    store: Store | None = None,
    webhook_url: str | None = None,
) -> CheckOutcome:
    """Run one check at instant `now`. See the module docstring for the pipeline."""
    started = time.monotonic()
    now = require_aware(now)
    deadline = Deadline(max(1.0, settings.deadline_s - NOTIFY_RESERVE_S))
    results = fetch_all(settings, deps, now, deadline)
    scopes = rules.evaluate(settings.budgets, results, now)
    events = rules.budget_events(settings.budgets, scopes) + rules.spike_events(settings.budgets, scopes)
    outcome = CheckOutcome(now=now, results=results, scopes=scopes, events_now=events, dry_run=dry_run)
    wanted: dict[str, dict[str, Any]] = {
        e.key: {"month": e.month, "kind": e.kind, "scope": e.scope, "line": e.line} for e in events
    }
    wanted.update(digest_event(settings, now))
    by_key = {e.key: e for e in events}

    ledger = Ledger(store or make_store(settings, Deadline(settings.deadline_s - (time.monotonic() - started))))
    try:
        if dry_run:
            doc = ledger.snapshot()
            said = {k for entries in doc["events"].values() for k, e in entries.items() if e["status"] == "sent"}
            owned = {k: v for k, v in wanted.items() if k not in said}
        else:
            owned = ledger.claim(wanted, now, health_events(results, now, settings.budgets.failure_notice_after_runs))
    except StateError as exc:
        outcome.state_error = str(exc)
        logs.event(log, logging.ERROR, "alert state unusable; nothing posted", error=str(exc))
        outcome.elapsed_s = time.monotonic() - started
        return outcome

    if owned:
        to_say = [_labelled(by_key.get(k), k, v) for k, v in owned.items()]
        msg = slack.MessageInput(
            now=now, scopes=scopes, results=results, events=to_say, digest=any(e.kind == "digest" for e in to_say)
        )
        try:
            outcome.payload = slack.render(msg)
        except Exception:  # a claim is held: rendering must not strand it (the lines alone still say it)
            log.exception("could not render the Slack message; posting its alert lines as plain text")
            outcome.payload = {"text": "\n".join(e.line for e in to_say)[: slack.MAX_TEXT]}
        if dry_run:
            outcome.pending = sorted(owned)
        else:
            _deliver(outcome, ledger, owned, settings, deps, webhook_url, started)
    outcome.elapsed_s = time.monotonic() - started
    logs.event(
        log,
        logging.INFO,
        "check finished",
        outcome=outcome.health,  # the dead-man's switch (terraform/monitoring.tf) counts "ok" lines
        partial=outcome.partial,
        delivered=outcome.delivered,
        pending=outcome.pending,
        elapsed_s=round(outcome.elapsed_s, 3),
        dry_run=dry_run,
    )
    return outcome


MAYBE_REPEAT = " _(delayed; may be a repeat: an earlier attempt may have reached Slack)_"
DELAYED = " _(delayed)_"


def _labelled(holding: Event | None, key: str, owned: dict[str, Any]) -> Event:
    """The event to say, labelled when earlier runs failed to deliver it (whether or not it still holds)."""
    event = holding or Event(
        key=key,
        kind=owned["kind"],
        scope=owned["scope"],
        month=owned["month"],
        line=owned["line"],
        severity=_severity(owned["kind"]),
    )
    label = MAYBE_REPEAT if owned.get("uncertain") else DELAYED if owned.get("delayed") else ""
    return dataclasses.replace(event, line=event.line + label) if label else event


def _severity(kind: str) -> int:
    return {"threshold": 3, "forecast": 2, "spike": 2, "failure": 2, "recovery": 1, "digest": 1}.get(kind, 1)


def _deliver(
    outcome: CheckOutcome,
    ledger: Ledger,
    owned: dict[str, dict[str, Any]],
    settings: Settings,
    deps: Deps,
    webhook_url: str | None,
    started: float,
) -> None:
    assert outcome.payload is not None
    try:
        url = webhook_url or deps.secrets.get(
            secret=settings.slack_webhook_secret,
            env_name=None if settings.slack_webhook_secret else "SLACK_WEBHOOK_URL",
            what="Slack webhook URL",
            time_left=settings.deadline_s - (time.monotonic() - started) - 1.0,
        )
        left = settings.deadline_s - (time.monotonic() - started)
        rejected = slack.deliver(
            url, outcome.payload, timeout=max(1, min(slack.POST_TIMEOUT_S, int(left) - 1)), within=max(1.0, left - 1.0)
        )
    except (NotifyError, SecretError) as exc:
        notify = exc if isinstance(exc, NotifyError) else None
        cause = notify.cause.value if notify is not None else Cause.SECRET.value
        outcome.notify_error = str(exc)
        outcome.pending = sorted(owned)
        fields: dict[str, Any] = {"cause": cause, "error": str(exc), "pending": outcome.pending}
        message = "Slack post failed; alerts kept pending for the next run"
        if notify is not None and notify.permanent:
            outcome.notify_permanent, outcome.notify_fix = cause, notify.fix
            message = f"Slack refuses the alerts ({notify.cause.describe}); kept pending until fixed: {notify.fix}"
            fields["fix"] = notify.fix
        if notify is not None and notify.maybe_delivered:
            fields["maybe_delivered"] = True
            message += " (the post may have reached Slack: the re-delivery is labelled a possible repeat)"
        logs.event(log, logging.ERROR, message, **fields)
        try:
            ledger.release(owned, outcome.now, cause, maybe_posted=notify is not None and notify.maybe_delivered)
        except StateError as sexc:
            outcome.state_error = str(sexc)
            logs.event(log, logging.ERROR, "could not release claims; they expire and are retried", error=str(sexc))
        return
    outcome.posted = True
    outcome.delivered = sorted(owned)
    if rejected is not None:
        outcome.notify_error = f"{rejected}; posted as plain text instead"
        logs.event(
            log,
            logging.ERROR,
            "Slack rejected the formatted message; its alerts were posted as plain text",
            cause=rejected.cause.value,
            error=str(rejected),
            fix=rejected.fix,
        )
    try:
        ledger.confirm(owned, outcome.now)
    except StateError as exc:
        outcome.state_error = str(exc)
        logs.event(log, logging.ERROR, "posted but could not record it", error=str(exc))


# --- the JSON document the HTTP function and `--json` answer --------------------------------


def _usd(v: Decimal | None) -> str | None:
    return None if v is None else usd_plain(v)  # the rounding Slack shows (models.cents)


def to_json(outcome: CheckOutcome) -> dict[str, Any]:
    """Per-account status, month-to-date USD (decimal strings), freshness, totals, partial, alerts."""
    scopes = {s.name: s for s in outcome.scopes}
    providers: dict[str, Any] = {}
    for r in outcome.results:
        p = providers.setdefault(r.account.provider, {"accounts": []})
        acc: dict[str, Any] = {
            "label": r.account.label,
            "status": r.status.value,
            "billing_month": r.period.key,
            "month_timezone": r.period.tz_name,
            "mtd_usd": None,
        }
        if r.report is not None:
            rep = r.report
            acc.update(
                mtd_usd=str(rep.mtd_usd),
                mtd_usd_rounded=_usd(rep.mtd_usd),
                freshness={
                    "as_of": rep.freshness.as_of.isoformat() if rep.freshness.as_of else None,
                    "note": rep.freshness.note,
                    "complete_through": c.isoformat() if (c := rep.freshness.complete_through) else None,
                },
                partial=rep.partial_reason,
                requests=rep.requests,
                notes=list(rep.notes),
            )
            if rep.headroom is not None:
                acc["headroom"] = {
                    k: _usd(v) if isinstance(v, Decimal) else v for k, v in dataclasses.asdict(rep.headroom).items()
                }
        else:
            acc.update(cause=r.cause.value if r.cause else None, error=r.error)
        p["accounts"].append(acc)
    for name, p in providers.items():
        s = scopes.get(name)
        if s is not None:
            p.update(_scope_json(s))
    total = scopes["total"]
    return {
        "checked_at": outcome.now.isoformat(),
        "partial": outcome.partial,
        "total": _scope_json(total),
        "providers": providers,
        "alerts": {
            "holding": sorted(e.key for e in outcome.events_now),
            "delivered": outcome.delivered,
            "pending": outcome.pending,
        },
        "slack": {
            "posted": outcome.posted,
            "error": outcome.notify_error,
            "dry_run": outcome.dry_run,
            "permanent": outcome.notify_permanent,
            "fix": outcome.notify_fix,
        },
        "state_error": outcome.state_error,
        "elapsed_s": round(outcome.elapsed_s, 3),
    }


def _scope_json(s: Scope) -> dict[str, Any]:
    return {
        "mtd_usd": None if s.mtd_usd is None else str(s.mtd_usd),
        "mtd_usd_rounded": _usd(s.mtd_usd),
        "budget_usd": _usd(s.budget_usd),
        "pct": None if s.pct is None else str(s.pct),
        "billing_month": s.month,
        "partial": s.partial,
        "failed": list(s.failed_parts),
        "note": s.note,
        "forecast_usd": _usd(s.forecast.projected_usd) if s.forecast else None,
        "forecast_crossing_day": s.forecast.crossing_day.isoformat()
        if s.forecast and s.forecast.crossing_day
        else None,
    }


def default_deps(settings: Settings, secrets: SecretResolver) -> Deps:
    return Deps(
        secrets=secrets,
        base_urls=settings.base_urls,
        bigquery_job_project=settings.bigquery_job_project,
        bigquery_emulator_host=settings.bigquery_emulator_host,
        deep_scan_hour_utc=settings.budgets.digest.hour_utc,  # the digest's hour, even with the digest off
    )
