"""API keys: long random secrets with a recognisable prefix, stored only as SHA-256 digests.

A key looks like ``lk_<ULID>_<43 url-safe characters>``. The ULID part is the public key
id (``key_<ULID>``) used to find the record; the whole string is hashed and compared in
constant time. The keys carry 256 bits of entropy, so a fast hash is the right tool (a
slow password hash would only add latency to every request).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.audit import Actor, AuditAction, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound, Unauthorized
from chalicelib.domain.ids import API_KEY_ID_PATTERN, new_api_key_id
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.domain.ports import ApiKeyStore
    from chalicelib.domain.tenants import TenantContext

KEY_PREFIX = "lk_"
_KEY_PATTERN = re.compile(r"^lk_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    name: str
    scopes: frozenset[Scope]
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None
    #: A partner key: the coalition partner it acts for (its only scope is ``partner``).
    partner_id: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly created key: the only time the plain secret exists."""

    record: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(
    tenant_id: str, *, name: str, scopes: frozenset[Scope], now: datetime, partner_id: str | None = None
) -> IssuedApiKey:
    key_id = new_api_key_id()
    secret = f"{KEY_PREFIX}{key_id.removeprefix('key_')}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        key_id=key_id,
        tenant_id=tenant_id,
        name=name,
        scopes=scopes,
        secret_sha256=hash_secret(secret),
        created_at=now,
        partner_id=partner_id,
    )
    return IssuedApiKey(record=record, secret=secret)


def parse_bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    return token.strip()


def key_id_of(secret: str) -> str | None:
    match = _KEY_PATTERN.fullmatch(secret)
    return f"key_{match.group(1)}" if match else None


class ApiKeyService:
    def __init__(self, api_keys: ApiKeyStore, clock: Clock = utc_now) -> None:
        self._api_keys = api_keys
        self._clock = clock

    def create(
        self, context: TenantContext, *, name: str, scopes: frozenset[Scope], partner_id: str | None = None
    ) -> IssuedApiKey:
        """``partner_id`` (checked to exist by the caller) binds a partner key: scopes exactly ``partner``."""
        if (Scope.PARTNER in scopes or partner_id is not None) and (scopes != {Scope.PARTNER} or not partner_id):
            raise InvalidRequest.for_fields(
                "a partner key has exactly the 'partner' scope and names its partner_id",
                ("scopes", "exactly ['partner'] together with partner_id", "partner_key"),
            )
        now = self._clock()
        issued = issue_api_key(context.tenant_id, name=name, scopes=scopes, now=now, partner_id=partner_id)
        audit = Auditor(Actor.of(context), self._clock).entry(
            AuditAction.API_KEY_CREATED, "api_key", issued.record.key_id, after=issued.record, at=now
        )
        self._api_keys.add(issued.record, audit)
        return issued

    def list(self, context: TenantContext) -> list[ApiKey]:
        return self._api_keys.list_for_tenant(context.tenant_id)

    def revoke(self, context: TenantContext, key_id: str) -> ApiKey:
        record = self._api_keys.get(key_id) if API_KEY_ID_PATTERN.fullmatch(key_id) else None
        if record is None or record.tenant_id != context.tenant_id:
            raise NotFound(f"API key {key_id!r} not found")
        if not record.active:
            return record
        now = self._clock()
        audit = Auditor(Actor.of(context), self._clock).entry(
            AuditAction.API_KEY_REVOKED, "api_key", key_id, before=record, after=replace(record, revoked_at=now), at=now
        )
        return self._api_keys.revoke(record, now, audit)
