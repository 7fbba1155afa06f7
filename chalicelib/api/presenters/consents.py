"""A member's consents -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.consents import ConsentChangeOut, ConsentsOut
    from chalicelib.domain.consents import ConsentChange
    from chalicelib.domain.members import Member
    from chalicelib.domain.ports import Page


def consent_change(change: ConsentChange) -> ConsentChangeOut:
    from chalicelib.api.schemas.audit import AuditActorOut
    from chalicelib.api.schemas.consents import ConsentChangeOut

    return ConsentChangeOut(
        id=change.change_id,
        consent=change.consent,
        value=change.value,
        previous=change.previous,
        at=change.at,
        source=AuditActorOut(key_id=change.source.key_id, channel=change.source.channel),
    )


def consents(member: Member, history: Page[ConsentChange]) -> ConsentsOut:
    from chalicelib.api.schemas.consents import ConsentsOut
    from chalicelib.domain.consents import current_consents

    return ConsentsOut(
        member_id=member.member_id,
        consents=current_consents(member),
        data=[consent_change(change) for change in history.items],
        next_cursor=history.next_cursor,
    )
