"""The fault-injection harness `test_faults.py` runs its table on: the world (scenario, budgets, servers),
a run of the real check through run_check / the CLI / the HTTP function / a subprocess, the fault
stand-ins no local server offers (a silent server, a 503 proxy in front of fake GCS, a store that
interleaves a second check), and the words the table's rows are written in."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import http.client
import http.server
import importlib
import io
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, record_fault

import logs
from alerts.state import Doc, FileStore, GCSStore, Store, decode
from check import default_deps, run_check
from config import CLOUD_ENV_VARS, LOCAL_ENV_VARS, SecretResolver, Settings
from errors import StateConflict
from output import to_json
from providers import Deps
from runtime import PROCESS
from simulator import Scenario, SecretManagerFake, Simulator, SlackReceiver

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
PROJECT = "llm-faults"
TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
MISSING_TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_0NO000_SUCH00_TABLE0"
STATE_OBJECT = "llm-budget-alert/state.json"
XAI_TEAM = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

DEADLINE_S = 20  # CHECK_DEADLINE_SECONDS of most cases (sources get 5 s of it: 15 s are kept for state and Slack)
TIGHT_DEADLINE_S = 5  # ... of in-process cases where something never answers: the least allowed (sources get 1 s)
SLOW_SOURCE_DEADLINE_S = 17  # ... of a source that answers too late (3 s) or never: the sources get 2 s, so the
# healthy ones finish on a loaded 2-core CI machine (there, OpenRouter's and xAI's requests took over TIGHT's 1 s)
MARGIN_S = 2.0  # a check may end this much after its deadline
KILL_AFTER_S = DEADLINE_S + MARGIN_S + 2.0  # a subprocess check still running then is killed
LAB_STAGGER_S = 0.5  # subprocess checks start this far apart, so cold starts do not starve each other

KEYS = {
    "openai/prod": "sk-admin-SENTINEL-faults-prod-3f9a1c77d2e4",
    "openai/research": "sk-admin-SENTINEL-faults-research-8b1e6d05",
    "anthropic/main": "sk-ant-admin01-SENTINEL-faults-main-c4e2a9f1",
    "xai/core": "xai-mgmt-SENTINEL-faults-core-7d5b0f1e",
    "openrouter/router": "sk-or-v1-SENTINEL-faults-router-5a3c9e1b",
    "bedrock/main": "aws-sim-faults-main",  # not a credential: moto's account is chosen by the key pair below
}
SECRETS = {  # Secret Manager secret (no version) of every key read from there, and of the webhook
    "openai/prod": "projects/llm-faults/secrets/openai-prod-admin-key",
    "anthropic/main": "projects/llm-faults/secrets/anthropic-main-admin-key",
    "xai/core": "projects/llm-faults/secrets/xai-core-management-key",
    "openrouter/router": "projects/llm-faults/secrets/openrouter-router-management-key",
    "bedrock/main": "projects/llm-faults/secrets/bedrock-main-aws-key-pair",
    "slack": "projects/llm-faults/secrets/slack-webhook",
}
MISSING_SECRET = "projects/llm-faults/secrets/anthropic-key-never-added"
HOOK_PATH = "/services/T0SENTINEL/B0SENTINEL/hookSENTINELpath9d2f"
SENTINELS = (*KEYS.values(), HOOK_PATH, "SENTINELawsSecretKey0", "SENTINEL")
ACCOUNTS = ("openai/prod", "openai/research", "anthropic/main", "xai/core", "gemini/billing", "openrouter/router",
            "bedrock/main")  # fmt: skip
AWS_KEY_PAIR = json.dumps({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "SENTINELawsSecretKey0"})

OUTPUTS: list[str] = []  # everything the module produced, scanned for sentinels by the last test


# --- the world: scenario, budgets, servers ---------------------------------------------------------


def _scenario() -> Scenario:
    doc = json.loads((ROOT / "simulator/scenarios/demo.json").read_text())
    for account in doc["accounts"]:
        account["key"] = KEYS[f"{account['provider']}/{account['label']}"]
    return Scenario.from_dict(doc)


def _version(secret: str) -> str:
    return f"{secret}/versions/latest"


def _budgets(*, anthropic_secret: str = SECRETS["anthropic/main"], gemini_table: str = TABLE) -> str:
    """Budgets every source exceeds by Nov 28, so any check posts threshold alerts even with one source down."""
    return json.dumps(
        {
            "total_budget_usd": 8000,
            "digest": {"enabled": False},
            "providers": {
                "openai": {
                    "budget_usd": 4000,
                    "accounts": [
                        {"label": "prod", "budget_usd": 3000, "key_secret": _version(SECRETS["openai/prod"])},
                        {"label": "research", "key_env": "FAULTS_OPENAI_RESEARCH_KEY"},
                    ],
                },
                "anthropic": {
                    "budget_usd": 2000,
                    "accounts": [{"label": "main", "key_secret": _version(anthropic_secret)}],
                },
                "xai": {
                    "budget_usd": 400,
                    "accounts": [{"label": "core", "team_id": XAI_TEAM, "key_secret": _version(SECRETS["xai/core"])}],
                },
                "gemini": {
                    "budget_usd": 1000,
                    "accounts": [{"label": "billing", "billing_export_table": gemini_table}],
                },
                "openrouter": {
                    "budget_usd": 400,
                    "accounts": [{"label": "router", "key_secret": _version(SECRETS["openrouter/router"])}],
                },
                "bedrock": {
                    "budget_usd": 800,
                    "accounts": [{"label": "main", "key_secret": _version(SECRETS["bedrock/main"])}],
                },
            },
        }
    )


def _secret_values(slack: SlackReceiver) -> dict[str, str]:
    return {
        SECRETS["openai/prod"]: KEYS["openai/prod"],
        SECRETS["anthropic/main"]: KEYS["anthropic/main"],
        SECRETS["xai/core"]: KEYS["xai/core"],
        SECRETS["openrouter/router"]: KEYS["openrouter/router"],
        SECRETS["bedrock/main"]: AWS_KEY_PAIR,
        SECRETS["slack"]: slack.url + HOOK_PATH,
    }


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers: an endpoint that hangs.

    A subclass answers in `_serve` (called on the accept thread for each connection, which `close` closes)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        """Say nothing: the connection stays open until `close`."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        for conn in self._conns:
            conn.close()


