"""Member access: short-lived member tokens a brand's backend mints for one member, and the
brand's settings for the member API (its token signing key, the origins its pages are served from).

A member token is ``lmt_<payload>.<signature>``: the payload is URL-safe base64 JSON naming
the tenant, the member, the scopes, when it was issued and expires, the signing key that signed
it and the member's token generation; the signature is HMAC-SHA256 of ``lmt_<payload>`` under
the tenant's member-token signing key. The key is a random 256-bit secret, sealed by KMS like
the webhook signing secrets (the encryption context names the tenant and the key), and stored
with the tenant's member-access settings.

Nothing about a token is stored: it is checked on every request against the key in force (read
strongly consistently) and the member's token generation (on the member's profile). So
rotating the key ends every token of the tenant at once, and revoking a member's tokens (one
more generation) ends every token of that member at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.audit import AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound, TokenInvalid
from chalicelib.domain.ids import MEMBER_ID_PATTERN, ulid
from chalicelib.domain.scopes import MemberScope
from chalicelib.domain.tenants import is_tenant_id

if TYPE_CHECKING:
    from chalicelib.domain.expiry import Lot
    from chalicelib.domain.tenants import Tenant
    from chalicelib.domain.webhooks import SecretSealer

TOKEN_PREFIX = "lmt_"  # noqa: S105 (a prefix, not a secret)
#: A token lives this many minutes unless the brand asks for another lifetime, never more than the cap.
DEFAULT_LIFETIME_MINUTES = 15
MAX_LIFETIME_MINUTES = 60
#: Origins a brand may list for the member API (its pages calling it from a browser).
MAX_ALLOWED_ORIGINS = 20
ORIGIN_PATTERN = re.compile(r"^https?://[a-z0-9.-]+(?::[0-9]{1,5})?$")
#: Largest token accepted (a real one is well under 400 characters).
MAX_TOKEN_LENGTH = 1024
#: A member's redemptions run under ``member:<member id>:<the member's Idempotency-Key>``: one
#: member's keys never meet another member's, nor (unless it takes that shape) the brand's.
MEMBER_KEY_PREFIX = "member:"
_KEY_ID_PATTERN = re.compile(r"^mtk_[0-9A-HJKMNP-TV-Z]{26}$")


@dataclass(frozen=True)
class SigningKey:
    """The tenant's member-token signing key: its id (named in each token) and the sealed secret."""

    key_id: str
    sealed: str
    created_at: datetime


@dataclass(frozen=True)
class MemberAccess:
    """A tenant's member-access settings."""

    signing_key: SigningKey | None = None
    #: Origins (``https://shop.example``) whose pages may call the member API from a browser.
    allowed_origins: tuple[str, ...] = ()
    updated_at: datetime | None = None

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and origin.lower() in self.allowed_origins


NO_MEMBER_ACCESS = MemberAccess()


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    member_id: str
    scopes: frozenset[MemberScope]
    issued_at: datetime
    expires_at: datetime
    key_id: str
    #: The member's token generation when the token was minted (revoking adds one).
    generation: int
    token_id: str


@dataclass(frozen=True)
class IssuedMemberToken:
    """A freshly minted token: the only time it exists in the clear (it is never stored)."""

    token: str
    claims: TokenClaims


@dataclass(frozen=True)
class MemberContext:
    """Who is calling a member route: one member of one tenant, through a verified token."""

    tenant: Tenant
    member_id: str
    scopes: frozenset[MemberScope]
    token_id: str
    expires_at: datetime
    #: The tenant's member-access settings as the token was verified against them (its origins).
    access: MemberAccess = field(default_factory=MemberAccess)

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    @property
    def actor(self) -> str:
        """How the ledger names who moved points: the member's token."""
        return f"member:{self.token_id}"


def normalize_origins(origins: list[str]) -> tuple[str, ...]:
    """Origins as the browser sends them (scheme, host, port; lowercase), each once."""
    kept: list[str] = []
    problems = []
    for index, origin in enumerate(origins):
        value = origin.strip().lower().rstrip("/")
        if not ORIGIN_PATTERN.fullmatch(value):
            problems.append((f"allowed_origins.{index}", "an origin: scheme://host[:port]", "value_error"))
        elif value not in kept:
            kept.append(value)
    if problems:
        raise InvalidRequest.for_fields("invalid origins", *problems)
    if len(kept) > MAX_ALLOWED_ORIGINS:
        raise InvalidRequest.for_fields(
            f"at most {MAX_ALLOWED_ORIGINS} origins", ("allowed_origins", "too many origins", "too_long")
        )
    return tuple(kept)


