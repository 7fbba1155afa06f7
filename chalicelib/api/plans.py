"""Paid membership: the plan catalog, and members' subscriptions as the brand's billing reports
them (the API never takes a payment). Logic in chalicelib.domain.subscriptions."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, Result, endpoint, schemas
from chalicelib.domain.clock import request_now
from chalicelib.domain.errors import BalanceLimitExceeded, PeriodNotContiguous, ReferenceRecorded, SubscriptionActive
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.api.schemas.plans import (
        PlanList,
        PlansRequest,
        SubscriptionList,
        SubscriptionOut,
        SubscriptionRequest,
    )

bp = Blueprint(__name__)
TAG = "Paid membership"


@endpoint(
    bp,
    "/program/plans",
    "PUT",
    summary="Replace the paid plans (a tier, an extra multiplier, perks, a join bonus)",
    description=(
        "Replaces the program's paid plans (each with a tier it grants, an extra earn multiplier, perks "
        "and a join bonus). Members keep the subscriptions they have. Idempotent: the same plans sent "
        "again change nothing."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.plans.PlansRequest,
    response=schemas.plans.PlanList,
)
def put_plans(request: ApiRequest) -> PlanList:
    from chalicelib.api.presenters import plans as presenters
    from chalicelib.domain.plans import Plan

    body: PlansRequest = request.body
    catalog = request.services.for_tenant(request.tenant).subscriptions.configure(
        [
            Plan(
                plan_id=plan.plan_id,
                name=plan.name,
                tier=plan.tier,
                multiplier=Decimal(plan.multiplier),
                perks=tuple(plan.perks),
                join_bonus=plan.join_bonus,
            )
            for plan in body.plans
        ]
    )
    return presenters.plans(catalog)


@endpoint(
    bp,
    "/program/plans",
    "GET",
    summary="The paid plans",
    description="The program's paid plans, each with its tier, extra multiplier, perks and join bonus.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.plans.PlanList,
)
def list_plans(request: ApiRequest) -> PlanList:
    from chalicelib.api.presenters import plans as presenters

    return presenters.plans(request.services.for_tenant(request.tenant).subscriptions.catalog())


@endpoint(
    bp,
    "/members/{member_id}/subscriptions",
    "POST",
    summary="Record a paid period of a plan, as reported by the brand's billing (starts, renews or extends)",
    description=(
        "Records a paid period of a plan for a member, as the brand's billing reports it: it starts a "
        "subscription, renews it or extends it, and credits the plan's join bonus on a first period. "
        "Requires an `Idempotency-Key`. Refused when the period overlaps or leaves a gap with the current "
        "one, or its billing reference was already recorded."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.plans.SubscriptionRequest,
    response=schemas.plans.SubscriptionRecordOut,
    idempotency_key=True,
    errors=(SubscriptionActive, PeriodNotContiguous, ReferenceRecorded, BalanceLimitExceeded),
)
def record_subscription(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.api.presenters import plans as presenters
    from chalicelib.domain.plans import PeriodRequest

    body: SubscriptionRequest = request.body
    recording = request.services.for_tenant(request.tenant).subscriptions.record(
        member_id,
        PeriodRequest(body.plan_id, body.period_start, body.period_end, body.reference),
        request.idempotency_key or "",
    )
    logger.info(
        "subscription period recorded",
        extra={
            "member_id": member_id,
            "subscription_id": recording.subscription.subscription_id,
            "outcome": str(recording.outcome),
            "replayed": recording.replayed,
        },
    )
    return Result.replayable(presenters.recording(recording), replayed=recording.replayed)


@endpoint(
    bp,
    "/members/{member_id}/subscriptions",
    "GET",
    summary="The member's subscriptions, newest first",
    description="The member's subscriptions, newest first, with their periods and status.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.plans.SubscriptionList,
)
def list_subscriptions(request: ApiRequest, member_id: str) -> SubscriptionList:
    from chalicelib.api.presenters import plans as presenters
    from chalicelib.api.schemas.plans import SubscriptionList

    page = request.services.for_tenant(request.tenant).subscriptions.list(
        member_id, limit=request.query.limit, cursor=request.query.cursor
    )
    now = request_now()
    return SubscriptionList(
        data=[presenters.subscription(item, now) for item in page.items], next_cursor=page.next_cursor
    )


@endpoint(
    bp,
    "/members/{member_id}/subscriptions/{subscription_id}/cancel",
    "POST",
    summary="End a subscription now: its benefits stop at once (an ended one is answered as it is)",
    description=(
        "Ends a subscription now: its tier and multiplier stop applying at once; points already earned "
        "stay. An ended subscription is answered as it is."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.plans.SubscriptionOut,
)
def cancel_subscription(request: ApiRequest, member_id: str, subscription_id: str) -> SubscriptionOut:
    from chalicelib.api.presenters import plans as presenters

    ended = request.services.for_tenant(request.tenant).subscriptions.cancel(member_id, subscription_id)
    return presenters.subscription(ended, request_now())
