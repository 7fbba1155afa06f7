"""Members: the brand's customers enrolled in its program."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_member_id
from chalicelib.domain.ledger import Balance
from chalicelib.domain.rules import segment_problems

if TYPE_CHECKING:
    from chalicelib.domain.ports import MemberStore, Page


@dataclass(frozen=True)
class Member:
    member_id: str
    external_id: str | None
    email: str | None
    name: str | None
    birthday: date | None
    marketing_consent: bool
    created_at: datetime
    updated_at: datetime
    #: Segments the brand puts the member in (``vip``, ``staff``): campaigns may target them.
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NewMember:
    external_id: str | None = None
    email: str | None = None
    name: str | None = None
    birthday: date | None = None
    marketing_consent: bool = False
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MemberChanges:
    """Only the fields present in ``fields_set`` change; the others keep their value."""

    fields_set: frozenset[str]
    email: str | None = None
    name: str | None = None
    birthday: date | None = None
    marketing_consent: bool | None = None
    #: The member's segments from now on (replaces them; empty: none).
    segments: frozenset[str] | None = None


def _check_segments(segments: frozenset[str] | None) -> None:
    if problems := segment_problems(segments or frozenset()):
        raise InvalidRequest.for_fields("invalid segments", *((p, m, "value_error") for p, m in problems))


class MemberService:
    def __init__(self, store: MemberStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def enrol(self, request: NewMember) -> Member:
        _check_segments(request.segments)
        now = self._clock()
        member = Member(
            member_id=new_member_id(now),
            external_id=request.external_id,
            email=request.email,
            name=request.name,
            birthday=request.birthday,
            marketing_consent=request.marketing_consent,
            created_at=now,
            updated_at=now,
            segments=request.segments,
        )
        # Raises MemberExists (naming the existing id) when the external id is taken.
        self._store.create(member, Balance.opening(member.member_id, now))
        return member

    def get(self, member_id: str) -> Member:
        member = self._store.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if member is None:
            raise NotFound(f"member {member_id!r} not found")
        return member

    def find_by_external_id(self, external_id: str) -> Member | None:
        return self._store.find_by_external_id(external_id)

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        return self._store.list(limit=limit, cursor=cursor)

    def segments_of(self, member_id: str) -> frozenset[str]:
        """The member's segments (none for an unknown member: the caller decides on 404s)."""
        member = self._store.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        return member.segments if member is not None else frozenset()

    def update(self, member_id: str, changes: MemberChanges) -> Member:
        if "segments" in changes.fields_set:
            _check_segments(changes.segments)
        updated = (
            self._store.update(member_id, changes, self._clock()) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        )
        if updated is None:
            raise NotFound(f"member {member_id!r} not found")
        return updated
