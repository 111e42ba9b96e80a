"""A pass-through proxy in front of the BigQuery emulator that meters dry runs as BigQuery does.

bqemulator accepts `dryRun: true` but always reports `totalBytesProcessed: "0"`. Real BigQuery
answers a dry-run `jobs.insert` with the estimate in `statistics.totalBytesProcessed` and
`statistics.query.totalBytesProcessed` (int64 as a decimal string, per the REST reference of
JobStatistics / JobStatistics2: https://cloud.google.com/bigquery/docs/reference/rest/v2/Job).
This proxy forwards every request unchanged and, on a dry-run job answer only, writes the byte count
the test chose into those two fields. Everything else (errors, real queries) is the emulator's own.

    with DryRunProxy(emulator_url, bytes_processed=6 * 1024**3) as proxy:
        ... BIGQUERY_EMULATOR_HOST=proxy.url ...

Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import urllib.parse
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class DryRunProxy:
    def __init__(self, upstream: str, *, bytes_processed: int) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.bytes_processed = bytes_processed
        self.dry_runs = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Accept-Encoding"] = "identity"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if self.command == "POST" and urllib.parse.urlsplit(self.path).path.endswith("/jobs"):
                    data = proxy._meter(data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _meter(self, data: bytes) -> bytes:
        try:
            job = json.loads(data)
        except ValueError:
            return data
        if not isinstance(job, dict) or not (job.get("configuration") or {}).get("dryRun"):
            return data
        self.dry_runs += 1
        stats = job.setdefault("statistics", {})
        stats["totalBytesProcessed"] = str(self.bytes_processed)
        stats.setdefault("query", {})["totalBytesProcessed"] = str(self.bytes_processed)
        return json.dumps(job).encode()

    def __enter__(self) -> DryRunProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
