"""AWS Bedrock via Cost Explorer: request, strict parsing, errors, cadence, STS federation, and moto end to end."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from moto_server import aws_client, aws_fixture, aws_server_fixture, metadata_fixture  # noqa: F401 - fixtures

from devservers.moto import load_cost_and_usage
from errors import Cause, ProviderError
from models import BillingPeriod, Deadline
from providers import bedrock
from providers._http import make_client
from providers._sigv4 import Credentials

FIX = Path(__file__).resolve().parent / "fixtures" / "bedrock"
NOW = dt.datetime(2026, 12, 3, 10, 5, tzinfo=dt.UTC)
PERIOD = BillingPeriod.containing(NOW)
ROLE = "arn:aws:iam::111122223333:role/llm-budget-alert-ce-read"
BEDROCK_TOTAL = Decimal("42.3457089185") + Decimal("9.25")


def page(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIX / f"{name}.json").read_text())
    return doc


def totals_of(*docs: dict[str, Any]) -> bedrock.CeTotals:
    totals = bedrock.CeTotals(PERIOD, "UnblendedCost")
    for doc in docs:
        totals.add_page(doc)
    return totals


# --- request ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC), "2026-12-01", "2026-12-02"),
        (NOW, "2026-12-01", "2026-12-04"),
        (dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC), "2026-12-01", "2027-01-01"),
        (dt.datetime(2027, 2, 28, 12, 0, tzinfo=dt.UTC), "2027-02-01", "2027-03-01"),
    ],
)
def test_window_is_the_utc_month_with_an_exclusive_end(now: dt.datetime, start: str, end: str) -> None:
    """TimePeriod runs from the 1st to tomorrow (End exclusive), never past the 1st of next month."""
    body = bedrock.ce_request(BillingPeriod.containing(now))
    assert body["TimePeriod"] == {"Start": start, "End": end}
    assert body["Granularity"] == "DAILY"
    assert body["Metrics"] == ["UnblendedCost"]


def test_request_groups_by_service_and_usage_type_without_a_service_filter() -> None:
    """No SERVICE filter (Marketplace models bill under their own service); the body is byte-stable."""
    body = bedrock.ce_request(PERIOD, page_token="p2")
    assert body["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
    assert "Filter" not in body
    assert body["NextPageToken"] == "p2"
    assert json.dumps(bedrock.ce_request(PERIOD, page_token="p2")) == json.dumps(body)


def test_request_options_are_validated() -> None:
    """A metric outside the cost metrics, a bad account id or a Pacific period are refused."""
    with pytest.raises(ValueError, match="metric"):
        bedrock.ce_request(PERIOD, metric="UsageQuantity")
    with pytest.raises(ValueError, match="12-digit"):
        bedrock.ce_request(PERIOD, linked_account="1234")
    from models import PACIFIC

    with pytest.raises(ValueError, match="UTC"):
        bedrock.ce_request(BillingPeriod.containing(NOW, PACIFIC))
    body = bedrock.ce_request(PERIOD, metric="NetUnblendedCost", linked_account="111122223333")
    assert body["Filter"] == {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111122223333"]}}


@pytest.mark.parametrize(
    ("service", "model"),
    [
        ("Amazon Bedrock", "Amazon Bedrock"),
        ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "Claude Sonnet 4.5"),
        ("OpenAI GPT-5.6 Sol (Amazon Bedrock Edition)", "OpenAI GPT-5.6 Sol"),
        ("Amazon Elastic Compute Cloud - Compute", None),
        (" (Amazon Bedrock Edition)", None),
        ("Amazon Bedrock Agents", None),
    ],
)
def test_bedrock_selection(service: str, model: str | None) -> None:
    """Amazon Bedrock and every '(Amazon Bedrock Edition)' Marketplace service count; nothing else."""
    assert bedrock.bedrock_model(service) == model


# --- parsing ----------------------------------------------------------------------------------


def test_two_pages_sum_bedrock_rows_only() -> None:
    """Bedrock and Marketplace rows are summed per day (credits included); EC2 is left out."""
    totals = totals_of(page("get_cost_and_usage"), page("get_cost_and_usage_page2"))
    report = totals.report(NOW, requests=2)
    assert report.mtd_usd == BEDROCK_TOTAL
    assert [d.amount for d in report.daily] == [Decimal("42.3457089185"), Decimal("9.25"), Decimal(0)]
    assert totals.other_services == 1
    models = {b.key: b.amount for b in report.breakdown if b.dimension == "model"}
    assert models == {
        "Claude Sonnet 4.5": Decimal("49.8456789013"),
        "OpenAI GPT-5.6 Sol": Decimal("2.25"),
        "Amazon Bedrock": Decimal("-0.4999699828"),
    }
    assert {b.key for b in report.breakdown if b.dimension == "usage_type"} >= {"USE1-Credit"}
    assert report.requests == 2


def test_freshness_is_the_newest_day_with_data() -> None:
    """as_of is the end of the newest day with Bedrock data (not the fetch time); estimates are named."""
    report = totals_of(page("get_cost_and_usage"), page("get_cost_and_usage_page2")).report(NOW, requests=2)
    assert report.freshness.as_of == dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    assert report.freshness.missing_from is None
    assert "fetched Dec 03 10:05 UTC" in (report.freshness.note or "")
    assert "from Dec 02 are AWS estimates" in (report.freshness.note or "")


def test_an_empty_month_is_a_real_zero() -> None:
    """Days with empty Groups are $0, and with no data at all as_of stays unknown."""
    doc = {"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Groups": [],
                              "Total": {}, "Estimated": True}]}  # fmt: skip
    report = totals_of(doc).report(NOW, requests=1)
    assert report.mtd_usd == 0
    assert report.freshness.as_of is None


def _with(group: dict[str, Any]) -> dict[str, Any]:
    return {"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Groups": [group]}]}


_GOOD = {"Keys": ["Amazon Bedrock", "USE1-x"], "Metrics": {"UnblendedCost": {"Amount": "1.5", "Unit": "USD"}}}


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"ResultsByTime": None}, "no ResultsByTime"),
        ({}, "no ResultsByTime"),
        ({"__type": "ThrottlingException", "message": "Rate exceeded"}, "no ResultsByTime"),
        (_with({**_GOOD, "Metrics": {"UnblendedCost": {"Amount": 1.5, "Unit": "USD"}}}), "decimal string"),
        (_with({**_GOOD, "Metrics": {"UnblendedCost": {"Amount": "1.5", "Unit": "EUR"}}}), "not USD"),
        (_with({**_GOOD, "Metrics": {"BlendedCost": {"Amount": "1.5", "Unit": "USD"}}}), "no UnblendedCost"),
        (_with({**_GOOD, "Metrics": {"UnblendedCost": {"Amount": "NaN", "Unit": "USD"}}}), "finite"),
        (_with({**_GOOD, "Keys": ["Amazon Bedrock"]}), "Keys"),
        ({"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-03"}, "Groups": []}]}, "DAILY"),
        ({"ResultsByTime": [{"TimePeriod": {"Start": "12/01/2026", "End": "2026-12-02"}}]}, "YYYY-MM-DD"),
        ({"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Estimated": "no"}]},
         "Estimated"),
        ({"ResultsByTime": [], "NextPageToken": 7}, "NextPageToken"),
    ],
)  # fmt: skip
def test_drifted_shapes_are_classified_failures(doc: dict[str, Any], needle: str) -> None:
    """Every drifted shape raises BAD_RESPONSE naming what drifted; none becomes $0."""
    with pytest.raises(ProviderError) as err:
        totals_of(doc)
    assert err.value.cause is Cause.BAD_RESPONSE
    assert needle in err.value.message


# --- errors -----------------------------------------------------------------------------------

SECRET_IN_MESSAGE = "The Canonical String for this request should have been 'x-amz-security-token:SENTINEL-TOKEN'"


@pytest.mark.parametrize(
    ("status", "type_", "cause"),
    [
        (400, "com.amazon.coral.service#UnrecognizedClientException", Cause.AUTH),
        (403, "com.amazon.coral.service#InvalidSignatureException", Cause.AUTH),
        (400, "com.amazon.coral.service#ExpiredTokenException", Cause.AUTH),
        (400, "com.amazon.coral.service#AccessDeniedException", Cause.PERMISSION),
        (400, "com.amazon.coral.availability#ThrottlingException", Cause.RATE_LIMIT),
        (400, "LimitExceededException", Cause.RATE_LIMIT),
        (400, "DataUnavailableException", Cause.NOT_FOUND),
        (400, "InvalidNextTokenException", Cause.BAD_RESPONSE),
        (400, "ValidationException", Cause.CLIENT_ERROR),
        (400, "SomethingNewException", Cause.CLIENT_ERROR),
    ],
)
def test_ce_error_envelopes_are_classified_by_type(status: int, type_: str, cause: Cause) -> None:
    """`__type` decides the cause (a throttle is a 400); AWS's own message never reaches ours."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"__type": type_, "message": SECRET_IN_MESSAGE})

    with pytest.raises(ProviderError) as err:
        _fetch_mock(handler)
    assert err.value.cause is cause
    assert "SENTINEL" not in str(err.value)
    assert type_.rsplit("#", 1)[-1] in err.value.message


