"""Helpers the tests share, with real return types: fixtures from disk, fake HTTP clients, dependencies,
source results and budget documents. Fixtures (pytest's) stay in conftest.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from config import DEFAULT_BASE_URLS, BudgetConfig, SecretResolver, parse_budget_config
from errors import Cause
from models import (
    UTC,
    AccountRef,
    BillingPeriod,
    BreakdownLine,
    CostReport,
    DailyCost,
    Freshness,
    Headroom,
    SourceResult,
)
from providers import Deps

__all__ = ["FIXTURES", "budgets", "failed_for", "load_fixture", "make_deps", "mock_http_factory", "report_for"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
Handler = Callable[[httpx.Request], httpx.Response]


def load_fixture(provider: str, name: str) -> dict[str, Any]:
    """A recorded answer, `fixtures/<provider>/<endpoint>.json`."""
    data: dict[str, Any] = json.loads((FIXTURES / provider / f"{name}.json").read_text())
    return data


def mock_http_factory(handler: Handler) -> Callable[..., httpx.Client]:
    """A `Deps.http_factory` whose clients answer from `handler(request)` (an httpx fake transport)."""

    def factory(base_url: str, *, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=headers or {}, transport=httpx.MockTransport(handler))

    return factory


def make_deps(handler: Handler | None = None, env: dict[str, str] | None = None, **kw: Any) -> Deps:
    """Dependencies with unit-test keys in the environment, and `handler` answering every HTTP request."""
    env = {
        "OPENAI_ADMIN_KEY": "sk-admin-unit-test-key",
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-unit-test",
        "XAI_MANAGEMENT_KEY": "xai-mgmt-unit-test",
        **(env or {}),
    }
    deps = Deps(secrets=SecretResolver(env=env), base_urls=dict(DEFAULT_BASE_URLS), **kw)
    if handler is not None:
        deps.http_factory = mock_http_factory(handler)
    return deps


def report_for(
    provider: str,
    label: str,
    now: dt.datetime,
    daily: list[str],
    *,
    breakdown: Iterable[BreakdownLine] = (),
    tz: dt.tzinfo | None = None,
    as_of: dt.datetime | None = None,
    partial_reason: str | None = None,
    headroom: Headroom | None = None,
) -> SourceResult:
    """A successful SourceResult whose daily series is `daily` (USD strings from the 1st)."""
    period = BillingPeriod.containing(now, tz or UTC)
    days = tuple(DailyCost(period.first_day + dt.timedelta(days=i), Decimal(v)) for i, v in enumerate(daily))
    rep = CostReport(
        period=period,
        mtd_usd=sum((d.amount for d in days), Decimal(0)),
        daily=days,
        breakdown=tuple(breakdown),
        freshness=Freshness(as_of or now, "test"),
        partial_reason=partial_reason,
        headroom=headroom,
        requests=1,
    )
    return SourceResult(AccountRef(provider, label), period, report=rep)


def failed_for(provider: str, label: str, now: dt.datetime, cause: Cause) -> SourceResult:
    """A failed SourceResult with `cause`."""
    return SourceResult(AccountRef(provider, label), BillingPeriod.containing(now), cause=cause, error="test failure")


def budgets(**overrides: Any) -> BudgetConfig:
    """A budget document ($1000 total, OpenAI $500, Anthropic $400) with `overrides` applied."""
    doc: dict[str, Any] = {
        "total_budget_usd": 1000,
        "providers": {"openai": {"budget_usd": 500}, "anthropic": {"budget_usd": 400}},
    }
    doc.update(overrides)
    return parse_budget_config(json.dumps(doc), origin="test")
