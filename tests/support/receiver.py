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


@dataclass(frozen=True)
class Answer:
    """A scripted answer with a body: ``size`` bytes, sent ``chunk`` bytes at a time, ``pause``
    seconds apart (a big answer, or one dripping slowly); or ``header_drips`` headers, each
    ``pause`` seconds after the last, before the body (a receiver dripping its headers)."""

    status: int = 200
    size: int = 2
    chunk: int = 65_536
    pause: float = 0.0
    header_drips: int = 0


Response = int | tuple[int, dict[str, str]] | float | Answer  # a float: stall that many seconds, then 200


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
        #: Body bytes of scripted answers the sender accepted (until it hung up).
        self.bytes_sent = 0
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
                if isinstance(answer, Answer):
                    self._answer(answer)
                    return
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

            def _answer(self, answer: Answer) -> None:
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Length", str(answer.size))
                    for n in range(answer.header_drips):
                        self.send_header(f"X-Drip-{n}", "x")
                        self.flush_headers()
                        time.sleep(answer.pause)
                    self.end_headers()
                    sent = 0
                    while sent < answer.size:
                        piece = min(answer.chunk, answer.size - sent)
                        self.wfile.write(b"x" * piece)
                        self.wfile.flush()
                        sent += piece
                        with receiver._lock:
                            receiver.bytes_sent += piece
                        if answer.pause:
                            time.sleep(answer.pause)
                except OSError:
                    pass  # the sender hung up (cap reached, or its deadline)

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

    def heal(self, path: str) -> None:
        """Forget what is left of the path's script: it answers 200 from now on."""
        with self._lock:
            self._script[path].clear()

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
