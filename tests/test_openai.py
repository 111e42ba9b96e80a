"""OpenAI Costs API: units, pagination, window, classified failures."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from support import load_fixture, make_deps

from errors import Cause, ProviderError
from models import UTC, BillingPeriod
from providers import Deadline
from providers._aggregate import CostAccumulator
from providers.openai import OpenAIAccount, OpenAICosts, parse_costs_page

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def _period(now: dt.datetime = NOW) -> BillingPeriod:
    return BillingPeriod.containing(now)


def _fetch(handler: Any, now: dt.datetime = NOW) -> Any:
    """Fetch with `handler` answering the Costs API; the spend-limit reads (tests/test_spend_limits.py)
    answer 404, no limit, and never reach it."""

    def costs_only(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/spend_limit"):
            return httpx.Response(404, json={"error": {"message": "No spend limit.", "type": "invalid_request_error"}})
        return handler(req)

    src = OpenAICosts(OpenAIAccount(), make_deps(costs_only))
    return src.fetch(src.billing_period(now), Deadline(30))


def test_amounts_are_dollars_summed_exactly() -> None:
    """amount.value is dollars: 12.13080438 + 0.06 + 3.5 + 0.1 with no float error."""
    acc = CostAccumulator(_period())
    parse_costs_page(load_fixture("openai", "organization_costs"), acc)
    assert acc.total() == Decimal("15.79080438")
    days = {d.day.day: d.amount for d in acc.daily()}
    assert days[1] == Decimal("15.69080438") and days[2] == 0 and days[3] == Decimal("0.1")
    lines = {(b.dimension, b.key): b.amount for b in acc.breakdown()}
    assert lines[("line_item", "gpt-5.4, input")] == Decimal("12.23080438")
    assert lines[("project", "(none)")] == Decimal("3.5")


def test_error_envelope_in_200_is_a_bad_response() -> None:
    """An {"error": ...} body never parses as $0."""
    with pytest.raises(ProviderError) as exc:
        parse_costs_page(load_fixture("openai", "organization_costs_error"), CostAccumulator(_period()))
    assert exc.value.cause is Cause.BAD_RESPONSE


@pytest.mark.parametrize(
    "doc",
    [
        {"object": "page", "has_more": False},
        {"object": "list", "data": []},
        {
            "object": "page",
            "data": [{"start_time": 1793491200, "results": [{"amount": {"value": "abc", "currency": "usd"}}]}],
        },
        {
            "object": "page",
            "data": [{"start_time": 1793491200, "results": [{"amount": {"value": True, "currency": "usd"}}]}],
        },
        {
            "object": "page",
            "data": [{"start_time": 1793491200, "results": [{"amount": {"value": 1.0, "currency": "eur"}}]}],
        },
        {"object": "page", "data": [{"start_time": "yesterday", "results": []}]},
        {"object": "page", "data": [{"start_time": 1793491200}]},
    ],
)
def test_drifted_shapes_are_bad_responses(doc: dict[str, Any]) -> None:
    """Missing keys, wrong types and foreign currencies raise BAD_RESPONSE."""
    with pytest.raises(ProviderError) as exc:
        parse_costs_page(doc, CostAccumulator(_period()))
    assert exc.value.cause is Cause.BAD_RESPONSE


def _page(day: int, value: float, cursor: str | None) -> dict[str, Any]:
    start = int(dt.datetime(2026, 11, day, tzinfo=UTC).timestamp())
    return {
        "object": "page",
        "has_more": cursor is not None,
        "next_page": cursor,
        "data": [
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + 86400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": value, "currency": "usd"},
                        "line_item": "gpt-5.4, input",
                        "project_id": "proj_a",
                    }
                ],
            }
        ],
    }


def test_follows_next_page_over_three_pages() -> None:
    """Three pages are fetched by cursor and summed; the request carries the documented parameters."""
    seen: list[httpx.Request] = []
    pages = {None: _page(1, 1.25, "p2"), "p2": _page(2, 2.5, "p3"), "p3": _page(3, 0.005, None)}

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=pages[req.url.params.get("page")])

    rep = _fetch(handler)
    assert rep.mtd_usd == Decimal("3.755") and rep.requests == 3 + 2  # + the org's and proj_a's spend limits
    q = seen[0].url.params
    assert q["start_time"] == str(int(dt.datetime(2026, 11, 1, tzinfo=UTC).timestamp()))
    assert q["end_time"] == str(int(NOW.timestamp()))
    assert q["limit"] == "31" and q["bucket_width"] == "1d"
    assert q.get_list("group_by") == ["line_item", "project_id"]
    assert seen[0].headers["authorization"] == "Bearer sk-admin-unit-test-key"
    assert [r.url.params.get("page") for r in seen] == [None, "p2", "p3"]


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (dt.datetime(2026, 12, 1, 0, 5, tzinfo=UTC), dt.datetime(2026, 12, 1, tzinfo=UTC)),
        (dt.datetime(2026, 11, 30, 23, 59, tzinfo=UTC), dt.datetime(2026, 11, 1, tzinfo=UTC)),
        (dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)),
        (dt.datetime(2028, 2, 29, 23, 59, tzinfo=UTC), dt.datetime(2028, 2, 1, tzinfo=UTC)),
    ],
)
def test_window_starts_at_the_first_of_the_utc_month(now: dt.datetime, start: dt.datetime) -> None:
    """start_time is the 1st 00:00 UTC of now's month; end_time is now."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"object": "page", "data": [], "has_more": False, "next_page": None})

    rep = _fetch(handler, now)
    assert seen[0].url.params["start_time"] == str(int(start.timestamp()))
    assert seen[0].url.params["end_time"] == str(int(now.timestamp()))
    assert rep.mtd_usd == 0 and rep.period.start == start


