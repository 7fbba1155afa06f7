"""Households: members pool their points; the owner or a redeemer spends from the pool.

A pooled redemption needs an Idempotency-Key, like every movement: the first result is kept in
the first contributor's ledger entry, and a replay answers it with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import REPLAYED_HEADER, ApiRequest, Result, endpoint, schemas
from chalicelib.domain.errors import (
    HouseholdNotAllowed,
    HouseholdRedeemerRequired,
    InsufficientPoints,
    MemberErased,
    MemberInHousehold,
    MovementTooLarge,
    NotFound,
)
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger, metrics

if TYPE_CHECKING:
    from chalicelib.api.schemas.households import (
        AddHouseholdMemberRequest,
        ChangeHouseholdRoleRequest,
        CreateHouseholdRequest,
        HouseholdOut,
        HouseholdRemovalOut,
    )
    from chalicelib.api.schemas.households import PooledRedemptionRequest as PooledRedemptionBody
    from chalicelib.services import TenantServices

bp = Blueprint(__name__)
TAG = "Households"


def _services(request: ApiRequest) -> TenantServices:
    return request.services.for_tenant(request.tenant)


@endpoint(
    bp,
    "/households",
    "POST",
    summary="Create a household whose members pool their points",
    description=(
        "Creates a household owned by `owner_member_id`. Its members keep their own balances, lots and "
        "tiers; the household's pool is the sum of their available points, which the owner and the "
        "redeemers may spend (`POST /v1/households/{household_id}/redemptions`). The program decides "
        "(`households`: `enabled`, `max_members`): otherwise 422 `household_not_allowed` "
        "(`details.reason` `disabled`). 409 `member_in_household` when the owner is already in a household. "
        "Send an `Idempotency-Key` whenever the request may be retried: the retry answers the first result."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.households.CreateHouseholdRequest,
    response=schemas.households.HouseholdOut,
    optional_idempotency_key=True,
    response_headers=((REPLAYED_HEADER, "`true` when this answer replays an earlier request's (same key)."),),
    errors=(HouseholdNotAllowed, MemberInHousehold, NotFound, MemberErased),
)
def create_household(request: ApiRequest) -> Result:
    from chalicelib.api.presenters import households as presenters

    body: CreateHouseholdRequest = request.body
    services = _services(request)
    created = services.households.create(body.owner_member_id, body.name, request.idempotency_key)
    if not created.replayed:
        logger.info("household created", extra={"household_id": created.household.household_id})
    view = services.households.view(created.household)
    return Result.replayable(presenters.household(view), replayed=created.replayed)


@endpoint(
    bp,
    "/households/{household_id}",
    "GET",
    summary="A household: its members, their roles and points, and the pool",
    description=(
        "The household's members in joining order (the owner first) with their roles and their own "
        "available and pending points, and the pool: the members' available points summed (what the "
        "owner and the redeemers may spend), and their pending points apart. Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.households.HouseholdOut,
)
def get_household(request: ApiRequest, household_id: str) -> HouseholdOut:
    from chalicelib.api.presenters import households as presenters

    households = _services(request).households
    return presenters.household(households.view(households.get(household_id)))


@endpoint(
    bp,
    "/households/{household_id}/members",
    "POST",
    summary="Add a member to a household (as a redeemer or a member)",
    description=(
        "Adds `member_id` to the household with `role` `redeemer` (may redeem from the pool) or `member` "
        "(contributes; spends only their own points). 409 `member_in_household` when the member is in a "
        "household already (this one or another: a member is in one at a time). 422 "
        "`household_not_allowed` when the program does not allow households (`disabled`) or the household "
        "holds `households.max_members` members already (`full`)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.households.AddHouseholdMemberRequest,
    response=schemas.households.HouseholdOut,
    errors=(HouseholdNotAllowed, MemberInHousehold, MemberErased),
)
def add_household_member(request: ApiRequest, household_id: str) -> HouseholdOut:
    from chalicelib.api.presenters import households as presenters
    from chalicelib.domain.households import HouseholdRole

    body: AddHouseholdMemberRequest = request.body
    households = _services(request).households
    after = households.add_member(household_id, body.member_id, HouseholdRole(body.role))
    logger.info("household member added", extra={"household_id": household_id, "member_id": body.member_id})
    return presenters.household(households.view(after))


@endpoint(
    bp,
    "/households/{household_id}/members/{member_id}",
    "PATCH",
    summary="Change a household member's role",
    description=(
        "Makes a member of the household a `redeemer` or a `member`. The owner keeps the owner role: "
        "changing it is 422 `household_not_allowed` (`details.reason` `owner_role`). Idempotent: the "
        "same change sent twice leaves the same household."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.households.ChangeHouseholdRoleRequest,
    response=schemas.households.HouseholdOut,
    errors=(HouseholdNotAllowed,),
)
def change_household_role(request: ApiRequest, household_id: str, member_id: str) -> HouseholdOut:
    from chalicelib.api.presenters import households as presenters
    from chalicelib.domain.households import HouseholdRole

    body: ChangeHouseholdRoleRequest = request.body
    households = _services(request).households
    return presenters.household(
        households.view(households.change_role(household_id, member_id, HouseholdRole(body.role)))
    )


@endpoint(
    bp,
    "/households/{household_id}/members/{member_id}",
    "DELETE",
    summary="A member leaves a household (their points stay theirs)",
    description=(
        "Removes the member from the household: their points, which were always their own, stay with "
        "them and leave the pool. The owner may leave only when alone (422 `household_not_allowed`, "
        "`details.reason` `owner_not_alone`), which dissolves the household (`dissolved` true)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.households.HouseholdRemovalOut,
    errors=(HouseholdNotAllowed,),
)
def remove_household_member(request: ApiRequest, household_id: str, member_id: str) -> HouseholdRemovalOut:
    from chalicelib.api.presenters import households as presenters

    households = _services(request).households
    removal = households.remove_member(household_id, member_id)
    logger.info("household member removed", extra={"household_id": household_id, "member_id": member_id})
    after = households.view(removal.household) if removal.household is not None else None
    return presenters.removal(household_id, member_id, after)


@endpoint(
    bp,
    "/households/{household_id}/redemptions",
    "POST",
    summary="Redeem points from the household's pool",
    description=(
        "Takes `points` from the members' available points in one transaction: the lots expiring first "
        "across the whole household (the redeemer's own first on ties), then points that never expire "
        "(the redeemer's first); never pending points, never points past their expiry. Each contributing "
        "member gets a ledger entry (`type` redeem, metadata `household_id`, `redemption_id`, "
        "`redeemer_id`) and a `points.redeemed` event. `member_id` is the redeemer: the owner or a "
        "redeemer (422 `household_redeemer_required` otherwise). 422 `insufficient_points` when the pool "
        "is short; 422 `movement_too_large` when the points span too many lots. Requires an "
        "`Idempotency-Key`: a retry answers the first result."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.households.PooledRedemptionRequest,
    response=schemas.households.PooledRedemptionOut,
    idempotency_key=True,
    errors=(HouseholdRedeemerRequired, InsufficientPoints, MovementTooLarge),
)
def redeem_from_household(request: ApiRequest, household_id: str) -> Result:
    from chalicelib.api.presenters import households as presenters
    from chalicelib.domain.households import PooledRedemptionRequest

    body: PooledRedemptionBody = request.body
    result = _services(request).households.redeem(
        PooledRedemptionRequest(
            household_id=household_id,
            member_id=body.member_id,
            points=body.points,
            idempotency_key=request.idempotency_key or "",
            description=body.description,
            actor_key_id=request.tenant.key_id,
        )
    )
    if not result.replayed:
        logger.info(
            "points redeemed from a household",
            extra={"household_id": household_id, "redemption_id": result.redemption_id, "points": result.points},
        )
        metrics.add_metric(name="HouseholdRedemptionCount", unit="Count", value=1)
    return Result.replayable(presenters.redemption(result), replayed=result.replayed)
