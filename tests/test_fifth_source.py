"""A fifth source, declared only here, plugs into the whole check: budget document, fetch, rules,
Slack message, JSON document and total. Nothing outside `providers/` knows the vendors by name, so
a `ProviderSpec` registered from a test is all a new source needs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import load_fixture, make_deps

import providers
from check import default_deps, run_check
from config import ConfigError, SecretResolver, Settings
from models import UTC, BillingPeriod, CostReport, DailyCost, Deadline, Freshness
from output import to_json
from providers import Account, Deps, ProviderSpec

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


class FixedAccount(Account):
    """An account that always reports the same month-to-date."""

    amount_usd: Decimal = Decimal("12.34")


@dataclasses.dataclass
class FixedSource:
    account: FixedAccount
    provider: str = "fixed"

    def billing_period(self, now: dt.datetime) -> BillingPeriod:
        return BillingPeriod.containing(now)

    def fetch(self, period: BillingPeriod, deadline: Deadline) -> CostReport:
        amount = self.account.amount_usd
        return CostReport(
            period=period,
            mtd_usd=amount,
            daily=(DailyCost(period.today, amount),),
            breakdown=(),
            freshness=Freshness(period.now, "a fixed test source"),
        )


def _build(account: Any, deps: Deps) -> FixedSource:
    assert isinstance(account, FixedAccount)
    return FixedSource(account)


FIXED = ProviderSpec(
    name="fixed",
    title="Fixed",
    console_url="https://example.invalid/fixed",
    account_schema=FixedAccount,
    build=_build,
)


@pytest.fixture
def fixed() -> Iterator[ProviderSpec]:
    with providers.registered(FIXED) as spec:
        yield spec
    assert "fixed" not in providers.names(), "the registry is back to the built-in providers"


def _settings(tmp_path: Path, document: dict[str, Any]) -> Settings:
    return Settings.from_env({"BUDGET_CONFIG": json.dumps(document), "STATE_FILE": str(tmp_path / "state.json")})


def test_a_fifth_source_shows_in_the_message_the_json_and_the_total(fixed: ProviderSpec, tmp_path: Path) -> None:
    """A source registered from a test is configured, fetched, rendered with its title and counted in the total."""
    document = {"total_budget_usd": 20, "providers": {"fixed": {"budget_usd": 15, "accounts": [{"label": "one"}]}}}
    settings = _settings(tmp_path, document)
    outcome = run_check(settings, default_deps(settings, SecretResolver(env={})), NOW, dry_run=True)
    doc = to_json(outcome)
    assert doc["providers"]["fixed"]["accounts"][0]["mtd_usd"] == "12.34"
    assert doc["providers"]["fixed"]["mtd_usd"] == "12.34"
    assert doc["total"]["mtd_usd"] == "12.34"
    assert "threshold:2026-11:fixed:80" in doc["alerts"]["holding"]  # 12.34 of 15: 82%
    assert outcome.payload is not None
    message = json.dumps(outcome.payload)
    assert "*Fixed*" in message and "<https://example.invalid/fixed|console>" in message
    assert "*Fixed* crossed *80%*" in outcome.payload["text"]


def test_the_total_sums_a_fifth_source_with_a_built_in_one(fixed: ProviderSpec, tmp_path: Path) -> None:
    """The fifth source and a built-in provider add up in the total, each listed under its own name."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=load_fixture("openai", "organization_costs"))

    document = {
        "total_budget_usd": 1000,
        "providers": {"openai": {"budget_usd": 500}, "fixed": {"budget_usd": 100, "accounts": [{"amount_usd": "1.5"}]}},
    }
    outcome = run_check(_settings(tmp_path, document), make_deps(answer), NOW, dry_run=True)
    doc = to_json(outcome)
    assert list(doc["providers"]) == ["openai", "fixed"]  # registry order: built-in first
    assert doc["providers"]["openai"]["mtd_usd"] == "15.79080438"
    assert doc["providers"]["fixed"]["mtd_usd"] == "1.5"
    assert doc["total"]["mtd_usd"] == "17.29080438"


def test_the_budget_document_validates_a_fifth_source_with_its_own_schema(fixed: ProviderSpec, tmp_path: Path) -> None:
    """The fifth source's account schema is enforced: an unknown field names its path."""
    document = {"total_budget_usd": 10, "providers": {"fixed": {"budget_usd": 5, "accounts": [{"amount": 1}]}}}
    with pytest.raises(ConfigError, match=r"providers\.fixed\.accounts\.0\.amount: is not a known setting"):
        _settings(tmp_path, document)


def test_without_registration_the_fifth_source_is_an_unknown_setting(tmp_path: Path) -> None:
    """Outside the registration, "fixed" is not a provider the budget document knows."""
    document = {"total_budget_usd": 10, "providers": {"fixed": {"budget_usd": 5}}}
    with pytest.raises(ConfigError, match=r"providers\.fixed: is not a known setting"):
        _settings(tmp_path, document)
