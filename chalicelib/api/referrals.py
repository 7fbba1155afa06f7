"""Referrals: the program's versions, a referrer's referrals, and referral codes for members
enrolled before codes existed. (Enrolment with a referral code is ``POST /v1/members``.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.clock import request_now
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.members import MemberOut
    from chalicelib.api.schemas.referrals import (
        ReferralList,
        ReferralProgramList,
        ReferralProgramOut,
        ReferralProgramRequest,
    )
    from chalicelib.domain.members import MemberService
    from chalicelib.domain.referrals import ReferralService

bp = Blueprint(__name__)
TAG = "Referrals"


def _referrals(request: ApiRequest) -> ReferralService:
    service = request.services.for_tenant(request.tenant).referrals
    assert service is not None
    return service


def _exists(members: MemberService, member_id: str) -> bool:
    try:
        members.get(member_id)
    except NotFound:
        return False
    return True


@endpoint(
    bp,
    "/program/referrals",
    "PUT",
    summary="Configure referrals: a new version, in force from effective_from (versions are never deleted)",
    description=(
        "Configures referrals (the rewards of the referrer and of the referred member, and what qualifies "
        "a referral) as a new version in force from `effective_from`. Versions are never deleted: each "
        "referral is judged by the version of its time."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.referrals.ReferralProgramRequest,
    response=schemas.referrals.ReferralProgramOut,
)
def put_referral_program(request: ApiRequest) -> ReferralProgramOut:
    from chalicelib.api.presenters import referrals as presenters
    from chalicelib.domain.program import parse_amount
    from chalicelib.domain.referrals import CapPeriod, NewReferralProgram, ReferralCap

    body: ReferralProgramRequest = request.body
    minimum = None
    if body.min_order_total is not None:
        try:
            minimum = parse_amount(body.min_order_total, request.tenant.tenant.currency)
        except InvalidRequest as error:
            raise InvalidRequest.for_fields(
                error.message, *(("min_order_total", f["message"], f["type"]) for f in error.details["fields"])
            ) from None
    referrals = _referrals(request)
    version = referrals.configure(
        NewReferralProgram(
            enabled=body.enabled,
            referrer_points=body.referrer_points,
            referee_points=body.referee_points,
            min_order_total=minimum,
            cap=ReferralCap(body.cap.limit, CapPeriod(body.cap.per)) if body.cap else None,
            referee_rewarded_when_capped=body.referee_rewarded_when_capped,
            effective_from=body.effective_from,
        )
    )
    now = request_now()
    return presenters.referral_program(version, referrals.in_force(now), now)


@endpoint(
    bp,
    "/program/referrals",
    "GET",
    summary="Every version of the referral program, oldest first, with the one in force",
    description="Every version of the referral program, oldest first, and the one in force now.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.referrals.ReferralProgramList,
)
def list_referral_programs(request: ApiRequest) -> ReferralProgramList:
    from chalicelib.api.presenters import referrals as presenters
    from chalicelib.api.schemas.referrals import ReferralProgramList

    referrals = _referrals(request)
    now = request_now()
    in_force = referrals.in_force(now)
    return ReferralProgramList(data=[presenters.referral_program(v, in_force, now) for v in referrals.versions()])


@endpoint(
    bp,
    "/members/{member_id}/referrals",
    "GET",
    summary="The members this member referred, newest first, with each referral's status and rewards",
    description=(
        "The members this member referred, newest first, with each referral's status (pending, qualified, "
        "completed, capped) and the points it gave."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.referrals.ReferralList,
)
def list_member_referrals(request: ApiRequest, member_id: str) -> ReferralList:
    from chalicelib.api.presenters import referrals as presenters
    from chalicelib.api.schemas.referrals import ReferralList

    services = request.services.for_tenant(request.tenant)
    page = _referrals(request).list(
        member_id,
        limit=request.query.limit,
        cursor=request.query.cursor,
        exists=lambda m: _exists(services.members, m),
    )
    return ReferralList(data=[presenters.referral(r) for r in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}/referral-code",
    "POST",
    summary="Give a member enrolled before referral codes its code (idempotent: a member keeps its code)",
    description=(
        "Gives its referral code to a member enrolled before referral codes existed. Idempotent: a member "
        "keeps its code, and calling again answers the same member."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.members.MemberOut,
)
def assign_referral_code(request: ApiRequest, member_id: str) -> MemberOut:
    from chalicelib.api.presenters import members as presenters

    return presenters.member(request.services.for_tenant(request.tenant).members.assign_referral_code(member_id))
