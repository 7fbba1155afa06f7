"""Outgoing webhook requests: Standard Webhooks signatures, SSRF-checked, small and bounded.

urllib3 (already shipped with botocore), not requests: one connection per delivery, made
to the address the SSRF policy checked (the host name goes in the Host header and TLS SNI,
and the certificate is verified against it), redirects never followed, short connect and
read timeouts, and at most ``max_response_bytes`` of the answer read (then the connection
is dropped). The answer's body is never stored or logged; its status is.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime

import urllib3
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
    ) -> None:
        self._policy = policy
        self._timeout = urllib3.Timeout(connect=connect_timeout_seconds, read=read_timeout_seconds)
        self._max_response_bytes = max_response_bytes
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
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(message_id, now, payload, secrets),
        }
        pool = self._pool(target)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=payload.encode(),
                headers=headers,
                redirect=False,
                retries=False,
                timeout=self._timeout,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                self._read_capped(response)
            finally:
                response.close()
        except urllib3.exceptions.TimeoutError:
            return SendResult(None, _ms(started), "timeout")
        except urllib3.exceptions.HTTPError as error:
            return SendResult(None, _ms(started), f"connection failed: {type(error).__name__}")
        finally:
            pool.close()
        status = int(response.status)
        error = None
        if 300 <= status < 400:
            error = "redirect not followed"
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        return SendResult(status, _ms(started), error)

    def _read_capped(self, response: urllib3.BaseHTTPResponse) -> None:
        remaining = self._max_response_bytes
        while remaining > 0:
            chunk = response.read(min(remaining, 8192))
            if not chunk:
                return
            remaining -= len(chunk)

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        address = str(target.address)
        if target.scheme == "http":
            return urllib3.HTTPConnectionPool(address, target.port, maxsize=1, retries=False)
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            maxsize=1,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            ssl_context=self._ssl_context,
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
