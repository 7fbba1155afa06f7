"""Member access: member tokens, the brand's member-access settings, and the member API's own answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from chalicelib.api.schemas.common import Out, Query, StrictRequest, _no_repeats
from chalicelib.domain.member_access import (
    DEFAULT_LIFETIME_MINUTES,
    MAX_ALLOWED_ORIGINS,
    MAX_LIFETIME_MINUTES,
    MemberScope,
)
from chalicelib.domain.movement_requests import MovementType

_TOKEN_EXAMPLE = "lmt_eyJ0IjoiYWNtZSJ9.c2lnbmF0dXJl"  # noqa: S105 (a made-up example)

# --- the brand's side ----------------------------------------------------------------------------------


class CreateMemberTokenRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"scopes": ["member:read", "member:redeem"], "lifetime_minutes": 15}]}
    )

    scopes: Annotated[
        list[MemberScope],
        Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ] = Field(description="What the token may do: `member:read`, `member:redeem`, `member:consents`.")
    lifetime_minutes: int = Field(
        default=DEFAULT_LIFETIME_MINUTES,
        ge=1,
        le=MAX_LIFETIME_MINUTES,
        description=f"How long the token lives, in minutes (at most {MAX_LIFETIME_MINUTES}).",
    )


class MemberTokenOut(Out):
    token: str = Field(
        description="The member token: send it as `Authorization: Bearer <token>` to the member API. "
        "It is not stored: mint another when it expires.",
        examples=[_TOKEN_EXAMPLE],
    )
    token_type: str = Field(examples=["Bearer"])
    token_id: str = Field(examples=["mtok_01JD0000000000000000000000"])
    tenant_id: str = Field(examples=["acme"])
    member_id: str = Field(examples=["mem_01JD0000000000000000000000"])
    scopes: list[MemberScope]
    issued_at: datetime
    expires_at: datetime
    base_path: str = Field(description="Where the member API of this brand lives.", examples=["/v1/brands/acme/me"])


class RevokedMemberTokensOut(Out):
    member_id: str = Field(examples=["mem_01JD0000000000000000000000"])
    revoked_at: datetime = Field(description="Every token of the member minted before this moment is refused.")


class SigningKeyOut(Out):
    id: str = Field(examples=["mtk_01JD0000000000000000000000"])
    created_at: datetime


class MemberAccessOut(Out):
    """The brand's member-access settings."""

    allowed_origins: list[str] = Field(
        description="Origins whose pages may call the member API from a browser (CORS).",
        examples=[["https://shop.example.com"]],
    )
    signing_key: SigningKeyOut | None = Field(
        description="The key member tokens are signed with (its secret is never shown); null before the first token."
    )
    updated_at: datetime | None


class PutMemberAccessRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"allowed_origins": ["https://shop.example.com", "http://localhost:8000"]}]}
    )

    allowed_origins: Annotated[list[str], Field(max_length=MAX_ALLOWED_ORIGINS)] = Field(
        description="Origins (`scheme://host[:port]`) whose pages may call the member API; [] for none."
    )


# --- the member's side ---------------------------------------------------------------------------------


class ExpiringQuery(Query):
    days: int = Field(default=30, ge=1, le=366, description="How far ahead to look, in days.")


class ExpiringLotOut(Out):
    points: int
    expires_at: datetime


class ExpiringOut(Out):
    member_id: str
    days: int
    total: int = Field(description="Points expiring within `days`.")
    data: list[ExpiringLotOut] = Field(description="Points by expiry moment, soonest first.")


class MemberTransactionOut(Out):
    """A ledger entry as the member sees it (no brand metadata, keys or internal reasons)."""

    id: str = Field(examples=["txn_01JD0000000000000000000000"])
    type: MovementType
    points: int
    balance_after: int
    description: str | None
    reference: str | None
    occurred_at: datetime
    created_at: datetime
    expires_at: datetime | None


class MemberTransactionList(Out):
    data: list[MemberTransactionOut]
    next_cursor: str | None


class ReferralCodeOut(Out):
    member_id: str
    referral_code: str | None = Field(
        description="The member's code to refer others; null until the brand gives the member one.",
        examples=["7KQ4MZ2P"],
    )


class ConsentsOut(Out):
    member_id: str
    marketing: bool = Field(description="Whether the member accepts marketing messages.")
    updated_at: datetime


class PutConsentsRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"marketing": True}]})

    marketing: bool = Field(description="Whether the member accepts marketing messages.")
