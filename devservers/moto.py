"""AWS STS and Cost Explorer on 127.0.0.1: ``moto`` in server mode, from its own venv ``.venv-moto``.

moto 5.2.5 (``moto/sts``, ``moto/ce``) speaks AWS's wire shapes: an unsigned form POST
``Action=AssumeRoleWithWebIdentity`` to ``/`` returns STS's XML with temporary credentials; a SigV4
JSON 1.1 POST with ``X-Amz-Target: AWSInsightsIndexService.GetCostAndUsage`` returns what was queued
for the signing account through ``POST /moto-api/static/ce/cost-and-usage-results``
(``{"account_id": ..., "results": [<full response>, ...]}``). moto keys a queued result by the raw
request body: the first new body pops the next result, the same body gets the same result again, so a
client must serialise its request deterministically (and pagination is testable: page 2's body differs
by its ``NextPageToken``). What moto does not do: check signatures or trust policies, send AWS's
``application/x-amz-json-1.1`` content type (it says ``text/html``; `_moto_run.py` restores AWS's type on
the wire, so the product's strict client reads it unchanged), or produce faults.

    with moto_server() as aws:
        load_cost_and_usage(aws, [page1, page2], account_id="111122223333")
        ...                                  # point the client at aws.url
        reset(aws)                           # POST /moto-api/reset: forget everything

The venv is built from ``requirements-moto.txt`` on first use (about a minute) and rebuilt only when
that file changes, like ``.venv-emulators``. ``python -m devservers.moto venv|run`` builds it or runs a
server in the foreground.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devservers._proc import DevServerError, Server, launch, launch_with_port_retry
from devservers.emulator_venv import REPO_ROOT

__all__ = [
    "DEFAULT_ACCOUNT",
    "REQUIREMENTS_FILE",
    "VENV_DIR_NAME",
    "ensure_moto_venv",
    "load_cost_and_usage",
    "moto_server",
    "reset",
    "start_moto",
]

VENV_DIR_NAME = ".venv-moto"
REQUIREMENTS_FILE = "requirements-moto.txt"
DEFAULT_ACCOUNT = "123456789012"  # moto's account for credentials it did not issue (a static key pair)
_MARKER = ".devservers-requirements.sha256"
_RUNNER = Path(__file__).with_name("_moto_run.py")  # moto.server with AWS's JSON 1.1 content type
_SMOKE_IMPORTS = "import moto.server, moto.ce, moto.sts, flask, flask_cors, botocore.auth"


def _say(message: str) -> None:
    print(f"devservers: {message}", file=sys.stderr, flush=True)


def _digest(requirements: Path) -> str:
    try:
        return hashlib.sha256(requirements.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise DevServerError(f"{requirements} is missing: it lists moto and its pinned dependencies") from None


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise DevServerError(f"{what} failed (exit code {proc.returncode}).\ncommand: {' '.join(argv)}\n{tail}")


def ensure_moto_venv(repo_root: Path | None = None, *, python: str | None = None) -> Path:
    """Create or update ``<repo_root>/.venv-moto`` if needed; return its python. One file read when current."""
    root = (repo_root or REPO_ROOT).resolve()
    venv_dir = root / VENV_DIR_NAME
    venv_python = venv_dir / "bin" / "python"
    requirements = root / REQUIREMENTS_FILE
    marker = venv_dir / _MARKER

    def current() -> bool:
        try:
            return marker.read_text(encoding="utf-8").strip() == _digest(requirements) and venv_python.exists()
        except FileNotFoundError:
            return False

    if current():
        return venv_python
    (root / ".run").mkdir(parents=True, exist_ok=True)
    with (root / ".run" / "moto-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if current():
            return venv_python  # another process built it while we waited
        digest = _digest(requirements)
        if venv_dir.exists():
            shutil.rmtree(venv_dir)
        _say(f"creating {venv_dir} and installing {requirements.name} (about a minute)")
        _run([python or sys.executable, "-m", "venv", str(venv_dir)], f"creating {VENV_DIR_NAME}")
        _run(
            [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
             "-r", str(requirements)],
            f"pip install -r {requirements.name}",
        )  # fmt: skip
        _run([str(venv_python), "-c", _SMOKE_IMPORTS], f"importing moto from {VENV_DIR_NAME}")
        marker.write_text(digest + "\n", encoding="utf-8")
    return venv_python


def start_moto(
    port: int = 0, *, repo_root: Path | None = None, log_dir: Path | None = None, timeout: float = 60.0
) -> Server:
    """Start ``moto.server`` on 127.0.0.1:``port`` (0: a free one) and wait until ``/moto-api/`` answers.

    Stop it with ``server.stop()`` (its process group, by PID). Logs go to ``<log_dir>/moto-PORT.log``.
    """
    root = repo_root or REPO_ROOT
    venv_python = ensure_moto_venv(root)
    logs = log_dir or root / ".run"

    def start(chosen: int) -> Server:
        url = f"http://127.0.0.1:{chosen}"
        return launch(
            name="moto",
            argv=[str(venv_python), "-I", str(_RUNNER), "-H", "127.0.0.1", "-p", str(chosen)],
            port=chosen,
            url=url,
            ready_url=f"{url}/moto-api/",
            log_dir=logs,
            timeout=timeout,
            cwd=logs,
        )

    return launch_with_port_retry(start, port)


@contextmanager
def moto_server(port: int = 0, *, repo_root: Path | None = None, log_dir: Path | None = None) -> Iterator[Server]:
    """``start_moto`` as a context manager; stops the server on exit."""
    server = start_moto(port, repo_root=repo_root, log_dir=log_dir)
    try:
        yield server
    finally:
        server.stop()


def _post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10.0) as resp:
        status: int = resp.status
        return status


def load_cost_and_usage(
    server: Server | str, results: Sequence[dict[str, Any]], *, account_id: str = DEFAULT_ACCOUNT
) -> None:
    """Queue full ``GetCostAndUsage`` responses for ``account_id``, served in order to new request bodies."""
    url = server if isinstance(server, str) else server.url
    status = _post(
        f"{url}/moto-api/static/ce/cost-and-usage-results", {"account_id": account_id, "results": list(results)}
    )
    if status != 201:
        raise DevServerError(f"moto refused the Cost Explorer results (HTTP {status})")


def reset(server: Server | str) -> None:
    """Forget every queued result and issued credential (``POST /moto-api/reset``)."""
    _post(f"{server if isinstance(server, str) else server.url}/moto-api/reset", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devservers.moto", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["venv", "run"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "venv":
        print(ensure_moto_venv())
        return 0
    with moto_server(args.port) as server:
        print(json.dumps({"name": "moto", "url": server.url, "pid": server.pid}), flush=True)
        try:
            while server.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
