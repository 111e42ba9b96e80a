"""xAI billing source: pure parsing, the request it builds, and fetches through a real local server."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import xai_proto_subset
from google.protobuf import json_format
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from support import load_fixture

from config import SecretResolver
from errors import Cause, ProviderError, SecretError
from models import UTC, BillingPeriod, CostReport, DailyCost, Headroom
from providers import Deadline, Deps, build_source, xai
from providers.xai import (
    INVOICE_PREVIEW,
    READ_CALLS,
    SPENDING_LIMITS,
    TRUNCATED,
    USAGE,
    InvoicePreview,
    SpendingLimits,
    Usage,
    UsagePoint,
    XAIAccount,
    XAIBilling,
    _call,
    cents_to_usd,
    headroom,
    month_to_date,
    parse_invoice_preview,
    parse_spending_limits,
    parse_usage,
    usage_request,
)
from simulator import Simulator

NOW = dt.datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
PERIOD = BillingPeriod.containing(NOW)
TEAM = "0f5c3a52-5d1e-4a5b-9a57-0d3c2b1e7f10"


def fixture(name: str) -> dict[str, Any]:
    return load_fixture("xai", name)


# --- usage: dollars, days, breakdown -----------------------------------------------------------


def test_usage_values_are_dollars_summed_per_utc_day() -> None:
    """`usd` values are dollars: every value of every series is summed into its UTC day, no /100."""
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage")))
    assert mtd.total == Decimal("4.75973725")
    assert mtd.daily == (
        DailyCost(dt.date(2026, 11, 1), Decimal("0.95973725")),
        DailyCost(dt.date(2026, 11, 2), Decimal("1.2")),
        DailyCost(dt.date(2026, 11, 3), Decimal("2.6")),
    )
    assert mtd.partial_reason is None
    assert mtd.notes == ()


def test_usage_breakdown_is_by_model_from_group_labels() -> None:
    """Each series becomes a "model" breakdown line named by its groupLabels, largest first."""
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage")))
    assert [(b.dimension, b.key, b.amount) for b in mtd.breakdown] == [
        ("model", "API grok-4-fast", Decimal("2.7")),
        ("model", "API grok-4.3", Decimal("2.05973725")),
    ]


def test_usage_group_values_name_the_line_when_labels_are_absent() -> None:
    """Without groupLabels the raw group values name the line; with neither the series is ungrouped."""
    doc = {
        "timeSeries": [
            {"group": ["grok-3"], "dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "values": [1.5]}]},
            {"dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "values": [0.5]}]},
        ],
        "limitReached": False,
    }
    usage = parse_usage(doc)
    assert [p.group for p in usage.points] == ["grok-3", None]


def test_usage_sums_every_value_of_a_point() -> None:
    """A data point with several values contributes all of them."""
    doc = {"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "values": [0.25, 0.5]}]}]}
    assert month_to_date(PERIOD, parse_usage(doc)).total == Decimal("0.75")


def test_usage_timestamp_with_offset_lands_on_its_utc_day() -> None:
    """A timestamp with an offset is converted to UTC before it is filed under a day."""
    doc = {"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-02T23:30:00-02:00", "values": [1.0]}]}]}
    assert parse_usage(doc).points[0].day == dt.date(2026, 11, 3)


def test_empty_time_series_is_a_real_zero() -> None:
    """`timeSeries: []` is a legitimate $0 month-to-date with a zero for every day so far."""
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage_empty")))
    assert mtd.total == Decimal(0)
    assert [d.amount for d in mtd.daily] == [Decimal(0)] * 3
    assert mtd.breakdown == ()
    assert mtd.partial_reason is None


def test_absent_limit_reached_means_not_truncated() -> None:
    """proto3 JSON omits false booleans: a missing limitReached is a complete answer."""
    assert parse_usage({"timeSeries": []}).limit_reached is False


def test_missing_time_series_is_bad_response() -> None:
    """A body without `timeSeries` is a drifted shape, never $0."""
    with pytest.raises(ProviderError) as info:
        parse_usage({"limitReached": False})
    assert info.value.cause is Cause.BAD_RESPONSE


@pytest.mark.parametrize(
    "doc",
    [
        fixture("usage_error"),
        {"error": {"code": "PERMISSION_DENIED", "message": "no billing ACL"}},
        {"error": "team not found"},
        {"error": {"message": "x"}, "timeSeries": []},
    ],
    ids=["grpc-status", "error-object", "error-string", "error-beside-data"],
)
def test_usage_error_envelope_is_bad_response(doc: dict[str, Any]) -> None:
    """An error body that arrived with HTTP 200 is a failure, not an empty month."""
    with pytest.raises(ProviderError) as info:
        parse_usage(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


def _point(**changes: Any) -> dict[str, Any]:
    point: dict[str, Any] = {"timestamp": "2026-11-02T00:00:00Z", "values": [1.0]}
    point.update(changes)
    return {"timeSeries": [{"groupLabels": ["m"], "dataPoints": [point]}], "limitReached": False}


@pytest.mark.parametrize(
    "doc",
    [
        {"timeSeries": {}},
        {"timeSeries": None},
        {"timeSeries": [], "limitReached": "false"},
        {"timeSeries": [], "limitReached": 0},
        {"timeSeries": ["series"]},
        {"timeSeries": [{"dataPoints": {}}]},
        {"timeSeries": [{"groupLabels": "m", "dataPoints": []}]},
        {"timeSeries": [{"group": [{"k": "v"}], "dataPoints": []}]},
        {"timeSeries": [{"dataPoints": ["1.0"]}]},
        _point(values=1.0),
        _point(values=None),
        _point(timestamp=1793577600),
        _point(timestamp="2026-11-02 00:00:00"),
        _point(timestamp="yesterday"),
        _point(timestamp=None),
        _point(timestamp="2026-11-02"),
        _point(timestamp="20261102T000000Z"),
        {"timeSeries": [{"dataPoints": [{"values": [1.0]}]}]},
        {"timeSeries": [], "time_series": []},
        {"series": [{"dataPoints": []}]},
        {"timeSeries": [{"groupLabels": ["m"], "points": [_point()["timeSeries"][0]["dataPoints"][0]]}]},
        {"timeSeries": [{"group": [], "groupLabels": []}]},
        {"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "value": [1.0]}]}]},
        {"timeSeries": [[{"dataPoints": []}]]},
    ],
    ids=[
        "series-object",
        "series-null",
        "limit-string",
        "limit-int",
        "series-not-object",
        "datapoints-object",
        "labels-string",
        "group-objects",
        "point-not-object",
        "values-scalar",
        "values-null",
        "timestamp-epoch",
        "timestamp-naive",
        "timestamp-garbage",
        "timestamp-null",
        "timestamp-date-only",
        "timestamp-basic-format",
        "dollars-without-timestamp",
        "both-field-names",
        "only-unknown-fields",
        "points-renamed",
        "defaults-printed-datapoints-missing",
        "values-renamed",
        "list-for-object",
    ],
)
def test_drifted_usage_shape_is_bad_response(doc: dict[str, Any]) -> None:
    """Any departure from the documented usage shape raises BAD_RESPONSE instead of guessing."""
    with pytest.raises(ProviderError) as info:
        parse_usage(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


@pytest.mark.parametrize(
    "value",
    [True, False, None, "0.5", "1413", {"val": "1"}, [1.0], float("nan"), float("inf"), float("-inf")],
    ids=["true", "false", "null", "string", "cents-string", "wrapped", "list", "nan", "inf", "-inf"],
)
def test_usage_value_must_be_a_finite_number_of_dollars(value: Any) -> None:
    """Booleans, strings (unit unknown), null and non-finite numbers are rejected, never summed."""
    with pytest.raises(ProviderError) as info:
        parse_usage(_point(values=[value]))
    assert info.value.cause is Cause.BAD_RESPONSE


def test_usage_nan_literal_in_json_is_rejected() -> None:
    """A `NaN` literal that Python's json accepts still fails as a non-finite amount."""
    doc = json.loads('{"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "values": [NaN]}]}]}')
    with pytest.raises(ProviderError) as info:
        parse_usage(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


def test_usage_float_is_read_by_its_shortest_repr() -> None:
    """0.1 + 0.2 dollars is exactly 0.3 in Decimal (floats go through str, not binary expansion)."""
    doc = {"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-02T00:00:00Z", "values": [0.1, 0.2]}]}]}
    assert month_to_date(PERIOD, parse_usage(doc)).total == Decimal("0.3")


