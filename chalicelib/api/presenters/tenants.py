"""Tenants -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.presenters.access import issued_api_key

if TYPE_CHECKING:
    from chalicelib.api.schemas.tenants import BrandClockOut, CreatedTenant, Me, TenantOut
    from chalicelib.domain import tenants as domain
    from chalicelib.domain.tenants import Tenant, TenantContext


def tenant(value: Tenant) -> TenantOut:
    from chalicelib.api.schemas.tenants import ProvisioningFailureOut, TenantOut

    return TenantOut(
        tenant_id=value.tenant_id,
        name=value.name,
        currency=value.currency,
        timezone=value.timezone,
        status=value.status,
        created_at=value.created_at,
        updated_at=value.updated_at,
        provisioning_failure=(
            ProvisioningFailureOut(attempts=failure.attempts, error=failure.error, at=failure.at)
            if (failure := value.provisioning_failure)
            else None
        ),
        sandbox=value.sandbox,
    )


def test_clock(value: Tenant) -> BrandClockOut:
    from chalicelib.api.schemas.tenants import BrandClockOut

    return BrandClockOut(
        sandbox=value.sandbox, now=value.clock(), offset_seconds=int(value.clock_offset.total_seconds())
    )


def created_tenant(value: domain.CreatedTenant) -> CreatedTenant:
    """A new tenant and its first admin key (its secret, shown once)."""
    from chalicelib.api.schemas.tenants import CreatedTenant

    return CreatedTenant(tenant=tenant(value.tenant), api_key=issued_api_key(value.admin_key))


def me(context: TenantContext) -> Me:
    """The caller: its tenant and the key it called with."""
    from chalicelib.api.schemas.tenants import CallerKey, Me

    return Me(
        tenant=tenant(context.tenant),
        api_key=CallerKey(id=context.key_id, name=context.key_name, scopes=sorted(context.scopes)),
    )
