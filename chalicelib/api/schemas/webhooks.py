"""Webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.api.schemas.common import Description, Out, StrictRequest, _no_repeats, _not_null
from chalicelib.domain.webhooks import SUBSCRIBABLE, DeliveryStatus, WebhookStatus

WebhookEventName = Literal[SUBSCRIBABLE]  # type: ignore[valid-type]
WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$"),
    Field(
        description="https only (plain http to loopback in local mode); the host must resolve to public "
        "addresses only, checked again at every delivery.",
        examples=["https://hooks.example.com/loyalty"],
    ),
]
WebhookEvents = Annotated[
    list[WebhookEventName],
    Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description='Event types to receive, or "*" for every feed event (webhook.disabled must be named).',
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_no_repeats),
]


class CreateWebhookRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/hooks/loyalty",
                    "events": ["points.earned", "points.redeemed", "tier.changed"],
                    "description": "CRM sync",
                }
            ]
        }
    )

    url: WebhookUrl
    events: WebhookEvents
    description: Description | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _description_not_null(self) -> CreateWebhookRequest:
        if "description" in self.model_fields_set and self.description is None:  # _not_null
            raise ValueError("description cannot be null (leave it out)")
        return self


class UpdateWebhookRequest(StrictRequest):
    """Only the fields sent change; send null to clear the description. Enabling a disabled
    endpoint starts it afresh: events from then on, no backoff."""

    model_config = ConfigDict(
        json_schema_extra={"minProperties": 1, "examples": [{"events": ["*"], "description": "CRM sync, every event"}]}
    )

    url: WebhookUrl | None = Field(default=None, json_schema_extra=_not_null)
    events: WebhookEvents | None = Field(default=None, json_schema_extra=_not_null)
    description: Description | None = None
    status: WebhookStatus | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateWebhookRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("url", "events", "status"):  # _not_null
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class WebhookSecretOut(Out):
    created_at: datetime
    expires_at: datetime | None = Field(description="When a rotated-out secret stops signing; null: current.")


class WebhookOut(Out):
    id: str = Field(examples=["whk_01JD0000000000000000000000"])
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    secrets: list[WebhookSecretOut] = Field(description="The secrets signing now (never their values).")
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = Field(description="First failure since the last success; null while healthy.")
    retry_at: datetime | None = Field(description="Nothing is sent before then (backoff); null: no backoff.")
    disabled_at: datetime | None
    disabled_reason: str | None


class CreatedWebhook(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...), shown only in this response.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(Out):
    data: list[WebhookOut]


class DeliveryAttemptOut(Out):
    at: datetime
    status_code: int | None = Field(description="The endpoint's HTTP status; null: no answer (see error).")
    latency_ms: int
    error: str | None


class DeliveryOut(Out):
    id: str = Field(examples=["dlv_01JD0000000000000000000000"], description="Also the webhook-id header.")
    webhook_id: str
    event_id: str
    event_type: str
    member_id: str | None
    status: DeliveryStatus
    attempts: int
    response_code: int | None = Field(description="Of the last attempt.")
    latency_ms: int | None = Field(description="Of the last attempt.")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    succeeded_at: datetime | None
    history: list[DeliveryAttemptOut] = Field(description="The last attempts, oldest first.")


class DeliveryList(Out):
    data: list[DeliveryOut]
    next_cursor: str | None
