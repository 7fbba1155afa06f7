"""API keys -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.access import ApiKeyOut, CreatedApiKey
    from chalicelib.domain.api_keys import ApiKey, IssuedApiKey


def api_key(value: ApiKey) -> ApiKeyOut:
    from chalicelib.api.schemas.access import ApiKeyOut

    return ApiKeyOut(
        id=value.key_id,
        name=value.name,
        scopes=sorted(value.scopes),
        created_at=value.created_at,
        revoked_at=value.revoked_at,
        partner_id=value.partner_id,
    )


def issued_api_key(value: IssuedApiKey) -> CreatedApiKey:
    from chalicelib.api.schemas.access import CreatedApiKey

    return CreatedApiKey(**api_key(value.record).model_dump(), secret=value.secret)
