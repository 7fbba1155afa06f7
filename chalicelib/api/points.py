"""Point movements (earn, redeem, adjust) and their read side (balance, transactions).

Every movement needs an Idempotency-Key header: the first result is stored in the ledger
entry itself, and a replay returns it with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.program import to_order
from chalicelib.api.routing import ApiRequest, Result, endpoint, schemas
from chalicelib.domain.errors import (
    ActivityNotRewarded,
    AmountTooSmall,
    BalanceLimitExceeded,
    InsufficientPoints,
    LimitReached,
    MovementTooLarge,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
)
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger, metrics

if TYPE_CHECKING:
    from chalicelib.api.schemas.points import BalanceOut, TransactionList
    from chalicelib.api.schemas.rules import ActivityRequest
    from chalicelib.domain.movement_requests import MovementType

bp = Blueprint(__name__)
TAG = "Points"


def _move(request: ApiRequest, member_id: str, movement: MovementType) -> Result:
    from chalicelib.api.presenters import points as presenters
    from chalicelib.domain.entries import log_fields
    from chalicelib.domain.movement_requests import MovementRequest, MovementType

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
        logger.info("idempotent replay", extra=log_fields(result.entry))
    else:
        logger.info("points moved", extra=log_fields(result.entry))
        metrics.add_metric(name=f"Points{movement.value.capitalize()}Count", unit="Count", value=1)
    present = presenters.reversal if movement is MovementType.REVERSE else presenters.movement
    return Result.replayable(present(result.entry), replayed=result.replayed)


@endpoint(
    bp,
    "/members/{member_id}/earn",
    "POST",
    summary="Credit points, or an amount converted by the program",
    description=(
        "Credits a member: a number of points, an amount converted by the program "
        "(`points_per_currency_unit` and `rounding`), or an order computed under the earning rules, tiers "
        "and plans. Requires an `Idempotency-Key`: a retry with the same key and body answers the first "
        "result (`Idempotent-Replayed: true`), so a point is never credited twice. Refused when the "
        "amount earns nothing or the balance would exceed its limit."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.points.EarnRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(AmountTooSmall, BalanceLimitExceeded, MovementTooLarge),
)
def earn_points(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.domain.movement_requests import MovementType

    return _move(request, member_id, MovementType.EARN)


@endpoint(
    bp,
    "/members/{member_id}/redeem",
    "POST",
    summary="Debit points (422 insufficient_points if short)",
    description=(
        "Debits a member's available points. Requires an `Idempotency-Key`: a retry answers the first "
        "result, so a point is never debited twice. 422 `insufficient_points` if the balance is short; "
        "nothing is debited then."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.points.RedeemRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(InsufficientPoints, MovementTooLarge),
)
def redeem_points(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.domain.movement_requests import MovementType

    return _move(request, member_id, MovementType.REDEEM)


@endpoint(
    bp,
    "/members/{member_id}/adjust",
    "POST",
    summary="Correct a balance up or down (never below zero)",
    description=(
        "Corrects a member's balance up or down with a reason (an admin's correction, recorded in the "
        "ledger like any movement). Requires an `Idempotency-Key`. Never takes the balance below zero "
        "(`insufficient_points`)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.points.AdjustRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(InsufficientPoints, BalanceLimitExceeded, MovementTooLarge),
)
def adjust_points(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.domain.movement_requests import MovementType

    return _move(request, member_id, MovementType.ADJUST)


@endpoint(
    bp,
    "/members/{member_id}/reverse",
    "POST",
    summary="Take back points earned for a refunded order (pending first)",
    description=(
        "Takes back the points earned for a refunded or cancelled order (by its `reference`): pending "
        "points first, then available ones. Requires an `Idempotency-Key`. Refused beyond what the "
        "reference earned (`reversal_exceeds_earned`)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.points.ReverseRequest,
    response=schemas.points.ReversalOut,
    idempotency_key=True,
    errors=(ReversalExceedsEarned, ReversalNeedsPoints, InsufficientPoints, MovementTooLarge),
)
def reverse_points(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.domain.movement_requests import MovementType

    return _move(request, member_id, MovementType.REVERSE)


@endpoint(
    bp,
    "/members/{member_id}/balance",
    "GET",
    summary="The member's balance",
    description=(
        "The member's balance: available and pending points, those expiring soon, the lifetime totals "
        "(earned, redeemed, adjusted, expired, reversed), its tier and its plan. Strongly consistent: it "
        "includes every movement answered before."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.points.BalanceOut,
)
def get_balance(request: ApiRequest, member_id: str) -> BalanceOut:
    from chalicelib.api.presenters import points as presenters

    services = request.services.for_tenant(request.tenant)
    view = services.points.view(member_id)
    # No tier version to look for while the tenant (read by the authentication) never stored one.
    tiers = services.tiers.status(view.balance, possible=request.tenant.tenant.may_have_tiers)
    plan = services.subscriptions.status(view.balance, tiers) if view.balance.plan else None
    return presenters.balance(view, tiers, plan)


@endpoint(
    bp,
    "/members/{member_id}/transactions",
    "GET",
    summary="The member's ledger, newest first",
    description=(
        "The member's ledger entries, newest first, a page at a time (pass `next_cursor` back as "
        "`cursor`): each movement with its points, reference, idempotency key and the balance after it, "
        "like a bank statement."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.points.TransactionList,
)
def list_transactions(request: ApiRequest, member_id: str) -> TransactionList:
    from chalicelib.api.presenters import points as presenters
    from chalicelib.api.schemas.points import TransactionList

    page = request.services.for_tenant(request.tenant).points.transactions(
        member_id, limit=request.query.limit, cursor=request.query.cursor
    )
    return TransactionList(data=[presenters.transaction(e) for e in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}/activities",
    "POST",
    summary="Reward an engagement activity (a review, a follow...) under the activity rules and their limits",
    description=(
        "Rewards an engagement activity (a review, a social follow, a birthday...) under the activity "
        "rules in force and their limits. Requires an `Idempotency-Key`. 422 `activity_not_rewarded` when "
        "no rule rewards it, `limit_reached` when its limit is used up."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.rules.ActivityRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(ActivityNotRewarded, LimitReached, BalanceLimitExceeded),
)
def record_activity(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.api.presenters import points as presenters
    from chalicelib.domain.activities import Activity

    body: ActivityRequest = request.body
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
