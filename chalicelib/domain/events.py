"""The tenant's event feed: every change that matters, in order, for integrations to pull.

Events are the items their changes write (a ledger entry, a member's profile), indexed by
UTC day and ULID, so none exists without its change and no change lacks its event. A
reader sees only events older than a few seconds (the settle window): ids are minted just
before their transaction commits, so a later commit can carry a slightly older id, and a
consumer's cursor must never pass an event that is not visible yet.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.entries import LedgerEntry
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ids import ulid
from chalicelib.domain.movement_requests import MovementType

if TYPE_CHECKING:
    from chalicelib.domain.members import Member
    from chalicelib.domain.notifications import Notice
    from chalicelib.domain.ports import EventStore

#: How long an event waits before readers see it.
SETTLE_WINDOW = timedelta(seconds=5)
#: Bounds of one read: days walked and items examined (a filter may skip many).
MAX_DAYS_PER_READ = 31
MAX_ITEMS_PER_READ = 1000


class EventType(StrEnum):
    MEMBER_CREATED = "member.created"
    POINTS_EARNED = "points.earned"
    POINTS_REDEEMED = "points.redeemed"
    POINTS_ADJUSTED = "points.adjusted"
    POINTS_EXPIRED = "points.expired"
    POINTS_MATURED = "points.matured"
    POINTS_REVERSED = "points.reversed"
    #: Notices of the notify job (marketing: only for members with marketing consent).
    POINTS_EXPIRING_SOON = "points.expiring_soon"
    MEMBER_BIRTHDAY = "member.birthday"
    #: A member's tier changed: upgraded by an earn, or lowered by the review job.
    TIER_CHANGED = "tier.changed"
    #: A referral's rewards were credited (or the referrer's was capped): referrer, referee, points.
    REFERRAL_COMPLETED = "referral.completed"
    #: Paid membership (chalicelib.domain.plans): a subscription recorded, extended, ended.
    SUBSCRIPTION_STARTED = "subscription.started"
    SUBSCRIPTION_RENEWED = "subscription.renewed"
    SUBSCRIPTION_LAPSED = "subscription.lapsed"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    #: A member completed a challenge (chalicelib.domain.challenges): its reward, the movement.
    CHALLENGE_COMPLETED = "challenge.completed"
    #: A member was awarded a badge (once per badge), by the challenge they completed.
    BADGE_AWARDED = "badge.awarded"
    #: Points moved between two members (chalicelib.domain.transfers): one event in each member's feed.
    POINTS_TRANSFERRED = "points.transferred"
    #: A member was erased at the brand's request (chalicelib.domain.privacy): ids and points only.
    MEMBER_ERASED = "member.erased"
    #: A new member's welcome (chalicelib.domain.welcome): the sign-up bonus and the program's summary.
    MEMBER_WELCOME = "member.welcome"
    #: A coupon was used at a till or a checkout (chalicelib.domain.rewards), once per coupon: its reward,
    #: code, member, the use's reference and time.
    COUPON_USED = "coupon.used"


EVENT_OF_MOVEMENT = {
    MovementType.EARN: EventType.POINTS_EARNED,
    MovementType.REDEEM: EventType.POINTS_REDEEMED,
    MovementType.ADJUST: EventType.POINTS_ADJUSTED,
    MovementType.EXPIRE: EventType.POINTS_EXPIRED,
    MovementType.MATURE: EventType.POINTS_MATURED,
    MovementType.REVERSE: EventType.POINTS_REVERSED,
    MovementType.TRANSFER: EventType.POINTS_TRANSFERRED,
}


@dataclass(frozen=True)
class Event:
    #: ``evt_`` + the ULID of the change (its transaction or member id).
    event_id: str
    type: EventType
    member_id: str
    created_at: datetime
    entry: LedgerEntry | None = None
    member: Member | None = None
    notice: Notice | None = None

    @classmethod
    def of_entry(cls, entry: LedgerEntry) -> Event:
        ulid = entry.transaction_id.removeprefix("txn_")
        return cls(f"evt_{ulid}", EVENT_OF_MOVEMENT[entry.movement], entry.member_id, entry.created_at, entry=entry)

    @classmethod
    def of_member(cls, member: Member) -> Event:
        ulid = member.member_id.removeprefix("mem_")
        return cls(f"evt_{ulid}", EventType.MEMBER_CREATED, member.member_id, member.created_at, member=member)

    @classmethod
    def of_notice(cls, notice: Notice) -> Event:
        ulid = notice.notice_id.removeprefix("ntc_")
        return cls(f"evt_{ulid}", notice.type, notice.member_id, notice.created_at, notice=notice)

    @property
    def sort_key(self) -> str:
        return self.event_id.removeprefix("evt_")


@dataclass(frozen=True)
class FeedPage:
    events: list[Event]
    #: Where to read on from; always present (a feed is polled).
    next_cursor: str


class EventFeed:
    def __init__(self, store: EventStore, *, start: datetime, clock: Clock = utc_now) -> None:
        self._store = store
        self._start = start.astimezone(UTC).date()
        self._clock = clock

    def read(self, *, after: str | None, types: frozenset[EventType], limit: int) -> FeedPage:
        day, last_key = _decode(after) if after else (self._start, "")
        settled = self._clock() - SETTLE_WINDOW
        upper = str(ulid(settled))[:10] + "Z" * 16  # every id minted up to then
        final_day = settled.astimezone(UTC).date()
        events: list[Event] = []
        examined = days = 0
        while day <= final_day and len(events) < limit and examined < MAX_ITEMS_PER_READ:
            batch = self._store.read_day(day, after=last_key, upper=upper, limit=min(100, MAX_ITEMS_PER_READ))
            examined += len(batch)
            for event in batch:
                last_key = event.sort_key
                if not types or event.type in types:
                    events.append(event)
                if len(events) == limit:
                    break
            if len(events) == limit or len(batch) == min(100, MAX_ITEMS_PER_READ):
                continue  # more may wait in this day
            if day == final_day:
                break
            days += 1
            if days >= MAX_DAYS_PER_READ:
                day, last_key = day + timedelta(days=1), ""
                break
            day, last_key = day + timedelta(days=1), ""
        return FeedPage(events=events, next_cursor=_encode(day, last_key))


def cursor_after(event: Event) -> str:
    """The cursor of a feed read that stopped right after ``event`` (a consumer that commits
    part of a page moves its checkpoint there)."""
    return _encode(event.created_at.astimezone(UTC).date(), event.sort_key)


def _encode(day: date, last_key: str) -> str:
    raw = json.dumps({"d": day.isoformat(), "k": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[date, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        day, key = date.fromisoformat(data["d"]), str(data["k"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest.for_fields(
            "invalid cursor", ("after", "not a cursor returned by this feed", "cursor_invalid")
        ) from None
    if len(key) > 26:
        raise InvalidRequest.for_fields(
            "invalid cursor", ("after", "not a cursor returned by this feed", "cursor_invalid")
        )
    return day, key
