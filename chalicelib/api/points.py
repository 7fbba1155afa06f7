"""Point movements (earn, redeem, adjust) and their read side (balance, transactions).

Every movement needs an Idempotency-Key header: the first result is stored in the ledger
entry itself, and a replay returns it with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.program import to_order
from chalicelib.api.routing import ApiRequest, Result, endpoint
from chalicelib.domain.activities import Activity
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.ledger import MovementRequest, MovementType, describe
from chalicelib.observability import logger, metrics
from chalicelib.services import subscriptions

bp = Blueprint(__name__)
TAG = "Points"


def _move(request: ApiRequest, member_id: str, movement: MovementType) -> Result:
    body = request.body
    command = MovementRequest(
        member_id=member_id,
        movement=movement,
        idempotency_key=request.idempotency_key or "",
        points=body.points,
        amount=getattr(body, "amount", None),
        currency=request.tenant.tenant.currency,
        reference=body.reference,
        description=body.description,
        reason=getattr(body, "reason", None),
        occurred_at=body.occurred_at,
        metadata=body.metadata,
        actor_key_id=request.tenant.key_id,
        timezone=request.tenant.tenant.timezone,
        pending_days=getattr(body, "pending_days", None),
        order=to_order(body.order, request.tenant.tenant.currency) if getattr(body, "order", None) else None,
    )
    result = request.services.for_tenant(request.tenant).points.move(command)
    if result.replayed:
        logger.info("idempotent replay", extra=describe(result.entry))
    else:
        logger.info("points moved", extra=describe(result.entry))
        metrics.add_metric(name=f"Points{movement.value.capitalize()}Count", unit="Count", value=1)
    present = presenters.reversal if movement is MovementType.REVERSE else presenters.movement
    return Result.replayable(present(result.entry), replayed=result.replayed)


@endpoint(
    bp,
    "/members/{member_id}/earn",
    "POST",
    summary="Credit points, or an amount converted by the program",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.EarnRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def earn_points(request: ApiRequest, member_id: str) -> Result:
    return _move(request, member_id, MovementType.EARN)


@endpoint(
    bp,
    "/members/{member_id}/redeem",
    "POST",
    summary="Debit points (422 insufficient_points if short)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.RedeemRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def redeem_points(request: ApiRequest, member_id: str) -> Result:
    return _move(request, member_id, MovementType.REDEEM)


@endpoint(
    bp,
    "/members/{member_id}/adjust",
    "POST",
    summary="Correct a balance up or down (never below zero)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.AdjustRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def adjust_points(request: ApiRequest, member_id: str) -> Result:
    return _move(request, member_id, MovementType.ADJUST)


@endpoint(
    bp,
    "/members/{member_id}/reverse",
    "POST",
    summary="Take back points earned for a refunded order (pending first)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.ReverseRequest,
    response=schemas.ReversalOut,
    idempotency_key=True,
)
def reverse_points(request: ApiRequest, member_id: str) -> Result:
    return _move(request, member_id, MovementType.REVERSE)


@endpoint(
    bp,
    "/members/{member_id}/balance",
    "GET",
    summary="The member's balance",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.BalanceOut,
)
def get_balance(request: ApiRequest, member_id: str) -> schemas.BalanceOut:
    services = request.services.for_tenant(request.tenant)
    view = services.points.view(member_id)
    tiers = services.tiers.status(view.balance)
    plan = subscriptions(request.services, request.tenant).status(view.balance, tiers) if view.balance.plan else None
    return presenters.balance(view, tiers, plan)


@endpoint(
    bp,
    "/members/{member_id}/transactions",
    "GET",
    summary="The member's ledger, newest first",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.TransactionList,
)
def list_transactions(request: ApiRequest, member_id: str) -> schemas.TransactionList:
    page = request.services.for_tenant(request.tenant).points.transactions(
        member_id, limit=request.query.limit, cursor=request.query.cursor
    )
    return schemas.TransactionList(data=[presenters.transaction(e) for e in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}/activities",
    "POST",
    summary="Reward an engagement activity (a review, a follow...) under the activity rules and their limits",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.ActivityRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def record_activity(request: ApiRequest, member_id: str) -> Result:
    body: schemas.ActivityRequest = request.body
    activity = Activity(
        member_id=member_id,
        type=body.type,
        idempotency_key=request.idempotency_key or "",
        reference=body.reference,
        description=body.description,
        occurred_at=body.occurred_at,
        metadata=body.metadata,
        actor_key_id=request.tenant.key_id,
        timezone=request.tenant.tenant.timezone,
    )
    result = request.services.for_tenant(request.tenant).activities.record(activity)
    return Result.replayable(presenters.movement(result.entry), replayed=result.replayed)
