"""The loopback-only guard the tests and the benchmarks share: no TCP connection leaves 127.0.0.0/8 or ::1."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["guarded_connect", "is_loopback"]

_real_connect = socket.socket.connect


def is_loopback(host: object) -> bool:
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


def guarded_connect(refusal: str) -> Callable[[socket.socket, Any], Any]:
    """A `socket.socket.connect` that refuses any other host with `refusal` (formatted with `host`)."""

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(host):
            raise RuntimeError(refusal.format(host=host))
        return _real_connect(self, address)

    return connect
