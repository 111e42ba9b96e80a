"""What every benchmark shares: the instant, the accounts, the simulator process, child-process timing.

The simulator (providers + Slack receiver + Secret Manager fake) runs as its own process
(`python -m simulator serve --ready-file`), so its request handling never competes with the check
under test for this process's GIL; the bench drives it through its JSON control API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

# The last hour of a 31-day month: a month of daily buckets is exactly 31, the page limit of both
# OpenAI and Anthropic, so "one request per account" is tested at its edge.
NOW = dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)
NOW_ISO = "2026-12-31T23:00:00Z"
LATENCY_MS = 250.0

BQ_PROJECT = "bench-project"
EXPORT_TABLE = f"{BQ_PROJECT}.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
STATE_BUCKET = "bench-alert-state"
SECRET_PROJECT = "bench-project"

# Scopes of the bundled demo scenario (simulator/scenarios/demo.json).
HTTP_SCOPES: tuple[str, ...] = ("openai/prod", "openai/research", "anthropic/main", "xai/core")
PEER_SCOPES: tuple[str, ...] = ("openai/prod", "anthropic/main")  # the peer reads one org of each
BUDGETS_USD: Mapping[str, int] = {"openai": 9000, "anthropic": 5000, "xai": 1000, "gemini": 2000}
TOTAL_BUDGET_USD = 16000


# --- the figures the final table prints -----------------------------------------------------------


@dataclasses.dataclass
class Figure:
    """One row of the final table. `holds` is None for a figure without a target."""

    figure: str
    measured: str
    target: str = "-"
    holds: bool | None = None
    value: float | None = None

    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.holds]


@dataclasses.dataclass
class Section:
    """A benchmark's output: detail lines printed above the table, figures for the table, JSON details."""

    title: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    lines: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(f"  {text}" if text else "", flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --- safety: loopback only ------------------------------------------------------------------------


def guard_loopback() -> None:
    """Refuse any TCP connection from this process that does not go to 127.0.0.0/8 or ::1."""
    from simulator.loopback import guarded_connect

    connect = guarded_connect("bench tried to reach {host}: benchmarks use 127.0.0.1 only")
    socket.socket.connect = connect  # type: ignore[method-assign]
    # google-auth's metadata-server probe would otherwise aim at 169.254.169.254.
    os.environ.update(LOOPBACK_GOOGLE_ENV)


LOOPBACK_GOOGLE_ENV: Mapping[str, str] = {
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "NO_GCE_CHECK": "True",
}


# --- the scenario's accounts ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SimAccount:
    scope: str
    provider: str
    label: str
    key: str
    team_id: str | None

    @property
    def key_env(self) -> str:
        return f"BENCH_{self.provider.upper()}_{self.label.upper()}_KEY"

    @property
    def secret(self) -> str:
        return f"projects/{SECRET_PROJECT}/secrets/{self.provider}-{self.label}-admin-key"


def demo_accounts() -> dict[str, SimAccount]:
    from simulator import Scenario

    return {a.scope: SimAccount(a.scope, a.provider, a.label, a.key, a.team_id) for a in Scenario.load().accounts}


SLACK_SECRET = f"projects/{SECRET_PROJECT}/secrets/slack-webhook"


def secrets_for(scopes: Sequence[str], hook_url: str) -> dict[str, str]:
    """Secret Manager contents: each account's key, and the Slack webhook URL."""
    accounts = demo_accounts()
    return {**{accounts[s].secret: accounts[s].key for s in scopes}, SLACK_SECRET: hook_url}


def budget_doc(scopes: Sequence[str], *, keys: str, gemini: bool = False) -> dict[str, Any]:
    """The budget document for `scopes` (+ Gemini); keys from env variables or Secret Manager."""
    accounts = demo_accounts()
    providers: dict[str, Any] = {}
    for scope in scopes:
        acc = accounts[scope]
        entry: dict[str, Any] = {"label": acc.label}
        if keys == "env":
            entry["key_env"] = acc.key_env
        else:
            entry["key_secret"] = f"{acc.secret}/versions/latest"
        if acc.team_id:
            entry["team_id"] = acc.team_id
        providers.setdefault(acc.provider, {"budget_usd": BUDGETS_USD[acc.provider], "accounts": []})
        providers[acc.provider]["accounts"].append(entry)
    if gemini:
        providers["gemini"] = {
            "budget_usd": BUDGETS_USD["gemini"],
            "accounts": [{"label": "billing", "billing_export_table": EXPORT_TABLE}],
        }
    return {"total_budget_usd": TOTAL_BUDGET_USD, "providers": providers}


def key_env(scopes: Sequence[str]) -> dict[str, str]:
    accounts = demo_accounts()
    return {accounts[s].key_env: accounts[s].key for s in scopes}


def expected_mtd(scope: str, now: dt.datetime = NOW) -> Any:
    from simulator import Scenario

    return Scenario.load().expected_mtd(scope, now=now)


# --- the simulator process ------------------------------------------------------------------------


class SimServer:
    """`python -m simulator serve` with providers, Slack and Secret Manager, started and stopped by PID."""

    def __init__(self, workdir: Path, *, clock: str, secrets: Mapping[str, str]) -> None:
        self._workdir = workdir
        self._clock = clock
        self._secrets = dict(secrets)
        self._proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def start(self, timeout: float = 20.0) -> SimServer:
        secrets_file = self._workdir / "secrets.json"
        secrets_file.write_text(json.dumps(self._secrets), encoding="utf-8")
        ready_file = self._workdir / "simulator.ready.json"
        log = (self._workdir / "simulator.log").open("wb")
        argv = [
            sys.executable, "-m", "simulator", "serve", "--port", "0", "--slack-port", "0",
            "--secrets-port", "0", "--secrets-file", str(secrets_file), "--clock", self._clock,
            "--ready-file", str(ready_file),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self._workdir / "simulator.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"simulator did not start:\n{tail}")
            time.sleep(0.02)
        self.ready = json.loads(ready_file.read_text(encoding="utf-8"))
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM to our own child's PID; `serve` exits 0 on it
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return str(self.ready["providers_url"])

    @property
    def hook_url(self) -> str:
        return str(self.ready["slack_url"])

    @property
    def slack_base(self) -> str:
        return f"http://127.0.0.1:{self.ready['slack_port']}"

    @property
    def secrets_url(self) -> str:
        return str(self.ready["secrets_url"])

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.url, "ANTHROPIC_BASE_URL": self.url, "XAI_MANAGEMENT_BASE_URL": self.url}

    # --- control API ---------------------------------------------------------------------------------

    def set_latency(self, ms_: float) -> None:
        call("POST", f"{self.url}/_sim/latency", {"ms": ms_})
        call("POST", f"{self.slack_base}/_slack/latency", {"ms": ms_})

    def requests(self) -> list[dict[str, Any]]:
        return list(call("GET", f"{self.url}/_sim/requests")["requests"])

    def clear_requests(self) -> None:
        call("DELETE", f"{self.url}/_sim/requests")

    def slack_messages(self) -> list[Any]:
        return list(call("GET", f"{self.slack_base}/_slack/messages").get("messages", []))

    def slack_snapshot(self) -> dict[str, Any]:
        return dict(call("GET", f"{self.slack_base}/_slack/messages"))

    def clear_slack(self) -> None:
        call("DELETE", f"{self.slack_base}/_slack/messages")

    def set_secrets(self, secrets: Mapping[str, str]) -> None:
        call("POST", f"{self.secrets_url}/_sm/secrets", dict(secrets))

    def sm_requests(self) -> list[dict[str, Any]]:
        return list(call("GET", f"{self.secrets_url}/_sm/requests")["requests"])

    def clear_sm_requests(self) -> None:
        call("DELETE", f"{self.secrets_url}/_sm/requests")


def call(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


# --- child processes: wall time and peak RSS of exactly one child ---------------------------------


@dataclasses.dataclass
class Child:
    wall_s: float
    cpu_s: float  # user + system
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


# A tiny parent for each measured process. The child of a fork starts with its parent's resident
# pages, and ru_maxrss is a high-water mark: a child forked straight from this (large) bench process
# would report the bench's RSS. Forked from this wrapper instead (~10 MB, less than any check), the
# child's peak is its own. `os.wait4` gives that one child's rusage (RUSAGE_CHILDREN would be the
# maximum over every child ever reaped), and the wall time is taken around fork/exec/wait.
_WRAPPER = """
import json, os, signal, sys, time
out, limit, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(limit)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(out, "w") as f:
    json.dump({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
               "exit": os.waitstatus_to_exitcode(status)}, f)
"""


def run_child(argv: Sequence[str], env: Mapping[str, str], *, cwd: Path, timeout: int = 60) -> Child:
    """Run `argv` (argv[0] an absolute path) under the wrapper; its own wall time and peak RSS.

    Output goes to temporary files, so a chatty child can never block on a full pipe.
    """
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        result = Path(tmp) / "rusage.json"
        wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, str(result), str(timeout), *argv]
        proc = subprocess.run(
            wrapper, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout + 15
        )
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"measuring {argv[:3]} failed (wrapper exit {proc.returncode}): {stderr[-800:]}")
        usage = json.loads(result.read_text(encoding="utf-8"))
    return Child(
        wall_s=float(usage["wall_s"]),
        cpu_s=float(usage["cpu_s"]),
        maxrss_mb=int(usage["maxrss_kb"]) / 1024,  # KiB on Linux
        returncode=int(usage["exit"]),
        stdout=stdout,
        stderr=stderr,
    )


