"""Command line for the Makefile demo and ``.ci/run``.

    python -m devservers venv   [--force] [--python PY]   build/update .venv-emulators only
    python -m devservers start  [gcs] [bigquery] [--state-dir .run] [--project demo-project]
                                [--gcs-port N] [--bigquery-port N] [--bucket NAME ...]
    python -m devservers env    [--state-dir .run]        `export ...` lines for a shell: eval "$(...)"
    python -m devservers status [--state-dir .run]        JSON; exit 1 if a recorded server is down
    python -m devservers stop   [--state-dir .run]        stop every recorded server (idempotent)

``start`` leaves the servers running in the background (own sessions, logs in the state dir) and
records them in ``<state-dir>/devservers.json``; a server already recorded and alive is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from devservers._proc import DevServerError, Server
from devservers.bigquery import DEFAULT_PROJECT, start_bigquery
from devservers.emulator_venv import REPO_ROOT, ensure_emulator_venv
from devservers.gcs import create_bucket, start_gcs

__all__ = ["STATE_FILE", "load_state", "main"]

STATE_FILE = "devservers.json"
_KINDS = ("gcs", "bigquery")


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> dict[str, Server]:
    """Servers recorded in ``<state_dir>/devservers.json`` (empty if none)."""
    try:
        data: dict[str, Any] = json.loads(_state_path(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise DevServerError(f"{_state_path(state_dir)} is not valid JSON ({exc}): stop the servers by hand") from exc
    return {name: Server.from_dict(entry) for name, entry in data.get("servers", {}).items()}


def _save_state(state_dir: Path, servers: dict[str, Server]) -> None:
    path = _state_path(state_dir)
    if not servers:
        path.unlink(missing_ok=True)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    payload = {"servers": {name: server.to_dict() for name, server in servers.items()}}
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _describe(server: Server) -> str:
    extra = f", project {server.project}" if server.project else ""
    took = f", up in {server.startup_seconds:.1f} s" if server.startup_seconds is not None else ""
    return f"{server.name}: {server.url} (pid {server.pid}{extra}{took}; log {server.log_path})"


def _cmd_start(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    kinds = list(dict.fromkeys(args.servers or _KINDS))
    servers = load_state(state_dir)
    started: list[Server] = []
    complete = False
    try:
        for kind in kinds:
            current = servers.get(kind)
            if current is not None and current.alive():
                print(f"already running: {_describe(current)}")
                continue
            if kind == "gcs":
                server = start_gcs(args.gcs_port, log_dir=state_dir, timeout=args.timeout)
            else:
                server = start_bigquery(args.project, args.bigquery_port, log_dir=state_dir, timeout=args.timeout)
            server.detach()  # keeps running after this command exits; `stop` ends it by PID
            started.append(server)
            servers[kind] = server
            _save_state(state_dir, servers)
            print(f"started: {_describe(server)}")
        if args.bucket:
            gcs = servers.get("gcs")
            if gcs is None:
                raise DevServerError("--bucket needs the gcs server: add `gcs` to the servers to start")
            for bucket in args.bucket:
                create_bucket(gcs, bucket)
                print(f"bucket: gs://{bucket} on {gcs.url}")
        complete = True
    except DevServerError as exc:
        print(f"devservers: start failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not complete:  # leave nothing half-started behind
            for server in started:
                server.stop()
                servers.pop(server.name, None)
            _save_state(state_dir, servers)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    servers = load_state(state_dir)
    failed = False
    for name in list(servers):
        server = servers[name]
        try:
            server.stop()
        except DevServerError as exc:
            print(f"devservers: could not stop {name}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"stopped: {name} (pid {server.pid})")
        del servers[name]
    _save_state(state_dir, servers)
    return 1 if failed else 0


def _cmd_env(args: argparse.Namespace) -> int:
    servers = load_state(args.state_dir)
    alive = {name: server for name, server in servers.items() if server.alive()}
    if not alive:
        print(f"devservers: no running server recorded in {args.state_dir}: run `start` first", file=sys.stderr)
        return 1
    for name in _KINDS:
        if name in alive:
            for key, value in alive[name].env.items():
                print(f"export {key}={shlex.quote(value)}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    servers = load_state(args.state_dir)
    report = {name: {**server.to_dict(), "alive": server.alive()} for name, server in servers.items()}
    print(json.dumps(report, indent=2))
    return 0 if all(entry["alive"] for entry in report.values()) else 1


def _cmd_venv(args: argparse.Namespace) -> int:
    print(ensure_emulator_venv(python=args.python, force=args.force))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devservers", description="Local Google emulators.")
    sub = parser.add_subparsers(dest="command", required=True)
    default_state = REPO_ROOT / ".run"

    def with_state(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--state-dir", type=Path, default=default_state, help="state + logs (default: .run)")
        return p

    start = with_state(sub.add_parser("start", help="start emulators in the background"))
    start.add_argument("servers", nargs="*", metavar="{gcs,bigquery}", help="default: both")
    start.add_argument("--project", default=DEFAULT_PROJECT, help="BigQuery default project")
    start.add_argument("--gcs-port", type=int, default=0, help="default: a free port")
    start.add_argument("--bigquery-port", type=int, default=0, help="REST port; default: a free port")
    start.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each server")
    start.set_defaults(func=_cmd_start)
    with_state(sub.add_parser("stop", help="stop every recorded server")).set_defaults(func=_cmd_stop)
    with_state(sub.add_parser("env", help="print export lines for the clients")).set_defaults(func=_cmd_env)
    with_state(sub.add_parser("status", help="JSON status of recorded servers")).set_defaults(func=_cmd_status)
    venv = sub.add_parser("venv", help="create/update .venv-emulators")
    venv.add_argument("--force", action="store_true", help="rebuild from scratch")
    venv.add_argument("--python", default=None, help="interpreter to build it with (>= 3.11; default: this one)")
    venv.set_defaults(func=_cmd_venv)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in getattr(args, "servers", []) if name not in _KINDS]
    if unknown:
        parser.error(f"unknown server {', '.join(unknown)}: choose from {', '.join(_KINDS)}")
    try:
        code: int = args.func(args)
    except DevServerError as exc:
        print(f"devservers: {exc}", file=sys.stderr)
        return 1
    return code
