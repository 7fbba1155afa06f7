"""Transfers: a member moves points to another member of the brand; an admin may reverse one.

A transfer needs an Idempotency-Key header, like every movement: the first result is kept in
the sender's ledger entry, and a replay answers it with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, Result, endpoint, schemas
from chalicelib.domain.errors import BalanceLimitExceeded, InsufficientPoints, MovementTooLarge, TransferNotAllowed
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger, metrics

if TYPE_CHECKING:
    from chalicelib.api.schemas.transfers import TransferRequest as TransferBody
    from chalicelib.api.schemas.transfers import TransferReversalRequest

bp = Blueprint(__name__)
TAG = "Transfers"


@endpoint(
    bp,
    "/members/{member_id}/transfers",
    "POST",
    summary="Move points to another member of the brand",
    description=(
        "Moves points from this member to another member of the brand (`to`: their `member_id` or "
        "`external_id`) in one transaction: both ledger entries (`type` transfer) and both balances, or "
        "nothing. The points leave as a redemption takes them (the lots expiring first, then points that "
        "never expire; pending points never move) and the receiver gets them with the same expiry dates. "
        "The program decides (`transfers`: `enabled`, `minimum`, `daily_maximum` per local day): otherwise "
        "422 `transfer_not_allowed` with `details.reason` (`disabled`, `same_member`, `below_minimum`, "
        "`daily_maximum`). 422 `insufficient_points` if the sender is short. Each side gets a "
        "`points.transferred` event. Requires an `Idempotency-Key`: a retry answers the first result."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.transfers.TransferRequest,
    response=schemas.transfers.TransferOut,
    idempotency_key=True,
    errors=(TransferNotAllowed, InsufficientPoints, BalanceLimitExceeded, MovementTooLarge),
)
def create_transfer(request: ApiRequest, member_id: str) -> Result:
    from chalicelib.api.presenters import transfers as presenters
    from chalicelib.domain.entries import log_fields
    from chalicelib.domain.transfers import TransferRequest

    body: TransferBody = request.body
    services = request.services.for_tenant(request.tenant)
    recipient = services.members.identify(member_id=body.to.member_id, external_id=body.to.external_id)
    result = services.transfers.transfer(
        TransferRequest(
            from_member_id=member_id,
            to_member_id=recipient.member_id,
            points=body.points,
            idempotency_key=request.idempotency_key or "",
            description=body.description,
            actor_key_id=request.tenant.key_id,
            timezone=request.tenant.tenant.timezone,
        )
    )
    if result.replayed:
        logger.info("idempotent replay", extra=log_fields(result.entry))
    else:
        logger.info("points transferred", extra={**log_fields(result.entry), "transfer_id": result.transfer_id})
        metrics.add_metric(name="PointsTransferCount", unit="Count", value=1)
    return Result.replayable(presenters.transfer(result), replayed=result.replayed)


@endpoint(
    bp,
    "/members/{member_id}/transfers/{transfer_id}/reverse",
    "POST",
    summary="Reverse a transfer: its points go back to the sender (admin)",
    description=(
        "Moves a transfer's points back from the receiver to this member, its sender, in one transaction: "
        "the lots the transfer gave first, so the sender gets its own expiry dates back. A transfer is "
        "reversed at most once: calling again answers the reversal already recorded "
        "(`Idempotent-Replayed: true`), so no Idempotency-Key is needed. 422 `insufficient_points` when "
        "the receiver holds fewer spendable points than were moved (correct with adjustments then). Each "
        "side gets a `points.transferred` event."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.transfers.TransferReversalRequest,
    response=schemas.transfers.TransferReversalOut,
    errors=(InsufficientPoints, BalanceLimitExceeded, MovementTooLarge),
)
def reverse_transfer(request: ApiRequest, member_id: str, transfer_id: str) -> Result:
    from chalicelib.api.presenters import transfers as presenters
    from chalicelib.domain.entries import log_fields

    body: TransferReversalRequest = request.body
    result = request.services.for_tenant(request.tenant).transfers.reverse(
        member_id, transfer_id, reason=body.reason, actor_key_id=request.tenant.key_id
    )
    if not result.replayed:
        logger.info("transfer reversed", extra={**log_fields(result.entry), "transfer_id": result.transfer_id})
    return Result.replayable(presenters.reversal(result), replayed=result.replayed)
