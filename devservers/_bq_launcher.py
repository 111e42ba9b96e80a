"""Start bqemulator offline. Runs INSIDE .venv-emulators, as ``python -I _bq_launcher.py start ...``.

At start bqemulator runs ``INSTALL spatial`` / ``INSTALL avro``, which download DuckDB extensions
and, with no route to the extension repository, kill the server (spatial is mandatory). The
project needs neither GEOGRAPHY nor Avro, so both loaders become no-ops before the CLI runs; all
other arguments go to ``bqemulator`` unchanged. Standard library only on the project side: this
file must import nothing from the project (``-I`` keeps the project off sys.path).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def _skip_extension(self: object) -> None:
    """Stand-in for DuckDBEngine._load_spatial / _load_format_extensions: load nothing."""


def main(argv: list[str]) -> None:
    """Patch the extension loaders, then hand ``argv`` to bqemulator's click CLI (never returns)."""
    engine: Any = importlib.import_module("bqemulator.storage.engine")
    for name in ("_load_spatial", "_load_format_extensions"):
        if not hasattr(engine.DuckDBEngine, name):
            sys.exit(f"bqemulator changed: DuckDBEngine.{name} is gone; update devservers/_bq_launcher.py")
        setattr(engine.DuckDBEngine, name, _skip_extension)
    cli: Any = importlib.import_module("bqemulator.cli")
    cli.main(args=argv, prog_name="bqemulator")


if __name__ == "__main__":
    main(sys.argv[1:])
