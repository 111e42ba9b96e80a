"""Bad input, property-based: the budget document and every provider's payload parser.

(a) The budget document: any JSON text, any JSON document and any mutation of a valid one is either a
    valid `BudgetConfig` or a `ConfigError` whose message names the field (never another exception,
    never a traceback); and a document that is accepted can be evaluated and rendered without a crash.
(b) Provider payloads (OpenAI costs pages, Anthropic cost report pages, xAI usage / invoice preview /
    spending limits, Gemini's query rows): a generated valid payload parses to exactly the Decimal sum
    of the amounts it was built from; any other payload (an arbitrary document, or a valid one with a
    value swapped, a key dropped or a number turned into text) raises `ProviderError` with a `Cause`,
    or parses to the total a small independent reading of the documented shape gives. Never another
    exception, never a silent $0 for a drifted shape.

A fixed, derandomized example budget keeps the file fast and the same on every run.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import xai_proto_subset
from google.protobuf import json_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import report_for

from alerts import rules, slack
from config import BudgetConfig, ConfigError, parse_budget_config
from errors import Cause, ProviderError
from models import PACIFIC, UTC, BillingPeriod
from providers import anthropic, bedrock, gemini, openai, openrouter, xai
from providers._aggregate import CostAccumulator

FIXED = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
PERIOD = BillingPeriod.containing(NOW)  # UTC November, today the 28th
PACIFIC_PERIOD = BillingPeriod.containing(NOW, PACIFIC)
WIDE = decimal.Context(prec=60, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)  # the oracles never overflow
TIMESTAMPS = [  # strings that look like instants, including the ones at the ends of the datetime range
    "2026-11-03T00:00:00Z",
    "2026-11-03T00:00:00+00:00",
    "2026-11-03T00:00:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-13-01T00:00:00Z",
]
NUMBERS_AS_TEXT = ["1e999999999", "-1e999999999", "1e-999999999", "NaN", "sNaN", "-Infinity", "1_000", " 12.5 ", ""]
ODD = st.sampled_from([*TIMESTAMPS, *NUMBERS_AS_TEXT, 10**18, -(10**14), 2**63, 1e308, -0.0, True, "usd", "USD"])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | ODD
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=10), JSON, max_size=5)


# --- helpers: paths into a document, drift, and the one check every parser must pass -------------------


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node below the root, as a path of keys and indices."""
    out: list[tuple[Any, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        out.append((*at, key))
        out.extend(_paths(value, (*at, key)))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def drifted(
    draw: st.DrawFn, valid: st.SearchStrategy[Any], values: st.SearchStrategy[Any] = JSON, *, min_depth: int = 1
) -> Any:
    """A valid document with one node (at least `min_depth` deep) replaced, deleted, wrapped or stringified."""
    doc = copy.deepcopy(draw(valid))
    paths = [p for p in _paths(doc) if len(p) >= min_depth]
    if not paths:
        return doc
    path = draw(st.sampled_from(paths))
    parent, key = _parent(doc, path), path[-1]
    op = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "text"]))
    if op == "delete":
        del parent[key]
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "text":
        parent[key] = str(parent[key])
    else:
        parent[key] = draw(values)
    return doc


def _same(got: Decimal, want: Decimal) -> bool:
    """Equal up to rounding at the 28th significant digit (sums may be taken in another order)."""
    with decimal.localcontext(WIDE):
        return abs(got - want) <= abs(want) * Decimal("1e-20") + Decimal("1e-20")


def _parses_or_refuses(parse: Callable[[Any], Decimal], oracle: Callable[[Any], Decimal | None], doc: Any) -> None:
    """`parse` raises ProviderError with a Cause, or returns the total `oracle` reads from the documented shape.

    Any other exception propagates and fails the test. A total for a document the oracle calls drifted
    (None) is a silent wrong figure, the failure this file exists to catch.
    """
    try:
        got = parse(doc)
    except ProviderError as exc:
        assert isinstance(exc.cause, Cause) and exc.message
        return
    want = oracle(doc)
    assert want is not None, f"a drifted shape was accepted as ${got}"
    assert _same(got, want), f"parsed ${got}, the documented shape says ${want}"


def _number(value: Any, *, strings: bool = True, numbers: bool = True) -> Decimal | None:
    """A finite Decimal from a JSON number (and/or a numeric string), else None."""
    if isinstance(value, bool):
        return None
    if numbers and isinstance(value, int | float):
        text = str(value)
    elif strings and isinstance(value, str):
        text = value.strip()
    else:
        return None
    try:
        d = Decimal(text)
    except decimal.InvalidOperation:
        return None
    return d if d.is_finite() else None


def _utc_day(value: Any, *, need_offset: bool = True) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if t.tzinfo is None:
            return None if need_offset else t.date()
        return t.astimezone(UTC).date()
    except (ValueError, OverflowError):
        return None


def _in_period(day: dt.date, period: BillingPeriod = PERIOD) -> bool:
    return period.first_day <= day <= period.last_day


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), UTC).timestamp())


