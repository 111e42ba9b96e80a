"""What the weekly report costs a check: the previous-period requests of the weekly hour, against the simulator.

    python -m bench.weekly_history

Three checks of the demo's OpenAI, Anthropic and xAI accounts (dry runs, nothing posted): an ordinary
hour, the weekly hour of Monday Dec 7 (its two weeks reach into November: every account is fetched
for November too, in the same pool and deadline) and that of Monday Dec 21 (both weeks in December:
nothing extra). Requests are the providers' own counts (`CostReport.requests`); time is wall time,
noisy on a shared machine: read the ratio, not the milliseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from bench._common import guard_loopback

DEMO = Path(__file__).resolve().parent.parent / "simulator/scenarios/demo.json"
CHECKS = (
    ("ordinary hour, Mon Dec 7 09:00", dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)),
    ("weekly hour, Mon Dec 7 08:00", dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)),
    ("weekly hour, Mon Dec 21 08:00", dt.datetime(2026, 12, 21, 8, 0, tzinfo=dt.UTC)),
)


def main() -> int:
    guard_loopback()
    from check import default_deps, run_check
    from config import SecretResolver, Settings
    from simulator import Scenario, Simulator

    demo = json.loads(DEMO.read_text())
    accounts = [a for a in demo["accounts"] if a["provider"] in ("openai", "anthropic", "xai")]
    env_keys = {f"WEEKLY_BENCH_{i}": a["key"] for i, a in enumerate(accounts)}
    providers: dict[str, dict[str, object]] = {}
    for i, a in enumerate(accounts):
        entry: dict[str, object] = {"label": a["label"], "key_env": f"WEEKLY_BENCH_{i}"}
        if "team_id" in a:
            entry["team_id"] = a["team_id"]
        block = providers.setdefault(a["provider"], {"budget_usd": 100000, "accounts": []})
        block["accounts"].append(entry)  # type: ignore[attr-defined]
    doc = {"total_budget_usd": 300000, "providers": providers, "digest": {"enabled": False}, "weekly_report": {}}
    with Simulator.start(Scenario.from_dict({**demo, "accounts": accounts})) as sim, tempfile.TemporaryDirectory() as d:
        env = {**sim.env(), **env_keys, "BUDGET_CONFIG": json.dumps(doc), "STATE_FILE": str(Path(d) / "s.json")}
        settings = Settings.from_env(env)
        deps = default_deps(settings, SecretResolver(env=env))
        print(f"{'check':<32} {'month requests':>15} {'previous-period requests':>25} {'wall ms':>8}")
        for label, now in CHECKS:
            sim.set_clock(now)
            started = time.monotonic()
            outcome = run_check(settings, deps, now, dry_run=True)
            wall = (time.monotonic() - started) * 1000
            month = sum(r.report.requests for r in outcome.results if r.report is not None)
            past = sum(r.report.requests for r in outcome.history if r.report is not None)
            print(f"{label:<32} {month:>15} {past:>25} {wall:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
