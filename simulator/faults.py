"""Fault modes and the thread-safe book of armed faults, shared by every simulated server.

A fault is armed with a mode, a scope (which requests it hits) and a count (how many requests it
spoils; `None` = until cleared). Faults are tried in the order they were added; the first one whose
scope matches a request is consumed and produced on the wire.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Provider faults produced before the key is checked (a proxy or the provider's edge answers).
STATUS_FAULTS: tuple[str, ...] = (
    "http_400",  # a 400 that is not Anthropic's date-range error: a failure on any day, the 1st included
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
    "drip",
    "stall",
    "gzip_bomb",
    "gzip_bomb_single",
)
# What the wire-level faults above do (the first ones are HTTP statuses or pages):
#   timeout           accept the request and answer nothing for `seconds`
#   reset             TCP reset instead of an answer
#   drip              HTTP 200 JSON headers, then the body one byte every `DRIP_INTERVAL_S`
#   stall             HTTP 200 JSON headers, then nothing for `seconds` (and the connection closes)
#   gzip_bomb         `Content-Encoding: gzip, gzip`: ~2 KB that decode to `BOMB_DECODED_BYTES`
#   gzip_bomb_single  `Content-Encoding: gzip` over a gzip inside a gzip (only one layer declared)
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
    "proto3_omit_defaults",
    "foreign_currency",
)
PROVIDER_FAULT_MODES: tuple[str, ...] = STATUS_FAULTS + DATA_FAULTS
PAGINATED_ONLY: frozenset[str] = frozenset({"pagination_loop", "endless_has_more"})  # openai, anthropic
XAI_ONLY: frozenset[str] = frozenset({"limit_reached", "proto3_omit_defaults"})
OPENAI_LIMITS_ONLY: frozenset[str] = frozenset({"foreign_currency"})  # arm with endpoint="spend_limit"

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
DRIP_INTERVAL_S = 1.0
BOMB_DECODED_BYTES = 1024 * 1024 * 1024  # 1 GiB of JSON whitespace behind ~2 KB on the wire


def gzip_layers(data: Iterable[bytes], layers: int) -> bytes:
    """`data` gzip-compressed `layers` times, streamed (never holds the decoded size in memory)."""
    out: Iterable[bytes] = data
    for _ in range(layers):
        out = [_gzip(out)]
    return b"".join(out)


def _gzip(chunks: Iterable[bytes]) -> bytes:
    enc = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16 + MAX_WBITS: gzip framing
    parts = [enc.compress(c) for c in chunks]
    parts.append(enc.flush())
    return b"".join(parts)


_BOMB_LOCK = threading.Lock()


def gzip_bomb(decoded_bytes: int = BOMB_DECODED_BYTES, layers: int = 2) -> bytes:
    """Whitespace, `decoded_bytes` of it, gzipped `layers` times (1 GiB twice: ~2 KB, ~3 s to build once)."""
    with _BOMB_LOCK:  # concurrent handlers wait for the one build instead of each compressing 1 GiB
        return _build_bomb(decoded_bytes, layers)


@functools.cache
def _build_bomb(decoded_bytes: int, layers: int) -> bytes:
    block = b" " * (1024 * 1024)
    full, rest = divmod(decoded_bytes, len(block))
    return gzip_layers(itertools.chain(itertools.repeat(block, full), [b" " * rest]), layers)


@dataclasses.dataclass
class Fault:
    """One armed fault. `scope` keys depend on the server (provider/account/endpoint, or secret)."""

    mode: str
    count: int | None = None
    scope: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    seconds: float = DEFAULT_TIMEOUT_S  # for `timeout` and `stall`

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