@pytest.mark.parametrize(
    ("status", "body", "ctype", "cause"),
    [
        (401, load_fixture("openai", "organization_costs_error"), "application/json", Cause.AUTH),
        (403, {"error": {"message": "Missing scopes: api.usage.read"}}, "application/json", Cause.PERMISSION),
        (500, {"error": {"message": "boom"}}, "application/json", Cause.SERVER_ERROR),
        (200, "<html><body>Bad gateway</body></html>", "text/html", Cause.BAD_RESPONSE),
        (502, "<html><body>Bad gateway</body></html>", "text/html", Cause.SERVER_ERROR),
        (200, '{"object": "page", "data": [', "application/json", Cause.BAD_RESPONSE),
    ],
)
def test_failures_are_classified(status: int, body: Any, ctype: str, cause: Cause) -> None:
    """HTTP errors, HTML pages and truncated JSON become the right cause, never $0."""
    content = body if isinstance(body, str) else json.dumps(body)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content.encode(), headers={"content-type": ctype})

    with pytest.raises(ProviderError) as exc:
        _fetch(handler)
    assert exc.value.cause is cause
    assert "sk-admin-unit-test-key" not in str(exc.value)


def test_first_second_of_the_month_makes_no_request() -> None:
    """At exactly 00:00:00 on the 1st the window is empty: $0 without a request the API would refuse."""
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return httpx.Response(400, json={"error": {"message": "'end_time' must be greater than 'start_time'."}})

    rep = _fetch(handler, dt.datetime(2026, 12, 1, tzinfo=UTC))
    assert rep.mtd_usd == 0 and rep.requests == 0 and calls == []


def test_a_month_too_large_for_one_page_is_fetched_a_day_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the one-page month exceeds the response cap, it is fetched again with limit=1 and summed once."""
    import providers._http as http

    monkeypatch.setattr(http, "MAX_BODY_BYTES", 2000)
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.params["limit"] == "31":
            return httpx.Response(200, json={**_page(1, 1.0, None), "padding": "x" * 5000})
        day = {None: 1, "d2": 2, "d3": 3}[req.url.params.get("page")]
        return httpx.Response(200, json=_page(day, 0.25, {1: "d2", 2: "d3", 3: None}[day]))

    rep = _fetch(handler)
    assert rep.mtd_usd == Decimal("0.75")
    assert [r.url.params["limit"] for r in seen] == ["31", "1", "1", "1"] and rep.requests == 4 + 2  # + 2 limits


def test_a_single_day_over_the_cap_still_fails_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    """When even one day is over the cap the account fails as a bad response, not $0."""
    import providers._http as http

    monkeypatch.setattr(http, "MAX_BODY_BYTES", 2000)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**_page(1, 1.0, None), "padding": "x" * 5000})

    with pytest.raises(ProviderError) as exc:
        _fetch(handler)
    assert exc.value.cause is Cause.BAD_RESPONSE
