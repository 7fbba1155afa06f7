"""Rewards, coupons and reward codes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.api.schemas.common import (
    Amount,
    Description,
    JsonSchema,
    Name,
    Out,
    PositivePoints,
    Reference,
    StrictRequest,
    _no_repeats,
    _not_null,
    _present,
)
from chalicelib.api.schemas.points import BalanceOut, TransactionOut
from chalicelib.api.schemas.rules import Code
from chalicelib.domain.rewards import CodeSource, CouponStatus, LimitPeriod, LockReason, RewardType

CouponCode = Annotated[str, StringConstraints(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Tier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Stock = Annotated[int, Field(ge=1, le=100_000_000)]
PerMemberLimit = Annotated[int, Field(ge=1, le=10_000)]
ValidDays = Annotated[int, Field(ge=1, le=3650)]
Percent = Annotated[int, Field(ge=1, le=100)]
Tiers = Annotated[
    list[Tier], Field(max_length=20, json_schema_extra={"uniqueItems": True}), AfterValidator(_no_repeats)
]

#: The field each reward type needs (and no other type takes).
_TYPE_FIELDS = {
    "amount": ["fixed_discount", "gift_card"],
    "percent": ["percent_discount"],
    "sku": ["free_product"],
    "cause": ["charity_donation"],
}


def _type_fields(schema: JsonSchema) -> None:
    """JSON Schema for what the reward's own check enforces: each type's field, and only its own."""
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"enum": types}}, "required": ["type"]},
            "then": _present(name),
            "else": {"properties": {name: {"type": "null"}}},
        }
        for name, types in _TYPE_FIELDS.items()
    ]


def _create_reward_schema(schema: JsonSchema) -> None:
    _type_fields(schema)
    schema["examples"] = [
        {
            "name": "5 EUR gift card",
            "type": "gift_card",
            "amount": "5.00",
            "points_cost": 500,
            "stock": 1000,
            "valid_days": 90,
        }
    ]


class CreateRewardRequest(StrictRequest):
    """A reward of the catalog. Its type decides the one extra field it takes: `amount` (a
    `fixed_discount` or `gift_card` value in the tenant's currency), `percent`
    (`percent_discount`), `sku` (`free_product`), `cause` (`charity_donation`: points given to a
    named cause, totals per cause reported); `free_shipping` and `experience` take none.
    `per_member_limit` counts a member's coupons `ever` or per calendar `month` (tenant's time
    zone); `stock` counts every member's (cancelled coupons come back). `tiers` restricts it to
    members of those tiers: members have no tier until tiers exist, so until then such a
    reward is locked (`tier`) for everybody. `codes`: `generated` (unique codes made at
    redemption) or `pool` (codes the brand uploads)."""

    model_config = ConfigDict(json_schema_extra=_create_reward_schema)

    name: Name
    type: RewardType
    points_cost: PositivePoints
    description: Description | None = None
    amount: Amount | None = None
    percent: Percent | None = None
    sku: Code | None = None
    cause: Name | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock: Stock | None = None
    per_member_limit: PerMemberLimit | None = None
    limit_period: LimitPeriod = LimitPeriod.EVER
    tiers: Tiers = Field(default_factory=list)
    valid_days: ValidDays | None = Field(default=None, description="Days a coupon is usable once issued.")
    codes: CodeSource = CodeSource.GENERATED


class UpdateRewardRequest(StrictRequest):
    """Only the fields sent change; null clears an optional one. The type and the code source
    are fixed. Coupons already issued keep what they were issued with."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "examples": [{"points_cost": 450, "stock": 2000}]})

    name: Name | None = Field(default=None, json_schema_extra=_not_null)
    points_cost: PositivePoints | None = Field(default=None, json_schema_extra=_not_null)
    description: Description | None = None
    amount: Amount | None = None
    percent: Percent | None = None
    sku: Code | None = None
    cause: Name | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock: Stock | None = None
    per_member_limit: PerMemberLimit | None = None
    limit_period: LimitPeriod | None = Field(default=None, json_schema_extra=_not_null)
    tiers: Tiers | None = Field(default=None, json_schema_extra=_not_null)
    valid_days: ValidDays | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateRewardRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("name", "points_cost", "limit_period", "tiers"):  # _not_null
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RewardOut(Out):
    id: str = Field(examples=["rwd_01JD0000000000000000000000"])
    name: str
    type: RewardType
    points_cost: int
    description: str | None
    amount: str | None
    percent: int | None
    sku: str | None
    cause: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    stock: int | None
    per_member_limit: int | None
    limit_period: LimitPeriod
    tiers: list[str]
    valid_days: int | None
    codes: CodeSource
    status: Literal["active", "scheduled", "ended", "archived"]
    issued: int = Field(description="Coupons issued and not cancelled.")
    remaining_stock: int | None = Field(description="Coupons that may still be issued (null: no stock limit).")
    cause_total_points: int | None = Field(
        description="charity_donation: points given to its cause so far, by every reward of that cause."
    )
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class RewardList(Out):
    data: list[RewardOut]
    next_cursor: str | None


class UploadCodesRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"codes": ["GIFT-7KQ4-MZ2P", "GIFT-9XW2-HT6R"]}]})

    codes: Annotated[
        list[CouponCode],
        Field(min_length=1, max_length=500, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ] = Field(description="Codes for the reward's pool; none may exist already (in any reward).")


class UploadCodesOut(Out):
    reward_id: str
    added: int


class CouponOut(Out):
    code: str
    reward_id: str
    member_id: str
    status: CouponStatus
    points: int = Field(description="The points paid for it (given back if it is cancelled).")
    issued_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    used_reference: str | None
    cancelled_at: datetime | None


class CouponList(Out):
    data: list[CouponOut]
    next_cursor: str | None


class RedemptionOut(Out):
    transaction: TransactionOut
    balance: BalanceOut
    coupon: CouponOut


class UseCouponRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reference": "checkout-1050"}]})

    reference: Reference | None = Field(default=None, description="Your reference, e.g. the order it was used on.")


class MemberRewardOut(Out):
    reward: RewardOut
    redeemable: bool
    locked_because: list[LockReason] = Field(description="Empty when redeemable.")
    points_short: int = Field(description="Points the member lacks for it (0: enough).")
    remaining_for_member: int | None = Field(
        description="Coupons of it the member may still get in the current period (null: no limit)."
    )


class MemberRewardList(Out):
    member_id: str
    available_points: int
    data: list[MemberRewardOut]
    next_cursor: str | None
