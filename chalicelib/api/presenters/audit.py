"""Audit entries -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.audit import AuditEntryOut, AuditList
    from chalicelib.domain.audit import AuditEntry
    from chalicelib.domain.ports import Page


def audit_entry(entry: AuditEntry) -> AuditEntryOut:
    from chalicelib.api.schemas.audit import AuditActorOut, AuditEntryOut, AuditTargetOut

    return AuditEntryOut(
        id=entry.entry_id,
        at=entry.at,
        actor=AuditActorOut(key_id=entry.actor.key_id, channel=entry.actor.channel),
        action=entry.action,
        target=AuditTargetOut(type=entry.target_type, id=entry.target_id),
        before=entry.before,
        after=entry.after,
    )


def audit_list(page: Page[AuditEntry]) -> AuditList:
    from chalicelib.api.schemas.audit import AuditList

    return AuditList(data=[audit_entry(entry) for entry in page.items], next_cursor=page.next_cursor)
