"""Replay: the real pipeline hour by hour over December and into January, with a simulated clock.

The list of alerts is asserted twice: against a literal list (what a reader can check by hand for a
flat $100/day + $50/day scenario), and against one derived independently from the simulator's
exact month-to-date sums, so neither can drift alone.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from config import SecretResolver, Settings
from simulator import Scenario, Simulator, SlackReceiver
from tools.replay import replay

START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)
END = dt.datetime(2027, 1, 2, 0, 0, tzinfo=dt.UTC)
SCENARIO = {
    "name": "flat",
    "accounts": [
        {
            "provider": "openai",
            "label": "prod",
            "key": "sk-admin-replay-prod-000001",
            "spend": {"base_daily_usd": "100"},
            "breakdown": {"line_item": [{"id": "gpt-5.4, input", "weight": 1}]},
        },
        {
            "provider": "anthropic",
            "label": "main",
            "key": "sk-ant-admin01-replay-main-01",
            "spend": {"base_daily_usd": "50"},
            "breakdown": {"description": [{"id": "Claude Usage", "weight": 1}]},
        },
    ],
}
BUDGETS = {
    "total_budget_usd": 5000,
    "providers": {
        "openai": {"budget_usd": 3000, "accounts": [{"label": "prod", "budget_usd": 40, "key_env": "REPLAY_OPENAI"}]},
        "anthropic": {"budget_usd": 2000, "accounts": [{"label": "main", "key_env": "REPLAY_ANTHROPIC"}]},
    },
    "digest": {"enabled": False},
}
EXPECTED = [  # the simulator spreads each day over a diurnal profile, hence 09:00 rather than 05:00
    ("2026-12-01T09:00", "threshold:2026-12:openai/prod:50"),
    ("2026-12-01T12:00", "threshold:2026-12:openai/prod:80"),
    ("2026-12-01T13:00", "threshold:2026-12:openai/prod:100"),
    ("2026-12-03T00:00", "forecast:2026-12:openai:100"),  # 2 settled days × $100 → $3,100 > $3,000
    ("2026-12-16T01:00", "threshold:2026-12:openai:50"),  # $1,499.9999991 at 00:00 is not yet 50%
    ("2026-12-17T17:00", "threshold:2026-12:total:50"),
    ("2026-12-21T00:00", "threshold:2026-12:anthropic:50"),
    ("2026-12-25T01:00", "threshold:2026-12:openai:80"),
    ("2026-12-27T17:00", "threshold:2026-12:total:80"),
    ("2026-12-31T01:00", "threshold:2026-12:openai:100"),
    ("2027-01-01T09:00", "threshold:2027-01:openai/prod:50"),  # January starts clean
    ("2027-01-01T12:00", "threshold:2027-01:openai/prod:80"),
    ("2027-01-01T13:00", "threshold:2027-01:openai/prod:100"),
]
# Anthropic serving complete days only: its spend counts from the midnight after it happened, so the
# total's thresholds wait for that midnight; Anthropic's own 50% was a midnight crossing anyway, and the
# forecast (OpenAI's) and OpenAI's thresholds do not move.
EXPECTED_COMPLETE_DAYS = [
    (at, key) for at, key in EXPECTED if key not in ("threshold:2026-12:total:50", "threshold:2026-12:total:80")
] + [
    ("2026-12-18T00:00", "threshold:2026-12:total:50"),  # OpenAI $1,700 + Anthropic's 17 complete days $850
    ("2026-12-28T00:00", "threshold:2026-12:total:80"),  # OpenAI $2,700 + Anthropic's 27 complete days $1,350
]


Fired = tuple[list[tuple[str, str]], Simulator, int, list[tuple[str, str]]]


@pytest.fixture(scope="module", params=[False, True], ids=["today-served", "complete-days"])
def fired(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fired]:
    """The replay's delivered alerts, once per Anthropic simulator mode, with the list expected for it."""
    complete_days_only: bool = request.param
    expected = EXPECTED_COMPLETE_DAYS if complete_days_only else EXPECTED
    with (
        Simulator.start(Scenario.from_dict(SCENARIO), clock=START, complete_days_only=complete_days_only) as sim,
        SlackReceiver.start() as slack,
    ):
        env = {
            **sim.env(),
            "BUDGET_CONFIG": json.dumps(BUDGETS),
            "REPLAY_OPENAI": SCENARIO["accounts"][0]["key"],
            "REPLAY_ANTHROPIC": SCENARIO["accounts"][1]["key"],
            "SLACK_WEBHOOK_URL": slack.hook_url,
            "STATE_FILE": str(tmp_path_factory.mktemp("replay") / "state.json"),
        }
        settings = Settings.from_env(env)
        out = io.StringIO()
        with redirect_stdout(out):
            code = replay(
                settings, SecretResolver(env=env), START, END, dt.timedelta(hours=1), simulator=sim.url, as_json=True
            )
        assert code == 0
        lines = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
        events = [(dt.datetime.fromisoformat(x["at"]).strftime("%Y-%m-%dT%H:%M"), x["event"]) for x in lines]
        yield events, sim, len(slack.messages()), expected


def test_replay_fires_the_exact_list(fired: Fired) -> None:
    """Over Dec 1 → Jan 2 hourly each threshold fires once per scope, the forecast once, January starts clean."""
    events, _, posts, expected = fired
    assert sorted(events) == sorted(expected)
    assert posts == len({at for at, _ in expected}), "one Slack message per hour that had something to say"


def test_thresholds_match_the_scenario_sums(fired: Fired) -> None:
    """Each threshold fired at the first hour the simulator's exact month-to-date reached it (in its mode)."""
    events, sim, _, _ = fired
    budgets = {"openai/prod": Decimal(40), "openai": Decimal(3000), "anthropic": Decimal(2000), "total": Decimal(5000)}
    parts = {
        "openai/prod": ["openai/prod"],
        "openai": ["openai/prod"],
        "anthropic": ["anthropic/main"],
        "total": ["openai/prod", "anthropic/main"],
    }
    derived: list[tuple[str, str]] = []
    for scope, budget in budgets.items():
        for pct in (50, 80, 100):
            t = START
            month_seen: set[str] = set()
            while t <= END:
                month = f"{t:%Y-%m}"
                mtd = sum((sim.expected_mtd(p, now=t) for p in parts[scope]), Decimal(0))
                if month not in month_seen and mtd * 100 >= budget * pct:
                    month_seen.add(month)
                    derived.append((t.strftime("%Y-%m-%dT%H:%M"), f"threshold:{month}:{scope}:{pct}"))
                t += dt.timedelta(hours=1)
    assert sorted(derived) == sorted(e for e in events if e[1].startswith("threshold:"))


def test_replay_rejects_a_backwards_range(tmp_path: Path) -> None:
    """--to before --from is refused with exit code 2."""
    env: dict[str, Any] = {"BUDGET_CONFIG": json.dumps(BUDGETS), "STATE_FILE": str(tmp_path / "s.json")}
    with redirect_stdout(io.StringIO()):
        assert (
            replay(
                Settings.from_env(env),
                SecretResolver(env=env),
                END,
                START,
                dt.timedelta(hours=1),
                simulator="http://127.0.0.1:9",
            )
            == 2
        )
