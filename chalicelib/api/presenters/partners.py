"""Coalition partners and their settlements -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

    from chalicelib.api.schemas.partners import PartnerOut, SettlementOut
    from chalicelib.domain.partners import Partner, PartnerSettlement


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def partner(value: Partner) -> PartnerOut:
    from chalicelib.api.schemas.partners import PartnerOut

    return PartnerOut(
        partner_id=value.partner_id,
        name=value.name,
        earn_rate=_rate(value.earn_rate),
        redeem_rate=_rate(value.redeem_rate),
        created_at=value.created_at,
    )


def settlement(value: PartnerSettlement, currency: str) -> SettlementOut:
    from chalicelib.api.schemas.partners import SettlementDay, SettlementOut

    return SettlementOut(
        partner_id=value.partner.partner_id,
        currency=currency,
        from_date=value.from_date,
        to_date=value.to_date,
        earn_rate=_rate(value.partner.earn_rate),
        redeem_rate=_rate(value.partner.redeem_rate),
        issued_points=value.issued_points,
        redeemed_points=value.redeemed_points,
        issued_value=format(value.issued_value, "f"),
        redeemed_value=format(value.redeemed_value, "f"),
        reversed_points=value.reversed_points,
        reversed_value=format(value.reversed_value, "f"),
        net_issued_points=value.net_issued_points,
        days=[
            SettlementDay(
                day=d.day,
                issued_points=d.issued_points,
                redeemed_points=d.redeemed_points,
                reversed_points=d.reversed_points,
            )
            for d in value.days
        ],
    )