# days: the whole of November up to today, plus a few outside the month (which must not count)
DAYS = st.one_of(
    st.integers(1, 28).map(lambda d: dt.date(2026, 11, d)),
    st.sampled_from([dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 12, 1)]),
)
LABELS = st.none() | st.text(min_size=1, max_size=12)


# --- (a) the budget document ---------------------------------------------------------------------

FIELDS = (
    "total_budget_usd",
    "thresholds_pct",
    "forecast_thresholds_pct",
    "providers",
    "spike",
    "failure_notice_after_runs",
    "digest",
)
TRACEBACK_MARKS = ("Traceback", 'File "', "pydantic.dev", "For further information", "[type=", "input_value", " at 0x")
VALID_DOCUMENT: dict[str, Any] = {
    "total_budget_usd": 12000,
    "thresholds_pct": [50, 80, 100],
    "forecast_thresholds_pct": [100, 120],
    "providers": {
        "openai": {
            "budget_usd": 6000,
            "accounts": [
                {"label": "prod", "budget_usd": 5000, "key_secret": "projects/p/secrets/openai-prod/versions/latest"},
                {"label": "research", "key_env": "OPENAI_RESEARCH_KEY"},
            ],
        },
        "anthropic": {"budget_usd": "3500.50"},
        "xai": {"budget_usd": 800, "accounts": [{"label": "core", "team_id": "team-1", "key_env": "XAI_KEY"}]},
        "gemini": {
            "budget_usd": 1000,
            "accounts": [
                {
                    "label": "billing",
                    "billing_export_table": "my-proj.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD",
                    "service_ids": ["AEFD-7695-64FA"],
                    "maximum_bytes_billed": 1000000000,
                    "late_row_margin_days": 3,
                }
            ],
        },
    },
    "spike": {"factor": 2.5, "min_usd": 20, "baseline_days": 7},
    "failure_notice_after_runs": 2,
    "digest": {"enabled": True, "hour_utc": 9},
}


def _config_outcome(raw: str) -> BudgetConfig | None:
    """Parse `raw`: a BudgetConfig, or None after checking the ConfigError reads as a message, not a trace."""
    try:
        return parse_budget_config(raw, origin="BUDGET_CONFIG")
    except ConfigError as exc:
        message = str(exc)
    assert message.startswith("BUDGET_CONFIG: "), message
    assert not any(mark in message for mark in TRACEBACK_MARKS), message
    if message.startswith("BUDGET_CONFIG: not valid JSON"):
        return None
    items = message.split("\n  - ")[1:]
    assert items, message
    for item in items:
        path, sep, text = item.partition(": ")
        assert sep and path and text, f"an error line without a field: {item!r}"
        if path == "(document)":  # a whole-document rule: its words must name the field, or the shape
            assert any(f in text for f in FIELDS) or "valid dictionary" in text, item
    return None


@FIXED
@given(st.text(max_size=60) | st.from_regex(r"\A[-+]?[0-9]{1,6000}(\.[0-9]+)?([eE][-+]?[0-9]{1,12})?\Z"))
@example('{"total_budget_usd": ' + "9" * 4301 + ', "providers": {"openai": {"budget_usd": 1}}}')
@example('{"total_budget_usd": 1e999999, "providers": {"openai": {"budget_usd": 1}}}')
@example("\ufeff{}")
def test_any_text_is_a_config_or_a_config_error(raw: str) -> None:
    """Any BUDGET_CONFIG text, JSON or not, is a valid document or a ConfigError naming the problem."""
    _config_outcome(raw)


@FIXED
@given(JSON | JSON_OBJECTS)
def test_any_json_document_is_a_config_or_a_config_error(doc: Any) -> None:
    """Any JSON document is a valid BudgetConfig or a ConfigError whose lines each name a field."""
    _config_outcome(json.dumps(doc))


@FIXED
@given(drifted(st.just(VALID_DOCUMENT)))
def test_mutated_valid_document_is_a_config_or_a_config_error(doc: Any) -> None:
    """A valid document with one value swapped, dropped, wrapped or stringified: valid, or a field named."""
    _config_outcome(json.dumps(doc))


AMOUNTS = st.one_of(
    st.integers(-(10**6), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["1e-40", "1e999999999", "0.001", "1e12", "1e15", "-5", "0"]),
)


