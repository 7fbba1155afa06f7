"""Tenants (brands): the registry entry, its lifecycle and the context a request runs in.

A tenant's lifecycle is ``provisioning`` -> ``active`` <-> ``suspended``. Where a
provisioning queue is configured (deployed stages), creating a tenant registers it as
``provisioning`` with its first admin key and enqueues the creation of its table; the
queue's consumer calls :meth:`TenantService.provision`, which creates the table (or finds
it), waits until it is usable and only then makes the tenant ``active``. Until then its
keys get 409 ``tenant_not_ready``. Without a queue (``make run``, most tests) the table is
created inline, before the tenant is registered, and the tenant is ``active`` at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.api_keys import ApiKey, IssuedApiKey, issue_api_key
from chalicelib.domain.audit import OPERATOR, AuditAction, Auditor
from chalicelib.domain.clock import Clock, shifted, utc_now
from chalicelib.domain.errors import (
    InvalidRequest,
    LoyaltyError,
    NotFound,
    SandboxOnly,
    TenantExists,
    TenantNotReady,
)
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.domain.ports import ApiKeyStore, Page, ProvisioningQueue, TableProvisioner, TenantStore

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


#: How far a sandbox brand's test clock may run ahead of real time.
MAX_CLOCK_OFFSET = timedelta(days=3660)


#: How much of a failure's text is kept on the tenant's record.
MAX_FAILURE_TEXT = 500


class TenantStatus(StrEnum):
    #: Registered, its table not yet usable: its keys get 409 tenant_not_ready.
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class ProvisioningFailure:
    """The failed attempts at provisioning a tenant's table since the last success."""

    attempts: int
    #: ``<code>: <message>`` of the last failure (e.g. DynamoDB's table limits).
    error: str
    at: datetime


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    currency: str
    timezone: str
    status: TenantStatus
    created_at: datetime
    updated_at: datetime
    #: Set while provisioning keeps failing (it is retried); cleared when the tenant becomes active.
    provisioning_failure: ProvisioningFailure | None = None
    #: Whether a tier version is stored: False from registration, True from the first
    #: version's transaction on; None (unknown) for a tenant registered before it was kept.
    tiers_stored: bool | None = None
    #: A sandbox brand (created so, never changed) has a test clock its admin key moves forward.
    sandbox: bool = False
    #: How far the sandbox's test clock runs ahead of real time (never back; zero on a live brand).
    clock_offset: timedelta = timedelta(0)

    @property
    def clock(self) -> Clock:
        """The brand's time: real time, or its test clock's for a sandbox brand."""
        return shifted(self.clock_offset)

    @property
    def may_have_tiers(self) -> bool:
        """False only when the registry knows that no tier version was ever stored: a balance
        read may then skip looking for the version in force."""
        return self.tiers_stored is not False


