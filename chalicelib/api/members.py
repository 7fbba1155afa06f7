"""Members: enrolment, look-up and profile changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import REPLAYED_HEADER, ApiRequest, Result, endpoint, schemas
from chalicelib.domain.errors import CardCodeTaken, MemberExists, SelfReferral, UnknownReferralCode
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.members import (
        CreateMemberRequest,
        MemberList,
        MemberListQuery,
        MemberOut,
        UpdateMemberRequest,
    )

bp = Blueprint(__name__)
TAG = "Members"


@endpoint(
    bp,
    "/members",
    "POST",
    summary="Enrol a member",
    description=(
        "Enrols a member (with an optional external id, email, card code, referral code of the member who "
        "referred them). Answers 201 with the member. Send an `Idempotency-Key` whenever the request may "
        "be retried: the retry then answers the first result; without one, a retry with the same "
        "`external_id` is 409 `member_exists`. Refused when the card code is taken, or the referral code "
        "unknown or the member's own."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    status=201,
    body=schemas.members.CreateMemberRequest,
    response=schemas.members.MemberOut,
    optional_idempotency_key=True,
    response_headers=((REPLAYED_HEADER, "`true` when this answer replays an earlier request's (same key)."),),
    errors=(MemberExists, CardCodeTaken, UnknownReferralCode, SelfReferral),
)
def create_member(request: ApiRequest) -> Result:
    from chalicelib.api.presenters import members as presenters
    from chalicelib.domain.members import NewMember

    body: CreateMemberRequest = request.body
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
    description=(
        "Members, a page at a time (pass `next_cursor` back as `cursor`), or the one member found by "
        "`external_id`, `referral_code` or `card_code`. Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.members.MemberListQuery,
    response=schemas.members.MemberList,
)
def list_members(request: ApiRequest) -> MemberList:
    from chalicelib.api.presenters import members as presenters
    from chalicelib.api.schemas.members import MemberList

    query: MemberListQuery = request.query
    members = request.services.for_tenant(request.tenant).members
    identifiers = {
        name: getattr(query, name)
        for name in ("external_id", "referral_code", "card_code")
        if getattr(query, name) is not None
    }
    if identifiers:
        found = members.find(**identifiers)
        return MemberList(data=[presenters.member(found)] if found else [], next_cursor=None)
    page = members.list(limit=query.limit, cursor=query.cursor)
    return MemberList(data=[presenters.member(m) for m in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/members/{member_id}",
    "GET",
    summary="Get a member",
    description="One member's profile. 404 if the member does not exist or is another tenant's.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.members.MemberOut,
)
def get_member(request: ApiRequest, member_id: str) -> MemberOut:
    from chalicelib.api.presenters import members as presenters

    return presenters.member(request.services.for_tenant(request.tenant).members.get(member_id))


@endpoint(
    bp,
    "/members/{member_id}",
    "PATCH",
    summary="Change a member's profile",
    description=(
        "Changes the fields sent of a member's profile (name, email, consent, card code...); fields left "
        "out stay. Idempotent: the same change sent twice leaves the same member. 409 `card_code_taken` "
        "if another member has the card code."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.members.UpdateMemberRequest,
    response=schemas.members.MemberOut,
    errors=(CardCodeTaken,),
)
def update_member(request: ApiRequest, member_id: str) -> MemberOut:
    from chalicelib.api.presenters import members as presenters
    from chalicelib.domain.members import MemberChanges

    body: UpdateMemberRequest = request.body
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
