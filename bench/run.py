"""`make bench`: every benchmark of issue 7 in one run, then one table (figure, measured, target, holds?).

    .venv/bin/python bench/run.py          # what `make bench` runs; ~2 minutes on 2 cores

Starts every server it needs itself (the simulator as a child process, fake GCS and the BigQuery
emulator through devservers) and stops each by PID in `finally`, even when a benchmark fails. Only
127.0.0.1 is ever contacted. The table is also written to bench/results/latest.json (gitignored).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the repo root, not bench/: production modules and `bench.*` by their names

from bench import body_rss, coldstart, gemini_cost, latency, peer, request_counts, scale  # noqa: E402
from bench._common import NOW_ISO, RESULTS_DIR, Figure, Section, SimServer, guard_loopback  # noqa: E402
from bench._google import google_emulators  # noqa: E402

ORDER = ("1.", "2.", "3.", "4.", "5.", "6.", "7.")


def _section(number: str, title: str, fn: Callable[[], Section]) -> Section:
    print(f"\n== {number} {title} ==", flush=True)
    started = time.perf_counter()
    try:
        sec = fn()
    except Exception as exc:  # one failing benchmark must not hide the others' figures
        traceback.print_exc()
        sec = Section(f"{number} {title}", error=f"{type(exc).__name__}: {exc}")
        sec.figures.append(Figure(f"{number} {title}", f"FAILED: {type(exc).__name__}: {str(exc)[:60]}", "runs", False))
    sec.details["elapsed_s"] = round(time.perf_counter() - started, 1)
    return sec


def _table(figures: list[Figure]) -> str:
    head = ("figure", "measured", "target", "holds?")
    rows = [head] + [(f.figure, f.measured, f.target, f.verdict()) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line]
    for n, r in enumerate(rows):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if n == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def main() -> int:
    import logs

    guard_loopback()
    logs.setup("WARNING")  # the production code's JSON log lines: warnings and errors only
    started = time.perf_counter()
    sections: list[Section] = []
    print(f"llm-budget-alert benchmarks: clock {NOW_ISO}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    sections.append(_section("5.", "scale", scale.run))
    sections.append(_section("7.", "body size bound", body_rss.run))  # a simulator of its own (the bomb)
    with tempfile.TemporaryDirectory(prefix="llm-budget-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        try:
            sim = stack.enter_context(SimServer(workdir, clock=NOW_ISO, secrets={}))
            emu = stack.enter_context(google_emulators(workdir))
        except Exception as exc:
            traceback.print_exc()
            print(f"servers did not start: {exc}", file=sys.stderr)
            return 2
        print(
            f"servers: simulator {sim.url} (pid {sim.ready.get('pid')}), fake GCS {emu.gcs.url}, "
            f"BigQuery emulator {emu.bq.url}; up in " + ", ".join(f"{k} {v:.1f} s" for k, v in emu.startup_s.items()),
            flush=True,
        )
        sections.append(_section("1.", "latency vs the physical limit", lambda: latency.run(sim, workdir, emu)))
        sections.append(_section("2.", "requests per check", lambda: request_counts.run(sim, workdir, emu)))
        sections.append(_section("3.", "cold start", lambda: coldstart.run(sim, workdir, emu)))
        sections.append(_section("4.", "side by side with the peer", lambda: peer.run(sim, workdir)))
        sections.append(_section("6.", "Gemini query cost", lambda: gemini_cost.run(emu)))
    # ExitStack has stopped the emulators and the simulator here, also on an exception above.

    sections.sort(key=lambda s: ORDER.index(s.title[:2]) if s.title[:2] in ORDER else 99)
    figures = [f for s in sections for f in s.figures]
    elapsed = time.perf_counter() - started
    held = [f for f in figures if f.holds is not None]
    print("\n" + _table(figures))
    print(
        f"targets holding: {sum(1 for f in held if f.holds)} of {len(held)}; "
        f"whole run {elapsed:.0f} s; JSON: {RESULTS_DIR.relative_to(ROOT)}/latest.json"
    )

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "clock": NOW_ISO,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "elapsed_s": round(elapsed, 1),
        "table": [
            {"figure": f.figure, "measured": f.measured, "target": f.target, "holds": f.holds, "value": f.value}
            for f in figures
        ],
        "sections": [{"title": s.title, "error": s.error, "lines": s.lines, "details": s.details} for s in sections],
    }
    (RESULTS_DIR / "latest.json").write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
