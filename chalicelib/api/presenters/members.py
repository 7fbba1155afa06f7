"""Members -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.members import MemberOut
    from chalicelib.domain.members import Member


def member(value: Member) -> MemberOut:
    from chalicelib.api.schemas.members import MemberOut

    return MemberOut(
        id=value.member_id,
        external_id=value.external_id,
        email=value.email,
        name=value.name,
        birthday=value.birthday,
        marketing_consent=value.marketing_consent,
        created_at=value.created_at,
        updated_at=value.updated_at,
        referral_code=value.referral_code,
        card_code=value.card_code,
        referred_by=value.referred_by,
        segments=sorted(value.segments),
    )
