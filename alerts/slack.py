"""Slack: render a check into Block Kit (a pure function), and post it to an incoming webhook.

`render()` builds Block Kit blocks (`alerts.blocks`) and always sets the `text` fallback. It keeps
within Slack's limits: at most 50 blocks, section text at most 3000 characters, header at most 150;
long lists end in "and N more". `post()` sends with a (bounded) rate-limit retry and a retry of
errors that prove the request never left (refused, DNS) — never a blind re-POST of a request that
may have reached Slack — and raises `NotifyError` for anything but HTTP 200, classified: permanent
(webhook revoked, channel archived, posting denied, message rejected; with the fix) or not, and
whether it may have been delivered. `deliver()` falls back to plain text when Slack rejects the
message's content. The webhook URL never appears in an error or a log line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import logs
from alerts import blocks as kit
from alerts.events import Event
from alerts.rules import Scope
from errors import Cause, NotifyError
from models import SourceResult
from models import usd as money
from providers import spec

__all__ = [
    "BAR_WIDTH",
    "CLIENT_IMPORTS",
    "MAX_BLOCKS",
    "MAX_HEADER",
    "MAX_RETRY_AFTER_S",
    "MAX_SECTION",
    "MAX_TEXT",
    "POST_TIMEOUT_S",
    "REJECTED_FIX",
    "SEVERITY_ICON",
    "SPARK",
    "TOP_LINES",
    "MessageInput",
    "age",
    "deliver",
    "headline",
    "plain_text",
    "post",
    "progress_bar",
    "render",
    "sparkline",
]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TEXT = 3000
TOP_LINES = 3
SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 10
POST_TIMEOUT_S = 8  # with one connection retry and one short 429 retry: < 30 s worst case
MAX_RETRY_AFTER_S = 5

CLIENT_IMPORTS = ("slack_sdk.http_retry", "slack_sdk.webhook")
"""What posting imports (lazily: a check with nothing to post, a dry run, needs none of it). Importing
the package runs `slack_sdk/__init__.py`, which loads the Web API client and asyncio (~40 ms), so
`preload.import_while_waiting` imports these while the fetches wait on the network."""

SEVERITY_ICON = {3: ":red_circle:", 2: ":large_orange_circle:", 1: ":large_blue_circle:"}


@dataclasses.dataclass(frozen=True)
class MessageInput:
    """Everything `render` needs, all plain values."""

    now: dt.datetime
    scopes: Sequence[Scope]
    results: Sequence[SourceResult]
    events: Sequence[Event]
    digest: bool = False
    shown: frozenset[str] | None = None  # the scope names this destination shows (None: all; `alerts.routing`)

    def shows(self, scope: str) -> bool:
        return self.shown is None or scope in self.shown


# --- small text helpers ----------------------------------------------------------------------


def progress_bar(pct: Decimal | None) -> str:
    if pct is None:
        return "`" + "·" * BAR_WIDTH + "`"
    filled = max(0, min(BAR_WIDTH, int((pct / 10).to_integral_value(rounding="ROUND_HALF_UP"))))
    over = "!" if pct > 100 else ""
    return "`" + "█" * filled + "░" * (BAR_WIDTH - filled) + "`" + over


def sparkline(values: Sequence[Decimal]) -> str:
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(max(v, Decimal(0)) / top * (len(SPARK) - 1)))] for v in values)


def age(as_of: dt.datetime | None, now: dt.datetime) -> str:
    if as_of is None:
        return "no data yet"
    secs = max(0, int((now - as_of).total_seconds()))
    when = f"{as_of:%H:%M} UTC" if as_of.date() == now.date() else f"{as_of:%b %d %H:%M} UTC"
    if secs < 120:
        rel = "just now"
    elif secs < 7200:
        rel = f"{secs // 60} min ago"
    elif secs < 172800:
        rel = f"{secs // 3600} h ago"
    else:
        rel = f"{secs // 86400} days ago"
    return f"as of {when} ({rel})"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join_limited(lines: Sequence[str], limit: int, noun: str) -> str:
    """Join lines, dropping the tail with "and N more <noun>" so the result fits `limit`."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i
        tail = f"…and {rest} more {noun}"
        if size + len(line) + 1 + (len(tail) + 1 if rest > 1 else 0) > limit:
            out.append(f"…and {rest} more {noun}")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


# --- rendering -------------------------------------------------------------------------------


