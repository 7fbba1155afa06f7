"""Referral programs and referrals -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.api.schemas.referrals import ReferralOut, ReferralProgramOut
    from chalicelib.domain.referrals import Referral, ReferralProgram


def referral_program(value: ReferralProgram, in_force: ReferralProgram | None, now: datetime) -> ReferralProgramOut:
    from chalicelib.api.schemas.referrals import ReferralCapOut, ReferralProgramOut

    status: Literal["scheduled", "active", "superseded"]
    if value.effective_from > now:
        status = "scheduled"
    else:
        status = "active" if in_force is not None and in_force.version_id == value.version_id else "superseded"
    return ReferralProgramOut(
        id=value.version_id,
        enabled=value.enabled,
        referrer_points=value.referrer_points,
        referee_points=value.referee_points,
        min_order_total=format(value.min_order_total, "f") if value.min_order_total is not None else None,
        cap=ReferralCapOut(limit=value.cap.limit, per=value.cap.per.value) if value.cap else None,
        referee_rewarded_when_capped=value.referee_rewarded_when_capped,
        effective_from=value.effective_from,
        created_at=value.created_at,
        status=status,
    )


def referral(value: Referral) -> ReferralOut:
    from chalicelib.api.schemas.referrals import ReferralOut

    return ReferralOut(
        referee_id=value.referee_id,
        referrer_id=value.referrer_id,
        status=value.status.value,
        enrolled_at=value.created_at,
        qualified_at=value.qualified_at,
        completed_at=value.completed_at,
        order_id=value.order_id,
        referrer_points=value.referrer_points,
        referee_points=value.referee_points,
    )