class Gcs503Proxy:
    """An HTTP proxy in front of fake-gcs-server that answers 503 itself when told to (fake-gcs cannot)."""

    BODY = json.dumps(
        {"error": {"code": 503, "message": "Service Unavailable", "errors": [{"reason": "backendError"}]}}
    ).encode()

    def __init__(self, upstream: str) -> None:
        up = urlsplit(upstream)
        self._upstream = (up.hostname or "127.0.0.1", up.port or 80)
        self._lock = threading.Lock()
        self._failing: int | None = 0  # requests still to refuse; None = all of them
        self.refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if proxy._take():
                    self._answer(503, [("Content-Type", "application/json")], proxy.BODY)
                    return
                conn = http.client.HTTPConnection(*proxy._upstream, timeout=10)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    skip = ("content-length", "transfer-encoding", "connection")
                    self._answer(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in skip], data)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _take(self) -> bool:
        with self._lock:
            if self._failing == 0:
                return False
            if self._failing is not None:
                self._failing -= 1
            self.refused += 1
            return True

    def fail(self, count: int | None) -> None:
        """Answer 503 to the next `count` requests (None: to every request until healed)."""
        with self._lock:
            self._failing, self.refused = count, 0

    def heal(self) -> None:
        with self._lock:
            self._failing = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _aws_error(status: int, name: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/x-amz-json-1.1", json.dumps({"__type": name, "message": message}).encode()


_AWS_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>CloudFront</body></html>"
_CE_PAGE = {"GroupDefinitions": [], "DimensionValueAttributes": []}
# Cost Explorer's answers to each fault mode, in its JSON 1.1 protocol (botocore `ce/2017-10-25`: errors
# are `{"__type", "message"}`; a bad key, a missing permission and throttling are HTTP 400 there).
AWS_FAULTS: dict[str, tuple[int, str, bytes]] = {
    "http_401": _aws_error(400, "UnrecognizedClientException", "The security token included in the request is invalid"),
    "http_403": _aws_error(400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized"),
    "http_429": _aws_error(400, "ThrottlingException", "Rate exceeded"),
    "limit_exceeded": _aws_error(400, "LimitExceededException", "You have exceeded the rate limit."),
    "http_500": _aws_error(500, "InternalServerError", "An internal error occurred."),
    "http_503": _aws_error(503, "ServiceUnavailableException", "Service unavailable."),
    "html": (502, "text/html", _AWS_HTML),
    "html_200": (200, "text/html", _AWS_HTML),
    "drift_missing_data": (200, "application/x-amz-json-1.1", json.dumps(_CE_PAGE).encode()),
    "drift_amount_type": (200, "application/x-amz-json-1.1", json.dumps({**_CE_PAGE, "ResultsByTime": [
        {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Total": {}, "Estimated": False,
         "Groups": [{"Keys": ["Amazon Bedrock", "USE1-x"],
                     "Metrics": {"UnblendedCost": {"Amount": 1.5, "Unit": "USD"}}}]}
    ]}).encode()),
    "truncated_json": (200, "application/x-amz-json-1.1", b'{"ResultsByTime": [{"TimePeriod": {"Start": "2026-'),
}  # fmt: skip


class AwsFaultFront:
    """A proxy in front of moto that answers Cost Explorer's faults itself when armed (moto has none)."""

    def __init__(self, upstream: str) -> None:
        up = urlsplit(upstream)
        self._upstream = (up.hostname or "127.0.0.1", up.port or 80)
        self._lock = threading.Lock()
        self._mode: str | None = None
        self.requests: list[str] = []  # "METHOD target-or-path" of every request, faulted or not
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                target = self.headers.get("x-amz-target")
                front.requests.append(f"{self.command} {target or self.path}")
                mode = front._mode if target else None
                if mode is not None:
                    self._answer(*AWS_FAULTS[mode])
                    return
                conn = http.client.HTTPConnection(*front._upstream, timeout=10)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    self._answer(resp.status, resp.getheader("content-type") or "", resp.read())
                finally:
                    conn.close()

            def _answer(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def arm(self, mode: str) -> None:
        """Answer every Cost Explorer request with `mode`'s reply until healed."""
        if mode not in AWS_FAULTS:
            raise ValueError(f"no AWS fault {mode!r}")
        with self._lock:
            self._mode = mode

    def heal(self) -> None:
        with self._lock:
            self._mode = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class InterleavingStore:
    """The real `GCSStore`, except that before its first write `interloper` (a whole other check) runs.

    That is an overlapping invocation landing between this check's read and its conditional write:
    the write must then fail with a precondition conflict, and the ledger must re-read and re-decide.
    """

    def __init__(self, inner: GCSStore, interloper: Callable[[], None]) -> None:
        self.inner = inner
        self.location = inner.location
        self._interloper: Callable[[], None] | None = interloper
        self.conflicts = 0

    def read(self) -> tuple[bytes | None, int]:
        return self.inner.read()

    def write(self, data: bytes, *, if_generation: int) -> int:
        if self._interloper is not None:
            interloper, self._interloper = self._interloper, None
            interloper()
        try:
            return self.inner.write(data, if_generation=if_generation)
        except StateConflict:
            self.conflicts += 1
            raise


@dataclasses.dataclass
class Servers:
    sim: Simulator
    slack: SlackReceiver
    sm: SecretManagerFake
    bq_url: str
    silent: SilentServer
    closed_url: str  # a port nothing listens on
    aws: AwsFaultFront  # moto behind the Cost Explorer fault front


@dataclasses.dataclass
class Run:
    """One check as seen from outside: its JSON document, time, exit/HTTP code, log lines and posts."""

    doc: dict[str, Any] | None  # None: the process was killed or crashed before answering
    seconds: float | None  # the check's wall time
    code: int | None  # HTTP status or exit code (None for run_check)
    logs: list[dict[str, Any]]
    posts: list[dict[str, Any]]
    killed: bool = False

    def _alerts(self, key: str) -> set[str]:
        return set(self.doc["alerts"][key]) if self.doc else set()

    @property
    def delivered(self) -> set[str]:
        return self._alerts("delivered")

    @property
    def pending(self) -> set[str]:
        return self._alerts("pending")

    @property
    def holding(self) -> set[str]:
        return self._alerts("holding")


def _log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "severity" in doc:
            lines.append(doc)
    return lines


class World:
    """One test's use of the servers: its environment, alert state, log capture and outputs to scan."""

    def __init__(self, servers: Servers, state_dir: Path, mp: pytest.MonkeyPatch) -> None:
        self.servers = servers
        self.sim, self.slack, self.sm = servers.sim, servers.slack, servers.sm
        self.mp = mp
        self.state_file = state_dir / "alert-state.json"
        self.state_env: dict[str, str] = {}
        self.log = io.StringIO()
        self.outputs: list[str] = []
        self._secrets: SecretResolver | None = None

    def capture_logs(self) -> None:
        logs.setup("DEBUG", stream=self.log)

    def env(self, deadline: float = DEADLINE_S) -> dict[str, str]:
        return {
            **self.sim.env(),
            "AWS_COST_EXPLORER_BASE_URL": self.servers.aws.url,
            "BUDGET_CONFIG": _budgets(),
            "FAULTS_OPENAI_RESEARCH_KEY": KEYS["openai/research"],
            "SLACK_WEBHOOK_SECRET": _version(SECRETS["slack"]),
            "SECRET_MANAGER_EMULATOR_HOST": self.sm.url,
            "BIGQUERY_EMULATOR_HOST": self.servers.bq_url,
            "BIGQUERY_JOB_PROJECT": PROJECT,
            "STATE_FILE": str(self.state_file),
            "CHECK_DEADLINE_SECONDS": str(deadline),
            "LOG_LEVEL": "DEBUG",
            **self.state_env,
        }

    @property
    def secrets(self) -> SecretResolver:
        """One resolver for the test, as a warm instance keeps one per process."""
        if self._secrets is None:
            self._secrets = SecretResolver(env=self.env(), emulator_host=self.sm.url)
        return self._secrets

    def use_gcs(self, bucket: str, endpoint: str) -> None:
        self.state_env = {
            "STATE_BACKEND": "gcs",
            "STATE_BUCKET": bucket,
            "STATE_OBJECT": STATE_OBJECT,
            "STORAGE_EMULATOR_HOST": endpoint,
        }
        self.mp.setenv("STORAGE_EMULATOR_HOST", endpoint)

    def store(self) -> Store:
        if self.state_env:
            return GCSStore(self.state_env["STATE_BUCKET"], STATE_OBJECT)
        return FileStore(self.state_file)

    def state(self) -> Doc:
        store = self.store()
        return decode(store.read()[0], location=store.location)

    def heal(self) -> None:
        self.sim.clear_faults()
        self.slack.clear_faults()
        self.sm.clear_faults()
        self.servers.aws.heal()

    def run(
        self,
        now: dt.datetime = NOW,
        *,
        via: str = "run_check",
        deadline: float = DEADLINE_S,
        env: dict[str, str] | None = None,
        deps_hook: Callable[[Deps], None] | None = None,
        store: Store | None = None,
    ) -> Run:
        """Run one check through `via` (run_check, cli or http) and collect what it produced."""
        full_env = {**self.env(deadline), **(env or {})}
        mark, posted = len(self.log.getvalue()), len(self.slack.messages())
        started = time.monotonic()
        if via == "run_check":
            settings = Settings.from_env(full_env)
            deps = default_deps(settings, self.secrets)
            if deps_hook is not None:
                deps_hook(deps)
            doc, code = to_json(run_check(settings, deps, now, store=store)), None
        elif via == "cli":
            doc, code = self._cli(full_env, now)
        elif via == "http":
            doc, code = self._http(full_env, now)
        else:
            raise ValueError(via)
        seconds = time.monotonic() - started
        self.outputs.append(json.dumps(doc))
        return Run(doc, seconds, code, _log_lines(self.log.getvalue()[mark:]), self.slack.messages()[posted:])

    def _export(self, env: dict[str, str]) -> None:
        for name in (*CLOUD_ENV_VARS, *LOCAL_ENV_VARS, "FAULTS_OPENAI_RESEARCH_KEY", "STORAGE_EMULATOR_HOST"):
            self.mp.delenv(name, raising=False)
        for name, value in env.items():
            self.mp.setenv(name, value)

    def _cli(self, env: dict[str, str], now: dt.datetime) -> tuple[dict[str, Any], int]:
        self._export(env)
        main = importlib.import_module("main")
        PROCESS.reset(logging_ready=True)  # a fresh process
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main.cli(["check", "--json", "--now", now.isoformat()])
        self.outputs += [out.getvalue(), err.getvalue()]
        doc: dict[str, Any] = json.loads(out.getvalue())
        return doc, code

    def _http(self, env: dict[str, str], now: dt.datetime) -> tuple[dict[str, Any], int]:
        import functions_framework

        self._export(env)
        self.mp.setitem(sys.modules, "main", importlib.import_module("main"))  # create_app replaces it
        app = functions_framework.create_app(target="budget_check", source=str(ROOT / "main.py"))
        PROCESS.reset(logging_ready=True, clock=lambda: now)  # a fresh instance: no secrets cached
        resp = app.test_client().post("/")
        body = resp.get_data(as_text=True)
        self.outputs.append(body)
        doc: dict[str, Any] = json.loads(body)
        return doc, resp.status_code

    def scan_outputs(self) -> list[str]:
        """Every output this world produced (for the sentinel check)."""
        return [*self.outputs, self.log.getvalue(), json.dumps(self.slack.messages())]


def _leaks(outputs: list[str]) -> list[str]:
    return [s for out in outputs for s in SENTINELS if s in out]


# --- the words of the table: each turns one fact about a run into a short phrase -------------------


def _budget(deadline: float, seconds: float | None) -> str:
    if seconds is None:
        return f"killed at {KILL_AFTER_S:.0f}s"
    return f"≤{deadline:g}s" if seconds <= deadline + MARGIN_S else f"took {seconds:.1f}s>{deadline:g}s"


def _accounts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{p}/{a['label']}": a for p, v in doc["providers"].items() for a in v["accounts"]}


def _account_state(doc: dict[str, Any] | None, scopes: tuple[str, ...]) -> str:
    """failed:<cause> (with no figure), or reported, for the accounts the fault hits."""
    if doc is None:
        return "no result"
    accounts = _accounts(doc)
    states = []
    for scope in scopes:
        a = accounts[scope]
        if a["status"] == "failed":
            states.append(f"failed:{a['cause']}" + ("" if a["mtd_usd"] is None else f" yet ${a['mtd_usd']}"))
        else:
            states.append("reported" if a["mtd_usd"] is not None else "ok without a figure")
    if len(set(states)) == 1:
        return states[0]
    return ", ".join(f"{scope}={state}" for scope, state in zip(scopes, states, strict=True))


def _others(doc: dict[str, Any] | None, targets: tuple[str, ...]) -> str:
    if doc is None:
        return "no result"
    bad = [
        f"{scope}={a.get('cause')}"
        for scope, a in _accounts(doc).items()
        if scope not in targets and (a["status"] != "ok" or a["mtd_usd"] is None)
    ]
    return "others ok" if not bad else "others failed: " + ", ".join(bad)


def _failed_label(posts: list[dict[str, Any]], targets: tuple[str, ...]) -> str:
    """The Slack message shows each failed account as FAILED (not $0) and its text says it failed."""
    if len(posts) != 1:
        return f"{len(posts)} posts"
    blocks, text = json.dumps(posts[0]["blocks"]), posts[0]["text"]
    shown = all(f"*{t.split('/')[1]}* FAILED" in blocks and t in text for t in targets) and "failed" in text
    return "FAILED shown" if shown else "FAILED missing"


def _note(posts: list[dict[str, Any]], note: str) -> str:
    if len(posts) != 1:
        return f"{len(posts)} posts"
    return "note shown" if note in json.dumps(posts[0]) else "note missing"


def _alerted(run: Run, prefix: str) -> str:
    return "alerted" if any(k.startswith(prefix) for k in run.delivered) else f"no {prefix}* alert"


def _where(line: dict[str, Any]) -> str:
    if line.get("scope"):
        return str(line["scope"])
    message = str(line.get("message", ""))
    if "Slack" in message:
        return "slack"
    if "state" in message:
        return "state"
    return message[:40]


def _errors(lines: list[dict[str, Any]], expected: set[tuple[str, str]]) -> str:
    """ERROR when exactly the expected (where, cause) lines are at ERROR; no ERROR when none is."""
    got = {
        (_where(line), str(line.get("cause") or line.get("error_type") or "-"))
        for line in lines
        if line.get("severity") == "ERROR"
    }
    if not got:
        return "no ERROR"
    if got == expected:
        return "ERROR"
    return "ERROR[" + ", ".join(f"{w}:{c}" for w, c in sorted(got)) + "]"


def _unsettled(state: Doc) -> list[str]:
    return sorted(k for entries in state["events"].values() for k, e in entries.items() if e["status"] != "sent")


def _once(first: Run, second: Run, state: Doc) -> str:
    """The next check repeats nothing the first delivered, loses nothing that holds, leaves nothing pending."""
    problems = []
    if repeated := first.delivered & second.delivered:
        problems.append(f"repeated {sorted(repeated)}")
    if lost := second.holding - first.delivered - second.delivered:
        problems.append(f"lost {sorted(lost)}")
    if unsettled := _unsettled(state):
        problems.append(f"unsettled {unsettled}")
    posts = (len(first.posts), len(second.posts))
    if posts != (int(bool(first.delivered)), int(bool(second.delivered))):
        problems.append(f"posts {posts[0]}+{posts[1]}")
    return "; ".join(problems) or "once"


def _recovered(failed: Run, second: Run, third: Run, state: Doc) -> str:
    """What a failed post (or state) held back is posted exactly once by the next checks."""
    if len(second.posts) == 1 and failed.pending <= second.delivered and not third.posts and not _unsettled(state):
        return "1 post after recovery"
    return f"after recovery {len(second.posts)}+{len(third.posts)} posts, unsettled {_unsettled(state)}"


def _row(fault: str, expected: list[str], observed: list[str]) -> None:
    """Add the case to the fault table, then hold observed to expected."""
    exp, obs = " · ".join(expected), " · ".join(observed)
    record_fault(fault, exp, obs)
    assert obs == exp, f"{fault}\n  expected {exp}\n  observed {obs}"
