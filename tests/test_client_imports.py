"""The Google client libraries are imported on one thread, before the fetch threads start.

CI once saw `gemini/billing` crash with importlib's `_DeadlockError`: the Secret Manager client
(for an Anthropic key) and the BigQuery client were imported for the first time from two fetch
threads at once. Each case runs in a fresh interpreter, where nothing Google is imported yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
import concurrent.futures

import check
from config import Settings
from providers import Deps

WATCH = ("google.cloud.secretmanager", "google.cloud.bigquery", "google.cloud.bigquery.retry")
OURS = ("providers.openai", "providers.anthropic", "providers.xai", "providers.gemini")
seen = {"at_start": [m for m in WATCH if m in sys.modules]}

class Stop(Exception):
    pass

class Pool:
    def __init__(self, *args, **kwargs):
        seen["at_pool_start"] = [m for m in WATCH if m in sys.modules]
        seen["ours_at_pool_start"] = [m for m in OURS if m in sys.modules]
        raise Stop

concurrent.futures.ThreadPoolExecutor = Pool
settings = Settings.from_env()
try:
    check.fetch_all(settings, Deps(secrets=None, base_urls={}), None, None)
except Stop:
    pass
print(json.dumps(seen))
"""

SECRET = "projects/my-proj/secrets/anthropic-admin-key/versions/latest"
TABLE = "my-proj.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
GEMINI_AND_SECRET = {
    "total_budget_usd": 100,
    "providers": {
        "anthropic": {
            "budget_usd": 50,
            "accounts": [{"label": "main", "key_secret": SECRET}],
        },
        "gemini": {"budget_usd": 50, "accounts": [{"label": "billing", "billing_export_table": TABLE}]},
    },
}
ENV_KEYS_ONLY = {
    "total_budget_usd": 100,
    "providers": {"openai": {"budget_usd": 100, "accounts": [{"label": "prod", "key_env": "OPENAI_ADMIN_KEY"}]}},
}


def _run(budgets: dict[str, object]) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "BUDGET_CONFIG_FILE"}
    env["BUDGET_CONFIG"] = json.dumps(budgets)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_secret_manager_and_bigquery_are_imported_before_the_fetch_threads() -> None:
    seen = _run(GEMINI_AND_SECRET)
    assert seen["at_start"] == [], "importing check must not import the Google clients"
    assert len(seen["ours_at_pool_start"]) == 4, "the provider modules are imported before the threads too"
    assert seen["at_pool_start"] == [
        "google.cloud.secretmanager",
        "google.cloud.bigquery",
        "google.cloud.bigquery.retry",
    ]


def test_a_run_without_gemini_or_secret_manager_imports_neither() -> None:
    """The cold-start saving stays: env-var keys and no Gemini import no Google client."""
    seen = _run(ENV_KEYS_ONLY)
    assert seen["at_start"] == seen["at_pool_start"] == []
