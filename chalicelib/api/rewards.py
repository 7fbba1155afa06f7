"""The rewards catalog, redemptions and coupons.

(Archiving is declared last: the route security matrix calls every operation in declaration
order with one sample reward, and an archived reward is no longer redeemable.)

A redemption is a point movement (Idempotency-Key required): its debit, the reward's stock
and the member's limit, and the coupon are written in one transaction. Using a coupon is
idempotent under its key; cancelling one gives its points back, once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, Result, endpoint, schemas
from chalicelib.domain.clock import request_now
from chalicelib.domain.errors import (
    BalanceLimitExceeded,
    CodePoolNotUsed,
    CouponCodeExists,
    CouponNotUsable,
    InsufficientPoints,
    MovementTooLarge,
    OutOfStock,
    RewardUnavailable,
)
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger, metrics

if TYPE_CHECKING:
    from chalicelib.api.schemas.rewards import (
        CouponList,
        CouponOut,
        CreateRewardRequest,
        MemberRewardList,
        RewardList,
        RewardOut,
        UpdateRewardRequest,
        UploadCodesOut,
        UploadCodesRequest,
        UseCouponRequest,
    )
    from chalicelib.domain.rewards import Reward, RewardService

bp = Blueprint(__name__)
TAG = "Rewards"


def _rewards(request: ApiRequest) -> RewardService:
    return request.services.for_tenant(request.tenant).rewards


def _out(service: RewardService, reward: Reward) -> RewardOut:
    from chalicelib.api.presenters import rewards as presenters

    (stats,) = service.stats([reward])
    return presenters.reward(reward, stats, request_now())


def _values(body: Any, names: set[str]) -> dict[str, Any]:
    """The request's fields as the domain takes them."""
    values = {name: getattr(body, name) for name in names}
    if values.get("amount") is not None:
        values["amount"] = Decimal(values["amount"])
    if "tiers" in values:
        values["tiers"] = frozenset(values["tiers"])
    return values


