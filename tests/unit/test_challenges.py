"""Challenges, pure: how a movement moves a member's progress (orders, spend, activities,
streaks with their grace), reversals, audiences, badges held once, and what a movement reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.challenges import (
    Advance,
    Badge,
    BadgeAward,
    Board,
    Challenge,
    ChallengeKind,
    ChallengeService,
    ChallengeStatus,
    Progress,
    StreakPeriod,
    advance,
    plan,
    with_transaction,
)
from chalicelib.domain.errors import InvalidRequest, LimitReached
from chalicelib.domain.events import EventType
from chalicelib.domain.program import Program, ProgramService
from tests.support.memory import InMemoryProgramStore

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)
MEMBER = "mem_01JD0000000000000000000000"


def challenge(kind: ChallengeKind = ChallengeKind.ORDERS, goal: str = "3", **fields: Any) -> Challenge:
    return Challenge(
        challenge_id=fields.pop("challenge_id", "chl_1"),
        name=fields.pop("name", "Three orders"),
        kind=kind,
        goal=Decimal(goal),
        starts_at=T0,
        ends_at=fields.pop("ends_at", datetime(2026, 11, 1, tzinfo=UTC)),
        created_at=T0,
        updated_at=T0,
        **{"reward_points": 100, **fields},
    )


def start(of: Challenge) -> Progress:
    return Progress(of.challenge_id, MEMBER)


def order(ref: str, at: datetime = NOW, spend: str = "10") -> Advance:
    return Advance(at=at, order=ref, spend=int(Decimal(spend) * 1000))


def run(of: Challenge, *moves: Advance) -> Progress:
    progress = start(of)
    for move in moves:
        progress = advance(of, progress, move, NOW) or progress
    return progress


# --- counting -----------------------------------------------------------------------------------


def test_orders_count_once_each_and_complete_at_the_goal() -> None:
    of = challenge()
    two = run(of, order("a"), order("b"), order("a"))
    assert (two.value, two.completed_at, two.version) == (2, None, 2)
    done = advance(of, two, order("c"), NOW)
    assert done is not None and (done.value, done.completed_at, done.counted) == (3, NOW, ())
    assert advance(of, done, order("d"), NOW) is None  # completed for good


def test_only_orders_inside_the_window_count() -> None:
    of = challenge()
    assert advance(of, start(of), order("early", at=T0 - timedelta(seconds=1)), NOW) is None
    assert advance(of, start(of), order("late", at=datetime(2026, 11, 1, tzinfo=UTC)), NOW) is None
    assert advance(replace(of, status=ChallengeStatus.ARCHIVED), start(of), order("a"), NOW) is None


def test_spend_adds_totals_and_a_refund_takes_its_amount_off() -> None:
    of = challenge(ChallengeKind.SPEND, "100")
    progress = run(of, order("a", spend="60"), order("b", spend="30"))
    assert progress.value == 90_000
    refunded = advance(of, progress, Advance(at=NOW, reversal_of="a", refund=20_000), NOW)
    assert refunded is not None and refunded.value == 70_000
    withdrawn = advance(of, refunded, Advance(at=NOW, reversal_of="a"), NOW)
    assert withdrawn is not None and (withdrawn.value, withdrawn.counted) == (30_000, (("b", 30_000),))
    assert advance(of, withdrawn, Advance(at=NOW, reversal_of="unknown"), NOW) is None


def test_an_order_challenge_keeps_a_partly_refunded_order_and_drops_a_reversed_one() -> None:
    of = challenge()
    progress = run(of, order("a"), order("b"))
    assert advance(of, progress, Advance(at=NOW, reversal_of="a", refund=5_000), NOW) is None
    dropped = advance(of, progress, Advance(at=NOW, reversal_of="a"), NOW)
    assert dropped is not None and dropped.value == 1


def test_activities_count_their_type_only() -> None:
    of = challenge(ChallengeKind.ACTIVITIES, "2", activity="review")
    assert advance(of, start(of), Advance(at=NOW, activity="social_follow"), NOW) is None
    assert advance(of, start(of), order("a"), NOW) is None
    done = run(of, Advance(at=NOW, activity="review"), Advance(at=NOW, activity="review"))
    assert done.completed_at == NOW


@pytest.mark.parametrize(
    ("weeks", "grace", "expected"),
    [
        ([0, 1, 2], 0, 3),  # three weeks in a row
        ([0, 0, 1], 0, 2),  # two orders in one week count once
        ([0, 2, 3], 0, 2),  # a missed week breaks it: the streak restarts
        ([0, 2, 3], 1, 3),  # ... unless one missed week is forgiven
        ([0, 3, 4], 1, 2),  # two missed weeks are not
        ([2, 1], 0, 1),  # an order older than the streak's last week changes nothing
    ],
)
def test_a_weekly_streak_with_its_grace(weeks: list[int], grace: int, expected: int) -> None:
    of = challenge(ChallengeKind.STREAK, "10", period=StreakPeriod.WEEK, grace=grace, ends_at=None)
    monday = datetime(2026, 10, 5, 9, tzinfo=UTC)
    progress = run(of, *(order(f"o-{i}", at=monday + timedelta(weeks=w)) for i, w in enumerate(weeks)))
    assert progress.value == expected


def test_a_monthly_streak_counts_months_in_the_tenant_time_zone() -> None:
    of = challenge(ChallengeKind.STREAK, "2", period=StreakPeriod.MONTH)
    of = replace(of, starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    # 31 October 23:30 UTC is already November in Paris
    late = Advance(at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC), timezone="Europe/Paris", order="a")
    november = Advance(at=datetime(2026, 11, 2, tzinfo=UTC), timezone="Europe/Paris", order="b")
    assert run(replace(of, ends_at=None), late, november).value == 1
    october = Advance(at=datetime(2026, 10, 2, tzinfo=UTC), timezone="Europe/Paris", order="c")
    assert run(replace(of, ends_at=None), october, late).completed_at == NOW


# --- what a movement writes ------------------------------------------------------------------------


def test_a_completion_announces_itself_and_its_badge_once() -> None:
    badge = Badge("regular", "Regular")
    first = challenge(goal="1", badge=badge)
    second = challenge(goal="1", badge=badge, challenge_id="chl_2", name="Also")
    board = Board(challenges=[first, second])

    writes = plan(board, MEMBER, order("a"), NOW, tier=None, segments=frozenset)

    assert [w.completed for w in writes] == [True, True]
    assert [w.badge is not None for w in writes] == [True, False]  # one badge, held once
    assert [e.type for e in writes[0].events] == [EventType.CHALLENGE_COMPLETED, EventType.BADGE_AWARDED]
    stamped = with_transaction(writes[0], "txn_1")
    assert stamped.events[0].data["transaction_id"] == "txn_1"
    # A badge already held is not awarded again
    held = Board(challenges=[first], badges={"regular": BadgeAward(MEMBER, badge, "chl_0", T0)})
    (write,) = plan(held, MEMBER, order("a"), NOW, tier=None, segments=frozenset)
    assert write.completed and write.badge is None and len(write.events) == 1


def test_an_audience_limits_who_progresses_and_segments_are_read_only_when_needed() -> None:
    asked: list[int] = []

    def segments() -> frozenset[str]:
        asked.append(1)
        return frozenset({"vip"})

    gold = challenge(tiers=frozenset({"gold"}))
    assert plan(Board([gold]), MEMBER, order("a"), NOW, tier="silver", segments=segments) == []
    assert len(plan(Board([gold]), MEMBER, order("a"), NOW, tier="gold", segments=segments)) == 1
    assert asked == []
    vip = challenge(segments=frozenset({"vip"}))
    staff = challenge(segments=frozenset({"staff"}), challenge_id="chl_2")
    assert len(plan(Board([vip, staff]), MEMBER, order("a"), NOW, tier=None, segments=segments)) == 1
    assert asked == [1]  # once per movement


# --- the service -----------------------------------------------------------------------------------


class _Store:
    def __init__(self) -> None:
        self.items: dict[str, Challenge] = {}
        self.reads: list[str] = []

    def add(self, value: Challenge) -> None:
        self.items[value.challenge_id] = value

    def put(self, value: Challenge) -> None:
        self.items[value.challenge_id] = value

    def get(self, challenge_id: str) -> Challenge | None:
        return self.items.get(challenge_id)

    def all(self) -> list[Challenge]:
        self.reads.append("all")
        return list(self.items.values())

    def member(self, member_id: str, *, consistent: bool) -> tuple[list[Progress], list[BadgeAward]]:
        self.reads.append("member")
        return [], []


def service(store: _Store, *, stored: bool) -> ChallengeService:
    return ChallengeService(
        store,
        ProgramService(InMemoryProgramStore(Program(challenges_stored=stored))),
        exists=lambda member_id: None,
        tier_of=lambda member_id: None,
        segments_of=lambda member_id: frozenset(),
        clock=lambda: NOW,
    )


def test_a_movement_reads_nothing_while_no_challenge_was_ever_stored() -> None:
    store = _Store()
    assert service(store, stored=False).board(MEMBER, order("a")) is None
    assert store.reads == []
    # With one stored, an order reads the challenges, and the member only if one may move
    assert service(store, stored=True).board(MEMBER, order("a")) is None
    assert store.reads == ["all"]
    store.add(challenge())
    board = service(store, stored=True).board(MEMBER, order("a"))
    assert board is not None and store.reads == ["all", "all", "member"]


def test_the_service_checks_a_challenge_and_the_open_limit() -> None:
    store = _Store()
    challenges = service(store, stored=True)
    fields: dict[str, Any] = {
        "name": "c",
        "kind": ChallengeKind.ORDERS,
        "goal": Decimal(3),
        "starts_at": T0,
        "reward_points": 10,
    }
    with pytest.raises(InvalidRequest):
        challenges.create(**{**fields, "ends_at": T0})
    with pytest.raises(InvalidRequest):
        challenges.create(**{**fields, "reward_points": 0})
    for _ in range(8):
        challenges.create(**fields)
    with pytest.raises(LimitReached):
        challenges.create(**fields)
    # An ended one does not count against the limit
    challenges.create(**{**fields, "starts_at": T0 - timedelta(days=9), "ends_at": T0})
    archived = challenges.archive(next(iter(store.items)))
    assert archived.status is ChallengeStatus.ARCHIVED
    challenges.create(**fields)
