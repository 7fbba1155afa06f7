"""Commerce integrations: the generic order intake, and Shopify-style webhooks.

``POST /v1/integrations/orders`` takes a shop's paid, refunded and cancelled order events
with a tenant key (write scope). Shopify cannot send our key: each Shopify integration has
its own URL, ``/v1/integrations/shopify/{integration_id}/webhooks``, whose id names the
tenant and whose requests are authenticated by ``X-Shopify-Hmac-Sha256`` over the raw body.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.program import to_order
from chalicelib.api.routing import ApiRequest, Result, endpoint, read_json
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.commerce import Customer, OrderEvent, OrderEventResult, OrderEventType, Outcome
from chalicelib.domain.errors import TenantNotReady, TenantSuspended, Unauthorized
from chalicelib.domain.shopify import IssuedIntegration, ShopifyIntegration, tenant_of, to_order_event
from chalicelib.domain.tenants import TenantStatus
from chalicelib.observability import annotate, logger
from chalicelib.services import order_intake, shopify

bp = Blueprint(__name__)
TAG = "Commerce"
REPLAYED = {"Idempotent-Replayed": "true"}


def _points(result: OrderEventResult) -> int:
    """The signed change of the member's points the event made (an order already earned: none)."""
    if result.entry is None or result.record.outcome is Outcome.ALREADY_EARNED:
        return 0
    return result.entry.points


def _event_out(result: OrderEventResult) -> schemas.OrderEventOut:
    record, entry = result.record, result.entry
    return schemas.OrderEventOut(
        event_id=record.event_id,
        order_id=record.order_id,
        type=record.type.value,
        outcome=record.outcome.value,
        member_id=record.member_id,
        points=_points(result),
        transaction=presenters.transaction(entry) if entry else None,
        replayed=result.replayed,
    )


@endpoint(
    bp,
    "/integrations/orders",
    "POST",
    summary="Take a shop's paid, refunded or cancelled order event (idempotent by order id and event id)",
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.OrderEventRequest,
    response=schemas.OrderEventOut,
)
def take_order_event(request: ApiRequest) -> Result:
    body = request.body.root
    tenant = request.tenant.tenant
    if isinstance(body, schemas.PaidOrderEvent):
        customer = body.customer
        event = OrderEvent(
            source="orders",
            event_id=body.event_id,
            type=OrderEventType.PAID,
            order_id=body.order.id,
            currency=tenant.currency,
            timezone=tenant.timezone,
            order=to_order(body.order, tenant.currency),
            customer=Customer(
                member_id=customer.member_id,
                external_ids=(customer.external_id,) if customer.external_id else (),
                email=customer.email,
                name=customer.name,
                enrol_external_id=customer.external_id if body.enrol else None,
            ),
            occurred_at=body.occurred_at,
            actor_key_id=request.tenant.key_id,
        )
    else:
        amount = getattr(body, "amount", None)
        event = OrderEvent(
            source="orders",
            event_id=body.event_id,
            type=OrderEventType(body.type),
            order_id=body.order_id,
            currency=tenant.currency,
            timezone=tenant.timezone,
            refund_amount=Decimal(amount) if amount is not None else None,
            occurred_at=body.occurred_at,
            actor_key_id=request.tenant.key_id,
        )
    result = order_intake(request.services, tenant.tenant_id, timezone=tenant.timezone).handle(event)
    logger.info(
        "order event",
        extra={"order_event": event.event_id, "outcome": str(result.record.outcome), "replayed": result.replayed},
    )
    return Result(model=_event_out(result), headers=REPLAYED if result.replayed else {})


# --- Shopify ----------------------------------------------------------------------------------------


class _IntegrationFields(TypedDict):
    """What ShopifyIntegrationOut and CreatedShopifyIntegration share."""

    id: str
    webhook_path: str
    description: str | None
    auto_enrol: bool
    secrets: list[schemas.WebhookSecretOut]
    created_at: datetime
    updated_at: datetime


def _integration_fields(value: ShopifyIntegration) -> _IntegrationFields:
    return {
        "id": value.integration_id,
        "webhook_path": f"/v1/integrations/shopify/{value.integration_id}/webhooks",
        "description": value.description,
        "auto_enrol": value.auto_enrol,
        "secrets": [schemas.WebhookSecretOut(created_at=s.created_at, expires_at=s.expires_at) for s in value.secrets],
        "created_at": value.created_at,
        "updated_at": value.updated_at,
    }


