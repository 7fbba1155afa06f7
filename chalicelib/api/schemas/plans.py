"""Paid membership: plans and subscriptions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator

from chalicelib.api.schemas.common import (
    _EARLIEST,
    DECIMAL_RULE,
    JsonSchema,
    Name,
    Out,
    Reference,
    StrictRequest,
    _present,
)
from chalicelib.api.schemas.tiers import Perk, TierMultiplier, TierName


class PlanStatusOut(Out):
    """The paid plan in force on the member (chalicelib.domain.plans)."""

    subscription_id: str
    plan_id: str
    name: str | None = Field(description="The plan's name in the catalog now (null: removed from the catalog).")
    tier: str | None = Field(description="The tier the plan grants (the member's tier is the higher of it and theirs).")
    multiplier: str = Field(description="The plan's own extra earning multiplier on order earns (1: none).")
    perks: list[str]
    starts_at: datetime
    ends_at: datetime = Field(description="Its benefits stop at this moment unless a period is recorded.")


_LATEST_PERIOD = datetime(2100, 1, 1, tzinfo=UTC)

PlanId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$",
        description="Slug naming the plan: 1-32 lowercase letters, digits, '-' and '_'.",
        examples=["premium"],
    ),
]


_MULTIPLIER_ONE = r"^1(\.0{1,2})?$"
#: JSON Schema of what ``PlanModel._grants_something`` enforces.
_GRANTS_SOMETHING: JsonSchema = {
    "anyOf": [
        _present("tier"),
        {
            "required": ["multiplier"],
            "properties": {
                "multiplier": {"not": {"anyOf": [{"type": "string", "pattern": _MULTIPLIER_ONE}, {"const": 1}]}}
            },
        },
        {"required": ["perks"], "properties": {"perks": {"minItems": 1}}},
    ]
}


class PlanModel(StrictRequest):
    """A plan grants a tier, an extra multiplier above 1, or perks (at least one of them)."""

    model_config = ConfigDict(json_schema_extra=_GRANTS_SOMETHING)

    plan_id: PlanId
    name: Name
    tier: TierName | None = Field(default=None, description="A tier of the tier program in force; null: none.")
    multiplier: TierMultiplier = Field(
        default="1", description=f"Extra earning multiplier of order earns, 1 to 10. {DECIMAL_RULE}"
    )
    perks: Annotated[list[Perk], Field(max_length=20)] = Field(default_factory=list)
    join_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0, description="Points credited when a member first subscribes to this plan (once per member)."
    )

    @model_validator(mode="after")
    def _grants_something(self) -> PlanModel:
        if self.tier is None and re.fullmatch(_MULTIPLIER_ONE, self.multiplier) and not self.perks:
            raise ValueError("a plan grants a tier, a multiplier above 1 or perks")
        return self


class PlansRequest(StrictRequest):
    """The whole catalog, replacing the previous one. Subscriptions keep what their recorded
    periods granted; a renewal takes the plan as it is then."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "plans": [
                        {
                            "plan_id": "club",
                            "name": "Club",
                            "tier": "gold",
                            "multiplier": "2",
                            "perks": ["Free returns"],
                            "join_bonus": 500,
                        }
                    ]
                }
            ]
        }
    )

    plans: Annotated[list[PlanModel], Field(max_length=20)]


class PlanOut(Out):
    plan_id: str
    name: str
    tier: str | None
    multiplier: str
    perks: list[str]
    join_bonus: int


class PlanList(Out):
    data: list[PlanOut]
    updated_at: datetime | None


class SubscriptionRequest(StrictRequest):
    """A paid period as the brand's billing reports it (this API takes no payment)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "plan_id": "club",
                    "period_start": "2026-03-01T00:00:00Z",
                    "period_end": "2026-04-01T00:00:00Z",
                    "reference": "invoice-2026-03-0042",
                }
            ]
        }
    )

    plan_id: PlanId
    period_start: AwareDatetime = Field(description="Start of the paid period (RFC 3339 with offset).")
    period_end: AwareDatetime = Field(description="End of the paid period, after period_start, in the future.")
    reference: Reference = Field(description="The billing's invoice or charge id: recorded once per tenant.")

    @field_validator("period_start", "period_end")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if not _EARLIEST <= value < _LATEST_PERIOD:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return value


class PeriodOut(Out):
    reference: str
    period_start: datetime
    period_end: datetime
    recorded_at: datetime


class SubscriptionOut(Out):
    id: str = Field(examples=["sub_01JD0000000000000000000000"])
    member_id: str
    plan_id: str
    status: Literal["active", "cancelled", "lapsed"] = Field(
        description="lapsed as soon as ends_at has passed (the lapse job records it and its events within the hour)."
    )
    tier: str | None = Field(description="The tier it grants (as of its latest recorded period).")
    multiplier: str
    starts_at: datetime
    ends_at: datetime
    cancelled_at: datetime | None
    lapsed_at: datetime | None
    join_bonus: int = Field(description="Points credited when it started (0: none).")
    periods: list[PeriodOut] = Field(description="The latest recorded periods (at most 12), oldest first.")
    period_count: int
    created_at: datetime
    updated_at: datetime


class SubscriptionList(Out):
    data: list[SubscriptionOut] = Field(description="Newest first.")
    next_cursor: str | None


class JoinBonusOut(Out):
    points: int
    transaction_id: str | None


class SubscriptionRecordOut(Out):
    outcome: Literal["started", "renewed", "recorded", "already_recorded"] = Field(
        description="started: a new subscription; renewed: extended (or resumed) by the period; recorded: the "
        "period lies within what was covered; already_recorded: this reference was recorded before (nothing written)."
    )
    subscription: SubscriptionOut
    join_bonus: JoinBonusOut | None = Field(description="The join bonus this recording credited; null: none.")
