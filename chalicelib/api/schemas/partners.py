"""Coalition partners and their settlements."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from chalicelib.api.schemas.common import (
    DECIMAL_RULE,
    Amount,
    Description,
    ExternalId,
    Name,
    Out,
    PositivePoints,
    Query,
    Reference,
    StrictRequest,
    _check_exactly_one_of,
    _decimal,
    _exactly_one_of,
    _positive_decimal,
)
from chalicelib.api.schemas.members import CardCode, ReferralCode

PartnerId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$",
        description="Slug naming the partner: 3-32 lowercase letters, digits and inner hyphens.",
        examples=["coffee-co"],
    ),
]
Rate = Annotated[
    str, *_decimal(_positive_decimal(6, 4), 999_999, "Greater than 0, at most 4 decimal places.", examples=["2.5", 2])
]


class CreatePartnerRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"partner_id": "coffee", "name": "Corner Coffee", "earn_rate": "2", "redeem_rate": "0.01"}]
        }
    )

    partner_id: PartnerId
    name: Name
    earn_rate: Rate = Field(description=f"Points per currency unit spent with the partner. {DECIMAL_RULE}")
    redeem_rate: Rate = Field(description=f"Currency value of one point redeemed with the partner. {DECIMAL_RULE}")


class PartnerOut(Out):
    partner_id: str
    name: str
    earn_rate: str
    redeem_rate: str
    created_at: datetime


class PartnerList(Out):
    data: list[PartnerOut]


_MEMBER_IDENTIFIERS = ("member_id", "external_id", "referral_code", "card_code")


class PartnerMember(StrictRequest):
    """Exactly one of `member_id`, `external_id`, `referral_code` or `card_code`."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of(*_MEMBER_IDENTIFIERS))

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external_id: ExternalId | None = None
    referral_code: ReferralCode | None = None
    card_code: CardCode | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> PartnerMember:
        _check_exactly_one_of(self, *_MEMBER_IDENTIFIERS)
        return self


class PartnerEarnRequest(StrictRequest):
    """Send exactly one of `amount` (spent with the partner, converted at its earn_rate) or `points`."""

    model_config = ConfigDict(
        json_schema_extra={
            **_exactly_one_of("points", "amount"),
            "examples": [{"member": {"card_code": "6001-2345-6789"}, "amount": "4.50", "reference": "receipt-88231"}],
        }
    )

    member: PartnerMember
    points: PositivePoints | None = None
    amount: Amount | None = None
    reference: Reference | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> PartnerEarnRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class PartnerReverseRequest(StrictRequest):
    """Take back points this partner issued for `reference` (a refund at the partner): exactly one
    of `points`, or an `amount` refunded, converted at the partner's earn_rate as the earn was."""

    model_config = ConfigDict(
        json_schema_extra={
            **_exactly_one_of("points", "amount"),
            "examples": [{"member": {"card_code": "6001-2345-6789"}, "reference": "receipt-88231", "amount": "4.50"}],
        }
    )

    member: PartnerMember
    reference: Reference = Field(description="The reference the partner earned with.")
    points: PositivePoints | None = None
    amount: Amount | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> PartnerReverseRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class PartnerRedeemRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"member": {"card_code": "6001-2345-6789"}, "points": 300, "reference": "receipt-88240"}]
        }
    )

    member: PartnerMember
    points: PositivePoints
    reference: Reference | None = None
    description: Description | None = None


class SettlementQuery(Query):
    from_: date | None = Field(
        default=None, alias="from", description="First day (UTC), inclusive; default: the first of `to`'s month."
    )
    to: date | None = Field(
        default=None, description="Last day (UTC), inclusive, at most 366 days after `from`; default: today."
    )


class SettlementDay(Out):
    day: date
    issued_points: int
    redeemed_points: int
    reversed_points: int = Field(description="Points the partner took back (refunds) that day.")


class SettlementOut(Out):
    partner_id: str
    currency: str
    from_date: date
    to_date: date
    earn_rate: str
    redeem_rate: str
    issued_points: int
    redeemed_points: int
    issued_value: str = Field(description="issued_points / earn_rate: the spend the issued points stand for.")
    redeemed_value: str = Field(description="redeemed_points x redeem_rate.")
    reversed_points: int = Field(description="Points the partner asked back for refunds (whether or not spent).")
    reversed_value: str = Field(description="reversed_points / earn_rate: the refunds they stand for.")
    net_issued_points: int = Field(description="issued_points - reversed_points.")
    days: list[SettlementDay] = Field(description="Days of the period with partner activity.")
