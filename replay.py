"""Replay: the real check pipeline run step by step over a time range with a simulated clock.

At each step the simulator's clock is moved to the step's instant (so the provider APIs answer as
they would have then) and one ordinary check runs with `now` = that instant, against the configured
state and Slack webhook. Prints when each alert was delivered.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import httpx

from check import default_deps, run_check
from config import SecretResolver, Settings


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
    sim = (simulator or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/")
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