@st.composite
def budget_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed documents whose amounts, percentages and spike settings are arbitrary numbers."""
    doc = copy.deepcopy(VALID_DOCUMENT)
    doc["total_budget_usd"] = draw(AMOUNTS)
    doc["providers"]["openai"]["budget_usd"] = draw(AMOUNTS)
    doc["providers"]["openai"]["accounts"][0]["budget_usd"] = draw(AMOUNTS)
    doc["providers"]["anthropic"]["budget_usd"] = draw(AMOUNTS)
    doc["thresholds_pct"] = draw(st.lists(AMOUNTS, min_size=1, max_size=3))
    doc["forecast_thresholds_pct"] = draw(st.lists(AMOUNTS, max_size=2))
    doc["spike"] = {"factor": draw(AMOUNTS), "min_usd": draw(AMOUNTS), "baseline_days": 7}
    return doc


SPEND = [
    report_for("openai", "prod", NOW, ["180.25"] * 27 + ["630.10"]),
    report_for("openai", "research", NOW, ["45.5"] * 28),
    report_for("anthropic", "default", NOW, ["120"] * 28),
    report_for("xai", "core", NOW, ["25"] * 28),
    report_for("gemini", "billing", NOW, ["60"] * 28, tz=PACIFIC),
]


@FIXED
@given(budget_documents())
@example({**VALID_DOCUMENT, "total_budget_usd": "1e-40"})
@example({**VALID_DOCUMENT, "total_budget_usd": "1e999999999"})
@example({**VALID_DOCUMENT, "spike": {"factor": "1e999999999", "min_usd": 0, "baseline_days": 7}})
def test_an_accepted_document_can_be_evaluated(doc: dict[str, Any]) -> None:
    """Whatever budgets the document passes validation with, a month of spend evaluates and renders."""
    config = _config_outcome(json.dumps(doc))
    if config is None:
        return
    scopes = rules.evaluate(config, SPEND, NOW)
    events = rules.budget_events(config, scopes) + rules.spike_events(config, scopes)
    payload = slack.render(slack.MessageInput(now=NOW, scopes=scopes, results=SPEND, events=events))
    assert payload["text"] and payload["blocks"]


# --- (b) OpenAI: GET /v1/organization/costs, dollars as JSON floats -------------------------------------

DOLLARS_8 = st.decimals(min_value=-1000, max_value=100_000, places=8, allow_nan=False, allow_infinity=False)
OPENAI_ROWS = st.lists(st.tuples(DOLLARS_8, LABELS, LABELS), max_size=4)


@st.composite
def openai_pages(draw: st.DrawFn) -> tuple[dict[str, Any], dict[dt.date, Decimal]]:
    """A costs page and, independently, the dollars it carries per in-month day."""
    buckets, per_day = [], {}
    for day, rows in draw(st.lists(st.tuples(DAYS, OPENAI_ROWS), max_size=8)):
        results = []
        for amount, line_item, project in rows:
            assert Decimal(repr(float(amount))) == amount  # 8 decimals below 1e5 travel exactly as a float
            results.append(
                {
                    "object": "organization.costs.result",
                    "amount": {"value": float(amount), "currency": draw(st.sampled_from(["usd", "USD"]))},
                    "line_item": line_item,
                    "project_id": project,
                }
            )
            if _in_period(day):
                per_day[day] = per_day.get(day, Decimal(0)) + amount
        buckets.append(
            {"object": "bucket", "start_time": _epoch(day), "end_time": _epoch(day) + 86400, "results": results}
        )
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}, per_day


def _openai_total(doc: Any) -> Decimal:
    acc = CostAccumulator(PERIOD)
    openai.parse_costs_page(doc, acc)
    return acc.total()


def _openai_oracle(doc: Any) -> Decimal | None:
    """The documented shape: object "page", data[] of buckets with an int start_time and results[] of amounts."""
    if (
        not isinstance(doc, dict)
        or "error" in doc
        or doc.get("object") != "page"
        or not isinstance(doc.get("data"), list)
    ):
        return None
    total = Decimal(0)
    for bucket in doc["data"]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            return None
        start = bucket.get("start_time")
        if not isinstance(start, int) or isinstance(start, bool):
            return None
        try:
            day = dt.datetime.fromtimestamp(start, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
        for row in bucket["results"]:
            if not isinstance(row, dict) or not isinstance(row.get("amount"), dict):
                return None
            currency, value = row["amount"].get("currency"), _number(row["amount"].get("value"))
            if not isinstance(currency, str) or currency.lower() != "usd" or value is None:
                return None
            if _in_period(day):
                total = WIDE.add(total, value)
    return total


@FIXED
@given(openai_pages())
def test_openai_valid_page_sums_exactly(page: tuple[dict[str, Any], dict[dt.date, Decimal]]) -> None:
    """A costs page sums to exactly the Decimal dollars it was built from, per day and in total."""
    doc, per_day = page
    acc = CostAccumulator(PERIOD)
    openai.parse_costs_page(doc, acc)
    assert acc.total() == sum(per_day.values(), Decimal(0))
    assert {d.day: d.amount for d in acc.daily() if d.amount} == {k: v for k, v in per_day.items() if v}
    for dim in ("line_item", "project"):
        assert sum((b.amount for b in acc.breakdown() if b.dimension == dim), Decimal(0)) == acc.total()


_OPENAI_BUCKET = {"start_time": _epoch(dt.date(2026, 11, 3)), "results": []}


@FIXED
@given(JSON_OBJECTS | drifted(openai_pages().map(lambda p: p[0])))
@example(
    {"object": "page", "data": [{**_OPENAI_BUCKET, "results": [{"amount": {"value": "1e9999999", "currency": "usd"}}]}]}
)
@example({"object": "page", "data": [{"start_time": 10**18, "results": []}]})
@example({"object": "page", "data": [{"start_time": -(10**14), "results": []}]})
@example({"object": "page", "data": [{**_OPENAI_BUCKET, "results": [{"amount": {"value": True, "currency": "usd"}}]}]})
@example({"object": "list", "data": []})
def test_openai_any_page_is_an_error_or_the_documented_sum(doc: Any) -> None:
    """Any costs document: ProviderError with a Cause, or the sum its documented shape gives, never $0 for drift."""
    _parses_or_refuses(_openai_total, _openai_oracle, doc)


# --- (b) Anthropic: GET /v1/organizations/cost_report, cents as decimal strings ------------------------

DOLLARS_7 = st.decimals(min_value=-1000, max_value=100_000, places=7, allow_nan=False, allow_infinity=False)


@st.composite
def anthropic_pages(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal]:
    """A cost report page (amounts in cents, as strings) and, independently, its in-month dollars."""
    buckets, total = [], Decimal(0)
    for day, rows in draw(
        st.lists(st.tuples(DAYS, st.lists(st.tuples(DOLLARS_7, LABELS, LABELS), max_size=4)), max_size=8)
    ):
        results = [
            {"currency": "USD", "amount": format(usd * 100, "f"), "description": desc, "workspace_id": ws}
            for usd, desc, ws in rows
        ]
        if _in_period(day):
            total += sum((usd for usd, _, _ in rows), Decimal(0))
        start = dt.datetime.combine(day, dt.time(), UTC)
        buckets.append(
            {
                "starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ending_at": (start + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "results": results,
            }
        )
    return {"data": buckets, "has_more": False, "next_page": None}, total


def _anthropic_total(doc: Any) -> Decimal:
    acc = CostAccumulator(PERIOD)
    anthropic.parse_cost_report_page(doc, acc)
    return acc.total()


def _anthropic_oracle(doc: Any) -> Decimal | None:
    """The documented shape: data[] of buckets with an RFC 3339 starting_at and USD amounts in cent strings."""
    if (
        not isinstance(doc, dict)
        or doc.get("type") == "error"
        or "error" in doc
        or not isinstance(doc.get("data"), list)
    ):
        return None
    total = Decimal(0)
    for bucket in doc["data"]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            return None
        day = _utc_day(bucket.get("starting_at"))
        if day is None:
            return None
        for row in bucket["results"]:
            if not isinstance(row, dict) or row.get("currency") != "USD":
                return None
            cents = _number(row.get("amount"), numbers=False)
            if cents is None:
                return None
            if _in_period(day):
                total = WIDE.add(total, WIDE.divide(cents, Decimal(100)))
    return total


@FIXED
@given(anthropic_pages())
def test_anthropic_valid_page_sums_exactly(page: tuple[dict[str, Any], Decimal]) -> None:
    """A cost report page in cents sums to exactly the Decimal dollars it was built from."""
    doc, total = page
    assert _anthropic_total(doc) == total


_ANTHROPIC_BUCKET = {"starting_at": "2026-11-03T00:00:00Z", "results": []}


@FIXED
@given(JSON_OBJECTS | drifted(anthropic_pages().map(lambda p: p[0])))
@example({"data": [{**_ANTHROPIC_BUCKET, "results": [{"currency": "USD", "amount": "1e999999999"}]}]})
@example({"data": [{"starting_at": "0001-01-01T00:00:00+01:00", "results": []}]})
@example({"data": [{"starting_at": "9999-12-31T23:59:59-01:00", "results": []}]})
@example({"data": [{**_ANTHROPIC_BUCKET, "results": [{"currency": "USD", "amount": 12.5}]}]})
def test_anthropic_any_page_is_an_error_or_the_documented_sum(doc: Any) -> None:
    """Any cost report document: ProviderError with a Cause, or the sum its documented shape gives."""
    _parses_or_refuses(_anthropic_total, _anthropic_oracle, doc)


# --- (b) xAI: usage analytics (dollars), invoice preview and spending limits (cents) --------------------


@st.composite
def xai_usage(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal]:
    """A usage answer (one series per model, a point per day) and, independently, its in-month dollars."""
    series, total = [], Decimal(0)
    for model, points in draw(
        st.lists(st.tuples(LABELS, st.lists(st.tuples(DAYS, DOLLARS_8), max_size=5)), max_size=4)
    ):
        data_points = []
        for day, usd in points:
            data_points.append({"timestamp": f"{day.isoformat()}T00:00:00Z", "values": [float(usd)]})
            if _in_period(day):
                total += usd
        labels = [model] if model else []
        series.append({"group": labels, "groupLabels": labels, "dataPoints": data_points})
    if draw(st.booleans()):  # as a default proto3 JSON printer writes it: no empty lists, no false
        for s in series:
            for key in [k for k, v in s.items() if v == []]:
                del s[key]
        return ({"timeSeries": series} if series else {}), total
    return {"timeSeries": series, "limitReached": False}, total


def _xai_total(doc: Any) -> Decimal:
    return xai.month_to_date(PERIOD, xai.parse_usage(doc)).total


def _xai_oracle(doc: Any) -> Decimal | None:
    """What the protobuf runtime reads from the document as xAI's AnalyticsResponse (proto3 JSON, so
    omitted fields are defaults): the in-month dollars; None for an error envelope, a document protobuf
    refuses, or dollars on a point without a timestamp (no day to put them on)."""
    if not isinstance(doc, dict) or doc.get("error") is not None or ("code" in doc and "message" in doc):
        return None
    message = xai_proto_subset.classes()["AnalyticsResponse"]()
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError):
        return None
    total = Decimal(0)
    for series in message.time_series:
        for point in series.data_points:
            if not point.HasField("timestamp"):
                if any(point.values):
                    return None
                continue
            day = point.timestamp.ToDatetime(tzinfo=UTC).date()
            for value in point.values:
                usd = _number(value, strings=False)
                if usd is None:
                    return None
                if _in_period(day):
                    total = WIDE.add(total, usd)
    return total


@FIXED
@given(xai_usage())
def test_xai_valid_usage_sums_exactly(usage: tuple[dict[str, Any], Decimal]) -> None:
    """A usage answer in dollars sums to exactly the Decimal dollars it was built from."""
    doc, total = usage
    assert _xai_total(doc) == total


@FIXED
@given(JSON_OBJECTS | drifted(xai_usage().map(lambda u: u[0])))
@example({"timeSeries": [{"dataPoints": [{"timestamp": "0001-01-01T00:00:00+05:00", "values": [1.0]}]}]})
@example({"timeSeries": [{"dataPoints": [{"timestamp": "2026-11-03T00:00:00Z", "values": ["12.5"]}]}]})
@example({"timeSeries": [], "limitReached": "false"})
@example({"limitReached": False})
@example({"timeSeries": [{"dataPoints": [{}, {"timestamp": "2026-11-03T00:00:00Z"}, {"values": [1.5]}]}]})
@example({"time_series": [{"data_points": [{"timestamp": "2026-11-03T00:00:00.5+01:00", "values": [2]}]}]})
def test_xai_any_usage_is_an_error_or_the_documented_sum(doc: Any) -> None:
    """Any usage document: ProviderError with a Cause, or the dollars its documented shape gives."""
    _parses_or_refuses(_xai_total, _xai_oracle, doc)


CENTS = st.integers(0, 10**9)
CENTS_VALUE = CENTS.flatmap(lambda c: st.sampled_from([str(c), {"val": str(c)}, c, {"val": c}, {} if c == 0 else c]))


def _cents(value: Any) -> Decimal | None:
    """int64 cents as protobuf reads them (the value of a Cent `{"val": …}`, or bare), in dollars."""
    if isinstance(value, dict):
        if not set(value) <= {"val"}:
            return None
        value = value.get("val", "0")
    cent = xai_proto_subset.classes()["Cent"]()
    try:
        json_format.ParseDict({"val": value}, cent)
    except json_format.ParseError:
        return None
    return WIDE.divide(Decimal(cent.val), Decimal(100))


def _proto_field(doc: dict[str, Any], json_name: str) -> Any:
    """A field by its JSON name or its proto name; None when absent or null (unset)."""
    proto_name = "".join(f"_{c.lower()}" if c.isupper() else c for c in json_name)
    return doc.get(json_name, doc.get(proto_name))


def _xai_context_total(doc: Any) -> Decimal:
    """Both context parsers on one document: the preview's used + limit, plus the spending-limits limit."""
    used = xai.parse_invoice_preview(doc["preview"])
    limits = xai.parse_spending_limits(doc["limits"])
    return (used.used_usd or 0) + (used.limit_usd or 0) + (limits.effective_usd or 0)


