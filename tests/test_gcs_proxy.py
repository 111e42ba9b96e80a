"""`GCSProxy` enforces what GCS documents for reads and fake-gcs-server does not."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from devservers.gcs_proxy import GCSProxy

pytestmark = pytest.mark.emulator
OBJECT = "dir%2Fstate.json"


def _put(proxy: GCSProxy, bucket: str, data: bytes) -> int:
    url = f"{proxy.url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=dir/state.json"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST")) as resp:
        return int(json.loads(resp.read())["generation"])


def _get(url: str) -> tuple[int, bytes, Any]:
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers


def test_download_and_metadata_preconditions_answer_412_with_gcs_error_body(
    gcs_proxy: GCSProxy, proxied_bucket: str
) -> None:
    """A stale ifGenerationMatch on a download or a metadata GET is 412 conditionNotMet; a current one serves."""
    gen = _put(gcs_proxy, proxied_bucket, b"one")
    media = f"{gcs_proxy.url}/download/storage/v1/b/{proxied_bucket}/o/{OBJECT}?alt=media"
    status, body, headers = _get(f"{media}&ifGenerationMatch={gen}")
    assert (status, body, headers["x-goog-generation"]) == (200, b"one", str(gen))
    for url in (
        f"{media}&ifGenerationMatch={gen + 1}",
        f"{gcs_proxy.url}/storage/v1/b/{proxied_bucket}/o/{OBJECT}?ifGenerationMatch=1",
    ):
        status, body, _ = _get(url)
        assert status == 412 and json.loads(body)["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert _get(f"{media}&ifGenerationNotMatch={gen}")[0] == 304


def test_links_lead_back_through_the_proxy(gcs_proxy: GCSProxy, proxied_bucket: str) -> None:
    """mediaLink/selfLink name the proxy, so a client that follows them stays behind it."""
    _put(gcs_proxy, proxied_bucket, b"one")
    _, body, _ = _get(f"{gcs_proxy.url}/storage/v1/b/{proxied_bucket}/o/{OBJECT}")
    assert json.loads(body)["mediaLink"].startswith(gcs_proxy.url)


def test_a_dropped_write_answer_still_lands(gcs_proxy: GCSProxy, proxied_bucket: str) -> None:
    """drop_write_answers: the upload is forwarded, the client gets a reset instead of the answer."""
    _put(gcs_proxy, proxied_bucket, b"one")
    gcs_proxy.drop_write_answers(1)
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        _put(gcs_proxy, proxied_bucket, b"two")
    assert _get(f"{gcs_proxy.url}/download/storage/v1/b/{proxied_bucket}/o/{OBJECT}?alt=media")[1] == b"two"
