"""The pure parts of households: the draw across members (lots expiring first over the whole
pool, the redeemer first on ties, never pending or expired points, a member's debt giving
nothing, the lot limit), the roles' bookkeeping, the program's bounds, the keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import InsufficientPoints, InvalidRequest, MovementTooLarge
from chalicelib.domain.expiry import Lot
from chalicelib.domain.households import (
    MAX_LOTS_PER_POOLED_REDEMPTION,
    Contribution,
    Holding,
    Household,
    HouseholdRole,
    Membership,
    PooledRedemptionRequest,
    contribution_key,
    draw_pool,
)
from chalicelib.domain.movement_requests import refuse_minted_key
from chalicelib.domain.program import HouseholdPolicy

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(member: str, lot_id: str, points: int, expires_in_days: int | None, *, pending: bool = False) -> Lot:
    expires = NOW + expires_in_days * DAY if expires_in_days is not None else None
    return Lot(lot_id, member, points, points, NOW - DAY, expires, NOW + DAY if pending else None)


def holding(member: str, available: int, *lots: Lot) -> Holding:
    return Holding(Balance(member, available, available, 0, 0, 1, NOW - DAY), tuple(lots))


def taken(contributions: tuple[Contribution, ...]) -> list[tuple[str, int, set[str], set[str]]]:
    return [
        (c.member_id, c.points, {x.lot_id for x in c.lots.deleted}, {x.lot_id for x in c.lots.updated})
        for c in contributions
    ]


def test_the_lots_expiring_first_go_first_whoever_holds_them() -> None:
    # Given the redeemer A with a lot expiring in 30 days and 50 plain points, B with a lot
    # expiring in 10 days, C with a lot expiring in 20 days and 100 plain points
    a = holding("mem_a", 150, lot("mem_a", "a30", 100, 30))
    b = holding("mem_b", 100, lot("mem_b", "b10", 100, 10))
    c = holding("mem_c", 200, lot("mem_c", "c20", 100, 20))

    # When 260 points are drawn for A
    drawn = draw_pool([a, b, c], 260, NOW, redeemer_id="mem_a")

    # Then B's lot, C's lot, then 60 of A's lot: A's entry first, then the others in order
    assert taken(drawn) == [
        ("mem_a", 60, set(), {"a30"}),
        ("mem_b", 100, {"b10"}, set()),
        ("mem_c", 100, {"c20"}, set()),
    ]
    (updated,) = drawn[0].lots.updated
    assert updated.remaining == 40


def test_points_that_never_expire_come_last_the_redeemers_first() -> None:
    a = holding("mem_a", 100)
    b = holding("mem_b", 150, lot("mem_b", "b5", 50, 5))
    c = holding("mem_c", 100)

    # The redeemer is C: B's expiring lot, then C's plain points, then A's (joining order)
    drawn = draw_pool([a, b, c], 200, NOW, redeemer_id="mem_c")

    assert [(x.member_id, x.points) for x in drawn] == [("mem_c", 100), ("mem_a", 50), ("mem_b", 50)]


def test_on_equal_expiry_the_redeemers_lot_goes_first() -> None:
    a = holding("mem_a", 100, lot("mem_a", "a", 100, 10))
    b = holding("mem_b", 100, lot("mem_b", "b", 100, 10))

    assert [(x.member_id, x.points) for x in draw_pool([a, b], 120, NOW, redeemer_id="mem_b")] == [
        ("mem_b", 100),
        ("mem_a", 20),
    ]


def test_pending_and_expired_points_are_never_drawn_and_a_debt_gives_nothing() -> None:
    # Given A: 100 available of which a lot of 60 expired (not recorded yet), plus a pending lot of 50;
    # B in claw-back debt; C with 30 plain points
    a = holding("mem_a", 100, lot("mem_a", "gone", 60, -1), lot("mem_a", "pending", 50, 40, pending=True))
    b = holding("mem_b", -20)
    c = holding("mem_c", 30)

    # Then the pool holds A's 40 spendable points and C's 30, no more
    with pytest.raises(InsufficientPoints) as short:
        draw_pool([a, b, c], 71, NOW, redeemer_id="mem_a")
    assert short.value.details == {"available": 70, "requested": 71}

    drawn = draw_pool([a, b, c], 70, NOW, redeemer_id="mem_a")
    assert taken(drawn) == [("mem_a", 40, set(), set()), ("mem_c", 30, set(), set())]


def test_a_draw_over_too_many_lots_is_refused_with_what_may_go_at_once() -> None:
    per_member = MAX_LOTS_PER_POOLED_REDEMPTION // 2 + 1
    a = holding("mem_a", 10 * per_member, *(lot("mem_a", f"a{i:03d}", 10, i + 1) for i in range(per_member)))
    b = holding("mem_b", 10 * per_member, *(lot("mem_b", f"b{i:03d}", 10, i + 1) for i in range(per_member)))

    with pytest.raises(MovementTooLarge) as refused:
        draw_pool([a, b], 20 * per_member, NOW, redeemer_id="mem_a")

    assert refused.value.details == {
        "points": 20 * per_member,
        "lots": 2 * per_member,
        "max_lots": MAX_LOTS_PER_POOLED_REDEMPTION,
        "max_points": 10 * MAX_LOTS_PER_POOLED_REDEMPTION,
    }
    assert sum(x.points for x in draw_pool([a, b], 10 * MAX_LOTS_PER_POOLED_REDEMPTION, NOW, redeemer_id="mem_a")) == (
        10 * MAX_LOTS_PER_POOLED_REDEMPTION
    )


def test_the_household_keeps_its_members_and_hands_ownership_on() -> None:
    owner = Membership("mem_o", HouseholdRole.OWNER, NOW)
    household = Household("hh_x", None, (owner,), NOW)
    household = household.joined(Membership("mem_m", HouseholdRole.MEMBER, NOW + DAY))
    household = household.joined(Membership("mem_r", HouseholdRole.REDEEMER, NOW + 2 * DAY))
    assert household.version == 3 and household.owner == owner

    # The longest-standing redeemer takes over, before an older plain member
    assert household.successor("mem_o") == household.member("mem_r")
    without_redeemer = household.left("mem_r")
    assert without_redeemer.successor("mem_o") == household.member("mem_m")
    assert Household("hh_y", None, (owner,), NOW).successor("mem_o") is None
    promoted = household.with_role("mem_m", HouseholdRole.REDEEMER).member("mem_m")
    assert promoted is not None and promoted.role is HouseholdRole.REDEEMER


def test_the_program_bounds_and_the_keys() -> None:
    assert HouseholdPolicy() == HouseholdPolicy(enabled=False, max_members=6)
    for size in (1, 11):
        with pytest.raises(InvalidRequest):
            HouseholdPolicy(enabled=True, max_members=size)
    key = contribution_key("hrd_1", "mem_a")
    assert key == "household:hrd_1:mem_a"
    with pytest.raises(InvalidRequest):
        refuse_minted_key(key)
    first = PooledRedemptionRequest("hh_x", "mem_a", 10, "k")
    assert first.fingerprint() == PooledRedemptionRequest("hh_x", "mem_a", 10, "other key").fingerprint()
    assert first.fingerprint() != PooledRedemptionRequest("hh_x", "mem_a", 11, "k").fingerprint()
