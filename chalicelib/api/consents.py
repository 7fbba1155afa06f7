"""A member's consents: the flags in force and every change, with its time, source and value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.consents import ConsentsOut

bp = Blueprint(__name__)
TAG = "Members"


@endpoint(
    bp,
    "/members/{member_id}/consents",
    "GET",
    summary="A member's consents and the history of their changes",
    description=(
        "The member's consents in force now, and every change of them, oldest first: when, the value "
        "before and after, and its source (the API key's id and the channel: `api`, or `import` for a "
        "bulk import). A change is recorded in the same transaction as the profile's flag, only when the "
        "value changes (enrolling with `marketing_consent: true`, or a PATCH that grants or withdraws "
        "it). Marketing events (`member.birthday`, `points.expiring_soon`) follow the consent in force "
        "at the moment they are about. 404 if the member is not this tenant's. Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.common.ListQuery,
    response=schemas.consents.ConsentsOut,
)
def list_member_consents(request: ApiRequest, member_id: str) -> ConsentsOut:
    from chalicelib.api.presenters import consents as presenters

    services = request.services.for_tenant(request.tenant)
    member = services.members.get(member_id)
    history = services.consents.history(member.member_id, limit=request.query.limit, cursor=request.query.cursor)
    return presenters.consents(member, history)
