"""One check: billing windows → fetch every account concurrently → evaluate → say what is new → post.

    settings ─► sources (threads, one deadline) ─► rules.evaluate ─► events
                                                        │ routing: (event, destination) pairs
    state.Ledger.claim_deliveries (CAS) ◄───────────────┘
           │ owned deliveries, grouped by destination
           ▼
    slack.render (one message per destination) ─► slack.deliver (all destinations at once, threads)
           ─► Ledger.settle (one write: sent, and released as pending to retry next run)

A failing account becomes a failed `SourceResult` (never $0) and never stops the others. A failing
destination keeps only its own deliveries pending. A config or state error stops the check before
anything is posted.
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
from alerts import health, limits, rules, slack, weekly
from alerts.events import Event, Kind
from alerts.routing import Delivery, Routes
from alerts.rules import Scope
from alerts.state import FileStore, GCSStore, Ledger, Store
from config import SecretResolver, Settings
from config._teams import IMPLICIT_DESTINATION
from errors import Cause, NotifyError, ProviderError, SecretError, StateError
from models import AccountRef, BillingPeriod, Deadline, SourceResult, require_aware
from preload import import_client_libraries, import_while_waiting
from providers import Deps, build_source, spec
from source_cache import ReadOnlyMemo, StoreMemo

__all__ = [
    "FETCH_GRACE_S",
    "NOTIFY_RESERVE_S",
    "CheckOutcome",
    "DestinationResult",
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
class DestinationResult:
    """What one Slack destination got from this check."""

    posted: bool = False
    delivered: list[str] = dataclasses.field(default_factory=list)  # delivery keys posted to it
    pending: list[str] = dataclasses.field(default_factory=list)  # ... left for a later run
    error: str | None = None
    permanent: str | None = None  # the Cause of a refusal that retrying will not fix
    fix: str | None = None


@dataclasses.dataclass
class CheckOutcome:
    now: dt.datetime
    results: list[SourceResult]
    scopes: list[Scope]
    events_now: list[Event]  # everything the rules say holds now (new or not)
    delivered: list[str] = dataclasses.field(default_factory=list)  # delivery keys posted by this run
    pending: list[str] = dataclasses.field(default_factory=list)  # delivery keys left for a later run
    payload: dict[str, Any] | None = None  # the default destination's message (else the first one's)
    posted: bool = False  # at least one destination took its message
    notify_error: str | None = None  # every failing destination's error (prefixed by its name when several)
    notify_permanent: str | None = None  # the Cause of a Slack refusal that retrying will not fix
    notify_fix: str | None = None  # what to do about it
    deliveries: dict[str, DestinationResult] = dataclasses.field(default_factory=dict)  # per destination
    payloads: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # per destination
    dropped: list[str] = dataclasses.field(default_factory=list)  # pending to a destination no longer configured
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


def fetch_all(
    settings: Settings, deps: Deps, now: dt.datetime, deadline: Deadline, *, posting: bool = True
) -> list[SourceResult]:
    """Every configured account, fetched concurrently; failures are classified results."""
    return fetch_with_history(settings, deps, now, deadline, history=False, posting=posting)[0]


def fetch_with_history(
    settings: Settings, deps: Deps, now: dt.datetime, deadline: Deadline, *, history: bool, posting: bool = True
) -> tuple[list[SourceResult], list[SourceResult]]:
    """`fetch_all`, and with `history` (the weekly report's hour) each account's previous billing period
    too, where the two weeks the report compares reach into it: in the same pool and deadline. Those
    results are kept apart (`CheckOutcome.history`): they never count toward month-to-date.

    Each source keeps the joint cost cells the budget document needs (its teams' matches, the weekly
    report's movers) and knows the owner ids its teams name (whose provider limits it reads), whoever
    calls: a check, a benchmark, a replay. With `posting` (not a dry run) the Slack client is imported
    while the fetches wait on the network."""
    budgets = settings.budgets
    deps = dataclasses.replace(deps, cell_dims=budgets.cell_dims(), owner_ids=budgets.owner_ids())
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
        if posting:
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
    """Run one check at instant `now`: fetch → evaluate → claim → render → post → settle (module docstring).

    `webhook_url` replaces the default destination's webhook (tests); the others keep their own."""
    started = time.monotonic()
    now = require_aware(now)
    if dry_run and deps.memo is not None:
        deps = dataclasses.replace(deps, memo=ReadOnlyMemo(deps.memo))
    due = weekly.is_due(settings.budgets, now)
    fetch_deadline = Deadline(max(1.0, settings.deadline_s - NOTIFY_RESERVE_S))
    if due:  # the previous billing periods too, in the same pool and deadline
        results, history = fetch_with_history(settings, deps, now, fetch_deadline, history=True, posting=not dry_run)
    else:
        results, history = fetch_all(settings, deps, now, fetch_deadline, posting=not dry_run), []
    outcome = _evaluate(settings, results, now, dry_run)
    if due:
        outcome.history = history
        outcome.weekly = weekly.build(settings.budgets, results, history, now)
    ledger = Ledger(store or make_store(settings, Deadline(settings.deadline_s - (time.monotonic() - started))))
    routes = Routes.of(settings.budgets)
    try:
        owned = _owned(ledger, outcome, settings, routes)
    except StateError as exc:
        outcome.state_error = str(exc)
        logs.event(log, logging.ERROR, "alert state unusable; nothing posted", error=str(exc))
        outcome.elapsed_s = time.monotonic() - started
        return outcome
    if owned:
        by_dest = _by_destination(owned, routes)
        outcome.deliveries = {dest: DestinationResult() for dest in by_dest}
        outcome.payloads = {dest: _render(outcome, mine, routes, dest) for dest, mine in by_dest.items()}
        outcome.payload = outcome.payloads.get(routes.default) or next(iter(outcome.payloads.values()))
        if dry_run:
            outcome.pending = sorted(owned)
            for dest, mine in by_dest.items():
                outcome.deliveries[dest].pending = sorted(mine)
        else:
            _deliver(outcome, ledger, by_dest, settings, deps, webhook_url, started, routes)
    return _finish(outcome, started)


def _evaluate(settings: Settings, results: list[SourceResult], now: dt.datetime, dry_run: bool) -> CheckOutcome:
    """The scopes and the events that hold now (the digest too, in its hour)."""
    scopes = rules.evaluate(settings.budgets, results, now)
    events = rules.budget_events(settings.budgets, scopes) + rules.spike_events(settings.budgets, scopes)
    events += limits.limit_events(results)
    digest = rules.digest_event(settings.budgets, now)
    return CheckOutcome(now, results, scopes, events, dry_run=dry_run, digest=digest)


def _owned(ledger: Ledger, outcome: CheckOutcome, settings: Settings, routes: Routes) -> dict[str, Delivery]:
    """The (event, destination) pairs this run says: claimed in state (with the health
    bookkeeping), or in a dry run the ones not sent yet, claiming nothing."""
    wanted = [*outcome.events_now, *([outcome.digest] if outcome.digest else [])]
    if outcome.weekly is not None:
        wanted.append(weekly.weekly_event(outcome.weekly))
    if outcome.dry_run:
        return ledger.unsent_deliveries(wanted, routes.of_event, default=routes.default)
    change = health.bookkeeping(outcome.results, outcome.now, settings.budgets.failure_notice_after_runs)
    owned = ledger.claim_deliveries(
        wanted, outcome.now, routes.of_event, default=routes.default, destinations=routes.names, health=change
    )
    if ledger.dropped:
        outcome.dropped = ledger.dropped
        logs.event(
            log,
            logging.WARNING,
            "pending alerts dropped: their Slack destination is no longer in the budget document",
            dropped=ledger.dropped,
        )
    return owned


def _by_destination(owned: dict[str, Delivery], routes: Routes) -> dict[str, dict[str, Delivery]]:
    """The owned deliveries grouped by destination, in document order."""
    out: dict[str, dict[str, Delivery]] = {d: {} for d in routes.names}
    for key, d in sorted(owned.items()):
        out.setdefault(d.dest, {})[key] = d
    return {dest: mine for dest, mine in out.items() if mine}


def _render(outcome: CheckOutcome, owned: dict[str, Delivery], routes: Routes, dest: str) -> dict[str, Any]:
    """`dest`'s Slack message: its owned events and the scopes it shows. An event the rules derived
    again this run is said as they say it now, labelled with its delivery history; the others as stored."""
    current = {e.key: e for e in outcome.events_now}
    shown = routes.shown(dest, [s.name for s in outcome.scopes])
    to_say = [
        dataclasses.replace(_as_now(e, current, outcome, shown), delayed=e.delayed, uncertain=e.uncertain)
        for e in (d.event for d in owned.values())
    ]
    msg = slack.MessageInput(
        now=outcome.now,
        scopes=outcome.scopes,
        results=outcome.results,
        events=to_say,
        digest=any(e.kind == Kind.DIGEST for e in to_say),
        shown=shown,
    )
    try:
        return _with_weekly(slack.render(msg), outcome, to_say, shown)
    except Exception:  # a claim is held: rendering must not strand it (the lines alone still say it)
        log.exception("could not render the Slack message; posting its alert lines as plain text")
        return {"text": "\n".join(e.text for e in to_say)[: slack.MAX_TEXT]}


def _as_now(event: Event, current: dict[str, Event], outcome: CheckOutcome, shown: frozenset[str]) -> Event:
    """How this run says `event` to a destination that shows `shown`: as the rules derive it now if
    they still do, and the weekly report's line about the destination's own first scope (a team's
    channel is told its team's week, not the company's)."""
    report = outcome.weekly
    if event.kind == Kind.WEEKLY and report is not None and event.key == report.key:
        names = [s.name for s in report.scopes if s.name in shown]
        return weekly.weekly_event(report, "total" if "total" in names or not names else names[0])
    return current.get(event.key, event)


def _with_weekly(
    payload: dict[str, Any], outcome: CheckOutcome, said: list[Event], shown: frozenset[str]
) -> dict[str, Any]:
    """The message with the weekly report's blocks (the scopes this destination shows) before its
    footer, when this destination is told the report in this run."""
    report = outcome.weekly
    if report is None or all(e.key != report.key for e in said):
        return payload
    blocks = payload["blocks"]
    # A destination named only by `weekly_report.destinations` is routed no scope: it asked for the report, all of it.
    scopes = shown if any(s.name in shown for s in report.scopes) else None
    extra = weekly.render_blocks(report, scopes_to_show=scopes, room=slack.MAX_BLOCKS - len(blocks))
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
    by_dest: dict[str, dict[str, Delivery]],
    settings: Settings,
    deps: Deps,
    webhook_url: str | None,
    started: float,
    routes: Routes,
) -> None:
    """Post every destination's message at once, then settle all of them in one state write: a
    destination's deliveries are sent when it took its message, released pending when it did not."""

    def left() -> float:
        return settings.deadline_s - (time.monotonic() - started)

    answers = _post_all(outcome.payloads, settings, deps, webhook_url, routes.default, left)
    several = len(routes.names) > 1
    sent: dict[str, dict[str, Any]] = {}
    released: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for dest, mine in by_dest.items():
        res, answer = outcome.deliveries[dest], answers[dest]
        named = f"{dest}: " if several else ""
        if isinstance(answer, NotifyError | SecretError):  # nothing was posted to it
            released.update(_release(res, dest, mine, answer, several))
            errors.append(named + str(res.error))
            if res.permanent and outcome.notify_permanent is None:
                outcome.notify_permanent, outcome.notify_fix = res.permanent, res.fix
            continue
        res.posted, res.delivered = True, sorted(mine)
        sent.update({k: {"month": d.event.month} for k, d in mine.items()})
        if (rejected := answer.rejected) is not None:  # the plain-text fallback was posted
            res.error = f"{rejected}; posted as plain text instead"
            errors.append(named + res.error)
            logs.event(
                log,
                logging.ERROR,
                "Slack rejected the formatted message; its alerts were posted as plain text",
                destination=dest,
                cause=rejected.cause.value,
                error=str(rejected),
                fix=rejected.fix,
            )
    outcome.posted = any(r.posted for r in outcome.deliveries.values())
    outcome.delivered, outcome.pending = sorted(sent), sorted(released)
    outcome.notify_error = "; ".join(errors) or None
    try:
        ledger.settle(sent, released, outcome.now)
    except StateError as exc:
        outcome.state_error = str(exc)
        what = "posted but could not record it" if sent else "could not release claims; they expire and are retried"
        logs.event(log, logging.ERROR, what, error=str(exc))


@dataclasses.dataclass(frozen=True)
class _Posted:
    """A destination took its message: as is, or as plain text after Slack `rejected` the formatted one."""

    rejected: NotifyError | None = None


Answer = _Posted | NotifyError | SecretError  # an error: nothing was posted to that destination


def _post_all(
    payloads: dict[str, dict[str, Any]],
    settings: Settings,
    deps: Deps,
    webhook_url: str | None,
    default: str,
    left: Callable[[], float],
) -> dict[str, Answer]:
    """Each destination's message posted in its own thread, all within the check's time left: one
    hanging webhook costs the others nothing. A post still running at the end is a timeout that may
    have reached Slack (it is released `uncertain`, and its re-delivery says so)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(payloads), thread_name_prefix="slack")
    try:
        futures = {
            dest: pool.submit(
                contextvars.copy_context().run,
                _post_one,
                dest,
                payload,
                settings,
                deps,
                webhook_url if dest == default else None,
                left,
            )
            for dest, payload in payloads.items()
        }
        concurrent.futures.wait(futures.values(), timeout=max(1.0, left()))
        out: dict[str, Answer] = {}
        for dest, f in futures.items():
            if not f.done():
                out[dest] = NotifyError(
                    Cause.TIMEOUT, "Slack webhook: no answer within the check's deadline", maybe_delivered=True
                )
                continue
            out[dest] = f.result()
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _post_one(
    dest: str,
    payload: dict[str, Any],
    settings: Settings,
    deps: Deps,
    webhook_url: str | None,
    left: Callable[[], float],
) -> Answer:
    """Resolve `dest`'s webhook and post its message; the error (never raised) when nothing was posted."""
    try:
        url = webhook_url or _webhook(settings, deps, dest, left() - 1.0)
        remaining = left()
        timeout = max(1, min(slack.POST_TIMEOUT_S, int(remaining) - 1))
        return _Posted(slack.deliver(url, payload, timeout=timeout, within=max(1.0, remaining - 1.0)))
    except (NotifyError, SecretError) as exc:
        return exc
    except Exception as exc:  # a claim is held: a crash in one post must release it, not strand it
        log.exception("posting to Slack destination %s crashed", dest)
        return NotifyError(Cause.CLIENT_ERROR, f"internal error while posting: {type(exc).__name__}")


def _webhook(settings: Settings, deps: Deps, dest: str, time_left: float) -> str:
    """`dest`'s incoming-webhook URL, from its secret or its variable; an error names which, never the URL."""
    secret, env_name = settings.webhook_of(dest)
    what = "Slack webhook URL" if dest == IMPLICIT_DESTINATION and not settings.budgets.destinations else (
        f'Slack webhook URL of destination "{dest}"'
    )  # fmt: skip
    url = deps.secrets.get(secret=secret, env_name=env_name, what=what, time_left=time_left)
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        where = env_name or "its secret"
        raise SecretError(f"{what}: {where} does not hold an https:// incoming-webhook URL", reason="unreadable")
    return url


def _release(
    res: DestinationResult, dest: str, mine: dict[str, Delivery], exc: NotifyError | SecretError, several: bool
) -> dict[str, dict[str, Any]]:
    """`dest`'s post failed: say why (and the fix, for a permanent refusal); its deliveries go back
    pending (returned for `Ledger.settle`)."""
    notify = exc if isinstance(exc, NotifyError) else None
    cause = notify.cause.value if notify is not None else Cause.SECRET.value
    res.error = str(exc)
    res.pending = sorted(mine)
    fields: dict[str, Any] = {"destination": dest, "cause": cause, "error": str(exc), "pending": res.pending}
    where = f'Slack destination "{dest}"' if several else "Slack"
    message = f"{where} post failed; alerts kept pending for the next run"
    if notify is not None and notify.permanent:
        res.permanent, res.fix = cause, notify.fix
        message = f"{where} refuses the alerts ({notify.cause.describe}); kept pending until fixed: {notify.fix}"
        fields["fix"] = notify.fix
    maybe_posted = notify is not None and notify.maybe_delivered
    if maybe_posted:
        fields["maybe_delivered"] = True
        message += " (the post may have reached Slack: the re-delivery is labelled a possible repeat)"
    logs.event(log, logging.ERROR, message, **fields)
    return {k: {"month": d.event.month, "cause": cause, "maybe_posted": maybe_posted} for k, d in mine.items()}


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
