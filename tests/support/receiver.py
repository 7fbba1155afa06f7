"""A real webhook receiver on loopback, and the environment webhook tests need.

``Receiver`` is an ``http.server`` in a thread: it records every request (path, headers, raw
body) and answers each path from a script (a status, a status with headers, or a pause
longer than the sender's read timeout), then 200. Tests verify what arrived with the
Standard Webhooks library itself: ``verify(secret)``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from chalicelib.services import platform, reset_platform

Response = int | tuple[int, dict[str, str]] | float  # a float: stall that many seconds, then 200


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verify(self, secret: str) -> Any:
        """The payload, if the signature verifies with ``secret`` (WebhookVerificationError otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: dict[str, deque[Response]] = defaultdict(deque)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    script = receiver._script[self.path]
                    answer: Response = script.popleft() if script else 200
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Response) -> None:
        with self._lock:
            self._script[path].extend(answers)

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def webhook_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Settings for webhook tests, applied to a fresh platform (read now, outside a request).

    KMS: moto in-process serves it on the moto backend; on DynamoDB Local the session's moto
    server does (``LOYALTY_KMS_ENDPOINT``). Call it after the ``api`` fixture is set up.
    """
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "dynamodb-local":
        monkeypatch.setenv("LOYALTY_KMS_ENDPOINT", request.getfixturevalue("moto_server_endpoint"))
    for name, value in settings.items():
        monkeypatch.setenv(f"LOYALTY_{name.upper()}", value)
    reset_platform()
    platform()
