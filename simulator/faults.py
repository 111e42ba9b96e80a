"""Fault modes and the thread-safe book of armed faults, shared by every simulated server.

A fault is armed with a mode, a scope (which requests it hits) and a count (how many requests it
spoils; `None` = until cleared). Faults are tried in the order they were added; the first one whose
scope matches a request is consumed and produced on the wire.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

# Provider faults produced before the key is checked (a proxy or the provider's edge answers).
STATUS_FAULTS: tuple[str, ...] = (
    "http_401",
    "http_403",
    "http_404",
    "http_429",
    "http_429_no_retry_after",
    "http_500",
    "http_502",
    "http_503",
    "http_529",
    "html",
    "html_200",
    "error_envelope_200",
    "timeout",
    "reset",
)
# Provider faults that spoil an otherwise correct answer (the key must be valid).
DATA_FAULTS: tuple[str, ...] = (
    "drift_missing_data",
    "drift_amount_type",
    "truncated_json",
    "pagination_loop",
    "endless_has_more",
    "huge",
    "negative_amounts",
    "absurd_amounts",
    "limit_reached",
)
PROVIDER_FAULT_MODES: tuple[str, ...] = STATUS_FAULTS + DATA_FAULTS
PAGINATED_ONLY: frozenset[str] = frozenset({"pagination_loop", "endless_has_more"})  # openai, anthropic
XAI_ONLY: frozenset[str] = frozenset({"limit_reached"})

SLACK_FAULT_MODES: tuple[str, ...] = (
    "http_429",
    "http_500",
    "timeout",
    "invalid_payload",
    "no_service",
    "http_410",
    "http_403",
    "reset",
    "accept_then_reset",  # the message is posted, then the connection is reset before the answer
    "invalid_blocks",
)
SECRET_FAULT_MODES: tuple[str, ...] = ("http_403", "http_429", "http_500", "http_503", "timeout")

DEFAULT_TIMEOUT_S = 120.0  # longer than any sane client timeout; interrupted when the server stops
HUGE_BYTES = 32 * 1024 * 1024


@dataclasses.dataclass
class Fault:
    """One armed fault. `scope` keys depend on the server (provider/account/endpoint, or secret)."""

    mode: str
    count: int | None = None
    scope: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    seconds: float = DEFAULT_TIMEOUT_S  # for `timeout`

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "count": self.count, **self.scope, "seconds": self.seconds}


def parse_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("count must be a positive integer, or null for 'until cleared'")
    return value


def parse_seconds(value: object) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("seconds must be a non-negative number")
    return float(value)


class FaultBook:
    """Armed faults, consumed atomically by concurrent handler threads."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def take(self, matches: Callable[[Fault], bool]) -> Fault | None:
        """The first armed fault that `matches`, with one use consumed; None when none applies."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if not matches(fault):
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[i]
                return dataclasses.replace(fault)
        return None
