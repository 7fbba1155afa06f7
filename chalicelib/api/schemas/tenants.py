"""Tenants (operator routes) and the caller's own tenant and key (`/me`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from chalicelib.api.schemas.access import CreatedApiKey
from chalicelib.api.schemas.common import Name, Out, StrictRequest
from chalicelib.domain.scopes import Scope
from chalicelib.domain.tenants import TENANT_ID_MAX_LENGTH, TENANT_ID_MIN_LENGTH, TENANT_ID_PATTERN, TenantStatus


class CreateTenantRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"tenant_id": "acme", "name": "Acme Outdoor", "currency": "EUR", "timezone": "Europe/Paris"}]
        }
    )

    tenant_id: Annotated[
        str,
        StringConstraints(
            min_length=TENANT_ID_MIN_LENGTH, max_length=TENANT_ID_MAX_LENGTH, pattern=TENANT_ID_PATTERN.pattern
        ),
    ] = Field(description="Slug naming the brand: 3-32 lowercase letters, digits and inner hyphens.", examples=["acme"])
    name: Name
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(examples=["EUR"])
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(examples=["Europe/Helsinki"])
    sandbox: bool = Field(
        default=False,
        description="A sandbox brand, for integration tests: it has a test clock that its admin key moves "
        "forward (POST /v1/test-clock/advance). Fixed at creation; a live brand's time is always real time.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value


class ProvisioningFailureOut(Out):
    attempts: int = Field(description="Failed attempts at provisioning the tenant's table; each is retried.")
    error: str = Field(
        description="The last failure, e.g. DynamoDB's table limits.",
        examples=["retry_later: DynamoDB refuses table operations for now (...)"],
    )
    at: datetime


class TenantOut(Out):
    tenant_id: str
    name: str
    currency: str
    timezone: str
    status: TenantStatus = Field(
        description="provisioning (its table is being created: its keys get 409 tenant_not_ready), "
        "then active; suspended by the operator."
    )
    created_at: datetime
    updated_at: datetime
    provisioning_failure: ProvisioningFailureOut | None = Field(
        description="While provisioning keeps failing (it is retried), the last failure; null otherwise."
    )
    sandbox: bool = Field(description="A sandbox brand, with a test clock; false for a live brand.")


class BrandClockOut(Out):
    sandbox: bool = Field(description="Whether the brand has a test clock (sandbox brands only).")
    now: datetime = Field(description="The brand's time: real time, plus the test clock's advance.")
    offset_seconds: int = Field(description="How far the test clock runs ahead of real time (0 on a live brand).")


class AdvanceClockRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"to": "2027-03-01T09:00:00Z"}]})

    to: datetime = Field(
        description="The moment the brand's clock moves to (with a time zone). The clock never moves back: "
        "a moment it has already passed changes nothing."
    )

    @field_validator("to")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2027-03-01T09:00:00Z")
        return value


class TenantList(Out):
    data: list[TenantOut]
    next_cursor: str | None


class CreatedTenant(Out):
    tenant: TenantOut
    api_key: CreatedApiKey


class CallerKey(Out):
    id: str
    name: str
    scopes: list[Scope]


class Me(Out):
    tenant: TenantOut
    api_key: CallerKey
