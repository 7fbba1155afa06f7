"""Tenants -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.tenants import TenantOut
    from chalicelib.domain.tenants import Tenant


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
    )
