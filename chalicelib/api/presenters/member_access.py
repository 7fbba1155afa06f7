"""Member tokens, member-access settings and the member API's answers -> response schemas."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.api.routing import MEMBER_PATH_PREFIX

if TYPE_CHECKING:
    from chalicelib.api.schemas.member_access import (
        ConsentsOut,
        ExpiringOut,
        MemberAccessOut,
        MemberTokenOut,
        MemberTransactionOut,
        ReferralCodeOut,
    )
    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.member_access import IssuedMemberToken, MemberAccess
    from chalicelib.domain.members import Member


def member_token(issued: IssuedMemberToken) -> MemberTokenOut:
    from chalicelib.api.schemas.member_access import MemberTokenOut

    claims = issued.claims
    return MemberTokenOut(
        token=issued.token,
        token_type="Bearer",  # noqa: S106 (the scheme, not a secret)
        token_id=claims.token_id,
        tenant_id=claims.tenant_id,
        member_id=claims.member_id,
        scopes=sorted(claims.scopes),
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
        base_path="/v1" + MEMBER_PATH_PREFIX.replace("{tenant_id}", claims.tenant_id),
    )


def member_access(value: MemberAccess) -> MemberAccessOut:
    from chalicelib.api.schemas.member_access import MemberAccessOut, SigningKeyOut

    key = value.signing_key
    return MemberAccessOut(
        allowed_origins=list(value.allowed_origins),
        signing_key=SigningKeyOut(id=key.key_id, created_at=key.created_at) if key is not None else None,
        updated_at=value.updated_at,
    )


def expiring(member_id: str, days: int, due: list[tuple[datetime, int]]) -> ExpiringOut:
    from chalicelib.api.schemas.member_access import ExpiringLotOut, ExpiringOut

    return ExpiringOut(
        member_id=member_id,
        days=days,
        total=sum(points for _, points in due),
        data=[ExpiringLotOut(points=points, expires_at=at) for at, points in due],
    )


def member_transaction(entry: LedgerEntry) -> MemberTransactionOut:
    from chalicelib.api.schemas.member_access import MemberTransactionOut

    return MemberTransactionOut(
        id=entry.transaction_id,
        type=entry.movement,
        points=entry.points,
        balance_after=entry.balance_after.available,
        description=entry.description,
        reference=entry.reference,
        occurred_at=entry.occurred_at,
        created_at=entry.created_at,
        expires_at=entry.expires_at,
    )


def referral_code(member: Member) -> ReferralCodeOut:
    from chalicelib.api.schemas.member_access import ReferralCodeOut

    return ReferralCodeOut(member_id=member.member_id, referral_code=member.referral_code)


def consents(member: Member) -> ConsentsOut:
    from chalicelib.api.schemas.member_access import ConsentsOut

    return ConsentsOut(member_id=member.member_id, marketing=member.marketing_consent, updated_at=member.updated_at)
