"""Member access. The brand's side: minting and revoking member tokens, the signing key, the
origins allowed to call the member API. The member's side, the member API: what a member's own
device may read and do with a member token, under ``/brands/{tenant_id}/me``.

Every member route acts on the token's member only: no member id is ever taken from the request.
A redemption runs under the member's own idempotency namespace (``member:<member id>:<key>``), so
one member's keys never meet another's, nor the brand's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import MEMBER_PATH_PREFIX, ApiRequest, Result, endpoint, schemas
from chalicelib.domain.clock import request_now
from chalicelib.domain.errors import InsufficientPoints, MovementTooLarge, OutOfStock, RewardUnavailable
from chalicelib.domain.scopes import MemberScope, Scope
from chalicelib.observability import logger, metrics

if TYPE_CHECKING:
    from chalicelib.api.schemas.challenges import MemberBadgeList, MemberChallengeList
    from chalicelib.api.schemas.member_access import (
        ConsentsOut,
        CreateMemberTokenRequest,
        ExpiringOut,
        ExpiringQuery,
        MemberAccessOut,
        MemberTokenOut,
        MemberTransactionList,
        PutConsentsRequest,
        PutMemberAccessRequest,
        ReferralCodeOut,
        RevokedMemberTokensOut,
    )
    from chalicelib.api.schemas.points import BalanceOut
    from chalicelib.api.schemas.rewards import MemberRewardList
    from chalicelib.domain.member_access import MemberAccessService
    from chalicelib.services import TenantServices

bp = Blueprint(__name__)
TAG = "Member access"
MEMBER_TAG = "Member API"
ME = MEMBER_PATH_PREFIX


def _service(request: ApiRequest) -> MemberAccessService:
    return request.services.for_tenant(request.tenant).member_access


def _services(request: ApiRequest) -> TenantServices:
    """The services of a member route's tenant (the token's)."""
    return request.services.for_tenant_record(request.member.tenant)


@endpoint(
    bp,
    "/members/{member_id}/tokens",
    "POST",
    summary="Mint a short-lived member token for the brand's app or web page",
    description=(
        "Mints a member token: the brand's backend calls this once the customer is signed in to the "
        "brand's own app or site, and hands the token to that app, which calls the member API "
        "(`/v1/brands/{tenant_id}/me/...`) directly from the customer's device. The token reaches only "
        "this member of this brand, with the scopes asked (`member:read`, `member:redeem`, "
        "`member:consents`), for `lifetime_minutes` (default 15, at most 60). It is never stored: mint "
        "another when it expires. Needs the `write` scope (a token can spend the member's points). "
        "Each call mints a new token. 404 if the member does not exist."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.member_access.CreateMemberTokenRequest,
    response=schemas.member_access.MemberTokenOut,
)
def create_member_token(request: ApiRequest, member_id: str) -> MemberTokenOut:
    from chalicelib.api.presenters import member_access as presenters

    body: CreateMemberTokenRequest = request.body
    issued = _service(request).issue(member_id, frozenset(body.scopes), body.lifetime_minutes)
    logger.info("member token minted", extra={"member_id": member_id, "token_id": issued.claims.token_id})
    return presenters.member_token(issued)


@endpoint(
    bp,
    "/members/{member_id}/tokens",
    "DELETE",
    summary="Revoke every token of a member, effective immediately",
    description=(
        "Ends every member token minted so far for this member (a lost phone, a signed-out customer): "
        "from the next request on they answer 401 `token_invalid`. Tokens minted afterwards work. "
        "Idempotent in effect. 404 if the member does not exist."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.member_access.RevokedMemberTokensOut,
)
def revoke_member_tokens(request: ApiRequest, member_id: str) -> RevokedMemberTokensOut:
    from chalicelib.api.schemas.member_access import RevokedMemberTokensOut

    revoked_at = _service(request).revoke_member_tokens(member_id)
    logger.info("member tokens revoked", extra={"member_id": member_id})
    return RevokedMemberTokensOut(member_id=member_id, revoked_at=revoked_at)


@endpoint(
    bp,
    "/member-access",
    "GET",
    summary="The member API settings: allowed origins, signing key",
    description=(
        "The brand's member API settings: the origins whose pages may call it from a browser (CORS), "
        "and the id and date of the key member tokens are signed with (never its secret). Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.member_access.MemberAccessOut,
)
def get_member_access(request: ApiRequest) -> MemberAccessOut:
    from chalicelib.api.presenters import member_access as presenters

    return presenters.member_access(_service(request).settings())


@endpoint(
    bp,
    "/member-access",
    "PUT",
    summary="Set the origins allowed to call the member API from a browser",
    description=(
        "Replaces the list of origins (`https://shop.example.com`, at most 20) whose pages may call the "
        "member API from a browser: a preflight from a listed origin is answered with the CORS headers, "
        "and so is every answer to it; any other origin gets none, and the browser keeps the answer from "
        "the page. Native apps send no origin and need none. Idempotent."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.member_access.PutMemberAccessRequest,
    response=schemas.member_access.MemberAccessOut,
)
def put_member_access(request: ApiRequest) -> MemberAccessOut:
    from chalicelib.api.presenters import member_access as presenters

    body: PutMemberAccessRequest = request.body
    return presenters.member_access(_service(request).set_allowed_origins(body.allowed_origins))


@endpoint(
    bp,
    "/member-access/rotate-key",
    "POST",
    summary="Rotate the member-token signing key: every member token ends at once",
    description=(
        "Puts a new signing key in force for member tokens. Every token minted before is refused from "
        "the next request on (401 `token_invalid`), for every member of the brand: use it when a token "
        "or the key may have leaked. Tokens minted afterwards are signed with the new key. Each call "
        "rotates again."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.member_access.MemberAccessOut,
)
def rotate_member_token_key(request: ApiRequest) -> MemberAccessOut:
    from chalicelib.api.presenters import member_access as presenters

    service = _service(request)
    key = service.rotate_signing_key()
    logger.info("member token signing key rotated", extra={"signing_key_id": key.key_id})
    return presenters.member_access(service.settings(consistent=True))


# --- the member API --------------------------------------------------------------------------------


@endpoint(
    bp,
    f"{ME}/balance",
    "GET",
    summary="My balance, tier and progress",
    description=(
        "The member's own balance: available and pending points, the next expiry, lifetime totals, the "
        "tier with the progress towards the next one, and the paid plan if any. Strongly consistent."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    response=schemas.points.BalanceOut,
)
def get_my_balance(request: ApiRequest, tenant_id: str) -> BalanceOut:
    from chalicelib.api.presenters import points as presenters

    services = _services(request)
    view = services.points.view(request.member.member_id)
    tiers = services.tiers.status(view.balance, possible=request.member.tenant.may_have_tiers)
    plan = services.subscriptions.status(view.balance, tiers) if view.balance.plan else None
    return presenters.balance(view, tiers, plan)


@endpoint(
    bp,
    f"{ME}/expiring",
    "GET",
    summary="My points expiring soon",
    description=(
        "The member's points that expire within `days` (default 30), by expiry moment, soonest first, "
        "and their total: what to spend before it lapses."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    query=schemas.member_access.ExpiringQuery,
    response=schemas.member_access.ExpiringOut,
)
def list_my_expiring_points(request: ApiRequest, tenant_id: str) -> ExpiringOut:
    from chalicelib.api.presenters import member_access as presenters
    from chalicelib.domain.member_access import expiring_within

    query: ExpiringQuery = request.query
    member_id = request.member.member_id
    _, lots = _services(request).points.balance_and_lots(member_id)
    return presenters.expiring(member_id, query.days, expiring_within(lots, request_now(), query.days))


@endpoint(
    bp,
    f"{ME}/transactions",
    "GET",
    summary="My history, newest first",
    description=(
        "The member's own ledger, newest first, a page at a time (pass `next_cursor` back as `cursor`): "
        "each movement with its points, description and the balance after it. The brand's metadata and "
        "idempotency keys are not shown."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    query=schemas.common.ListQuery,
    response=schemas.member_access.MemberTransactionList,
)
def list_my_transactions(request: ApiRequest, tenant_id: str) -> MemberTransactionList:
    from chalicelib.api.presenters import member_access as presenters
    from chalicelib.api.schemas.member_access import MemberTransactionList

    page = _services(request).points.transactions(
        request.member.member_id, limit=request.query.limit, cursor=request.query.cursor
    )
    return MemberTransactionList(
        data=[presenters.member_transaction(e) for e in page.items], next_cursor=page.next_cursor
    )


@endpoint(
    bp,
    f"{ME}/rewards",
    "GET",
    summary="The rewards, each redeemable by me now or with what locks it",
    description=(
        "The catalog as the member sees it: each reward redeemable now, or what locks it (points short, tier, stock)."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    query=schemas.common.ListQuery,
    response=schemas.rewards.MemberRewardList,
)
def list_my_rewards(request: ApiRequest, tenant_id: str) -> MemberRewardList:
    from chalicelib.api.presenters import rewards as presenters

    service, query = _services(request).rewards, request.query
    return presenters.member_rewards(
        service, request.member.member_id, limit=query.limit, cursor=query.cursor, now=request_now()
    )


@endpoint(
    bp,
    f"{ME}/rewards/{{reward_id}}/redeem",
    "POST",
    summary="Redeem a reward for me: debit its points and issue my coupon, at once",
    description=(
        "Redeems a reward for the member in one transaction: debits its points, takes one from its stock "
        "and issues a coupon. Needs the `member:redeem` scope and an `Idempotency-Key` (one per tap of "
        "the button): a retry answers the same coupon. Refused when the reward is unavailable or out of "
        "stock, or the balance is short."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.REDEEM,
    status=201,
    response=schemas.rewards.RedemptionOut,
    idempotency_key=True,
    errors=(RewardUnavailable, OutOfStock, InsufficientPoints, MovementTooLarge),
)
def redeem_my_reward(request: ApiRequest, tenant_id: str, reward_id: str) -> Result:
    from chalicelib.api.presenters import rewards as presenters
    from chalicelib.domain.member_access import MEMBER_KEY_PREFIX

    member = request.member
    key = f"{MEMBER_KEY_PREFIX}{member.member_id}:{request.idempotency_key}"
    redemption = _services(request).rewards.redeem(member.member_id, reward_id, key, actor_key_id=member.actor)
    if not redemption.replayed:
        logger.info("reward redeemed by the member", extra={"reward_id": reward_id, "member_id": member.member_id})
        metrics.add_metric(name="RewardRedeemedCount", unit="Count", value=1)
    return Result.replayable(presenters.redemption(redemption, request_now()), replayed=redemption.replayed)


@endpoint(
    bp,
    f"{ME}/referral-code",
    "GET",
    summary="My referral code",
    description=(
        "The member's own code to refer friends (null until the brand gives one to a member enrolled "
        "before referral codes existed)."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    response=schemas.member_access.ReferralCodeOut,
)
def get_my_referral_code(request: ApiRequest, tenant_id: str) -> ReferralCodeOut:
    from chalicelib.api.presenters import member_access as presenters

    return presenters.referral_code(_services(request).members.get(request.member.member_id))


@endpoint(
    bp,
    f"{ME}/consents",
    "GET",
    summary="My consents",
    description="The member's consents: whether they accept marketing messages.",
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    response=schemas.member_access.ConsentsOut,
)
def get_my_consents(request: ApiRequest, tenant_id: str) -> ConsentsOut:
    from chalicelib.api.presenters import member_access as presenters

    return presenters.consents(_services(request).members.get(request.member.member_id))


@endpoint(
    bp,
    f"{ME}/consents",
    "PUT",
    summary="Change my consents",
    description=(
        "Sets the member's consents (needs the `member:consents` scope). Idempotent: the same change "
        "sent twice leaves the same consents. Marketing notices (`points.expiring_soon`, "
        "`member.birthday`) follow it from the next run of the notify job."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.CONSENTS,
    body=schemas.member_access.PutConsentsRequest,
    response=schemas.member_access.ConsentsOut,
)
def put_my_consents(request: ApiRequest, tenant_id: str) -> ConsentsOut:
    from chalicelib.api.presenters import member_access as presenters
    from chalicelib.domain.members import MemberChanges

    body: PutConsentsRequest = request.body
    changes = MemberChanges(fields_set=frozenset({"marketing_consent"}), marketing_consent=body.marketing)
    member = _services(request).members.update(request.member.member_id, changes)
    logger.info("member consents changed", extra={"member_id": member.member_id})
    return presenters.consents(member)


@endpoint(
    bp,
    f"{ME}/challenges",
    "GET",
    summary="My challenges, each with my progress",
    description=(
        "The brand's challenges open to the member now (by tier and segment), and every challenge they made "
        "progress in (ended, archived and completed ones included), each with the member's progress: what "
        "`GET /v1/members/{member_id}/challenges` answers for this member."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    response=schemas.challenges.MemberChallengeList,
)
def list_my_challenges(request: ApiRequest, tenant_id: str) -> MemberChallengeList:
    from chalicelib.api.presenters import challenges as presenters

    return presenters.member_challenges(_services(request).challenges, request.member.member_id)


@endpoint(
    bp,
    f"{ME}/badges",
    "GET",
    summary="My badges, oldest first",
    description=(
        "The badges the member holds, each once, with the challenge that awarded it, oldest first: what "
        "`GET /v1/members/{member_id}/badges` answers for this member."
    ),
    tag=MEMBER_TAG,
    auth="member",
    scope=MemberScope.READ,
    response=schemas.challenges.MemberBadgeList,
)
def list_my_badges(request: ApiRequest, tenant_id: str) -> MemberBadgeList:
    from chalicelib.api.presenters import challenges as presenters

    return presenters.member_badges(_services(request).challenges, request.member.member_id)
