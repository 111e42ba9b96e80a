"""requirements.txt is the complete, hash-pinned closure of requirements.in, and installs as deployed.

Cloud Build installs the function from requirements.txt alone: the Python buildpack runs
`python3 -m pip install --requirement requirements.txt --upgrade --upgrade-strategy only-if-needed
--force-reinstall ...` (GoogleCloudPlatform/buildpacks, pkg/python/python.go, InstallRequirements),
and from Python 3.14 `uv pip install --requirement requirements.txt` (pkg/python/requirements.go;
cloud.google.com/run/docs/runtimes/python-dependencies). Both verify `--hash` lines; pip switches to
hash-checking mode as soon as one requirement carries a hash, so every line must. The offline tests
below check the file's shape and that it covers what the direct dependencies declare; the `pypi`
test installs it exactly as a build would see it, without dependency resolution, in a clean venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import venv
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$")


def _locked(path: Path) -> dict[str, tuple[str, str | None, int]]:
    """{canonical name: (version, marker, number of hashes)} of a uv/pip-compile lock file."""
    out: dict[str, tuple[str, str | None, int]] = {}
    current: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash=sha256:"):
            assert current is not None, f"{path.name}: hash before any requirement"
            version, marker, hashes = out[current]
            out[current] = (version, marker, hashes + 1)
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {raw!r}"
        current = canonicalize_name(match["name"])
        assert current not in out, f"{path.name}: {current} pinned twice"
        out[current] = (match["version"], match["marker"], 0)
    return out


def _inputs(path: Path) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines of a *.in file."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: pin {req.name} exactly"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


RUNTIME = _locked(REPO / "requirements.txt")
DEV = _locked(REPO / "requirements-dev.txt")


def test_every_locked_requirement_is_pinned_with_hashes() -> None:
    """Each line of both lock files is `name==version` followed by at least one sha256 hash."""
    for name, locked in (("requirements.txt", RUNTIME), ("requirements-dev.txt", DEV)):
        assert locked, name
        unhashed = sorted(n for n, (_, _, hashes) in locked.items() if hashes == 0)
        assert not unhashed, f"{name}: pip's hash-checking mode rejects the whole file: {unhashed}"


def test_lock_holds_the_inputs_at_their_pins_and_tzdata() -> None:
    """Every requirements.in pin is in requirements.txt at that version; tzdata is among them."""
    inputs = _inputs(REPO / "requirements.in")
    assert "tzdata" in inputs, "zoneinfo needs the IANA database where the image has none"
    assert {n: RUNTIME[n][0] for n in inputs if n in RUNTIME} == inputs
    assert set(inputs) <= set(RUNTIME)


def test_dev_lock_uses_the_runtime_versions() -> None:
    """requirements-dev.txt holds every runtime pin at the same version and marker (it is constrained to it)."""
    assert {n: DEV.get(n, ("missing",))[:2] for n in RUNTIME} == {n: v[:2] for n, v in RUNTIME.items()}
    assert set(_inputs(REPO / "requirements-dev.in")) <= set(DEV)


def _closure(roots: list[str]) -> dict[str, set[str]]:
    """{dependency: {who requires it}} of `roots` in this interpreter's environment, markers evaluated."""
    env = default_environment()
    seen: dict[str, set[str]] = {}
    todo = [(r, "requirements.in") for r in roots]
    while todo:
        name, parent = todo.pop()
        first = name not in seen
        seen.setdefault(name, set()).add(parent)
        if not first:
            continue
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append((canonicalize_name(req.name), name))
    return seen


def test_lock_covers_every_installed_dependency_of_the_inputs() -> None:
    """Walking the installed metadata from requirements.in reaches no package the lock leaves out."""
    inputs = list(_inputs(REPO / "requirements.in"))
    missing_here = [n for n in inputs if n != "tzdata" and not _installed(n)]
    if missing_here:
        pytest.skip(f"this venv lacks {missing_here}: rebuild it from requirements-dev.txt")
    closure = _closure([n for n in inputs if _installed(n)])
    outside = {dep: sorted(by) for dep, by in closure.items() if dep not in RUNTIME}
    assert not outside, f"required but not locked (run bash scripts/lock_requirements.sh): {outside}"


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.pypi
def test_clean_no_deps_install_of_the_lock_passes_pip_check(tmp_path: Path) -> None:
    """A fresh venv takes requirements.txt with --no-deps --require-hashes; pip check and the imports pass."""
    target = tmp_path / "runtime"
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    python = str(target / "bin" / "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args], cwd=REPO, capture_output=True, text=True, timeout=540, env={**env, **extra_env}
        )

    # --only-binary: the deploy must not depend on a compiler; pip's wheel cache keeps reruns fast.
    install = run(
        "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--only-binary", ":all:",
        "--requirement", str(REPO / "requirements.txt"),
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    check = run("-m", "pip", "check")
    assert check.returncode == 0, f"the lock is not a consistent closure:\n{check.stdout}{check.stderr}"

    # The deployed entry point imports with nothing but the lock, and zoneinfo finds the Pacific
    # zone in tzdata even where the system has no zone files (PYTHONTZPATH points at an empty dir).
    empty = tmp_path / "no-zoneinfo"
    empty.mkdir()
    probe = run(
        "-c",
        "import zoneinfo, main, check; print(zoneinfo.ZoneInfo('America/Los_Angeles').key)",
        PYTHONTZPATH=str(empty),
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "America/Los_Angeles"