def _xai_context_oracle(doc: Any) -> Decimal | None:
    """billing.proto read as proto3 JSON: an unset coreInvoice or spendingLimits counts nothing, totalWithCorr
    else amountAfterVat, an omitted int64 is 0 cents; every amount a Cent or bare int64 cents."""
    preview, limits = doc["preview"], doc["limits"]
    for part in (preview, limits):
        if not isinstance(part, dict) or part.get("error") is not None or ("code" in part and "message" in part):
            return None
    core, spending = _proto_field(preview, "coreInvoice"), _proto_field(limits, "spendingLimits")
    cycle = _proto_field(preview, "billingCycle")
    if not all(isinstance(m, dict | None) for m in (core, spending, cycle)):
        return None
    if cycle is not None:
        try:
            json_format.ParseDict(cycle, xai_proto_subset.classes()["BillingCycle"](), ignore_unknown_fields=True)
        except json_format.ParseError:
            return None
    amounts: list[Any] = []
    if core is not None:
        total_with_corr = _proto_field(core, "totalWithCorr")
        amounts.append(total_with_corr if total_with_corr is not None else _proto_field(core, "amountAfterVat") or "0")
    amounts.append(_proto_field(preview, "effectiveSpendingLimit") or "0")
    if spending is not None and _proto_field(spending, "effectiveSl") is not None:
        amounts.append(_proto_field(spending, "effectiveSl"))
    total = Decimal(0)
    for raw in amounts:
        usd = _cents(raw)
        if usd is None:
            return None
        total = WIDE.add(total, usd)
    return total


