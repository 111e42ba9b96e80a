"""AWS Signature V4: AWS's published test-suite vectors, botocore as an oracle, and the httpx auth flow.

The vectors are from AWS's SigV4 test suite (aws-sig-v4-test-suite, the 2015-08-30 cases linked from
https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html): key id `AKIDEXAMPLE`,
secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, region `us-east-1`, service `service`,
`X-Amz-Date: 20150830T123600Z`; each case's expected `Authorization` line is quoted as published.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import httpx
import pytest
from moto_server import moto_python

from providers._sigv4 import AMZ_JSON_11, Credentials, SigV4Auth, sign

SUITE = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC)
SCOPE = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
HOST = {"host": "example.amazonaws.com"}

VECTORS = [
    ("post-vanilla", "POST", HOST, b"", "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("get-vanilla", "GET", HOST, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-header-key-sort", "POST", {**HOST, "My-Header1": "value1"}, b"", "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ("post-header-value-case", "POST", {**HOST, "My-Header1": "VALUE1"}, b"", "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
    ("get-header-value-trim", "GET", {**HOST, "My-Header1": " value1", "My-Header2": ' "a   b   c"'}, b"",
     "host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("post-x-www-form-urlencoded", "POST", {**HOST, "Content-Type": "application/x-www-form-urlencoded"},
     b"Param1=value1", "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method", "headers", "body", "signed", "signature"), VECTORS, ids=[v[0] for v in VECTORS]
)
def test_aws_test_suite_vector(
    name: str, method: str, headers: dict[str, str], body: bytes, signed: str, signature: str
) -> None:
    """Each published test-suite case signs to exactly AWS's Authorization line."""
    out = sign(method, "/", headers, body, SUITE, region="us-east-1", service="service", now=SUITE_TIME)
    assert out["Authorization"] == f"AWS4-HMAC-SHA256 {SCOPE}, SignedHeaders={signed}, Signature={signature}"
    assert out["X-Amz-Date"] == "20150830T123600Z"
    assert "X-Amz-Security-Token" not in out


def test_session_token_is_sent_and_signed() -> None:
    """Temporary credentials add X-Amz-Security-Token and sign it; the signature changes with it."""
    temp = Credentials("ASIAEXAMPLE", SUITE.secret_access_key, "token-1")
    out = sign("POST", "/", HOST, b"", temp, region="us-east-1", service="service", now=SUITE_TIME)
    assert out["X-Amz-Security-Token"] == "token-1"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in out["Authorization"]
    other = sign("POST", "/", HOST, b"", Credentials("ASIAEXAMPLE", SUITE.secret_access_key, "token-2"),
                 region="us-east-1", service="service", now=SUITE_TIME)  # fmt: skip
    assert other["Authorization"] != out["Authorization"]


def test_refuses_what_it_cannot_sign() -> None:
    """A query string or a missing host header is refused, never signed wrongly."""
    with pytest.raises(ValueError, match="query"):
        sign("POST", "/?a=1", HOST, b"", SUITE, region="us-east-1", service="ce", now=SUITE_TIME)
    with pytest.raises(ValueError, match="host"):
        sign("POST", "/", {}, b"", SUITE, region="us-east-1", service="ce", now=SUITE_TIME)


def test_credentials_repr_hides_secrets() -> None:
    """The secret key and the session token never appear in a repr (logs, tracebacks)."""
    text = repr(Credentials("AKIDEXAMPLE", "very-secret-key", "very-secret-token"))
    assert "AKIDEXAMPLE" in text
    assert "very-secret" not in text


def _capture(auth: SigV4Auth, body: dict[str, object]) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with httpx.Client(base_url="https://ce.us-east-1.amazonaws.com", transport=httpx.MockTransport(handler)) as c:
        c.auth = auth
        c.post("/", json=body, headers={"X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage"})
    return seen


def test_httpx_auth_signs_the_bytes_sent() -> None:
    """The auth flow sets the JSON 1.1 content type and signs the exact body and headers on the wire."""
    now = dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC)
    creds = Credentials("ASIAEXAMPLE", "secret/key+x", "tok==")
    (req,) = _capture(SigV4Auth(creds, region="us-east-1", service="ce", clock=lambda: now), {"Granularity": "DAILY"})
    assert req.headers["Content-Type"] == AMZ_JSON_11
    expected = sign(
        "POST",
        "/",
        {"host": "ce.us-east-1.amazonaws.com", "content-type": AMZ_JSON_11,
         "x-amz-target": "AWSInsightsIndexService.GetCostAndUsage"},
        req.content,
        creds,
        region="us-east-1",
        service="ce",
        now=now,
    )  # fmt: skip
    assert req.headers["Authorization"] == expected["Authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target," in expected["Authorization"]


_ORACLE = """
import datetime, json, sys
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
case = json.loads(sys.stdin.read())
now = datetime.datetime.strptime(case["amz_date"], "%Y%m%dT%H%M%SZ")
r = AWSRequest(method="POST", url=case["url"], data=case["body"].encode(), headers=case["headers"])
with mock.patch("botocore.auth.get_current_datetime", return_value=now):
    SigV4Auth(Credentials(case["ak"], case["sk"], case["token"]), "ce", "us-east-1").add_auth(r)
print(r.headers["Authorization"])
"""


@pytest.mark.emulator
@pytest.mark.parametrize("token", ["FwoGZXIvYXdzEXAMPLEtoken//+==", None], ids=["temporary", "static"])
def test_matches_botocore(token: str | None) -> None:
    """For a Cost Explorer request, our Authorization equals botocore's SigV4Auth (run in .venv-moto)."""
    now = dt.datetime(2026, 12, 1, 10, 5, 7, tzinfo=dt.UTC)
    creds = Credentials("ASIAQEXAMPLE7", "wJalr/K7MDENG+bPxRfi/EXAMPLE", token)
    body = {"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"]}  # fmt: skip
    (req,) = _capture(SigV4Auth(creds, region="us-east-1", service="ce", clock=lambda: now), body)
    case = {
        "url": "https://ce.us-east-1.amazonaws.com/",
        "body": req.content.decode(),
        "headers": {"Content-Type": AMZ_JSON_11, "X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage"},
        "amz_date": "20261201T100507Z",
        "ak": creds.access_key_id,
        "sk": creds.secret_access_key,
        "token": token,
    }
    oracle = subprocess.run(
        [str(moto_python()), "-I", "-c", _ORACLE], input=json.dumps(case), capture_output=True, text=True, check=True
    )
    assert req.headers["Authorization"] == oracle.stdout.strip()
