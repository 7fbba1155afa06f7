"""Challenges and badges: the brand's challenges (goals over a window, rewarded with points or
a badge), and each member's progress and badges.

Progress moves with the movements themselves (chalicelib.domain.steps.challenges): these
routes define challenges and read where members stand. (Archiving is declared last: the
route security matrix calls every operation in declaration order with one sample challenge.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.errors import LimitReached
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.api.schemas.challenges import (
        BadgeIn,
        ChallengeList,
        ChallengeOut,
        CreateChallengeRequest,
        MemberBadgeList,
        MemberChallengeList,
        UpdateChallengeRequest,
    )
    from chalicelib.domain.challenges import Badge, ChallengeService

bp = Blueprint(__name__)
TAG = "Challenges"


def _challenges(request: ApiRequest) -> ChallengeService:
    return request.services.for_tenant(request.tenant).challenges


def _badge(body: BadgeIn | None) -> Badge | None:
    from chalicelib.domain.challenges import Badge

    return Badge(body.id, body.name, body.description) if body is not None else None


def _values(body: Any, names: set[str]) -> dict[str, Any]:
    """The request's fields as the domain takes them."""
    values = {name: getattr(body, name) for name in names}
    if "goal" in values:
        values["goal"] = Decimal(values["goal"])
    if "badge" in values:
        values["badge"] = _badge(values["badge"])
    for name in ("tiers", "segments"):
        if name in values:
            values[name] = frozenset(values[name])
    return values


@endpoint(
    bp,
    "/challenges",
    "POST",
    summary="Set a challenge: a goal over a window, rewarded with points, a badge or both",
    description=(
        "Adds a challenge: a goal over a window (`orders`, `spend`, `activities` of one type, or a `streak` of "
        "weeks or months with an order), open to every member or to some tiers or segments. Members' progress "
        "moves in the transaction of each movement that advances it; completion credits `reward_points` with "
        "the completing movement and awards the `badge`, once, and announces `challenge.completed` and "
        "`badge.awarded`. 422 `limit_reached` when 8 challenges are open already. Not idempotent: each call "
        "adds a challenge."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.challenges.CreateChallengeRequest,
    response=schemas.challenges.ChallengeOut,
    errors=(LimitReached,),
)
def create_challenge(request: ApiRequest) -> ChallengeOut:
    from chalicelib.api.presenters import challenges as presenters
    from chalicelib.api.schemas.challenges import CreateChallengeRequest

    body: CreateChallengeRequest = request.body
    challenge = _challenges(request).create(**_values(body, set(CreateChallengeRequest.model_fields)))
    logger.info("challenge created", extra={"challenge_id": challenge.challenge_id, "kind": str(challenge.kind)})
    return presenters.challenge(challenge)


@endpoint(
    bp,
    "/challenges",
    "GET",
    summary="The brand's challenges, archived ones included",
    description="Every challenge of the brand, archived and ended ones included, oldest first.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.challenges.ChallengeList,
)
def list_challenges(request: ApiRequest) -> ChallengeList:
    from chalicelib.api.presenters import challenges as presenters
    from chalicelib.api.schemas.challenges import ChallengeList

    return ChallengeList(data=[presenters.challenge(c) for c in _challenges(request).all()])


@endpoint(
    bp,
    "/challenges/{challenge_id}",
    "GET",
    summary="One challenge",
    description="One challenge. 404 if it is not this tenant's.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.challenges.ChallengeOut,
)
def get_challenge(request: ApiRequest, challenge_id: str) -> ChallengeOut:
    from chalicelib.api.presenters import challenges as presenters

    return presenters.challenge(_challenges(request).get(challenge_id))


@endpoint(
    bp,
    "/challenges/{challenge_id}",
    "PATCH",
    summary="Change a challenge (not its kind, goal or start)",
    description=(
        "Changes the fields sent of a challenge: its name, description, end, reward and audience. Its kind, "
        "goal and start are fixed, and the progress members made stays. 422 `limit_reached` when reopening "
        "an ended challenge would make 9 open."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.challenges.UpdateChallengeRequest,
    response=schemas.challenges.ChallengeOut,
    errors=(LimitReached,),
)
def update_challenge(request: ApiRequest, challenge_id: str) -> ChallengeOut:
    from chalicelib.api.presenters import challenges as presenters

    body: UpdateChallengeRequest = request.body
    return presenters.challenge(_challenges(request).update(challenge_id, _values(body, set(body.model_fields_set))))


@endpoint(
    bp,
    "/members/{member_id}/challenges",
    "GET",
    summary="The member's challenges with their progress",
    description=(
        "The challenges open to the member now (by tier and segment), and every challenge they made progress "
        "in (ended, archived and completed ones included), each with the member's progress."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.challenges.MemberChallengeList,
)
def list_member_challenges(request: ApiRequest, member_id: str) -> MemberChallengeList:
    from chalicelib.api.presenters import challenges as presenters

    return presenters.member_challenges(_challenges(request), member_id)


@endpoint(
    bp,
    "/members/{member_id}/badges",
    "GET",
    summary="The member's badges, oldest first",
    description="The badges the member holds, each once, with the challenge that awarded it, oldest first.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.challenges.MemberBadgeList,
)
def list_member_badges(request: ApiRequest, member_id: str) -> MemberBadgeList:
    from chalicelib.api.presenters import challenges as presenters

    return presenters.member_badges(_challenges(request), member_id)


@endpoint(
    bp,
    "/challenges/{challenge_id}/archive",
    "POST",
    summary="Archive a challenge: it counts no more; members' progress and badges stay",
    description=(
        "Archives a challenge: no movement advances it any more; the progress members made and the badges "
        "it awarded stay. Archiving an archived challenge answers it unchanged. Challenges are never deleted."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.challenges.ChallengeOut,
)
def archive_challenge(request: ApiRequest, challenge_id: str) -> ChallengeOut:
    from chalicelib.api.presenters import challenges as presenters

    challenge = _challenges(request).archive(challenge_id)
    logger.info("challenge archived", extra={"challenge_id": challenge_id})
    return presenters.challenge(challenge)