@dataclass(frozen=True)
class TenantContext:
    """Who is calling: resolved once per request from the API key, passed explicitly."""

    tenant: Tenant
    key_id: str
    key_name: str
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    #: A partner key's partner (coalition partners); None for the tenant's own keys.
    partner_id: str | None = None

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    name: str
    currency: str
    timezone: str
    sandbox: bool = False


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
        *,
        queue: ProvisioningQueue | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self._tenants = tenants
        #: The operator's changes are recorded in the control table's audit trail.
        self._auditor = auditor or Auditor(OPERATOR, clock)
        self._api_keys = api_keys
        self._provisioner = provisioner
        self._clock = clock
        #: None: tables are provisioned inline, within the request.
        self._queue = queue

    def create(self, request: NewTenant) -> CreatedTenant:
        validate_tenant_id(request.tenant_id)
        if self._tenants.get(request.tenant_id) is not None:
            raise TenantExists(f"tenant {request.tenant_id!r} already exists", details={"tenant_id": request.tenant_id})
        if self._queue is None:
            # Inline: the table first. Creating it is idempotent and nothing is registered
            # yet, so a failure here writes nothing and a retry of the request completes.
            self._provisioner.ensure_tenant_tables(request.tenant_id)
            return self._register(request, TenantStatus.ACTIVE)
        # Queued: the request for the table first, then the registration (with the admin
        # key, shown now and only now); usable once the queue's consumer has provisioned
        # the table. A failure of either step is the answer and leaves no tenant that
        # nothing would provision, so a retry of the request completes; the consumer drops
        # a message whose tenant stays unregistered after a few deliveries.
        self._queue.enqueue(request.tenant_id)
        return self._register(request, TenantStatus.PROVISIONING)

    def provision(self, tenant_id: str) -> Tenant:
        """Make the tenant's table exist as it should, then the tenant ``active``.

        Idempotent: a duplicate message, a retry after a failure or a timeout, or a table
        that already exists all end in the same state. A tenant that is already active (or
        suspended) keeps its status; its table's settings are checked again (a repair).
        A failure is recorded on the tenant and raised again, so that the queue redelivers
        the message later: DynamoDB's table limits (500 table operations in progress per
        account, the account's table quota) are RetryLater, a table still being created too.
        """
        tenant = self.get(tenant_id)
        try:
            self._provisioner.ensure_tenant_tables(tenant_id)
        except Exception as error:
            self._record_failure(tenant, error)
            raise
        if tenant.status is not TenantStatus.PROVISIONING:
            return tenant
        # Only provisioning -> active: a concurrent duplicate may have got there first.
        return self._tenants.finish_provisioning(tenant_id, at=self._clock()) or self.get(tenant_id)

    def _register(self, request: NewTenant, status: TenantStatus) -> CreatedTenant:
        now = self._clock()
        tenant = Tenant(
            tenant_id=request.tenant_id,
            name=request.name,
            currency=request.currency,
            timezone=request.timezone,
            status=status,
            created_at=now,
            updated_at=now,
            tiers_stored=False,
            sandbox=request.sandbox,
        )
        issued = issue_api_key(tenant.tenant_id, name="admin", scopes=frozenset({Scope.ADMIN}), now=now)
        # The registry entry, its first key and the audit entry are written together, or not at all.
        audit = self._auditor.entry(
            AuditAction.TENANT_CREATED,
            "tenant",
            tenant.tenant_id,
            after={"tenant": tenant, "admin_key_id": issued.record.key_id},
            at=now,
        )
        self._tenants.create_with_key(tenant, issued.record, audit)
        return CreatedTenant(tenant=tenant, admin_key=issued)

    def _record_failure(self, tenant: Tenant, error: Exception) -> None:
        if isinstance(error, LoyaltyError):
            text = f"{error.code}: {error.message}"
        else:
            text = f"{type(error).__name__}: {error}"
        try:
            self._tenants.record_provisioning_failure(tenant.tenant_id, text[:MAX_FAILURE_TEXT], at=self._clock())
        except Exception:  # the original failure is what the caller must see
            return

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

    def advance_clock(self, tenant: Tenant, to: datetime) -> Tenant:
        """Move a sandbox brand's test clock forward to ``to``. It never moves back: a ``to`` its
        clock has already passed changes nothing (so a retry of the same request is harmless)."""
        if not tenant.sandbox:
            raise SandboxOnly(
                "only a sandbox brand has a test clock; a live brand's time is real time",
                details={"tenant_id": tenant.tenant_id},
            )
        offset = to - self._clock()
        if offset > MAX_CLOCK_OFFSET:
            raise InvalidRequest.for_fields(
                f"a test clock runs at most {MAX_CLOCK_OFFSET.days} days ahead of real time",
                ("to", "too far ahead", "less_than_equal"),
            )
        seconds = math.ceil(offset.total_seconds())  # whole seconds, never short of ``to``
        if seconds <= tenant.clock_offset.total_seconds():
            return self.get(tenant.tenant_id)
        return self._tenants.advance_clock(tenant.tenant_id, seconds, at=self._clock()) or self.get(tenant.tenant_id)

    def _set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        tenant = self.get(tenant_id)
        if tenant.status is TenantStatus.PROVISIONING:
            # Resuming it would make it active without a table; provisioning decides.
            raise TenantNotReady(
                f"tenant {tenant_id!r} is being provisioned; it can be suspended once active",
                details={"tenant_id": tenant_id, "status": str(tenant.status)},
            )
        updated = replace(tenant, status=status, updated_at=self._clock())
        action = AuditAction.TENANT_SUSPENDED if status is TenantStatus.SUSPENDED else AuditAction.TENANT_RESUMED
        audit = self._auditor.entry(
            action,
            "tenant",
            tenant_id,
            before={"status": tenant.status},
            after={"status": updated.status},
            at=updated.updated_at,
        )
        self._tenants.set_status(updated, audit)
        return updated


__all__ = [
    "ApiKey",
    "CreatedTenant",
    "NewTenant",
    "ProvisioningFailure",
    "Tenant",
    "TenantContext",
    "TenantService",
    "TenantStatus",
    "validate_tenant_id",
]
