"""Challenges and badges: goals a brand sets its members over a window ("3 orders in October",
"review 2 products", "spend 100 in a month", "an order every week for 6 weeks"), each open to
all members or to some tiers or segments, rewarded with points, a badge, or both.

A member's progress is one item per challenge, moved in the transaction of the movement that
advances it (chalicelib.domain.steps.challenges) under the condition that it is still the one
read: completion is decided once, and its points ride in the completing movement itself as a
``challenge`` share of its breakdown, so they are credited exactly once with it.

Reversals: a reversal of an order counted by a challenge not yet completed withdraws it (a
refund of an amount takes that amount off what the order counted; a reversal by points takes
the whole order off). A completed challenge stays completed: its badge stays, and its points
are taken back only as part of the completing order's own points, when that order is reversed.
Streaks are not rewound by reversals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import InvalidRequest, LimitReached, NotFound
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_notice_id, ulid
from chalicelib.domain.notifications import Notice
from chalicelib.domain.tiers import SPEND_SCALE

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.domain.program import ProgramService

#: Challenges a tenant may have open (not archived, not ended) at once: each may add its
#: progress, a badge and two events to a movement's transaction (32 items at most), which
#: with the lots a movement may settle (about 60 items) stays within DynamoDB's 100.
MAX_OPEN_CHALLENGES = 8
#: Orders a challenge's progress remembers (to withdraw one on its reversal); the oldest
#: beyond this can no longer be withdrawn.
MAX_COUNTED_ORDERS = 200
#: Monday 5 January 1970: weeks are counted from it (ISO weeks, in the tenant's time zone).
_FIRST_MONDAY = date(1970, 1, 5)


class ChallengeKind(StrEnum):
    #: Orders in the window (each order once).
    ORDERS = "orders"
    #: Money spent in the window (the orders' totals).
    SPEND = "spend"
    #: Activities of one type in the window (reviews, follows...).
    ACTIVITIES = "activities"
    #: Consecutive weeks or months with an order, a gap of up to ``grace`` periods forgiven.
    STREAK = "streak"


class StreakPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"


class ChallengeStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class Badge:
    badge_id: str
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    name: str
    kind: ChallengeKind
    #: Orders, activities or periods; money for ``spend``.
    goal: Decimal
    starts_at: datetime
    created_at: datetime
    updated_at: datetime
    #: None: open-ended.
    ends_at: datetime | None = None
    description: str | None = None
    #: ``activities``: the activity type counted.
    activity: str | None = None
    #: ``streak``: the period, and how many periods without an order a streak survives.
    period: StreakPeriod | None = None
    grace: int = 0
    #: Points credited on completion (0: none), and the badge awarded (None: none).
    reward_points: int = 0
    badge: Badge | None = None
    #: Who may take part: members of any of these tiers, and of any of these segments (empty: all).
    tiers: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    status: ChallengeStatus = ChallengeStatus.ACTIVE

    @property
    def target(self) -> int:
        """The goal in progress units (money scaled by SPEND_SCALE)."""
        return int(self.goal * SPEND_SCALE) if self.kind is ChallengeKind.SPEND else int(self.goal)

    def open_at(self, at: datetime) -> bool:
        return (
            self.status is ChallengeStatus.ACTIVE
            and self.starts_at <= at
            and (self.ends_at is None or at < self.ends_at)
        )

    def ended(self, at: datetime) -> bool:
        return self.status is ChallengeStatus.ARCHIVED or (self.ends_at is not None and self.ends_at <= at)

    def open_to(self, tier: str | None, segments: frozenset[str]) -> bool:
        if self.tiers and tier not in self.tiers:
            return False
        return not self.segments or bool(self.segments & segments)


@dataclass(frozen=True)
class Progress:
    """A member's progress in a challenge (``version`` 0: nothing stored yet)."""

    challenge_id: str
    member_id: str
    #: Orders, activities, periods in a row, or money scaled by SPEND_SCALE.
    value: int = 0
    version: int = 0
    completed_at: datetime | None = None
    #: The orders counted (reference, what it counted of the spend), to withdraw one reversed.
    counted: tuple[tuple[str, int], ...] = ()
    #: ``streak``: the last period with an order (weeks or months since 1970).
    last_period: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BadgeAward:
    member_id: str
    badge: Badge
    challenge_id: str
    awarded_at: datetime


