"""Secret resolution: Secret Manager for version names, the environment otherwise; cached, never logged."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import logs
from errors import SecretError

__all__ = [
    "SECRET_FLOOR_S",
    "SECRET_MANAGER_IMPORTS",
    "SECRET_TIMEOUT_S",
    "SecretResolver",
]

SECRET_TIMEOUT_S = 5.0  # one secret read, retries included
SECRET_FLOOR_S = 2.0  # ... even when the check's time is (nearly) spent: the webhook read must still work

# --- secrets ---------------------------------------------------------------------------------

# What the Secret Manager path imports on first use (see `check.import_client_libraries`).
SECRET_MANAGER_IMPORTS = (
    "google.api_core.exceptions",
    "google.api_core.retry",
    "google.api_core.client_options",
    "google.auth.credentials",
    "google.cloud.secretmanager",
    "requests.exceptions",
)


class SecretResolver:
    """Reads secrets once per process: Secret Manager for resource names, the environment otherwise.

    Values are cached in memory only and never logged; errors name the secret, never its value.
    The Secret Manager client is imported and built on first use, so runs without secrets pay
    nothing for it.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, emulator_host: str | None = None) -> None:
        self._env = os.environ if env is None else env
        self._emulator_host = emulator_host
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.fetches = 0  # Secret Manager calls made (benchmarks read it)
        self.stripped: set[str] = set()  # secrets / variables whose value had surrounding whitespace (doctor)

    def get(self, *, secret: str | None, env_name: str | None, what: str, time_left: float | None = None) -> str:
        """The value of `secret` (a Secret Manager version name) or of the variable `env_name`.

        `time_left` (seconds of the check's deadline) caps the Secret Manager call below `SECRET_TIMEOUT_S`.
        """
        if secret:
            with self._lock:  # held only to find the secret's own lock: one slow secret blocks no other
                one = self._locks.setdefault(secret, threading.Lock())
            with one:
                if secret not in self._cache:
                    value = self._access(secret, what, time_left)
                    logs.register_secret(value)
                    self._cache[secret] = value
                return self._cache[secret]
        if env_name:
            raw = self._env.get(env_name, "")
            value = raw.strip()
            if not value:
                raise SecretError(
                    f"{what}: environment variable {env_name} is not set (put the key there)", reason="unset"
                )
            if value != raw:
                self.stripped.add(env_name)
            logs.register_secret(value)
            return value
        raise SecretError(f"{what}: no key configured (set key_secret or key_env)", reason="unset")

    def _access(self, name: str, what: str, time_left: float | None = None) -> str:
        from google.api_core import exceptions as gexc  # heavy: only on the Secret Manager path
        from google.api_core import retry as gretry
        from requests import exceptions as req_exc

        client = self._secret_client()
        self.fetches += 1
        # One bound for the attempt (`timeout`, per request) and for the retries (an api_core `Retry`
        # terminates once its `timeout` is reached: googleapis/python-api-core#535): the smaller of
        # our own cap and what the check has left, never under SECRET_FLOOR_S.
        budget = SECRET_TIMEOUT_S if time_left is None else max(SECRET_FLOOR_S, min(SECRET_TIMEOUT_S, time_left))
        try:
            resp = client.access_secret_version(
                request={"name": name},
                timeout=budget,
                retry=gretry.Retry(initial=0.25, maximum=2.0, timeout=budget),
            )
        except gexc.NotFound:
            raise SecretError(
                f"{what}: secret {name} not found (add a version with gcloud secrets versions add)", reason="not_found"
            ) from None
        except (gexc.PermissionDenied, gexc.Forbidden):
            raise SecretError(
                f"{what}: permission denied on {name} (grant roles/secretmanager.secretAccessor on that secret)",
                reason="permission_denied",
            ) from None
        except (gexc.GoogleAPIError, req_exc.RequestException) as exc:
            raise SecretError(f"{what}: could not read {name}: {type(exc).__name__}") from None
        raw: str = resp.payload.data.decode("utf-8")
        value = raw.strip()
        if not value:
            raise SecretError(f"{what}: secret {name} is empty", reason="empty")
        if value != raw:
            self.stripped.add(name)  # e.g. `echo` added a newline: harmless, but doctor reports it
        return value

    def _secret_client(self) -> Any:
        with self._client_lock:  # fetch threads read their secrets at the same moment: build one client
            if self._client is None:
                from google.cloud import secretmanager

                if self._emulator_host:
                    from google.api_core.client_options import ClientOptions
                    from google.auth.credentials import AnonymousCredentials

                    self._client = secretmanager.SecretManagerServiceClient(
                        transport="rest",
                        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                        client_options=ClientOptions(api_endpoint=self._emulator_host),
                    )
                else:
                    self._client = secretmanager.SecretManagerServiceClient()
            return self._client
