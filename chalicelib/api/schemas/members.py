"""Members."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from chalicelib.api.schemas.common import Email, ExternalId, ListQuery, Name, Out, Segments, StrictRequest, _not_null


def _plausible_birthday(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= datetime.now(UTC).date():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


#: Referral codes are 8 characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ, matched case-insensitively.
ReferralCode = Annotated[
    str,
    StringConstraints(pattern=r"^[2-9A-HJKMNP-Za-hjkmnp-z]{8}$"),
    Field(description="A member's referral code (8 characters, case-insensitive).", examples=["7KQ4MZ2P"]),
]
CardCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$"),
    Field(
        description="The brand's loyalty card number: 4-40 letters, digits or hyphens, unique in the tenant, "
        "stored and matched upper-cased.",
        examples=["6001-2345-6789"],
    ),
]


class CreateMemberRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "external_id": "cust-1042",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "birthday": "1990-12-10",
                    "marketing_consent": True,
                }
            ]
        }
    )

    external_id: ExternalId | None = Field(default=None, description="The brand's own customer id; unique.")
    email: Email | None = None
    name: Name | None = None
    birthday: date | None = None
    marketing_consent: bool = False
    card_code: CardCode | None = None
    referral_code: ReferralCode | None = Field(
        default=None,
        description="The referrer's referral code: the new member is their referee (422 unknown_referral_code, "
        "422 self_referral when the email or external_id is the referrer's).",
    )
    segments: Segments = Field(default_factory=list, description='e.g. ["vip", "staff"]: campaigns target them.')

    _birthday = field_validator("birthday")(_plausible_birthday)


class UpdateMemberRequest(StrictRequest):
    """Only the fields sent change; send null to clear one (not `marketing_consent`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"email": "ada.lovelace@example.com", "marketing_consent": False}],
        }
    )

    email: Email | None = None
    name: Name | None = None
    birthday: date | None = None
    marketing_consent: bool | None = Field(default=None, json_schema_extra=_not_null)
    card_code: CardCode | None = Field(
        default=None, description="A new card code (409 card_code_taken); null clears it."
    )
    segments: Segments | None = Field(
        default=None, json_schema_extra=_not_null, description="Replaces the member's segments ([] clears them)."
    )

    _birthday = field_validator("birthday")(_plausible_birthday)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateMemberRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("marketing_consent", "segments"):
            if name in self.model_fields_set and getattr(self, name) is None:  # _not_null
                raise ValueError(f"{name} cannot be null")
        return self


class MemberOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "mem_01JD0000000000000000000000",
                    "external_id": "cust-1042",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "birthday": "1990-12-10",
                    "marketing_consent": True,
                    "created_at": "2026-01-15T10:00:00Z",
                    "updated_at": "2026-01-15T10:00:00Z",
                    "referral_code": "7KQ4MZ2P",
                    "card_code": "6001-2345-6789",
                    "referred_by": None,
                    "segments": ["newsletter"],
                }
            ]
        }
    )

    id: str = Field(examples=["mem_01JD0000000000000000000000"])
    external_id: str | None
    email: str | None
    name: str | None
    birthday: date | None
    marketing_consent: bool
    created_at: datetime
    updated_at: datetime
    referral_code: str | None = Field(
        description="The member's code to refer others; null for a member enrolled before referral codes "
        "(POST /v1/members/{member_id}/referral-code gives one)."
    )
    card_code: str | None
    referred_by: str | None = Field(description="The member whose referral code this member enrolled with.")
    segments: list[str] = Field(default_factory=list)


class MemberList(Out):
    data: list[MemberOut]
    next_cursor: str | None


class MemberListQuery(ListQuery):
    """With an identifier (`external_id`, `referral_code`, `card_code`): the member matching every
    one given, or none (`limit` and `cursor` then play no part)."""

    external_id: ExternalId | None = None
    referral_code: ReferralCode | None = None
    card_code: CardCode | None = None
