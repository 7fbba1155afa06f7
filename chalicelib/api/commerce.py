"""Commerce integrations: the generic order intake, and Shopify-style webhooks.

``POST /v1/integrations/orders`` takes a shop's paid, refunded and cancelled order events
with a tenant key (write scope). Shopify cannot send our key: each Shopify integration has
its own URL, ``/v1/integrations/shopify/{integration_id}/webhooks``, whose id names the
tenant and whose requests are authenticated by ``X-Shopify-Hmac-Sha256`` over the raw body.
"""

from __future__ import annotations

from decimal import Decimal

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.program import to_order
from chalicelib.api.routing import ApiRequest, Result, endpoint, read_json
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.commerce import Customer, OrderEvent, OrderEventType
from chalicelib.domain.errors import TenantNotReady, TenantSuspended, Unauthorized
from chalicelib.domain.shopify import tenant_of, to_order_event
from chalicelib.domain.tenants import TenantStatus
from chalicelib.observability import annotate, logger
from chalicelib.services import order_intake, shopify

bp = Blueprint(__name__)
TAG = "Commerce"


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
    return Result.replayable(presenters.order_event(result), replayed=result.replayed)


# --- Shopify ----------------------------------------------------------------------------------------


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
    return presenters.issued_shopify_integration(
        service.create(description=body.description, auto_enrol=body.auto_enrol, secret=body.secret)
    )


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
    return presenters.shopify_integration(found)


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
    return presenters.issued_shopify_integration(
        shopify(request.services, request.tenant.tenant_id).rotate_secret(integration_id, body.secret)
    )


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
        return Result(model=presenters.shopify_webhook(topic[:64], None))
    result = order_intake(services, tenant.tenant_id, timezone=tenant.timezone).handle(event)
    logger.info("shopify order event", extra={"topic": topic, "outcome": str(result.record.outcome)})
    return Result.replayable(presenters.shopify_webhook(topic, result), replayed=result.replayed)
