"""The program: conversion rate, rounding, expiry policy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from chalicelib.api.schemas.common import Out, StrictRequest, _decimal, _positive_decimal
from chalicelib.domain.expiry import ExpiryKind, Period
from chalicelib.domain.program import Rounding


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


PointsRate = Annotated[
    str, *_decimal(_positive_decimal(6, 4), 999_999, "Points per one unit of the tenant's currency, greater than 0.")
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
    signup_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0,
        description="Points credited once to each new member on enrolment, announced in `member.welcome` (0: none).",
    )
    welcome_imported: bool = Field(
        default=False,
        description="Whether members enrolled by a bulk import get the sign-up bonus and `member.welcome` too.",
    )


class ExpiryPolicyOut(Out):
    kind: ExpiryKind
    days: int | None
    months: int | None
    period: Period | None
    periods_after: int


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
    signup_bonus: int
    welcome_imported: bool
