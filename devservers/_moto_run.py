"""``moto.server`` with AWS's JSON 1.1 content type restored: run by `devservers.moto` in `.venv-moto`.

moto 5.2.5 answers Cost Explorer's JSON 1.1 protocol with ``Content-Type: text/html; charset=utf-8``,
where AWS sends ``application/x-amz-json-1.1`` (botocore ``ce/2017-10-25`` model: ``protocol: json``,
``jsonVersion: 1.1``). The product's HTTP client refuses a JSON answer labelled HTML, as it should, so
this wrapper rewrites the header on successful ``X-Amz-Target`` answers, and changes nothing else.
Runs with ``python -I`` inside ``.venv-moto``: it imports moto only, never the project.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import moto.server  # type: ignore[import-not-found]

AMZ_JSON = "application/x-amz-json-1.1"


class _AwsContentType(moto.server.DomainDispatcherApplication):  # type: ignore[misc]
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET"):
            return super().__call__(environ, start_response)  # type: ignore[no-any-return]

        def restored(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200") and any(
                k.lower() == "content-type" and v.startswith("text/html") for k, v in headers
            ):
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("Content-Type", AMZ_JSON)]
            return start_response(status, headers, exc_info)

        return super().__call__(environ, restored)  # type: ignore[no-any-return]


if __name__ == "__main__":
    moto.server.DomainDispatcherApplication = _AwsContentType
    moto.server.main(sys.argv[1:])