def test_error_type_from_header_when_the_body_is_not_json() -> None:
    """Without a JSON body, `x-amzn-ErrorType` still classifies the error."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"x-amzn-ErrorType": "ThrottlingException:http://x"}, text="<html/>")

    with pytest.raises(ProviderError) as err:
        _fetch_mock(handler)
    assert err.value.cause is Cause.RATE_LIMIT


@pytest.mark.parametrize(
    ("status", "body", "ctype", "cause"),
    [
        (500, b'{"__type": "InternalFailure"}', "application/x-amz-json-1.1", Cause.SERVER_ERROR),
        (503, b"<html>Service Unavailable</html>", "text/html", Cause.SERVER_ERROR),
        (429, b"{}", "application/x-amz-json-1.1", Cause.RATE_LIMIT),
        (200, b"<html>captive portal</html>", "text/html", Cause.BAD_RESPONSE),
        (200, b"<ListAllMyBucketsResult/>", "application/xml", Cause.BAD_RESPONSE),
    ],
)
def test_server_errors_and_html_are_classified(status: int, body: bytes, ctype: str, cause: Cause) -> None:
    """5xx/429 go through the shared retry policy and fail classified; an HTML or XML 200 is drift."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, content=body, headers={"content-type": ctype})

    with pytest.raises(ProviderError) as err:
        _fetch_mock(handler)
    assert err.value.cause is cause
    assert len(calls) == (3 if status >= 429 and status != 200 else 1)


