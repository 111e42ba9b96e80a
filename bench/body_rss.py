"""Peak RSS reading a nested gzip bomb: our bounded reader side by side with a plain httpx read.

    .venv/bin/python bench/body_rss.py            # the table rows; also section 7 of `make bench`
    .venv/bin/python bench/body_rss.py --json     # the rows as JSON (tests/test_deadline.py reads it)

The simulator's `gzip_bomb` fault answers ~2 KB declared `Content-Encoding: gzip, gzip` that decode
to 1 GiB of whitespace (`simulator.faults.BOMB_DECODED_BYTES`). Each reader runs in its own child
process, measured by `_common.run_child` (its own `ru_maxrss`, not the bench's): `request_json` (what
every provider uses: raw stream, one incremental decoder per layer, 16 MiB decoded cap) and
`httpx.Client.get(...).content` (httpx decodes every layer and keeps the whole body). The simulator
runs in this process, so building the bomb (~3 s, streamed) is not in either child's figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[0] = str(ROOT)  # the repo root, not bench/

PATH = "/v1/organization/costs"
TARGET_MB = 150.0
READERS = {"bounded": "request_json", "unbounded": "httpx .content"}


def _child(reader: str, url: str) -> dict[str, Any]:
    """In the measured child: read the bomb once with `reader`, say what happened."""
    import httpx

    from errors import ProviderError
    from models import Deadline
    from providers._http import make_client, request_json

    headers = {"Authorization": "Bearer sk-admin-bench-bomb"}
    try:
        if reader == "bounded":
            with make_client(url, headers=headers) as client:
                request_json(client, "GET", PATH, deadline=Deadline(60))
            outcome = "returned a document"
        else:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                outcome = f"read {len(client.get(PATH).content) / 2**20:.0f} MiB"
    except ProviderError as exc:
        outcome = f"{exc.cause.value}: {exc.message}"
    except MemoryError:
        outcome = "MemoryError"
    return {"outcome": outcome, "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(url: str, only: str | None = None) -> list[dict[str, Any]]:
    """One row per reader: peak RSS of its child and what it ended with (the bomb must be armed)."""
    from bench._common import child_env, run_child

    rows = []
    with tempfile.TemporaryDirectory(prefix="body-rss-") as home:
        for reader, label in READERS.items():
            if only and reader != only:
                continue
            child = run_child(
                [sys.executable, str(Path(__file__).resolve()), "--child", reader, url],
                child_env({"PYTHONPATH": str(ROOT)}, Path(home)),
                cwd=ROOT,
                timeout=240,
            )
            if child.returncode != 0:
                raise RuntimeError(f"{label} reader exited {child.returncode}: {child.stderr[-400:]}")
            doc = child.json()
            rows.append({"reader": label, "peak_rss_mb": round(child.maxrss_mb, 1), "outcome": doc["outcome"]})
    return rows


def run(sim: Any = None) -> Any:
    """Section 7 of `make bench`, against a simulator of its own (the bomb fault stays armed in it)."""
    from bench._common import Figure, Section
    from simulator import Simulator

    sec = Section("7. body size bound")
    with Simulator.start() as own:
        own.add_fault("openai", "gzip_bomb")
        rows = measure(own.url)
    by = {r["reader"]: r for r in rows}
    bounded, plain = by["request_json"], by["httpx .content"]
    for r in rows:
        sec.say(f"{r['reader']:>15}: peak RSS {r['peak_rss_mb']:7.1f} MB, {r['outcome'][:90]}")
    sec.figures.append(
        Figure(
            "7. 1 GiB gzip,gzip bomb: peak RSS (request_json)",
            f"{bounded['peak_rss_mb']:.0f} MB, {bounded['outcome'].split(':')[0]}",
            f"< {TARGET_MB:.0f} MB, classified",
            bounded["peak_rss_mb"] < TARGET_MB and bounded["outcome"].startswith("bad_response"),
            bounded["peak_rss_mb"],
        )
    )
    sec.figures.append(
        Figure(
            "7. same bomb, plain httpx read: peak RSS",
            f"{plain['peak_rss_mb']:.0f} MB ({plain['peak_rss_mb'] / bounded['peak_rss_mb']:.0f}x ours)",
            "-",
            None,
            plain["peak_rss_mb"],
        )
    )
    sec.details["rows"] = rows
    return sec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", choices=sorted(READERS), help="measure one reader only")
    parser.add_argument("--child", nargs=2, metavar=("READER", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    from simulator import Simulator

    with Simulator.start() as sim:
        sim.add_fault("openai", "gzip_bomb")
        rows = measure(sim.url, args.only)
    if args.json:
        print(json.dumps({"rows": rows, "target_mb": TARGET_MB}))
    else:
        for r in rows:
            print(f"{r['reader']:>15}: peak RSS {r['peak_rss_mb']:7.1f} MB  {r['outcome'][:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
