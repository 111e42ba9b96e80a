"""The one place that decides which modules are imported ahead of the fetch threads.

The Google clients are imported lazily so a cold start that needs neither pays nothing, but a
first import of google.cloud.secretmanager and google.cloud.bigquery from two fetch threads at
once can fail with importlib's `_DeadlockError` (both pull in google.api_core and google.auth).
CI hit it once; two threads importing both in a fresh interpreter failed 2 times in 160 here,
0 in 120 once the main thread imported them first. Each list is declared next to the code that
imports it: `config.SECRET_MANAGER_IMPORTS`, and each provider's `ProviderSpec.client_imports`.
"""

from __future__ import annotations

import importlib
import threading

import logs
import providers
from alerts.slack import CLIENT_IMPORTS as NOTIFY_IMPORTS
from config import SECRET_MANAGER_IMPORTS, Settings
from providers import KeyedAccount

__all__ = ["client_imports", "import_client_libraries", "import_while_waiting"]

log = logs.get("preload")
_IMPORT_LOCK = threading.Lock()


def client_imports(settings: Settings) -> tuple[str, ...]:
    """The client modules a check of `settings` will import: Secret Manager if a key or the
    webhook is a secret, and the libraries of each configured provider."""
    budgets = settings.budgets
    configured = budgets.configured()
    keyed = [a for p in configured for a in budgets.accounts(p) if isinstance(a, KeyedAccount)]
    wanted: list[str] = []
    if settings.slack_webhook_secret or any(a.key_secret for a in keyed):
        wanted += SECRET_MANAGER_IMPORTS
    for name in configured:
        wanted += providers.spec(name).client_imports
    return tuple(dict.fromkeys(wanted))


def import_client_libraries(settings: Settings) -> None:
    """Import, on this thread, the client libraries the fetch threads will need, so that no first
    import happens in two threads at once. An import that fails here is left for the fetch that
    needs it to report as its own failure. (Our provider modules are imported with `providers`.)
    """
    with _IMPORT_LOCK:  # two checks in one process (a threaded dev server) import one at a time too
        for name in client_imports(settings):
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001  # the fetch that needs it reports it, classified
                log.debug("could not import %s ahead of the fetch: %s", name, type(exc).__name__)


def import_while_waiting() -> None:
    """Import what posting the message needs (`alerts.slack.CLIENT_IMPORTS`: the Slack client), on this
    thread, while the fetch threads wait on the network: a check that has something to post then does
    not pay for it after the fetches (rendering needs no Slack library, `alerts.blocks`). The fetch
    threads' own client libraries are already imported (`import_client_libraries`), and these share
    none of them, so no import happens in two threads."""
    with _IMPORT_LOCK:
        for name in NOTIFY_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001  # render / post import it again and report it
                log.debug("could not import %s ahead of the post: %s", name, type(exc).__name__)
