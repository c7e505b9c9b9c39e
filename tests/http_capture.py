"""A real HTTP server in a thread that keeps every request it gets: the peer that receives
Apprise `json://` notifications and webhooks in tests. `answer` sets the status per path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class CaptureServer:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.statuses: dict[str, list[int]] = {}  # path -> statuses to answer, in turn
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = server._record(Captured("POST", self.path, headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _record(self, request: Captured) -> int:
        with self._lock:
            self.requests.append(request)
            queued = self.statuses.get(request.path.split("?")[0])
            return queued.pop(0) if queued else 200

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to `path` with these statuses (then 200)."""
        with self._lock:
            self.statuses[path] = list(statuses)

    def to(self, path: str) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)


def capture() -> Iterator[CaptureServer]:
    """For a fixture: `yield from capture()`."""
    with CaptureServer() as server:
        yield server