def test_usage_outside_the_month_is_ignored() -> None:
    """A point from the previous month (a server that ignored the window) does not count."""
    doc = {
        "timeSeries": [
            {
                "dataPoints": [
                    {"timestamp": "2026-10-31T00:00:00Z", "values": [9.0]},
                    {"timestamp": "2026-11-01T00:00:00Z", "values": [1.0]},
                ]
            }
        ]
    }
    assert month_to_date(PERIOD, parse_usage(doc)).total == Decimal("1.0")


def test_negative_usage_is_noted() -> None:
    """A negative dollar amount (refund or unit error) is summed and flagged in the notes."""
    doc = {"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-01T00:00:00Z", "values": [-1.0, 3.0]}]}]}
    mtd = month_to_date(PERIOD, parse_usage(doc))
    assert mtd.total == Decimal("2.0")
    assert any("negative" in n for n in mtd.notes)


# --- limitReached ------------------------------------------------------------------------------


def test_complete_grouped_answer_needs_no_ungrouped_query() -> None:
    """When the grouped answer is complete it is both the total and the breakdown."""
    grouped = parse_usage(fixture("usage"))
    assert month_to_date(PERIOD, grouped) == month_to_date(PERIOD, grouped, None)
    assert month_to_date(PERIOD, grouped).partial_reason is None


def test_cut_grouped_answer_takes_its_total_from_the_ungrouped_one() -> None:
    """limitReached on the grouped call: total and days from the ungrouped call, complete, with a note."""
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage_limit_reached")), parse_usage(fixture("usage_ungrouped")))
    assert mtd.total == Decimal("4.75973725")
    assert [d.amount for d in mtd.daily] == [Decimal("0.95973725"), Decimal("1.2"), Decimal("2.6")]
    assert mtd.partial_reason is None
    assert [(b.key, b.amount) for b in mtd.breakdown] == [("API grok-4.3", Decimal("2.05973725"))]
    assert any("breakdown is incomplete" in n for n in mtd.notes)


def test_cut_ungrouped_answer_makes_the_report_partial() -> None:
    """limitReached on the ungrouped call too: the total is marked truncated, never passed off as complete."""
    ungrouped = parse_usage(fixture("usage_ungrouped"))
    cut = Usage(ungrouped.points, limit_reached=True)
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage_limit_reached")), cut)
    assert mtd.partial_reason == TRUNCATED
    assert mtd.total == Decimal("4.75973725")


def test_cut_grouped_answer_alone_is_partial() -> None:
    """Without an ungrouped answer, a cut grouped answer is partial."""
    mtd = month_to_date(PERIOD, parse_usage(fixture("usage_limit_reached")))
    assert mtd.partial_reason == TRUNCATED


# --- the usage request -------------------------------------------------------------------------


def test_usage_request_body_matches_the_documented_shape() -> None:
    """The body is the documented analyticsRequest: daily usd sum, Etc/GMT, grouped by description."""
    period = BillingPeriod.containing(dt.datetime(2026, 11, 28, 18, 0, 0, 123456, tzinfo=UTC))
    assert usage_request(period) == {
        "analyticsRequest": {
            "timeRange": {"startTime": "2026-11-01 00:00:00", "endTime": "2026-11-28 18:00:00", "timezone": "Etc/GMT"},
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": ["description"],
            "filters": [],
        }
    }


def test_ungrouped_usage_request_has_empty_group_by() -> None:
    """The fallback request for a complete total groups by nothing."""
    assert usage_request(PERIOD, ())["analyticsRequest"]["groupBy"] == []


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (dt.datetime(2026, 12, 1, 0, 5, tzinfo=UTC), "2026-12-01 00:00:00", "2026-12-01 00:05:00"),
        (dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12-01 00:00:00", "2026-12-31 23:59:59"),
        (dt.datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC), "2027-01-01 00:00:00", "2027-01-01 00:00:30"),
        (
            dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            "2027-01-01 00:00:00",
            "2027-01-01 01:00:00",
        ),
        (dt.datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "2028-02-01 00:00:00", "2028-02-29 12:00:00"),
    ],
    ids=["first-00:05", "dec-31-23:59:59", "jan-1-after-dec", "offset-now-is-utc-jan", "leap-day"],
)
def test_usage_window_runs_from_the_utc_first_to_now(now: dt.datetime, start: str, end: str) -> None:
    """The window is the 1st 00:00:00 UTC to now in UTC, `YYYY-MM-DD HH:MM:SS`, timezone Etc/GMT."""
    source = XAIBilling(XAIAccount(team_id=TEAM), _deps("http://127.0.0.1:9"))
    time_range = usage_request(source.billing_period(now))["analyticsRequest"]["timeRange"]
    assert time_range == {"startTime": start, "endTime": end, "timezone": "Etc/GMT"}