@dataclass(frozen=True)
class Advance:
    """What a movement may bring to challenges: an order earned, an activity, or a reversal."""

    at: datetime
    timezone: str = "UTC"
    order: str | None = None
    #: The order's total, scaled by SPEND_SCALE.
    spend: int = 0
    activity: str | None = None
    reversal_of: str | None = None
    #: A refund's amount, scaled (None: a reversal by points, which withdraws the whole order).
    refund: int | None = None

    def period(self, kind: StreakPeriod) -> int:
        local = self.at.astimezone(ZoneInfo(self.timezone)).date()
        if kind is StreakPeriod.MONTH:
            return local.year * 12 + local.month - 1
        return (local - _FIRST_MONDAY).days // 7


@dataclass(frozen=True)
class ChallengeWrite:
    """What a movement writes of one challenge: the member's new progress (under the condition
    that the stored one is still at ``previous_version``), and on completion its events and badge."""

    progress: Progress
    previous_version: int
    completed: bool = False
    events: tuple[Notice, ...] = ()
    badge: BadgeAward | None = None
    #: On completion: the challenge completed (its reward).
    challenge: Challenge | None = None


@dataclass
class Board:
    """The challenges a movement may advance, and the member's progress and badges."""

    challenges: list[Challenge]
    progress: dict[str, Progress] = field(default_factory=dict)
    badges: dict[str, BadgeAward] = field(default_factory=dict)


def advance(challenge: Challenge, progress: Progress, move: Advance, now: datetime) -> Progress | None:
    """The progress after ``move``, or None if it does not change (pure)."""
    if progress.completed_at is not None:
        return None  # completed once, for good
    counted = dict(progress.counted)
    value, last = progress.value, progress.last_period
    kind = challenge.kind
    if move.reversal_of is not None:
        if kind not in (ChallengeKind.ORDERS, ChallengeKind.SPEND) or move.reversal_of not in counted:
            return None
        left = 0 if move.refund is None else max(0, counted[move.reversal_of] - move.refund)
        if left == 0:
            del counted[move.reversal_of]
        else:
            counted[move.reversal_of] = left
        if kind is ChallengeKind.ORDERS and move.reversal_of in counted:
            return None  # a partial refund leaves the order counted
    elif not challenge.open_at(move.at):
        return None
    elif move.activity is not None:
        if kind is not ChallengeKind.ACTIVITIES or move.activity != challenge.activity:
            return None
        value += 1
    elif move.order is not None:
        if kind is ChallengeKind.ACTIVITIES:
            return None
        if kind is ChallengeKind.STREAK:
            assert challenge.period is not None
            period = move.period(challenge.period)
            if last is not None and period <= last:
                return None  # this period counts already (or the order is older than the streak)
            value = value + 1 if last is not None and period - last - 1 <= challenge.grace else 1
            last = period
        elif move.order in counted:
            return None  # an order counts once
        else:
            counted[move.order] = move.spend
    else:
        return None
    if kind is ChallengeKind.ORDERS:
        value = len(counted)
    elif kind is ChallengeKind.SPEND:
        value = sum(counted.values())
    completed = value >= challenge.target
    kept = () if completed else tuple(counted.items())[-MAX_COUNTED_ORDERS:]
    return replace(
        progress,
        value=value,
        version=progress.version + 1,
        completed_at=now if completed else None,
        counted=kept,
        last_period=last,
        updated_at=now,
    )


def plan(
    board: Board,
    member_id: str,
    move: Advance,
    now: datetime,
    *,
    tier: str | None,
    segments: Callable[[], frozenset[str]],
) -> list[ChallengeWrite]:
    """The writes a movement makes to the member's challenges (pure but for ``segments``,
    asked only when a challenge is limited to segments)."""
    writes: list[ChallengeWrite] = []
    held = set(board.badges)
    member_segments: frozenset[str] | None = None
    for challenge in board.challenges:
        if move.reversal_of is None and (challenge.tiers or challenge.segments):
            if challenge.segments and member_segments is None:
                member_segments = segments()
            if not challenge.open_to(tier, member_segments or frozenset()):
                continue
        previous = board.progress.get(challenge.challenge_id) or Progress(challenge.challenge_id, member_id)
        after = advance(challenge, previous, move, now)
        if after is None:
            continue
        if after.completed_at is None:
            writes.append(ChallengeWrite(after, previous.version))
            continue
        events = [completion_event(challenge, member_id, now, None)]
        badge = None
        if challenge.badge is not None and challenge.badge.badge_id not in held:
            held.add(challenge.badge.badge_id)
            badge = BadgeAward(member_id, challenge.badge, challenge.challenge_id, now)
            events.append(badge_event(badge))
        writes.append(
            ChallengeWrite(
                after, previous.version, completed=True, events=tuple(events), badge=badge, challenge=challenge
            )
        )
    return writes


