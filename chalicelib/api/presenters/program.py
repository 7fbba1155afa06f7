"""The program settings -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.program import ProgramOut
    from chalicelib.domain.program import Program


def program(value: Program) -> ProgramOut:
    from chalicelib.api.schemas.program import ExpiryPolicyOut, HouseholdPolicyOut, ProgramOut, TransferPolicyOut

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
        transfers=TransferPolicyOut(
            enabled=value.transfers.enabled,
            minimum=value.transfers.minimum,
            daily_maximum=value.transfers.daily_maximum,
        ),
        erase_inactive_after_years=value.erase_inactive_after_years,
        personal_metadata_keys=list(value.personal_metadata_keys),
        personal_descriptions=value.personal_descriptions,
        point_value=format(value.point_value.normalize(), "f") if value.point_value else "0",
        signup_bonus=value.signup_bonus,
        welcome_imported=value.welcome_imported,
        households=HouseholdPolicyOut(enabled=value.households.enabled, max_members=value.households.max_members),
    )
