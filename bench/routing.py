"""Routing: what posting to several Slack destinations costs a check, and what a hanging one costs the others.

Every Slack receiver answers after `LATENCY_MS`. One check (production `run_check`, fresh state per
run, so each run claims, posts to every destination and settles) with one destination, then with
three: the posts run side by side, so three cost about what one does (a ratio near 1; posting one
after the other would be near 3). Then one of the three never answers: the other two are posted
within their own latency, and only the check's end waits for the hanging post's timeout.

    python -m bench.routing
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
from collections.abc import Mapping
from typing import Any

from check import default_deps, run_check
from config import SecretResolver, Settings
from simulator import Simulator, SlackReceiver

LATENCY_MS = 250
RUNS = 3
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEYS = {"SIM_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4", "SIM_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"}


def _budgets(dests: list[str]) -> dict[str, Any]:
    """Total, OpenAI and Anthropic each crossing a threshold; with three destinations, each to its own."""
    several = len(dests) > 1
    return {
        "total_budget_usd": 14000,
        "providers": {
            "openai": {
                "budget_usd": 9000,
                "notify": [dests[1]] if several else [],
                "accounts": [{"label": "prod", "key_env": "SIM_PROD"}],
            },
            "anthropic": {
                "budget_usd": 3000,
                "notify": [dests[2]] if several else [],
                "accounts": [{"label": "main", "key_env": "SIM_MAIN"}],
            },
        },
        "destinations": {d: {"webhook_env": f"HOOK_{d.upper()}"} for d in dests},
        "default_destination": dests[0],
        "digest": {"enabled": False},
    }


def _check(sim: Simulator, hooks: Mapping[str, SlackReceiver], dests: list[str]) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **sim.env(),
            **KEYS,
            "BUDGET_CONFIG": json.dumps(_budgets(dests)),
            "STATE_FILE": f"{tmp}/state.json",
            "LOG_LEVEL": "CRITICAL",
            **{f"HOOK_{d.upper()}": hooks[d].hook_url for d in dests},
        }
        settings = Settings.from_env(env)
        out = run_check(settings, default_deps(settings, SecretResolver(env=env)), NOW)
        return out.elapsed_s, {d: r.posted for d, r in out.deliveries.items()}


def main() -> None:
    names = ["finops", "search", "support"]
    with (
        Simulator.start(clock=NOW) as sim,
        SlackReceiver.start() as a,
        SlackReceiver.start() as b,
        SlackReceiver.start() as c,
    ):
        hooks = dict(zip(names, (a, b, c), strict=True))
        for r in hooks.values():
            r.set_latency(LATENCY_MS)
        _check(sim, hooks, names)  # warm: imports, connections
        one = statistics.median(_check(sim, hooks, names[:1])[0] for _ in range(RUNS))
        three = statistics.median(_check(sim, hooks, names)[0] for _ in range(RUNS))
        hooks["search"].add_fault("timeout", seconds=30)
        hung, posted = _check(sim, hooks, names)
        hooks["search"].clear_faults()
    print(f"Slack latency {LATENCY_MS} ms per post; median of {RUNS} checks")
    print(f"  1 destination : {one:6.2f} s")
    serial = 1 + 2 * LATENCY_MS / 1000 / one
    print(f"  3 destinations: {three:6.2f} s   ratio {three / one:4.2f} (posting one after another: ~{serial:4.2f})")
    print(f"  3, one hanging: {hung:6.2f} s   posted {posted} (the hanging one ends on its own post timeout)")


if __name__ == "__main__":
    main()
