"""Tenants (brands): the registry entry, its lifecycle and the context a request runs in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.api_keys import ApiKey, IssuedApiKey, Scope, issue_api_key
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound, TenantExists

if TYPE_CHECKING:
    from chalicelib.domain.ports import ApiKeyStore, Page, TableProvisioner, TenantStore

#: 3 to 32 characters, lowercase letters, digits and inner hyphens. It names DynamoDB
#: tables, so it is validated before it ever reaches a table name.
TENANT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
TENANT_ID_MIN_LENGTH, TENANT_ID_MAX_LENGTH = 3, 32


def is_tenant_id(value: str) -> bool:
    return (
        isinstance(value, str)
        and TENANT_ID_MIN_LENGTH <= len(value) <= TENANT_ID_MAX_LENGTH
        and TENANT_ID_PATTERN.fullmatch(value) is not None
    )


def validate_tenant_id(tenant_id: str) -> str:
    if not is_tenant_id(tenant_id):
        raise InvalidRequest.for_fields(
            "tenant_id must be 3-32 lowercase letters, digits or single inner hyphens, starting with a letter",
            ("tenant_id", "invalid slug", "string_pattern_mismatch"),
        )
    return tenant_id


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    currency: str
    timezone: str
    status: TenantStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TenantContext:
    """Who is calling: resolved once per request from the API key, passed explicitly."""

    tenant: Tenant
    key_id: str
    key_name: str
    scopes: frozenset[Scope] = field(default_factory=frozenset)

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    name: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class CreatedTenant:
    tenant: Tenant
    admin_key: IssuedApiKey


class TenantService:
    def __init__(
        self,
        tenants: TenantStore,
        api_keys: ApiKeyStore,
        provisioner: TableProvisioner,
        clock: Clock = utc_now,
    ) -> None:
        self._tenants = tenants
        self._api_keys = api_keys
        self._provisioner = provisioner
        self._clock = clock

    def create(self, request: NewTenant) -> CreatedTenant:
        validate_tenant_id(request.tenant_id)
        if self._tenants.get(request.tenant_id) is not None:
            raise TenantExists(f"tenant {request.tenant_id!r} already exists", details={"tenant_id": request.tenant_id})
        # Tables first: creating them is idempotent, so a crash here is repaired by a retry.
        self._provisioner.ensure_tenant_tables(request.tenant_id)
        now = self._clock()
        tenant = Tenant(
            tenant_id=request.tenant_id,
            name=request.name,
            currency=request.currency,
            timezone=request.timezone,
            status=TenantStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )
        issued = issue_api_key(tenant.tenant_id, name="admin", scopes=frozenset({Scope.ADMIN}), now=now)
        # The registry entry and its first key are written together, or not at all.
        self._tenants.create_with_key(tenant, issued.record)
        return CreatedTenant(tenant=tenant, admin_key=issued)

    def get(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id) if is_tenant_id(tenant_id) else None
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant

    def list(self, *, limit: int, cursor: str | None) -> Page[Tenant]:
        return self._tenants.list(limit=limit, cursor=cursor)

    def suspend(self, tenant_id: str) -> Tenant:
        return self._set_status(tenant_id, TenantStatus.SUSPENDED)

    def resume(self, tenant_id: str) -> Tenant:
        return self._set_status(tenant_id, TenantStatus.ACTIVE)

    def _set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        tenant = self.get(tenant_id)
        updated = replace(tenant, status=status, updated_at=self._clock())
        self._tenants.set_status(updated)
        return updated


__all__ = [
    "ApiKey",
    "CreatedTenant",
    "NewTenant",
    "Tenant",
    "TenantContext",
    "TenantService",
    "TenantStatus",
    "validate_tenant_id",
]
