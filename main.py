"""Entry points: `budget_check`, the HTTP function Cloud Scheduler calls, and the command line.

    python main.py check  [--dry-run] [--json] [--now 2026-12-01T00:05:00Z]
    python main.py replay --from 2026-11-28T00:00Z --to 2026-12-02T00:00Z [--step 1h] [--simulator URL]

Exit codes of `check`: 0 the check ran (failed providers and transient Slack failures included: the
alerts stay pending), 2 configuration error, 3 alert state unusable, 4 Slack refuses the alerts for good
(webhook revoked, channel archived, posting denied; the message says the fix).

Nothing is built at import time: settings, secrets and clients come to life on the first call, and
the secret cache lives for the process (a warm instance fetches no secret twice).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
from typing import Any

import logs
from config import SecretResolver, Settings
from errors import ConfigError

log = logs.get("main")
SLACK_REFUSED_HTTP = 502  # Slack refused the alerts for a reason retrying will not fix
SLACK_REFUSED_EXIT = 4  # the CLI's exit status for the same (2: configuration, 3: state)
_LOCK = threading.Lock()
_SECRETS: SecretResolver | None = None
_LOGGING_READY = False


def _process_secrets(settings: Settings) -> SecretResolver:
    """One resolver per process, so each secret is read from Secret Manager once."""
    global _SECRETS
    with _LOCK:
        if _SECRETS is None:
            _SECRETS = SecretResolver(emulator_host=settings.secret_manager_emulator_host)
        return _SECRETS


def _setup_logging(level: str) -> None:
    global _LOGGING_READY
    if not _LOGGING_READY:
        logs.setup(level)
        _LOGGING_READY = True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def budget_check(request: Any) -> tuple[str, int, dict[str, str]]:
    """HTTP entry point (functions-framework, signature type http).

    200 with the check document whenever the check ran, even with failed providers, so Cloud
    Scheduler does not retry and re-post; 500 for a configuration or state problem, with a message
    that names it (never a secret); 502 when Slack refuses the alerts for good (webhook revoked,
    channel archived, posting denied): they stay pending and the answer's `slack.fix` says what to do.
    """
    from check import default_deps, run_check, to_json

    headers = {"Content-Type": "application/json"}
    try:
        settings = Settings.from_env()
        settings.require_slack()
    except ConfigError as exc:
        _setup_logging("INFO")
        logs.event(log, logging.ERROR, "configuration error", error=str(exc))
        return json.dumps({"status": "config_error", "error": logs.redact(str(exc))}), 500, headers
    _setup_logging(settings.log_level)
    try:
        outcome = run_check(settings, default_deps(settings, _process_secrets(settings)), _now())
    except ConfigError as exc:
        logs.event(log, logging.ERROR, "configuration error", error=str(exc))
        return json.dumps({"status": "config_error", "error": logs.redact(str(exc))}), 500, headers
    except Exception as exc:
        log.exception("check crashed")
        return json.dumps({"status": "error", "error": f"internal error: {type(exc).__name__}"}), 500, headers
    doc = to_json(outcome)
    if outcome.state_error:
        doc["status"] = "state_error"
        return logs.redact(json.dumps(doc)), 500, headers
    if outcome.notify_permanent:  # nothing was posted, so a Scheduler retry cannot post twice
        doc["status"] = "slack_refused"
        return logs.redact(json.dumps(doc)), SLACK_REFUSED_HTTP, headers
    doc["status"] = "ok"
    return logs.redact(json.dumps(doc)), 200, headers


# --- command line ----------------------------------------------------------------------------


def _instant(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO instant such as 2026-12-01T00:05:00Z") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z or an offset")
    return t.astimezone(dt.UTC)


def _step(text: str) -> dt.timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        n, unit = int(text[:-1]), text[-1]
        return dt.timedelta(seconds=n * units[unit])
    except (ValueError, KeyError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r}: use a step such as 30m, 1h or 1d") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="LLM month-to-date budget alerts")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run one check now (or at --now)")
    c.add_argument("--dry-run", action="store_true", help="render the Slack message; post nothing, record nothing")
    c.add_argument("--json", action="store_true", help="print the check document (as the HTTP function answers)")
    c.add_argument("--now", type=_instant, help="the instant to check at, e.g. 2026-12-01T00:05:00Z")
    r = sub.add_parser("replay", help="run the real pipeline step by step over a time range (simulator clock)")
    r.add_argument("--from", dest="start", type=_instant, required=True)
    r.add_argument("--to", dest="end", type=_instant, required=True)
    r.add_argument("--step", type=_step, default=dt.timedelta(hours=1))
    r.add_argument("--simulator", help="simulator base URL whose clock to move (default: OPENAI_BASE_URL)")
    r.add_argument("--json", action="store_true", help="print one JSON line per delivered event")
    return p


def _summary(doc: dict[str, Any]) -> str:
    rows = [f"{'scope':<28} {'status':<7} {'month-to-date':>14} {'budget':>10} {'pct':>7}  freshness"]
    t = doc["total"]
    rows.append(
        f"{'TOTAL' + (' (partial)' if doc['partial'] else ''):<28} {'':<7} "
        f"{t['mtd_usd_rounded'] or '-':>14} {t['budget_usd'] or '-':>10} {t['pct'] or '-':>7}"
    )
    for name, p in doc["providers"].items():
        rows.append(
            f"{name:<28} {'':<7} {p.get('mtd_usd_rounded') or '-':>14} {p.get('budget_usd') or '-':>10} "
            f"{p.get('pct') or '-':>7}"
        )
        for a in p["accounts"]:
            as_of = (a.get("freshness") or {}).get("as_of")
            fresh = f"as of {dt.datetime.fromisoformat(as_of):%Y-%m-%d %H:%M}Z" if as_of else ""
            value = a.get("mtd_usd_rounded") or f"FAILED ({a.get('cause')})"
            rows.append(
                f"  {name + '/' + a['label']:<26} {a['status']:<7} {value:>14} {'':>10} {'':>7}  "
                f"{fresh} [{a['billing_month']}]"
            )
    return "\n".join(rows)


def cli(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if not getattr(args, "dry_run", False):
            settings.require_slack()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    if args.command == "replay":
        from replay import replay

        return replay(
            settings,
            _process_secrets(settings),
            args.start,
            args.end,
            args.step,
            simulator=args.simulator,
            as_json=args.json,
        )

    from check import default_deps, run_check, to_json

    outcome = run_check(
        settings, default_deps(settings, _process_secrets(settings)), args.now or _now(), dry_run=args.dry_run
    )
    doc = to_json(outcome)
    if args.dry_run:
        doc["message"] = outcome.payload
    if args.json:
        print(logs.redact(json.dumps(doc, indent=2)))
    else:
        print(_summary(doc))
        if outcome.payload is not None:
            verb = "would post" if args.dry_run else ("posted" if outcome.posted else "could NOT post")
            print(f"\nSlack ({verb}):\n{outcome.payload['text']}")
        else:
            print("\nnothing new to say: no message")
        if outcome.notify_error and not outcome.posted:
            print(f"\nSlack error: {outcome.notify_error} (alerts kept pending for the next run)")
        elif outcome.notify_error:
            print(f"\nSlack warning: {outcome.notify_error}")
    if outcome.state_error:
        print(f"state error: {outcome.state_error}", file=sys.stderr)
        return 3
    if outcome.notify_permanent:
        print(f"Slack refuses the alerts: {outcome.notify_error}. Fix: {outcome.notify_fix}", file=sys.stderr)
        return SLACK_REFUSED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(cli())
