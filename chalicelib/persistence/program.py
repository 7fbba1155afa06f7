"""A tenant's program settings in its table."""

from __future__ import annotations

import json
from decimal import Decimal

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy, Period
from chalicelib.domain.program import Program, Rounding
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import (
    ProgramItem,
)


class ProgramRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self) -> Program | None:
        with translate_transient():
            try:
                item = self._models.program.get("PROGRAM", "#CURRENT")
            except DoesNotExist:
                return None
        return Program(
            points_per_currency_unit=Decimal(item.points_per_currency_unit),
            rounding=Rounding(item.rounding),
            updated_at=item.updated_at,
            expiry=_to_expiry(item),
            pending_days=int(item.pending_days or 0),
            reversal_clawback=bool(item.reversal_clawback),
            expiry_warning_days=int(
                item.expiry_warning_days if item.expiry_warning_days is not None else Program.expiry_warning_days
            ),
            birthday_bonus=int(item.birthday_bonus or 0),
            earn_on_shipping=bool(item.earn_on_shipping),
            earn_on_tax=bool(item.earn_on_tax),
        )

    def put(self, program: Program) -> None:
        with translate_transient():
            self._models.program(
                pk="PROGRAM",
                sk="#CURRENT",
                points_per_currency_unit=str(program.points_per_currency_unit),
                rounding=str(program.rounding),
                updated_at=program.updated_at,
                expiry=json.dumps(
                    {
                        "kind": str(program.expiry.kind),
                        "days": program.expiry.days,
                        "months": program.expiry.months,
                        "period": str(program.expiry.period) if program.expiry.period else None,
                        "periods_after": program.expiry.periods_after,
                    }
                ),
                pending_days=program.pending_days or None,
                reversal_clawback=program.reversal_clawback or None,
                expiry_warning_days=program.expiry_warning_days,
                birthday_bonus=program.birthday_bonus or None,
                earn_on_shipping=program.earn_on_shipping or None,
                earn_on_tax=program.earn_on_tax or None,
            ).save()


def _to_expiry(item: ProgramItem) -> ExpiryPolicy:
    if not item.expiry:
        return ExpiryPolicy()
    data = json.loads(item.expiry)
    return ExpiryPolicy(
        kind=ExpiryKind(data["kind"]),
        days=data.get("days"),
        months=data.get("months"),
        period=Period(data["period"]) if data.get("period") else None,
        periods_after=int(data.get("periods_after") or 0),
    )