def test_billing_period_is_the_utc_calendar_month() -> None:
    """On Dec 31 20:00 at UTC-5 it is already January in UTC, so that is the period."""
    source = XAIBilling(XAIAccount(team_id=TEAM), _deps("http://127.0.0.1:9"))
    period = source.billing_period(dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))))
    assert (period.year, period.month, period.tz_name) == (2027, 1, "UTC")
    assert period.start == dt.datetime(2027, 1, 1, tzinfo=UTC)


# --- cents, invoice preview, spending limits, headroom -----------------------------------------


@pytest.mark.parametrize(
    ("value", "usd"),
    [
        ("1413", "14.13"),
        ({"val": "1413"}, "14.13"),
        ("-5000", "-50"),
        ({"val": "0"}, "0"),
        ({}, "0"),
        (1413, "14.13"),
        ({"val": 1413}, "14.13"),
        (1413.0, "14.13"),
        (str(2**63 - 1), "92233720368547758.07"),
    ],
    ids=[
        "bare",
        "wrapped",
        "negative",
        "wrapped-zero",
        "cent-of-zero-omitted",
        "number",
        "wrapped-number",
        "integral-float",
        "int64-max",
    ],
)
def test_cents_bare_or_wrapped_become_dollars(value: Any, usd: str) -> None:
    """int64 cents (a decimal string or an integer number, as proto3 JSON allows), bare or a Cent, / 100."""
    assert cents_to_usd(value, what="x") == Decimal(usd)


@pytest.mark.parametrize(
    "value",
    [
        14.13,
        True,
        None,
        [],
        "NaN",
        "Infinity",
        "twelve",
        "",
        {"value": "1"},
        {"val": 14.13},
        {"val": {"val": "1"}},
        {"val": "1", "currency": "USD"},
        " 12.5 ",
        "12.5",
        "1e3",
        " 12",
        "+12",
        str(2**63),
        "\uff11\uff12",
        [{"val": "1"}],
    ],
    ids=[
        "float",
        "bool",
        "null",
        "list",
        "nan",
        "inf",
        "word",
        "empty",
        "wrong-key",
        "wrapped-float",
        "double-wrapped",
        "extra-key",
        "fraction-spaces",
        "fraction",
        "exponent-string",
        "space",
        "plus",
        "beyond-int64",
        "fullwidth-digits",
        "list-for-object",
    ],
)
def test_cents_in_any_other_shape_are_bad_response(value: Any) -> None:
    """Anything but an int64 of cents, bare or a Cent, is a classified bad response (int64 has no fraction)."""
    with pytest.raises(ProviderError) as info:
        cents_to_usd(value, what="x")
    assert info.value.cause is Cause.BAD_RESPONSE


def test_invoice_preview_uses_total_with_corrections() -> None:
    """The documented preview: used = totalWithCorr, limit = effectiveSpendingLimit, both cents → USD."""
    assert parse_invoice_preview(fixture("postpaid_invoice_preview")) == InvoicePreview(
        used_usd=Decimal("14.13"), used_field="totalWithCorr", limit_usd=Decimal(100), cycle=(2026, 11)
    )


def test_invoice_preview_with_bare_strings_everywhere() -> None:
    """Bare cent strings parse the same way as wrapped ones."""
    preview = parse_invoice_preview(fixture("postpaid_invoice_preview_unwrapped"))
    assert (preview.used_usd, preview.used_field, preview.limit_usd) == (Decimal(15), "totalWithCorr", Decimal(100))


def test_invoice_preview_without_total_with_corrections_uses_amount_after_vat() -> None:
    """No totalWithCorr: used = amountAfterVat (here wrapped, as is the limit)."""
    preview = parse_invoice_preview(fixture("postpaid_invoice_preview_wrapped"))
    assert (preview.used_usd, preview.used_field) == (Decimal("20.5"), "amountAfterVat")
    assert preview.limit_usd == Decimal(250)