@endpoint(
    bp,
    "/rewards",
    "POST",
    summary="Add a reward to the catalog",
    description=(
        "Adds a reward to the catalog (a gift card, a discount, a product, a charity donation...) with "
        "its points cost and, for coupons, where the codes come from (generated or an uploaded pool). Not "
        "idempotent: each call adds a reward."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.rewards.CreateRewardRequest,
    response=schemas.rewards.RewardOut,
)
def create_reward(request: ApiRequest) -> RewardOut:
    from chalicelib.api.schemas.rewards import CreateRewardRequest

    service = _rewards(request)
    body: CreateRewardRequest = request.body
    reward = service.create(**_values(body, set(CreateRewardRequest.model_fields)))
    logger.info("reward created", extra={"reward_id": reward.reward_id, "type": str(reward.type)})
    return _out(service, reward)


@endpoint(
    bp,
    "/rewards",
    "GET",
    summary="The catalog, archived rewards included",
    description="The whole catalog, archived rewards included, with their stock and status.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.rewards.RewardList,
)
def list_rewards(request: ApiRequest) -> RewardList:
    from chalicelib.api.presenters import rewards as presenters
    from chalicelib.api.schemas.rewards import RewardList

    service = _rewards(request)
    page = service.list(limit=request.query.limit, cursor=request.query.cursor)
    now = request_now()
    data = [presenters.reward(r, s, now) for r, s in zip(page.items, service.stats(page.items), strict=True)]
    return RewardList(data=data, next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/rewards/{reward_id}",
    "GET",
    summary="One reward, with its coupons issued, stock left and (charity) its cause's total",
    description=(
        "One reward, with its coupons issued, its stock left and, for a charity, its cause's total. 404 "
        "if it is not this tenant's."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.rewards.RewardOut,
)
def get_reward(request: ApiRequest, reward_id: str) -> RewardOut:
    service = _rewards(request)
    return _out(service, service.get(reward_id))


@endpoint(
    bp,
    "/rewards/{reward_id}",
    "PATCH",
    summary="Change a reward (not its type or code source)",
    description=(
        "Changes the fields sent of a reward (name, points cost, stock, availability...). Its type and "
        "code source cannot change."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.rewards.UpdateRewardRequest,
    response=schemas.rewards.RewardOut,
)
def update_reward(request: ApiRequest, reward_id: str) -> RewardOut:
    service = _rewards(request)
    body: UpdateRewardRequest = request.body
    return _out(service, service.update(reward_id, _values(body, set(body.model_fields_set))))


@endpoint(
    bp,
    "/rewards/{reward_id}/codes",
    "POST",
    summary="Upload codes to a pool reward (409 coupon_code_exists if any exists already)",
    description=(
        "Adds codes to a pool reward's stock. All or nothing: 409 `coupon_code_exists` if any code exists "
        "already (none is added), 422 `code_pool_not_used` if the reward generates its codes."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.rewards.UploadCodesRequest,
    response=schemas.rewards.UploadCodesOut,
    errors=(CouponCodeExists, CodePoolNotUsed),
)
def upload_reward_codes(request: ApiRequest, reward_id: str) -> UploadCodesOut:
    from chalicelib.api.presenters import rewards as presenters

    body: UploadCodesRequest = request.body
    added = _rewards(request).add_codes(reward_id, list(body.codes))
    logger.info("pool codes added", extra={"reward_id": reward_id, "added": added})
    return presenters.uploaded_codes(reward_id, added)


@endpoint(
    bp,
    "/members/{member_id}/rewards/{reward_id}/redeem",
    "POST",
    summary="Redeem a reward: debit its points, take one of its stock and issue a coupon, at once",
    description=(
        "Redeems a reward for a member in one transaction: debits its points, takes one from its stock "
        "and issues a coupon. Requires an `Idempotency-Key`: a retry answers the same coupon. Refused "
        "when the reward is unavailable or out of stock, or the balance is short."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    response=schemas.rewards.RedemptionOut,
    idempotency_key=True,
    errors=(RewardUnavailable, OutOfStock, InsufficientPoints, MovementTooLarge),
)
def redeem_reward(request: ApiRequest, member_id: str, reward_id: str) -> Result:
    from chalicelib.api.presenters import rewards as presenters

    redemption = _rewards(request).redeem(
        member_id, reward_id, request.idempotency_key or "", actor_key_id=request.tenant.key_id
    )
    if not redemption.replayed:
        logger.info("reward redeemed", extra={"reward_id": reward_id, "member_id": member_id})
        metrics.add_metric(name="RewardRedeemedCount", unit="Count", value=1)
    return Result.replayable(presenters.redemption(redemption, request_now()), replayed=redemption.replayed)


@endpoint(
    bp,
    "/members/{member_id}/rewards",
    "GET",
    summary="The rewards, each redeemable by this member now or with what locks it",
    description=(
        "The catalog as this member sees it: each reward redeemable now, or what locks it (points short, tier, stock)."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.rewards.MemberRewardList,
)
def list_member_rewards(request: ApiRequest, member_id: str) -> MemberRewardList:
    from chalicelib.api.presenters import rewards as presenters

    query = request.query
    return presenters.member_rewards(
        _rewards(request), member_id, limit=query.limit, cursor=query.cursor, now=request_now()
    )


@endpoint(
    bp,
    "/members/{member_id}/coupons",
    "GET",
    summary="The member's coupons, newest first",
    description="The member's coupons, newest first, with their status.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.rewards.CouponList,
)
def list_member_coupons(request: ApiRequest, member_id: str) -> CouponList:
    from chalicelib.api.presenters import rewards as presenters
    from chalicelib.api.schemas.rewards import CouponList

    page = _rewards(request).member_coupons(member_id, limit=request.query.limit, cursor=request.query.cursor)
    now = request_now()
    return CouponList(data=[presenters.coupon(c, now) for c in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/coupons/{code}",
    "GET",
    summary="One coupon (status issued, used, expired or cancelled)",
    description=(
        "One coupon by its code: its reward, member and status (issued, used, expired or cancelled). 404 "
        "if it is not this tenant's."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.rewards.CouponOut,
)
def get_coupon(request: ApiRequest, code: str) -> CouponOut:
    from chalicelib.api.presenters import rewards as presenters

    return presenters.coupon(_rewards(request).coupon(code), request_now())


@endpoint(
    bp,
    "/coupons/{code}/use",
    "POST",
    summary="Mark a coupon used (same key again: replayed; otherwise 409 coupon_not_usable)",
    description=(
        "Marks an issued coupon used (at a till or a checkout). Requires an `Idempotency-Key`: the same "
        "key again answers the first result; any other use of a used, expired or cancelled coupon is 409 "
        "`coupon_not_usable`. The use writes its `coupon.used` event (once per coupon) in the same transaction."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.rewards.UseCouponRequest,
    response=schemas.rewards.CouponOut,
    idempotency_key=True,
    errors=(CouponNotUsable,),
)
def use_coupon(request: ApiRequest, code: str) -> Result:
    from chalicelib.api.presenters import rewards as presenters

    body: UseCouponRequest = request.body
    used = _rewards(request).use(code, request.idempotency_key or "", body.reference)
    if not used.replayed:
        logger.info("coupon used", extra={"reward_id": used.coupon.reward_id})
    return Result.replayable(presenters.coupon(used.coupon, request_now()), replayed=used.replayed)


@endpoint(
    bp,
    "/coupons/{code}/cancel",
    "POST",
    summary="Cancel an issued coupon and give its points back, once (409 coupon_not_usable if used)",
    description=(
        "Cancels an issued coupon and gives its points back to the member, once. Requires an "
        "`Idempotency-Key`. 409 `coupon_not_usable` if it was used or cancelled already."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.rewards.RedemptionOut,
    idempotency_key=True,
    errors=(CouponNotUsable, BalanceLimitExceeded),
)
def cancel_coupon(request: ApiRequest, code: str) -> Result:
    from chalicelib.api.presenters import rewards as presenters

    cancelled = _rewards(request).cancel(code, request.idempotency_key or "", actor_key_id=request.tenant.key_id)
    if not cancelled.replayed:
        logger.info("coupon cancelled", extra={"reward_id": cancelled.coupon.reward_id})
    return Result.replayable(presenters.redemption(cancelled, request_now()), replayed=cancelled.replayed)


@endpoint(
    bp,
    "/rewards/{reward_id}/archive",
    "POST",
    summary="Archive a reward: no new coupons (issued ones stay usable); rewards are never deleted",
    description=("Archives a reward: no new coupons are issued, those issued stay usable. Rewards are never deleted."),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.rewards.RewardOut,
)
def archive_reward(request: ApiRequest, reward_id: str) -> RewardOut:
    service = _rewards(request)
    return _out(service, service.archive(reward_id))