class MemberAccessStore(Protocol):
    """A tenant's member-access settings and its members' token generations."""

    def get(self, *, consistent: bool = False) -> MemberAccess | None: ...
    def put_signing_key(self, key: SigningKey, *, replace: bool, audit: AuditEntry | None = None) -> SigningKey:
        """``key`` in force (``replace``: whatever was; else only if none is: the key in force);
        ``audit`` written in the same transaction."""

    def set_allowed_origins(
        self, origins: tuple[str, ...], at: datetime, audit: AuditEntry | None = None
    ) -> MemberAccess: ...
    def token_generation(self, member_id: str, *, consistent: bool = False) -> int | None:
        """The member's token generation (0 until its tokens are first revoked); None: no such member."""

    def next_token_generation(self, member_id: str) -> int | None:
        """One more generation for the member; None: no such member."""


# --- the token's text ------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, signed: str) -> str:
    return _b64(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())


def encode_token(claims: TokenClaims, secret: str) -> str:
    payload = {
        "t": claims.tenant_id,
        "m": claims.member_id,
        "s": sorted(str(s) for s in claims.scopes),
        "i": int(claims.issued_at.timestamp()),
        "e": int(claims.expires_at.timestamp()),
        "k": claims.key_id,
        "g": claims.generation,
        "j": claims.token_id,
    }
    signed = TOKEN_PREFIX + _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{signed}.{_signature(secret, signed)}"


