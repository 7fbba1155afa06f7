"""Who is calling: the operator, or a tenant's API key resolved to the context its request runs in."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from chalicelib.domain.api_keys import hash_secret, key_id_of, parse_bearer
from chalicelib.domain.errors import TenantNotReady, TenantSuspended, Unauthorized
from chalicelib.domain.tenants import TenantContext, TenantStatus

if TYPE_CHECKING:
    from chalicelib.domain.ports import ApiKeyStore, TenantStore


class Authenticator:
    """Resolves the caller of a request: the operator, or a tenant's API key."""

    def __init__(self, api_keys: ApiKeyStore, tenants: TenantStore, operator_key_sha256: str | None) -> None:
        self._api_keys = api_keys
        self._tenants = tenants
        self._operator_key_sha256 = operator_key_sha256

    def authenticate_operator(self, authorization: str | None) -> None:
        presented = parse_bearer(authorization)
        expected = self._operator_key_sha256
        # Compare even when nothing is configured, so that timing says nothing either way.
        if not hmac.compare_digest(hash_secret(presented), expected or "0" * 64) or expected is None:
            raise Unauthorized("invalid operator key")

    def authenticate_tenant(self, authorization: str | None) -> TenantContext:
        presented = parse_bearer(authorization)
        key_id = key_id_of(presented)
        record = self._api_keys.get(key_id) if key_id else None
        if record is None or not hmac.compare_digest(hash_secret(presented), record.secret_sha256):
            raise Unauthorized("invalid API key")
        if not record.active:
            raise Unauthorized("this API key has been revoked")
        # The key is read strongly consistently (a revocation is immediate); the tenant
        # eventually (half the cost on every request; a suspension lands within DynamoDB's
        # replication delay, typically well under a second).
        tenant = self._tenants.get(record.tenant_id, consistent=False)
        if tenant is None:
            raise Unauthorized("invalid API key")
        if tenant.status == TenantStatus.PROVISIONING:
            # Its table may not exist yet: nothing is read or written for it until it does.
            raise TenantNotReady(
                f"tenant {tenant.tenant_id!r} is still being provisioned; retry in a few seconds",
                details={"tenant_id": tenant.tenant_id, "status": str(tenant.status)},
            )
        if tenant.status != TenantStatus.ACTIVE:
            raise TenantSuspended(f"tenant {tenant.tenant_id!r} is suspended")
        return TenantContext(
            tenant=tenant,
            key_id=record.key_id,
            key_name=record.name,
            scopes=record.scopes,
            partner_id=record.partner_id,
        )
