"""Point movements, balances and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict

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
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT, MovementType


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


#: What an earn of 12.50 EUR answers (``MovementOut``), at 10 points per euro: its ledger entry
#: and the balance after it (``tier_status`` and ``plan``: GET balance only).
_TRANSACTION_EXAMPLE: JsonDict = {
    "id": "txn_01JD0000000000000000000000",
    "member_id": "mem_01JD0000000000000000000000",
    "type": "earn",
    "points": 125,
    "sequence": 12,
    "balance_after": 1250,
    "amount": "12.50",
    "currency": "EUR",
    "reference": "order-1042",
    "description": "Online order",
    "reason": None,
    "metadata": {"channel": "web"},
    "occurred_at": "2026-03-01T09:30:00Z",
    "created_at": "2026-03-01T09:30:01Z",
    "idempotency_key": "order-1042-earn",
    "expires_at": "2027-03-01T09:30:00Z",
    "pending_change": 0,
    "matures_at": None,
    "breakdown": [],
}
_BALANCE_EXAMPLE: JsonDict = {
    "member_id": "mem_01JD0000000000000000000000",
    "available": 1250,
    "pending": 0,
    "expiring_soon": {"points": 200, "at": "2026-06-30T21:59:59Z"},
    "lifetime_earned": 2400,
    "lifetime_redeemed": 1150,
    "lifetime_adjusted": 0,
    "lifetime_expired": 0,
    "lifetime_reversed": 0,
    "updated_at": "2026-03-01T09:30:01Z",
    "tier": "gold",
    "tier_status": None,
    "plan": None,
    "lifetime_transferred": 0,
}


class BalanceOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_BALANCE_EXAMPLE,
                    "tier_status": {
                        "tier": "gold",
                        "since": "2026-01-15T10:00:00Z",
                        "expires_at": "2027-01-15T10:00:00Z",
                        "multiplier": "1.5",
                        "perks": ["Free shipping"],
                        "metric": "points",
                        "qualifying": 5400,
                        "progress": {"next_tier": "platinum", "remaining": 4600, "metric": "points"},
                    },
                }
            ]
        }
    )

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
    lifetime_transferred: int = Field(
        default=0, description="Net points transferred: received from other members minus sent to them."
    )


class TransactionOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [_TRANSACTION_EXAMPLE]})

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"transaction": _TRANSACTION_EXAMPLE, "balance": _BALANCE_EXAMPLE}]}
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction": {
                        **_TRANSACTION_EXAMPLE,
                        "id": "txn_01JD0000000000000000000001",
                        "type": "reverse",
                        "points": -125,
                        "sequence": 13,
                        "balance_after": 1125,
                        "description": "Order refunded",
                        "metadata": {},
                        "occurred_at": "2026-03-05T14:00:00Z",
                        "created_at": "2026-03-05T14:00:00Z",
                        "idempotency_key": "order-1042-refund",
                        "expires_at": None,
                    },
                    "balance": {
                        **_BALANCE_EXAMPLE,
                        "available": 1125,
                        "lifetime_reversed": 125,
                        "updated_at": "2026-03-05T14:00:00Z",
                    },
                    "reversal": {
                        "requested": 125,
                        "reversed": 125,
                        "from_pending": 0,
                        "from_available": 125,
                        "outcome": "full",
                    },
                }
            ]
        }
    )

    reversal: ReversalSummary


class TransactionList(Out):
    data: list[TransactionOut]
    next_cursor: str | None
