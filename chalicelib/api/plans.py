"""Paid membership: the plan catalog, and members' subscriptions as the brand's billing reports
them (the API never takes a payment). Logic in chalicelib.domain.subscriptions."""

from __future__ import annotations

from decimal import Decimal

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, Result, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.clock import utc_now
from chalicelib.domain.plans import PeriodRequest, Plan
from chalicelib.observability import logger
from chalicelib.services import subscriptions

bp = Blueprint(__name__)
TAG = "Paid membership"


@endpoint(
    bp,
    "/program/plans",
    "PUT",
    summary="Replace the paid plans (a tier, an extra multiplier, perks, a join bonus)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.PlansRequest,
    response=schemas.PlanList,
)
def put_plans(request: ApiRequest) -> schemas.PlanList:
    body: schemas.PlansRequest = request.body
    catalog = subscriptions(request.services, request.tenant).configure(
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
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.PlanList,
)
def list_plans(request: ApiRequest) -> schemas.PlanList:
    return presenters.plans(subscriptions(request.services, request.tenant).catalog())


@endpoint(
    bp,
    "/members/{member_id}/subscriptions",
    "POST",
    summary="Record a paid period of a plan, as reported by the brand's billing (starts, renews or extends)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.SubscriptionRequest,
    response=schemas.SubscriptionRecordOut,
    idempotency_key=True,
)
def record_subscription(request: ApiRequest, member_id: str) -> Result:
    body: schemas.SubscriptionRequest = request.body
    recording = subscriptions(request.services, request.tenant).record(
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
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.SubscriptionList,
)
def list_subscriptions(request: ApiRequest, member_id: str) -> schemas.SubscriptionList:
    page = subscriptions(request.services, request.tenant).list(
        member_id, limit=request.query.limit, cursor=request.query.cursor
    )
    now = utc_now()
    return schemas.SubscriptionList(
        data=[presenters.subscription(item, now) for item in page.items], next_cursor=page.next_cursor
    )


@endpoint(
    bp,
    "/members/{member_id}/subscriptions/{subscription_id}/cancel",
    "POST",
    summary="End a subscription now: its benefits stop at once (an ended one is answered as it is)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.SubscriptionOut,
)
def cancel_subscription(request: ApiRequest, member_id: str, subscription_id: str) -> schemas.SubscriptionOut:
    ended = subscriptions(request.services, request.tenant).cancel(member_id, subscription_id)
    return presenters.subscription(ended, utc_now())
