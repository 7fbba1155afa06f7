"""The program settings -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.program import ProgramOut
    from chalicelib.domain.program import Program


def program(value: Program) -> ProgramOut:
    from chalicelib.api.schemas.program import ExpiryPolicyOut, ProgramOut

    expiry = value.expiry
    return ProgramOut(
        points_per_currency_unit=format(value.points_per_currency_unit.normalize(), "f"),
        rounding=value.rounding,
        expiry=ExpiryPolicyOut(
            kind=expiry.kind,
            days=expiry.days,
            months=expiry.months,
            period=expiry.period,
            periods_after=expiry.periods_after,
        ),
        pending_days=value.pending_days,
        reversal_clawback=value.reversal_clawback,
        expiry_warning_days=value.expiry_warning_days,
        birthday_bonus=value.birthday_bonus,
        earn_on_shipping=value.earn_on_shipping,
        earn_on_tax=value.earn_on_tax,
        updated_at=value.updated_at,
        signup_bonus=value.signup_bonus,
        welcome_imported=value.welcome_imported,
    )
