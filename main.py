"""Entry points: `budget_check`, the HTTP function Cloud Scheduler calls, and the command line.

    python main.py check  [--dry-run] [--json] [--now 2026-12-01T00:05:00Z]
    python main.py doctor [--json] [--post-test]      # read-only readiness check; exit 1 if not ready

Exit codes of `check`: 0 the check ran (failed providers and transient Slack failures included: the
alerts stay pending), 2 configuration error, 3 alert state unusable, 4 Slack refuses the alerts for good
(webhook revoked, channel archived, posting denied; the message says the fix).

Nothing is built at import time: settings, secrets and clients come to life on the first call, and
the secret cache lives for the process (a warm instance fetches no secret twice).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

# Cold start (bench/coldstart.py, bench/peer.py measure it). Two imports nobody here uses are skipped:
# pydantic's plugin discovery scans every installed distribution's entry points on the first model
# (pydantic/plugin/_loader.py reads PYDANTIC_DISABLE_PLUGINS), and `import httpx` imports its command
# line client, and with it click, whenever click is installed (httpx/__init__.py wraps
# `from ._main import main` in `try/except ImportError`; a None entry in sys.modules raises it).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


@contextlib.contextmanager
def _imports() -> Iterator[None]:
    """Import with the cyclic garbage collector paused: pydantic's model building allocates enough to
    trigger many collections that find nothing. Imports leave no garbage cycles worth collecting here."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


with _imports():
    import logs
    from config import Settings
    from errors import ConfigError
    from runtime import PROCESS

__all__ = [
    "SLACK_REFUSED_EXIT",
    "SLACK_REFUSED_HTTP",
    "budget_check",
    "cli",
]

log = logs.get("main")
SLACK_REFUSED_HTTP = 502  # Slack refused the alerts for a reason retrying will not fix
SLACK_REFUSED_EXIT = 4  # the CLI's exit status for the same (2: configuration, 3: state)


@logs.per_request  # every record of the request carries its execution id
def budget_check(request: Any) -> tuple[str, int, dict[str, str]]:
    """HTTP entry point (functions-framework, signature type http).

    200 with the check document whenever the check ran, even with failed providers, so Cloud
    Scheduler does not retry and re-post; 500 for a configuration or state problem, with a message
    that names it (never a secret); 502 when Slack refuses the alerts for good (webhook revoked,
    channel archived, posting denied): they stay pending and the answer's `slack.fix` says what to do.
    Only POST (what Cloud Scheduler sends) runs anything: any other method gets 405 with
    `Allow: POST` (RFC 9110 section 15.5.6) before settings are even read. IAM (roles/run.invoker for
    the scheduler's service account only) stays the real guard.
    """
    headers = {"Content-Type": "application/json"}
    if request.method != "POST":
        body = {"status": "method_not_allowed", "error": f"{request.method} is not allowed: send POST to run a check"}
        return json.dumps(body), 405, {**headers, "Allow": "POST"}

    with _imports():
        import output
        from check import default_deps, run_check

    doctor_answer = _doctor_http(request)
    if doctor_answer is not None:
        return doctor_answer[0], doctor_answer[1], headers
    try:
        settings = Settings.from_env()
        settings.require_slack()
    except ConfigError as exc:
        PROCESS.setup_logging("INFO")
        logs.event(log, logging.ERROR, "configuration error", error=str(exc))
        return json.dumps({"status": "config_error", "error": logs.redact(str(exc))}), 500, headers
    PROCESS.setup_logging(settings.log_level)
    try:
        outcome = run_check(settings, default_deps(settings, PROCESS.secrets(settings)), PROCESS.now())
    except ConfigError as exc:
        logs.event(log, logging.ERROR, "configuration error", error=str(exc))
        return json.dumps({"status": "config_error", "error": logs.redact(str(exc))}), 500, headers
    except Exception as exc:
        log.exception("check crashed")
        return json.dumps({"status": "error", "error": f"internal error: {type(exc).__name__}"}), 500, headers
    doc = output.to_json(outcome)
    doc["status"], code = _http_status(outcome)
    return logs.redact(json.dumps(doc)), code, headers


