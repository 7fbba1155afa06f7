"""Webhook endpoints and their delivery log (admin scope: URLs, secrets and payloads)."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from chalice import Blueprint

from chalicelib.api import schemas
from chalicelib.api.routing import ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.webhooks import Delivery, IssuedWebhook, Webhook, WebhookService, WebhookStatus

bp = Blueprint(__name__)
TAG = "Webhooks"


def _webhook(value: Webhook) -> schemas.WebhookOut:
    return schemas.WebhookOut(**_webhook_fields(value))


class _WebhookFields(TypedDict):
    """What WebhookOut and CreatedWebhook share."""

    id: str
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    secrets: list[schemas.WebhookSecretOut]
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None
    retry_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


def _webhook_fields(value: Webhook) -> _WebhookFields:
    return {
        "id": value.webhook_id,
        "url": value.url,
        "events": sorted(value.events),
        "description": value.description,
        "status": value.status,
        "secrets": [schemas.WebhookSecretOut(created_at=s.created_at, expires_at=s.expires_at) for s in value.secrets],
        "created_at": value.created_at,
        "updated_at": value.updated_at,
        "failing_since": value.failing_since,
        "retry_at": value.retry_at,
        "disabled_at": value.disabled_at,
        "disabled_reason": value.disabled_reason,
    }


def _issued(value: IssuedWebhook) -> schemas.CreatedWebhook:
    return schemas.CreatedWebhook(**_webhook_fields(value.webhook), secret=value.secret)


def _delivery(value: Delivery) -> schemas.DeliveryOut:
    last = value.last_attempt
    return schemas.DeliveryOut(
        id=value.delivery_id,
        webhook_id=value.webhook_id,
        event_id=value.event_id,
        event_type=value.event_type,
        member_id=value.member_id,
        status=value.status,
        attempts=value.attempts,
        response_code=last.status_code if last else None,
        latency_ms=last.latency_ms if last else None,
        next_attempt_at=value.next_attempt_at,
        created_at=value.created_at,
        updated_at=value.updated_at,
        succeeded_at=value.succeeded_at,
        history=[
            schemas.DeliveryAttemptOut(at=a.at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error)
            for a in value.history
        ],
    )


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
    return _issued(_service(request).create(url=body.url, events=body.events, description=body.description))


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
    return schemas.WebhookList(data=[_webhook(w) for w in _service(request).list()])


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
    return _webhook(_service(request).get(webhook_id))


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
    return _webhook(
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
    return _issued(_service(request).rotate_secret(webhook_id))


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
    return schemas.DeliveryList(data=[_delivery(d) for d in page.items], next_cursor=page.next_cursor)


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
    return _delivery(_service(request).delivery(webhook_id, delivery_id))


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
    return _delivery(_service(request).redeliver(webhook_id, delivery_id))


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
    return _webhook(_service(request).delete(webhook_id))