@st.composite
def xai_context(draw: st.DrawFn) -> dict[str, Any]:
    preview: dict[str, Any] = {
        "coreInvoice": {draw(st.sampled_from(["totalWithCorr", "amountAfterVat"])): draw(CENTS_VALUE)},
        "billingCycle": {"year": 2026, "month": 11},
    }
    if draw(st.booleans()):
        preview["effectiveSpendingLimit"] = draw(CENTS_VALUE)
    limits = {"spendingLimits": {"effectiveSl": draw(CENTS_VALUE)} if draw(st.booleans()) else {}}
    if draw(st.booleans()):  # proto3 JSON leaves out an empty invoice, a zero limit, an unset message
        del preview[draw(st.sampled_from(sorted(preview)))]
    return {"preview": preview, "limits": limits}


@FIXED
@given(xai_context())
def test_xai_valid_context_is_cents_over_a_hundred(doc: dict[str, Any]) -> None:
    """Invoice preview and spending limits read cents (bare or {"val": …}) as exactly cents / 100 dollars."""
    assert _xai_context_total(doc) == _xai_context_oracle(doc)


@FIXED
@given(
    st.fixed_dictionaries({"preview": JSON_OBJECTS, "limits": JSON_OBJECTS})
    | drifted(xai_context(), min_depth=2)  # each answer stays a JSON object, as request_json guarantees
)
@example({"preview": {"coreInvoice": {"totalWithCorr": "1e999999999"}}, "limits": {"spendingLimits": {}}})
@example({"preview": {"coreInvoice": {"amountAfterVat": 1413}}, "limits": {"spendingLimits": {}}})
def test_xai_any_context_is_an_error_or_the_documented_cents(doc: dict[str, Any]) -> None:
    """Any invoice preview / spending limits pair: ProviderError with a Cause, or exactly its documented cents."""
    _parses_or_refuses(_xai_context_total, _xai_context_oracle, doc)


