"""Webhook endpoints and their delivery log (admin scope: URLs, secrets and payloads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.errors import WebhookDisabled
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.common import ListQuery
    from chalicelib.api.schemas.webhooks import (
        CreatedWebhook,
        CreateWebhookRequest,
        DeliveryList,
        DeliveryOut,
        UpdateWebhookRequest,
        WebhookList,
        WebhookOut,
    )
    from chalicelib.domain.webhooks import WebhookService

bp = Blueprint(__name__)
TAG = "Webhooks"


def _service(request: ApiRequest) -> WebhookService:
    """The caller's tenant's webhook service."""
    return request.services.for_tenant(request.tenant).webhooks


@endpoint(
    bp,
    "/webhooks",
    "POST",
    summary="Subscribe an endpoint to events (the signing secret is shown once)",
    description=(
        "Subscribes an HTTPS endpoint to events (by type, or `*` for all). The signing secret is in this "
        "answer only: use it to verify each delivery's signature. Not idempotent: each call adds an "
        "endpoint."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.webhooks.CreateWebhookRequest,
    response=schemas.webhooks.CreatedWebhook,
)
def create_webhook(request: ApiRequest) -> CreatedWebhook:
    from chalicelib.api.presenters import webhooks as presenters

    body: CreateWebhookRequest = request.body
    return presenters.issued_webhook(
        _service(request).create(url=body.url, events=body.events, description=body.description)
    )


@endpoint(
    bp,
    "/webhooks",
    "GET",
    summary="List the webhook endpoints",
    description="The tenant's webhook endpoints, with their events and status; never their secrets.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.webhooks.WebhookList,
)
def list_webhooks(request: ApiRequest) -> WebhookList:
    from chalicelib.api.presenters import webhooks as presenters
    from chalicelib.api.schemas.webhooks import WebhookList

    return WebhookList(data=[presenters.webhook(w) for w in _service(request).list()])


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "GET",
    summary="One webhook endpoint",
    description="One webhook endpoint. 404 if it is not this tenant's.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.webhooks.WebhookOut,
)
def get_webhook(request: ApiRequest, webhook_id: str) -> WebhookOut:
    from chalicelib.api.presenters import webhooks as presenters

    return presenters.webhook(_service(request).get(webhook_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "PATCH",
    summary="Change an endpoint's URL, events or description; disable or re-enable it",
    description=("Changes the fields sent of an endpoint: its URL, events or description; disables or re-enables it."),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.webhooks.UpdateWebhookRequest,
    response=schemas.webhooks.WebhookOut,
)
def update_webhook(request: ApiRequest, webhook_id: str) -> WebhookOut:
    from chalicelib.api.presenters import webhooks as presenters

    body: UpdateWebhookRequest = request.body
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
    description=(
        "Replaces the endpoint's signing secret (shown in this answer only). The previous secret keeps "
        "signing too for 24 hours, so the receiver can switch without rejecting deliveries."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.webhooks.CreatedWebhook,
)
def rotate_webhook_secret(request: ApiRequest, webhook_id: str) -> CreatedWebhook:
    from chalicelib.api.presenters import webhooks as presenters

    return presenters.issued_webhook(_service(request).rotate_secret(webhook_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries",
    "GET",
    summary="The endpoint's deliveries, newest first: status, response code, attempts, latency",
    description=(
        "The endpoint's deliveries, newest first: each event sent, its status, the last response code, "
        "attempts and latency."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.common.ListQuery,
    response=schemas.webhooks.DeliveryList,
)
def list_webhook_deliveries(request: ApiRequest, webhook_id: str) -> DeliveryList:
    from chalicelib.api.presenters import webhooks as presenters
    from chalicelib.api.schemas.webhooks import DeliveryList

    query: ListQuery = request.query
    page = _service(request).deliveries(webhook_id, limit=query.limit, cursor=query.cursor)
    return DeliveryList(data=[presenters.delivery(d) for d in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    "GET",
    summary="One delivery: its status, attempts and their response codes and latencies",
    description="One delivery with every attempt, its response code and latency.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.webhooks.DeliveryOut,
)
def get_webhook_delivery(request: ApiRequest, webhook_id: str, delivery_id: str) -> DeliveryOut:
    from chalicelib.api.presenters import webhooks as presenters

    return presenters.delivery(_service(request).delivery(webhook_id, delivery_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    "POST",
    summary="Send a delivery again (same webhook-id and body), now",
    description=(
        "Sends a delivery again now, with the same webhook-id and body, so the receiver can deduplicate "
        "it. 409 `webhook_disabled` if the endpoint is disabled."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=202,
    response=schemas.webhooks.DeliveryOut,
    errors=(WebhookDisabled,),
)
def redeliver_webhook_delivery(request: ApiRequest, webhook_id: str, delivery_id: str) -> DeliveryOut:
    from chalicelib.api.presenters import webhooks as presenters

    return presenters.delivery(_service(request).redeliver(webhook_id, delivery_id))


@endpoint(
    bp,
    "/webhooks/{webhook_id}",
    "DELETE",
    summary="Delete an endpoint: nothing more is sent to it",
    description="Deletes an endpoint: nothing more is sent to it. Answers the endpoint as it was.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.webhooks.WebhookOut,
)
def delete_webhook(request: ApiRequest, webhook_id: str) -> WebhookOut:
    from chalicelib.api.presenters import webhooks as presenters

    return presenters.webhook(_service(request).delete(webhook_id))
