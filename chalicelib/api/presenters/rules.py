"""Earning rules and earning previews -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chalicelib.domain.ledger import EarnPreview
from chalicelib.domain.rules import WEEKDAYS

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.api.schemas.rules import PreviewOut, RuleOut, ShareOut
    from chalicelib.domain.rules import Earning, EarningRule, Share


def shares(breakdown: tuple[Share, ...]) -> list[ShareOut]:
    from chalicelib.api.schemas.rules import ShareOut

    return [
        ShareOut(source=share.source, name=share.name, points=share.points, rule_id=share.rule_id)
        for share in breakdown
    ]


def earning(value: Earning | EarnPreview) -> PreviewOut:
    from chalicelib.api.schemas.rules import PreviewOut

    return PreviewOut(
        points=value.points,
        breakdown=shares(value.breakdown),
        tier=value.tier if isinstance(value, EarnPreview) else None,
    )


def rule(value: EarningRule, now: datetime) -> RuleOut:
    from chalicelib.api.schemas.rules import RuleOut

    status: Literal["ended", "scheduled", "active"] = (
        "ended" if value.ends_at and value.ends_at <= now else "scheduled" if not value.in_force(now) else "active"
    )
    return RuleOut(
        id=value.rule_id,
        name=value.name,
        kind=value.kind,
        factor=format(value.factor, "f") if value.factor is not None else None,
        points=value.points,
        skus=sorted(value.skus),
        categories=sorted(value.categories),
        weekdays=sorted(value.weekdays, key=WEEKDAYS.index),
        min_order_total=format(value.min_order_total, "f") if value.min_order_total is not None else None,
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        every=value.every,
        at=value.at,
        activity=value.activity,
        limit=value.limit,
        per=value.per,
        created_at=value.created_at,
        status=status,
        tiers=sorted(value.tiers),
        cap=value.cap,
        segments=sorted(value.segments),
    )