def with_transaction(write: ChallengeWrite, transaction_id: str | None) -> ChallengeWrite:
    """The write with the completing movement's transaction in its ``challenge.completed`` event."""
    if not write.completed:
        return write
    events = tuple(
        replace(event, data={**event.data, "transaction_id": transaction_id})
        if event.type is EventType.CHALLENGE_COMPLETED
        else event
        for event in write.events
    )
    return replace(write, events=events)


def completion_event(challenge: Challenge, member_id: str, now: datetime, transaction_id: str | None) -> Notice:
    return Notice(
        notice_id=new_notice_id(now),
        type=EventType.CHALLENGE_COMPLETED,
        member_id=member_id,
        subject=challenge.challenge_id,
        created_at=now,
        data={
            "challenge_id": challenge.challenge_id,
            "name": challenge.name,
            "kind": str(challenge.kind),
            "member_id": member_id,
            "completed_at": isoformat(now),
            "reward_points": challenge.reward_points,
            "badge_id": challenge.badge.badge_id if challenge.badge else None,
            "transaction_id": transaction_id,
        },
    )


def badge_event(award: BadgeAward) -> Notice:
    return Notice(
        notice_id=new_notice_id(award.awarded_at),
        type=EventType.BADGE_AWARDED,
        member_id=award.member_id,
        subject=award.badge.badge_id,
        created_at=award.awarded_at,
        data={
            "badge_id": award.badge.badge_id,
            "name": award.badge.name,
            "description": award.badge.description,
            "challenge_id": award.challenge_id,
            "member_id": award.member_id,
            "awarded_at": isoformat(award.awarded_at),
        },
    )


class ChallengeStore(Protocol):
    def add(self, challenge: Challenge) -> None: ...
    def put(self, challenge: Challenge) -> None: ...
    def get(self, challenge_id: str) -> Challenge | None: ...
    def all(self) -> list[Challenge]: ...
    def member(self, member_id: str, *, consistent: bool) -> tuple[list[Progress], list[BadgeAward]]: ...


#: The fields a challenge's PATCH may change (its kind, goal and start stay).
CHANGEABLE = frozenset({"name", "description", "ends_at", "reward_points", "badge", "tiers", "segments"})


