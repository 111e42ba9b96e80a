"""A Secret Manager REST fake: enough of `versions/*:access` for the real google client.

`GET /v1/projects/{p}/secrets/{s}/versions/{v}:access` (also `projects/{p}/locations/{l}/...`)
answers `{"name": ".../versions/{n}", "payload": {"data": <base64>, "dataCrc32c": "<decimal>"}}`
with a correct CRC32C; an unknown secret or version answers Google's 404 JSON error, which the client
raises as `google.api_core.exceptions.NotFound`. Faults produce 403 PERMISSION_DENIED, 429
RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE or a hang, for one secret or all.

Use with::

    SecretManagerServiceClient(transport="rest", credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=fake.url))

Control API: `POST /_sm/secrets {"projects/p/secrets/s": "value", ...}` (each adds a version),
`DELETE /_sm/secrets`, `POST|DELETE /_sm/faults`, `GET|DELETE /_sm/requests`.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from simulator._server import Handler, LocalServer, Recorder, Reply, Request, Running, hang_reply, json_reply
from simulator.faults import SECRET_FAULT_MODES, Fault, FaultBook, parse_count, parse_seconds

ACCESS_RE = re.compile(
    r"^/v1/(?P<secret>projects/[^/]+/(?:locations/[^/]+/)?secrets/[^/]+)/versions/(?P<version>[^/:]+):access$"
)
SECRET_NAME_RE = re.compile(r"^projects/[^/]+/(?:locations/[^/]+/)?secrets/[A-Za-z0-9_-]+$")
_FAULTS: Mapping[str, tuple[int, str, str]] = {
    "http_403": (
        403,
        "PERMISSION_DENIED",
        "Permission 'secretmanager.versions.access' denied for resource '{name}' (or it may not exist).",
    ),
    "http_429": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Access requests'."),
    "http_500": (500, "INTERNAL", "Internal error encountered."),
    "http_503": (503, "UNAVAILABLE", "The service is currently unavailable."),
}


@functools.cache
def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Secret Manager reports as `dataCrc32c`."""
    table = _crc32c_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def google_error(status: int, code: str, message: str) -> Reply:
    return json_reply(status, {"error": {"code": status, "message": message, "status": code}})


class SecretState:
    def __init__(self) -> None:
        self.faults = FaultBook()
        self.log = Recorder()
        self._versions: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()

    def set_secret(self, name: str, value: str | bytes) -> int:
        """Add a version to secret `name` (`projects/P/secrets/S`); returns its version number."""
        if not SECRET_NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a secret name like projects/P/secrets/S")
        data = value.encode() if isinstance(value, str) else value
        with self._lock:
            versions = self._versions.setdefault(name, [])
            versions.append(data)
            return len(versions)

    def clear_secrets(self) -> None:
        with self._lock:
            self._versions.clear()

    def access(self, secret: str, version: str) -> tuple[int, bytes] | None:
        with self._lock:
            versions = self._versions.get(secret)
            if not versions:
                return None
            if version == "latest":
                return len(versions), versions[-1]
            if version.isdigit() and 1 <= int(version) <= len(versions):
                return int(version), versions[int(version) - 1]
            return None

    def has_secret(self, secret: str) -> bool:
        with self._lock:
            return bool(self._versions.get(secret))

    def add_fault(
        self, mode: str, secret: str | None = None, count: int | None = None, seconds: float | None = None
    ) -> None:
        if mode not in SECRET_FAULT_MODES:
            known = ", ".join(SECRET_FAULT_MODES)
            raise ValueError(f"unknown Secret Manager fault mode {mode!r}; known: {known}")
        fault = Fault(mode=mode, count=parse_count(count), scope={"secret": secret}, seconds=parse_seconds(seconds))
        self.faults.add(fault)


