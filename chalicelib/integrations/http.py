"""Outgoing webhook requests: Standard Webhooks signatures, SSRF-checked, small and bounded.

The standard library's ``http.client`` over a socket we open ourselves, so every bound is ours:

- the connection goes to the address the SSRF policy just checked (no second DNS lookup for
  a rebinding attacker to answer); the host name goes in the Host header and TLS SNI, and
  the certificate is verified against it;
- connect and read timeouts per socket operation, *and* a hard deadline for the whole
  exchange: a watchdog shuts the socket down when it passes, so a receiver dripping its
  headers or body a byte at a time cannot hold a drain for longer than the deadline;
- at most ``max_response_bytes`` of the answer are read (then the connection is dropped);
  the body is never stored or logged, only the status;
- redirects are never followed (a 3xx is a failed attempt), one request per connection.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime

from standardwebhooks import Webhook as StandardWebhook

from chalicelib.domain.webhooks import SendResult
from chalicelib.integrations.ssrf import Target, UnsafeUrl, UrlPolicy

USER_AGENT = "loyalty-webhooks/1"


def sign(message_id: str, timestamp: datetime, payload: str, secrets: list[str]) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(StandardWebhook(secret).sign(message_id, timestamp, payload) for secret in secrets)


class HttpTransport:
    def __init__(
        self,
        policy: UrlPolicy,
        *,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        max_response_bytes: int,
        deadline_seconds: float | None = None,
    ) -> None:
        self._policy = policy
        self._connect_timeout = connect_timeout_seconds
        self._read_timeout = read_timeout_seconds
        self._max_response_bytes = max_response_bytes
        #: The whole exchange, connection to last byte read (default: connect + read timeouts).
        self._deadline = deadline_seconds or connect_timeout_seconds + read_timeout_seconds
        self._ssl_context: ssl.SSLContext | None = None

    def send(self, url: str, *, message_id: str, payload: str, secrets: list[str]) -> SendResult:
        started = time.monotonic()
        try:
            target = self._policy.target(url)  # resolved and checked now, at delivery time
        except UnsafeUrl as refused:
            return SendResult(None, 0, f"refused: {refused}")
        now = datetime.now(UTC)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Connection": "close",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(message_id, now, payload, secrets),
        }
        expired = threading.Event()
        open_socket: list[socket.socket] = []  # the watchdog cuts whichever is current (TCP, then TLS)
        watchdog = threading.Timer(self._deadline, _cut, (open_socket, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            open_socket.append(
                socket.create_connection((str(target.address), target.port), timeout=self._connect_timeout)
            )
            if target.scheme == "https":
                open_socket[0] = self._tls().wrap_socket(open_socket[0], server_hostname=target.host)
            open_socket[0].settimeout(self._read_timeout)
            status = self._exchange(open_socket[0], target, payload, headers, expired)
        except TimeoutError:
            return SendResult(None, _ms(started), "timeout")
        except ssl.SSLError as error:
            return SendResult(None, _ms(started), f"TLS failed: {error.reason or type(error).__name__}")
        except (OSError, http.client.HTTPException) as error:
            if expired.is_set():
                return SendResult(None, _ms(started), "timeout")
            return SendResult(None, _ms(started), f"connection failed: {type(error).__name__}")
        finally:
            watchdog.cancel()
            for sock in open_socket:
                sock.close()
        failure = None
        if 300 <= status < 400:
            failure = "redirect not followed"
        elif not 200 <= status < 300:
            failure = f"HTTP {status}"
        return SendResult(status, _ms(started), failure)

    def _exchange(
        self, sock: socket.socket, target: Target, payload: str, headers: dict[str, str], expired: threading.Event
    ) -> int:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=self._read_timeout)
        connection.sock = sock  # already connected (and checked): http.client must not dial again
        connection.request("POST", target.path, body=payload.encode(), headers=headers)
        response = connection.getresponse()
        if expired.is_set():  # cut mid-headers: http.client takes the cut for their end; no answer
            raise TimeoutError
        remaining = self._max_response_bytes
        with suppress(OSError, http.client.HTTPException):  # the status is the answer; the body is not needed
            while remaining > 0:  # read a little of the body, never more than the cap
                chunk = response.read(min(remaining, 8192))
                if not chunk:
                    break
                remaining -= len(chunk)
        return int(response.status)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context


def _cut(open_socket: list[socket.socket], expired: threading.Event) -> None:
    """The watchdog: end a too-long exchange by shutting its socket down (unblocks any read)."""
    expired.set()
    for sock in open_socket:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