def child_env(extra: Mapping[str, str], home: Path) -> dict[str, str]:
    """A small, explicit environment: nothing of the caller's leaks into a measured child."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **LOOPBACK_GOOGLE_ENV,
        **extra,
    }


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "google" and len(parts) > 2 and parts[1] == "cloud":
        return ".".join(parts[:3])
    return ".".join(parts[:2]) if parts[0] in ("google", "providers", "alerts") else parts[0]


@dataclasses.dataclass
class ImportTimes:
    """`python -X importtime` output, read two ways.

    `top_level`: imports no other import pulled in, with cumulative ms. `by_package`: every module's
    self time summed per package. Imports made in worker threads (the check fetches in threads, and
    the Google clients are imported there) nest under whatever the main thread is importing at that
    moment, and their times are wall times that include the other threads' work: so the cumulative
    view misses them and the self times inflate. `replay_imports` re-imports the same modules in one
    thread to get clean per-package times.
    """

    top_level: list[tuple[str, float]]
    by_package: list[tuple[str, float]]
    total_ms: float


def import_times(stderr: str) -> ImportTimes:
    top: list[tuple[str, float]] = []
    packages: dict[str, float] = {}
    total = 0.0
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        self_ms, name = int(m.group(1)) / 1000, m.group(4)
        total += self_ms
        packages[_package(name)] = packages.get(_package(name), 0.0) + self_ms
        if not m.group(3):
            top.append((name, int(m.group(2)) / 1000))
    return ImportTimes(
        top_level=sorted(top, key=lambda r: -r[1]),
        by_package=sorted(packages.items(), key=lambda r: -r[1]),
        total_ms=total,
    )


def imported_modules(stderr: str) -> list[str]:
    """Every module an `-X importtime` run imported, in the order their imports finished."""
    return [m.group(4) for m in map(_IMPORT_LINE.match, stderr.splitlines()) if m]


# `__import__`, not importlib.import_module: -X importtime times the import statement's C path only.
_REPLAY = """
import sys
sys.path.insert(0, sys.argv[1])
for name in open(sys.argv[2]).read().split():
    if name not in sys.modules:
        try:
            __import__(name)
        except Exception:
            pass