# --- (b) Gemini: the month-to-date query's rows, as the BigQuery client returns them ------------------

PY_VALUES = st.one_of(
    LEAVES,
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def gemini_rows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], Decimal]:
    """Grouped query rows (nano-dollars) and, independently, their dollars."""
    rows, total = [], Decimal(0)
    for _ in range(draw(st.integers(0, 6))):
        nanos = draw(st.integers(-(10**12), 10**15))
        rows.append(
            {
                "usage_day": draw(st.dates(dt.date(2026, 10, 25), dt.date(2026, 12, 2))),
                "sku": draw(LABELS),
                "project_id": draw(LABELS),
                "currency": draw(st.sampled_from(["USD", "EUR", "usd"])),
                "row_count": draw(st.integers(1, 1000)),
                "unusable_rows": 0,
                "net_nano_usd": nanos,
                "last_export_time": draw(
                    st.datetimes(dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 28), timezones=st.just(UTC))  # noqa: DTZ001  (hypothesis bounds are naive)
                ),
                "first_partition": draw(
                    st.datetimes(dt.datetime(2026, 9, 27), dt.datetime(2026, 11, 28), timezones=st.just(UTC))  # noqa: DTZ001  (hypothesis bounds are naive)
                ),
            }
        )
        total += Decimal(nanos).scaleb(-9)
    return rows, total


def _gemini_total(rows: Any) -> Decimal:
    return gemini.parse_rows(rows, PACIFIC_PERIOD).mtd_usd


def _gemini_oracle(rows: Any) -> Decimal | None:
    """Every column present; no unusable rows; an int nano-dollar sum; a date; an aware export time."""
    total = Decimal(0)
    for row in rows:
        if not isinstance(row, dict) or any(c not in row for c in gemini.RESULT_COLUMNS):
            return None
        ints = [row[c] for c in ("unusable_rows", "row_count", "net_nano_usd")]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in ints) or ints[0] != 0 or ints[1] <= 0:
            return None
        day, exported, currency = row["usage_day"], row["last_export_time"], row["currency"]
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            return None
        if not isinstance(exported, dt.datetime) or exported.tzinfo is None:
            return None
        if not isinstance(currency, str) or not currency:
            return None
        if any(row[c] is not None and not isinstance(row[c], str) for c in ("sku", "project_id")):
            return None
        total = WIDE.add(total, Decimal(ints[2]).scaleb(-9))
    return total


