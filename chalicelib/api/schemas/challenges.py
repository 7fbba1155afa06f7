"""Challenges, members' progress and badges."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.api.schemas.common import (
    Description,
    JsonSchema,
    Name,
    Out,
    Segments,
    StrictRequest,
    _decimal,
    _not_null,
)
from chalicelib.api.schemas.rewards import Tiers
from chalicelib.api.schemas.rules import ActivityType
from chalicelib.domain.challenges import ChallengeKind, ChallengeStatus, StreakPeriod
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT

BadgeId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Goal = Annotated[
    str,
    *_decimal(
        r"^[1-9][0-9]{0,11}(\.[0-9]{1,3})?$",
        10**12 - 1,
        "orders, activities: how many; streak: how many periods in a row; spend: money in the tenant's currency.",
        examples=["3", 3, "100.00"],
    ),
]
Grace = Annotated[int, Field(ge=0, le=12)]
RewardPoints = Annotated[int, Field(ge=0, le=MAX_POINTS_PER_MOVEMENT)]
#: The largest count goal (orders, activities, periods).
MAX_COUNT_GOAL = 1000
_WHOLE_GOAL: JsonSchema = {
    "anyOf": [
        {"type": "string", "pattern": r"^([1-9][0-9]{0,2}|1000)$"},
        {"type": "integer", "minimum": 1, "maximum": MAX_COUNT_GOAL},
    ]
}


def _kind_fields(schema: JsonSchema) -> None:
    """JSON Schema for what the request's check enforces: each kind's own fields, a whole goal
    for counts, and a reward of points or a badge (or both)."""
    counts = [str(ChallengeKind.ORDERS), str(ChallengeKind.ACTIVITIES), str(ChallengeKind.STREAK)]
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": "activities"}}, "required": ["kind"]},
            "then": {"required": ["activity"], "properties": {"activity": {"type": "string"}}},
            "else": {"properties": {"activity": {"type": "null"}}},
        },
        {
            "if": {"properties": {"kind": {"const": "streak"}}, "required": ["kind"]},
            "then": {"required": ["period"], "properties": {"period": {"type": "string"}}},
            "else": {"properties": {"period": {"type": "null"}, "grace": {"const": 0}}},
        },
        {
            "if": {"properties": {"kind": {"enum": counts}}, "required": ["kind"]},
            "then": {"properties": {"goal": _WHOLE_GOAL}},
        },
        {
            "anyOf": [
                {"required": ["reward_points"], "properties": {"reward_points": {"minimum": 1}}},
                {"required": ["badge"], "properties": {"badge": {"type": "object"}}},
            ]
        },
    ]
    schema["examples"] = [
        {
            "name": "Three orders in October",
            "kind": "orders",
            "goal": 3,
            "starts_at": "2026-10-01T00:00:00+02:00",
            "ends_at": "2026-11-01T00:00:00+01:00",
            "reward_points": 300,
            "badge": {"id": "october-regular", "name": "October regular"},
        },
        {
            "name": "Weekly shopper",
            "kind": "streak",
            "period": "week",
            "goal": 4,
            "grace": 1,
            "starts_at": "2026-10-01T00:00:00Z",
            "badge": {"id": "weekly-shopper", "name": "Weekly shopper"},
        },
    ]


class BadgeIn(StrictRequest):
    id: BadgeId = Field(description="Your id of the badge: a member holds a badge once, whichever challenge gave it.")
    name: Name
    description: Description | None = None


def _check_reward(points: int | None, badge: BadgeIn | None) -> None:
    if not points and badge is None:
        raise ValueError("a challenge rewards points (reward_points >= 1), a badge, or both")


class CreateChallengeRequest(StrictRequest):
    """A goal over a window, open to every member or to some `tiers` (a member of any of them) and
    `segments` (a member of any of them). `kind`: `orders` counts orders earned in the window (each
    order once); `spend` adds up their totals; `activities` counts activities of one `activity`
    type; `streak` counts weeks or months (`period`, in the tenant's time zone) in a row with an
    order, a gap of up to `grace` periods without one forgiven. Completion credits `reward_points`
    with the completing movement (a `challenge` share of its breakdown) and awards the `badge`,
    once. A reversal of an order withdraws it from challenges not yet completed; a completed
    challenge stays completed. At most 8 challenges may be open (not archived or ended) at once."""

    model_config = ConfigDict(json_schema_extra=_kind_fields)

    name: Name
    description: Description | None = None
    kind: ChallengeKind
    goal: Goal
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(default=None, description="The window's end (excluded); null: open-ended.")
    activity: ActivityType | None = None
    period: StreakPeriod | None = None
    grace: Grace = 0
    reward_points: RewardPoints = 0
    badge: BadgeIn | None = None
    tiers: Tiers = Field(default_factory=list)
    segments: Segments = Field(default_factory=list)

    @model_validator(mode="after")
    def _kind_fields(self) -> CreateChallengeRequest:
        if (self.kind is ChallengeKind.ACTIVITIES) != (self.activity is not None):
            raise ValueError("activity is required for kind activities, and only for it")
        if (self.kind is ChallengeKind.STREAK) != (self.period is not None):
            raise ValueError("period is required for kind streak, and only for it")
        if self.grace and self.kind is not ChallengeKind.STREAK:
            raise ValueError("grace is only for kind streak")
        if self.kind is not ChallengeKind.SPEND and ("." in self.goal or int(self.goal) > MAX_COUNT_GOAL):
            raise ValueError(f"goal must be a whole number from 1 to {MAX_COUNT_GOAL} for kind {self.kind}")
        _check_reward(self.reward_points, self.badge)
        return self


class UpdateChallengeRequest(StrictRequest):
    """Only the fields sent change (null clears `description`, `ends_at` or `badge`). A
    challenge's kind, goal and start are fixed; progress already made stays."""

    model_config = ConfigDict(
        json_schema_extra={"minProperties": 1, "examples": [{"reward_points": 500, "ends_at": "2026-11-15T00:00:00Z"}]}
    )

    name: Name | None = Field(default=None, json_schema_extra=_not_null)
    description: Description | None = None
    ends_at: AwareDatetime | None = None
    reward_points: RewardPoints | None = Field(default=None, json_schema_extra=_not_null)
    badge: BadgeIn | None = None
    tiers: Tiers | None = Field(default=None, json_schema_extra=_not_null)
    segments: Segments | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateChallengeRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("name", "reward_points", "tiers", "segments"):  # _not_null
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class BadgeOut(Out):
    id: str = Field(examples=["october-regular"])
    name: str
    description: str | None


class ChallengeOut(Out):
    id: str = Field(examples=["chl_01JD0000000000000000000000"])
    name: str
    description: str | None
    kind: ChallengeKind
    goal: str = Field(description="A count, or money for spend (a decimal string).", examples=["3"])
    starts_at: datetime
    ends_at: datetime | None
    activity: str | None
    period: StreakPeriod | None
    grace: int
    reward_points: int
    badge: BadgeOut | None
    tiers: list[str]
    segments: list[str]
    status: ChallengeStatus = Field(description="archived: counts no more; its members' progress stays listed.")
    created_at: datetime
    updated_at: datetime


class ChallengeList(Out):
    data: list[ChallengeOut]


class ProgressOut(Out):
    value: str = Field(
        description="orders, activities: how many so far; streak: periods in a row; spend: money so far.",
        examples=["2"],
    )
    goal: str = Field(examples=["3"])
    percent: int = Field(ge=0, le=100, description="Of the goal, rounded down (100 once completed).")
    completed: bool
    completed_at: datetime | None
    updated_at: datetime | None


class MemberChallengeOut(Out):
    challenge: ChallengeOut
    progress: ProgressOut


class MemberChallengeList(Out):
    member_id: str
    data: list[MemberChallengeOut]


class MemberBadgeOut(Out):
    badge: BadgeOut
    challenge_id: str = Field(description="The challenge whose completion awarded it.")
    awarded_at: datetime


class MemberBadgeList(Out):
    member_id: str
    data: list[MemberBadgeOut]
