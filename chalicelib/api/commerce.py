"""Commerce integrations: the generic order intake, and Shopify-style webhooks.

``POST /v1/integrations/orders`` takes a shop's paid, refunded and cancelled order events
with a tenant key (write scope). Shopify cannot send our key: each Shopify integration has
its own URL, ``/v1/integrations/shopify/{integration_id}/webhooks``, whose id names the
tenant and whose requests are authenticated by ``X-Shopify-Hmac-Sha256`` over the raw body.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.program import to_order
from chalicelib.api.routing import ApiRequest, Result, endpoint, read_json, schemas
from chalicelib.domain.errors import (
    AmountTooSmall,
    BalanceLimitExceeded,
    IdempotencyKeyReused,
    InsufficientPoints,
    LoyaltyError,
    MovementTooLarge,
    NotFound,
    OrderNotPaid,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
    TenantNotReady,
    TenantSuspended,
    Unauthorized,
)
from chalicelib.domain.scopes import Scope
from chalicelib.observability import annotate, logger

if TYPE_CHECKING:
    from chalicelib.api.schemas.commerce import (
        CreatedShopifyIntegration,
        CreateShopifyIntegrationRequest,
        RotateShopifySecretRequest,
        ShopifyIntegrationOut,
    )

bp = Blueprint(__name__)
TAG = "Commerce"
#: What turning an order event into movements can refuse (both intake routes).
ORDER_EVENT_ERRORS: tuple[type[LoyaltyError], ...] = (
    NotFound,
    IdempotencyKeyReused,
    OrderNotPaid,
    AmountTooSmall,
    BalanceLimitExceeded,
    MovementTooLarge,
    InsufficientPoints,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
)


@endpoint(
    bp,
    "/integrations/orders",
    "POST",
    summary="Take a shop's paid, refunded or cancelled order event (idempotent by order id and event id)",
    description=(
        "Takes a shop's order event (paid, refunded or cancelled) and moves the points it implies: earns "
        "for a paid order under the program's rules, reversals for a refund or a cancellation. Idempotent "
        "by order id and event id: the same event sent again answers the first result; another event id "
        "reusing an order's key with other content is 422 `idempotency_key_reused`. Refused when the "
        "order is not paid (`order_not_paid`), too small to earn, or would break a balance limit."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.WRITE,
    body=schemas.commerce.OrderEventRequest,
    response=schemas.commerce.OrderEventOut,
    errors=ORDER_EVENT_ERRORS,
)
def take_order_event(request: ApiRequest) -> Result:
    from chalicelib.api.presenters import commerce as presenters
    from chalicelib.api.schemas.commerce import PaidOrderEvent
    from chalicelib.domain.commerce import Customer, OrderEvent, OrderEventType

    body = request.body.root
    tenant = request.tenant.tenant
    if isinstance(body, PaidOrderEvent):
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
    result = request.services.for_tenant(request.tenant).order_intake.handle(event)
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
    description=(
        "Connects a Shopify store: answers the webhook URL to configure in Shopify and the shared secret "
        "used to verify its signatures (generated when not given; shown in this answer only). Not "
        "idempotent: each call creates another integration."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.commerce.CreateShopifyIntegrationRequest,
    response=schemas.commerce.CreatedShopifyIntegration,
)
def create_shopify_integration(request: ApiRequest) -> CreatedShopifyIntegration:
    from chalicelib.api.presenters import commerce as presenters

    body: CreateShopifyIntegrationRequest = request.body
    service = request.services.for_tenant(request.tenant).shopify
    return presenters.issued_shopify_integration(
        service.create(description=body.description, auto_enrol=body.auto_enrol, secret=body.secret)
    )


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}",
    "GET",
    summary="A Shopify integration (never its secret)",
    description=(
        "One Shopify integration, with its webhook URL and status; never its secret. 404 if it is not this tenant's."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.commerce.ShopifyIntegrationOut,
)
def get_shopify_integration(request: ApiRequest, integration_id: str) -> ShopifyIntegrationOut:
    from chalicelib.api.presenters import commerce as presenters

    found = request.services.for_tenant(request.tenant).shopify.get(integration_id)
    return presenters.shopify_integration(found)


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}/rotate-secret",
    "POST",
    summary="Replace the shared secret; the previous one keeps verifying for an overlap window",
    description=(
        "Replaces the shared secret (given, or generated and shown in this answer only). The previous "
        "secret keeps verifying webhooks for an overlap window, so the store can be switched without "
        "losing events."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.commerce.RotateShopifySecretRequest,
    response=schemas.commerce.CreatedShopifyIntegration,
)
def rotate_shopify_secret(request: ApiRequest, integration_id: str) -> CreatedShopifyIntegration:
    from chalicelib.api.presenters import commerce as presenters

    body: RotateShopifySecretRequest = request.body
    return presenters.issued_shopify_integration(
        request.services.for_tenant(request.tenant).shopify.rotate_secret(integration_id, body.secret)
    )


@endpoint(
    bp,
    "/integrations/shopify/{integration_id}/webhooks",
    "POST",
    summary="Shopify's orders/paid, refunds/create and orders/cancelled webhooks (X-Shopify-Hmac-Sha256)",
    description=(
        "The URL Shopify calls with orders/paid, refunds/create and orders/cancelled webhooks. No API "
        "key: the raw body must be signed by `X-Shopify-Hmac-Sha256` under the integration's secret, else "
        "401. Each webhook moves points as `POST /v1/integrations/orders` does, idempotently by Shopify's "
        "webhook id, so Shopify's retries never move points twice."
    ),
    tag=TAG,
    auth="signature",
    response=schemas.commerce.ShopifyWebhookOut,
    errors=(TenantSuspended, TenantNotReady, *ORDER_EVENT_ERRORS),
)
def receive_shopify_webhook(request: ApiRequest, integration_id: str) -> Result:
    from chalicelib.api.presenters import commerce as presenters
    from chalicelib.domain.shopify import tenant_of, to_order_event
    from chalicelib.domain.tenants import TenantStatus

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
    tenant_services = services.for_tenant_id(tenant.tenant_id, created_at=tenant.created_at, timezone=tenant.timezone)
    # The signature is checked before anything of the body is read or anything is written.
    integration = tenant_services.shopify.authenticate(
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
    result = tenant_services.order_intake.handle(event)
    logger.info("shopify order event", extra={"topic": topic, "outcome": str(result.record.outcome)})
    return Result.replayable(presenters.shopify_webhook(topic, result), replayed=result.replayed)