def read_claims(token: str) -> tuple[TokenClaims, str, str]:
    """The token's claims (not yet verified), the signed text and the signature; TokenInvalid
    when it is not a member token at all."""
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX) or token.count(".") != 1:
        raise TokenInvalid("not a member token")
    signed, signature = token.split(".")
    try:
        data: Any = json.loads(_unb64(signed.removeprefix(TOKEN_PREFIX)))
        claims = TokenClaims(
            tenant_id=str(data["t"]),
            member_id=str(data["m"]),
            scopes=frozenset(MemberScope(s) for s in data["s"]),
            issued_at=datetime.fromtimestamp(int(data["i"]), tz=UTC),
            expires_at=datetime.fromtimestamp(int(data["e"]), tz=UTC),
            key_id=str(data["k"]),
            generation=int(data["g"]),
            token_id=str(data["j"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise TokenInvalid("not a member token") from None
    if not (is_tenant_id(claims.tenant_id) and MEMBER_ID_PATTERN.fullmatch(claims.member_id)):
        raise TokenInvalid("not a member token")
    return claims, signed, signature


# --- the service ---------------------------------------------------------------------------------------


class MemberAccessService:
    """One tenant's member tokens (minting, verifying, revoking) and member-access settings."""

    def __init__(
        self,
        tenant_id: str,
        store: MemberAccessStore,
        sealer: SecretSealer,
        clock: Clock = utc_now,
        *,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor
        self._tenant_id = tenant_id
        self._store = store
        self._sealer = sealer
        self._clock = clock

    def settings(self, *, consistent: bool = False) -> MemberAccess:
        return self._store.get(consistent=consistent) or NO_MEMBER_ACCESS

    def set_allowed_origins(self, origins: list[str]) -> MemberAccess:
        origins_in_force = normalize_origins(origins)
        before = self._store.get(consistent=True)
        audit = (
            self._auditor.entry(
                AuditAction.MEMBER_ACCESS_UPDATED,
                "member_access",
                self._tenant_id,
                before={"allowed_origins": list(before.allowed_origins)} if before is not None else None,
                after={"allowed_origins": list(origins_in_force)},
            )
            if self._auditor is not None
            else None
        )
        return self._store.set_allowed_origins(origins_in_force, self._clock(), audit)

    def issue(self, member_id: str, scopes: frozenset[MemberScope], lifetime_minutes: int) -> IssuedMemberToken:
        """A token for the member (NotFound if there is none), signed by the key in force
        (created on the tenant's first token)."""
        if not 1 <= lifetime_minutes <= MAX_LIFETIME_MINUTES:
            raise InvalidRequest.for_fields(
                f"lifetime_minutes must be 1 to {MAX_LIFETIME_MINUTES}",
                ("lifetime_minutes", f"1 to {MAX_LIFETIME_MINUTES}", "value_error"),
            )
        generation = self._store.token_generation(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if generation is None:
            raise NotFound(f"member {member_id!r} not found")
        key = self._key_in_force()
        now = self._clock().replace(microsecond=0)
        claims = TokenClaims(
            tenant_id=self._tenant_id,
            member_id=member_id,
            scopes=scopes,
            issued_at=now,
            expires_at=now + timedelta(minutes=lifetime_minutes),
            key_id=key.key_id,
            generation=generation,
            token_id=f"mtok_{ulid(now)}",
        )
        return IssuedMemberToken(token=encode_token(claims, self._open(key)), claims=claims)

    def verify(self, claims: TokenClaims, signed: str, signature: str) -> tuple[TokenClaims, MemberAccess]:
        """The claims, once the signature, the lifetime, the key and the member's generation are
        checked, and the settings they were checked against; TokenInvalid otherwise (one message
        for all: a caller learns nothing more)."""
        access = self._store.get(consistent=True)
        key = access.signing_key if access is not None else None
        if key is None or not hmac.compare_digest(key.key_id, claims.key_id):
            raise TokenInvalid("the member token is invalid, expired or revoked")
        if not hmac.compare_digest(_signature(self._open(key), signed), signature):
            raise TokenInvalid("the member token is invalid, expired or revoked")
        if self._clock() >= claims.expires_at:
            raise TokenInvalid("the member token is invalid, expired or revoked")
        if self._store.token_generation(claims.member_id, consistent=True) != claims.generation:
            raise TokenInvalid("the member token is invalid, expired or revoked")
        assert access is not None  # a key was found on it
        return claims, access

    def revoke_member_tokens(self, member_id: str) -> datetime:
        """Ends every token of the member minted so far (NotFound if there is no such member)."""
        at = self._clock()
        revoked = self._store.next_token_generation(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if revoked is None:
            raise NotFound(f"member {member_id!r} not found")
        return at

    def rotate_signing_key(self) -> SigningKey:
        """A new signing key in force: every token signed by the previous one is refused from now on."""
        key = self._new_key()
        audit = (
            self._auditor.entry(
                AuditAction.MEMBER_ACCESS_KEY_ROTATED, "member_access", self._tenant_id, after={"key_id": key.key_id}
            )
            if self._auditor is not None
            else None
        )
        return self._store.put_signing_key(key, replace=True, audit=audit)

    def _key_in_force(self) -> SigningKey:
        access = self._store.get()
        if access is not None and access.signing_key is not None:
            return access.signing_key
        return self._store.put_signing_key(self._new_key(), replace=False)

    def _new_key(self) -> SigningKey:
        key_id = f"mtk_{ulid()}"
        return SigningKey(
            key_id=key_id,
            sealed=self._sealer.seal(secrets.token_urlsafe(32), self._context(key_id)),
            created_at=self._clock(),
        )

    def _open(self, key: SigningKey) -> str:
        if not _KEY_ID_PATTERN.fullmatch(key.key_id):
            raise TokenInvalid("the member token is invalid, expired or revoked")
        return self._sealer.open(key.sealed, self._context(key.key_id))

    def _context(self, key_id: str) -> dict[str, str]:
        """KMS encryption context: a sealed key opens only for its own tenant and key id."""
        return {"tenant_id": self._tenant_id, "purpose": "member-tokens", "key_id": key_id}


# --- what the member API shows ---------------------------------------------------------------------------


def expiring_within(lots: tuple[Lot, ...], now: datetime, days: int) -> list[tuple[datetime, int]]:
    """Points that expire within ``days`` of ``now``, by expiry moment, soonest first (points
    still pending or already past their expiry are not the member's to lose)."""
    horizon = now + timedelta(days=days)
    due: dict[datetime, int] = {}
    for lot in lots:
        if lot.remaining <= 0 or lot.expires_at is None or (lot.pending and not lot.matured(now)):
            continue
        if now < lot.expires_at <= horizon:
            due[lot.expires_at] = due.get(lot.expires_at, 0) + lot.remaining
    return sorted(due.items())
