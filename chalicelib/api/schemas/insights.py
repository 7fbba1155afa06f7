"""Program insights: the figures a brand runs its program by (chalicelib.domain.insights)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from chalicelib.api.schemas.common import Out, Query, StrictRequest
from chalicelib.api.schemas.program import ProgramRequest

Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-03-01"])]
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-03"])]
Rate = Annotated[str | None, Field(description="A decimal string from 0 to 1 (6 places); null when undefined.")]
MoneyText = Annotated[str, Field(description="Money in the tenant's currency, a decimal string.")]
AsOf = Annotated[
    str | None,
    Field(description="ISO-8601 UTC time of the freshest event folded into the figures (null: none yet)."),
]


class PeriodQuery(Query):
    from_: Day | None = Field(default=None, alias="from", description="First local day (default: 29 days before `to`).")
    to: Day | None = Field(default=None, description="Last local day, inclusive (default: today, tenant time zone).")


class TimeseriesQuery(Query):
    metric: Literal[
        "enrolments",
        "points_issued",
        "points_redeemed",
        "points_expired",
        "points_reversed",
        "points_adjusted",
        "liability",
        "orders",
        "revenue",
        "active_members",
    ] = Field(default="points_issued", description="The figure charted.")
    interval: Literal["day", "week", "month"] = Field(default="day", description="One point per day, week or month.")
    from_: Day | None = Field(default=None, alias="from", description="First local day (its period's start).")
    to: Day | None = Field(default=None, description="Last local day, inclusive (default: today).")
    format: Literal["json", "csv"] = Field(default="json", description="`csv`: the points as CSV `period,value`.")


class LiabilityQuery(Query):
    as_of: Day | None = Field(
        default=None, description="A local day: expiry months before its month are left out of the breakdown."
    )


class CohortQuery(Query):
    from_: Month | None = Field(
        default=None, alias="from", description="First enrolment month (default: 11 before `to`)."
    )
    to: Month | None = Field(default=None, description="Last enrolment month (default: this month).")


class MemberFigures(Out):
    total: int
    enrolled: int
    active_30d: int
    active_90d: int


class PointFigures(Out):
    issued: int
    redeemed: int
    expired: int
    reversed: int
    adjusted: int


class RedemptionFigures(Out):
    rate: Rate
    active_redeemer_share: Rate


class BreakageFigures(Out):
    rate: Rate
    expired: int
    issued_matured: int


class Worth(Out):
    points: int
    value: MoneyText


class LiabilityFigures(Out):
    available: Worth
    pending: Worth


class OrderFigures(Out):
    count: int
    revenue: MoneyText
    aov: MoneyText | None
    per_member: Rate
    repeat_rate: Rate


class TierFigures(Out):
    mix: dict[str, int]
    upgrades: int
    downgrades: int


class RewardCount(Out):
    reward_id: str
    name: str | None
    count: int


class CouponFigures(Out):
    issued: int
    cancelled: int
    used: int | None = Field(description="The coupons used in the period (its `coupon.used` events).")


class RewardFigures(Out):
    redemptions: list[RewardCount]
    coupons: CouponFigures


class ReferralFigures(Out):
    codes_used: int
    completed: int
    conversion: Rate


class PlanFigures(Out):
    active: int
    started: int
    lapsed: int


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "as_of": "2026-03-31T21:59:58.120Z",
    "from": "2026-03-01",
    "to": "2026-03-31",
    "point_value": "0.01",
    "currency": "EUR",
    "members": {"total": 1200, "enrolled": 85, "active_30d": 410, "active_90d": 690},
    "points": {"issued": 182000, "redeemed": 91000, "expired": 4000, "reversed": 1500, "adjusted": 200},
    "redemption": {"rate": "0.500000", "active_redeemer_share": "0.210145"},
    "breakage": {"rate": "0.160000", "expired": 4000, "issued_matured": 25000},
    "liability": {"available": {"points": 640000, "value": "6400.00"}, "pending": {"points": 12000, "value": "120.00"}},
    "orders": {
        "count": 950,
        "revenue": "47500.00",
        "aov": "50.00",
        "per_member": "0.791667",
        "repeat_rate": "0.420000",
    },
    "clv": "212.40",
    "tiers": {"mix": {"gold": 80, "silver": 300}, "upgrades": 12, "downgrades": 3},
    "rewards": {
        "redemptions": [{"reward_id": "rwd_01JD0000000000000000000000", "name": "Free coffee", "count": 120}],
        "coupons": {"issued": 130, "cancelled": 2, "used": 95},
    },
    "referrals": {"codes_used": 20, "completed": 14, "conversion": "0.700000"},
    "plans": {"active": 40, "started": 6, "lapsed": 2},
    "activities": {"review": 33, "follow": 12},
}


class SummaryOut(Out):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_SUMMARY_EXAMPLE]}, populate_by_name=True, serialize_by_alias=True
    )

    as_of: AsOf
    from_: Day = Field(alias="from")
    to: Day
    point_value: str = Field(description="Money per point (the program's `point_value`).")
    currency: str
    members: MemberFigures
    points: PointFigures
    redemption: RedemptionFigures
    breakage: BreakageFigures
    liability: LiabilityFigures
    orders: OrderFigures
    clv: MoneyText | None
    tiers: TierFigures
    rewards: RewardFigures
    referrals: ReferralFigures
    plans: PlanFigures
    activities: dict[str, int]


class SeriesPoint(Out):
    period: Day
    value: int | str


class TimeseriesOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-03-31T21:59:58.120Z",
                    "metric": "points_issued",
                    "interval": "week",
                    "points": [{"period": "2026-03-02", "value": 41000}, {"period": "2026-03-09", "value": 39500}],
                }
            ]
        }
    )

    as_of: AsOf
    metric: str
    interval: str
    points: list[SeriesPoint]


class MonthWorth(Out):
    month: Month
    points: int
    value: MoneyText


class AvailableLiability(Out):
    points: int
    value: MoneyText
    by_expiry_month: list[MonthWorth]
    without_expiry: Worth


class PendingLiability(Out):
    points: int
    value: MoneyText
    by_maturity_month: list[MonthWorth]


class LiabilityOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-03-31T21:59:58.120Z",
                    "point_value": "0.01",
                    "currency": "EUR",
                    "available": {
                        "points": 640000,
                        "value": "6400.00",
                        "by_expiry_month": [{"month": "2027-03", "points": 500000, "value": "5000.00"}],
                        "without_expiry": {"points": 140000, "value": "1400.00"},
                    },
                    "pending": {
                        "points": 12000,
                        "value": "120.00",
                        "by_maturity_month": [{"month": "2026-04", "points": 12000, "value": "120.00"}],
                    },
                }
            ]
        }
    )

    as_of: AsOf
    point_value: str
    currency: str
    available: AvailableLiability
    pending: PendingLiability


class CohortMonth(Out):
    month: Month
    members: int
    share: Rate


class Cohort(Out):
    month: Month
    size: int
    active: list[CohortMonth]


class CohortsOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-03-31T21:59:58.120Z",
                    "cohorts": [
                        {
                            "month": "2026-02",
                            "size": 120,
                            "active": [
                                {"month": "2026-02", "members": 90, "share": "0.750000"},
                                {"month": "2026-03", "members": 60, "share": "0.500000"},
                            ],
                        }
                    ],
                }
            ]
        }
    )

    as_of: AsOf
    cohorts: list[Cohort]


class WhatIfRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"program": {"points_per_currency_unit": "2", "rounding": "floor"}, "days": 30}]
        }
    )

    program: ProgramRequest = Field(description="The draft program, as `PUT /v1/program` takes it.")
    days: Annotated[int, Field(ge=1, le=90)] = Field(default=30, description="The orders of the last N days.")


class Comparison(Out):
    current: int
    draft: int
    difference: int


class TierMixes(Out):
    current: dict[str, int]
    draft: dict[str, int] = Field(
        description=(
            "The mix once each member whose qualifying points (the tier program's window) the draft changes is "
            "moved across the thresholds of the tier program in force."
        )
    )
    moved: int = Field(default=0, description="The members whose tier the draft changes.")


class WhatIfOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-03-31T21:59:58.120Z",
                    "days": 30,
                    "orders": 950,
                    "points_issued": {"current": 47500, "draft": 95000, "difference": 47500},
                    "liability": {"current": 652000, "draft": 699500, "difference": 47500},
                    "tier_mix": {
                        "current": {"gold": 80, "silver": 240},
                        "draft": {"gold": 95, "silver": 225},
                        "moved": 15,
                    },
                }
            ]
        }
    )

    as_of: AsOf
    days: int
    orders: int = Field(description="Order earns recorded in the last `days` days.")
    points_issued: Comparison
    liability: Comparison = Field(description="Outstanding points, were the difference still outstanding.")
    tier_mix: TierMixes
