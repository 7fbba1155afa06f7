"""Coalition partners: the tenant's registry of partner brands, the partner routes (earn,
redeem and reverse with a partner key), and the settlement of a period.

A partner key (``POST /v1/api-keys`` with ``"scopes": ["partner"], "partner_id": ...``) has
only the ``partner`` scope: it reaches the partner routes (earn, redeem, reverse) and its own partner's
settlement, nothing else; the tenant's own keys (admin included) never reach the partner
routes. The partner always comes from the key, never from the body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, Result, endpoint, schemas
from chalicelib.domain.errors import (
    AmountTooSmall,
    BalanceLimitExceeded,
    Forbidden,
    InsufficientPoints,
    MovementTooLarge,
    PartnerExists,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
)
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.api.schemas.common import Out
    from chalicelib.api.schemas.partners import (
        CreatePartnerRequest,
        PartnerList,
        PartnerOut,
        SettlementOut,
        SettlementQuery,
    )
    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.movement_requests import MovementResult
    from chalicelib.domain.partners import PartnerMovement

bp = Blueprint(__name__)
TAG = "Partners"


@endpoint(
    bp,
    "/partners",
    "POST",
    summary="Register a coalition partner",
    description=(
        "Registers a coalition partner (a shop that issues and takes this program's points) with its earn "
        "rate (points per currency unit spent) and its redeem rate (the currency value of a point redeemed), "
        "which settle what the brand and the partner owe each other. 409 `partner_exists` if the id is taken."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.partners.CreatePartnerRequest,
    response=schemas.partners.PartnerOut,
    errors=(PartnerExists,),
)
def create_partner(request: ApiRequest) -> PartnerOut:

    from chalicelib.api.presenters import partners as presenters

    body: CreatePartnerRequest = request.body
    created = request.services.for_tenant(request.tenant).partners.create(
        partner_id=body.partner_id,
        name=body.name,
        earn_rate=Decimal(body.earn_rate),
        redeem_rate=Decimal(body.redeem_rate),
    )
    return presenters.partner(created)


@endpoint(
    bp,
    "/partners",
    "GET",
    summary="List the coalition partners",
    description="The program's coalition partners, with their earn and redeem rates.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.partners.PartnerList,
)
def list_partners(request: ApiRequest) -> PartnerList:
    from chalicelib.api.presenters import partners as presenters
    from chalicelib.api.schemas.partners import PartnerList

    return PartnerList(
        data=[presenters.partner(p) for p in request.services.for_tenant(request.tenant).partners.list()]
    )


@endpoint(
    bp,
    "/partners/{partner_id}",
    "GET",
    summary="A coalition partner",
    description="One coalition partner. 404 if it is not this tenant's.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.partners.PartnerOut,
)
def get_partner(request: ApiRequest, partner_id: str) -> PartnerOut:
    from chalicelib.api.presenters import partners as presenters

    return presenters.partner(request.services.for_tenant(request.tenant).partners.get(partner_id))


@endpoint(
    bp,
    "/partners/{partner_id}/settlement",
    "GET",
    summary="Points issued and redeemed through a partner in a period, and their money value",
    description=(
        "The points a partner issued and redeemed in a period and their money value: what the brand and "
        "the partner owe each other. A partner key may read its own settlement only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.partners.SettlementQuery,
    response=schemas.partners.SettlementOut,
    partner_access=True,
)
def get_partner_settlement(request: ApiRequest, partner_id: str) -> SettlementOut:
    from chalicelib.api.presenters import partners as presenters

    own = request.tenant.partner_id
    if own is not None and own != partner_id:
        raise Forbidden(
            "a partner key may read only its own partner's settlement",
            details={"required_scope": str(Scope.ADMIN), "key_scopes": sorted(str(s) for s in request.tenant.scopes)},
        )
    query: SettlementQuery = request.query
    to_date = query.to or datetime.now(UTC).date()
    from_date = query.from_ or to_date.replace(day=1)
    found = request.services.for_tenant(request.tenant).partners.settlement(partner_id, from_date, to_date)
    return presenters.settlement(found, request.tenant.tenant.currency)


def _movement(request: ApiRequest) -> PartnerMovement:
    from chalicelib.domain.partners import MemberRef, PartnerMovement

    body = request.body
    return PartnerMovement(
        partner_id=request.tenant.partner_id,
        member=MemberRef(
            member_id=body.member.member_id,
            external_id=body.member.external_id,
            referral_code=body.member.referral_code,
            card_code=body.member.card_code,
        ),
        idempotency_key=request.idempotency_key or "",
        points=body.points,
        amount=Decimal(body.amount) if getattr(body, "amount", None) is not None else None,
        reference=body.reference,
        description=body.description,
        actor_key_id=request.tenant.key_id,
    )


def _answer(result: MovementResult, present: Callable[[LedgerEntry], Out] | None = None) -> Result:
    """The movement's answer, shaped by ``present`` (default: ``presenters.movement``)."""
    from chalicelib.api.presenters import points as presenters
    from chalicelib.domain.entries import log_fields

    present = present or presenters.movement
    logger.info(
        "partner idempotent replay" if result.replayed else "partner points moved", extra=log_fields(result.entry)
    )
    return Result.replayable(present(result.entry), replayed=result.replayed)


@endpoint(
    bp,
    "/partner/earn",
    "POST",
    summary="A partner key credits a member: points, or an amount at the partner's earn rate",
    description=(
        "With a partner key: credits a member with points, or with an amount converted at the partner's "
        "earn rate. Requires an `Idempotency-Key`: a retry with the same key and body answers the first "
        "result."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.partners.PartnerEarnRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(AmountTooSmall, BalanceLimitExceeded, MovementTooLarge),
)
def partner_earn(request: ApiRequest) -> Result:
    return _answer(request.services.for_tenant(request.tenant).partners.earn(_movement(request)))


@endpoint(
    bp,
    "/partner/redeem",
    "POST",
    summary="A partner key debits a member's points (422 insufficient_points if short)",
    description=(
        "With a partner key: debits a member's points at the partner. Requires an `Idempotency-Key`. 422 "
        "`insufficient_points` if the balance is short; nothing is debited then."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.partners.PartnerRedeemRequest,
    response=schemas.points.MovementOut,
    idempotency_key=True,
    errors=(InsufficientPoints, MovementTooLarge),
)
def partner_redeem(request: ApiRequest) -> Result:
    return _answer(request.services.for_tenant(request.tenant).partners.redeem(_movement(request)))


@endpoint(
    bp,
    "/partner/reverse",
    "POST",
    summary="A partner key takes back points it issued for a refunded reference (pending first)",
    description=(
        "With a partner key: takes back points the partner issued for a refunded reference, pending "
        "points first, then available ones. Requires an `Idempotency-Key`. Refused beyond what the "
        "reference earned."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.partners.PartnerReverseRequest,
    response=schemas.points.ReversalOut,
    idempotency_key=True,
    errors=(ReversalExceedsEarned, ReversalNeedsPoints, InsufficientPoints, MovementTooLarge),
)
def partner_reverse(request: ApiRequest) -> Result:
    from chalicelib.api.presenters import points as presenters

    return _answer(
        request.services.for_tenant(request.tenant).partners.reverse(_movement(request)), presenters.reversal
    )
