"""The audit trail: who changed what, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field

from chalicelib.api.schemas.common import Cursor, Limit, Out, Query
from chalicelib.domain.audit import AuditAction, Channel

_ENTRY_EXAMPLE: dict[str, Any] = {
    "id": "aud_01JD3M5W8Q9ZK2V7C4B6N1X0TR",
    "at": "2026-11-04T09:15:02Z",
    "actor": {"key_id": "key_01JD0000000000000000000000", "channel": "api"},
    "action": "program.updated",
    "target": {"type": "program", "id": "program"},
    "before": {"points_per_currency_unit": "1", "rounding": "floor"},
    "after": {"points_per_currency_unit": "2", "rounding": "floor"},
}


class AuditQuery(Query):
    after: AwareDatetime | None = Field(
        default=None, description="Only entries written after this instant (RFC 3339); default: all."
    )
    actor: str | None = Field(
        default=None,
        max_length=64,
        description="Only the entries of this API key id (`key_...`), or `operator`.",
        examples=["key_01JD0000000000000000000000"],
    )
    action: AuditAction | None = Field(default=None, description="Only entries of this action.")
    limit: Limit = 20
    cursor: Cursor | None = None


class AuditActorOut(Out):
    key_id: str = Field(description="The API key's id (never its secret), `operator`, or `system` (a job).")
    channel: Channel


class AuditTargetOut(Out):
    type: str = Field(description="What changed: `program`, `rule`, `tiers`, `api_key`, `member`, `webhook`...")
    id: str


class AuditEntryOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY_EXAMPLE]})

    id: str
    at: datetime
    actor: AuditActorOut
    action: AuditAction
    target: AuditTargetOut
    before: dict[str, Any] | None = Field(description="The object before the change (secrets left out); null: none.")
    after: dict[str, Any] | None = Field(description="The object after the change (secrets left out); null: none.")


class AuditList(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [{"data": [_ENTRY_EXAMPLE], "next_cursor": None}]})

    data: list[AuditEntryOut] = Field(description="Oldest first.")
    next_cursor: str | None