def headline(events: Sequence[Event], digest: bool, now: dt.datetime) -> str:
    if not events or all(e.kind == "digest" for e in events):
        return f":bar_chart: LLM spend digest, {now:%b %d %Y}" if digest else ":bar_chart: LLM spend"
    top = max(e.severity for e in events)
    counts: dict[str, int] = {}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    if counts.get("threshold"):
        crossed = [e for e in events if e.kind == "threshold" and e.severity == 3]
        scopes = {e.scope for e in crossed}  # a scope's top percentage and top dollar amount are one budget
        top_one = max(crossed, key=_dollars) if crossed else None
        head = top_one.headline() if top_one and len(scopes) == 1 else f"{len(scopes)} LLM budgets crossed a threshold"
    elif counts.get("limit"):
        head = "LLM provider spend limit ahead"
    elif counts.get("forecast"):
        head = "LLM spend projected above budget"
    elif counts.get("spike"):
        head = "LLM spend spike"
    elif counts.get("failure"):
        head = "LLM cost source failing"
    elif counts.get("recovery"):
        head = "LLM cost source recovered"
    else:
        head = "LLM spend"
    icon = ":white_check_mark:" if set(counts) == {"recovery"} else SEVERITY_ICON.get(top, "")
    return _clip(f"{icon} {head}", MAX_HEADER)


def _scope_line(s: Scope) -> str:
    if s.mtd_usd is None:
        return f"*{s.title}*  :x: no data (all sources failed)"
    budget = f" of {money(s.budget_usd)}" if s.budget_usd else ""
    pct = f" ({s.pct}%)" if s.pct is not None else ""
    partial = "  _partial: at least_" if s.partial else ""
    return f"*{s.title}*  {money(s.mtd_usd)}{budget}{pct}  {progress_bar(s.pct)}{partial}"


def _forecast_line(s: Scope) -> str | None:
    fc = s.forecast
    if fc is None:
        return "forecast: not yet (needs 2 complete days)" if s.mtd_usd is not None else None
    when = ""
    if fc.crossing_day and s.budget_usd:
        when = f", budget reached {fc.crossing_day:%b %d}"
    return f"forecast {money(fc.projected_usd)} at {money(fc.daily_rate_usd)}/day{when}"


def _scope_summary(s: Scope, *, show_today: bool) -> list[str]:
    """Figure, bar, forecast and sparkline of one scope."""
    lines = [_scope_line(s)]
    if s.note:
        lines.append(f"_{s.note}_")
    fc = _forecast_line(s)
    if fc:
        lines.append(fc)
    daily = s.covered_daily  # a day a source has not reported yet is not drawn as $0
    if daily:
        today = f"  (today {money(daily[-1].amount)})" if show_today else ""
        if show_today and s.missing_from is not None:
            today = f"  (complete days through {s.missing_from - dt.timedelta(days=1):%b %d}; today not reported yet)"
        lines.append(f"daily {sparkline([d.amount for d in daily])}{today}")
    return lines


def _account_line(r: SourceResult, scope: Scope | None) -> str:
    if r.report is None:
        cause = r.cause.describe if r.cause else "failed"
        return f":x: *{r.account.label}* FAILED: {cause}; no figure (not $0)"
    rep = r.report
    budget = ""
    if scope is not None and scope.budget_usd:
        budget = f" of {money(scope.budget_usd)} ({scope.pct}%)"
    extra = ""
    if rep.partial_reason:
        extra += f"  _partial: {rep.partial_reason}_"
    if rep.headroom is not None and rep.headroom.remaining_usd is not None:
        limit = f"{money(rep.headroom.limit_usd)} {spec(r.account.provider).title} limit"
        extra += f"  · {money(rep.headroom.remaining_usd)} left of its {limit}"
    for h in rep.limits:
        if h.remaining_usd is not None:
            enforcing = " (enforcing)" if h.enforcing else ""
            extra += f"  · {h.name}: {money(h.remaining_usd)} left of {money(h.limit_usd)}{enforcing}"
    return f"• *{r.account.label}* {money(rep.mtd_usd)}{budget}{extra}"


