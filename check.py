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
from collections.abc import Callable
from typing import Any

import logs
from alerts import health, rules, slack, weekly
from alerts.events import Event, Kind
from alerts.rules import Scope
from alerts.state import FileStore, GCSStore, Ledger, Store
from config import SecretResolver, Settings
from errors import Cause, NotifyError, ProviderError, SecretError, StateError
from models import AccountRef, BillingPeriod, Deadline, SourceResult, require_aware
from preload import import_client_libraries, import_while_waiting
from providers import Deps, build_source, spec
from source_cache import ReadOnlyMemo, StoreMemo

__all__ = [
    "FETCH_GRACE_S",
    "NOTIFY_RESERVE_S",
    "CheckOutcome",
    "default_deps",
    "fetch_all",
    "fetch_with_history",
    "make_cache_store",
    "make_store",
    "run_check",
]

log = logs.get("check")
NOTIFY_RESERVE_S = 15.0  # of the deadline, kept for state writes and the Slack post
FETCH_GRACE_S = 1.0  # past the sources' deadline, for a fetch to report its own classified timeout


@dataclasses.dataclass
class CheckOutcome:
    now: dt.datetime
    results: list[SourceResult]
    scopes: list[Scope]
    events_now: list[Event]  # everything the rules say holds now (new or not)
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
    digest: Event | None = None  # the daily digest, in its hour
    history: list[SourceResult] = dataclasses.field(default_factory=list)  # previous periods (weekly hour only)
    weekly: weekly.WeekReport | None = None  # the weekly report, in its hour

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
    return fetch_with_history(settings, deps, now, deadline, history=False)[0]


def fetch_with_history(
    settings: Settings, deps: Deps, now: dt.datetime, deadline: Deadline, *, history: bool
) -> tuple[list[SourceResult], list[SourceResult]]:
    """`fetch_all`, and with `history` (the weekly report's hour) each account's previous billing period
    too, where the two weeks the report compares reach into it: in the same pool and deadline. Those
    results are kept apart (`CheckOutcome.history`): they never count toward month-to-date."""
    periods: dict[AccountRef, BillingPeriod] = {}  # each fetch's own period, for one that never returns
    previous: dict[AccountRef, BillingPeriod] = {}
    jobs = _jobs(settings, deps, now, deadline, periods, previous if history else None)
    if not jobs:
        return [], []
    import_client_libraries(settings)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(jobs)), thread_name_prefix="fetch")
    started = time.monotonic()
    try:
        # Each fetch runs in a copy of this context, so its log lines carry the request's execution id
        # (logs.bind_execution); one copy per task, as a Context is entered by one thread at a time.
        futures = [pool.submit(contextvars.copy_context().run, fn) for _, fn, _ in jobs]
        import_while_waiting()
        # A thread stuck in a client call that ignores its timeout (a Google library retrying, a
        # socket read that never ends) must not hold the check: wait until the deadline (plus a
        # grace for a fetch to report its own timeout), then report what is still running as failed.
        concurrent.futures.wait(futures, timeout=deadline.remaining() + FETCH_GRACE_S)
        current: list[SourceResult] = []
        past_results: list[SourceResult] = []
        for (ref, _, where), f in zip(jobs, futures, strict=True):
            if not f.done() and where is previous and ref not in previous:
                continue  # still deciding whether it needs a previous period at all
            result = f.result() if f.done() else _stuck(ref, where.get(ref) or BillingPeriod.containing(now), started)
            if result is not None:
                (current if where is periods else past_results).append(result)
        return current, past_results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a stuck thread ends on its own timeouts, unawaited


_Job = tuple[AccountRef, Callable[[], SourceResult | None], dict[AccountRef, BillingPeriod]]


def _jobs(
    settings: Settings,
    deps: Deps,
    now: dt.datetime,
    deadline: Deadline,
    periods: dict[AccountRef, BillingPeriod],
    previous: dict[AccountRef, BillingPeriod] | None,
) -> list[_Job]:
    """One fetch per account (its period recorded in `periods`), and with `previous` one of its
    previous period each, with `_past_deps`: after all of the month's, so with more accounts than
    threads the month's fetches are the ones that start first."""
    past = _past_deps(deps, now) if previous is not None else deps
    jobs: list[_Job] = []
    extra: list[_Job] = []
    for provider in settings.budgets.configured():
        for account in settings.budgets.accounts(provider):
            ref = AccountRef(provider, account.label)
            jobs.append((ref, _fetch_one(provider, account, ref, deps, now, deadline, periods), periods))
            if previous is not None:
                job = _fetch_one(provider, account, ref, past, now, deadline, previous, previous_period=True)
                extra.append((ref, job, previous))
    return jobs + extra


