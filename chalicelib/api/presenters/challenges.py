"""Challenges, members' progress and badges -> response schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalicelib.domain.challenges import ChallengeKind
from chalicelib.domain.tiers import SPEND_SCALE

if TYPE_CHECKING:
    from chalicelib.api.schemas.challenges import (
        BadgeOut,
        ChallengeOut,
        MemberBadgeList,
        MemberBadgeOut,
        MemberChallengeList,
        MemberChallengeOut,
        ProgressOut,
    )
    from chalicelib.domain.challenges import Badge, BadgeAward, Challenge, ChallengeService, Progress


def badge(value: Badge) -> BadgeOut:
    from chalicelib.api.schemas.challenges import BadgeOut

    return BadgeOut(id=value.badge_id, name=value.name, description=value.description)


def challenge(value: Challenge) -> ChallengeOut:
    from chalicelib.api.schemas.challenges import ChallengeOut

    return ChallengeOut(
        id=value.challenge_id,
        name=value.name,
        description=value.description,
        kind=value.kind,
        goal=format(value.goal, "f"),
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        activity=value.activity,
        period=value.period,
        grace=value.grace,
        reward_points=value.reward_points,
        badge=badge(value.badge) if value.badge is not None else None,
        tiers=sorted(value.tiers),
        segments=sorted(value.segments),
        status=value.status,
        created_at=value.created_at,
        updated_at=value.updated_at,
    )


def progress(of: Challenge, value: Progress) -> ProgressOut:
    from chalicelib.api.schemas.challenges import ProgressOut

    if of.kind is ChallengeKind.SPEND:
        shown = format((Decimal(value.value) / SPEND_SCALE).normalize(), "f")
    else:
        shown = str(value.value)
    done = value.completed_at is not None
    percent = 100 if done else min(99, value.value * 100 // max(1, of.target))
    return ProgressOut(
        value=shown,
        goal=format(of.goal, "f"),
        percent=percent,
        completed=done,
        completed_at=value.completed_at,
        updated_at=value.updated_at,
    )


def member_challenge(of: Challenge, value: Progress) -> MemberChallengeOut:
    from chalicelib.api.schemas.challenges import MemberChallengeOut

    return MemberChallengeOut(challenge=challenge(of), progress=progress(of, value))


def member_badge(value: BadgeAward) -> MemberBadgeOut:
    from chalicelib.api.schemas.challenges import MemberBadgeOut

    return MemberBadgeOut(badge=badge(value.badge), challenge_id=value.challenge_id, awarded_at=value.awarded_at)


def member_challenges(service: ChallengeService, member_id: str) -> MemberChallengeList:
    """The challenges ``member_id`` sees, each with their progress."""
    from chalicelib.api.schemas.challenges import MemberChallengeList

    shown = service.for_member(member_id)
    return MemberChallengeList(member_id=member_id, data=[member_challenge(c, p) for c, p in shown])


def member_badges(service: ChallengeService, member_id: str) -> MemberBadgeList:
    """The badges ``member_id`` holds, oldest first."""
    from chalicelib.api.schemas.challenges import MemberBadgeList

    return MemberBadgeList(member_id=member_id, data=[member_badge(a) for a in service.badges(member_id)])
