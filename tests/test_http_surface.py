"""The HTTP function's surface: only POST runs a check, and no answer, log or CLI line carries a secret's part.

In-process through `functions_framework.create_app(...).test_client()`, against the simulator, the
Slack receiver and a local proxy whose error page echoes the webhook path (the token *is* the path).
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

import logs
import main
from runtime import PROCESS
from simulator import Scenario, Simulator, SlackReceiver

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEY = "sk-admin-SENTINEL-surface-prod-4d3c2b1a0f9e"
HOOK_PATH = "/services/T0SURFSENT/B0SURFSENT/surfaceHookSENTINEL31"
PATH_PARTS = ("T0SURFSENT", "B0SURFSENT", "surfaceHookSENTINEL31", "SENTINEL", "SURFSENT")
BUDGETS = {
    "total_budget_usd": 100,
    "providers": {"openai": {"budget_usd": 60, "accounts": [{"label": "prod", "key_env": "SURF_OPENAI_KEY"}]}},
}


class _EchoingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy in front of Slack that fails with an error page naming the path it could not reach."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f"Bad gateway: POST {self.path} upstream unreachable. <hr>proxy/1.0 ({self.path[1:]})".encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver, str]]:
    doc = json.loads((ROOT / "simulator/scenarios/demo.json").read_text())
    doc["accounts"] = [a for a in doc["accounts"] if a["provider"] == "openai" and a["label"] == "prod"]
    doc["accounts"][0]["key"] = KEY
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        with Simulator.start(Scenario.from_dict(doc), clock=NOW) as sim, SlackReceiver.start() as slack:
            yield sim, slack, f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def env(
    servers: tuple[Simulator, SlackReceiver, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    sim, slack, proxy = servers
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    values = {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "SURF_OPENAI_KEY": KEY,
        "SLACK_WEBHOOK_URL": f"{slack.url}{HOOK_PATH}",
        "STATE_FILE": str(tmp_path / "state.json"),
        "CHECK_DEADLINE_SECONDS": "30",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    for k in ("BUDGET_CONFIG_FILE", "SLACK_WEBHOOK_SECRET", "STATE_BACKEND"):
        monkeypatch.delenv(k, raising=False)
    log = io.StringIO()
    logs.setup("DEBUG", stream=log)
    PROCESS.reset(logging_ready=True)  # a fresh process whose logging is already set up
    return {"sim": sim, "slack": slack, "proxy": proxy, "log": log}


def _client(monkeypatch: pytest.MonkeyPatch) -> Any:
    import functions_framework

    app = functions_framework.create_app(target="budget_check", source=str(ROOT / "main.py"))
    PROCESS.reset(logging_ready=True, clock=lambda: NOW)  # the fresh main.py shares runtime.PROCESS
    return app.test_client()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_only_post_runs_a_check(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Any method but POST answers 405 with Allow: POST and fetches, posts and records nothing."""
    resp = _client(monkeypatch).open("/", method=method)
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    if method != "HEAD":
        assert json.loads(resp.get_data(as_text=True))["status"] == "method_not_allowed"
    assert env["sim"].requests() == [] and env["slack"].attempts() == 0
    assert not Path(main.Settings.from_env().state_file).exists()


def test_post_on_any_path_still_runs_the_check(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """POST (what Cloud Scheduler sends) runs the check and posts; the path does not matter."""
    resp = _client(monkeypatch).post("/anything")
    assert resp.status_code == 200 and json.loads(resp.get_data(as_text=True))["slack"]["posted"] is True
    assert env["sim"].requests() and len(env["slack"].messages()) == 1


def _no_part_of_the_path(*texts: str) -> None:
    for text in texts:
        for part in PATH_PARTS:
            assert part not in text, f"{part!r} of the webhook path reached an output"


def test_an_error_page_echoing_the_webhook_path_reaches_no_output(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy error page that echoes the path: the CLI, the HTTP answer and the logs carry no part of it."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{env['proxy']}{HOOK_PATH}")
    code = main.cli(["check", "--now", NOW.isoformat()])
    cli = capsys.readouterr()
    assert code == 0 and "Slack error: Slack answered HTTP 502 (Bad gateway: POST /[REDACTED] upstream" in cli.out
    code = main.cli(["check", "--json", "--now", NOW.isoformat()])
    cli_json = capsys.readouterr()
    assert json.loads(cli_json.out)["slack"]["error"].startswith("Slack answered HTTP 502")
    resp = _client(monkeypatch).post("/")
    answer = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "HTTP 502" in json.loads(answer)["slack"]["error"]
    log = env["log"].getvalue()
    assert '"severity": "ERROR"' in log and "HTTP 502" in log
    _no_part_of_the_path(cli.out, cli.err, cli_json.out, cli_json.err, answer, log)
    assert KEY not in cli.out + cli_json.out + answer + log