def _past_deps(deps: Deps, now: dt.datetime) -> Deps:
    """The dependencies of a previous-period fetch: the sources' cache is read, never written (the
    month's own entry stays); no second, deep query (it guards a month's figure against old
    corrections, not last weeks' days); and rows exported since the period ended, still billed on it,
    count (`Deps.past_as_of`)."""
    return dataclasses.replace(
        deps,
        memo=ReadOnlyMemo(deps.memo) if deps.memo is not None else None,
        deep_scan_hour_utc=None,
        past_as_of=require_aware(now),
    )


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
    *,
    previous_period: bool = False,
) -> Callable[[], SourceResult | None]:
    """The fetch of one account's billing period, or with `previous_period` of the one before it
    (None when the weekly report's two weeks do not reach into it)."""

    def run() -> SourceResult | None:
        started = time.monotonic()
        period = BillingPeriod.containing(now)
        try:
            source = build_source(provider, account, deps)
            period = source.billing_period(now)
            if previous_period:
                if not weekly.needs_history(period.first_day, now):
                    return None
                period = BillingPeriod.containing(period.start - dt.timedelta(seconds=1), period.tz)
                if not spec(provider).past_months:  # its days there are unknown, never $0
                    periods[ref] = period
                    why = f"{spec(provider).title} cannot report a past billing month"
                    return SourceResult(ref, period, cause=Cause.CLIENT_ERROR, error=why)
            periods[ref] = period
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
            f"{ref.scope}: {'previous billing period' if previous_period else 'month-to-date'} fetched",
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


def make_store(settings: Settings, deadline: Deadline | None = None) -> Store:
    if settings.state_backend == "gcs":
        assert settings.state_bucket
        time_left = deadline.remaining if deadline is not None else None
        return GCSStore(settings.state_bucket, settings.state_object, time_left=time_left)
    return FileStore(settings.state_file)


def make_cache_store(settings: Settings) -> Store:
    """The sources' cache (`source_cache`): one object next to the alert state, in the same backend.

    Its GCS calls get the store's shortest bounds (`STATE_FLOOR_S`): a cache read sits inside a
    source's fetch, and a state backend that fails must cost that source one fetch, not its deadline."""
    if settings.state_backend == "gcs":
        assert settings.state_bucket
        name = settings.state_object.removesuffix(".json") + ".sources.json"
        return GCSStore(settings.state_bucket, name, time_left=lambda: 0.0)
    return FileStore(settings.state_file.with_name(settings.state_file.stem + ".sources.json"))


def run_check(
    settings: Settings,
    deps: Deps,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    store: Store | None = None,
    webhook_url: str | None = None,
) -> CheckOutcome:
    """Run one check at instant `now`: fetch → evaluate → claim → render → post → settle (module docstring)."""
    started = time.monotonic()
    now = require_aware(now)
    if dry_run and deps.memo is not None:
        deps = dataclasses.replace(deps, memo=ReadOnlyMemo(deps.memo))
    if not deps.cell_dims:  # what team matches and the weekly movers read (BudgetConfig.cell_dims)
        deps = dataclasses.replace(deps, cell_dims=settings.budgets.cell_dims())
    due = weekly.is_due(settings.budgets, now)
    fetch_deadline = Deadline(max(1.0, settings.deadline_s - NOTIFY_RESERVE_S))
    if due:  # the previous billing periods too, in the same pool and deadline
        results, history = fetch_with_history(settings, deps, now, fetch_deadline, history=True)
    else:
        results, history = fetch_all(settings, deps, now, fetch_deadline), []
    outcome = _evaluate(settings, results, now, dry_run)
    if due:
        outcome.history = history
        outcome.weekly = weekly.build(settings.budgets, results, history, now)
    ledger = Ledger(store or make_store(settings, Deadline(settings.deadline_s - (time.monotonic() - started))))
    try:
        owned = _owned(ledger, outcome, settings)
    except StateError as exc:
        outcome.state_error = str(exc)
        logs.event(log, logging.ERROR, "alert state unusable; nothing posted", error=str(exc))
        outcome.elapsed_s = time.monotonic() - started
        return outcome
    if owned:
        outcome.payload = _render(outcome, owned)
        if dry_run:
            outcome.pending = sorted(owned)
        else:
            _deliver(outcome, ledger, owned, settings, deps, webhook_url, started)
    return _finish(outcome, started)


def _evaluate(settings: Settings, results: list[SourceResult], now: dt.datetime, dry_run: bool) -> CheckOutcome:
    """The scopes and the events that hold now (the digest too, in its hour)."""
    scopes = rules.evaluate(settings.budgets, results, now)
    events = rules.budget_events(settings.budgets, scopes) + rules.spike_events(settings.budgets, scopes)
    digest = rules.digest_event(settings.budgets, now)
    return CheckOutcome(now, results, scopes, events, dry_run=dry_run, digest=digest)