class ChallengeService:
    def __init__(
        self,
        store: ChallengeStore,
        program: ProgramService,
        *,
        exists: Callable[[str], object],
        tier_of: Callable[[str], str | None],
        segments_of: Callable[[str], frozenset[str]],
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._program = program
        #: Raises NotFound for an unknown member.
        self._exists = exists
        self._tier_of = tier_of
        self._segments_of = segments_of
        self._clock = clock

    # --- the brand's challenges -------------------------------------------------------------------

    def create(self, **fields: Any) -> Challenge:
        now = self._clock()
        challenge = Challenge(challenge_id=f"chl_{ulid(now)}", created_at=now, updated_at=now, **fields)
        _check(challenge)
        if not challenge.ended(now):
            self._check_room(now)
        self._store.add(challenge)
        return challenge

    def all(self) -> list[Challenge]:
        return self._store.all()

    def get(self, challenge_id: str) -> Challenge:
        found = self._store.get(challenge_id) if challenge_id.startswith("chl_") else None
        if found is None:
            raise NotFound(f"challenge {challenge_id!r} not found")
        return found

    def update(self, challenge_id: str, changes: dict[str, Any]) -> Challenge:
        current = self.get(challenge_id)
        if current.status is ChallengeStatus.ARCHIVED:
            raise InvalidRequest(f"challenge {challenge_id!r} is archived")
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise InvalidRequest(f"a challenge's {', '.join(sorted(unknown))} cannot change")
        now = self._clock()
        changed = replace(current, **changes, updated_at=now)
        _check(changed)
        if current.ended(now) and not changed.ended(now):
            self._check_room(now)
        self._store.put(changed)
        return changed

    def archive(self, challenge_id: str) -> Challenge:
        current = self.get(challenge_id)
        if current.status is ChallengeStatus.ARCHIVED:
            return current
        archived = replace(current, status=ChallengeStatus.ARCHIVED, updated_at=self._clock())
        self._store.put(archived)
        return archived

    def _check_room(self, now: datetime) -> None:
        live = [c for c in self._store.all() if not c.ended(now)]
        if len(live) >= MAX_OPEN_CHALLENGES:
            raise LimitReached(
                f"at most {MAX_OPEN_CHALLENGES} challenges may be open at once: archive or end one first",
                details={"open": len(live), "maximum": MAX_OPEN_CHALLENGES},
            )

    # --- a member's challenges and badges ---------------------------------------------------------

    def for_member(self, member_id: str) -> list[tuple[Challenge, Progress]]:
        """The challenges open to the member now, and those they took part in, with progress."""
        self._member(member_id)
        now = self._clock()
        challenges = self._store.all() if self._possible() else []
        progress, _ = self._store.member(member_id, consistent=False)
        mine = {p.challenge_id: p for p in progress}
        tier = segments = None
        shown = []
        for challenge in challenges:
            taken = mine.get(challenge.challenge_id)
            if taken is None:
                if challenge.ended(now):
                    continue
                if challenge.tiers and tier is None:
                    tier = self._tier_of(member_id) or ""
                if challenge.segments and segments is None:
                    segments = self._segments_of(member_id)
                if not challenge.open_to(tier, segments or frozenset()):
                    continue
            shown.append((challenge, taken or Progress(challenge.challenge_id, member_id)))
        return shown

    def badges(self, member_id: str) -> list[BadgeAward]:
        self._member(member_id)
        _, awarded = self._store.member(member_id, consistent=False)
        return sorted(awarded, key=lambda award: award.awarded_at)

    def _member(self, member_id: str) -> None:
        if not MEMBER_ID_PATTERN.fullmatch(member_id):
            raise NotFound(f"member {member_id!r} not found")
        self._exists(member_id)

    # --- in a movement (chalicelib.domain.steps.challenges) ---------------------------------------

    def _possible(self) -> bool:
        return self._program.get().may_have_challenges

    def board(self, member_id: str, move: Advance) -> Board | None:
        """What a movement needs, or None when it can advance nothing: reads nothing while the
        program says no challenge was ever stored (the program is read once per movement)."""
        if not self._possible():
            return None
        at = move.at
        if move.reversal_of is not None:
            challenges = [c for c in self._store.all() if c.kind in (ChallengeKind.ORDERS, ChallengeKind.SPEND)]
        elif move.activity is not None:
            challenges = [c for c in self._store.all() if c.kind is ChallengeKind.ACTIVITIES and c.open_at(at)]
        else:
            challenges = [c for c in self._store.all() if c.kind is not ChallengeKind.ACTIVITIES and c.open_at(at)]
        if not challenges:
            return None
        progress, badges = self._store.member(member_id, consistent=True)
        return Board(
            challenges=challenges,
            progress={p.challenge_id: p for p in progress},
            badges={b.badge.badge_id: b for b in badges},
        )

    def segments_of(self, member_id: str) -> frozenset[str]:
        return self._segments_of(member_id)


def _check(challenge: Challenge) -> None:
    """What the request schema cannot say alone (kept in step with it)."""
    problems: list[tuple[str, str, str]] = []
    if challenge.ends_at is not None and challenge.ends_at <= challenge.starts_at:
        problems.append(("ends_at", "must be after starts_at", "value_error"))
    if challenge.reward_points <= 0 and challenge.badge is None:
        problems.append(("reward_points", "a challenge rewards points, a badge or both", "value_error"))
    if challenge.kind is not ChallengeKind.SPEND and challenge.goal != int(challenge.goal):
        problems.append(("goal", "must be a whole number for this kind", "value_error"))
    if (challenge.kind is ChallengeKind.ACTIVITIES) != (challenge.activity is not None):
        problems.append(("activity", "required for kind activities, and only for it", "value_error"))
    if (challenge.kind is ChallengeKind.STREAK) != (challenge.period is not None):
        problems.append(("period", "required for kind streak, and only for it", "value_error"))
    if challenge.grace and challenge.kind is not ChallengeKind.STREAK:
        problems.append(("grace", "only for kind streak", "value_error"))
    if problems:
        raise InvalidRequest.for_fields("invalid challenge", *problems)