@FIXED
@given(gemini_rows())
def test_gemini_valid_rows_sum_exactly(rows: tuple[list[dict[str, Any]], Decimal]) -> None:
    """Grouped rows of nano-dollars sum to exactly their dollars; the days sum to the total."""
    data, total = rows
    report = gemini.parse_rows(data, PACIFIC_PERIOD)
    assert report.mtd_usd == total
    assert sum((d.amount for d in report.daily), Decimal(0)) == report.mtd_usd


@FIXED
@given(
    st.lists(st.dictionaries(st.sampled_from(gemini.RESULT_COLUMNS), PY_VALUES), max_size=3)
    | drifted(gemini_rows().map(lambda r: r[0]), PY_VALUES, min_depth=2)  # rows stay mappings, as the client gives
)
@example(
    [
        {
            "usage_day": dt.date(2026, 11, 3),
            "sku": None,
            "project_id": None,
            "currency": "USD",
            "row_count": 1,
            "unusable_rows": 0,
            "net_nano_usd": 10**30,
            "last_export_time": dt.datetime(2026, 11, 3, tzinfo=UTC),
        }
    ]
)
def test_gemini_any_rows_are_an_error_or_the_documented_sum(rows: Any) -> None:
    """Any query rows: ProviderError with a Cause, or the nano-dollar sum the documented columns give."""
    _parses_or_refuses(_gemini_total, _gemini_oracle, rows)


@pytest.mark.parametrize(
    ("parse", "doc"),
    [
        (_openai_total, {"error": {"message": "invalid admin key", "type": "invalid_request_error"}}),
        (_anthropic_total, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        (_xai_total, {"code": 16, "message": "unauthenticated"}),
        (_openai_total, {"object": "page"}),
        (_anthropic_total, {"has_more": False}),
        (_xai_total, {"limitReached": False}),
    ],
)
def test_error_envelopes_and_empty_shapes_are_never_zero(parse: Callable[[Any], Decimal], doc: Any) -> None:
    """An error envelope or a page without its list is a BAD_RESPONSE, not $0."""
    with pytest.raises(ProviderError) as exc:
        parse(doc)
    assert exc.value.cause is Cause.BAD_RESPONSE


# --- (b) Bedrock: Cost Explorer GetCostAndUsage pages, Amount as a decimal string ----------------------

CE_SERVICES = st.sampled_from(
    ["Amazon Bedrock", "Claude Sonnet 4.5 (Amazon Bedrock Edition)", "Amazon EC2", " (Amazon Bedrock Edition)"]
)


@st.composite
def ce_pages(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal]:
    """A GetCostAndUsage page grouped by SERVICE and USAGE_TYPE and, independently, its in-month Bedrock dollars."""
    results, total = [], Decimal(0)
    for day, rows, estimated in draw(
        st.lists(st.tuples(DAYS, st.lists(st.tuples(DOLLARS_8, CE_SERVICES), max_size=4), st.booleans()), max_size=6)
    ):
        groups = [
            {"Keys": [svc, "USE1-MP:USE1_InputTokenCount-Units"],
             "Metrics": {"UnblendedCost": {"Amount": format(usd, "f"), "Unit": "USD"}}}
            for usd, svc in rows
        ]  # fmt: skip
        if _in_period(day):
            total += sum((usd for usd, svc in rows if bedrock.bedrock_model(svc) is not None), Decimal(0))
        period = {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()}
        results.append({"TimePeriod": period, "Total": {}, "Groups": groups, "Estimated": estimated})
    return {"ResultsByTime": results, "DimensionValueAttributes": []}, total


def _bedrock_total(doc: Any) -> Decimal:
    if not isinstance(doc, dict):
        raise ProviderError(Cause.BAD_RESPONSE, "not an object")  # request_json only hands over objects
    totals = bedrock.CeTotals(PERIOD, "UnblendedCost")
    totals.add_page(doc)
    return totals.acc.total()


def _ce_day(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _bedrock_oracle(doc: Any) -> Decimal | None:
    """The documented shape: ResultsByTime[] of DAILY periods whose Groups carry [SERVICE, USAGE_TYPE] keys and
    an UnblendedCost {Amount: decimal string, Unit: USD}; only Bedrock services (own or Marketplace) count."""
    if not isinstance(doc, dict) or not isinstance(doc.get("ResultsByTime"), list):
        return None
    token = doc.get("NextPageToken")
    if token is not None and not isinstance(token, str):
        return None
    total = Decimal(0)
    for item in doc["ResultsByTime"]:
        if not isinstance(item, dict) or not isinstance(item.get("TimePeriod"), dict):
            return None
        start, end = _ce_day(item["TimePeriod"].get("Start")), _ce_day(item["TimePeriod"].get("End"))
        if start is None or end is None or end != start + dt.timedelta(days=1):
            return None
        if not isinstance(item.get("Estimated", False), bool) or not isinstance(item.get("Groups", []), list):
            return None
        for group in item.get("Groups", []):
            if not isinstance(group, dict):
                return None
            keys, metrics = group.get("Keys"), group.get("Metrics")
            if not (isinstance(keys, list) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
                return None
            value = metrics.get("UnblendedCost") if isinstance(metrics, dict) else None
            amount = _number(value.get("Amount"), numbers=False) if isinstance(value, dict) else None
            if amount is None or not isinstance(value, dict) or value.get("Unit") != "USD":
                return None
            if bedrock.bedrock_model(keys[0]) is not None and _in_period(start):
                total = WIDE.add(total, amount)
    return total


@FIXED
@given(ce_pages())
def test_bedrock_valid_page_sums_exactly(page: tuple[dict[str, Any], Decimal]) -> None:
    """A Cost Explorer page sums to exactly its in-month Bedrock dollars; other services are left out."""
    doc, total = page
    assert _bedrock_total(doc) == total


@FIXED
@given(JSON_OBJECTS | drifted(ce_pages().map(lambda p: p[0])))
@example({"__type": "com.amazon.coral.service#AccessDeniedException", "message": "denied"})
@example({"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-03", "End": "2026-11-04"}, "Groups": [
    {"Keys": ["Amazon Bedrock", "u"], "Metrics": {"UnblendedCost": {"Amount": 1.5, "Unit": "USD"}}}]}]})  # fmt: skip
