"""Order events and the Shopify integration -> response schemas."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from chalicelib.api.presenters.points import transaction
from chalicelib.api.presenters.webhooks import signing_secrets
from chalicelib.domain.commerce import OrderEventResult, Outcome

if TYPE_CHECKING:
    from chalicelib.api.schemas.commerce import (
        CreatedShopifyIntegration,
        OrderEventOut,
        ShopifyIntegrationOut,
        ShopifyWebhookOut,
    )
    from chalicelib.api.schemas.webhooks import WebhookSecretOut
    from chalicelib.domain.shopify import IssuedIntegration, ShopifyIntegration


def _order_event_points(result: OrderEventResult) -> int:
    """The signed change of the member's points the event made (an order already earned: none)."""
    if result.entry is None or result.record.outcome is Outcome.ALREADY_EARNED:
        return 0
    return result.entry.points


def order_event(result: OrderEventResult) -> OrderEventOut:
    from chalicelib.api.schemas.commerce import OrderEventOut

    record, entry = result.record, result.entry
    return OrderEventOut(
        event_id=record.event_id,
        order_id=record.order_id,
        type=record.type.value,
        outcome=record.outcome.value,
        member_id=record.member_id,
        points=_order_event_points(result),
        transaction=transaction(entry) if entry else None,
        replayed=result.replayed,
    )


def shopify_webhook(topic: str, result: OrderEventResult | None) -> ShopifyWebhookOut:
    """The answer to a Shopify webhook: what its order event did, or ``ignored`` (no result:
    a topic that is not an order event)."""
    from chalicelib.api.schemas.commerce import ShopifyWebhookOut

    if result is None:
        return ShopifyWebhookOut(
            topic=topic,
            outcome="ignored",
            order_id=None,
            member_id=None,
            points=0,
            transaction_id=None,
            replayed=False,
        )
    return ShopifyWebhookOut(
        topic=topic,
        outcome=result.record.outcome.value,
        order_id=result.record.order_id,
        member_id=result.record.member_id,
        points=_order_event_points(result),
        transaction_id=result.entry.transaction_id if result.entry else None,
        replayed=result.replayed,
    )


class _IntegrationFields(TypedDict):
    """What ShopifyIntegrationOut and CreatedShopifyIntegration share."""

    id: str
    webhook_path: str
    description: str | None
    auto_enrol: bool
    secrets: list[WebhookSecretOut]
    created_at: datetime
    updated_at: datetime


def _shopify_integration_fields(value: ShopifyIntegration) -> _IntegrationFields:
    return {
        "id": value.integration_id,
        "webhook_path": f"/v1/integrations/shopify/{value.integration_id}/webhooks",
        "description": value.description,
        "auto_enrol": value.auto_enrol,
        "secrets": signing_secrets(value.secrets),
        "created_at": value.created_at,
        "updated_at": value.updated_at,
    }


def shopify_integration(value: ShopifyIntegration) -> ShopifyIntegrationOut:
    from chalicelib.api.schemas.commerce import ShopifyIntegrationOut

    return ShopifyIntegrationOut(**_shopify_integration_fields(value))


def issued_shopify_integration(value: IssuedIntegration) -> CreatedShopifyIntegration:
    from chalicelib.api.schemas.commerce import CreatedShopifyIntegration

    return CreatedShopifyIntegration(**_shopify_integration_fields(value.integration), secret=value.secret)
