"""3. Cold start: a fresh `python main.py check` process, wall time and peak RSS, median of 5.

(a) OpenAI + Anthropic only (one org each, the peer's scope), keys in env variables, a dry run:
    `main.py check --dry-run --json --now ...` (state is read from a local file, nothing written).
(b) the deployed shape: all four providers, keys and the Slack webhook in Secret Manager (the fake),
    state in fake GCS (`STATE_BACKEND=gcs`), Gemini on the BigQuery emulator, and a real (non-dry)
    run: it claims in GCS, posts to the Slack receiver and confirms. Each run gets its own state
    object, so every run does the same work. This is the representative one; a dry run would skip
    the Slack client and the GCS writes.

Children run in `.venv-runtime` (requirements.txt only, as deployed), not in the dev venv.
Each child is reaped with `os.wait4`, so its peak RSS is its own. One extra run per configuration
under `python -X importtime` gives the import breakdown (not timed: importtime slows imports).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._common import (
    BQ_PROJECT,
    HTTP_SCOPES,
    NOW_ISO,
    PEER_SCOPES,
    ROOT,
    SLACK_SECRET,
    STATE_BUCKET,
    Child,
    Figure,
    Section,
    SimServer,
    budget_doc,
    child_env,
    import_times,
    imported_modules,
    key_env,
    median,
    ms,
    replay_imports,
    run_child,
    runtime_python,
    secrets_for,
)

REPS = 5
RSS_TARGET_MB = 150.0
TOP_IMPORTS = 10


def argv_a(*, importtime: bool = False) -> list[str]:
    x = ["-X", "importtime"] if importtime else []
    return [runtime_python(), *x, "main.py", "check", "--dry-run", "--json", "--now", NOW_ISO]


def env_a(sim: SimServer, workdir: Path) -> dict[str, str]:
    return child_env(
        {
            **sim.env(),
            **key_env(PEER_SCOPES),
            "BUDGET_CONFIG": json.dumps(budget_doc(PEER_SCOPES, keys="env")),
            "STATE_FILE": str(workdir / "cold-a-state.json"),
            "LOG_LEVEL": "WARNING",
        },
        workdir,
    )


def _argv_b(*, importtime: bool = False) -> list[str]:
    x = ["-X", "importtime"] if importtime else []
    return [runtime_python(), *x, "main.py", "check", "--json", "--now", NOW_ISO]


def _env_b(sim: SimServer, workdir: Path, emu: Any, run: str) -> dict[str, str]:
    return child_env(
        {
            **sim.env(),
            "BUDGET_CONFIG": json.dumps(budget_doc(HTTP_SCOPES, keys="secret", gemini=True)),
            "SECRET_MANAGER_EMULATOR_HOST": sim.secrets_url,
            "SLACK_WEBHOOK_SECRET": f"{SLACK_SECRET}/versions/latest",
            "STATE_BACKEND": "gcs",
            "STATE_BUCKET": STATE_BUCKET,
            "STATE_OBJECT": f"bench/cold-b-{run}.json",
            "STORAGE_EMULATOR_HOST": emu.gcs.url,
            "BIGQUERY_EMULATOR_HOST": emu.bq.url,
            "BIGQUERY_JOB_PROJECT": BQ_PROJECT,
            "LOG_LEVEL": "WARNING",
        },
        workdir,
    )


def check_doc(child: Child, *, posted: bool | None = None) -> dict[str, Any]:
    """The child's `--json` document, after making sure the check really ran and every account reported."""
    if child.returncode != 0:
        raise RuntimeError(f"main.py check exited {child.returncode}: {child.stderr[-1500:]}")
    doc: dict[str, Any] = child.json()
    failed = [
        f"{p}/{a['label']}: {a.get('cause')} {a.get('error')}"
        for p, v in doc["providers"].items()
        for a in v["accounts"]
        if a["status"] != "ok"
    ]
    if failed:
        raise RuntimeError(f"main.py check: accounts failed: {failed}")
    if posted is not None and doc["slack"]["posted"] is not posted:
        raise RuntimeError(f"main.py check: slack posted={doc['slack']['posted']}, expected {posted}: {doc['slack']}")
    return doc


def measure(argv: list[str], env_for: Any, *, posted: bool | None) -> list[Child]:
    runs = []
    for i in range(REPS):
        child = run_child(argv, env_for(i), cwd=ROOT)
        check_doc(child, posted=posted)
        runs.append(child)
    return runs


