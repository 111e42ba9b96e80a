"""Configuration in one place: the budget document, the process environment, and secret resolution.

A package of private modules re-exported here: `_budget` (the document), `_env` (`Settings`) and
`_secrets` (`SecretResolver`).

Two sources, both validated here and nowhere else:

* the **budget document** (JSON): thresholds, budgets per account / provider / total, accounts and
  where each account's key lives. From `BUDGET_CONFIG` (the JSON itself; Terraform sets it with
  `jsonencode`) or `BUDGET_CONFIG_FILE` (a path, for local runs).
* the **environment** (`Settings`): Slack webhook, state location, base URLs, emulator hosts.

Vendor facts (account schemas, key and base-URL variables) live in each `providers/<name>.py`;
the budget document's schema is built from the registry (`document_schema`).

Every variable the code reads is listed in `CLOUD_ENV_VARS` (Terraform sets each of them) or
`LOCAL_ENV_VARS` (local runs, tests and the demo only). `tests/test_terraform.py` holds both lists
against `terraform/` and against the source.
"""

from __future__ import annotations

from config._budget import (
    MAX_DOCUMENT_BYTES,
    BudgetConfig,
    Destination,
    Digest,
    ProviderBudget,
    ProviderTable,
    Spike,
    Team,
    WeeklyReport,
    document_schema,
    parse_budget_config,
    repeated,
)
from config._env import BASE_URL_ENV, CLOUD_ENV_VARS, DEFAULT_BASE_URLS, LOCAL_ENV_VARS, Settings
from config._secrets import SECRET_FLOOR_S, SECRET_MANAGER_IMPORTS, SECRET_TIMEOUT_S, SecretResolver
from errors import ConfigError
from providers import Account, KeyedAccount
from providers._spec import SECRET_NAME_RE

__all__ = [
    "BASE_URL_ENV",
    "CLOUD_ENV_VARS",
    "DEFAULT_BASE_URLS",
    "LOCAL_ENV_VARS",
    "MAX_DOCUMENT_BYTES",
    "SECRET_FLOOR_S",
    "SECRET_MANAGER_IMPORTS",
    "SECRET_NAME_RE",
    "SECRET_TIMEOUT_S",
    "Account",
    "BudgetConfig",
    "ConfigError",
    "Destination",
    "Digest",
    "KeyedAccount",
    "ProviderBudget",
    "ProviderTable",
    "SecretResolver",
    "Settings",
    "Spike",
    "Team",
    "WeeklyReport",
    "document_schema",
    "parse_budget_config",
    "repeated",
]
