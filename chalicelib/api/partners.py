"""Coalition partners: the tenant's registry of partner brands, the partner routes (earn,
redeem and reverse with a partner key), and the settlement of a period.

A partner key (``POST /v1/api-keys`` with ``"scopes": ["partner"], "partner_id": ...``) has
only the ``partner`` scope: it reaches the partner routes (earn, redeem, reverse) and its own partner's
settlement, nothing else; the tenant's own keys (admin included) never reach the partner
routes. The partner always comes from the key, never from the body.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, Result, endpoint
from chalicelib.api.schemas import Out
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.errors import Forbidden
from chalicelib.domain.ledger import LedgerEntry, MovementResult, describe
from chalicelib.domain.partners import MemberRef, PartnerMovement
from chalicelib.observability import logger
from chalicelib.services import partners

bp = Blueprint(__name__)
TAG = "Partners"


@endpoint(
    bp,
    "/partners",
    "POST",
    summary="Register a coalition partner",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.CreatePartnerRequest,
    response=schemas.PartnerOut,
)
def create_partner(request: ApiRequest) -> schemas.PartnerOut:
    body: schemas.CreatePartnerRequest = request.body
    created = partners(request.services, request.tenant).create(
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
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.PartnerList,
)
def list_partners(request: ApiRequest) -> schemas.PartnerList:
    return schemas.PartnerList(data=[presenters.partner(p) for p in partners(request.services, request.tenant).list()])


@endpoint(
    bp,
    "/partners/{partner_id}",
    "GET",
    summary="A coalition partner",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.PartnerOut,
)
def get_partner(request: ApiRequest, partner_id: str) -> schemas.PartnerOut:
    return presenters.partner(partners(request.services, request.tenant).get(partner_id))


@endpoint(
    bp,
    "/partners/{partner_id}/settlement",
    "GET",
    summary="Points issued and redeemed through a partner in a period, and their money value",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.SettlementQuery,
    response=schemas.SettlementOut,
    partner_access=True,
)
def get_partner_settlement(request: ApiRequest, partner_id: str) -> schemas.SettlementOut:
    own = request.tenant.partner_id
    if own is not None and own != partner_id:
        raise Forbidden(
            "a partner key may read only its own partner's settlement",
            details={"required_scope": str(Scope.ADMIN), "key_scopes": sorted(str(s) for s in request.tenant.scopes)},
        )
    query: schemas.SettlementQuery = request.query
    to_date = query.to or datetime.now(UTC).date()
    from_date = query.from_ or to_date.replace(day=1)
    found = partners(request.services, request.tenant).settlement(partner_id, from_date, to_date)
    return presenters.settlement(found, request.tenant.tenant.currency)


def _movement(request: ApiRequest) -> PartnerMovement:
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


def _answer(result: MovementResult, present: Callable[[LedgerEntry], Out] = presenters.movement) -> Result:
    logger.info(
        "partner idempotent replay" if result.replayed else "partner points moved", extra=describe(result.entry)
    )
    return Result.replayable(present(result.entry), replayed=result.replayed)


@endpoint(
    bp,
    "/partner/earn",
    "POST",
    summary="A partner key credits a member: points, or an amount at the partner's earn rate",
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.PartnerEarnRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def partner_earn(request: ApiRequest) -> Result:
    return _answer(partners(request.services, request.tenant).earn(_movement(request)))


@endpoint(
    bp,
    "/partner/redeem",
    "POST",
    summary="A partner key debits a member's points (422 insufficient_points if short)",
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.PartnerRedeemRequest,
    response=schemas.MovementOut,
    idempotency_key=True,
)
def partner_redeem(request: ApiRequest) -> Result:
    return _answer(partners(request.services, request.tenant).redeem(_movement(request)))


@endpoint(
    bp,
    "/partner/reverse",
    "POST",
    summary="A partner key takes back points it issued for a refunded reference (pending first)",
    tag=TAG,
    auth="tenant",
    scope=Scope.PARTNER,
    status=201,
    body=schemas.PartnerReverseRequest,
    response=schemas.ReversalOut,
    idempotency_key=True,
)
def partner_reverse(request: ApiRequest) -> Result:
    return _answer(partners(request.services, request.tenant).reverse(_movement(request)), presenters.reversal)