def _issued(value: IssuedIntegration) -> schemas.CreatedShopifyIntegration:
    return schemas.CreatedShopifyIntegration(**_integration_fields(value.integration), secret=value.secret)


@endpoint(
    bp,
    "/integrations/shopify",
    "POST",
    summary="Connect a Shopify store: its webhook URL, and the shared secret (shown once if generated)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.CreateShopifyIntegrationRequest,
    response=schemas.CreatedShopifyIntegration,
)
def create_shopify_integration(request: ApiRequest) -> schemas.CreatedShopifyIntegration:
    body: schemas.CreateShopifyIntegrationRequest = request.body
    service = shopify(request.services, request.tenant.tenant_id)
    return _issued(service.create(description=body.description, auto_enrol=body.auto_enrol, secret=body.secret))


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}",
    "GET",
    summary="A Shopify integration (never its secret)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.ShopifyIntegrationOut,
)
def get_shopify_integration(request: ApiRequest, integration_id: str) -> schemas.ShopifyIntegrationOut:
    found = shopify(request.services, request.tenant.tenant_id).get(integration_id)
    return schemas.ShopifyIntegrationOut(**_integration_fields(found))


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}/rotate-secret",
    "POST",
    summary="Replace the shared secret; the previous one keeps verifying for an overlap window",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.RotateShopifySecretRequest,
    response=schemas.CreatedShopifyIntegration,
)
def rotate_shopify_secret(request: ApiRequest, integration_id: str) -> schemas.CreatedShopifyIntegration:
    body: schemas.RotateShopifySecretRequest = request.body
    return _issued(shopify(request.services, request.tenant.tenant_id).rotate_secret(integration_id, body.secret))


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}/webhooks",
    "POST",
    summary="Shopify's orders/paid, refunds/create and orders/cancelled webhooks (X-Shopify-Hmac-Sha256)",
    tag=TAG,
    auth="signature",
    response=schemas.ShopifyWebhookOut,
)
def receive_shopify_webhook(request: ApiRequest, integration_id: str) -> Result:
    services = request.services
    tenant_id = tenant_of(integration_id)
    tenant = services.tenant_store.get(tenant_id, consistent=False) if tenant_id else None
    if tenant is None:
        raise Unauthorized("the webhook's X-Shopify-Hmac-Sha256 does not verify for this integration")
    logger.append_keys(tenant_id=tenant.tenant_id)
    annotate(tenant_id=tenant.tenant_id)
    if tenant.status == TenantStatus.PROVISIONING:
        raise TenantNotReady(
            f"tenant {tenant.tenant_id!r} is still being provisioned",
            details={"tenant_id": tenant.tenant_id, "status": str(tenant.status)},
        )
    # The signature is checked before anything of the body is read or anything is written.
    integration = shopify(services, tenant.tenant_id).authenticate(
        integration_id, request.raw_body, request.headers.get("x-shopify-hmac-sha256")
    )
    if tenant.status != TenantStatus.ACTIVE:
        raise TenantSuspended(f"tenant {tenant.tenant_id!r} is suspended")
    topic = request.headers.get("x-shopify-topic", "")
    payload = read_json(request.raw_body or b"null")
    event = to_order_event(integration, topic, payload, tenant_currency=tenant.currency, timezone=tenant.timezone)
    if event is None:
        logger.info("shopify topic ignored", extra={"topic": topic[:64]})
        return Result(
            model=schemas.ShopifyWebhookOut(
                topic=topic[:64],
                outcome="ignored",
                order_id=None,
                member_id=None,
                points=0,
                transaction_id=None,
                replayed=False,
            )
        )
    result = order_intake(services, tenant.tenant_id, timezone=tenant.timezone).handle(event)
    logger.info("shopify order event", extra={"topic": topic, "outcome": str(result.record.outcome)})
    return Result(
        model=schemas.ShopifyWebhookOut(
            topic=topic,
            outcome=result.record.outcome.value,
            order_id=result.record.order_id,
            member_id=result.record.member_id,
            points=_points(result),
            transaction_id=result.entry.transaction_id if result.entry else None,
            replayed=result.replayed,
        ),
        headers=REPLAYED if result.replayed else {},
    )