def _preview(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(fixture("postpaid_invoice_preview"))
    for key, value in changes.items():
        if key.startswith("core_"):
            doc["coreInvoice"][key.removeprefix("core_")] = value
        else:
            doc[key] = value
    return doc


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        doc["coreInvoice"].pop(key)
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        _preview(coreInvoice="1413"),
        _preview(coreInvoice=[]),
        _without(_preview(), "totalWithCorr", "amountAfterVat"),
        _preview(core_totalWithCorr=14.13),
        _preview(core_totalWithCorr={"val": 14.13}),
        _preview(effectiveSpendingLimit="100.00"),
        _preview(billingCycle="2026-11"),
        _preview(billingCycle={"year": 2026, "month": True}),
        _preview(billingCycle={"year": 2026, "month": 11.5}),
        _preview(error={"message": "denied"}),
        {"defaultCredits": "0", "coreInvoice": {}},
        {"effectiveSpendingLimit": "1", "effective_spending_limit": "1"},
    ],
    ids=[
        "core-string",
        "core-list",
        "no-amount",
        "amount-float",
        "wrapped-float",
        "limit-fraction",
        "cycle-string",
        "cycle-month-bool",
        "cycle-month-fraction",
        "error-envelope",
        "defaults-printed-limit-missing",
        "both-field-names",
    ],
)
def test_drifted_invoice_preview_is_bad_response(doc: dict[str, Any]) -> None:
    """A preview that lost its shape or changed units raises BAD_RESPONSE."""
    with pytest.raises(ProviderError) as info:
        parse_invoice_preview(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


@pytest.mark.parametrize("name", ["postpaid_spending_limits", "postpaid_spending_limits_unwrapped"])
def test_spending_limits_wrapped_or_bare(name: str) -> None:
    """effectiveSl reads the same whether wrapped as {"val": …} or bare."""
    assert parse_spending_limits(fixture(name)) == SpendingLimits(effective_usd=Decimal(100))


@pytest.mark.parametrize(
    "doc",
    [
        {"spendingLimits": []},
        {"spendingLimits": "10000"},
        {"spendingLimits": {"effectiveSl": 100.5}},
        {"spendingLimits": {"effectiveSl": {"val": True}}},
        {"spendingLimits": {"effectiveSl": [{"val": "1"}]}},
        {"error": "denied"},
    ],
    ids=["list", "string", "float", "wrapped-bool", "list-for-cent", "error-envelope"],
)
def test_drifted_spending_limits_are_bad_response(doc: dict[str, Any]) -> None:
    """A spending-limits answer without its object or with non-cent values raises BAD_RESPONSE."""
    with pytest.raises(ProviderError) as info:
        parse_spending_limits(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


def test_headroom_is_limit_minus_postpaid_used() -> None:
    """Headroom = effective spending limit − invoice total, in dollars."""
    preview = parse_invoice_preview(fixture("postpaid_invoice_preview"))
    room, notes = headroom(PERIOD, preview, parse_spending_limits(fixture("postpaid_spending_limits")))
    assert room == Headroom(Decimal(100), Decimal("14.13"), Decimal("85.87"), "xAI effective spending limit")
    assert notes == ()


def test_headroom_falls_back_to_effective_sl_without_preview() -> None:
    """With only the spending limits the limit is known and the amount used is not."""
    room, _ = headroom(PERIOD, None, SpendingLimits(Decimal(100)))
    assert room == Headroom(Decimal(100), None, None, "xAI effective spending limit")


def test_headroom_prefers_the_preview_limit_and_notes_a_disagreement() -> None:
    """When the two limit fields differ the invoice preview's wins and the difference is visible."""
    preview = InvoicePreview(Decimal(10), "totalWithCorr", Decimal(100), (2026, 11))
    room, notes = headroom(PERIOD, preview, SpendingLimits(Decimal(200)))
    assert room is not None and room.limit_usd == Decimal(100) and room.remaining_usd == Decimal(90)
    assert notes == (
        "xAI spending limits disagree: invoice preview $100.00, spending-limits $200.00; using the invoice preview's",
    )


def test_headroom_ignores_an_invoice_of_another_cycle() -> None:
    """A preview still on last month (e.g. the 1st at 00:05) gives the limit but not the amount used."""
    preview = InvoicePreview(Decimal(90), "totalWithCorr", Decimal(100), (2026, 10))
    room, notes = headroom(PERIOD, preview, None)
    assert room == Headroom(Decimal(100), None, None, "xAI effective spending limit")
    assert notes == ("xAI invoice preview is for 2026-10, not 2026-11: amount used unknown",)


def test_no_limit_anywhere_means_no_headroom() -> None:
    """Neither endpoint names a limit: no headroom, and a note says so."""
    preview = InvoicePreview(Decimal(1), "amountAfterVat", None, None)
    note = "xAI reported no effective spending limit: headroom unknown"
    assert headroom(PERIOD, preview, SpendingLimits(None)) == (None, (note,))
    assert headroom(PERIOD, None, None) == (None, ())


def test_zero_limit_is_prepaid_only_not_negative_headroom() -> None:
    """A $0 effective limit (prepaid-only team) gives no headroom instead of a negative remainder."""
    preview = InvoicePreview(Decimal(12), "totalWithCorr", Decimal(0), (2026, 11))
    room, notes = headroom(PERIOD, preview, SpendingLimits(Decimal(0)))
    assert room is None
    assert notes == ("xAI postpaid spending limit is $0 (prepaid only?): no postpaid headroom",)


# --- read-only by construction ----------------------------------------------------------------


def test_read_calls_are_exactly_the_three_reads() -> None:
    """The only POST is the usage analytics query; no prepaid, top-up or other mutating path is allowed."""
    assert {USAGE, INVOICE_PREVIEW, SPENDING_LIMITS} == READ_CALLS
    assert {(m, p) for m, p in READ_CALLS if m != "GET"} == {("POST", "/v1/billing/teams/{team}/usage")}
    assert not any("prepaid" in p or "top-up" in p for _, p in READ_CALLS)


def test_a_call_outside_read_calls_is_refused_before_sending() -> None:
    """`_call` refuses prepaid/top-up without making a request."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    with (
        httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(ValueError, match="not a read call"),
    ):
        _call(client, ("POST", "/v1/billing/teams/{team}/prepaid/top-up"), TEAM, deadline=Deadline(5))
    assert sent == []


def test_team_id_cannot_change_the_path() -> None:
    """A team id with slashes is percent-encoded, so it cannot steer the request to another endpoint."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"spendingLimits": {}})

    with httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client:
        _call(client, SPENDING_LIMITS, "t/../../prepaid/top-up", deadline=Deadline(5))
    assert seen == ["/v1/billing/teams/t%2F..%2F..%2Fprepaid%2Ftop-up/postpaid/spending-limits"]


def test_usage_points_carry_day_dollars_and_group() -> None:
    """A parsed point keeps its UTC day, its dollars as Decimal and its group label."""
    first = parse_usage(fixture("usage")).points[0]
    assert first == UsagePoint(dt.date(2026, 11, 1), Decimal("0.75973725"), "API grok-4.3")


# --- fetches through the simulator -----------------------------------------------------------

SIM_KEY = "xai-mgmt-sim-test-4Rk9"
SIM_TEAM = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
SIM_CLOCK = "2026-11-28T18:30:00Z"
IDLE_KEY = "xai-mgmt-sim-idle-7Qz2"
IDLE_TEAM = "3b241101-e2bb-4255-8caf-4136c566a962"
SIM_SCENARIO: dict[str, Any] = {
    "name": "xai-tests",
    "accounts": [
        {
            "provider": "xai",
            "label": "core",
            "key": SIM_KEY,
            "team_id": SIM_TEAM,
            "spending_limit_usd": "1000",
            "prepaid_credit_usd": "200",
            "spend": {"base_daily_usd": "25", "daily_growth_pct": "2", "jitter_pct": "15"},
            "breakdown": {
                "description": [
                    {"id": "grok-4.3 input tokens", "weight": 34},
                    {"id": "grok-4.3 output tokens", "weight": 46},
                    {"id": "grok-4-fast input tokens", "weight": 8},
                    {"id": "grok-4-fast output tokens", "weight": 12},
                ]
            },
        },
        {
            "provider": "xai",
            "label": "idle",
            "key": IDLE_KEY,
            "team_id": IDLE_TEAM,
            "spend": {"base_daily_usd": "0"},
            "breakdown": {"description": [{"id": "grok-4.3 input tokens", "weight": 1}]},
        },
    ],
}


@pytest.fixture(scope="module")
def _server() -> Iterator[Simulator]:
    with Simulator.start(SIM_SCENARIO, clock=SIM_CLOCK) as sim:
        yield sim


@pytest.fixture
def sim(_server: Simulator) -> Simulator:
    _server.reset()
    return _server


def _deps(base_url: str, key: str = SIM_KEY) -> Deps:
    return Deps(secrets=SecretResolver(env={"XAI_MANAGEMENT_KEY": key}), base_urls={"xai": base_url})


def _source(sim: Simulator, *, key: str = SIM_KEY, team: str = SIM_TEAM) -> XAIBilling:
    return XAIBilling(XAIAccount(label="core", team_id=team), _deps(sim.url, key))


def _fetch(sim: Simulator, *, key: str = SIM_KEY, team: str = SIM_TEAM, seconds: float = 30) -> CostReport:
    source = _source(sim, key=key, team=team)
    return source.fetch(source.billing_period(sim.now()), Deadline(seconds))


def _template(path: str) -> str:
    return path.replace(SIM_TEAM, "{team}", 1)


def _calls(sim: Simulator) -> list[tuple[str, str]]:
    return [(r["method"], _template(r["path"])) for r in sim.requests()]


@pytest.mark.parametrize(
    "clock",
    [
        "2026-11-28T18:30:00Z",
        "2026-11-30T23:59:59Z",
        "2026-12-01T00:05:00Z",
        "2026-12-01T07:00:00Z",
        "2027-01-01T00:05:00Z",
        "2027-01-02T12:00:00Z",
    ],
    ids=["late-month", "last-second", "first-00:05", "first-07:00", "jan-1-00:05", "jan-2"],
)
def test_month_to_date_equals_the_simulator_exactly(sim: Simulator, clock: str) -> None:
    """Total, days and per-model lines equal the simulator's expected values to the last digit."""
    sim.set_clock(clock)
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert {d.day: d.amount for d in report.daily} == sim.expected_daily(SIM_KEY)
    expected_lines = sim.expected_breakdown(SIM_KEY).get("description", {})
    assert {b.key: b.amount for b in report.breakdown} == {k: v for k, v in expected_lines.items() if v}
    assert {b.dimension for b in report.breakdown} <= {"model"}
    assert report.partial_reason is None
    assert report.freshness.as_of == sim.now()
    assert report.requests == 3


def test_fetch_sends_the_documented_usage_body(sim: Simulator) -> None:
    """The request on the wire is the documented analyticsRequest for the 1st 00:00 to the clock."""
    _fetch(sim)
    usage = [r for r in sim.requests() if r["path"].endswith("/usage")]
    assert [u["body"]["analyticsRequest"]["timeRange"] for u in usage] == [
        {"startTime": "2026-11-01 00:00:00", "endTime": "2026-11-28 18:30:00", "timezone": "Etc/GMT"}
    ]


def test_headroom_from_the_simulated_spending_limit(sim: Simulator) -> None:
    """Limit $1,000 (cents strings), used = the invoice's totalWithCorr, remaining = limit − used."""
    report = _fetch(sim)
    room = report.headroom
    assert room is not None
    assert room.limit_usd == Decimal(1000)
    assert room.used_usd is not None and abs(room.used_usd - report.mtd_usd) < Decimal("0.05")
    assert room.used_usd == room.used_usd.quantize(Decimal("0.01"))
    assert room.remaining_usd == Decimal(1000) - room.used_usd
    assert report.notes == ()


def test_grouped_limit_reached_falls_back_to_one_ungrouped_call(sim: Simulator) -> None:
    """A cut grouped answer is followed by one ungrouped call whose complete total is reported."""
    sim.add_fault("xai", "limit_reached", count=1, endpoint="/usage")
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert report.partial_reason is None
    assert any("breakdown is incomplete" in n for n in report.notes)
    usage = [r["body"]["analyticsRequest"]["groupBy"] for r in sim.requests() if r["path"].endswith("/usage")]
    assert usage == [["description"], []]
    assert report.requests == 4


def test_limit_reached_on_both_calls_is_partial(sim: Simulator) -> None:
    """When the ungrouped answer is cut too, the report says the total is truncated."""
    sim.add_fault("xai", "limit_reached", endpoint="/usage")
    report = _fetch(sim)
    assert report.partial_reason == "xAI analytics hit its result limit: the total is truncated"
    assert report.mtd_usd < sim.expected_mtd(SIM_KEY)
    assert report.requests == 4


def test_every_request_is_a_read_call_even_with_retries(sim: Simulator) -> None:
    """Across a whole fetch with retries and the fallback, the log holds only READ_CALLS, nothing mutating."""
    sim.add_fault("xai", "http_500", count=1, endpoint="/usage")
    sim.add_fault("xai", "limit_reached", count=1, endpoint="/usage")
    sim.add_fault("xai", "http_429", count=1, endpoint="/postpaid/invoice/preview")
    sim.add_fault("xai", "reset", count=1, endpoint="/postpaid/spending-limits")
    sim.add_fault("xai", "http_503", count=1, endpoint="/postpaid/spending-limits")
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert report.headroom is not None and report.headroom.used_usd is not None
    assert not any("context unavailable" in n for n in report.notes)
    log = sim.requests()
    assert len(log) == report.requests == 8  # usage 2 + 1 ungrouped, invoice preview 2, spending limits 3
    assert {(m, p) for m, p in _calls(sim)} <= READ_CALLS
    assert not any(r["mutating"] for r in log)
    assert not any("prepaid" in r["path"] or "top-up" in r["path"] for r in log)
    assert [m for m, p in _calls(sim) if m != "GET"] == ["POST"] * 3
    assert {r["provider"] for r in log} == {"xai"}


@pytest.mark.parametrize(
    ("mode", "cause", "requests"),
    [
        ("http_401", Cause.AUTH, 1),
        ("http_403", Cause.PERMISSION, 1),
        ("http_404", Cause.NOT_FOUND, 1),
        ("http_500", Cause.SERVER_ERROR, 3),
        ("http_502", Cause.SERVER_ERROR, 3),
        ("http_429", Cause.RATE_LIMIT, 3),
        ("http_429_no_retry_after", Cause.RATE_LIMIT, 3),
        ("reset", Cause.CONNECTION, 3),
        ("html_200", Cause.BAD_RESPONSE, 1),
        ("error_envelope_200", Cause.BAD_RESPONSE, 1),
        ("drift_missing_data", Cause.BAD_RESPONSE, 1),
        ("drift_amount_type", Cause.BAD_RESPONSE, 1),
        ("truncated_json", Cause.BAD_RESPONSE, 1),
        ("huge", Cause.BAD_RESPONSE, 1),
    ],
)
def test_usage_faults_fail_the_account_with_their_cause(sim: Simulator, mode: str, cause: Cause, requests: int) -> None:
    """A failing usage call fails the account with a classified cause (never $0); context calls stay reads."""
    sim.add_fault("xai", mode, endpoint="/usage")
    with pytest.raises(ProviderError) as info:
        _fetch(sim)
    assert info.value.cause is cause
    calls = _calls(sim)
    assert [c for c in calls if c == USAGE] == [USAGE] * requests
    assert set(calls) <= READ_CALLS  # the two context reads went out alongside the usage call


def test_usage_timeout_is_a_timeout(sim: Simulator) -> None:
    """A usage call that never answers fails as TIMEOUT within the check's deadline."""
    sim.add_fault("xai", "timeout", endpoint="/usage", seconds=5)
    with pytest.raises(ProviderError) as info:
        _fetch(sim, seconds=1.0)
    assert info.value.cause is Cause.TIMEOUT


def test_unknown_key_is_auth(sim: Simulator) -> None:
    """An inference key or a revoked management key is 401 → AUTH, not $0."""
    with pytest.raises(ProviderError) as info:
        _fetch(sim, key="xai-inference-key-not-management")
    assert info.value.cause is Cause.AUTH


def test_other_team_is_permission(sim: Simulator) -> None:
    """A key used for a team it cannot see is 403 → PERMISSION."""
    with pytest.raises(ProviderError) as info:
        _fetch(sim, team="00000000-0000-0000-0000-000000000000")
    assert info.value.cause is Cause.PERMISSION


def test_missing_key_names_the_variable(sim: Simulator) -> None:
    """No management key configured: a SecretError naming XAI_MANAGEMENT_KEY, before any request."""
    source = XAIBilling(
        XAIAccount(label="core", team_id=SIM_TEAM), Deps(secrets=SecretResolver(env={}), base_urls={"xai": sim.url})
    )
    with pytest.raises(SecretError, match="XAI_MANAGEMENT_KEY"):
        source.fetch(source.billing_period(sim.now()), Deadline(5))
    assert sim.requests() == []


def test_failed_invoice_preview_leaves_a_note_and_the_limit(sim: Simulator) -> None:
    """A 403 on the invoice preview keeps the month-to-date; headroom has the limit only, and a note says why."""
    sim.add_fault("xai", "http_403", endpoint="/postpaid/invoice/preview")
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert report.headroom == Headroom(Decimal(1000), None, None, "xAI effective spending limit")
    assert report.notes == ("spending-limit context unavailable: invoice preview: key lacks billing/admin permission",)


def test_failed_context_calls_never_fail_the_account(sim: Simulator) -> None:
    """Both context endpoints down (after retries): month-to-date OK, no headroom, two visible notes."""
    sim.add_fault("xai", "http_500", endpoint="/postpaid/")
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert report.headroom is None
    assert report.notes == (
        "spending-limit context unavailable: invoice preview: provider server error",
        "spending-limit context unavailable: spending limits: provider server error",
    )
    assert report.requests == 1 + 3 + 3


def test_drifted_context_is_a_note_not_a_failure(sim: Simulator) -> None:
    """Spending limits with a drifted amount type: noted as a bad response, the preview's limit still used."""
    sim.add_fault("xai", "drift_amount_type", endpoint="/postpaid/spending-limits")
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert report.headroom is not None and report.headroom.limit_usd == Decimal(1000)
    assert report.notes == ("spending-limit context unavailable: spending limits: unexpected response shape",)


def test_first_second_of_the_month_skips_the_empty_usage_window(sim: Simulator) -> None:
    """At the 1st 00:00:00 the window is empty: $0 without a usage call (the API may refuse start == end)."""
    sim.set_clock("2026-12-01T00:00:00Z")
    report = _fetch(sim)
    assert report.mtd_usd == Decimal(0)
    assert [d.day for d in report.daily] == [dt.date(2026, 12, 1)]
    assert USAGE not in _calls(sim)
    assert report.requests == 2


def _wire(sim: Simulator, key: str, team: str) -> dict[str, Any]:
    """The three read answers exactly as the simulator put them on the wire."""
    base = f"{sim.url}/v1/billing/teams/{team}"
    source = XAIBilling(XAIAccount(label="x", team_id=team), _deps(sim.url, key))
    body = usage_request(source.billing_period(sim.now()))
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
        return {
            "usage": http.post(f"{base}/usage", json=body).json(),
            "preview": http.get(f"{base}/postpaid/invoice/preview").json(),
            "limits": http.get(f"{base}/postpaid/spending-limits").json(),
        }


def test_answers_without_their_defaults_give_the_same_report(sim: Simulator) -> None:
    """A simulator printing like a default proto3 JSON printer (no zeros, no false) yields the same report."""
    sim.add_fault("xai", "proto3_omit_defaults")
    wire = _wire(sim, SIM_KEY, SIM_TEAM)
    assert "limitReached" not in wire["usage"] and "vatCost" not in wire["preview"]["coreInvoice"]
    report = _fetch(sim)
    assert report.mtd_usd == sim.expected_mtd(SIM_KEY)
    assert {d.day: d.amount for d in report.daily} == sim.expected_daily(SIM_KEY)
    assert report.headroom is not None and report.headroom.limit_usd == Decimal(1000)
    assert report.headroom.used_usd is not None and abs(report.headroom.used_usd - report.mtd_usd) < Decimal("0.05")
    assert report.notes == () and report.partial_reason is None


def test_an_idle_team_answering_empty_objects_is_a_real_zero(sim: Simulator) -> None:
    """An idle prepaid-only team printed without defaults (usage `{}`, zero Cents `{}`): $0 and a note, no failure."""
    sim.add_fault("xai", "proto3_omit_defaults")
    wire = _wire(sim, IDLE_KEY, IDLE_TEAM)
    assert wire["usage"] == {}
    assert wire["preview"]["coreInvoice"]["totalWithCorr"] == {}
    assert wire["limits"]["spendingLimits"]["effectiveSl"] == {}
    report = _fetch(sim, key=IDLE_KEY, team=IDLE_TEAM)
    assert report.mtd_usd == Decimal(0) == sim.expected_mtd(IDLE_KEY)
    assert [d.amount for d in report.daily] == [Decimal(0)] * 28
    assert report.breakdown == () and report.partial_reason is None and report.headroom is None
    assert report.notes == ("xAI postpaid spending limit is $0 (prepaid only?): no postpaid headroom",)


def test_registry_builds_the_xai_source() -> None:
    """`build_source("xai", …)` returns this module's source, which meets the CostSource shape."""
    source = build_source("xai", XAIAccount(team_id=TEAM), _deps("http://127.0.0.1:9"))
    assert isinstance(source, XAIBilling)
    assert source.provider == "xai"


# --- proto3 JSON omissions, printed and read by the protobuf runtime ------------------------------
# tests/fixtures/xai/billing_subset.proto is the part of xai-org/xai-proto that the parsers read. The
# protobuf runtime builds those messages, clears one field at a time, prints each variant as a default
# printer (omits defaults), with proto field names, as Python's always_print_fields_with_no_presence
# and as Go's EmitUnpopulated (unset messages as null), and reads the amount the proto means; the
# parsers must agree. Then every field a parser reads is given a shape its proto type forbids.

_PROTO = xai_proto_subset.classes()
Path_ = tuple[tuple[str, int | None], ...]
_TIMESTAMP = xai_proto_subset.TIMESTAMP


def _field_paths(message: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every populated field, as the path that reaches it (a list index for elements of repeated messages)."""
    for field, value in message.ListFields():
        yield (*prefix, (field.name, None))
        if field.type != FieldDescriptorProto.TYPE_MESSAGE or field.message_type.full_name == _TIMESTAMP:
            continue
        if xai_proto_subset.is_repeated(field):
            for i, item in enumerate(value):
                yield from _field_paths(item, (*prefix, (field.name, i)))
        else:
            yield from _field_paths(value, (*prefix, (field.name, None)))


def _cleared(message: Any, path: Path_) -> Any:
    """A copy of `message` with the field at `path` cleared (its default, or unset); `()` clears everything."""
    copy_ = type(message)()
    copy_.CopyFrom(message)
    if not path:
        copy_.Clear()
        return copy_
    target = copy_
    for name, index in path[:-1]:
        target = getattr(target, name) if index is None else getattr(target, name)[index]
    target.ClearField(path[-1][0])
    return copy_


def _with_nulls(message: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Go protojson's EmitUnpopulated on top of Python's: unset singular message fields printed as null."""
    for field in message.DESCRIPTOR.fields:
        if field.type != FieldDescriptorProto.TYPE_MESSAGE or field.message_type.full_name == _TIMESTAMP:
            if field.type == FieldDescriptorProto.TYPE_MESSAGE and not message.HasField(field.name):
                doc[field.json_name] = None
            continue
        value = getattr(message, field.name)
        if xai_proto_subset.is_repeated(field):
            for item, item_doc in zip(value, doc[field.json_name], strict=True):
                _with_nulls(item, item_doc)
        elif message.HasField(field.name):
            _with_nulls(value, doc[field.json_name])
        else:
            doc[field.json_name] = None
    return doc


def _printed(message: Any) -> dict[str, dict[str, Any]]:
    with_defaults = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return {
        "omitting": json_format.MessageToDict(message),
        "proto-names": json_format.MessageToDict(message, preserving_proto_field_name=True),
        "with-defaults": with_defaults,
        "go-emit-unpopulated": _with_nulls(message, copy.deepcopy(with_defaults)),
    }


def _variants(message_name: str, *fixture_names: str) -> list[Any]:
    """One pytest param per (fixture, cleared field, printer), each fixture read into the proto message."""
    out = []
    for fixture_name in fixture_names:
        message = json_format.ParseDict(fixture(fixture_name), _PROTO[message_name](), ignore_unknown_fields=True)
        for path in [(), *_field_paths(message)]:
            variant = _cleared(message, path)
            name = ".".join(f"{n}[{i}]" if i is not None else n for n, i in path) or "everything"
            for printer, doc in _printed(variant).items():
                out.append(pytest.param(variant, doc, id=f"{fixture_name}:{name}-{printer}"))
    return out


def _expected_usage(message: Any) -> tuple[Decimal, bool, set[str | None]] | None:
    """What the proto means: dollars in the period, the cut flag, the groups; None when it cannot be placed."""
    total, groups = Decimal(0), set()
    for series in message.time_series:
        label = " / ".join(p for p in series.group_labels if p) or " / ".join(p for p in series.group if p) or None
        for point in series.data_points:
            if not point.HasField("timestamp"):
                if any(point.values):
                    return None  # dollars that no day can hold
                continue
            if PERIOD.first_day <= point.timestamp.ToDatetime(tzinfo=UTC).date() <= PERIOD.last_day:
                total += sum((Decimal(repr(v)) for v in point.values), Decimal(0))
                groups |= {label} if point.values else set()
    return total, message.limit_reached, groups


@pytest.mark.parametrize(
    ("message", "doc"), _variants("AnalyticsResponse", "usage", "usage_limit_reached", "usage_ungrouped")
)
def test_usage_omissions_the_proto_allows_parse_to_the_amount_it_means(message: Any, doc: dict[str, Any]) -> None:
    """Each AnalyticsResponse field cleared, printed three ways: the proto's dollars (dateless dollars: drift)."""
    expected = _expected_usage(message)
    if expected is None:
        with pytest.raises(ProviderError) as info:
            parse_usage(doc)
        assert info.value.cause is Cause.BAD_RESPONSE
        return
    usage = parse_usage(doc)
    assert (month_to_date(PERIOD, usage).total, usage.limit_reached, {p.group for p in usage.points}) == expected


def _cents(message: Any) -> Decimal:
    return Decimal(message.val) / 100


@pytest.mark.parametrize(
    ("message", "doc"), _variants("GetAmountToPayResp", "postpaid_invoice_preview", "postpaid_invoice_preview_no_total")
)
def test_invoice_preview_omissions_the_proto_allows_parse_to_the_cents_they_mean(
    message: Any, doc: dict[str, Any]
) -> None:
    """Every GetAmountToPayResp field cleared and printed three ways: used, limit and cycle as the proto reads them."""
    core = message.core_invoice
    used = None
    if message.HasField("core_invoice"):
        used = (
            _cents(core.total_with_corr) if core.HasField("total_with_corr") else Decimal(core.amount_after_vat) / 100
        )
    cycle = (message.billing_cycle.year, message.billing_cycle.month) if message.HasField("billing_cycle") else None
    preview = parse_invoice_preview(doc)
    assert (preview.used_usd, preview.limit_usd, preview.cycle) == (
        used, Decimal(message.effective_spending_limit) / 100, cycle
    )  # fmt: skip


@pytest.mark.parametrize(("message", "doc"), _variants("GetSpendingLimitsResp", "postpaid_spending_limits"))
def test_spending_limits_omissions_the_proto_allows_parse_to_the_cents_they_mean(
    message: Any, doc: dict[str, Any]
) -> None:
    """Each GetSpendingLimitsResp field cleared, printed three ways: effectiveSl as the proto reads it."""
    limits = message.spending_limits
    expected = (
        _cents(limits.effective_sl) if message.HasField("spending_limits") and limits.HasField("effective_sl") else None
    )
    assert parse_spending_limits(doc) == SpendingLimits(effective_usd=expected)


def test_the_parsers_field_names_are_the_protos() -> None:
    """The JSON names the parsers know per message are exactly those of the proto subset's fields."""
    names = {n: tuple(f.json_name for f in cls.DESCRIPTOR.fields) for n, cls in _PROTO.items()}
    assert set(xai.RESPONSE_FIELDS) == set(names["AnalyticsResponse"])
    assert set(xai.SERIES_FIELDS) == set(names["TimeSeries"])
    assert set(xai.POINT_FIELDS) == set(names["DataPoint"])
    assert set(xai.PREVIEW_FIELDS) == set(names["GetAmountToPayResp"])
    assert set(xai.INVOICE_FIELDS) == set(names["CoreInvoice"])


def test_an_idle_team_printed_by_a_default_printer_is_zero_everywhere() -> None:
    """`{}` from all three endpoints (nothing spent, no limit, nothing set): $0, a $0 limit, no invoice, no limit."""
    assert month_to_date(PERIOD, parse_usage({})).total == Decimal(0)
    assert parse_invoice_preview({}) == InvoicePreview(None, "amountAfterVat", Decimal(0), None)
    assert parse_spending_limits({}) == SpendingLimits(None)
    empty = {"coreInvoice": {}, "billingCycle": {"year": 2026, "month": 11}}
    assert parse_invoice_preview(empty) == InvoicePreview(Decimal(0), "amountAfterVat", Decimal(0), (2026, 11))
    zero = {"coreInvoice": {"totalWithCorr": {}}, "billingCycle": {"year": 2026, "month": 11}}
    assert parse_invoice_preview(zero).used_usd == Decimal(0)
    assert parse_spending_limits({"spendingLimits": {"effectiveSl": {}}}) == SpendingLimits(Decimal(0))


def test_proto_field_names_are_read_like_json_names() -> None:
    """Parsers accept the proto field name as well as the JSON name (the mapping lets printers use either)."""
    point = {"timestamp": "2026-11-02T00:00:00Z", "values": [1.5]}
    doc = {"time_series": [{"group_labels": ["m"], "data_points": [point]}], "limit_reached": True}
    usage = parse_usage(doc)
    assert (month_to_date(PERIOD, usage).total, usage.limit_reached) == (Decimal("1.5"), True)
    doc = {"core_invoice": {"total_with_corr": {"val": "250"}}, "effective_spending_limit": "900"}
    preview = parse_invoice_preview(doc)
    assert (preview.used_usd, preview.limit_usd) == (Decimal("2.5"), Decimal(9))


_WRONG_SHAPE = {  # per proto type: values no proto3 printer writes for it, and the drift they stand for
    FieldDescriptorProto.TYPE_MESSAGE: [[{}], "x", 1],
    FieldDescriptorProto.TYPE_INT64: ["12.5", 12.5, "1e3", True, {"val": "1"}, [1]],
    FieldDescriptorProto.TYPE_INT32: ["11.5", 11.5, True, None, [1]],
    FieldDescriptorProto.TYPE_DOUBLE: ["1.5", "NaN", "Infinity", True, None, {"usd": 1.5}, [1.5]],
    FieldDescriptorProto.TYPE_BOOL: ["true", 1, None],
    FieldDescriptorProto.TYPE_STRING: [1, None, ["m"], {"m": 1}],
}
_REPEATED_WRONG = [{}, "x", None, 1]


def _tolerated(field: Any, wrong: Any) -> bool:
    """The one liberty the parser takes on purpose: cents bare where a Cent belongs, or wrapped where an int64 does."""
    if field.type == FieldDescriptorProto.TYPE_MESSAGE and field.message_type.name == "Cent":
        return isinstance(wrong, int) and not isinstance(wrong, bool)
    in_cent = field.containing_type.name == "Cent"
    return field.type == FieldDescriptorProto.TYPE_INT64 and not in_cent and wrong == {"val": "1"}


_TIMESTAMP_WRONG = [1793577600, "2026-11-02", "2026-11-02 00:00:00", {"seconds": 1}, ["2026-11-02T00:00:00Z"]]


def _drifted(message_name: str, fixture_name: str, read: Iterator[str] | None = None) -> list[Any]:
    """One pytest param per (field the parser reads, shape its proto type forbids), in the printed fixture.

    `read` limits the fields to those dotted proto paths (list indices dropped); None means all of them.
    """
    message = json_format.ParseDict(fixture(fixture_name), _PROTO[message_name](), ignore_unknown_fields=True)
    doc = json_format.MessageToDict(message)
    wanted = None if read is None else set(read)
    out = []

    def walk(descriptor: Any, node: dict[str, Any], at: tuple[Any, ...], dotted: str) -> None:
        for field in descriptor.fields:
            if field.json_name not in node:
                continue
            name = f"{dotted}.{field.name}".lstrip(".")
            value, where = node[field.json_name], (*at, field.json_name)
            is_message = field.type == FieldDescriptorProto.TYPE_MESSAGE
            timestamp = is_message and field.message_type.full_name == _TIMESTAMP
            if xai_proto_subset.is_repeated(field):
                wrong = list(_REPEATED_WRONG)
                for i, item in enumerate(value):
                    if is_message:
                        walk(field.message_type, item, (*where, i), name)
                    else:
                        wrong_items = _WRONG_SHAPE[field.type]
                        out.extend((name, (*where, i), w) for w in wrong_items if wanted is None or name in wanted)
            else:
                wrong = _TIMESTAMP_WRONG if timestamp else _WRONG_SHAPE[field.type]
                if is_message and not timestamp:
                    walk(field.message_type, value, where, name)
            if wanted is None or name in wanted:
                out.extend((name, where, w) for w in wrong if not _tolerated(field, w))

    walk(message.DESCRIPTOR, doc, (), "")
    params = []
    for name, where, wrong in out:
        variant = copy.deepcopy(doc)
        target = variant
        for step in where[:-1]:
            target = target[step]
        target[where[-1]] = wrong
        params.append(pytest.param(variant, id=f"{name}={json.dumps(wrong)}"))
    return params


@pytest.mark.parametrize(
    "doc", [*_drifted("AnalyticsResponse", "usage"), *_drifted("AnalyticsResponse", "usage_ungrouped")]
)
def test_usage_shapes_the_proto_forbids_fail(doc: dict[str, Any]) -> None:
    """Every usage field given a shape its proto type forbids (list for object, string dollars, …) is BAD_RESPONSE."""
    with pytest.raises(ProviderError) as info:
        parse_usage(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


_PREVIEW_READ = ("core_invoice", "core_invoice.total_with_corr", "core_invoice.total_with_corr.val",
                 "effective_spending_limit", "billing_cycle", "billing_cycle.year", "billing_cycle.month")  # fmt: skip


@pytest.mark.parametrize(
    "doc",
    _drifted("GetAmountToPayResp", "postpaid_invoice_preview", iter(_PREVIEW_READ))
    + _drifted("GetAmountToPayResp", "postpaid_invoice_preview_no_total", iter(("core_invoice.amount_after_vat",))),
)
def test_invoice_preview_shapes_the_proto_forbids_fail(doc: dict[str, Any]) -> None:
    """Every preview field the parser reads, given a shape its proto type forbids, is BAD_RESPONSE."""
    with pytest.raises(ProviderError) as info:
        parse_invoice_preview(doc)
    assert info.value.cause is Cause.BAD_RESPONSE


@pytest.mark.parametrize(
    "doc",
    _drifted("GetSpendingLimitsResp", "postpaid_spending_limits",
             iter(("spending_limits", "spending_limits.effective_sl", "spending_limits.effective_sl.val"))),
)  # fmt: skip
def test_spending_limits_shapes_the_proto_forbids_fail(doc: dict[str, Any]) -> None:
    """Every spending-limits field the parser reads, given a shape its proto type forbids, is BAD_RESPONSE."""
    with pytest.raises(ProviderError) as info:
        parse_spending_limits(doc)
    assert info.value.cause is Cause.BAD_RESPONSE