"""


def replay_imports(modules: Sequence[str], env: Mapping[str, str], workdir: Path) -> ImportTimes:
    """Import `modules` again, in order, in one thread of a fresh process, under `-X importtime`."""
    listing = workdir / "replay-modules.txt"
    listing.write_text("\n".join(modules), encoding="utf-8")
    argv = [runtime_python(), "-X", "importtime", "-c", _REPLAY, str(ROOT), str(listing)]
    child = run_child(argv, env, cwd=ROOT)
    return import_times(child.stderr)


RUNTIME_VENV = ROOT / ".venv-runtime"
_RUNTIME_MARKER = "requirements.sha256"


@functools.cache
def runtime_python() -> str:
    """The interpreter of `.venv-runtime`: `requirements.txt` only, what Cloud Build installs.

    Every `main.py` child whose time or memory is reported runs here, not in the dev venv: pytest,
    mypy and hypothesis are never deployed, and they change what the check imports (with Pygments
    installed, `import httpx` also loads its CLI's Pygments lexers, ~9 ms). Built with the running
    interpreter when missing or when `requirements.txt` changed (a marker holds its SHA-256).
    """
    py = RUNTIME_VENV / "bin" / "python"
    requirements = ROOT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker = RUNTIME_VENV / _RUNTIME_MARKER
    if py.exists() and marker.exists() and marker.read_text(encoding="utf-8").strip() == digest:
        return str(py)
    print(f"bench: building {RUNTIME_VENV.name}/ from {requirements.name} (once, about 20 s)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(RUNTIME_VENV)], check=True, timeout=300)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements.name} into {RUNTIME_VENV.name} failed: {done.stderr[-800:]}")
    marker.write_text(digest + "\n", encoding="utf-8")
    return str(py)


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)
