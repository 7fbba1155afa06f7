"""The rewards catalog, redemptions and coupons.

(Archiving is declared last: the route security matrix calls every operation in declaration
order with one sample reward, and an archived reward is no longer redeemable.)

A redemption is a point movement (Idempotency-Key required): its debit, the reward's stock
and the member's limit, and the coupon are written in one transaction. Using a coupon is
idempotent under its key; cancelling one gives its points back, once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, Result, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.clock import utc_now
from chalicelib.domain.rewards import Reward, RewardService
from chalicelib.observability import logger, metrics

bp = Blueprint(__name__)
TAG = "Rewards"


def _rewards(request: ApiRequest) -> RewardService:
    return request.services.for_tenant(request.tenant).rewards


def _out(service: RewardService, reward: Reward) -> schemas.RewardOut:
    (stats,) = service.stats([reward])
    return presenters.reward(reward, stats, utc_now())


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
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.CreateRewardRequest,
    response=schemas.RewardOut,
)
def create_reward(request: ApiRequest) -> schemas.RewardOut:
    service = _rewards(request)
    body: schemas.CreateRewardRequest = request.body
    reward = service.create(**_values(body, set(schemas.CreateRewardRequest.model_fields)))
    logger.info("reward created", extra={"reward_id": reward.reward_id, "type": str(reward.type)})
    return _out(service, reward)


@endpoint(
    bp,
    "/rewards",
    "GET",
    summary="The catalog, archived rewards included",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.RewardList,
)
def list_rewards(request: ApiRequest) -> schemas.RewardList:
    service = _rewards(request)
    page = service.list(limit=request.query.limit, cursor=request.query.cursor)
    now = utc_now()
    data = [presenters.reward(r, s, now) for r, s in zip(page.items, service.stats(page.items), strict=True)]
    return schemas.RewardList(data=data, next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/rewards/{reward_id}",
    "GET",
    summary="One reward, with its coupons issued, stock left and (charity) its cause's total",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.RewardOut,
)
def get_reward(request: ApiRequest, reward_id: str) -> schemas.RewardOut:
    service = _rewards(request)
    return _out(service, service.get(reward_id))


@endpoint(
    bp,
    "/rewards/{reward_id}",
    "PATCH",
    summary="Change a reward (not its type or code source)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.UpdateRewardRequest,
    response=schemas.RewardOut,
)
def update_reward(request: ApiRequest, reward_id: str) -> schemas.RewardOut:
    service = _rewards(request)
    body: schemas.UpdateRewardRequest = request.body
    return _out(service, service.update(reward_id, _values(body, set(body.model_fields_set))))


@endpoint(
    bp,
    "/rewards/{reward_id}/codes",
    "POST",
    summary="Upload codes to a pool reward (409 coupon_code_exists if any exists already)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.UploadCodesRequest,
    response=schemas.UploadCodesOut,
)
def upload_reward_codes(request: ApiRequest, reward_id: str) -> schemas.UploadCodesOut:
    body: schemas.UploadCodesRequest = request.body
    added = _rewards(request).add_codes(reward_id, list(body.codes))
    logger.info("pool codes added", extra={"reward_id": reward_id, "added": added})
    return presenters.uploaded_codes(reward_id, added)


@endpoint(
    bp,
    "/members/{member_id}/rewards/{reward_id}/redeem",
    "POST",
    summary="Redeem a reward: debit its points, take one of its stock and issue a coupon, at once",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    response=schemas.RedemptionOut,
    idempotency_key=True,
)
def redeem_reward(request: ApiRequest, member_id: str, reward_id: str) -> Result:
    redemption = _rewards(request).redeem(
        member_id, reward_id, request.idempotency_key or "", actor_key_id=request.tenant.key_id
    )
    if not redemption.replayed:
        logger.info("reward redeemed", extra={"reward_id": reward_id, "member_id": member_id})
        metrics.add_metric(name="RewardRedeemedCount", unit="Count", value=1)
    return Result.replayable(presenters.redemption(redemption, utc_now()), replayed=redemption.replayed)


@endpoint(
    bp,
    "/members/{member_id}/rewards",
    "GET",
    summary="The rewards, each redeemable by this member now or with what locks it",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.MemberRewardList,
)
def list_member_rewards(request: ApiRequest, member_id: str) -> schemas.MemberRewardList:
    service = _rewards(request)
    available, page = service.for_member(member_id, limit=request.query.limit, cursor=request.query.cursor)
    stats = service.stats([eligibility.reward for eligibility in page.items])
    now = utc_now()
    return schemas.MemberRewardList(
        member_id=member_id,
        available_points=available,
        data=[presenters.member_reward(e, s, now) for e, s in zip(page.items, stats, strict=True)],
        next_cursor=page.next_cursor,
    )


@endpoint(
    bp,
    "/members/{member_id}/coupons",
    "GET",
    summary="The member's coupons, newest first",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.CouponList,
)
def list_member_coupons(request: ApiRequest, member_id: str) -> schemas.CouponList:
    page = _rewards(request).member_coupons(member_id, limit=request.query.limit, cursor=request.query.cursor)
    now = utc_now()
    return schemas.CouponList(data=[presenters.coupon(c, now) for c in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/coupons/{code}",
    "GET",
    summary="One coupon (status issued, used, expired or cancelled)",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.CouponOut,
)
def get_coupon(request: ApiRequest, code: str) -> schemas.CouponOut:
    return presenters.coupon(_rewards(request).coupon(code), utc_now())


@endpoint(
    bp,
    "/coupons/{code}/use",
    "POST",
    summary="Mark a coupon used (same key again: replayed; otherwise 409 coupon_not_usable)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.UseCouponRequest,
    response=schemas.CouponOut,
    idempotency_key=True,
)
def use_coupon(request: ApiRequest, code: str) -> Result:
    body: schemas.UseCouponRequest = request.body
    used = _rewards(request).use(code, request.idempotency_key or "", body.reference)
    if not used.replayed:
        logger.info("coupon used", extra={"reward_id": used.coupon.reward_id})
    return Result.replayable(presenters.coupon(used.coupon, utc_now()), replayed=used.replayed)


@endpoint(
    bp,
    "/coupons/{code}/cancel",
    "POST",
    summary="Cancel an issued coupon and give its points back, once (409 coupon_not_usable if used)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.RedemptionOut,
    idempotency_key=True,
)
def cancel_coupon(request: ApiRequest, code: str) -> Result:
    cancelled = _rewards(request).cancel(code, request.idempotency_key or "", actor_key_id=request.tenant.key_id)
    if not cancelled.replayed:
        logger.info("coupon cancelled", extra={"reward_id": cancelled.coupon.reward_id})
    return Result.replayable(presenters.redemption(cancelled, utc_now()), replayed=cancelled.replayed)


@endpoint(
    bp,
    "/rewards/{reward_id}/archive",
    "POST",
    summary="Archive a reward: no new coupons (issued ones stay usable); rewards are never deleted",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.RewardOut,
)
def archive_reward(request: ApiRequest, reward_id: str) -> schemas.RewardOut:
    service = _rewards(request)
    return _out(service, service.archive(reward_id))
