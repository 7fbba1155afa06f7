"""The notify job: ``points.expiring_soon`` before points lapse, ``member.birthday`` on the day,
``member.welcome`` for the members enrolled in the day before (chalicelib.domain.welcome).

Each notice is an event of the tenant's feed, written once per subject (a member's expiry
date, a member's birthday year) under a key that cannot be written twice, so reruns and
overlapping runs announce nothing twice. Both are marketing messages: a member without
marketing consent in force at ``as_of`` gets none (chalicelib.domain.consents; the birthday
bonus is still credited; it is points, not a message). Notices are stamped with the clock,
not ``as_of``: a backfill's events still land at the head of the feed, where consumers read.
Cost follows the work due: members are found through the due-lots index (lots and inactivity
deadlines within the warning window) and a birthday index, never a scan.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.consents import Consent
from chalicelib.domain.entries import BalanceView
from chalicelib.domain.errors import NotFound
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import new_notice_id
from chalicelib.domain.movement_requests import MovementRequest, MovementType

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chalicelib.domain.consents import ConsentService
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.members import Member, MemberService
    from chalicelib.domain.ports import LedgerStore, NoticeStore
    from chalicelib.domain.program import ProgramService
    from chalicelib.domain.welcome import WelcomeService


@dataclass(frozen=True)
class Notice:
    """A notification event: ``subject`` makes it unique per member (expiry date, birthday year)."""

    notice_id: str
    type: EventType
    member_id: str
    subject: str
    created_at: datetime
    data: dict[str, str | int | None] = field(default_factory=dict)


def birthdays_on(day: date) -> list[str]:
    """The ``MM-DD`` birthdays celebrated on ``day``: 29 February falls on 28 February in
    years without one."""
    days = [f"{day:%m-%d}"]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        days.append("02-29")
    return days


class NotificationJob:
    def __init__(
        self,
        *,
        ledger: LedgerStore,
        notices: NoticeStore,
        members: MemberService,
        points: PointsService,
        program: ProgramService,
        timezone: str,
        clock: Clock = utc_now,
        consents: ConsentService | None = None,
        welcome: WelcomeService | None = None,
    ) -> None:
        self._clock = clock
        self._consents = consents
        #: ``member.welcome`` for the members enrolled since the previous run (chalicelib.domain.welcome).
        self._welcome = welcome
        self._ledger = ledger
        self._notices = notices
        self._members = members
        self._points = points
        self._program = program
        self._zone = ZoneInfo(timezone)
        self._timezone = timezone

    def run(self, as_of: datetime) -> dict[str, int]:
        program = self._program.get()
        counts = {"expiring_soon": 0, "birthdays": 0, "birthday_bonuses": 0, "skipped_no_consent": 0, "welcomes": 0}

        def may_message(member: Member) -> bool:
            """The marketing consent in force at ``as_of`` (a backfill follows the consent of its time)."""
            if self._consents is not None:
                consent = self._consents.in_force(member, Consent.MARKETING, as_of)
            else:
                consent = member.marketing_consent
            if not consent:
                counts["skipped_no_consent"] += 1
            return consent

        if program.expiry_warning_days > 0:
            horizon = as_of + timedelta(days=program.expiry_warning_days)
            for member_id, expiries in self._upcoming_expiries(as_of, horizon):
                member = self._member(member_id)
                if member is None or not may_message(member):
                    continue
                for expires_at, points in sorted(expiries.items()):
                    local_day = expires_at.astimezone(self._zone).date().isoformat()
                    notice = Notice(
                        notice_id=new_notice_id(now := self._clock()),
                        type=EventType.POINTS_EXPIRING_SOON,
                        member_id=member_id,
                        subject=local_day,
                        created_at=now,
                        data={"points": points, "expires_at": isoformat(expires_at), "expiry_date": local_day},
                    )
                    counts["expiring_soon"] += self._notices.add_once(notice)
        today = as_of.astimezone(self._zone).date()
        for member_id in self._notices.members_born_on(birthdays_on(today)):
            member = self._member(member_id)
            if member is None or member.birthday is None:
                continue
            bonus_transaction = None
            if program.birthday_bonus > 0:
                result = self._points.move(
                    MovementRequest(
                        member_id=member_id,
                        movement=MovementType.EARN,
                        idempotency_key=f"birthday:{member_id}:{today.year}",
                        points=program.birthday_bonus,
                        reference=f"birthday-{today.year}",
                        description="Birthday bonus",
                        pending_days=0,
                        timezone=self._timezone,
                        minted_key=True,
                        capped=False,  # a gift of the brand, not earned: no earning cap cuts it
                    )
                )
                bonus_transaction = result.entry.transaction_id
                counts["birthday_bonuses"] += 0 if result.replayed else 1
            if not may_message(member):
                continue
            notice = Notice(
                notice_id=new_notice_id(now := self._clock()),
                type=EventType.MEMBER_BIRTHDAY,
                member_id=member_id,
                subject=str(today.year),
                created_at=now,
                data={
                    "birthday": member.birthday.isoformat(),
                    "bonus_points": program.birthday_bonus if bonus_transaction else 0,
                    "bonus_transaction_id": bonus_transaction,
                },
            )
            counts["birthdays"] += self._notices.add_once(notice)
        if self._welcome is not None:
            counts["welcomes"] += self._welcome.announce(as_of)
        return counts

    def _member(self, member_id: str) -> Member | None:
        try:
            return self._members.get(member_id)
        except NotFound:
            return None

    def _upcoming_expiries(self, as_of: datetime, horizon: datetime) -> Iterator[tuple[str, dict[datetime, int]]]:
        """Per member with points expiring in (as_of, horizon]: the points per expiry moment
        (lots past their expiry are the expiry job's, not announced)."""
        seen: set[str] = set()
        for member_id, _ in self._ledger.due_lots(horizon):
            if member_id in seen:
                continue
            seen.add(member_id)
            balance, lots = self._points.balance_and_lots(member_id)
            view = BalanceView.at(balance, lots, as_of)
            lapse = balance.inactive_at if balance.inactive_at and as_of < balance.inactive_at <= horizon else None
            expiries: dict[datetime, int] = defaultdict(int)
            for lot in lots:
                spendable = not lot.pending or lot.matured(as_of)
                due = lot.expires_at if lot.expires_at is not None and as_of < lot.expires_at <= horizon else None
                if spendable and due is not None and (lapse is None or due < lapse):
                    expiries[due] += lot.remaining
            if lapse is not None:  # whatever has not expired by then lapses with it
                expiries[lapse] = view.available - sum(expiries.values())
            if expiries := {moment: points for moment, points in expiries.items() if points > 0}:
                yield member_id, expiries
