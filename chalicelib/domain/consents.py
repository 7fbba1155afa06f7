"""A member's consents and their history: each change recorded with its time, source and value.

A change is written by the member store in the same transaction as the profile's flag, only
when the value changes (an enrolment with consent, an update that grants or withdraws it, an
imported member with consent), so the history holds every change and nothing else. Marketing
messages (``member.birthday``, ``points.expiring_soon``) follow the consent in force at the
moment they are about (:meth:`ConsentService.in_force`), not the one of the moment they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.audit import Actor

if TYPE_CHECKING:
    from chalicelib.domain.members import Member
    from chalicelib.domain.ports import ConsentStore, Page


class Consent(StrEnum):
    """The consents a member gives (the profile's flag of each)."""

    #: Marketing messages: ``member.birthday`` and ``points.expiring_soon`` events.
    MARKETING = "marketing"


@dataclass(frozen=True)
class ConsentChange:
    change_id: str
    member_id: str
    consent: Consent
    value: bool
    #: The value before the change; None when it was given at enrolment (or import).
    previous: bool | None
    at: datetime
    #: Who recorded it: an API key's id and the channel (``api``, ``import``).
    source: Actor


def new_consent_change(
    member_id: str, consent: Consent, value: bool, previous: bool | None, at: datetime, source: Actor
) -> ConsentChange:
    from ulid import ULID  # on first use: importing the app loads no library a route may not need

    return ConsentChange(
        change_id=f"cns_{ULID.from_datetime(at)}",
        member_id=member_id,
        consent=consent,
        value=value,
        previous=previous,
        at=at,
        source=source,
    )


def current_consents(member: Member) -> dict[Consent, bool]:
    return {Consent.MARKETING: member.marketing_consent}


class ConsentService:
    def __init__(self, store: ConsentStore) -> None:
        self._store = store

    def history(self, member_id: str, *, limit: int, cursor: str | None) -> Page[ConsentChange]:
        """The member's consent changes, oldest first."""
        return self._store.history(member_id, limit=limit, cursor=cursor)

    def in_force(self, member: Member, consent: Consent, at: datetime) -> bool:
        """Whether ``member`` had given ``consent`` at ``at``: the value of the last change at or
        before it; before the first change, that change's previous value; without any change
        recorded since ``at``, the profile's."""
        current = current_consents(member)[consent]
        if at >= member.updated_at:  # the profile has not changed since: its flag was in force
            return current
        change = self._store.in_force(member.member_id, consent, at)
        if change is not None:
            return change.value
        later = self._store.first_after(member.member_id, consent, at)
        if later is not None:
            return bool(later.previous)
        return current
