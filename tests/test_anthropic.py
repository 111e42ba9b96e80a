"""Anthropic cost_report: cents strings, pagination, the 1st of the month, classified failures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from conftest import load_fixture, make_deps

from config import AnthropicAccount
from errors import Cause, ProviderError
from models import UTC, BillingPeriod
from providers._aggregate import CostAccumulator
from providers._http import Deadline
from providers.anthropic import AnthropicCosts, parse_cost_report_page

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def _fetch(handler: Any, now: dt.datetime = NOW) -> Any:
    src = AnthropicCosts(AnthropicAccount(), make_deps(handler))
    return src.fetch(src.billing_period(now), Deadline(30))


def test_amounts_are_cent_strings() -> None:
    """ "123.78912" cents is $1.2378912; "5000" cents is $50; summed exactly."""
    acc = CostAccumulator(BillingPeriod.containing(NOW))
    parse_cost_report_page(load_fixture("anthropic", "cost_report"), acc)
    assert acc.total() == Decimal("51.2428912")
    lines = {(b.dimension, b.key): b.amount for b in acc.breakdown()}
    assert lines[("model", "claude-opus-4-6")] == Decimal("50")
    assert lines[("model", "Code Execution Usage")] == Decimal("0.005")
    assert lines[("workspace", "Default")] == Decimal("50.005")


@pytest.mark.parametrize(
    "doc",
    [
        load_fixture("anthropic", "cost_report_error"),
        {"has_more": False},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": 12.5, "currency": "USD"}]}]},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": "12", "currency": "EUR"}]}]},
        {"data": [{"starting_at": "2026-11-01", "results": []}]},
        {"data": [{"starting_at": "2026-11-01T00:00:00Z", "results": [{"amount": "NaN", "currency": "USD"}]}]},
    ],
)
def test_error_envelopes_and_drift_are_bad_responses(doc: dict[str, Any]) -> None:
    """Error envelope, missing data, numeric amount (unit unknown), other currency, NaN all raise."""
    with pytest.raises(ProviderError) as exc:
        parse_cost_report_page(doc, CostAccumulator(BillingPeriod.containing(NOW)))
    assert exc.value.cause is Cause.BAD_RESPONSE


def _bucket(day: int, cents: str) -> dict[str, Any]:
    return {
        "starting_at": f"2026-11-{day:02d}T00:00:00Z",
        "ending_at": f"2026-11-{day + 1:02d}T00:00:00Z",
        "results": [{"amount": cents, "currency": "USD", "workspace_id": None, "description": "x", "model": "m"}],
    }


def test_three_pages_headers_and_window() -> None:
    """Follows next_page over 3 pages with x-api-key + anthropic-version; ending_at is tomorrow 00:00 UTC."""
    seen: list[httpx.Request] = []
    pages = {
        None: {"data": [_bucket(1, "100")], "has_more": True, "next_page": "page_a"},
        "page_a": {"data": [_bucket(2, "250.5")], "has_more": True, "next_page": "page_b"},
        "page_b": {"data": [_bucket(3, "0.00001")], "has_more": False, "next_page": None},
    }

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=pages[req.url.params.get("page")])

    rep = _fetch(handler)
    assert rep.mtd_usd == Decimal("3.5050001") and rep.requests == 3
    q = seen[0].url.params
    assert q["starting_at"] == "2026-11-01T00:00:00Z" and q["ending_at"] == "2026-11-29T00:00:00Z"
    assert q["limit"] == "31" and q.get_list("group_by[]") == ["description", "workspace_id"]
    assert seen[0].headers["x-api-key"] == "sk-ant-admin01-unit-test"
    assert seen[0].headers["anthropic-version"] == "2023-06-01"


def test_first_minutes_of_the_month_with_no_complete_day() -> None:
    """A 400 for a range with no complete day (1st 00:30 UTC) is a correct $0 with a freshness note."""

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "no complete buckets"}}
        )

    rep = _fetch(handler, dt.datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    assert rep.mtd_usd == 0 and rep.period.key == "2026-12"
    assert rep.freshness.note and "complete days" in rep.freshness.note


def test_400_later_in_the_month_is_a_failure() -> None:
    """The same 400 on the 28th is a classified failure, not a silent $0."""

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "x"}})

    with pytest.raises(ProviderError) as exc:
        _fetch(handler)
    assert exc.value.cause is Cause.CLIENT_ERROR


@pytest.mark.parametrize(
    ("status", "cause"),
    [(401, Cause.AUTH), (403, Cause.PERMISSION), (529, Cause.SERVER_ERROR), (429, Cause.RATE_LIMIT)],
)
def test_status_codes_are_classified(status: int, cause: Cause) -> None:
    """401/403/529/429 map to auth, permission, server error and rate limit."""

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=load_fixture("anthropic", "cost_report_error"))

    with pytest.raises(ProviderError) as exc:
        _fetch(handler)
    assert exc.value.cause is cause
