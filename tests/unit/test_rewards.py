"""The rewards domain on the in-memory twins, with a settable clock: validity, monthly
limits in the tenant's time zone, the reward's own checks, and the coupon write's
condition inside the ledger transaction (nothing written when it fails)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.clock import isoformat
from chalicelib.domain.errors import (
    CouponNotUsable,
    InvalidRequest,
    LimitReached,
    OutOfStock,
    RewardUnavailable,
)
from chalicelib.domain.events import EventType
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.ports import CouponWrite, CouponWriteKind
from chalicelib.domain.rewards import (
    CODE_ALPHABET,
    CodeSource,
    Coupon,
    CouponStatus,
    LimitPeriod,
    LockReason,
    RewardService,
    RewardType,
    generate_code,
)
from tests.support.memory import InMemoryRewardStore
from tests.unit.builders import Ledgerland, earn


@pytest.fixture
def rewards(world: Ledgerland) -> RewardService:
    return RewardService(
        InMemoryRewardStore(world.ledger), world.points, world.ledger, clock=world.clock, timezone="Europe/Helsinki"
    )


def funded(world: Ledgerland, points: int) -> str:
    member = world.enrol()
    world.points.move(earn(member, f"fund-{member}", points))
    return member


def test_generated_codes_use_the_unambiguous_alphabet() -> None:
    codes = {generate_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(CODE_ALPHABET)
    assert not set("01ILO") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("fields", "offending"),
    [
        ({"type": RewardType.FIXED_DISCOUNT}, "amount"),
        ({"type": RewardType.GIFT_CARD, "amount": Decimal(10), "sku": "x"}, "sku"),
        ({"type": RewardType.PERCENT_DISCOUNT, "percent": 0}, "percent"),
        ({"type": RewardType.FREE_PRODUCT}, "sku"),
        ({"type": RewardType.CHARITY_DONATION}, "cause"),
        ({"type": RewardType.EXPERIENCE, "limit_period": LimitPeriod.MONTH}, "limit_period"),
        (
            {
                "type": RewardType.EXPERIENCE,
                "starts_at": datetime(2030, 1, 2, tzinfo=UTC),
                "ends_at": datetime(2030, 1, 1, tzinfo=UTC),
            },
            "ends_at",
        ),
    ],
)
def test_a_reward_checks_its_own_fields(rewards: RewardService, fields: dict, offending: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        rewards.create(name="x", points_cost=10, **fields)
    assert offending in [field["path"] for field in refused.value.details["fields"]]
    assert rewards.list(limit=10, cursor=None).items == []


def test_a_coupon_expires_after_its_valid_days_and_cannot_be_used_then(
    world: Ledgerland, rewards: RewardService
) -> None:
    reward = rewards.create(name="Coffee", type=RewardType.FREE_PRODUCT, sku="latte", points_cost=10, valid_days=2)
    member = funded(world, 100)
    code = rewards.redeem(member, reward.reward_id, "r1").coupon.code

    world.clock.advance(days=2)

    coupon = rewards.coupon(code)
    assert coupon.status is CouponStatus.ISSUED and coupon.status_at(world.clock()) is CouponStatus.EXPIRED
    with pytest.raises(CouponNotUsable) as refused:
        rewards.use(code, "u1")
    assert refused.value.details == {"code": code, "status": "expired"}
    assert isinstance(rewards.store, InMemoryRewardStore) and rewards.store.use_events == []  # no coupon.used
    # An expired coupon may still be cancelled (the brand's call): its points come back
    cancelled = rewards.cancel(code, "c1")
    assert cancelled.entry.points == 10 and world.available(member) == 100


def test_a_use_hands_its_coupon_used_event_to_the_store_once(world: Ledgerland, rewards: RewardService) -> None:
    reward = rewards.create(name="Coffee", type=RewardType.FREE_PRODUCT, sku="latte", points_cost=10)
    member = funded(world, 100)
    code = rewards.redeem(member, reward.reward_id, "r1").coupon.code

    used = rewards.use(code, "u1", "till-4")
    replay = rewards.use(code, "u1", "till-4")

    assert not used.replayed and replay.replayed
    assert isinstance(rewards.store, InMemoryRewardStore)
    (event,) = rewards.store.use_events
    assert (event.type, event.member_id, event.subject, event.created_at) == (
        EventType.COUPON_USED,
        member,
        code,
        used.coupon.used_at,
    )
    assert event.data == {
        "reward_id": reward.reward_id,
        "code": code,
        "member_id": member,
        "reference": "till-4",
        "used_at": isoformat(world.clock()),
    }


def test_a_monthly_limit_starts_again_with_the_tenants_month(world: Ledgerland, rewards: RewardService) -> None:
    # 23:30 on March 31st in Helsinki (UTC+3 in summer time)
    world.clock.now = datetime(2025, 3, 31, 20, 30, tzinfo=UTC)
    reward = rewards.create(
        name="Coffee",
        type=RewardType.FREE_PRODUCT,
        sku="latte",
        points_cost=10,
        per_member_limit=1,
        limit_period=LimitPeriod.MONTH,
    )
    member = funded(world, 100)
    rewards.redeem(member, reward.reward_id, "march")
    with pytest.raises(LimitReached):
        rewards.redeem(member, reward.reward_id, "march-again")

    world.clock.now = datetime(2025, 3, 31, 21, 30, tzinfo=UTC)  # 00:30 on April 1st in Helsinki

    april = rewards.redeem(member, reward.reward_id, "april")
    assert april.coupon.limit_counter == f"reward:{reward.reward_id}:{member}:2025-04"
    assert world.available(member) == 80


def test_eligibility_lists_every_reason_that_applies(world: Ledgerland, rewards: RewardService) -> None:
    reward = rewards.create(name="Lounge", type=RewardType.EXPERIENCE, points_cost=500, tiers=frozenset({"gold"}))
    later = rewards.create(
        name="Later", type=RewardType.EXPERIENCE, points_cost=1, starts_at=world.clock() + timedelta(days=1)
    )
    member = funded(world, 100)

    available, page = rewards.for_member(member, limit=10, cursor=None)

    by_id = {e.reward.reward_id: e for e in page.items}
    assert available == 100
    assert by_id[reward.reward_id].reasons == (LockReason.TIER, LockReason.BALANCE)
    assert by_id[reward.reward_id].points_short == 400
    assert by_id[later.reward_id].reasons == (LockReason.WINDOW,)
    with pytest.raises(RewardUnavailable):
        rewards.redeem(member, later.reward_id, "early")
    world.clock.advance(days=1)
    assert rewards.redeem(member, later.reward_id, "on-time").entry.points == -1


def test_a_failed_coupon_condition_writes_nothing_of_the_movement(world: Ledgerland) -> None:
    # Given a pool code claimed already by someone
    member = funded(world, 100)
    store = InMemoryRewardStore(world.ledger)
    store.add_pool_codes([Coupon("POOL-0001", "rwd_x", CouponStatus.AVAILABLE, CodeSource.POOL)])
    claimed = Coupon(
        "POOL-0001", "rwd_x", CouponStatus.ISSUED, CodeSource.POOL, member_id=member, points=10, issued_at=world.clock()
    )
    write = CouponWrite(CouponWriteKind.CLAIM, claimed, refusal=OutOfStock("taken"))
    world.points.move(
        MovementRequest(member, MovementType.REDEEM, "first", points=10, reference="POOL-0001", coupons=(write,))
    )

    # When another redemption claims the same code in its transaction
    with pytest.raises(OutOfStock):
        world.points.move(
            MovementRequest(member, MovementType.REDEEM, "second", points=10, reference="POOL-0001", coupons=(write,))
        )

    # Then it is refused with the write's refusal, and neither points nor entry were written
    assert world.available(member) == 90
    assert world.ledger.get_entry("second") is None
    assert store.get_coupon("POOL-0001") == claimed
    # While a replay of the first key is still its first result
    replay = world.points.move(
        MovementRequest(member, MovementType.REDEEM, "first", points=10, reference="POOL-0001", coupons=(write,))
    )
    assert replay.replayed and world.available(member) == 90


def test_stock_is_never_oversold_and_comes_back_on_cancel(world: Ledgerland, rewards: RewardService) -> None:
    reward = rewards.create(name="Tote", type=RewardType.FREE_PRODUCT, sku="tote", points_cost=10, stock=2)
    members = [funded(world, 10) for _ in range(3)]
    first = rewards.redeem(members[0], reward.reward_id, "a")
    rewards.redeem(members[1], reward.reward_id, "b")
    with pytest.raises(OutOfStock):
        rewards.redeem(members[2], reward.reward_id, "c")

    rewards.cancel(first.coupon.code, "undo-a")

    assert rewards.redeem(members[2], reward.reward_id, "c-again").coupon.member_id == members[2]
    (stats,) = rewards.stats([reward])
    assert (stats.issued, stats.remaining) == (2, 0)
    assert [world.available(m) for m in members] == [10, 0, 0]