def _owned(ledger: Ledger, outcome: CheckOutcome, settings: Settings) -> dict[str, Event]:
    """The events this run says: claimed in state (with the health bookkeeping), or in a dry run
    the ones not sent yet, claiming nothing."""
    wanted = [*outcome.events_now, *([outcome.digest] if outcome.digest else [])]
    if outcome.weekly is not None:
        wanted.append(weekly.weekly_event(outcome.weekly))
    if outcome.dry_run:
        return ledger.unsent(wanted)
    change = health.bookkeeping(outcome.results, outcome.now, settings.budgets.failure_notice_after_runs)
    return ledger.claim_events(wanted, outcome.now, change)


def _render(outcome: CheckOutcome, owned: dict[str, Event]) -> dict[str, Any]:
    """The Slack message for the owned events. An event the rules derived again this run is said as
    they say it now, labelled with its delivery history; the others as stored."""
    current = {e.key: e for e in outcome.events_now}
    to_say = [
        dataclasses.replace(current[k], delayed=e.delayed, uncertain=e.uncertain) if k in current else e
        for k, e in owned.items()
    ]
    msg = slack.MessageInput(
        now=outcome.now,
        scopes=outcome.scopes,
        results=outcome.results,
        events=to_say,
        digest=any(e.kind == Kind.DIGEST for e in to_say),
    )
    try:
        return _with_weekly(slack.render(msg), outcome, owned)
    except Exception:  # a claim is held: rendering must not strand it (the lines alone still say it)
        log.exception("could not render the Slack message; posting its alert lines as plain text")
        return {"text": "\n".join(e.text for e in to_say)[: slack.MAX_TEXT]}


def _with_weekly(payload: dict[str, Any], outcome: CheckOutcome, owned: dict[str, Event]) -> dict[str, Any]:
    """The message with the weekly report's blocks before its footer, when this run says the report."""
    report = outcome.weekly
    if report is None or report.key not in owned:
        return payload
    blocks = payload["blocks"]
    extra = [b.to_dict() for b in weekly.render_blocks(report, room=slack.MAX_BLOCKS - len(blocks))]
    return {**payload, "blocks": [*blocks[:-1], *extra, blocks[-1]]}


def _finish(outcome: CheckOutcome, started: float) -> CheckOutcome:
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
        dry_run=outcome.dry_run,
    )
    return outcome


def _deliver(
    outcome: CheckOutcome,
    ledger: Ledger,
    owned: dict[str, Event],
    settings: Settings,
    deps: Deps,
    webhook_url: str | None,
    started: float,
) -> None:
    """Post the rendered message, then confirm the owned events, or release them pending."""
    assert outcome.payload is not None
    try:
        url = webhook_url or _webhook(settings, deps, settings.deadline_s - (time.monotonic() - started) - 1.0)
        left = settings.deadline_s - (time.monotonic() - started)
        rejected = slack.deliver(
            url, outcome.payload, timeout=max(1, min(slack.POST_TIMEOUT_S, int(left) - 1)), within=max(1.0, left - 1.0)
        )
    except (NotifyError, SecretError) as exc:
        _release(outcome, ledger, owned, exc)
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
        ledger.confirm_events(owned, outcome.now)
    except StateError as exc:
        outcome.state_error = str(exc)
        logs.event(log, logging.ERROR, "posted but could not record it", error=str(exc))


def _webhook(settings: Settings, deps: Deps, time_left: float) -> str:
    return deps.secrets.get(
        secret=settings.slack_webhook_secret,
        env_name=None if settings.slack_webhook_secret else "SLACK_WEBHOOK_URL",
        what="Slack webhook URL",
        time_left=time_left,
    )


def _release(outcome: CheckOutcome, ledger: Ledger, owned: dict[str, Event], exc: NotifyError | SecretError) -> None:
    """The post failed: say why (and the fix, for a permanent refusal), and keep the events pending."""
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
    maybe_posted = notify is not None and notify.maybe_delivered
    if maybe_posted:
        fields["maybe_delivered"] = True
        message += " (the post may have reached Slack: the re-delivery is labelled a possible repeat)"
    logs.event(log, logging.ERROR, message, **fields)
    try:
        ledger.release_events(owned, outcome.now, cause, maybe_posted=maybe_posted)
    except StateError as sexc:
        outcome.state_error = str(sexc)
        logs.event(log, logging.ERROR, "could not release claims; they expire and are retried", error=str(sexc))


def default_deps(settings: Settings, secrets: SecretResolver) -> Deps:
    """The production dependencies: the real HTTP client factory and Google clients."""
    return Deps(
        secrets=secrets,
        base_urls=settings.base_urls,
        bigquery_job_project=settings.bigquery_job_project,
        bigquery_emulator_host=settings.bigquery_emulator_host,
        deep_scan_hour_utc=settings.budgets.digest.hour_utc,  # the digest's hour, even with the digest off
        memo=StoreMemo(lambda: make_cache_store(settings)),
    )