def test_pagination_loop_and_page_cap() -> None:
    """A NextPageToken seen twice stops the fetch (every page is a paid request)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ResultsByTime": [], "NextPageToken": "same"},
                              headers={"content-type": "application/x-amz-json-1.1"})  # fmt: skip

    with pytest.raises(ProviderError, match="pagination loop") as err:
        _fetch_mock(handler)
    assert err.value.cause is Cause.BAD_RESPONSE


def _fetch_mock(handler: Any, log: list[httpx.Request] | None = None) -> Any:
    def record(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append(request)
        response: httpx.Response = handler(request)
        return response

    client = httpx.Client(base_url=bedrock.CE_BASE_URL, transport=httpx.MockTransport(record))
    bedrock.configure_ce_client(client, Credentials("AKIAIOSFODNN7EXAMPLE", "secret"))
    with client:
        return bedrock.fetch_cost_and_usage(client, PERIOD, deadline=Deadline(30), fetched_at=NOW)


# --- cadence ----------------------------------------------------------------------------------


def test_default_cadence_keeps_a_month_under_one_dollar() -> None:
    """8 h by default: 3 fetches a day, 93 requests, $0.93 for a 31-day month; 6 h would be $1.24."""
    assert bedrock.default_fetch_every_hours() == 8
    assert bedrock.monthly_cost_usd(8) == Decimal("0.93")
    assert bedrock.monthly_cost_usd(6) == Decimal("1.24")
    assert bedrock.default_fetch_every_hours(requests_per_fetch=2) == 24
    with pytest.raises(ValueError):
        bedrock.fetches_per_day(0)


@pytest.mark.parametrize("every", [1, 5, 8, 24])
def test_a_replayed_day_stays_within_the_cadence(every: int) -> None:
    """Hourly checks with jitter (:03 to :58) fetch at most ceil(24/N) times a day; reuse keeps its as_of."""
    last: dt.datetime | None = dt.datetime(2026, 11, 30, 23, 5, tzinfo=dt.UTC)  # the previous month
    fetches = []
    for hour in range(24):
        for minute in (3, 58) if hour % 2 else (31,):
            now = dt.datetime(2026, 12, 1, hour, minute, tzinfo=dt.UTC)
            decision = bedrock.decide_fetch(now, last, every)
            if decision.fetch:
                fetches.append(now)
                last = now
            assert decision.as_of == last
    assert len(fetches) == bedrock.fetches_per_day(every)
    assert fetches[0] == dt.datetime(2026, 12, 1, 0, 31, tzinfo=dt.UTC)  # a new month fetches at once


def test_cadence_edges() -> None:
    """No result yet, clock skew and a new UTC day each fetch; within a slot the old fetch time is kept."""
    t = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    assert bedrock.decide_fetch(t, None, 8).fetch
    assert bedrock.decide_fetch(t, t + dt.timedelta(hours=1), 8).fetch
    assert bedrock.decide_fetch(dt.datetime(2026, 12, 2, 0, 1, tzinfo=dt.UTC), t.replace(hour=23), 8).fetch
    kept = bedrock.decide_fetch(t.replace(hour=15, minute=59), t, 8)
    assert (kept.fetch, kept.as_of) == (False, t)


def test_snapshot_round_trip_and_reuse() -> None:
    """A snapshot survives JSON, rebuilds the same totals, and a reuse costs no request and says so."""
    totals = totals_of(page("get_cost_and_usage"), page("get_cost_and_usage_page2"))
    snap = bedrock.CeSnapshot.of(totals, NOW, requests=2)
    again = bedrock.CeSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert again == snap
    later = BillingPeriod.containing(NOW + dt.timedelta(hours=3))
    report = bedrock.snapshot_report(again, later, NOW + dt.timedelta(hours=3))
    assert report.mtd_usd == BEDROCK_TOTAL
    assert report.requests == 0
    assert "reused the last Cost Explorer result" in report.notes[0]
    assert report.freshness.as_of == dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="snapshot"):
        bedrock.CeSnapshot.from_dict({**snap.to_dict(), "daily": [["2026-12-01", "x"]]})
    with pytest.raises(ValueError, match="cannot serve"):
        bedrock.snapshot_report(snap, BillingPeriod.containing(dt.datetime(2027, 1, 1, 1, tzinfo=dt.UTC)), NOW)


# --- credentials --------------------------------------------------------------------------------


def test_sts_answer_parses_to_temporary_credentials() -> None:
    """STS's XML gives the key, secret, token and expiry; the secrets stay out of repr."""
    temp = bedrock.parse_sts(200, (FIX / "assume_role_with_web_identity.xml").read_bytes(), NOW)
    assert temp.creds.access_key_id == "ASIAIOSFODNN7EXAMPLE"
    assert temp.creds.session_token and temp.creds.session_token.startswith("AQoD")
    assert temp.expiration == dt.datetime(2026, 12, 3, 10, 20, tzinfo=dt.UTC)
    assert temp.usable(NOW) and not temp.usable(dt.datetime(2026, 12, 3, 10, 16, tzinfo=dt.UTC))
    assert "wJalr" not in repr(temp)


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (403, (FIX / "assume_role_with_web_identity_access_denied.xml").read_bytes(), Cause.PERMISSION),
        (400, b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Code>InvalidIdentityToken'
              b"</Code></Error></ErrorResponse>", Cause.AUTH),
        (502, b"<html><body>Bad Gateway", Cause.SERVER_ERROR),
        (200, b"{}", Cause.BAD_RESPONSE),
        (200, b'<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"/>',
         Cause.BAD_RESPONSE),
        (200, (FIX / "assume_role_with_web_identity.xml").read_bytes().replace(b"T10:20", b"T09:20"),
         Cause.BAD_RESPONSE),
    ],
)  # fmt: skip
def test_sts_failures_are_classified(status: int, body: bytes, cause: Cause) -> None:
    """Untrusted role, rejected token, HTML, JSON, missing credentials and expired answers are failures."""
    with pytest.raises(ProviderError) as err:
        bedrock.parse_sts(status, body, NOW)
    assert err.value.cause is cause


