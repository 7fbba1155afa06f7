"""Paid membership: plans and subscriptions -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.api.schemas.plans import PlanList, PlanStatusOut, SubscriptionOut, SubscriptionRecordOut
    from chalicelib.domain.plans import PlanCatalog, Recording, Subscription
    from chalicelib.domain.subscriptions import PlanStatus


def plan_status(value: PlanStatus) -> PlanStatusOut:
    from chalicelib.api.schemas.plans import PlanStatusOut

    grant, plan = value.grant, value.plan
    return PlanStatusOut(
        subscription_id=grant.subscription_id,
        plan_id=grant.plan_id,
        name=plan.name if plan is not None else None,
        tier=grant.tier,
        multiplier=format(grant.multiplier, "f"),
        perks=list(plan.perks) if plan is not None else [],
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
    )


def plans(value: PlanCatalog) -> PlanList:
    from chalicelib.api.schemas.plans import PlanList, PlanOut

    return PlanList(
        data=[
            PlanOut(
                plan_id=plan.plan_id,
                name=plan.name,
                tier=plan.tier,
                multiplier=format(plan.multiplier, "f"),
                perks=list(plan.perks),
                join_bonus=plan.join_bonus,
            )
            for plan in value.plans
        ],
        updated_at=value.updated_at,
    )


def subscription(value: Subscription, now: datetime) -> SubscriptionOut:
    """As it stands at ``now``: past its end it reads as lapsed, whether or not the job has run."""
    from chalicelib.api.schemas.plans import PeriodOut, SubscriptionOut

    status = value.status_at(now)
    lapsed_at = value.lapsed_at or (value.ends_at if status == "lapsed" else None)
    return SubscriptionOut(
        id=value.subscription_id,
        member_id=value.member_id,
        plan_id=value.plan_id,
        status=status.value,
        tier=value.tier,
        multiplier=format(value.multiplier, "f"),
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        cancelled_at=value.cancelled_at,
        lapsed_at=lapsed_at,
        join_bonus=value.join_bonus,
        periods=[
            PeriodOut(
                reference=period.reference,
                period_start=period.start,
                period_end=period.end,
                recorded_at=period.recorded_at,
            )
            for period in value.periods
        ],
        period_count=value.period_count,
        created_at=value.created_at,
        updated_at=value.updated_at,
    )


def recording(value: Recording) -> SubscriptionRecordOut:
    """The answer to a recording, as it was then (a replay answers the same)."""
    from chalicelib.api.schemas.plans import JoinBonusOut, SubscriptionRecordOut

    bonus = (
        JoinBonusOut(points=value.bonus_points, transaction_id=value.bonus_transaction_id)
        if value.bonus_points
        else None
    )
    return SubscriptionRecordOut(
        outcome=value.outcome.value,
        subscription=subscription(value.subscription, value.recorded_at),
        join_bonus=bonus,
    )