def _say_imports(sec: Section, label: str, stderr: str, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    real = import_times(stderr)
    clean = replay_imports(imported_modules(stderr), env, workdir)
    sec.say(
        f"import time, {label}: {clean.total_ms:.0f} ms for the {len(imported_modules(stderr))} modules the check "
        "imported, re-imported in one thread"
    )
    sec.say("    by package (self ms, one-thread replay)    top-level imports of the real run (cumulative ms)")
    for i in range(TOP_IMPORTS):
        left = clean.by_package[i] if i < len(clean.by_package) else ("", 0.0)
        right = real.top_level[i] if i < len(real.top_level) else ("", 0.0)
        sec.say(f"    {left[1]:6.1f}  {left[0]:<34} {right[1]:6.1f}  {right[0]}")
    return {
        "replay_total_ms": clean.total_ms,
        "by_package_replay": clean.by_package[:25],
        "top_level_real_run": real.top_level[:25],
    }


def run(sim: SimServer, workdir: Path, emu: Any) -> Section:
    sec = Section("3. cold start (fresh process, one check)")
    sec.say(f"interpreter: {Path(runtime_python()).relative_to(ROOT)} (requirements.txt only, as deployed)")

    # (a) ------------------------------------------------------------------------------------------
    ea = env_a(sim, workdir)
    check_doc(run_child(argv_a(), ea, cwd=ROOT))  # warm the page cache and .pyc files
    a = measure(argv_a(), lambda i: ea, posted=False)
    # (b) ------------------------------------------------------------------------------------------
    sim.set_secrets(secrets_for(HTTP_SCOPES, sim.hook_url))
    check_doc(run_child(_argv_b(), _env_b(sim, workdir, emu, "warmup"), cwd=ROOT), posted=True)
    b = measure(_argv_b(), lambda i: _env_b(sim, workdir, emu, str(i)), posted=True)

    stats: dict[str, dict[str, Any]] = {}
    for name, runs in (("a", a), ("b", b)):
        stats[name] = {
            "wall_s": [c.wall_s for c in runs],
            "maxrss_mb": [c.maxrss_mb for c in runs],
            "wall_median_s": median([c.wall_s for c in runs]),
            "maxrss_median_mb": median([c.maxrss_mb for c in runs]),
        }
    sa, sb = stats["a"], stats["b"]
    sec.say("(a) OpenAI + Anthropic (1 org each), keys in env, `main.py check --dry-run --json`, file state")
    sec.say(
        f"    wall {', '.join(ms(w) for w in sa['wall_s'])}; median {ms(sa['wall_median_s'])}; "
        f"peak RSS median {sa['maxrss_median_mb']:.1f} MB"
    )
    sec.say(
        "(b) all four providers, Secret Manager keys + webhook, GCS state, BigQuery emulator, "
        "non-dry `main.py check --json` (claims, posts to the Slack receiver, confirms)"
    )
    sec.say(
        f"    wall {', '.join(ms(w) for w in sb['wall_s'])}; median {ms(sb['wall_median_s'])}; "
        f"peak RSS median {sb['maxrss_median_mb']:.1f} MB"
    )
    ia = run_child(argv_a(importtime=True), ea, cwd=ROOT)
    check_doc(ia)
    ib = run_child(_argv_b(importtime=True), _env_b(sim, workdir, emu, "importtime"), cwd=ROOT)
    check_doc(ib, posted=True)
    imports_a = _say_imports(sec, "(a)", ia.stderr, ea, workdir)
    imports_b = _say_imports(sec, "(b)", ib.stderr, _env_b(sim, workdir, emu, "replay"), workdir)
    sec.details |= {
        "reps": REPS,
        "a": sa,
        "b": sb,
        "importtime_a": imports_a,
        "importtime_b": imports_b,
    }
    sec.figures.append(
        Figure(
            "cold start (a) OpenAI+Anthropic, dry run",
            f"{ms(sa['wall_median_s'])}, {sa['maxrss_median_mb']:.1f} MB",
            value=sa["wall_median_s"],
        )
    )
    sec.figures.append(
        Figure(
            "cold start (b) 4 providers + GCS + SM, posts: peak RSS",
            f"{sb['maxrss_median_mb']:.1f} MB (wall {ms(sb['wall_median_s'])})",
            f"<= {RSS_TARGET_MB:.0f} MB",
            sb["maxrss_median_mb"] <= RSS_TARGET_MB,
            sb["maxrss_median_mb"],
        )
    )
    return sec
