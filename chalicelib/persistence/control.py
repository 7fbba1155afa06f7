"""Repositories of the shared control-plane table: tenants and their API keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.domain.api_keys import ApiKey
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import NotFound, TenantExists
from chalicelib.domain.ports import Page
from chalicelib.domain.scopes import Scope
from chalicelib.domain.tenants import ProvisioningFailure, Tenant, TenantStatus
from chalicelib.persistence.audit import add_audit_entry, audited_transaction
from chalicelib.persistence.errors import cancellation_codes, response_code, translate_transient
from chalicelib.persistence.factory import ControlModels
from chalicelib.persistence.models import ApiKeyItem, AuditItem, TenantItem
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite

_TENANTS = "TENANTS"
_INDEX_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def api_key_pk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


def _tenant_keys_partition(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}#APIKEYS"


def _index_key(item: TenantItem | ApiKeyItem) -> dict[str, str]:
    return {"pk": item.pk, "sk": item.sk, "gsi1pk": item.gsi1pk or "", "gsi1sk": item.gsi1sk or ""}


class TenantRepository:
    def __init__(self, models: ControlModels) -> None:
        self._models = models
        self._tenant = models.tenant

    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None:
        with translate_transient():
            try:
                item = self._tenant.get(tenant_pk(tenant_id), "#TENANT", consistent_read=consistent)
            except DoesNotExist:
                return None
        return _to_tenant(item)

    def create_with_key(self, tenant: Tenant, admin_key: ApiKey, audit: AuditEntry | None = None) -> None:
        item = self._models.tenant(
            pk=tenant_pk(tenant.tenant_id),
            sk="#TENANT",
            gsi1pk=_TENANTS,
            gsi1sk=tenant.tenant_id,
            tenant_id=tenant.tenant_id,
            name=tenant.name,
            currency=tenant.currency,
            timezone=tenant.timezone,
            status=str(tenant.status),
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            tiers_stored=tenant.tiers_stored,
            sandbox=tenant.sandbox or None,
        )
        key_item = _to_key_item(self._models, admin_key)
        try:
            with (
                translate_transient(),
                GuardedTransactWrite(connection=self._models.tenant._get_connection().connection) as tx,
            ):
                tx.save(item, condition=self._models.tenant.pk.does_not_exist())
                tx.save(key_item, condition=self._models.api_key.pk.does_not_exist())
                if audit is not None:
                    add_audit_entry(self._models.audit, tx, audit)
        except TransactWriteError as error:
            if cancellation_codes(error)[:1] == ["ConditionalCheckFailed"]:
                raise TenantExists(
                    f"tenant {tenant.tenant_id!r} already exists", details={"tenant_id": tenant.tenant_id}
                ) from None
            raise

    def set_status(self, tenant: Tenant, audit: AuditEntry | None = None) -> None:
        model = self._models.tenant
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.update(
                    model(pk=tenant_pk(tenant.tenant_id), sk="#TENANT"),
                    actions=[model.status.set(str(tenant.status)), model.updated_at.set(tenant.updated_at)],
                    condition=model.pk.exists(),
                )
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in cancellation_codes(error):
                raise NotFound(f"tenant {tenant.tenant_id!r} not found") from None
            raise

    def advance_clock(self, tenant_id: str, offset_seconds: int, *, at: datetime) -> Tenant | None:
        """A sandbox tenant's test clock set ``offset_seconds`` ahead of real time, only forward:
        None when the tenant is not a sandbox or its clock is already as far (a concurrent move)."""
        model = self._models.tenant
        item = model(pk=tenant_pk(tenant_id), sk="#TENANT")
        ahead = model.clock_offset_seconds.does_not_exist() | (model.clock_offset_seconds < offset_seconds)
        try:
            with translate_transient():
                item.update(
                    actions=[model.clock_offset_seconds.set(offset_seconds), model.updated_at.set(at)],
                    condition=(model.sandbox == True) & ahead,  # noqa: E712 (a PynamoDB condition)
                )
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return _to_tenant(item)

    def list(self, *, limit: int, cursor: str | None) -> Page[Tenant]:
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", _TENANTS)) if cursor else None
        with translate_transient():
            rows = self._tenant.gsi1.query(_TENANTS, limit=limit + 1, last_evaluated_key=start)
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_tenant)

    def finish_provisioning(self, tenant_id: str, *, at: datetime) -> Tenant | None:
        model = self._tenant
        item = model(pk=tenant_pk(tenant_id), sk="#TENANT")
        try:
            with translate_transient():
                item.update(
                    actions=[
                        model.status.set(str(TenantStatus.ACTIVE)),
                        model.updated_at.set(at),
                        model.provisioning_attempts.remove(),
                        model.provisioning_error.remove(),
                        model.provisioning_failed_at.remove(),
                    ],
                    condition=model.status == str(TenantStatus.PROVISIONING),
                )
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":  # not provisioning (any more)
                return None
            raise
        return _to_tenant(item)

    def record_provisioning_failure(self, tenant_id: str, error: str, *, at: datetime) -> Tenant:
        model = self._tenant
        item = model(pk=tenant_pk(tenant_id), sk="#TENANT")
        try:
            with translate_transient():
                item.update(
                    actions=[
                        model.provisioning_attempts.add(1),
                        model.provisioning_error.set(error),
                        model.provisioning_failed_at.set(at),
                    ],
                    condition=model.pk.exists(),
                )
        except UpdateError as failure:
            if response_code(failure) == "ConditionalCheckFailedException":
                raise NotFound(f"tenant {tenant_id!r} not found") from None
            raise
        return _to_tenant(item)


class ApiKeyRepository:
    """``audit_model_of``: the audit items of a tenant's table, where the changes of its keys are
    recorded (in the key's transaction, across the two tables); else the control table's."""

    def __init__(self, models: ControlModels, audit_model_of: Callable[[str], type[AuditItem]] | None = None) -> None:
        self._models = models
        self._audit_model_of = audit_model_of

    def _audit_model(self, tenant_id: str) -> type[AuditItem]:
        return self._audit_model_of(tenant_id) if self._audit_model_of is not None else self._models.audit

    def get(self, key_id: str) -> ApiKey | None:
        with translate_transient():
            try:
                item = self._models.api_key.get(api_key_pk(key_id), "#APIKEY", consistent_read=True)
            except DoesNotExist:
                return None
        return _to_api_key(item)

    def add(self, key: ApiKey, audit: AuditEntry | None = None) -> None:
        with audited_transaction(self._audit_model(key.tenant_id), audit) as tx:
            tx.save(_to_key_item(self._models, key), condition=self._models.api_key.pk.does_not_exist())

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        with translate_transient():
            rows = self._models.api_key.gsi1.query(_tenant_keys_partition(tenant_id))
            return [_to_api_key(row) for row in rows]

    def revoke(self, key: ApiKey, at: datetime, audit: AuditEntry | None = None) -> ApiKey:
        model = self._models.api_key
        try:
            with audited_transaction(self._audit_model(key.tenant_id), audit) as tx:
                tx.update(
                    model(pk=api_key_pk(key.key_id), sk="#APIKEY"),
                    actions=[model.revoked_at.set(at)],
                    condition=model.pk.exists() & (model.tenant_id == key.tenant_id),
                )
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in cancellation_codes(error):
                raise NotFound(f"API key {key.key_id!r} not found") from None
            raise
        return replace(key, revoked_at=at)


def _to_key_item(models: ControlModels, key: ApiKey) -> ApiKeyItem:
    return models.api_key(
        pk=api_key_pk(key.key_id),
        sk="#APIKEY",
        gsi1pk=_tenant_keys_partition(key.tenant_id),
        gsi1sk=key.key_id,
        key_id=key.key_id,
        tenant_id=key.tenant_id,
        name=key.name,
        scopes={str(scope) for scope in key.scopes},
        secret_sha256=key.secret_sha256,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        partner_id=key.partner_id,
    )


def _to_tenant(item: TenantItem) -> Tenant:
    failure = (
        ProvisioningFailure(
            attempts=int(item.provisioning_attempts or 0),
            error=item.provisioning_error,
            at=item.provisioning_failed_at,
        )
        if item.provisioning_error and item.provisioning_failed_at
        else None
    )
    return Tenant(
        tenant_id=item.tenant_id,
        name=item.name,
        currency=item.currency,
        timezone=item.timezone,
        status=TenantStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        provisioning_failure=failure,
        tiers_stored=item.tiers_stored,
        sandbox=bool(item.sandbox),
        clock_offset=timedelta(seconds=int(item.clock_offset_seconds or 0)),
    )


def _to_api_key(item: ApiKeyItem) -> ApiKey:
    return ApiKey(
        key_id=item.key_id,
        tenant_id=item.tenant_id,
        name=item.name,
        scopes=frozenset(Scope(scope) for scope in item.scopes),
        secret_sha256=item.secret_sha256,
        created_at=item.created_at,
        revoked_at=item.revoked_at,
        partner_id=item.partner_id,
    )
