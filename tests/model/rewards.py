"""The rewards catalog and coupons as the model sees them (README, "Rewards and coupons").

* A redemption is a ``redeem`` of the reward's ``points_cost`` (``insufficient_points`` as any
  debit), then the reward's counters in the same transaction: ``reward-stock:<reward>`` (coupons
  issued and not cancelled) within ``stock`` (``out_of_stock``), then the member's
  ``reward:<reward>:<member>`` (``...:<YYYY-MM>`` of the tenant's local month for a monthly
  limit) within ``per_member_limit`` (``limit_reached``). A success issues a coupon of the
  reward's cost, valid ``valid_days`` from now. The same key again answers with that
  redemption (the coupon as it is now), for another member or reward ``idempotency_key_reused``.
* A cancellation (``adjust``, reference the code) gives the coupon's points back and both
  counters one back, once: only a coupon still ``issued`` (expired or not) is cancelled; the
  same key answers with its first entry; any other ``coupon_not_usable``.
* A use marks an issued coupon not past its expiry ``used``, once: the same key and reference
  again answers as the first, the same key with another reference ``idempotency_key_reused``,
  anything else ``coupon_not_usable``.

The ledger side (balance, lots, entries) is :class:`tests.model.reference.TenantModel`'s: a
redemption and a cancellation are its ``redeem`` and ``adjust`` requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain.movement_requests import MovementRequest, MovementType
from tests.model.reference import SUCCESS, Expected, TenantModel

ISSUED, USED, CANCELLED, EXPIRED = "issued", "used", "cancelled", "expired"


@dataclass(frozen=True)
class ModelReward:
    reward_id: str
    name: str
    points_cost: int
    stock: int | None
    per_member_limit: int | None
    monthly: bool
    valid_days: int | None

    @property
    def stock_counter(self) -> str:
        return f"reward-stock:{self.reward_id}"

    def limit_counter(self, member_id: str, at: datetime, timezone: str) -> str | None:
        if self.per_member_limit is None:
            return None
        name = f"reward:{self.reward_id}:{member_id}"
        return f"{name}:{at.astimezone(ZoneInfo(timezone)):%Y-%m}" if self.monthly else name


@dataclass
class ModelCoupon:
    code: str
    reward_id: str
    member_id: str
    points: int
    issued_at: datetime
    expires_at: datetime | None
    limit_counter: str | None
    status: str = ISSUED
    used_key: str | None = None
    used_reference: str | None = None
    #: The key of the cancellation that gave its points back.
    cancel_key: str | None = None

    def status_at(self, at: datetime) -> str:
        if self.status == ISSUED and self.expires_at is not None and self.expires_at <= at:
            return EXPIRED
        return self.status

    def stored(self) -> tuple[object, ...]:
        return (self.reward_id, self.member_id, self.status, self.points, self.expires_at, self.limit_counter)


@dataclass
class RewardBook:
    """A tenant's rewards and the coupons issued, beside its ledger model."""

    rewards: dict[str, ModelReward] = field(default_factory=dict)
    coupons: dict[str, ModelCoupon] = field(default_factory=dict)


@dataclass(frozen=True)
class Judged:
    """What the model says of a reward operation: the outcome, and for a fresh movement the
    request it sends and what the ledger model expects of it."""

    code: str
    request: MovementRequest | None = None
    expected: Expected | None = None
    #: A replay: the key's first entry (redemptions and cancellations).
    replay: bool = False


def redemption_request(
    model: TenantModel, reward: ModelReward, member_id: str, key: str, code: str | None
) -> MovementRequest:
    return MovementRequest(
        member_id=member_id,
        movement=MovementType.REDEEM,
        idempotency_key=key,
        points=reward.points_cost,
        reference=code,
        description=f"Reward: {reward.name}",
        metadata={"reward_id": reward.reward_id},
        timezone=model.timezone,
    )


def expect_redeem(
    model: TenantModel, book: RewardBook, reward: ModelReward, member_id: str, key: str, now: datetime
) -> Judged:
    applied = model.applied.get(key)
    if applied is not None:
        entry = applied.entry
        same = (
            entry.movement is MovementType.REDEEM
            and entry.member_id == member_id
            and entry.metadata.get("reward_id") == reward.reward_id
        )
        return Judged(SUCCESS, replay=True) if same else Judged("idempotency_key_reused")
    request = redemption_request(model, reward, member_id, key, None)
    expected = model.expect(request, now)
    if not expected.succeeds:
        return Judged(expected.code)
    issued = model.counters.get(reward.stock_counter, 0)
    if reward.stock is not None and issued + 1 > reward.stock:
        return Judged("out_of_stock")
    limit_counter = reward.limit_counter(member_id, now, model.timezone)
    if limit_counter is not None and model.counters.get(limit_counter, 0) + 1 > (reward.per_member_limit or 0):
        return Judged("limit_reached")
    moves = [(reward.stock_counter, 1, reward.stock)]
    if limit_counter is not None:
        moves.append((limit_counter, 1, reward.per_member_limit))
    return Judged(SUCCESS, request, replace(expected, counters=tuple(moves)))


def issue(
    book: RewardBook, reward: ModelReward, member_id: str, code: str, now: datetime, timezone: str
) -> ModelCoupon:
    coupon = ModelCoupon(
        code=code,
        reward_id=reward.reward_id,
        member_id=member_id,
        points=reward.points_cost,
        issued_at=now,
        expires_at=now + timedelta(days=reward.valid_days) if reward.valid_days else None,
        limit_counter=reward.limit_counter(member_id, now, timezone),
    )
    book.coupons[code] = coupon
    return coupon


def cancellation_request(model: TenantModel, coupon: ModelCoupon, key: str) -> MovementRequest:
    return MovementRequest(
        member_id=coupon.member_id,
        movement=MovementType.ADJUST,
        idempotency_key=key,
        points=coupon.points,
        reference=coupon.code,
        reason=f"coupon {coupon.code} cancelled: its points given back",
        metadata={"reward_id": coupon.reward_id},
        timezone=model.timezone,
    )


def expect_cancel(model: TenantModel, book: RewardBook, coupon: ModelCoupon, key: str, now: datetime) -> Judged:
    applied = model.applied.get(key)
    if applied is not None:
        entry = applied.entry
        same = entry.movement is MovementType.ADJUST and entry.reference == coupon.code
        return Judged(SUCCESS, replay=True) if same else Judged("idempotency_key_reused")
    if coupon.status != ISSUED:
        return Judged("coupon_not_usable")
    request = cancellation_request(model, coupon, key)
    expected = model.expect(request, now)
    if not expected.succeeds:
        return Judged(expected.code)
    reward = book.rewards[coupon.reward_id]
    moves = [(reward.stock_counter, -1, None)]
    if coupon.limit_counter is not None:
        moves.append((coupon.limit_counter, -1, None))
    return Judged(SUCCESS, request, replace(expected, counters=tuple(moves)))


def expect_use(coupon: ModelCoupon, key: str, reference: str | None, now: datetime) -> Judged:
    if coupon.status_at(now) == ISSUED:
        return Judged(SUCCESS)
    if coupon.status == USED and coupon.used_key == key:
        if coupon.used_reference != reference:
            return Judged("idempotency_key_reused")
        return Judged(SUCCESS, replay=True)
    return Judged("coupon_not_usable")