def _http_status(outcome: Any) -> tuple[str, int]:
    if outcome.state_error:
        return "state_error", 500
    if outcome.notify_permanent:  # nothing was posted, so a Scheduler retry cannot post twice
        return "slack_refused", SLACK_REFUSED_HTTP
    return "ok", 200


def _doctor_http(request: Any) -> tuple[str, int] | None:
    """`POST {"doctor": true}` (optionally `"post_test": true`) runs `doctor` instead of the check.

    200 when ready, 503 when a check failed, 400 for a malformed doctor request (never the real check:
    an operator's typo must not post alerts). None when the body is not a doctor request.
    """
    # force: a `curl -d '{"doctor": true}'` without a JSON content type must still be a doctor request.
    body = request.get_json(force=True, silent=True) if hasattr(request, "get_json") else None
    if not isinstance(body, dict) or "doctor" not in body or body["doctor"] is False:
        return None
    post_test = body.get("post_test", False)
    if body["doctor"] is not True or not isinstance(post_test, bool):
        return json.dumps({"status": "bad_request", "error": 'use {"doctor": true, "post_test": false}'}), 400
    with _imports():
        import doctor

    PROCESS.setup_logging("INFO")
    report = doctor.run(post_test=post_test)
    # The deployed function's ingress is internal-only: an operator runs this through the paused
    # doctor Scheduler job and reads the table from this line (terraform output doctor_command).
    rows = [{"check": r.check, "target": r.target, "status": r.status, "detail": r.detail} for r in report.rows]
    logs.event(log, logging.INFO if report.ready else logging.ERROR, "doctor", ready=report.ready, checks=rows)
    return doctor.to_json_text(report), 200 if report.ready else 503


# --- command line ----------------------------------------------------------------------------


def _instant(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO instant such as 2026-12-01T00:05:00Z") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z or an offset")
    return t.astimezone(dt.UTC)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="LLM month-to-date budget alerts")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run one check now (or at --now)")
    c.add_argument("--dry-run", action="store_true", help="render the Slack message; post nothing, record nothing")
    c.add_argument("--json", action="store_true", help="print the check document (as the HTTP function answers)")
    c.add_argument("--now", type=_instant, help="the instant to check at, e.g. 2026-12-01T00:05:00Z")
    d = sub.add_parser("doctor", help="read-only readiness check of secrets, accounts, state and Slack")
    d.add_argument("--json", action="store_true", help='print the checks as JSON (as POST {"doctor": true})')
    d.add_argument("--post-test", action="store_true", help="also post one test message to the Slack webhook")
    return p


def _say(text: str, *, err: bool = False) -> None:
    """Print for the CLI user: everything passes the redactor (a provider's or proxy's error text
    may echo a key or the webhook path)."""
    print(logs.redact(text), file=sys.stderr if err else sys.stdout)


def cli(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":  # before Settings: a broken configuration is one of its rows
        with _imports():
            import doctor

        PROCESS.setup_logging("INFO")
        report = doctor.run(post_test=args.post_test)
        _say(doctor.to_json_text(report) if args.json else doctor.table(report))
        return report.exit_code
    try:
        settings = Settings.from_env()
        if not getattr(args, "dry_run", False):
            settings.require_slack()
    except ConfigError as exc:
        _say(f"configuration error: {exc}", err=True)
        return 2
    PROCESS.setup_logging(settings.log_level)
    with _imports():
        import output
        from check import default_deps, run_check

    outcome = run_check(
        settings, default_deps(settings, PROCESS.secrets(settings)), args.now or PROCESS.now(), dry_run=args.dry_run
    )
    doc = output.to_json(outcome)
    if args.dry_run:
        doc["message"] = outcome.payload
        doc["messages"] = outcome.payloads  # per destination: what each would get
    _say(json.dumps(doc, indent=2) if args.json else output.cli_text(outcome, doc))
    if outcome.state_error:
        _say(f"state error: {outcome.state_error}", err=True)
        return 3
    if outcome.notify_permanent:
        _say(f"Slack refuses the alerts: {outcome.notify_error}. Fix: {outcome.notify_fix}", err=True)
        return SLACK_REFUSED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(cli())
