"""Exactly once across real processes: 10 `python main.py check` at once, several rounds, against the
provider simulator, the Slack receiver and GCS state behind the precondition-enforcing `GCSProxy`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devservers.gcs_proxy import GCSProxy
from simulator import Simulator, SlackReceiver

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
PROCESSES = 10
KEYS = {"SIM_PROD": "sk-admin-sim-prod-7Qm2vXc9LpA4", "SIM_MAIN": "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd"}
BUDGETS = {"total_budget_usd": 14000, "providers": {
    "openai": {"budget_usd": 9000, "accounts": [{"label": "prod", "key_env": "SIM_PROD"}]},
    "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_MAIN"}]}}}  # fmt: skip


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver]]:
    with Simulator.start(clock=NOW) as sim, SlackReceiver.start() as slack:
        yield sim, slack


def _round(env: dict[str, str]) -> list[tuple[int, dict[str, Any] | None, str]]:
    """Start PROCESSES checks at once; their exit codes, JSON documents and stderr."""
    argv = [sys.executable, "main.py", "check", "--json", "--now", NOW.isoformat()]
    procs = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        try:
            doc = json.loads(stdout)
        except ValueError:
            doc = None
        out.append((p.returncode, doc, stderr[-2000:]))
    return out


ROUNDS = ["none", "write answers lost", "writes land mid-read", "none"]


def test_ten_processes_at_once_post_each_alert_exactly_once(
    servers: tuple[Simulator, SlackReceiver], proxied_bucket: str, gcs_proxy: GCSProxy
) -> None:
    """Ten concurrent CLI checks per round, four rounds (two with GCS faults): all exit 0, each alert posted once."""
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    env = {
        **os.environ, **sim.env(), **KEYS, "BUDGET_CONFIG": json.dumps(BUDGETS), "STATE_BACKEND": "gcs",
        "STATE_BUCKET": proxied_bucket, "SLACK_WEBHOOK_URL": slack.hook_url, "CHECK_DEADLINE_SECONDS": "120",
        "STORAGE_EMULATOR_HOST": gcs_proxy.url, "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    for rnd, fault in enumerate(ROUNDS):
        slack.reset()
        env["STATE_OBJECT"] = f"rounds/{fault.replace(' ', '-')}-{rnd}.json"
        if fault == "write answers lost":
            gcs_proxy.drop_write_answers(3)
        elif fault == "writes land mid-read":
            from alerts.state import GCSStore, Ledger

            store = GCSStore(proxied_bucket, env["STATE_OBJECT"])
            for n in range(3):  # another writer's claim lands after a check's read, before its write
                other = {f"other:{n}": {"month": "2026-11", "kind": "digest", "scope": "total", "line": "elsewhere"}}
                gcs_proxy.on("after_download", lambda other=other, store=store: Ledger(store).claim(other, NOW))
        results = _round(env)
        gcs_proxy.clear()
        assert [code for code, _, _ in results] == [0] * PROCESSES, [err for code, _, err in results if code]
        docs = [doc for _, doc, _ in results]
        assert all(doc is not None for doc in docs)
        delivered = [k for doc in docs if doc for k in doc["alerts"]["delivered"]]
        holding = set(docs[0]["alerts"]["holding"]) if docs[0] else set()
        assert holding and sorted(delivered) == sorted(holding), f"round {rnd}: each alert delivered exactly once"
        posted = sum(bool(doc and doc["slack"]["posted"]) for doc in docs)
        messages = slack.messages()
        assert len(messages) == posted == slack.attempts(), f"round {rnd}: one Slack post per posting process"
        texts = "\n".join(m["text"] for m in messages)
        assert texts.count("OpenAI") >= 1 and "may be a repeat" not in texts