class SecretHandler(Handler):
    state: ClassVar[SecretState]

    def route(self, request: Request) -> Reply:
        if request.path.startswith("/_sm/"):
            return self._control(request)
        match = ACCESS_RE.match(request.path)
        if request.method != "GET" or match is None:
            return google_error(404, "NOT_FOUND", f"The requested URL {request.path} was not found on this server.")
        reply = self._access(match["secret"], match["version"])
        name = f"{match['secret']}/versions/{match['version']}"
        self.state.log.append({"name": name, "status": reply.status or None})
        return reply

    def _access(self, secret: str, version: str) -> Reply:
        fault = self.state.faults.take(lambda f: f.scope.get("secret") in (None, secret))
        if fault is not None:
            if fault.mode == "timeout":
                return hang_reply(fault.seconds)
            status, code, message = _FAULTS[fault.mode]
            return google_error(status, code, message.format(name=f"{secret}/versions/{version}"))
        found = self.state.access(secret, version)
        if found is None:
            if self.state.has_secret(secret):
                return google_error(404, "NOT_FOUND", f"Secret Version [{secret}/versions/{version}] not found.")
            return google_error(404, "NOT_FOUND", f"Secret [{secret}] not found or has no versions.")
        number, data = found
        return json_reply(
            200,
            {
                "name": f"{secret}/versions/{number}",
                "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))},
            },
        )

    def _control(self, request: Request) -> Reply:
        state = self.state
        route = (request.method, request.path.rstrip("/"))
        try:
            body: Any = request.json() if request.body else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if route == ("POST", "/_sm/secrets"):
                versions = {name: state.set_secret(name, str(value)) for name, value in body.items()}
                return json_reply(200, {"versions": versions})
            if route == ("DELETE", "/_sm/secrets"):
                state.clear_secrets()
                return json_reply(200, {"ok": True})
            if route == ("POST", "/_sm/faults"):
                state.add_fault(str(body.get("mode")), body.get("secret"), body.get("count"), body.get("seconds"))
                return json_reply(200, {"faults": state.faults.list()})
            if route == ("DELETE", "/_sm/faults"):
                state.faults.clear()
                return json_reply(200, {"faults": []})
            if route == ("GET", "/_sm/requests"):
                items = state.log.items()
                return json_reply(200, {"count": len(items), "requests": items})
            if route == ("DELETE", "/_sm/requests"):
                state.log.clear()
                return json_reply(200, {"count": 0, "requests": []})
        except (ValueError, TypeError) as exc:
            return json_reply(400, {"error": str(exc)})
        return json_reply(404, {"error": f"no control endpoint {route[0]} {route[1]}"})


class SecretManagerFake(Running):
    """The fake, started in a background thread. Use as a context manager or call `stop()`.

    `url` is the `api_endpoint` for ClientOptions (and SECRET_MANAGER_EMULATOR_HOST).
    """

    def __init__(self, state: SecretState, server: LocalServer) -> None:
        super().__init__(server)
        self._state = state

    @classmethod
    def start(cls, secrets: Mapping[str, str | bytes] | None = None, *, port: int = 0) -> SecretManagerFake:
        """Serve `secrets` ({"projects/P/secrets/S": value}) on 127.0.0.1:`port` (0 = a free port)."""
        state = SecretState()
        for name, value in (secrets or {}).items():
            state.set_secret(name, value)
        server = LocalServer(port, type("BoundSecretHandler", (SecretHandler,), {"state": state}))
        server.start()
        return cls(state, server)

    def set_secret(self, name: str, value: str | bytes) -> int:
        return self._state.set_secret(name, value)

    def add_fault(
        self, mode: str, *, secret: str | None = None, count: int | None = None, seconds: float | None = None
    ) -> None:
        """Arm `http_403|429|500|503` or `timeout` for one secret (`projects/P/secrets/S`) or all of them."""
        self._state.add_fault(mode, secret, count, seconds)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        """Access calls received, oldest first: {"name", "status"}."""
        return self._state.log.items()

    @property
    def request_count(self) -> int:
        return len(self._state.log)

    def clear_requests(self) -> None:
        self._state.log.clear()
