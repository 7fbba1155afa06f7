"""Commerce integrations: order intake, Shopify."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel, StringConstraints, model_validator

from chalicelib.api.schemas.common import (
    Amount,
    Description,
    Email,
    ExternalId,
    Name,
    OccurredAt,
    Out,
    Reference,
    StrictRequest,
    _check_exactly_one_of,
    _exactly_one_of,
)
from chalicelib.api.schemas.points import TransactionOut
from chalicelib.api.schemas.rules import OrderModel
from chalicelib.api.schemas.webhooks import WebhookSecretOut

EventId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
SharedSecret = Annotated[str, StringConstraints(min_length=16, max_length=255, pattern=r"^[\x21-\x7e]+$")]


class OrderCustomer(StrictRequest):
    """Exactly one of `member_id` or `external_id`; `email` and `name` are used when enrolling."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("member_id", "external_id"))

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external_id: ExternalId | None = None
    email: Email | None = None
    name: Name | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> OrderCustomer:
        _check_exactly_one_of(self, "member_id", "external_id")
        return self


class PaidOrderEvent(StrictRequest):
    type: Literal["paid"]
    event_id: EventId = Field(description="The shop's id of this event; with the order id, the idempotency key.")
    order: OrderModel
    customer: OrderCustomer
    enrol: bool = Field(default=False, description="Enrol a customer whose external_id matches no member.")
    occurred_at: OccurredAt | None = None


class RefundedOrderEvent(StrictRequest):
    type: Literal["refunded"]
    event_id: EventId
    order_id: Reference
    amount: Amount | None = Field(
        default=None, description="The amount refunded; its share of the order's total is reversed. Omitted: the rest."
    )
    occurred_at: OccurredAt | None = None


class CancelledOrderEvent(StrictRequest):
    type: Literal["cancelled"]
    event_id: EventId
    order_id: Reference
    occurred_at: OccurredAt | None = None


OrderEvent = Annotated[PaidOrderEvent | RefundedOrderEvent | CancelledOrderEvent, Field(discriminator="type")]


class OrderEventRequest(RootModel[OrderEvent]):
    """A paid, refunded or cancelled order event from a shop."""

    model_config = ConfigDict(
        strict=True,
        defer_build=True,
        json_schema_extra={
            "examples": [
                {
                    "type": "paid",
                    "event_id": "evt-order-1042-paid",
                    "order": {
                        "id": "order-1042",
                        "total": "89.90",
                        "currency": "EUR",
                        "lines": [{"sku": "SKU-RUN-42", "category": "shoes", "quantity": 1, "unit_price": "89.90"}],
                    },
                    "customer": {"external_id": "cust-1042"},
                    "enrol": True,
                }
            ]
        },
    )


class OrderEventOut(Out):
    event_id: str
    order_id: str
    type: Literal["paid", "refunded", "cancelled"]
    outcome: Literal["earned", "already_earned", "reversed", "nothing_to_reverse"] = Field(
        description="already_earned: a paid event under another event id for an order that had already earned; "
        "nothing was credited and `transaction` is the original earn."
    )
    member_id: str
    points: int = Field(description="Signed change of the member's points this event made (0: none).")
    transaction: TransactionOut | None = Field(
        description="The ledger entry the event made (already_earned: the order's original earn); null when none."
    )
    replayed: bool = Field(description="True when this event had been received before: the first result.")


class CreateShopifyIntegrationRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Main Shopify store", "auto_enrol": True}]}
    )

    description: Description | None = None
    auto_enrol: bool = Field(default=True, description="Enrol customers who match no member.")
    secret: SharedSecret | None = Field(
        default=None,
        description="Shopify's webhook signing secret; omitted: one is generated and shown once.",
    )


class RotateShopifySecretRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"secret": "shpss_5c1e0d2b9a8f47e6b3d0c9a1"}, {}]})

    secret: SharedSecret | None = Field(default=None, description="The new secret; omitted: one is generated.")


class ShopifyIntegrationOut(Out):
    id: str = Field(examples=["shp_01JD0000000000000000000000_acme"])
    webhook_path: str = Field(description="Where the store sends its webhooks (POST, HMAC-signed).")
    description: str | None
    auto_enrol: bool
    secrets: list[WebhookSecretOut]
    created_at: datetime
    updated_at: datetime


class CreatedShopifyIntegration(ShopifyIntegrationOut):
    secret: str | None = Field(description="The generated secret, shown only now; null when you supplied it.")


class ShopifyWebhookOut(Out):
    topic: str
    outcome: Literal["earned", "already_earned", "reversed", "nothing_to_reverse", "ignored"]
    order_id: str | None
    member_id: str | None
    points: int
    transaction_id: str | None
    replayed: bool
