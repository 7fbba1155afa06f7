"""Referrals: the program's versions, a referrer's referrals, and referral codes for members
enrolled before codes existed. (Enrolment with a referral code is ``POST /v1/members``.)"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.clock import utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.members import MemberService
from chalicelib.domain.program import parse_amount
from chalicelib.domain.referrals import (
    CapPeriod,
    NewReferralProgram,
    ReferralCap,
    ReferralService,
)

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
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.ReferralProgramRequest,
    response=schemas.ReferralProgramOut,
)
def put_referral_program(request: ApiRequest) -> schemas.ReferralProgramOut:
    body: schemas.ReferralProgramRequest = request.body
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
    now = utc_now()
    return presenters.referral_program(version, referrals.in_force(now), now)


@endpoint(
    bp,
    "/program/referrals",
    "GET",
    summary="Every version of the referral program, oldest first, with the one in force",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.ReferralProgramList,
)
def list_referral_programs(request: ApiRequest) -> schemas.ReferralProgramList:
    referrals = _referrals(request)
    now = utc_now()
    in_force = referrals.in_force(now)
    return schemas.ReferralProgramList(
        data=[presenters.referral_program(v, in_force, now) for v in referrals.versions()]
    )


@endpoint(
    bp,
    "/members/{member_id}/referrals",
    "GET",
    summary="The members this member referred, newest first, with each referral's status and rewards",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.ListQuery,
    response=schemas.ReferralList,
)
def list_member_referrals(request: ApiRequest, member_id: str) -> schemas.ReferralList:
    services = request.services.for_tenant(request.tenant)
    page = _referrals(request).list(
        member_id,
        limit=request.query.limit,
        cursor=request.query.cursor,
        exists=lambda m: _exists(services.members, m),
    )
    return schemas.ReferralList(data=[presenters.referral(r) for r in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}/referral-code",
    "POST",
    summary="Give a member enrolled before referral codes its code (idempotent: a member keeps its code)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    response=schemas.MemberOut,
)
def assign_referral_code(request: ApiRequest, member_id: str) -> schemas.MemberOut:
    return presenters.member(request.services.for_tenant(request.tenant).members.assign_referral_code(member_id))