def test_id_token_answer_is_checked() -> None:
    """The metadata answer must carry Metadata-Flavor: Google and a JWT; the token is never echoed."""
    jwt = "eyJh.eyJz.c2ln"
    assert bedrock.parse_id_token(200, {"metadata-flavor": "Google"}, jwt.encode()) == jwt
    for status, headers, body, cause in [
        (200, {}, jwt.encode(), Cause.BAD_RESPONSE),
        (200, {"metadata-flavor": "Google"}, b"<html>proxy</html>", Cause.BAD_RESPONSE),
        (404, {"metadata-flavor": "Google"}, b"", Cause.NOT_FOUND),
        (403, {"metadata-flavor": "Google"}, b"", Cause.AUTH),
    ]:
        with pytest.raises(ProviderError) as err:
            bedrock.parse_id_token(status, headers, body)
        assert err.value.cause is cause
        assert jwt not in str(err.value)


def test_key_pair_secret() -> None:
    """The fallback secret is strict JSON with exactly the two fields; errors never show the values."""
    creds = bedrock.key_pair('{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s3cr3t-value"}')
    assert (creds.access_key_id, creds.session_token) == ("AKIAIOSFODNN7EXAMPLE", None)
    for text in ["s3cr3t-value", '{"access_key_id": "x", "secret_access_key": "s3cr3t-value"}',
                 '{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s3cr3t-value", "x": 1}']:  # fmt: skip
        with pytest.raises(ProviderError) as err:
            bedrock.key_pair(text)
        assert err.value.cause is Cause.SECRET
        assert "s3cr3t" not in str(err.value)