def _top_lines(results: Sequence[SourceResult]) -> list[str]:
    merged: dict[tuple[str, str], Decimal] = {}
    for r in results:
        if r.report is None:
            continue
        for line in r.report.breakdown:
            merged[(line.dimension, line.key)] = merged.get((line.dimension, line.key), Decimal(0)) + line.amount
    out = []
    dims = sorted(
        {d for d, _ in merged},
        key=lambda d: (
            ["model", "line_item", "sku", "project", "workspace"].index(d)
            if d in ["model", "line_item", "sku", "project", "workspace"]
            else 9
        ),
    )
    for dim in dims:
        items = sorted(((k, v) for (d, k), v in merged.items() if d == dim), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{_clip(k, 60)} {money(v)}" for k, v in items[:TOP_LINES])
        more = f", and {len(items) - TOP_LINES} more" if len(items) > TOP_LINES else ""
        out.append(f"top {dim.replace('_', ' ')}s: {shown}{more}")
    return out


def _provider_blocks(
    provider: str, scopes: Sequence[Scope], results: Sequence[SourceResult], now: dt.datetime
) -> list[kit.Block]:
    pscope = next(s for s in scopes if s.name == provider)
    rs = [r for r in results if r.account.provider == provider]  # all of them: the provider's figure is their sum
    lines = _scope_summary(pscope, show_today=True)
    lines.extend(_top_lines(rs))
    if len(rs) > 1 or any(
        r.report is None or r.report.headroom or r.report.limits or r.report.partial_reason for r in rs
    ):
        acc_scopes = {s.name: s for s in scopes if s.level == "account"}
        # Failed accounts first: they must survive truncation.
        ordered = sorted(rs, key=lambda r: r.report is not None)
        lines.extend(_account_line(r, acc_scopes.get(r.account.scope)) for r in ordered)
    notes: dict[str, list[str]] = {}  # one line per note, naming every account it applies to
    for r in rs:
        if r.report is not None:
            for n in r.report.notes:
                notes.setdefault(n, []).append(r.account.label)
    lines.extend(f"_note ({', '.join(labels)}): {n}_" for n, labels in notes.items())
    text = _join_limited(lines, MAX_SECTION, "lines")

    fresh = []
    for r in rs:
        if r.report is not None:
            f = r.report.freshness
            through = f.complete_through
            when = f"complete days through {through:%b %d}" if through is not None else age(f.as_of, now)
            fresh.append(f"{r.account.label} {when}")
    month = pscope.month
    facts = spec(provider)
    ctx = (
        f"billing month {month} ({facts.month_wording}) · data {'; '.join(fresh) or 'unavailable'} · "
        f"<{facts.console_url}|console>"
    )
    return [
        kit.section(text),
        kit.context(_clip(ctx, 2000)),
    ]


def _fold(events: Sequence[Event]) -> list[Event]:
    """Keep only the highest new threshold per scope, of percentages and of dollar amounts each:
    "crossed 80%" says "crossed 50%" too, and "crossed $1,500" says "crossed $1,000"."""
    top: dict[tuple[str, bool], Event] = {}
    for e in events:
        if e.kind != "threshold":
            continue
        k = (e.scope, e.amounts.threshold_usd is not None)
        if k not in top or _level_of(e) > _level_of(top[k]):
            top[k] = e
    return [e for e in events if e.kind != "threshold" or top[(e.scope, e.amounts.threshold_usd is not None)] is e]


def _level_of(e: Event) -> Decimal:
    """A threshold's percentage, or its dollar amount for a dollar threshold."""
    if e.amounts.threshold_usd is not None:
        return e.amounts.threshold_usd
    # A threshold stored before typed events and not recognised has no level: its key holds it.
    return e.level if e.level is not None else Decimal(e.key.rsplit(":", 1)[1])


def _dollars(e: Event) -> Decimal:
    """What a crossed threshold amounts to in dollars (which of a scope's two says more)."""
    if e.amounts.threshold_usd is not None:
        return e.amounts.threshold_usd
    if e.level is not None and e.amounts.budget_usd is not None:
        return e.level * e.amounts.budget_usd / 100
    return Decimal(0)


def render(msg: MessageInput) -> dict[str, Any]:
    """The Slack payload (`text` + `blocks`) for one check. Pure: same input, same output."""
    events = _fold(sorted(msg.events, key=lambda e: (-e.severity, e.key)))
    head = headline(events, msg.digest, msg.now)
    blocks: list[kit.Block] = [kit.header(head)]
    if events:
        ev_lines = [f"{SEVERITY_ICON.get(e.severity, '•')} {e.text}" for e in events if e.kind != "digest"]
        if ev_lines:
            blocks.append(kit.section(_join_limited(ev_lines, MAX_SECTION, "alerts")))
    blocks.append(kit.divider())

    total = next(s for s in msg.scopes if s.level == "total")
    if msg.shows(total.name):
        blocks.append(kit.section("\n".join(_scope_summary(total, show_today=False))))
    teams = [s for s in msg.scopes if s.level in ("team", "unassigned") and msg.shows(s.name)]
    if teams:
        blocks.append(kit.section(_teams_text(teams)))
    accounts = _lone_accounts(msg)
    if accounts:
        text = _join_limited([x for s in accounts for x in _scope_summary(s, show_today=True)], MAX_SECTION, "lines")
        blocks.append(kit.section(text))

    blocks.extend(_providers_blocks(msg, MAX_BLOCKS - len(blocks) - 1))

    failed = _failed_shown(msg)
    blocks.append(kit.context(_clip(_footer(msg, failed), 2000)))

    summary = [total] if msg.shows(total.name) else [*teams, *accounts][:1] or _shown_providers(msg)[:1]
    text_lines = [head] + [e.text for e in events if e.kind != "digest"] + [_scope_line(s) for s in summary]
    if failed:
        text_lines.append(f"partial data: {', '.join(failed)} failed")
    return {"text": _clip("\n".join(text_lines).replace("`", ""), MAX_TEXT), "blocks": list(blocks)}


def _team_line(s: Scope) -> str:
    """One team (or the unassigned spend): figure, budget, pct, bar, which sources left it partial; forecast."""
    if s.mtd_usd is None:
        return f"*{s.title}*  :x: no data (its sources failed: {', '.join(s.failed_parts) or 'all'})"
    budget = f" of {money(s.budget_usd)}" if s.budget_usd else ""
    pct = f" ({s.pct}%)" if s.pct is not None else ""
    bar = f"  {progress_bar(s.pct)}" if s.budget_usd else ""
    partial = ""
    if s.partial:
        partial = f"  _partial: {', '.join(s.failed_parts)} failed_" if s.failed_parts else "  _partial: at least_"
    fc = s.forecast
    forecast = ""
    if fc is not None and s.budget_usd:
        forecast = f" · forecast {money(fc.projected_usd)}"
        if fc.crossing_day:
            forecast += f", budget reached {fc.crossing_day:%b %d}"
    return f"*{s.title}*  {money(s.mtd_usd)}{budget}{pct}{bar}{partial}{forecast}"


def _teams_text(scopes: Sequence[Scope]) -> str:
    """The "Teams" section: one line per team, the unassigned spend last."""
    ordered = sorted(scopes, key=lambda s: s.level == "unassigned")
    return _join_limited(["*Teams*", *(_team_line(s) for s in ordered)], MAX_SECTION, "teams")


def _shown_providers(msg: MessageInput) -> list[Scope]:
    return [s for s in msg.scopes if s.level == "provider" and msg.shows(s.name)]


def _lone_accounts(msg: MessageInput) -> list[Scope]:
    """Accounts this destination shows without their provider (an account routed to its own channel)."""
    providers = {s.name for s in _shown_providers(msg)}
    return [
        s for s in msg.scopes if s.level == "account" and msg.shows(s.name) and s.name.split("/", 1)[0] not in providers
    ]


def _failed_shown(msg: MessageInput) -> list[str]:
    """The failed accounts behind what this destination shows (every failed account when it shows all)."""
    if msg.shown is None:
        return [r.account.scope for r in msg.results if r.report is None]
    behind = {p for s in msg.scopes if msg.shows(s.name) for p in (s.name, *s.failed_parts)}
    return [r.account.scope for r in msg.results if r.report is None and r.account.scope in behind]


def _providers_blocks(msg: MessageInput, room: int) -> list[kit.Block]:
    """Two blocks per shown provider while they fit in `room`, then "…and N more providers"."""
    providers = [s.name for s in _shown_providers(msg)]
    blocks: list[kit.Block] = []
    for i, provider in enumerate(providers):
        if 2 * (i + 1) > room:
            blocks.append(kit.section(f"…and {len(providers) - i} more providers"))
            break
        blocks.extend(_provider_blocks(provider, msg.scopes, msg.results, msg.now))
    return blocks


def _footer(msg: MessageInput, failed: Sequence[str]) -> str:
    """When it was checked, which accounts failed, and whether billing months differ (and why)."""
    foot = [f"checked {msg.now:%Y-%m-%d %H:%M} UTC"]
    if failed:
        foot.append(f"PARTIAL: {', '.join(failed)} failed, totals are lower bounds")
    shown = _shown_providers(msg)
    if len({s.month for s in shown}) > 1:
        per = ", ".join(f"{spec(s.name).title} {s.month}" for s in shown)
        why = "; ".join(dict.fromkeys(n for s in shown if (n := spec(s.name).month_note)))
        foot.append(f"billing months differ ({per})" + (f": {why}" if why else ""))
    return " · ".join(foot)


# --- posting ---------------------------------------------------------------------------------


def _capped_rate_limit_handler() -> Any:
    from slack_sdk.http_retry import RateLimitErrorRetryHandler

    class CappedRateLimit(RateLimitErrorRetryHandler):
        """Retry 429 only when Slack's Retry-After fits the check's time budget."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            for k, v in response.headers.items():
                if k.lower() == "retry-after":
                    try:
                        return int(v[0] if isinstance(v, list) else v) <= MAX_RETRY_AFTER_S
                    except (TypeError, ValueError):
                        return False
            return True

    return CappedRateLimit(max_retry_count=1)


# Incoming-webhook errors are plain-text strings with an HTTP status
# (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks and
# https://api.slack.com/messaging/webhooks#handling_errors: invalid_payload, user_not_found,
# channel_not_found, channel_is_archived, action_prohibited, posting_to_general_channel_denied,
# too_many_attachments, no_text, invalid_blocks...; no_service / invalid_token for a revoked hook are
# observed rather than listed). The string decides; the status is the fallback for strings we do not know.
_NEW_WEBHOOK = (
    "create a new incoming webhook for the channel (Slack app settings → Incoming Webhooks) and store its URL "
    "as the new version of the webhook secret (SLACK_WEBHOOK_URL locally)"
)
_PERMANENT: dict[str, tuple[Cause, str]] = {
    "no_service": (Cause.WEBHOOK_REVOKED, _NEW_WEBHOOK),
    "invalid_token": (Cause.WEBHOOK_REVOKED, _NEW_WEBHOOK),
    "channel_not_found": (Cause.WEBHOOK_REVOKED, "the webhook's channel was deleted: " + _NEW_WEBHOOK),
    "team_disabled": (Cause.WEBHOOK_REVOKED, "the Slack workspace is disabled: use a webhook of a live workspace"),
    "channel_is_archived": (
        Cause.CHANNEL_ARCHIVED,
        "unarchive the channel, or create a webhook for another channel and store its URL in the webhook secret",
    ),
    "action_prohibited": (
        Cause.POSTING_DENIED,
        "a workspace admin restricts posting to that channel: ask them to allow the app, or use another channel",
    ),
    "posting_to_general_channel_denied": (
        Cause.POSTING_DENIED,
        "only admins may post to that channel: use a webhook for another channel",
    ),
}
_CONTENT_REJECTED = frozenset(
    {
        "invalid_payload",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "too_many_attachments",
        "no_text",
        "msg_too_long",
        "msg_blocks_too_long",
        "markdown_text_conflict",
    }
)
_BY_STATUS: dict[int, tuple[Cause, str]] = {
    404: _PERMANENT["no_service"],
    403: _PERMANENT["action_prohibited"],
    410: _PERMANENT["channel_is_archived"],
}
REJECTED_FIX = "the formatted message was replaced by plain text; report the rejected payload as a bug"


def _send_once_retry_handler() -> Any:
    from slack_sdk.http_retry import ConnectionErrorRetryHandler

    class RetryOnlyUnsent(ConnectionErrorRetryHandler):
        """Retry only errors that prove the request never reached Slack (refused, DNS failure).

        slack_sdk's default handler also retries a reset or a dropped answer, which happens after
        the request was sent: Slack may have posted it, and a blind re-POST would post it twice.
        """

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            return response is None and _never_sent(error)

    return RetryOnlyUnsent(max_retry_count=1)


def _never_sent(error: BaseException | None) -> bool:
    reason = getattr(error, "reason", error)  # urllib wraps socket errors in URLError(reason)
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def post(url: str, payload: dict[str, Any], *, timeout: int = POST_TIMEOUT_S, within: float | None = None) -> None:
    """Post to an incoming webhook; raise `NotifyError` unless Slack answered 200.

    `timeout` bounds each socket operation (urllib's meaning); `within` bounds the whole post, its
    retries included (default: the worst case those allow). urllib cannot stop a server that answers
    a byte at a time, so past `within` the post is abandoned and reported as a timeout.

    A request that may have reached Slack (reset or timeout after sending, or abandoned) is not
    retried here: the error says `maybe_delivered`, and a later run re-delivers it labelled as a
    possible repeat.
    """
    limit = within if within is not None else 2 * timeout + MAX_RETRY_AFTER_S + 1.0
    _bounded(lambda: _post(url, payload, timeout), limit)


def _bounded(call: Callable[[], None], seconds: float) -> None:
    """Run `call` in a daemon thread; `NotifyError(TIMEOUT)` if it has not returned after `seconds`."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001  # re-raised in the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="slack-post", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds))
    if worker.is_alive():  # it ends on its own socket timeouts; nobody waits for it
        raise NotifyError(
            Cause.TIMEOUT, f"Slack webhook: no complete answer within {seconds:.0f} s", maybe_delivered=True
        )
    if failure:
        raise failure[0]


def _post(url: str, payload: dict[str, Any], timeout: int) -> None:
    from slack_sdk.webhook import WebhookClient

    quiet = logging.getLogger("llm_budget_alert.slack_sdk")
    quiet.setLevel(logging.CRITICAL)  # slack_sdk logs full request URLs, and the URL is the secret
    client = WebhookClient(
        url=url,
        timeout=timeout,
        logger=quiet,
        retry_handlers=[_send_once_retry_handler(), _capped_rate_limit_handler()],
    )
    try:
        resp = client.send_dict(payload)
    except TimeoutError:
        raise NotifyError(Cause.TIMEOUT, "Slack webhook timed out", maybe_delivered=True) from None
    except OSError as exc:
        reason = getattr(exc, "reason", None)
        if isinstance(reason, TimeoutError):
            raise NotifyError(Cause.TIMEOUT, "Slack webhook timed out", maybe_delivered=True) from None
        unsent = _never_sent(exc)
        what = "unreachable" if unsent else "dropped the connection before answering (the post may have landed)"
        raise NotifyError(
            Cause.CONNECTION, f"Slack webhook {what} ({type(reason or exc).__name__})", maybe_delivered=not unsent
        ) from None
    if resp.status_code == 200:
        return
    # Redact before clipping: a proxy's error page may echo the webhook path, and a clipped token
    # would no longer match the registered secret.
    body = logs.redact(resp.body or "")[:80].strip() if isinstance(resp.body, str) else ""
    raise _classified(resp.status_code, body)


def _classified(status: int, body: str) -> NotifyError:
    answer = f"HTTP {status} ({body or 'no body'})"
    known = _PERMANENT.get(body) or (None if body in _CONTENT_REJECTED else _BY_STATUS.get(status))
    if known is not None:
        cause, fix = known
        return NotifyError(cause, f"{cause.describe}: Slack answered {answer}", status=status, permanent=True, fix=fix)
    if body in _CONTENT_REJECTED or status == 400:
        return NotifyError(
            Cause.MESSAGE_REJECTED, f"Slack rejected the message: {answer}", status=status, permanent=True,
            fix=REJECTED_FIX,
        )  # fmt: skip
    if status == 429:
        return NotifyError(Cause.RATE_LIMIT, f"Slack answered {answer}", status=status)
    cause = Cause.SERVER_ERROR if status >= 500 else Cause.CLIENT_ERROR
    return NotifyError(cause, f"Slack answered {answer}", status=status)


def plain_text(payload: dict[str, Any], rejected: NotifyError) -> dict[str, Any]:
    """The message as plain text only (no blocks), for when Slack rejects the formatted one."""
    note = f"\n_(sent as plain text: Slack rejected the formatted message, HTTP {rejected.status})_"
    text = str(payload.get("text") or "LLM budget alert")
    return {"text": _clip(text, MAX_TEXT - len(note)) + note}


def deliver(
    url: str, payload: dict[str, Any], *, timeout: int = POST_TIMEOUT_S, within: float | None = None
) -> NotifyError | None:
    """`post`, falling back to plain text when Slack rejects the message for its content.

    Returns the rejection when the plain-text fallback was posted instead (None: posted as is);
    raises `NotifyError` when nothing was posted. A message Slack refuses for its content must
    not hold the alerts back forever. `within` bounds both posts together.
    """
    ends = None if within is None else time.monotonic() + within
    try:
        post(url, payload, timeout=timeout, within=within)
        return None
    except NotifyError as exc:
        if exc.cause is not Cause.MESSAGE_REJECTED:
            raise
        rejected = exc
    left = None if ends is None else max(1.0, ends - time.monotonic())
    post(url, plain_text(payload, rejected), timeout=timeout, within=left)
    return rejected
