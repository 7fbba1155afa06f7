"""Earning rules, activities, orders and the earning preview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints

from chalicelib.api.schemas.common import (
    DECIMAL_RULE,
    Amount,
    Description,
    MemberId,
    Metadata,
    Name,
    OccurredAt,
    OrderPart,
    Out,
    PositivePoints,
    PreviewAt,
    Reference,
    Segments,
    StrictRequest,
    _decimal,
    _no_repeats,
)
from chalicelib.domain.rules import ACTIVITY_TYPE, Per, RuleKind

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Factor = Annotated[str, *_decimal(r"^([1-9][0-9]?)(\.[0-9]{1,2})?$", 99, 'e.g. "1.5" or 2 (> 1, < 100).')]


ActivityType = Annotated[
    str,
    StringConstraints(pattern=ACTIVITY_TYPE.pattern),
    Field(
        description="review, social_follow, social_share, profile_completed, signup, newsletter_signup, custom:<name>"
    ),
]


class ActivityRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "review", "reference": "review-5521", "description": "Product review"}]
        }
    )

    type: ActivityType
    reference: Reference | None = Field(default=None, description="e.g. the review's id in the brand's system.")
    description: Description | None = None
    occurred_at: OccurredAt | None = None
    metadata: Metadata = Field(default_factory=dict)


class RuleRequest(StrictRequest):
    """An earning rule. `line_multiplier`: lines whose sku or category matches earn `factor` times
    their base; `order_multiplier`: the whole order earns `factor` times (a campaign, optionally on
    some `weekdays` in the tenant's time zone); `order_bonus`: `points` for an order. Every kind may
    require `min_order_total` and be limited to [`starts_at`, `ends_at`). `milestone`: `points` on the
    member's `at`-th order or every `every`-th; `activity`: `points` for an `activity`, at most `limit`
    times `per` day, week, month, year or ever. `earning_cap`: a member earns at most `cap` points `per`
    period, whatever earns them; an order rule with `cap` and `per` gives a member at most `cap` points
    per period. Order rules may be limited to `tiers` and `segments`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Double points on shoes",
                    "kind": "line_multiplier",
                    "factor": "2",
                    "categories": ["shoes"],
                    "starts_at": "2026-03-01T00:00:00Z",
                    "ends_at": "2026-04-01T00:00:00Z",
                }
            ]
        }
    )

    name: Name
    kind: RuleKind
    factor: Factor | None = None
    points: PositivePoints | None = None
    skus: Annotated[list[Code], Field(max_length=100)] = Field(default_factory=list)
    categories: Annotated[list[Code], Field(max_length=100)] = Field(default_factory=list)
    weekdays: Annotated[list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]], Field(max_length=7)] = Field(
        default_factory=list
    )
    min_order_total: Amount | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    every: Annotated[int, Field(ge=2, le=1000)] | None = Field(default=None, description="milestone: every Nth order.")
    at: Annotated[int, Field(ge=1, le=100_000)] | None = Field(default=None, description="milestone: the Nth order.")
    activity: ActivityType | None = Field(default=None, description="activity: the activity type it rewards.")
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="activity: at most this many times per `per`."
    )
    per: Per | None = Field(
        default=None, description="activity: with `limit`; earning_cap and capped order rules: with `cap`."
    )
    tiers: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]],
        Field(max_length=10, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ] = Field(default_factory=list, description="Order rules: only members of these tiers (empty: every member).")
    cap: PositivePoints | None = Field(
        default=None,
        description="earning_cap: the most points a member earns per `per`; order rules: the most points the rule "
        "gives a member per `per` (a campaign cap).",
    )
    segments: Segments = Field(
        default_factory=list, description="Order rules: only members in one of these segments (empty: every member)."
    )


class RuleOut(Out):
    id: str = Field(examples=["rul_01JD0000000000000000000000"])
    name: str
    kind: RuleKind
    factor: str | None
    points: int | None
    skus: list[str]
    categories: list[str]
    weekdays: list[str]
    min_order_total: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    every: int | None
    at: int | None
    activity: str | None
    limit: int | None
    per: Per | None
    created_at: datetime
    status: Literal["scheduled", "active", "ended"]
    tiers: list[str] = Field(default_factory=list)
    cap: int | None = None
    segments: list[str] = Field(default_factory=list)


class RuleList(Out):
    data: list[RuleOut]


class OrderLineModel(StrictRequest):
    sku: Code
    category: Code | None = None
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unit_price: Amount = Field(description=f"The listed price of one unit, before discounts. {DECIMAL_RULE}")
    discount: OrderPart | None = Field(
        default=None, description=f"Taken off this line (of unit_price * quantity); default 0. {DECIMAL_RULE}"
    )


class OrderModel(StrictRequest):
    """An order. Points follow what the customer paid: the lines after their discounts and the
    order's `discount` (spread over the lines in proportion), never more than `total - shipping -
    tax`; shipping and tax earn only when the program says so (`earn_on_shipping`, `earn_on_tax`)."""

    id: Reference = Field(description="The shop's order id; the earn's reference (for refunds) unless one is sent.")
    total: Amount = Field(
        description=f"What the customer paid in all, after discounts, with shipping and tax. {DECIMAL_RULE}"
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="Must be the tenant's currency."
    )
    lines: Annotated[list[OrderLineModel], Field(max_length=100)] = Field(
        default_factory=list,
        description="Line items at their listed prices; without them the base rate applies to total - shipping - tax.",
    )
    discount: OrderPart | None = Field(
        default=None,
        description=f"Taken off the whole order (spread over the lines in proportion); default 0. {DECIMAL_RULE}",
    )
    shipping: OrderPart | None = Field(
        default=None, description=f"The shipping inside total; default 0. {DECIMAL_RULE}"
    )
    tax: OrderPart | None = Field(
        default=None, description=f"The tax inside total (added or included); default 0. {DECIMAL_RULE}"
    )


class PreviewRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order": {
                        "id": "order-1042",
                        "total": "89.90",
                        "currency": "EUR",
                        "lines": [{"sku": "SKU-RUN-42", "category": "shoes", "quantity": 1, "unit_price": "89.90"}],
                    },
                    "member_id": "mem_01JD0000000000000000000000",
                }
            ]
        }
    )

    order: OrderModel
    occurred_at: PreviewAt | None = Field(
        default=None,
        description="Evaluate the rules in force then (2000 to 2099, in the future too: a preview writes "
        "nothing); default now.",
    )
    member_id: MemberId | None = Field(
        default=None,
        description="Preview for this member, as their earn would compute it: their tier (multiplier, tier "
        "campaigns), segments, the milestone of their next order, and the earning caps with what they have left. "
        "404 if unknown.",
    )


class ShareOut(Out):
    source: Literal["base", "discount", "rule", "tier", "plan", "cap", "requested", "challenge"] = Field(
        description="base: the base rate at the listed prices; discount: what the order's discounts (and amounts "
        "that do not earn, such as tax included in prices) took off it (negative); "
        "tier: the member's tier multiplier (tier:<name>); plan: a paid plan's (plan:<plan id>); "
        "cap: points cut by an earning cap (negative; rule_id: the cap's rule, or the capped campaign); "
        "requested: what a capped earn of points or an amount asked for; challenge: the points of a challenge this "
        "movement completed (rule_id: the challenge)."
    )
    name: str
    points: int
    rule_id: str | None


class PreviewOut(Out):
    points: int
    breakdown: list[ShareOut]
    tier: str | None = Field(
        default=None, description="With member_id: the member's tier the preview applied (null: none)."
    )
