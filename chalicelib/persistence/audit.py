"""The audit trail in DynamoDB: each entry appended to the transaction of the change it records.

A store that writes an audited change adds the entry to its own transaction with
:func:`add_audit_entry` (or opens one with :func:`audited_transaction` when the change is a
single item), so the change and its entry are written together or not at all. The entry is
written only if absent and never updated: the trail is append-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from ulid import ULID

from chalicelib.domain.audit import (
    AUDIT_RETENTION_YEARS,
    Actor,
    AuditAction,
    AuditEntry,
    AuditQuery,
    Channel,
)
from chalicelib.domain.ports import Page
from chalicelib.persistence.errors import translate_transient
from chalicelib.persistence.models import AuditItem
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite

AUDIT_PK = "AUDIT"
_ENTRY_PREFIX = "aud_"
_KEY_FIELDS = ("pk", "sk")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RETENTION = timedelta(days=365 * AUDIT_RETENTION_YEARS + AUDIT_RETENTION_YEARS // 4)


def add_audit_entry(model: type[AuditItem], tx: GuardedTransactWrite, entry: AuditEntry) -> None:
    """Append ``entry`` to ``tx`` (the change's own transaction), only if no entry has its id."""
    tx.save(to_audit_item(model, entry), condition=model.pk.does_not_exist(), label=entry)


@contextmanager
def audited_transaction(model: type[AuditItem], entry: AuditEntry | None) -> Iterator[GuardedTransactWrite]:
    """A transaction for the caller's writes, with ``entry`` appended when it commits (none: the
    caller's writes alone). Nothing is written if the block raises."""
    with translate_transient(), GuardedTransactWrite(connection=model._get_connection().connection) as tx:
        yield tx
        if entry is not None:
            add_audit_entry(model, tx, entry)


def to_audit_item(model: type[AuditItem], entry: AuditEntry) -> AuditItem:
    return model(
        pk=AUDIT_PK,
        sk=entry.entry_id,
        actor=entry.actor.key_id,
        channel=str(entry.actor.channel),
        action=str(entry.action),
        target_type=entry.target_type,
        target_id=entry.target_id,
        at=entry.at,
        before=_json(entry.before),
        after=_json(entry.after),
        expires_at=entry.at + _RETENTION,
    )


class AuditRepository:
    """Reads a table's trail (the tenant's, or the control table's for the operator)."""

    def __init__(self, model: type[AuditItem]) -> None:
        self._model = model

    def list(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        model = self._model
        start = decode_cursor(cursor, fields=_KEY_FIELDS, partition=("pk", AUDIT_PK)) if cursor else None
        condition = model.sk > _after(query.after) if query.after is not None else model.sk.startswith(_ENTRY_PREFIX)
        filters = None
        if query.actor is not None:
            filters = model.actor == query.actor
        if query.action is not None:
            by_action = model.action == str(query.action)
            filters = by_action if filters is None else filters & by_action
        with translate_transient():
            rows = model.query(
                AUDIT_PK,
                condition,
                filter_condition=filters,
                limit=limit + 1,
                last_evaluated_key=start,
                consistent_read=True,
            )
            return paginate(rows, limit=limit, key_of=lambda item: {"pk": item.pk, "sk": item.sk}, convert=to_entry)


def _after(moment: datetime) -> str:
    """The greatest entry id of ``moment``'s millisecond: the ids after it are the entries after it
    (a moment before 1970, which no entry can follow, stands for the start)."""
    if moment < _EPOCH:
        return _ENTRY_PREFIX
    timestamp = str(ULID.from_datetime(moment))[:10]
    return f"{_ENTRY_PREFIX}{timestamp}{'Z' * 16}"


def _json(value: dict[str, object] | None) -> str | None:
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value is not None else None


def to_entry(item: AuditItem) -> AuditEntry:
    return AuditEntry(
        entry_id=item.sk,
        at=item.at,
        actor=Actor(item.actor, Channel(item.channel)),
        action=AuditAction(item.action),
        target_type=item.target_type,
        target_id=item.target_id,
        before=json.loads(item.before) if item.before else None,
        after=json.loads(item.after) if item.after else None,
    )
