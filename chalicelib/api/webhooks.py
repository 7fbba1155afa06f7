"""Webhook endpoints and their delivery log (admin scope: URLs, secrets and payloads)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.webhooks import WebhookService

bp = Blueprint(__name__)
TAG = "Webhooks"


def _service(request: ApiRequest) -> WebhookService:
    """The caller's tenant's webhook service."""
    return request.services.webhooks(request.tenant.tenant_id)


@endpoint(
    bp,
    "/webhooks",
    "POST",
    summary="Subscribe an endpoint to events (the signing secret is shown once)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.CreateWebhookRequest,
    response=schemas.CreatedWebhook,
)
def create_webhook(request: ApiRequest) -> schemas.CreatedWebhook:
    body: schemas.CreateWebhookRequest = request.body
    return presenters.issued_webhook(
        _service(request).create(url=body.url, events=body.events, description=body.description)
    )


@endpoint(
    bp,
    "/webhooks",
    "GET",
    summary="List the webhook endpoints",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.WebhookList,
)
def list_webhooks(request: ApiRequest) -> schemas.WebhookList:
    return schemas.WebhookList(data=[presenters.webhook(w) for w in _service(request).list()])


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "GET",
    summary="One webhook endpoint",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.WebhookOut,
)
def get_webhook(request: ApiRequest, webhook_id: str) -> schemas.WebhookOut:
    return presenters.webhook(_service(request).get(webhook_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "PATCH",
    summary="Change an endpoint's URL, events or description; disable or re-enable it",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.UpdateWebhookRequest,
    response=schemas.WebhookOut,
)
def update_webhook(request: ApiRequest, webhook_id: str) -> schemas.WebhookOut:
    body: schemas.UpdateWebhookRequest = request.body
    sent = body.model_fields_set
    return presenters.webhook(
        _service(request).update(
            webhook_id,
            url=body.url,
            events=body.events,
            description=body.description,
            clear_description="description" in sent and body.description is None,
            status=body.status,
        )
    )


@endpoint(
    bp,
    "/webhooks/{webhook_id}/rotate-secret",
    "POST",
    summary="New signing secret (shown once); the previous one keeps signing for 24 h",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.CreatedWebhook,
)
def rotate_webhook_secret(request: ApiRequest, webhook_id: str) -> schemas.CreatedWebhook:
    return presenters.issued_webhook(_service(request).rotate_secret(webhook_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries",
    "GET",
    summary="The endpoint's deliveries, newest first: status, response code, attempts, latency",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.ListQuery,
    response=schemas.DeliveryList,
)
def list_webhook_deliveries(request: ApiRequest, webhook_id: str) -> schemas.DeliveryList:
    query: schemas.ListQuery = request.query
    page = _service(request).deliveries(webhook_id, limit=query.limit, cursor=query.cursor)
    return schemas.DeliveryList(data=[presenters.delivery(d) for d in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    "GET",
    summary="One delivery: its status, attempts and their response codes and latencies",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.DeliveryOut,
)
def get_webhook_delivery(request: ApiRequest, webhook_id: str, delivery_id: str) -> schemas.DeliveryOut:
    return presenters.delivery(_service(request).delivery(webhook_id, delivery_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    "POST",
    summary="Send a delivery again (same webhook-id and body), now",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=202,
    response=schemas.DeliveryOut,
)
def redeliver_webhook_delivery(request: ApiRequest, webhook_id: str, delivery_id: str) -> schemas.DeliveryOut:
    return presenters.delivery(_service(request).redeliver(webhook_id, delivery_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "DELETE",
    summary="Delete an endpoint: nothing more is sent to it",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.WebhookOut,
)
def delete_webhook(request: ApiRequest, webhook_id: str) -> schemas.WebhookOut:
    return presenters.webhook(_service(request).delete(webhook_id))