def test_sts_form_is_the_documented_one() -> None:
    """The form names the action, version, role, session, token and the minimum 900 s duration."""
    form = bedrock.sts_form(ROLE, "eyJh.eyJz.c2ln")
    assert form == {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE,
                    "RoleSessionName": "llm-budget-alert", "WebIdentityToken": "eyJh.eyJz.c2ln",
                    "DurationSeconds": "900"}  # fmt: skip
    with pytest.raises(ValueError):
        bedrock.sts_form("arn:aws:iam::1:user/x", "t")


# --- end to end against moto ------------------------------------------------------------------


def _read_only(log: list[httpx.Request]) -> list[str]:
    """Each request as 'METHOD what', where what is the CE target, the STS action or the path."""
    out = []
    for r in log:
        if r.headers.get("x-amz-target"):
            out.append(f"{r.method} {r.headers['x-amz-target']}")
        elif r.url.path == "/" and r.method == "POST":
            out.append(f"POST sts:{parse_qs(r.content.decode())['Action'][0]}")
        else:
            out.append(f"{r.method} {r.url.path}")
    return out


@pytest.mark.emulator
def test_federation_path_against_moto(aws: Any, metadata: Any) -> None:
    """ID token from the metadata server → STS at moto → signed CE pages from the role's account."""
    load_cost_and_usage(aws, [page("get_cost_and_usage"), page("get_cost_and_usage_page2")], account_id="111122223333")
    log: list[httpx.Request] = []
    deadline = Deadline(30)
    host, port = metadata.server_address[:2]
    meta_url = bedrock.metadata_base_url({"GCE_METADATA_HOST": f"{host}:{port}"})
    with aws_client(meta_url, log) as meta, aws_client(aws.url, log) as sts:
        token = bedrock.fetch_id_token(meta, "sts.amazonaws.com", deadline=deadline)
        temp = bedrock.assume_role(sts, ROLE, token, deadline=deadline, now=dt.datetime.now(dt.UTC))
    assert metadata.requests[0]["query"] == {"audience": "sts.amazonaws.com", "format": "full"}
    assert temp.assumed_role_arn == "arn:aws:sts::111122223333:assumed-role/llm-budget-alert-ce-read/llm-budget-alert"
    sts_form = parse_qs(log[1].content.decode())
    assert sts_form["WebIdentityToken"] == [token] and "authorization" not in log[1].headers
    with bedrock.configure_ce_client(aws_client(aws.url, log), temp.creds) as ce:
        report = bedrock.fetch_cost_and_usage(ce, PERIOD, deadline=deadline, fetched_at=NOW)
    assert report.mtd_usd == BEDROCK_TOTAL
    assert report.requests == 2
    assert "Credential=" + temp.creds.access_key_id in log[2].headers["authorization"]
    assert log[2].headers["x-amz-security-token"] == temp.creds.session_token
    assert _read_only(log) == [
        "GET " + bedrock.ID_TOKEN_PATH,
        "POST sts:AssumeRoleWithWebIdentity",
        "POST " + bedrock.CE_TARGET,
        "POST " + bedrock.CE_TARGET,
    ]


