"""AWS Signature Version 4 for one kind of request: a JSON 1.1 POST to `/` with no query string.

That is every Cost Explorer call (`ce`, `us-east-1`). Written out instead of importing botocore,
whose import alone costs ~1.2 s and ~20 MiB of RSS in a cold function for one HMAC chain.

The steps are AWS's, in AWS's words ("Create a signed AWS API request",
https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html, and "Elements of an AWS API
request signature", .../reference_sigv-signing-elements.html):

1. canonical request = method, canonical URI, canonical query string, canonical headers (lower-case
   names, values trimmed and inner runs of spaces folded to one, sorted, each line ending in `\\n`),
   signed header names (`;`-joined), hex SHA-256 of the payload;
2. string to sign = `AWS4-HMAC-SHA256`, the request time (`YYYYMMDDTHHMMSSZ`), the credential scope
   (`YYYYMMDD/region/service/aws4_request`), hex SHA-256 of the canonical request;
3. signing key = HMAC chain `"AWS4" + secret` → date → region → service → `aws4_request`;
4. `Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=<names>, Signature=<hex>`.

"The host header must be included as a signed header", and with temporary credentials the session
token goes in `X-Amz-Security-Token` (signed here, as botocore does). Checked against AWS's published
SigV4 test suite and against botocore's `SigV4Auth` (tests/test_sigv4.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Generator, Mapping

import httpx

__all__ = [
    "AMZ_JSON_11",
    "Credentials",
    "SigV4Auth",
    "sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_JSON_11 = "application/x-amz-json-1.1"  # botocore ce model: protocol json, jsonVersion 1.1


@dataclasses.dataclass(frozen=True)
class Credentials:
    """An AWS key pair, with a session token when it is temporary (STS). `repr` hides the secrets."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    creds: Credentials,
    *,
    region: str,
    service: str,
    now: dt.datetime,
) -> dict[str, str]:
    """The `Authorization` (and `X-Amz-Date`, `X-Amz-Security-Token`) headers for this request.

    Every header in `headers` is signed; it must include `host`. `path` is used as the canonical URI
    as given (only `/`-style paths without a query string are signed here).
    """
    if "?" in path:
        raise ValueError("query strings are not signed by this signer")
    amz_date = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    extra = {"x-amz-date": amz_date}
    if creds.session_token:
        extra["x-amz-security-token"] = creds.session_token
    canon = {k.strip().lower(): " ".join(v.split()) for k, v in headers.items()} | extra
    if "host" not in canon:
        raise ValueError("the host header must be signed")
    names = sorted(canon)
    signed = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            path,
            "",
            "".join(f"{n}:{canon[n]}\n" for n in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("AWS4" + creds.secret_access_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"X-Amz-Date": amz_date}
    if creds.session_token:
        out["X-Amz-Security-Token"] = creds.session_token
    out["Authorization"] = (
        f"{ALGORITHM} Credential={creds.access_key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return out


class SigV4Auth(httpx.Auth):
    """Signs each request httpx sends (so every retry gets a fresh `X-Amz-Date`).

    Sets the JSON 1.1 content type first (httpx's `json=` says `application/json`), then signs
    `content-type`, `host`, `x-amz-date`, `x-amz-target` and, with temporary credentials,
    `x-amz-security-token` — the set botocore signs for a Cost Explorer call. The body httpx built is
    the body that is hashed: nothing is re-serialised.
    """

    requires_request_body = True

    def __init__(
        self,
        creds: Credentials,
        *,
        region: str,
        service: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.creds = creds
        self.region = region
        self.service = service
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Content-Type"] = AMZ_JSON_11
        to_sign = {"host": request.headers["Host"], "content-type": AMZ_JSON_11}
        for name, value in request.headers.items():
            if name.lower().startswith("x-amz-") and name.lower() not in ("x-amz-date", "x-amz-security-token"):
                to_sign[name.lower()] = value
        path = request.url.raw_path.decode("ascii")
        request.headers.update(
            sign(
                request.method,
                path,
                to_sign,
                request.content,
                self.creds,
                region=self.region,
                service=self.service,
                now=self._clock(),
            )
        )
        yield request
