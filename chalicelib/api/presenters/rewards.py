"""Rewards, coupons and redemptions -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chalicelib.api.presenters.points import balance, transaction

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.api.schemas.rewards import (
        CouponOut,
        MemberRewardList,
        MemberRewardOut,
        RedemptionOut,
        RewardOut,
        UploadCodesOut,
    )
    from chalicelib.domain.rewards import Coupon, Eligibility, Redemption, Reward, RewardService, RewardStats


def reward(value: Reward, stats: RewardStats, now: datetime) -> RewardOut:
    from chalicelib.api.schemas.rewards import RewardOut

    status: Literal["archived", "ended", "active", "scheduled"]
    if value.archived:
        status = "archived"
    elif value.ends_at and value.ends_at <= now:
        status = "ended"
    else:
        status = "active" if value.in_window(now) else "scheduled"
    return RewardOut(
        id=value.reward_id,
        name=value.name,
        type=value.type,
        points_cost=value.points_cost,
        description=value.description,
        amount=format(value.amount, "f") if value.amount is not None else None,
        percent=value.percent,
        sku=value.sku,
        cause=value.cause,
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        stock=value.stock,
        per_member_limit=value.per_member_limit,
        limit_period=value.limit_period,
        tiers=sorted(value.tiers),
        valid_days=value.valid_days,
        codes=value.codes,
        status=status,
        issued=stats.issued,
        remaining_stock=stats.remaining,
        cause_total_points=stats.cause_total,
        created_at=value.created_at,
        updated_at=value.updated_at,
        archived_at=value.archived_at,
    )


def coupon(value: Coupon, now: datetime) -> CouponOut:
    from chalicelib.api.schemas.rewards import CouponOut

    assert value.member_id is not None and value.issued_at is not None, "an issued coupon"
    return CouponOut(
        code=value.code,
        reward_id=value.reward_id,
        member_id=value.member_id,
        status=value.status_at(now),
        points=value.points,
        issued_at=value.issued_at,
        expires_at=value.expires_at,
        used_at=value.used_at,
        used_reference=value.used_reference,
        cancelled_at=value.cancelled_at,
    )


def redemption(value: Redemption, now: datetime) -> RedemptionOut:
    """A redemption or a cancellation: its movement, the balance right after it, the coupon now."""
    from chalicelib.api.schemas.rewards import RedemptionOut

    return RedemptionOut(
        transaction=transaction(value.entry), balance=balance(value.entry.view_after), coupon=coupon(value.coupon, now)
    )


def member_reward(value: Eligibility, stats: RewardStats, now: datetime) -> MemberRewardOut:
    from chalicelib.api.schemas.rewards import MemberRewardOut

    return MemberRewardOut(
        reward=reward(value.reward, stats, now),
        redeemable=value.redeemable,
        locked_because=list(value.reasons),
        points_short=value.points_short,
        remaining_for_member=value.remaining_for_member,
    )


def member_rewards(
    service: RewardService, member_id: str, *, limit: int, cursor: str | None, now: datetime
) -> MemberRewardList:
    """A page of the rewards as ``member_id`` sees them: each redeemable now, or what locks it."""
    from chalicelib.api.schemas.rewards import MemberRewardList

    available, page = service.for_member(member_id, limit=limit, cursor=cursor)
    stats = service.stats([eligibility.reward for eligibility in page.items])
    return MemberRewardList(
        member_id=member_id,
        available_points=available,
        data=[member_reward(e, s, now) for e, s in zip(page.items, stats, strict=True)],
        next_cursor=page.next_cursor,
    )


def uploaded_codes(reward_id: str, added: int) -> UploadCodesOut:
    from chalicelib.api.schemas.rewards import UploadCodesOut

    return UploadCodesOut(reward_id=reward_id, added=added)
