"""The process environment: `Settings`, validated once, and the lists of every variable the code reads."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import providers
from config._budget import MAX_DOCUMENT_BYTES, BudgetConfig, parse_budget_config
from errors import ConfigError
from providers._spec import SECRET_NAME_RE

__all__ = [
    "BASE_URL_ENV",
    "CLOUD_ENV_VARS",
    "DEFAULT_BASE_URLS",
    "LOCAL_ENV_VARS",
    "Settings",
]

# --- environment variables -------------------------------------------------------------------

_STATIC_CLOUD_ENV_VARS = (
    "BIGQUERY_JOB_PROJECT",
    "BUDGET_CONFIG",
    "CHECK_DEADLINE_SECONDS",
    "LOG_LEVEL",
    "SLACK_WEBHOOK_SECRET",
    "STATE_BACKEND",
    "STATE_BUCKET",
    "STATE_OBJECT",
)
CLOUD_ENV_VARS: tuple[str, ...] = tuple(
    sorted({*_STATIC_CLOUD_ENV_VARS, *(s.base_url_env for s in providers.builtin() if s.base_url_env)})
)
"""Read by the deployed function (the fixed ones, and each built-in provider's base-URL variable);
`terraform/function.tf` sets exactly these."""

LOCAL_ENV_VARS: tuple[str, ...] = (
    "BIGQUERY_EMULATOR_HOST",
    "BUDGET_CONFIG_FILE",
    "GCE_METADATA_HOST",  # the metadata server's address, as google-auth reads it (tests point it at a fake)
    "SECRET_MANAGER_EMULATOR_HOST",
    "SLACK_WEBHOOK_URL",
    "STATE_FILE",
)
"""Local runs only (plus each account's `key_env` and each destination's `webhook_env`, named in the
budget document)."""

# Derived from the built-in specs, for the tests that hold them against Terraform.
DEFAULT_BASE_URLS: Mapping[str, str] = {s.name: s.default_base_url for s in providers.builtin() if s.default_base_url}
BASE_URL_ENV: Mapping[str, str] = {s.name: s.base_url_env for s in providers.builtin() if s.base_url_env}


# --- the environment -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a check reads from the environment, validated once."""

    budgets: BudgetConfig
    slack_webhook_url: str | None
    slack_webhook_secret: str | None
    state_backend: Literal["file", "gcs"]
    state_file: Path
    state_bucket: str | None
    state_object: str
    base_urls: Mapping[str, str]
    bigquery_job_project: str | None
    bigquery_emulator_host: str | None
    secret_manager_emulator_host: str | None
    deadline_s: float
    log_level: str

    def require_slack(self) -> None:
        """A run that may post needs a webhook; say so up front rather than keep alerts pending forever.
        With `destinations`, each names its own (the schema requires it)."""
        if self.budgets.destinations:
            return
        if not (self.slack_webhook_url or self.slack_webhook_secret):
            raise ConfigError(
                "no Slack webhook configured: set SLACK_WEBHOOK_SECRET to its Secret Manager version name "
                "(cloud) or SLACK_WEBHOOK_URL (local), or use --dry-run"
            )

    def webhook_of(self, dest: str) -> tuple[str | None, str | None]:
        """Where destination `dest`'s webhook URL lives: (Secret Manager version name, variable name).
        The implicit "default" of a document without destinations is SLACK_WEBHOOK_SECRET / _URL."""
        named = self.budgets.destinations.get(dest)
        if named is not None:
            return named.webhook_secret, named.webhook_env
        if self.slack_webhook_secret:
            return self.slack_webhook_secret, None
        return None, "SLACK_WEBHOOK_URL"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every setting from `env` (default: the process environment), validated; a `ConfigError` names the fix."""
        env = os.environ if env is None else env
        budgets = _load_budgets(env)
        webhook_url, webhook_secret = _webhook(env)
        if budgets.destinations and (webhook_url or webhook_secret):
            set_now = "SLACK_WEBHOOK_SECRET" if webhook_secret else "SLACK_WEBHOOK_URL"
            raise ConfigError(
                f"{set_now} is set, but the budget document names destinations, each with its own webhook: "
                f'unset {set_now} and give the default destination "{budgets.default_dest}" its webhook_secret '
                "(cloud) or webhook_env (local) under destinations"
            )
        backend, bucket = _state(env)
        return cls(
            budgets=budgets,
            slack_webhook_url=webhook_url,
            slack_webhook_secret=webhook_secret,
            state_backend=backend,
            state_file=Path(env.get("STATE_FILE") or ".state/alert-state.json"),
            state_bucket=bucket,
            state_object=env.get("STATE_OBJECT") or "llm-budget-alert/state.json",
            base_urls=_base_urls(env),
            bigquery_job_project=env.get("BIGQUERY_JOB_PROJECT") or None,
            bigquery_emulator_host=env.get("BIGQUERY_EMULATOR_HOST") or None,
            secret_manager_emulator_host=env.get("SECRET_MANAGER_EMULATOR_HOST") or None,
            deadline_s=_deadline(env),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )


def _webhook(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    webhook_url = env.get("SLACK_WEBHOOK_URL") or None
    webhook_secret = env.get("SLACK_WEBHOOK_SECRET") or None
    if webhook_url and webhook_secret:
        raise ConfigError("set either SLACK_WEBHOOK_SECRET (cloud) or SLACK_WEBHOOK_URL (local), not both")
    if webhook_secret and not SECRET_NAME_RE.match(webhook_secret):
        raise ConfigError(
            "SLACK_WEBHOOK_SECRET must be a Secret Manager version name: projects/P/secrets/S/versions/latest"
        )
    if webhook_url and not webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError("SLACK_WEBHOOK_URL must be an https:// incoming-webhook URL")
    return webhook_url, webhook_secret


def _state(env: Mapping[str, str]) -> tuple[Literal["file", "gcs"], str | None]:
    backend = env.get("STATE_BACKEND", "file")
    if backend not in ("file", "gcs"):
        raise ConfigError(f"STATE_BACKEND must be 'file' or 'gcs', not {backend!r}")
    bucket = env.get("STATE_BUCKET") or None
    if backend == "gcs" and not bucket:
        raise ConfigError("STATE_BACKEND=gcs needs STATE_BUCKET, the bucket Terraform created for alert state")
    return ("gcs" if backend == "gcs" else "file"), bucket


def _base_urls(env: Mapping[str, str]) -> dict[str, str]:
    """Each registered provider's API base URL: its base-URL variable, else its default."""
    base_urls = {}
    for spec in providers.specs():
        if spec.default_base_url is None:
            continue
        url = ((env.get(spec.base_url_env) if spec.base_url_env else None) or spec.default_base_url).rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{spec.base_url_env} must start with https:// (got a value without a scheme)")
        base_urls[spec.name] = url
    return base_urls


def _deadline(env: Mapping[str, str]) -> float:
    try:
        deadline = float(env.get("CHECK_DEADLINE_SECONDS", "60"))
    except ValueError:
        raise ConfigError("CHECK_DEADLINE_SECONDS must be a number of seconds, e.g. 60") from None
    if not 5 <= deadline <= 3000:
        raise ConfigError("CHECK_DEADLINE_SECONDS must be between 5 and 3000")
    return deadline


def _load_budgets(env: Mapping[str, str]) -> BudgetConfig:
    raw = env.get("BUDGET_CONFIG")
    path = env.get("BUDGET_CONFIG_FILE")
    if raw and path:
        raise ConfigError("set either BUDGET_CONFIG (JSON) or BUDGET_CONFIG_FILE (a path), not both")
    if raw:
        return parse_budget_config(raw, origin="BUDGET_CONFIG")
    if path:
        try:
            with Path(path).open("rb") as f:
                data = f.read(MAX_DOCUMENT_BYTES + 1)  # enough to know it is too large, no more
        except OSError as exc:
            raise ConfigError(f"BUDGET_CONFIG_FILE={path}: cannot read it ({exc.strerror})") from None
        return parse_budget_config(data, origin=f"BUDGET_CONFIG_FILE={path}")
    raise ConfigError(
        "no budget configuration: set BUDGET_CONFIG to the JSON document or BUDGET_CONFIG_FILE to its path "
        "(see budgets.example.json)"
    )
