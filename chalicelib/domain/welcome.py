"""The welcome: the program's sign-up bonus on enrolment, and ``member.welcome`` within a day.

* On enrolment, by any path (the API, the order intake, a bulk import), the program's
  ``signup_bonus`` (0: none) is credited: an earn through the ledger under the key
  ``signup:<member id>``, so once per member whatever retries or reruns happen. It runs right
  after the member is written and writes nothing the enrolment needs: a failure leaves the
  enrolment standing, and the announcement below credits it (the same key) before it speaks.
* The notify job (hourly) announces each member enrolled in the day before it runs: a
  ``member.welcome`` event with the program's summary (the bonus credited, the member's points,
  the conversion rate, the first reward within reach). The event is a notice
  (chalicelib.domain.notifications) whose key cannot be written twice: it goes out once per
  member, however often the job runs. Members are found through the members index (their ids
  are time-ordered), never a scan.
* Members enrolled by a bulk import (who usually know the program already) get neither, unless
  the program's ``welcome_imported`` is true.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import IdempotencyKeyReused
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import new_notice_id
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.notifications import Notice

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.members import Member, MemberService
    from chalicelib.domain.ports import NoticeStore
    from chalicelib.domain.program import Program, ProgramService
    from chalicelib.domain.rewards import Reward, RewardService

#: The ledger key of a member's sign-up bonus: once per member, ever.
SIGNUP_KEY_PREFIX = "signup:"
#: The notice's subject: one welcome per member.
WELCOME_SUBJECT = "enrolment"
#: How far back a run of the notify job (hourly) looks for new members: a day and an hour, so
#: that a day of failed runs is still made up (a member already welcomed costs one key read).
WELCOME_LOOKBACK = timedelta(hours=25)
#: Rewards looked at for the first one within reach (the catalog's first page).
REWARDS_LOOKED_AT = 100


class WelcomeService:
    def __init__(
        self,
        program: ProgramService,
        points: PointsService,
        rewards: RewardService,
        members: MemberService,
        notices: NoticeStore,
        *,
        timezone: str = "UTC",
        clock: Clock = utc_now,
    ) -> None:
        self._program = program
        self._points = points
        self._rewards = rewards
        self._members = members
        self._notices = notices
        self._timezone = timezone
        self._clock = clock

    def credit_signup_bonus(self, member_id: str, *, imported: bool = False) -> str | None:
        """The sign-up bonus's transaction (credited now, or before: the same key), or None when
        the program has none or does not welcome imported members."""
        return self._credit(self._program.get(), member_id, imported=imported)

    def announce(self, as_of: datetime) -> int:
        """``member.welcome`` for each member enrolled within ``WELCOME_LOOKBACK`` before ``as_of``
        and not welcomed yet (crediting a bonus still missing first): how many were announced now."""
        program = self._program.get()
        now = self._clock()
        first_reward: list[Reward | None] = []  # read once, for the first member to welcome
        announced = 0
        for member in self._members.enrolled_between(as_of - WELCOME_LOOKBACK, as_of):
            if member.imported and not program.welcome_imported:
                continue
            if self._notices.exists(str(EventType.MEMBER_WELCOME), member.member_id, WELCOME_SUBJECT):
                continue
            if not first_reward:
                first_reward.append(self._first_reward(now))
            announced += self._announce(program, member, first_reward[0])
        return announced

    def _announce(self, program: Program, member: Member, reward: Reward | None) -> int:
        bonus_transaction = self._credit(program, member.member_id, imported=member.imported)
        available = self._points.view(member.member_id).available
        now = self._clock()
        notice = Notice(
            notice_id=new_notice_id(now),
            type=EventType.MEMBER_WELCOME,
            member_id=member.member_id,
            subject=WELCOME_SUBJECT,
            created_at=now,
            data={
                "signup_bonus_points": program.signup_bonus if bonus_transaction else 0,
                "signup_bonus_transaction_id": bonus_transaction,
                "available_points": available,
                "points_per_currency_unit": format(program.points_per_currency_unit.normalize(), "f"),
                "first_reward_id": reward.reward_id if reward is not None else None,
                "first_reward_name": reward.name if reward is not None else None,
                "first_reward_points_cost": reward.points_cost if reward is not None else None,
                "points_to_first_reward": max(0, reward.points_cost - available) if reward is not None else None,
            },
        )
        return self._notices.add_once(notice)

    def _credit(self, program: Program, member_id: str, *, imported: bool) -> str | None:
        if program.signup_bonus <= 0 or (imported and not program.welcome_imported):
            return None
        try:
            result = self._points.move(self._bonus(program, member_id))
        except IdempotencyKeyReused as credited:  # credited before the program's bonus changed
            return str(credited.details["transaction_id"])
        return result.entry.transaction_id

    def _bonus(self, program: Program, member_id: str) -> MovementRequest:
        return MovementRequest(
            member_id=member_id,
            movement=MovementType.EARN,
            idempotency_key=f"{SIGNUP_KEY_PREFIX}{member_id}",
            points=program.signup_bonus,
            reference="signup-bonus",
            description="Sign-up bonus",
            pending_days=0,
            timezone=self._timezone,
            minted_key=True,
            capped=False,  # a gift of the brand, not earned: no earning cap cuts it
        )

    def _first_reward(self, now: datetime) -> Reward | None:
        """The cheapest reward of the catalog's first page open to a new member now (not archived,
        in its window, for every tier: a new member has none). One read; its stock is not looked at."""
        page = self._rewards.list(limit=REWARDS_LOOKED_AT, cursor=None)
        open_now = [reward for reward in page.items if not reward.static_locks(now, None)]
        return min(open_now, key=lambda r: (r.points_cost, r.reward_id)) if open_now else None
