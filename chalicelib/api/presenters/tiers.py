"""Tier programs and members' tier status -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chalicelib.domain.tiers import Metric

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from chalicelib.api.schemas.tiers import TierProgramOut, TierStatusOut
    from chalicelib.domain.tiers import TierProgram, TierStatus


def _figure(value: Decimal, metric: Metric) -> int | str:
    """Points and orders are whole numbers; spend is an amount (a decimal string)."""
    return format(value, "f") if metric is Metric.SPEND else int(value)


def tier_program(value: TierProgram, in_force: TierProgram | None, now: datetime) -> TierProgramOut:
    from chalicelib.api.schemas.tiers import TierOut, TierProgramOut, TierWindowOut

    status: Literal["scheduled", "active", "superseded"]
    if value.effective_from > now:
        status = "scheduled"
    else:
        status = "active" if in_force is not None and in_force.version_id == value.version_id else "superseded"
    return TierProgramOut(
        id=value.version_id,
        metric=value.metric.value,
        window=TierWindowOut(kind=value.window.value, months=value.months),
        grace_periods=value.grace_periods,
        tiers=[
            TierOut(
                name=tier.name,
                threshold=format(tier.threshold, "f"),
                multiplier=format(tier.multiplier, "f"),
                perks=list(tier.perks),
            )
            for tier in value.tiers
        ],
        effective_from=value.effective_from,
        created_at=value.created_at,
        status=status,
    )


def tier_status(value: TierStatus) -> TierStatusOut:
    from chalicelib.api.schemas.tiers import TierProgressOut, TierStatusOut

    tier, metric = value.tier, value.program.metric
    following = value.progress
    return TierStatusOut(
        tier=value.state.tier,
        since=value.state.since,
        expires_at=value.state.expires_at,
        multiplier=format(tier.multiplier, "f") if tier else None,
        perks=list(tier.perks) if tier else [],
        metric=metric.value,
        qualifying=_figure(value.total, metric),
        progress=TierProgressOut(
            next_tier=following.next_tier,
            remaining=_figure(following.remaining, metric),
            metric=metric.value,
        )
        if following
        else None,
    )
