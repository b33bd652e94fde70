"""A loopback HTTP proxy in front of the real server that injects one fault per request.

``faults`` is a list consumed front first, one entry per incoming request;
``None`` (or an empty list) passes the request through unchanged.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Longest request target (path and query string) the proxy accepts, like a strict ingress.
MAX_URL_BYTES = 2048


class FaultProxy:
    """Forwards to ``upstream``; ``delay``, ``503``, ``reset``, ``truncate`` and ``422`` faults."""

    def __init__(self, upstream: str, *, delay_s: float = 2.0) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.faults: list[str | None] = []
        self.seen: list[str | None] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def next_fault(self) -> str | None:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
            self.seen.append(fault)
            return fault

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, *, length: int | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body) if length is None else length))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up first (a delay past its timeout): what the fault is
                    # for, not an error of the proxy's to print in the test output.
                    self.close_connection = True

            def _handle(self, body: bytes | None) -> None:
                if len(self.path) > MAX_URL_BYTES:
                    proxy.seen.append("414")
                    self._send(414, b"URI Too Long")
                    return
                fault = proxy.next_fault()
                if fault == "reset":
                    # SO_LINGER 0 makes close() send RST instead of FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault == "503":
                    self._send(
                        503,
                        b'{"status":"error","errorType":"timeout",'
                        b'"error":"query timed out in query execution"}',
                    )
                    return
                if fault == "422":
                    self._send(
                        422,
                        b'{"status":"error","errorType":"execution",'
                        b'"error":"query processing would load too many samples into memory"}',
                    )
                    return
                if fault == "delay":
                    time.sleep(proxy.delay_s)

                request = urllib.request.Request(proxy.upstream + self.path, data=body)
                for name in ("Content-Type",):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        code, payload = answer.status, answer.read()
                except urllib.error.HTTPError as exc:
                    code, payload = exc.code, exc.read()
                if fault == "truncate":
                    self._send(code, payload[: len(payload) // 2], length=len(payload))
                    self.close_connection = True
                    return
                self._send(code, payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._handle(self.rfile.read(length))

            def do_GET(self) -> None:
                self._handle(None)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