@pytest.mark.emulator
def test_access_key_path_against_moto(aws: Any) -> None:
    """A static key pair from the secret signs the CE request; moto serves its default account."""
    load_cost_and_usage(aws, [page("get_cost_and_usage"), page("get_cost_and_usage_page2")])
    creds = bedrock.key_pair('{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrEXAMPLEKEY"}')
    log: list[httpx.Request] = []
    with bedrock.configure_ce_client(aws_client(aws.url, log), creds) as ce:
        report = bedrock.fetch_cost_and_usage(ce, PERIOD, deadline=Deadline(30), fetched_at=NOW)
        again = bedrock.fetch_cost_and_usage(ce, PERIOD, deadline=Deadline(30), fetched_at=NOW)
    assert report.mtd_usd == again.mtd_usd == BEDROCK_TOTAL  # same bodies, same answers: the request is stable
    assert _read_only(log) == ["POST " + bedrock.CE_TARGET] * 4
    assert all("x-amz-security-token" not in r.headers for r in log)
    assert json.loads(log[1].content)["NextPageToken"] == "page-2"


@pytest.mark.emulator
def test_an_unqueued_account_is_a_real_zero_not_a_failure(aws: Any) -> None:
    """moto's default answer (ResultsByTime: []) is an empty month: $0, with no as_of."""
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "secret")
    with bedrock.configure_ce_client(aws_client(aws.url), creds) as ce:
        report = bedrock.fetch_cost_and_usage(ce, PERIOD, deadline=Deadline(30), fetched_at=NOW)
    assert report.mtd_usd == 0
    assert report.freshness.as_of is None


@pytest.mark.emulator
def test_a_replayed_day_against_moto_stays_within_the_cadence(aws: Any) -> None:
    """24 hourly checks with an 8-hour cadence send 3 fetches × 2 pages to Cost Explorer, no more;
    the checks in between answer the last result with its own fetch time."""
    load_cost_and_usage(aws, [page("get_cost_and_usage"), page("get_cost_and_usage_page2")])
    log: list[httpx.Request] = []
    last: bedrock.CeSnapshot | None = None
    as_of_fetch = []
    with bedrock.configure_ce_client(aws_client(aws.url, log), Credentials("AKIAIOSFODNN7EXAMPLE", "s")) as ce:
        for hour in range(24):
            now = dt.datetime(2026, 12, 3, hour, 5, tzinfo=dt.UTC)
            period = BillingPeriod.containing(now)

            def fetch(period: BillingPeriod = period, now: dt.datetime = now) -> bedrock.CeSnapshot:
                # every check of a day builds the same body (End = tomorrow), which is what moto keys on
                return bedrock.fetch_snapshot(ce, period, deadline=Deadline(30), fetched_at=now)

            report, last = bedrock.cached_report(period, last, 8, fetch)
            assert report.mtd_usd == BEDROCK_TOTAL
            as_of_fetch.append(last.fetched_at.hour)
    assert len(log) == 3 * 2
    assert _read_only(log) == ["POST " + bedrock.CE_TARGET] * 6
    assert as_of_fetch == [0] * 8 + [8] * 8 + [16] * 8


def _mock(handler: Any) -> httpx.Client:
    return httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler))


def test_sts_and_metadata_answers_are_bounded_and_unencoded() -> None:
    """They ask for identity encoding, refuse an encoded answer (no bomb is decoded) and cap the body."""
    import gzip

    seen: list[httpx.Request] = []

    def encoded(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-encoding": "gzip", "metadata-flavor": "Google"},
                              content=gzip.compress(b" " * 10_000_000))  # fmt: skip

    with _mock(encoded) as c, pytest.raises(ProviderError, match="encoded answer") as err:
        bedrock.fetch_id_token(c, "sts.amazonaws.com", deadline=Deadline(5))
    assert err.value.cause is Cause.BAD_RESPONSE
    assert seen[0].headers["accept-encoding"] == "identity"
    assert seen[0].headers["metadata-flavor"] == "Google"
    with _mock(lambda r: httpx.Response(200, content=b"<" * 300_000)) as c, pytest.raises(ProviderError, match="KiB"):
        bedrock.assume_role(c, ROLE, "eyJh.eyJz.c2ln", deadline=Deadline(5), now=NOW)