@example({"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-03", "End": "2026-11-04"}, "Groups": [
    {"Keys": ["Amazon Bedrock", "u"], "Metrics": {"UnblendedCost": {"Amount": "1.5", "Unit": "EUR"}}}]}]})  # fmt: skip
def test_bedrock_any_page_is_an_error_or_the_documented_sum(doc: Any) -> None:
    """Any GetCostAndUsage document: ProviderError with a Cause, or the sum its documented shape gives."""
    _parses_or_refuses(_bedrock_total, _bedrock_oracle, doc)


# --- (b) OpenRouter: /activity rows and /keys counters, USD as JSON doubles -----------------------------

OR_DOLLARS = st.decimals(min_value=0, max_value=100_000, places=8, allow_nan=False, allow_infinity=False)


@st.composite
def activity_docs(draw: st.DrawFn) -> tuple[dict[str, Any], Decimal]:
    """An /activity answer (doubles) and, independently, the Decimal sum of its rows."""
    rows = draw(st.lists(st.tuples(DAYS, OR_DOLLARS, st.sampled_from(["openai/gpt-5.4", "x-ai/grok-4"])), max_size=8))
    data = [
        {"date": day.isoformat(), "model": model, "usage": float(usd), "byok_usage_inference": 0.0,
         "endpoint_id": "ep-1", "requests": 1}
        for day, usd, model in rows
    ]  # fmt: skip
    return {"data": data}, sum((Decimal(str(float(usd))) for _, usd, _ in rows), Decimal(0))


def _openrouter_total(doc: Any) -> Decimal:
    return sum((r.usd for r in openrouter.parse_activity(doc)), Decimal(0))


def _openrouter_oracle(doc: Any) -> Decimal | None:
    """The documented shape: data[] of {date YYYY-MM-DD, model, usage: number, byok_usage_inference: number}."""
    if not isinstance(doc, dict) or "error" in doc or not isinstance(doc.get("data"), list):
        return None
    total = Decimal(0)
    for row in doc["data"]:
        if not isinstance(row, dict) or _ce_day(row.get("date")) is None:
            return None
        if not isinstance(row.get("model"), str) or not row["model"]:
            return None
        usage = _number(row.get("usage"), strings=False)
        if usage is None or _number(row.get("byok_usage_inference"), strings=False) is None:
            return None
        total = WIDE.add(total, usage)
    return total


@FIXED
@given(activity_docs())
def test_openrouter_valid_activity_sums_exactly(doc: tuple[dict[str, Any], Decimal]) -> None:
    """An /activity answer sums to exactly the Decimal reading of its doubles."""
    payload, total = doc
    assert _openrouter_total(payload) == total


@FIXED
@given(JSON_OBJECTS | drifted(activity_docs().map(lambda d: d[0])))
@example({"error": {"code": 403, "message": "Only management keys can perform this operation"}})
@example({"data": [{"date": "2026-11-03", "model": "m", "usage": "0.5", "byok_usage_inference": 0}]})
def test_openrouter_any_activity_is_an_error_or_the_documented_sum(doc: Any) -> None:
    """Any /activity document: ProviderError with a Cause, or the sum its documented shape gives."""
    _parses_or_refuses(_openrouter_total, _openrouter_oracle, doc)


@FIXED
@given(JSON_OBJECTS | drifted(st.just({"data": {"total_credits": 100.0, "total_usage": 12.5}})))
def test_openrouter_any_credits_is_an_error_or_the_documented_headroom(doc: Any) -> None:
    """Any /credits document: ProviderError with a Cause, or total_credits − total_usage of two numbers."""
    try:
        headroom = openrouter.parse_credits(doc)
    except ProviderError as exc:
        assert isinstance(exc.cause, Cause)
        return
    data = doc["data"]
    total, used = _number(data["total_credits"], strings=False), _number(data["total_usage"], strings=False)
    assert total is not None and used is not None and headroom.remaining_usd == total - used
