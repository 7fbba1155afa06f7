"""Who is calling: the operator, a tenant's API key resolved to the context its request runs in,
or a member token (chalicelib.domain.member_access) resolved to its member."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.domain.api_keys import hash_secret, key_id_of, parse_bearer
from chalicelib.domain.errors import LoyaltyError, TenantNotReady, TenantSuspended, TokenInvalid, Unauthorized
from chalicelib.domain.member_access import NO_MEMBER_ACCESS, MemberAccess, MemberContext, read_claims
from chalicelib.domain.tenants import Tenant, TenantContext, TenantStatus, is_tenant_id

if TYPE_CHECKING:
    from chalicelib.domain.member_access import MemberAccessService
    from chalicelib.domain.ports import ApiKeyStore, TenantStore


class Authenticator:
    """Resolves the caller of a request: the operator, a tenant's API key, or a member token."""

    def __init__(
        self,
        api_keys: ApiKeyStore,
        tenants: TenantStore,
        operator_key_sha256: str | None,
        *,
        member_access: Callable[[Tenant], MemberAccessService] | None = None,
    ) -> None:
        self._api_keys = api_keys
        self._tenants = tenants
        self._operator_key_sha256 = operator_key_sha256
        #: A tenant's member access (its signing key, its members' token generations; its clock).
        self._member_access = member_access

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
        tenant = self._tenant_in_service(record.tenant_id, unknown=Unauthorized("invalid API key"))
        return TenantContext(
            tenant=tenant,
            key_id=record.key_id,
            key_name=record.name,
            scopes=record.scopes,
            partner_id=record.partner_id,
        )

    def authenticate_member(self, authorization: str | None, tenant_id: str) -> MemberContext:
        """The member of a member token presented for the tenant ``tenant_id`` (the tenant the
        route names). An API key is refused here, as a member token is on every other route."""
        presented = parse_bearer(authorization)
        if key_id_of(presented) is not None:
            raise TokenInvalid("member routes take a member token, not an API key")
        claims, signed, signature = read_claims(presented)
        if claims.tenant_id != tenant_id or self._member_access is None:
            raise TokenInvalid("the member token is invalid, expired or revoked")
        # The signing key and the member's generation are read strongly consistently (a
        # rotation or a revocation is immediate); the tenant eventually, as for API keys.
        tenant = self._tenant_in_service(tenant_id, unknown=TokenInvalid("the member token is invalid"))
        verified, access = self._member_access(tenant).verify(claims, signed, signature)
        return MemberContext(
            tenant=tenant,
            member_id=verified.member_id,
            scopes=verified.scopes,
            token_id=verified.token_id,
            expires_at=verified.expires_at,
            access=access,
        )

    def member_access_of(self, tenant_id: str) -> MemberAccess:
        """The member-access settings of the tenant a member route names (its allowed origins),
        whoever calls: nothing for a tenant that is unknown or not active yet."""
        if not is_tenant_id(tenant_id) or self._member_access is None:
            return NO_MEMBER_ACCESS
        tenant = self._tenants.get(tenant_id, consistent=False)
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            return NO_MEMBER_ACCESS
        return self._member_access(tenant).settings()

    def _tenant_in_service(self, tenant_id: str, *, unknown: LoyaltyError) -> Tenant:
        """The tenant, when it serves requests: ``unknown`` if it does not exist, 409 while its
        table is being provisioned, 403 while it is suspended."""
        tenant = self._tenants.get(tenant_id, consistent=False)
        if tenant is None:
            raise unknown
        if tenant.status == TenantStatus.PROVISIONING:
            # Its table may not exist yet: nothing is read or written for it until it does.
            raise TenantNotReady(
                f"tenant {tenant.tenant_id!r} is still being provisioned; retry in a few seconds",
                details={"tenant_id": tenant.tenant_id, "status": str(tenant.status)},
            )
        if tenant.status != TenantStatus.ACTIVE:
            raise TenantSuspended(f"tenant {tenant.tenant_id!r} is suspended")
        return tenant
