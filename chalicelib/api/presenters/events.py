"""Events -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.domain.event_payloads import event_data

if TYPE_CHECKING:
    from chalicelib.api.schemas.events import EventOut
    from chalicelib.domain.events import Event


def event(value: Event) -> EventOut:
    from chalicelib.api.schemas.events import EventOut

    return EventOut(
        id=value.event_id,
        type=value.type,
        member_id=value.member_id,
        created_at=value.created_at,
        data=event_data(value),
    )
