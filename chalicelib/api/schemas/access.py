"""API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.api.schemas.common import Name, Out, StrictRequest, _no_repeats
from chalicelib.domain.scopes import Scope


class ApiKeyOut(Out):
    """An API key as listed. Every field is always present (null when it does not apply)."""

    id: str = Field(examples=["key_01JD0000000000000000000000"])
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    partner_id: str | None = Field(description="A partner key's coalition partner; null otherwise.")


class CreatedApiKey(ApiKeyOut):
    """A key just created, in the one shape of every creation (`POST /v1/api-keys`, and `api_key`
    of `POST /v1/tenants`): the key as listed, plus its secret."""

    secret: str = Field(description="The key itself. Shown once; only its hash is stored.")


class CreateApiKeyRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Checkout integration", "scopes": ["read", "write"]}]}
    )

    name: Name
    scopes: Annotated[
        list[Scope],
        Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ]
    partner_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$")] | None = Field(
        default=None,
        description="A partner key: the registered partner it acts for; scopes must then be exactly ['partner'].",
    )


class ApiKeyList(Out):
    data: list[ApiKeyOut]
