"""Tier programs and a member's tier status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from chalicelib.api.schemas.common import _NOT_BLANK, Out, StrictRequest, _decimal, _positive_decimal

TierName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
TierThreshold = Annotated[
    str,
    *_decimal(
        _positive_decimal(12, 3),
        10**12 - 1,
        "In the metric's unit: points or orders (whole), or an amount of the tenant's currency.",
    ),
]
TierMultiplier = Annotated[
    str, *_decimal(r"^(10|[1-9])(\.[0-9]{1,2})?$", 10, 'Earning multiplier, 1 to 10, e.g. "1.5" or 2.')
]
Perk = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=_NOT_BLANK)]


class TierModel(StrictRequest):
    name: TierName
    threshold: TierThreshold
    multiplier: TierMultiplier = "1"
    perks: Annotated[list[Perk], Field(max_length=20)] = Field(default_factory=list)


class TierWindowModel(StrictRequest):
    kind: Literal["rolling_months", "calendar_year"]
    months: Annotated[int, Field(ge=1, le=24)] | None = Field(default=None, description="rolling_months only.")


class TierProgramRequest(StrictRequest):
    """A new version of the tier program, in force from `effective_from` (default now; never in
    the past). Tiers are listed lowest first, with ascending thresholds; `tiers: []` ends tiers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metric": "points",
                    "window": {"kind": "rolling_months", "months": 12},
                    "tiers": [
                        {"name": "silver", "threshold": "1000", "multiplier": "1.25", "perks": ["Free shipping"]},
                        {
                            "name": "gold",
                            "threshold": "5000",
                            "multiplier": "1.5",
                            "perks": ["Free shipping", "Early access to sales"],
                        },
                    ],
                    "effective_from": "2026-04-01T00:00:00Z",
                }
            ]
        }
    )

    metric: Literal["points", "spend", "orders"] = Field(
        description="points earned, amount spent (order totals and amount earns), or orders."
    )
    window: TierWindowModel
    grace_periods: Annotated[int, Field(ge=0, le=24)] = Field(
        default=1,
        description="A tier reached or confirmed in a period (a month for rolling windows, a year for calendar "
        "years) is held until the end of that period plus this many periods.",
    )
    tiers: Annotated[list[TierModel], Field(max_length=10)]
    effective_from: AwareDatetime | None = None


class TierOut(Out):
    name: str
    threshold: str
    multiplier: str
    perks: list[str]


class TierWindowOut(Out):
    kind: Literal["rolling_months", "calendar_year"]
    months: int | None


class TierProgramOut(Out):
    id: str = Field(examples=["tpv_01JD0000000000000000000000"])
    metric: Literal["points", "spend", "orders"]
    window: TierWindowOut
    grace_periods: int
    tiers: list[TierOut]
    effective_from: datetime
    created_at: datetime
    status: Literal["scheduled", "active", "superseded"]


class TierProgramList(Out):
    data: list[TierProgramOut] = Field(description="Every version, oldest first; none is ever deleted.")


class TierProgressOut(Out):
    next_tier: str
    remaining: int | str = Field(description="Whole points or orders; for spend, an amount (decimal string).")
    metric: Literal["points", "spend", "orders"]


class TierStatusOut(Out):
    tier: str | None
    since: datetime | None
    expires_at: datetime | None = Field(description="When the tier is next reviewed (kept, lowered or lost).")
    multiplier: str | None
    perks: list[str]
    metric: Literal["points", "spend", "orders"]
    qualifying: int | str = Field(description="The total counted in the current window (spend: decimal string).")
    progress: TierProgressOut | None = Field(description="What the next tier takes; null at the top tier.")
