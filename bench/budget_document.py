"""Budget-document parsing scales linearly, and every malformed document is refused quickly.

    .venv/bin/python -m bench.budget_document

Prints, for `config.parse_budget_config` (the path `Settings.from_env` takes): valid documents of
10k/20k/40k accounts (and the same with one label repeated, the duplicate check) with the time per
account, which stays flat when the work is linear; then the malformed shapes of issue 11.8 — a
10 MB document, 1 MiB of nesting, 1 MiB of unterminated escaped quotes — each with its time and the
first words of its error. Wall time of one call, best of 3; nothing here is asserted.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import ConfigError, parse_budget_config


def _accounts(n: int, *, repeat: bool) -> str:
    labels = [f"a{i:06d}" for i in range(n)]
    if repeat:
        labels[-1] = labels[0]
    accounts = [{"label": x} for x in labels]
    return json.dumps(
        {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 5, "accounts": accounts}}},
        separators=(",", ":"),
    )


def _best(fn: Callable[[], str]) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(3):
        started = time.perf_counter()
        outcome = fn()
        best = min(best, time.perf_counter() - started)
    return best, outcome


def _parse(doc: str | bytes) -> Callable[[], str]:
    def run() -> str:
        try:
            parse_budget_config(doc, origin="BUDGET_CONFIG")
        except ConfigError as exc:
            return str(exc).replace("\n", " ")[:90]
        return "valid"

    return run


def main() -> None:
    print(f"{'document':<44} {'bytes':>11} {'seconds':>8} {'µs/account':>10}  outcome")
    for repeat in (False, True):
        for n in (10_000, 20_000, 40_000):
            doc = _accounts(n, repeat=repeat)
            seconds, outcome = _best(_parse(doc))
            name = f"{n:,} accounts" + (", one label twice" if repeat else "")
            print(f"{name:<44} {len(doc):>11,} {seconds:>8.3f} {seconds / n * 1e6:>10.1f}  {outcome}")
    malformed = {
        "10 MB document (env var)": " " * 10_000_000 + "{}",
        "10 MB document (file bytes)": (" " * 10_000_000 + "{}").encode(),
        "1 MiB of [ (nesting)": "[" * (1024 * 1024 - 1),
        'unterminated "\\ repeated to 1 MiB': '"\\' * (512 * 1024 - 1),
        "1 MiB flat list of empty lists": "[" + "[]," * 349_000 + "[]]",
    }
    for name, doc in malformed.items():
        seconds, outcome = _best(_parse(doc))
        print(f"{name:<44} {len(doc):>11,} {seconds:>8.3f} {'':>10}  {outcome}")


if __name__ == "__main__":
    main()
