"""A member's consents: the flags in force and the history of their changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from chalicelib.api.schemas.audit import AuditActorOut
from chalicelib.api.schemas.common import Out
from chalicelib.domain.consents import Consent

_EXAMPLE: dict[str, Any] = {
    "member_id": "mem_01JD0000000000000000000000",
    "consents": {"marketing": False},
    "data": [
        {
            "id": "cns_01JD0000000000000000000000",
            "consent": "marketing",
            "value": True,
            "previous": None,
            "at": "2026-03-01T10:00:00Z",
            "source": {"key_id": "key_01JD0000000000000000000000", "channel": "api"},
        },
        {
            "id": "cns_01JF0000000000000000000000",
            "consent": "marketing",
            "value": False,
            "previous": True,
            "at": "2026-09-12T18:30:00Z",
            "source": {"key_id": "key_01JD0000000000000000000000", "channel": "api"},
        },
    ],
    "next_cursor": None,
}


class ConsentChangeOut(Out):
    id: str
    consent: Consent
    value: bool = Field(description="The consent from this change on.")
    previous: bool | None = Field(description="The consent before it; null when given at enrolment or import.")
    at: datetime
    source: AuditActorOut = Field(description="The API key that recorded it (its id) and the channel.")


class ConsentsOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    member_id: str
    consents: dict[Consent, bool] = Field(description="The consents in force now.")
    data: list[ConsentChangeOut] = Field(description="Every change, oldest first.")
    next_cursor: str | None