def test_an_encoded_ce_error_is_classified_from_its_header_without_decoding() -> None:
    """A gzip error body is not inflated: x-amzn-ErrorType names the error, or the status does."""
    import gzip

    bomb = gzip.compress(b'{"__type": "AccessDeniedException"}' + b" " * 5_000_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"content-encoding": "gzip", "x-amzn-ErrorType": "ThrottlingException"},
                              content=bomb)  # fmt: skip

    with pytest.raises(ProviderError) as err:
        _fetch_mock(handler)
    assert err.value.cause is Cause.RATE_LIMIT


@pytest.mark.emulator
def test_moto_launcher_starts_and_stops_by_pid() -> None:
    """start_moto answers /moto-api/ from its own venv; stop() ends the process group."""
    from devservers._proc import pid_alive
    from devservers.moto import start_moto

    server = start_moto()
    try:
        assert server.alive()
        assert ".venv-moto" in Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
    finally:
        server.stop()
    assert not pid_alive(server.pid, server.start_ticks)


def test_ce_errors_over_a_real_socket_are_classified() -> None:
    """Over a real connection (the raw, streamed path) a typed 400 is read, capped and classified."""
    from simulator._server import Handler, LocalServer, Reply, Request, json_reply

    class Throttle(Handler):
        def route(self, request: Request) -> Reply:
            return json_reply(400, {"__type": "com.amazon.coral.availability#ThrottlingException",
                                    "message": "Rate exceeded" + " " * 200_000})  # fmt: skip

    server = LocalServer(0, Throttle)
    server.start()
    try:
        client = bedrock.configure_ce_client(make_client(server.url), Credentials("AKIAIOSFODNN7EXAMPLE", "s"))
        with client, pytest.raises(ProviderError) as err:
            bedrock.fetch_cost_and_usage(client, PERIOD, deadline=Deadline(10), fetched_at=NOW)
    finally:
        server.stop()
    assert err.value.cause is Cause.RATE_LIMIT


def test_linked_account_breakdown_is_one_request() -> None:
    """Grouping by SERVICE + LINKED_ACCOUNT gives model and account lines from the same single request."""
    doc = {"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Groups": [
        {"Keys": ["Claude Sonnet 4.5 (Amazon Bedrock Edition)", "111122223333"],
         "Metrics": {"UnblendedCost": {"Amount": "4", "Unit": "USD"}}},
        {"Keys": ["Amazon Bedrock", "444455556666"], "Metrics": {"UnblendedCost": {"Amount": "1", "Unit": "USD"}}},
    ]}]}  # fmt: skip
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=doc, headers={"content-type": "application/x-amz-json-1.1"})

    client = bedrock.configure_ce_client(
        httpx.Client(base_url=bedrock.CE_BASE_URL, transport=httpx.MockTransport(handler)), Credentials("AKIDX", "s")
    )
    with client:
        report = bedrock.fetch_cost_and_usage(
            client, PERIOD, deadline=Deadline(5), fetched_at=NOW, second_group="LINKED_ACCOUNT"
        )
    assert len(bodies) == 1 and bodies[0]["GroupBy"][1] == {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}
    lines = {(b.dimension, b.key): b.amount for b in report.breakdown}
    assert lines[("linked_account", "111122223333")] == 4 and lines[("model", "Claude Sonnet 4.5")] == 4
    assert report.mtd_usd == 5


def test_metadata_host_default_and_override() -> None:
    """The metadata server is metadata.google.internal unless GCE_METADATA_HOST names another host:port."""
    assert bedrock.metadata_base_url({}) == "http://metadata.google.internal"
    assert bedrock.metadata_base_url({"GCE_METADATA_HOST": "127.0.0.1:8080"}) == "http://127.0.0.1:8080"
    with pytest.raises(ValueError):
        bedrock.metadata_base_url({"GCE_METADATA_HOST": "evil.example/x?"})
