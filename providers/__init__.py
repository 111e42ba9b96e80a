"""Cost sources: one module per vendor behind one small interface, and a plain registry.

Every source turns one configured account into a `CostReport` for its own billing month, or raises
`ProviderError` with a classified cause. Parsing lives in pure functions next to a thin fetch.

    openai     GET /v1/organization/costs            dollars (float)          UTC month
    anthropic  GET /v1/organizations/cost_report     cents (decimal string)   UTC month
    xai        POST /v1/billing/teams/{team}/usage   dollars; limits in cents UTC month
    gemini     BigQuery Cloud Billing export         billing currency → USD   Pacific invoice month
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from config import DEFAULT_KEY_ENV, Account, KeyedAccount, SecretResolver
from models import BillingPeriod, CostReport
from providers._http import Deadline, make_client


class CostSource(Protocol):
    """What every provider module offers for one account."""

    provider: str

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        """The provider's billing month that contains `now`."""
        ...

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        """Month-to-date cost for `period`, or raise `ProviderError`."""
        ...


@dataclasses.dataclass
class Deps:
    """What sources are built from. Passed in, never reached for, so tests and benchmarks swap them."""

    secrets: SecretResolver
    base_urls: Mapping[str, str]
    bigquery_job_project: str | None = None
    bigquery_emulator_host: str | None = None
    http_factory: Callable[..., httpx.Client] = make_client
    bigquery_factory: Callable[[str | None], Any] | None = None
    deep_scan_hour_utc: int | None = None  # the UTC hour whose check also runs the deep Gemini query


def admin_key(deps: Deps, provider: str, account: KeyedAccount, what: str, deadline: Deadline | None = None) -> str:
    """The account's key: its Secret Manager version, else its env var, else the provider's default env var.

    With `deadline`, a Secret Manager read is cut to the time the check has left.
    """
    env_name = account.key_env or (None if account.key_secret else DEFAULT_KEY_ENV[provider])
    time_left = deadline.remaining() if deadline is not None else None
    return deps.secrets.get(
        secret=account.key_secret, env_name=env_name, what=f"{what} ({account.label})", time_left=time_left
    )


Factory = Callable[[Account, Deps], CostSource]


def registry() -> dict[str, Factory]:
    """Provider name → source factory. Imports the provider modules (light); `check` calls it once
    on the main thread before the fetch threads start."""
    from providers import anthropic, gemini, openai, xai

    return {
        "openai": openai.from_config,
        "anthropic": anthropic.from_config,
        "xai": xai.from_config,
        "gemini": gemini.from_config,
    }


def build_source(provider: str, account: Account, deps: Deps) -> CostSource:
    """The cost source for `account` of `provider` (a name from `config.PROVIDER_NAMES`)."""
    return registry()[provider](account, deps)
