"""The program: conversion rate, rounding, expiry policy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from chalicelib.api.schemas.common import Out, StrictRequest, _decimal, _positive_decimal
from chalicelib.domain.expiry import ExpiryKind, Period
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT
from chalicelib.domain.program import HOUSEHOLD_SIZE_RANGE, Rounding


class ExpiryPolicyModel(StrictRequest):
    """When earned points stop being spendable.

    * `{"kind": "none"}` (default): never.
    * `{"kind": "fixed_period", "days": 365}` or `{"kind": "fixed_period", "months": 12}`: after earning.
    * `{"kind": "end_of_period", "period": "year", "periods_after": 1}`: at the end of the period N
      periods after the one of earning, in the tenant's time zone (here: 31 December of the next year).
    * `{"kind": "inactivity", "days": 365}`: every available point lapses N days after the member's
      last earn or redeem (a policy change applies to each member from their next movement).
    """

    kind: ExpiryKind = ExpiryKind.NONE
    days: Annotated[int, Field(ge=1, le=3650)] | None = None
    months: Annotated[int, Field(ge=1, le=120)] | None = None
    period: Period | None = None
    periods_after: Annotated[int, Field(ge=0, le=10)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> ExpiryPolicyModel:
        if self.kind is ExpiryKind.FIXED_PERIOD and (self.days is None) == (self.months is None):
            raise ValueError("fixed_period needs exactly one of days or months")
        if self.kind is ExpiryKind.END_OF_PERIOD and self.period is None:
            raise ValueError("end_of_period needs a period: year, quarter or month")
        if self.kind is ExpiryKind.INACTIVITY and (self.days is None or self.months or self.period):
            raise ValueError("inactivity needs days (and no months or period)")
        if self.kind is ExpiryKind.NONE and (self.days or self.months or self.period or self.periods_after):
            raise ValueError("kind none takes no other field")
        return self


class TransferPolicyModel(StrictRequest):
    """Whether members may move points to each other (`POST /v1/members/{member_id}/transfers`).

    * `{"enabled": false}` (default): transfers are refused with `transfer_not_allowed`.
    * `{"enabled": true, "minimum": 100, "daily_maximum": 5000}`: at least 100 points a transfer,
      at most 5000 points sent by a member per day (in the tenant's time zone).
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"enabled": True, "minimum": 100, "daily_maximum": 5000}]}
    )

    enabled: bool = False
    minimum: Annotated[int, Field(ge=1, le=MAX_POINTS_PER_MOVEMENT)] = Field(
        default=1, description="The fewest points one transfer may move."
    )
    daily_maximum: Annotated[int, Field(ge=1, le=MAX_POINTS_PER_MOVEMENT)] | None = Field(
        default=None, description="The most points a member may send per local day (null: no daily limit)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TransferPolicyModel:
        if self.daily_maximum is not None and self.daily_maximum < self.minimum:
            raise ValueError("daily_maximum may not be below minimum")
        return self


class HouseholdPolicyModel(StrictRequest):
    """Whether members may form households that pool their points (`POST /v1/households`).

    * `{"enabled": false}` (default): creating a household or joining one is refused with
      `household_not_allowed`.
    * `{"enabled": true, "max_members": 4}`: households of at most 4 members, the owner included.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{"enabled": True, "max_members": 4}]})

    enabled: bool = False
    max_members: Annotated[int, Field(ge=HOUSEHOLD_SIZE_RANGE[0], le=HOUSEHOLD_SIZE_RANGE[1])] = Field(
        default=6, description="The most members a household may hold, its owner included (2 to 10)."
    )


PointsRate = Annotated[
    str, *_decimal(_positive_decimal(6, 4), 999_999, "Points per one unit of the tenant's currency, greater than 0.")
]

PointValue = Annotated[
    str,
    *_decimal(
        r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?$",
        999_999,
        "Money per point, in the tenant's currency, at most 6 decimal places (0, the default: points "
        "carry no stated value). The insights value the points liability with it.",
        minimum=0,
    ),
]


class ProgramRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"points_per_currency_unit": "10", "rounding": "floor", "pending_days": 14, "birthday_bonus": 200}
            ]
        }
    )

    points_per_currency_unit: PointsRate = Field(examples=["2.5", 10])
    rounding: Rounding
    expiry: ExpiryPolicyModel = Field(default_factory=ExpiryPolicyModel)
    pending_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=0, description="Default return window of earned points, in days."
    )
    reversal_clawback: bool = Field(
        default=False, description="Whether a reversal may push the balance below zero (else it stops at zero)."
    )
    expiry_warning_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=14,
        description="points.expiring_soon is announced this many days before points expire (0: never).",
    )
    birthday_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0, description="Points credited on each member's birthday, in the tenant's time zone (0: none)."
    )
    earn_on_shipping: bool = Field(default=False, description="Whether an order's shipping earns points.")
    earn_on_tax: bool = Field(default=False, description="Whether an order's tax earns points.")
    transfers: TransferPolicyModel = Field(
        default_factory=TransferPolicyModel,
        description="Whether members may transfer points to each other, and the limits (default: not allowed).",
    )
    erase_inactive_after_years: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None,
        description=(
            "Members with no earn or redeem for this many years are erased by the `erase-inactive` job, "
            "as `POST /v1/members/{member_id}/erase` would (null: never)."
        ),
        examples=[3],
    )
    personal_metadata_keys: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=40)]], Field(max_length=50)
    ] = Field(
        default_factory=list,
        description="Metadata keys of movements that may hold personal data: an erasure removes them.",
        examples=[["customer_note", "phone"]],
    )
    personal_descriptions: bool = Field(
        default=False,
        description="Whether descriptions of movements may hold personal data: an erasure removes them.",
    )
    point_value: PointValue = Field(default="0", examples=["0.01"])
    signup_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0,
        description="Points credited once to each new member on enrolment, announced in `member.welcome` (0: none).",
    )
    welcome_imported: bool = Field(
        default=False,
        description="Whether members enrolled by a bulk import get the sign-up bonus and `member.welcome` too.",
    )
    households: HouseholdPolicyModel = Field(
        default_factory=HouseholdPolicyModel,
        description="Whether members may pool their points in households, and their size (default: not allowed).",
    )


class ExpiryPolicyOut(Out):
    kind: ExpiryKind
    days: int | None
    months: int | None
    period: Period | None
    periods_after: int


class TransferPolicyOut(Out):
    enabled: bool
    minimum: int
    daily_maximum: int | None


class HouseholdPolicyOut(Out):
    enabled: bool
    max_members: int


class ProgramOut(Out):
    points_per_currency_unit: str
    rounding: Rounding
    expiry: ExpiryPolicyOut
    pending_days: int
    reversal_clawback: bool
    expiry_warning_days: int
    birthday_bonus: int
    earn_on_shipping: bool
    earn_on_tax: bool
    updated_at: datetime | None
    transfers: TransferPolicyOut
    erase_inactive_after_years: int | None
    personal_metadata_keys: list[str]
    personal_descriptions: bool
    point_value: str = Field(description="Money per point, in the tenant's currency (a decimal string).")
    signup_bonus: int
    welcome_imported: bool
    households: HouseholdPolicyOut
