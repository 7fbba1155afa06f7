"""Webhooks, their signing secrets and deliveries -> response schemas."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chalicelib.api.schemas.webhooks import CreatedWebhook, DeliveryOut, WebhookOut, WebhookSecretOut
    from chalicelib.domain.webhooks import Delivery, IssuedWebhook, SigningSecret, Webhook, WebhookStatus


def signing_secrets(secrets: Iterable[SigningSecret]) -> list[WebhookSecretOut]:
    """A webhook's or a Shopify integration's secrets: when each was made and expires, never the secret."""
    from chalicelib.api.schemas.webhooks import WebhookSecretOut

    return [WebhookSecretOut(created_at=s.created_at, expires_at=s.expires_at) for s in secrets]


class _WebhookFields(TypedDict):
    """What WebhookOut and CreatedWebhook share."""

    id: str
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    secrets: list[WebhookSecretOut]
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
        "secrets": signing_secrets(value.secrets),
        "created_at": value.created_at,
        "updated_at": value.updated_at,
        "failing_since": value.failing_since,
        "retry_at": value.retry_at,
        "disabled_at": value.disabled_at,
        "disabled_reason": value.disabled_reason,
    }


def webhook(value: Webhook) -> WebhookOut:
    from chalicelib.api.schemas.webhooks import WebhookOut

    return WebhookOut(**_webhook_fields(value))


def issued_webhook(value: IssuedWebhook) -> CreatedWebhook:
    from chalicelib.api.schemas.webhooks import CreatedWebhook

    return CreatedWebhook(**_webhook_fields(value.webhook), secret=value.secret)


def delivery(value: Delivery) -> DeliveryOut:
    from chalicelib.api.schemas.webhooks import DeliveryAttemptOut, DeliveryOut

    last = value.last_attempt
    return DeliveryOut(
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
            DeliveryAttemptOut(at=a.at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error)
            for a in value.history
        ],
    )
