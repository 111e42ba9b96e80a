"""The deployed surface, run for real: the `functions-framework` server as a process, as Cloud Run runs it.

Cloud Run functions (gen2) set `LOG_EXECUTION_ID=true`; functions-framework then installs its own
root handler and wraps `sys.stdout`/`sys.stderr` during each request. These tests start the real
server (gunicorn master + worker) with Cloud Run's variables, against the simulator and the Slack
receiver, and parse every line it writes: each is one JSON object with a `severity`, every record of
a request carries its execution id (fetch-thread records included), nothing is written twice and no
line is blank. They also hold the HTTP surface: only POST runs a check.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from simulator import Scenario, Simulator, SlackReceiver

KEYS = {
    "prod": "sk-admin-SENTINEL-ff-prod-71c0a9e2d4b3",
    "research": "sk-admin-SENTINEL-ff-research-5d2e8f10",
    "main": "sk-ant-admin01-SENTINEL-ff-main-a3b4c5d6",
}
HOOK_PATH = "/services/T0FFSENTINEL/B0FFSENTINEL/ffhookSENTINEL77"
BUDGETS = {
    "total_budget_usd": 100,  # low: the check crosses thresholds and posts
    "providers": {
        "openai": {
            "budget_usd": 60,
            "accounts": [
                {"label": "prod", "key_env": "FF_OPENAI_PROD_KEY"},
                {"label": "research", "key_env": "FF_OPENAI_RESEARCH_KEY"},
            ],
        },
        "anthropic": {"budget_usd": 40, "accounts": [{"label": "main", "key_env": "FF_ANTHROPIC_KEY"}]},
    },
}
FRAMEWORK = ROOT / ".venv" / "bin" / "functions-framework"


def _scenario() -> Scenario:
    doc = json.loads((ROOT / "simulator/scenarios/demo.json").read_text())
    doc["accounts"] = [a for a in doc["accounts"] if a["provider"] in ("openai", "anthropic")]
    for a in doc["accounts"]:
        a["key"] = KEYS[a["label"]]
    return Scenario.from_dict(doc)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver]]:
    with Simulator.start(_scenario()) as sim, SlackReceiver.start() as slack:
        yield sim, slack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Function:
    """A running `functions-framework` process and everything it wrote."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, out: Path, err: Path) -> None:
        self.proc, self.port, self.out, self.err = proc, port, out, err

    def request(self, method: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/",
            method=method,
            headers=headers or {},
            data=b"" if method == "POST" else None,
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def stop(self) -> list[str]:
        """Stop the gunicorn master (it stops its worker) and return every line written."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = self.out.read_text(encoding="utf-8") + self.err.read_text(encoding="utf-8")
        return text.splitlines()


def _start(servers: tuple[Simulator, SlackReceiver], tmp_path: Path, *, log_execution_id: bool) -> Function:
    sim, slack = servers
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        # What Cloud Run sets on a function (https://cloud.google.com/run/docs/container-contract#env-vars).
        "K_SERVICE": "llm-budget-alert",
        "K_REVISION": "llm-budget-alert-00001-abc",
        "K_CONFIGURATION": "llm-budget-alert",
        "PORT": str(port),
        "FUNCTION_TARGET": "budget_check",
        "FUNCTION_SIGNATURE_TYPE": "http",
        **({"LOG_EXECUTION_ID": "true"} if log_execution_id else {}),
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "FF_OPENAI_PROD_KEY": KEYS["prod"],
        "FF_OPENAI_RESEARCH_KEY": KEYS["research"],
        "FF_ANTHROPIC_KEY": KEYS["main"],
        "SLACK_WEBHOOK_URL": f"{slack.url}{HOOK_PATH}",
        "STATE_FILE": str(tmp_path / "state.json"),
        "CHECK_DEADLINE_SECONDS": "30",
        "LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [
                str(FRAMEWORK),
                "--target",
                "budget_check",
                "--source",
                "main.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=o,
            stderr=e,
        )
    fn = Function(proc, port, out, err)
    started = time.monotonic()
    while time.monotonic() - started < 60:  # a bound on waiting for the port, not an assertion on speed
        if proc.poll() is not None:
            raise AssertionError(f"functions-framework exited {proc.returncode}: {fn.stop()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return fn
        time.sleep(0.1)
    fn.stop()
    raise AssertionError("functions-framework did not listen within 60 s")


def _records(lines: list[str]) -> list[dict[str, Any]]:
    """Every line as a JSON object with a severity; fails on a blank line or plain text."""
    records = []
    for i, line in enumerate(lines):
        assert line.strip(), f"line {i} is blank"
        doc = json.loads(line)
        assert isinstance(doc, dict), f"line {i} is not a JSON object: {line[:120]}"
        assert doc.get("severity") in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), f"line {i}: {line[:200]}"
        records.append(doc)
    return records


def _leaks(texts: list[str]) -> list[str]:
    return [s for t in texts for s in (*KEYS.values(), HOOK_PATH, "SENTINEL") if s in t]


@pytest.mark.parametrize("log_execution_id", [True, False], ids=["LOG_EXECUTION_ID=true", "without"])
def test_real_server_logs_one_json_line_per_record_with_the_execution_id(
    servers: tuple[Simulator, SlackReceiver], tmp_path: Path, log_execution_id: bool
) -> None:
    """Under the real server every line is one JSON record with severity and the execution id, once."""
    sim, slack = servers
    sim.reset()
    sim.set_clock(dt.datetime.now(dt.UTC))
    slack.reset()
    fn = _start(servers, tmp_path, log_execution_id=log_execution_id)
    try:
        status, _, body = fn.request(
            "POST",
            {
                "Function-Execution-Id": "exec-ff-0001",
                "X-Cloud-Trace-Context": "4bf92f3577b34da6a3ce929d0e0e4736/42;o=1",
            },
        )
    finally:
        lines = fn.stop()
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"
    records = _records(lines)
    ours = [r for r in records if str(r.get("logger", "")).startswith("llm_budget_alert")]
    assert ours, "the check logged nothing"
    for r in records:
        assert r.get("logging.googleapis.com/labels") == {"execution_id": "exec-ff-0001"}, r
        assert r.get("logging.googleapis.com/spanId") == "42", r
    fetched = [r for r in ours if r["message"].endswith("month-to-date fetched")]
    assert sorted(r["scope"] for r in fetched) == ["anthropic/main", "openai/prod", "openai/research"]
    assert [r["message"] for r in ours].count("check finished") == 1
    assert not [k for k, n in Counter(json.dumps(r, sort_keys=True) for r in records).items() if n > 1]
    assert len(slack.messages()) == 1
    assert not _leaks([*lines, body])


def test_real_server_answers_405_to_get_and_runs_nothing(
    servers: tuple[Simulator, SlackReceiver], tmp_path: Path
) -> None:
    """GET on the real server: 405 with Allow: POST, no provider request, no Slack post."""
    sim, slack = servers
    sim.reset()
    slack.reset()
    fn = _start(servers, tmp_path, log_execution_id=True)
    try:
        answers = [fn.request(m, {"Function-Execution-Id": f"exec-{m}"}) for m in ("GET", "PUT", "DELETE")]
    finally:
        lines = fn.stop()
    for status, headers, body in answers:
        assert status == 405 and headers["Allow"] == "POST"
        assert json.loads(body)["status"] == "method_not_allowed"
    assert sim.requests() == [] and slack.attempts() == 0
    assert not (tmp_path / "state.json").exists()
    _records(lines)
