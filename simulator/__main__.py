"""Command line: `python -m simulator serve|expected|accounts` (see `--help`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from simulator.providers_server import SimState, Simulator, load_scenario
from simulator.scenario import ScenarioError
from simulator.secret_manager import SecretManagerFake
from simulator.slack_receiver import SlackReceiver


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the servers in the foreground until SIGTERM / SIGINT")
    serve.add_argument("--port", type=int, default=0, help="provider API port (0 = pick a free port)")
    serve.add_argument("--slack-port", type=int, help="also run the Slack webhook receiver on this port")
    serve.add_argument("--secrets-port", type=int, help="also run the Secret Manager fake on this port")
    serve.add_argument("--secrets-file", type=Path, help='JSON {"projects/P/secrets/S": "value"} to preload')
    serve.add_argument("--scenario", type=Path, help="scenario JSON (default: the bundled demo)")
    serve.add_argument("--clock", help="freeze the clock at this instant, e.g. 2026-11-28T18:00:00Z")
    serve.add_argument("--latency-ms", type=float, default=0, help="added to every provider request")
    serve.add_argument(
        "--complete-days-only",
        action="store_true",
        help="Anthropic serves finished UTC days only; a range with none answers the date-range 400",
    )
    serve.add_argument("--print-slack", action="store_true", help="print each accepted Slack message")
    serve.add_argument("--ready-file", type=Path, help="write the URLs and ports here as JSON once listening")

    expected = sub.add_parser("expected", help="print the exact expected month-to-date sums as JSON")
    expected.add_argument("--scenario", type=Path)
    expected.add_argument("--now", required=True, help="instant, e.g. 2026-11-28T18:00:00Z")
    expected.add_argument("--complete-days-only", action="store_true", help="Anthropic: sums of finished days only")

    accounts = sub.add_parser("accounts", help="list the scenario's keys, labels and team ids")
    accounts.add_argument("--scenario", type=Path)
    return parser


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(
            Simulator.start(
                args.scenario,
                port=args.port,
                clock=args.clock,
                latency_ms=args.latency_ms,
                complete_days_only=args.complete_days_only or None,
            )
        )
        ready: dict[str, Any] = {"pid": os.getpid(), "providers_url": sim.url, "providers_port": sim.port}
        parts = [f"providers={sim.url}"]
        if args.slack_port is not None:
            slack = stack.enter_context(SlackReceiver.start(port=args.slack_port, print_messages=args.print_slack))
            ready |= {"slack_url": slack.hook_url, "slack_port": slack.port}
            parts.append(f"slack={slack.hook_url}")
        if args.secrets_port is not None:
            secrets = json.loads(args.secrets_file.read_text(encoding="utf-8")) if args.secrets_file else {}
            manager = stack.enter_context(SecretManagerFake.start(secrets, port=args.secrets_port))
            ready |= {"secrets_url": manager.url, "secrets_port": manager.port}
            parts.append(f"secrets={manager.url}")
        if args.ready_file is not None:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(ready, indent=2) + "\n", encoding="utf-8")
            tmp.replace(args.ready_file)
            stack.callback(args.ready_file.unlink, missing_ok=True)
        print("simulator ready " + " ".join(parts), flush=True)
        while not stop.wait(0.5):
            pass
    print("simulator stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        complete_days_only = getattr(args, "complete_days_only", False) or None  # None: the scenario's own
        state = SimState(load_scenario(args.scenario), complete_days_only=complete_days_only)
        if args.command == "expected":
            from simulator._server import parse_instant

            print(json.dumps(state.expected(parse_instant(args.now)), indent=2))
        else:
            for account in state.describe()["accounts"]:
                team = f"  team_id={account['team_id']}" if account["team_id"] else ""
                print(f"{account['scope']:<20} {account['key']}{team}")
    except (ScenarioError, ValueError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
