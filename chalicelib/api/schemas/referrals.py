"""Referral programs and referrals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from chalicelib.api.schemas.common import Amount, Out, StrictRequest
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT


class ReferralCapModel(StrictRequest):
    limit: Annotated[int, Field(ge=1, le=100_000)] = Field(description="Referrals rewarded per referrer and period.")
    per: Literal["day", "week", "month", "year", "ever"] = Field(
        description="A calendar period in the tenant's time zone (week: ISO week)."
    )


class ReferralProgramRequest(StrictRequest):
    """A new version of the referral program, in force from `effective_from` (default now; never in
    the past). `enabled: false` switches referrals off from then on (pending referrals stay pending)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referrer_points": 500,
                    "referee_points": 250,
                    "min_order_total": "20.00",
                    "cap": {"limit": 10, "per": "month"},
                }
            ]
        }
    )

    enabled: bool = True
    referrer_points: Annotated[int, Field(ge=1, le=MAX_POINTS_PER_MOVEMENT)] = Field(
        description="Credited to the referrer when the referee's first qualifying order earn commits."
    )
    referee_points: Annotated[int, Field(ge=0, le=MAX_POINTS_PER_MOVEMENT)] = Field(
        default=0, description="Credited to the referee at the same moment (0: none)."
    )
    min_order_total: Amount | None = Field(
        default=None, description="The qualifying order's minimum total; omitted: any order earn qualifies."
    )
    cap: ReferralCapModel | None = Field(
        default=None, description="At most this many referrals rewarded per referrer and period; null: no cap."
    )
    referee_rewarded_when_capped: bool = Field(
        default=True, description="Whether the referee is still rewarded when the referrer's reward is capped."
    )
    effective_from: AwareDatetime | None = None


class ReferralCapOut(Out):
    limit: int
    per: Literal["day", "week", "month", "year", "ever"]


class ReferralProgramOut(Out):
    id: str = Field(examples=["rpv_01JD0000000000000000000000"])
    enabled: bool
    referrer_points: int
    referee_points: int
    min_order_total: str | None
    cap: ReferralCapOut | None
    referee_rewarded_when_capped: bool
    effective_from: datetime
    created_at: datetime
    status: Literal["scheduled", "active", "superseded"]


class ReferralProgramList(Out):
    data: list[ReferralProgramOut] = Field(description="Every version, oldest first; none is ever deleted.")


class ReferralOut(Out):
    referee_id: str
    referrer_id: str
    status: Literal["pending", "qualified", "completed", "capped"] = Field(
        description="pending: no qualifying order yet; qualified: the order is recorded, rewards being credited; "
        "completed: both rewarded; capped: the referrer had reached the cap (the referee per the program)."
    )
    enrolled_at: datetime
    qualified_at: datetime | None
    completed_at: datetime | None
    order_id: str | None = Field(description="The referee's qualifying order.")
    referrer_points: int = Field(description="Points credited to the referrer for this referral.")
    referee_points: int = Field(description="Points credited to the referee for this referral.")


class ReferralList(Out):
    data: list[ReferralOut] = Field(description="Newest referee first.")
    next_cursor: str | None
