"""Process plumbing shared by the emulator launchers (Linux only: it reads /proc).

Every server runs as the leader of its own process group (``start_new_session=True``), so stopping
it means signalling the whole group: nothing it spawned can survive as an orphan. A stop by PID
alone (the CLI's ``stop``, in another process than the one that started the server) checks the
process start time recorded at launch, so a recycled PID is never signalled.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "DevServerError",
    "Server",
    "free_port",
    "group_members",
    "launch",
    "launch_with_port_retry",
    "log_tail",
    "pid_alive",
    "process_start_ticks",
    "stop_process_group",
]

_TAIL_LINES = 40
# Servers started by this process and not detached: stopped at interpreter exit as a safety net
# (a test run that dies on an exception must not leave emulators behind).
_OWNED: dict[int, Server] = {}


def _stop_owned() -> None:
    for server in list(_OWNED.values()):
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)


atexit.register(_stop_owned)


class DevServerError(RuntimeError):
    """An emulator could not be installed, started or stopped. The message says why and what to do."""

    def __init__(self, message: str, *, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- /proc helpers ---------------------------------------------------------------------------------


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the ``(comm)`` field, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: split after the LAST ')'.
    return raw[raw.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """Start time of PID in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    fields = _read_stat(pid)
    return int(fields[19]) if fields is not None else None


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if PID runs (zombies count as gone) and, when given, was started at ``start_ticks``."""
    fields = _read_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (non-zombie) processes whose process group is ``pgid``."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _read_stat(int(entry.name))
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _group_rss_bytes(pgid: int) -> int:
    total = 0
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_process_group(
    pid: int,
    *,
    start_ticks: int | None = None,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 10.0,
) -> None:
    """Stop the process group led by ``pid``: SIGTERM, wait ``timeout``, then SIGKILL what is left.

    ``proc`` (when this process started the server) is reaped so no zombie is left behind. Without
    it, the leader is only signalled if its start time still matches ``start_ticks``. Idempotent.
    """
    leader_running = proc.poll() is None if proc is not None else pid_alive(pid)
    if proc is None and leader_running and start_ticks is not None and not pid_alive(pid, start_ticks):
        return  # PID recycled by an unrelated process: our server is long gone, and so is its group
    if not leader_running and not group_members(pid):
        if proc is not None:
            proc.wait()
        return

    def gone() -> bool:
        if proc is not None and proc.poll() is None:
            return False
        return not group_members(pid)

    _killpg(pid, signal.SIGTERM)
    if not _wait_until(gone, timeout):
        _killpg(pid, signal.SIGKILL)
        if not _wait_until(gone, 5.0):
            raise DevServerError(f"process group {pid} survived SIGKILL: members {group_members(pid)}")
    if proc is not None:
        proc.wait()


# -- Server ----------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running emulator: ``url`` is what clients connect to; ``stop()`` ends its process group."""

    name: str
    url: str
    port: int
    pid: int
    log_path: Path
    start_ticks: int | None = None
    project: str | None = None
    grpc_port: int | None = None
    startup_seconds: float | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point Google client libraries at this server."""
        key = {"gcs": "STORAGE_EMULATOR_HOST", "bigquery": "BIGQUERY_EMULATOR_HOST"}[self.name]
        return {key: self.url}

    def alive(self) -> bool:
        """True while the server process runs (and is the one that was started)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(self.pid, self.start_ticks)

    def rss_bytes(self) -> int:
        """Resident memory of the server's whole process group, in bytes (0 once stopped)."""
        return _group_rss_bytes(self.pid) if self.alive() else 0

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        stop_process_group(self.pid, start_ticks=self.start_ticks, proc=self._proc, timeout=timeout)
        _OWNED.pop(self.pid, None)

    def detach(self) -> None:
        """Let the server outlive this Python process (the CLI's ``start``); stop it later by PID."""
        _OWNED.pop(self.pid, None)
        self._proc = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (what the CLI stores in devservers.json)."""
        return {
            "name": self.name,
            "url": self.url,
            "port": self.port,
            "pid": self.pid,
            "log_path": str(self.log_path),
            "start_ticks": self.start_ticks,
            "project": self.project,
            "grpc_port": self.grpc_port,
            "startup_seconds": self.startup_seconds,
            "env": self.env,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Server:
        """Rebuild a (detached) Server from ``to_dict()`` output; it can be stopped by PID."""
        return cls(
            name=str(data["name"]),
            url=str(data["url"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            log_path=Path(data["log_path"]),
            start_ticks=None if data.get("start_ticks") is None else int(data["start_ticks"]),
            project=data.get("project"),
            grpc_port=None if data.get("grpc_port") is None else int(data["grpc_port"]),
            startup_seconds=data.get("startup_seconds"),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


_PORT_IN_USE_MARKERS = ("address already in use", "errno 98", "bind: address")


def launch(
    *,
    name: str,
    argv: Sequence[str],
    port: int,
    url: str,
    ready_url: str,
    log_dir: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    project: str | None = None,
    grpc_port: int | None = None,
) -> Server:
    """Start ``argv`` in its own session, logging to ``log_dir/NAME-PORT.log``; wait for ``ready_url``.

    Raises DevServerError (with the log's tail) if the process exits or ``ready_url`` does not
    answer HTTP 200 within ``timeout`` seconds; the process group is stopped first.
    """
    log_dir = log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            env=env,
        )
    server = Server(
        name=name,
        url=url,
        port=port,
        pid=proc.pid,
        log_path=log_path,
        start_ticks=process_start_ticks(proc.pid),
        project=project,
        grpc_port=grpc_port,
        _proc=proc,
    )
    _OWNED[proc.pid] = server
    deadline = started + timeout
    while True:
        if _http_ok(ready_url):
            server.startup_seconds = round(time.monotonic() - started, 3)
            return server
        exit_code = proc.poll()
        if exit_code is not None or time.monotonic() >= deadline:
            server.stop(timeout=5.0)
            tail = log_tail(log_path)
            what = (
                f"exited with code {exit_code}"
                if exit_code is not None
                else f"did not answer {ready_url} within {timeout:.0f} s"
            )
            raise DevServerError(
                f"{name} emulator {what}.\ncommand: {' '.join(argv)}\nlast lines of {log_path}:\n{tail or '(empty)'}",
                port_in_use=any(marker in tail.lower() for marker in _PORT_IN_USE_MARKERS),
            )
        time.sleep(0.05)


def launch_with_port_retry(
    start: Callable[[int], Server],
    requested_port: int,
    attempts: int = 3,
) -> Server:
    """Call ``start(port)``; when the port was picked here (``requested_port == 0``) and another
    process grabbed it between the pick and the bind, retry with a fresh port."""
    for attempt in range(attempts):
        port = requested_port or free_port()
        try:
            return start(port)
        except DevServerError as exc:
            if requested_port or not exc.port_in_use or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
