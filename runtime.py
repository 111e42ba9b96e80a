"""What lives as long as the process, behind one object with a public reset.

`PROCESS` holds the secret cache (a warm instance reads each secret once), whether logging is set
up, and the clock. It lives outside `main.py`, so the copy of `main` that functions-framework
loads afresh shares it, and tests start "a fresh process" with `PROCESS.reset(...)` instead of
patching module globals.

Other process-wide caches stay where they are, each immutable or only ever growing: the
redaction set (`logs.register_secret`), the BigQuery clients a provider keeps per (project, endpoint)
and the TLS context (`providers._http`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import logs
from config import SecretResolver, Settings

__all__ = ["PROCESS", "Process"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Process:
    """The secret cache, the logging flag and the clock of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: SecretResolver | None = None
        self._logging_ready = False
        self._clock: Callable[[], dt.datetime] = _utc_now

    def secrets(self, settings: Settings) -> SecretResolver:
        """One resolver per process, so each secret is read from Secret Manager once."""
        with self._lock:
            if self._secrets is None:
                self._secrets = SecretResolver(emulator_host=settings.secret_manager_emulator_host)
            return self._secrets

    def setup_logging(self, level: str) -> None:
        """JSON logging, once (again if something replaced our handler since: `logs.installed`)."""
        with self._lock:
            if not self._logging_ready or not logs.installed():
                logs.setup(level)
                self._logging_ready = True

    def now(self) -> dt.datetime:
        return self._clock()

    def reset(self, *, logging_ready: bool = False, clock: Callable[[], dt.datetime] | None = None) -> None:
        """Forget the secret cache and the logging flag, as a new process would.

        Tests pass `logging_ready=True` to keep pytest's log capture, and `clock` to fix the instant
        an HTTP check runs at.
        """
        with self._lock:
            self._secrets = None
            self._logging_ready = logging_ready
            self._clock = clock or _utc_now


PROCESS = Process()
