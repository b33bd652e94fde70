"""A loopback stand-in for the Prometheus HTTP API, for the error paths of PrometheusSource."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class StubRequest:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]


Answer = tuple[int, Any]


@dataclass
class PromStub:
    """Answers each request with ``answer(request)``; records every request."""

    answer: Callable[[StubRequest], Answer]
    requests: list[StubRequest] = field(default_factory=list)

    def start(self) -> PromStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                request = StubRequest(
                    "POST", self.path, form, {k.lower(): v for k, v in self.headers.items()}
                )
                stub.requests.append(request)
                code, body = stub.answer(request)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def error(code: int, error_type: str, message: str) -> Answer:
    return code, {"status": "error", "errorType": error_type, "error": message}


def matrix(series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> Answer:
    result = [
        {"metric": labels, "values": [[float(t), repr(float(v))] for t, v in points]}
        for labels, points in series
    ]
    return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}
