"""The tenant's event feed, pulled by integrations with a cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.events import EventList, EventQuery

bp = Blueprint(__name__)


@endpoint(
    bp,
    "/events",
    "GET",
    summary="Events in order (member.created, points.*), from a cursor",
    description=(
        "The tenant's events in order (member.created, points.earned, points.redeemed...), from a cursor: "
        "pass `next_cursor` back as `cursor` to read on. A poller that keeps its cursor sees every event "
        "once, in order. Reads only."
    ),
    tag="Events",
    auth="tenant",
    scope=Scope.READ,
    query=schemas.events.EventQuery,
    response=schemas.events.EventList,
)
def list_events(request: ApiRequest) -> EventList:
    from chalicelib.api.presenters import events as presenters
    from chalicelib.api.schemas.events import EventList

    query: EventQuery = request.query
    page = request.services.for_tenant(request.tenant).feed.read(
        after=query.after, types=frozenset({query.type}) if query.type else frozenset(), limit=query.limit
    )
    return EventList(data=[presenters.event(e) for e in page.events], next_cursor=page.next_cursor)
