"""Point movements, balances and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from chalicelib.api.schemas.common import (
    Amount,
    Description,
    Metadata,
    OccurredAt,
    Out,
    PositivePoints,
    Reference,
    StrictRequest,
    _check_exactly_one_of,
    _exactly_one_of,
    _not_zero,
)
from chalicelib.api.schemas.plans import PlanStatusOut
from chalicelib.api.schemas.rules import OrderModel, ShareOut
from chalicelib.api.schemas.tiers import TierStatusOut
from chalicelib.domain.ledger import MAX_POINTS_PER_MOVEMENT, MovementType


class _Movement(StrictRequest):
    reference: Reference | None = Field(default=None, description="Your reference, e.g. an order id.")
    description: Description | None = None
    occurred_at: OccurredAt | None = None
    metadata: Metadata = Field(default_factory=dict)


class EarnRequest(_Movement):
    """Send exactly one of `points`, `amount` (converted by the program's rate) or `order`
    (the program's rate and earning rules; the response has the breakdown)."""

    model_config = ConfigDict(
        json_schema_extra={
            **_exactly_one_of("points", "amount", "order"),
            "examples": [
                {
                    "amount": "12.50",
                    "reference": "order-1042",
                    "description": "Online order",
                    "metadata": {"channel": "web"},
                }
            ],
        }
    )

    points: PositivePoints | None = None
    amount: Amount | None = None
    order: OrderModel | None = None
    pending_days: Annotated[int, Field(ge=0, le=365)] | None = Field(
        default=None, description="Days the points stay pending (a return window); default: the program's."
    )

    @model_validator(mode="after")
    def _points_or_amount(self) -> EarnRequest:
        _check_exactly_one_of(self, "points", "amount", "order")
        return self


class RedeemRequest(_Movement):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"points": 500, "reference": "checkout-1043", "description": "Discount at checkout"}]
        }
    )

    points: PositivePoints


class AdjustRequest(_Movement):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"points": -50, "reason": "Duplicate store credit", "reference": "ticket-311"}]}
    )

    points: Annotated[
        int,
        Field(ge=-MAX_POINTS_PER_MOVEMENT, le=MAX_POINTS_PER_MOVEMENT, json_schema_extra={"not": {"const": 0}}),
        AfterValidator(_not_zero),
    ] = Field(description="Signed, non-zero: positive credits, negative debits (never below zero).")
    reason: Description


class ExpiringSoon(Out):
    points: int
    at: datetime


class ReverseRequest(_Movement):
    """Take back points earned for an order (its `reference`): exactly one of `points`, or the
    points an `amount` of a partial refund converts to. Pending points go first."""

    model_config = ConfigDict(
        json_schema_extra={
            **_exactly_one_of("points", "amount"),
            "examples": [{"reference": "order-1042", "amount": "12.50", "description": "Order refunded"}],
        }
    )

    reference: Reference = Field(description="The reference the points were earned with, e.g. the order id.")
    points: PositivePoints | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> ReverseRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class BalanceOut(Out):
    member_id: str
    available: int = Field(description="Spendable now: points past their expiry never count.")
    pending: int = Field(description="Earned, waiting out a return window: not spendable yet.")
    expiring_soon: ExpiringSoon | None = Field(description="The next expiry: how many points, and when.")
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_adjusted: int = Field(description="Net sum of adjustments (may be negative).")
    lifetime_expired: int
    lifetime_reversed: int
    updated_at: datetime
    tier: str | None = Field(
        default=None,
        description="The member's tier (after this movement): the tier earned, or a paid plan's if higher; null: none.",
    )
    tier_status: TierStatusOut | None = Field(
        default=None,
        description="GET balance only, when the tenant has tiers: the earned tier's expiry, benefits and progress.",
    )
    plan: PlanStatusOut | None = Field(
        default=None, description="GET balance only: the paid plan in force (null: none, or it has ended)."
    )


class TransactionOut(Out):
    id: str = Field(examples=["txn_01JD0000000000000000000000"])
    member_id: str
    type: MovementType
    points: int = Field(description="Signed change of the member's points (available + pending).")
    sequence: int = Field(description="Position in the member's ledger, from 1.")
    balance_after: int
    amount: str | None
    currency: str | None
    reference: str | None
    description: str | None
    reason: str | None
    metadata: dict[str, str]
    occurred_at: datetime
    created_at: datetime
    idempotency_key: str
    expires_at: datetime | None = Field(description="For points credited under an expiry policy: when they expire.")
    pending_change: int = Field(description="Signed change of the pending points (points - pending_change: available).")
    matures_at: datetime | None = Field(description="For pending points: when they become available.")
    breakdown: list[ShareOut] = Field(description="Order earns: which rule (or the base rate) gave what.")


class MovementOut(Out):
    transaction: TransactionOut
    balance: BalanceOut


class ReversalSummary(Out):
    requested: int
    reversed: int
    from_pending: int
    from_available: int
    outcome: Literal["full", "clawed_back", "stopped_at_zero"] = Field(
        description="full: all taken back; clawed_back: the balance went below zero to do it; "
        "stopped_at_zero: the member held less, so less was taken back."
    )


class ReversalOut(MovementOut):
    reversal: ReversalSummary


class TransactionList(Out):
    data: list[TransactionOut]
    next_cursor: str | None
