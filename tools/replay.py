"""Replay: the real check pipeline run step by step over a time range with a simulated clock.

At each step the simulator's clock is moved to the step's instant (so the provider APIs answer as
they would have then) and one ordinary check runs with `now` = that instant, against the configured
state and Slack webhook. Prints when each alert was delivered. Not deployed (a tool, like `demo/`):

    python -m tools.replay --from 2026-11-28T00:00Z --to 2026-12-02T00:00Z [--step 1h] --simulator URL [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import httpx

import logs
from check import default_deps, run_check
from config import SecretResolver, Settings
from errors import ConfigError

__all__ = ["cli", "replay"]


def replay(
    settings: Settings,
    secrets: SecretResolver,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
    *,
    simulator: str | None = None,
    as_json: bool = False,
) -> int:
    if end <= start:
        print("replay: --to must be after --from")
        return 2
    sim = (simulator or "").rstrip("/")
    if not sim:
        print("replay: pass --simulator URL (the local simulator whose clock is moved)")
        return 2
    deps = default_deps(settings, secrets)
    t = start
    fired = 0
    with httpx.Client(base_url=sim, timeout=10) as control:
        while t <= end:
            control.post("/_sim/clock", json={"now": t.isoformat()}).raise_for_status()
            outcome = run_check(settings, deps, t)
            for key in outcome.delivered:
                fired += 1
                if as_json:
                    print(json.dumps({"at": t.isoformat(), "event": key}))
                else:
                    print(f"{t:%Y-%m-%d %H:%M}Z  {key}")
            if outcome.notify_error:
                print(f"{t:%Y-%m-%d %H:%M}Z  slack failed: {outcome.notify_error}; pending {len(outcome.pending)}")
            if outcome.state_error:
                print(f"{t:%Y-%m-%d %H:%M}Z  state error: {outcome.state_error}")
                return 3
            t += step
    if not as_json:
        print(f"replay: {fired} alert(s) delivered between {start:%Y-%m-%d %H:%M}Z and {end:%Y-%m-%d %H:%M}Z")
    return 0


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


def cli(argv: list[str] | None = None) -> int:
    """`python -m tools.replay`: exit 0 done, 2 bad arguments or configuration, 3 alert state unusable."""
    p = argparse.ArgumentParser(prog="python -m tools.replay", description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="start", type=_instant, required=True)
    p.add_argument("--to", dest="end", type=_instant, required=True)
    p.add_argument("--step", type=_step, default=dt.timedelta(hours=1))
    p.add_argument("--simulator", required=True, help="base URL of the local simulator whose clock to move")
    p.add_argument("--json", action="store_true", help="print one JSON line per delivered event")
    args = p.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level)
    secrets = SecretResolver(emulator_host=settings.secret_manager_emulator_host)
    return replay(settings, secrets, args.start, args.end, args.step, simulator=args.simulator, as_json=args.json)


if __name__ == "__main__":
    sys.exit(cli())
