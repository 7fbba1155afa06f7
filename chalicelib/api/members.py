"""Members: enrolment, look-up and profile changes."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import REPLAYED_HEADER, ApiRequest, Result, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.members import MemberChanges, NewMember

bp = Blueprint(__name__)
TAG = "Members"


@endpoint(
    bp,
    "/members",
    "POST",
    summary="Enrol a member",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.CreateMemberRequest,
    response=schemas.MemberOut,
    optional_idempotency_key=True,
    response_headers=((REPLAYED_HEADER, "`true` when this answer replays an earlier request's (same key)."),),
)
def create_member(request: ApiRequest) -> Result:
    body: schemas.CreateMemberRequest = request.body
    enrolment = request.services.for_tenant(request.tenant).members.enrol_once(
        NewMember(
            external_id=body.external_id,
            email=body.email,
            name=body.name,
            birthday=body.birthday,
            marketing_consent=body.marketing_consent,
            card_code=body.card_code,
            referral_code=body.referral_code,
            segments=frozenset(body.segments),
        ),
        request.idempotency_key,
    )
    return Result.replayable(presenters.member(enrolment.member), replayed=enrolment.replayed)


@endpoint(
    bp,
    "/members",
    "GET",
    summary="List members, or find one by external_id, referral_code or card_code",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.MemberListQuery,
    response=schemas.MemberList,
)
def list_members(request: ApiRequest) -> schemas.MemberList:
    query: schemas.MemberListQuery = request.query
    members = request.services.for_tenant(request.tenant).members
    identifiers = {
        name: getattr(query, name)
        for name in ("external_id", "referral_code", "card_code")
        if getattr(query, name) is not None
    }
    if identifiers:
        found = members.find(**identifiers)
        return schemas.MemberList(data=[presenters.member(found)] if found else [], next_cursor=None)
    page = members.list(limit=query.limit, cursor=query.cursor)
    return schemas.MemberList(data=[presenters.member(m) for m in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}",
    "GET",
    summary="Get a member",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.MemberOut,
)
def get_member(request: ApiRequest, member_id: str) -> schemas.MemberOut:
    return presenters.member(request.services.for_tenant(request.tenant).members.get(member_id))


@endpoint(
    bp,
    "/members/{member_id}",
    "PATCH",
    summary="Change a member's profile",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.UpdateMemberRequest,
    response=schemas.MemberOut,
)
def update_member(request: ApiRequest, member_id: str) -> schemas.MemberOut:
    body: schemas.UpdateMemberRequest = request.body
    changes = MemberChanges(
        fields_set=frozenset(body.model_fields_set),
        email=body.email,
        name=body.name,
        birthday=body.birthday,
        marketing_consent=body.marketing_consent,
        card_code=body.card_code,
        segments=frozenset(body.segments) if body.segments is not None else None,
    )
    return presenters.member(request.services.for_tenant(request.tenant).members.update(member_id, changes))
