"""Which URLs may receive webhooks: a guard against server-side request forgery.

A webhook URL is chosen by a tenant, and we POST to it from inside our network, so it must
never reach something only we can reach: private networks, loopback, link-local (and the
instance metadata service, 169.254.169.254 / fd00:ec2::254), multicast, reserved ranges.

- Only ``https``. In local mode (``make run``, tests) plain ``http`` is allowed, to loopback only.
- The host is resolved and *every* address must be public, at registration and again at each
  delivery; the delivery then connects to the address it checked (no second lookup for an
  attacker's DNS to answer differently), sending the name as Host header and TLS SNI.
- No credentials in the URL, no redirects (the transport does not follow them).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.domain.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The metadata addresses, named even though their ranges are refused anyway.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
MAX_URL_LENGTH = 2048


class UnsafeUrl(Exception):
    """A URL or an address a webhook may not reach; the message says why (for the delivery log)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    #: Path and query, as sent in the request line.
    path: str
    address: IPAddress

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (module-level, so tests can replace the resolver)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why the address may not be reached, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped, allow_loopback=allow_loopback)
    if address in METADATA_ADDRESSES:
        return "the instance metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    for reason, flagged in (
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("not a public address", not address.is_global),
    ):
        if flagged:
            return reason
    return None


class UrlPolicy:
    """The guard: ``check`` at registration (an InvalidRequest for the caller), ``target`` at delivery."""

    def __init__(self, *, local_mode: bool) -> None:
        self.local_mode = local_mode

    def check(self, url: str) -> None:
        try:
            self.target(url)
        except UnsafeUrl as error:
            raise InvalidRequest.for_fields(
                "the webhook url is not allowed", ("url", str(error), "url_not_allowed")
            ) from None

    def target(self, url: str) -> Target:
        """The checked address to connect to; UnsafeUrl if there is none."""
        scheme, host, port, path = self._parse(url)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        try:
            addresses = [literal] if literal is not None else [ipaddress.ip_address(a) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise UnsafeUrl(f"the host {host!r} does not resolve") from None
        if not addresses:
            raise UnsafeUrl(f"the host {host!r} does not resolve")
        for address in addresses:
            reason = refusal(address, allow_loopback=self.local_mode)
            if reason is not None:
                raise UnsafeUrl(f"the host resolves to {reason}; only public addresses receive webhooks")
        if scheme == "http" and not all(a.is_loopback for a in addresses):
            raise UnsafeUrl("plain http is allowed to loopback only, in local mode; use https")
        return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])

    def _parse(self, url: str) -> tuple[str, str, int, str]:
        if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x21 for c in url):
            raise UnsafeUrl(f"a URL of at most {MAX_URL_LENGTH} characters, without spaces")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeUrl("not a valid URL") from None
        scheme = parts.scheme.lower()
        allowed = {"https", "http"} if self.local_mode else {"https"}
        if scheme not in allowed:
            raise UnsafeUrl("only https URLs" + (" (or http to loopback, locally)" if self.local_mode else ""))
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrl("credentials in the URL are not allowed")
        if parts.fragment:
            raise UnsafeUrl("a URL fragment is not allowed")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UnsafeUrl("the URL has no host")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return scheme, host, port or (443 if scheme == "https" else 80), path
