"""The audit trail: who changed what of a tenant's program, keys and integrations, and when.

Every admin change (and every operator change of a tenant) writes one :class:`AuditEntry` in
the same DynamoDB transaction as the change itself, so there is never a change without its
entry, nor an entry without its change. A service builds the entry with its :class:`Auditor`
(who is calling, and the clock) and hands it to its store, which appends it to the
transaction it writes anyway (``chalicelib.persistence.audit.add_audit_entry``).

Entries name the caller's API key id (``key_...``), or ``operator`` for the operator key,
never a secret: :func:`snapshot` drops every field whose name says it holds one. They are
append-only: nothing updates or deletes them; DynamoDB's TTL removes each one
:data:`AUDIT_RETENTION_YEARS` years after it was written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.domain.clock import Clock, isoformat, utc_now

if TYPE_CHECKING:
    from chalicelib.domain.ports import AuditStore, Page
    from chalicelib.domain.tenants import TenantContext

#: How long an entry is kept: the bookkeeping horizon of the ledger it explains (most
#: jurisdictions ask 6 to 10 years of a business's records); then DynamoDB's TTL deletes it.
AUDIT_RETENTION_YEARS = 7


class AuditAction(StrEnum):
    """What an entry records (``<object>.<verb>``)."""

    PROGRAM_UPDATED = "program.updated"
    RULE_ADDED = "rule.added"
    RULE_ENDED = "rule.ended"
    TIERS_CONFIGURED = "tiers.configured"
    REWARD_CREATED = "reward.created"
    REWARD_UPDATED = "reward.updated"
    REWARD_CODES_UPLOADED = "reward.codes_uploaded"
    REWARD_ARCHIVED = "reward.archived"
    PLANS_UPDATED = "plans.updated"
    REFERRALS_CONFIGURED = "referrals.configured"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    POINTS_ADJUSTED = "points.adjusted"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_ROTATED = "webhook.secret_rotated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    PARTNER_CREATED = "partner.created"
    SHOPIFY_CREATED = "shopify.created"
    SHOPIFY_ROTATED = "shopify.secret_rotated"
    IMPORT_CREATED = "import.created"
    JOB_RUN = "job.run"
    TENANT_CREATED = "tenant.created"
    TENANT_SUSPENDED = "tenant.suspended"
    TENANT_RESUMED = "tenant.resumed"
    MEMBER_EXPORTED = "member.exported"
    MEMBER_ERASED = "member.erased"
    CHALLENGE_CREATED = "challenge.created"
    CHALLENGE_UPDATED = "challenge.updated"
    CHALLENGE_ARCHIVED = "challenge.archived"
    TRANSFER_REVERSED = "transfer.reversed"
    MEMBER_ACCESS_UPDATED = "member_access.updated"
    MEMBER_ACCESS_KEY_ROTATED = "member_access.key_rotated"


class Channel(StrEnum):
    """How a change reached the service."""

    #: An API key's request (the key id names it).
    API = "api"
    #: The operator key (tenants' lifecycle).
    OPERATOR = "operator"
    #: A row of a bulk import (the key id is the import's submitter).
    IMPORT = "import"
    #: A scheduled job (no key).
    JOB = "job"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an API key's id (never its secret) and the channel it came through."""

    key_id: str
    channel: Channel = Channel.API

    @classmethod
    def of(cls, context: TenantContext) -> Actor:
        return cls(context.key_id, Channel.API)


OPERATOR = Actor("operator", Channel.OPERATOR)
SYSTEM = Actor("system", Channel.JOB)


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: datetime
    actor: Actor
    action: AuditAction
    #: What changed: its kind (``program``, ``rule``, ``api_key``, ``member``...) and its id.
    target_type: str
    target_id: str
    #: The object before and after the change, as JSON values, secrets left out (None: none).
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def new_audit_entry_id(at: datetime) -> str:
    from ulid import ULID  # on first use: importing the app loads no library a route may not need

    return f"aud_{ULID.from_datetime(at)}"


class Auditor:
    """Builds the entries of one caller's changes (the request's key, or the operator)."""

    def __init__(self, actor: Actor, clock: Clock = utc_now) -> None:
        self.actor = actor
        self._clock = clock

    def entry(
        self,
        action: AuditAction,
        target_type: str,
        target_id: str,
        *,
        before: Any = None,
        after: Any = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """``before`` and ``after``: domain objects (dataclasses), mappings or None; kept as
        :func:`snapshot` renders them."""
        moment = at or self._clock()
        return AuditEntry(
            entry_id=new_audit_entry_id(moment),
            at=moment,
            actor=self.actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=_object(before),
            after=_object(after),
        )


#: Field names never copied into an entry (sealed secrets, digests).
_SECRET_WORDS = ("secret", "sha256", "password", "token", "ciphertext", "sealed")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def snapshot(value: Any) -> Any:
    """``value`` as a JSON value: dataclasses and mappings as objects (fields naming a secret
    left out), sets as sorted lists, decimals as strings, times as ISO-8601 UTC."""
    if isinstance(value, Enum):
        return snapshot(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | float):
        return str(value)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: snapshot(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.compare and not _is_secret(field.name)
        }
    if isinstance(value, dict):
        return {str(key): snapshot(item) for key, item in value.items() if not _is_secret(str(key))}
    if isinstance(value, set | frozenset):
        return sorted((snapshot(item) for item in value), key=str)
    if isinstance(value, list | tuple):
        return [snapshot(item) for item in value]
    return str(value)


def _object(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    rendered = snapshot(value)
    return rendered if isinstance(rendered, dict) else {"value": rendered}


@dataclass(frozen=True)
class AuditQuery:
    """Entries written strictly after ``after`` (all when None), of ``actor`` and ``action`` when given."""

    after: datetime | None = None
    actor: str | None = None
    action: AuditAction | None = None


class AuditService:
    """Reading a trail (oldest first: an integrator polls with ``after``)."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def list(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        return self.store.list(query, limit=limit, cursor=cursor)
