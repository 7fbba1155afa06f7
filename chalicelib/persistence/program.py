"""A tenant's program settings in its table."""

from __future__ import annotations

import json
from decimal import Decimal

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy, Period
from chalicelib.domain.program import NO_HOUSEHOLDS, NO_TRANSFERS, HouseholdPolicy, Program, Rounding, TransferPolicy
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import (
    ProgramItem,
    set_or_remove,
)
from chalicelib.persistence.rules import rule_summary_actions


class ProgramRepository:
    """The program item, read at most once until ``forget``: a movement forgets at its start, so
    it reads the program once however many steps ask, and never one older than itself. A write
    through it forgets too."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models
        self._read: tuple[Program | None] | None = None

    def forget(self) -> None:
        self._read = None

    def get(self) -> Program | None:
        if self._read is None:
            self._read = (self._get(),)
        return self._read[0]

    def _get(self) -> Program | None:
        with translate_transient():
            try:
                item = self._models.program.get("PROGRAM", "#CURRENT")
            except DoesNotExist:
                return None
        capped = frozenset(item.capped_rules or ()) if item.summarised else None
        tiers = bool(item.tiers_stored) if item.summarised else None
        challenges = bool(item.challenges_stored)
        if item.points_per_currency_unit is None:  # only the summary is stored
            if capped is None and not challenges:
                return None
            return Program(capped_rules=capped, tiers_stored=tiers, challenges_stored=challenges)
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
            signup_bonus=int(item.signup_bonus or 0),
            welcome_imported=bool(item.welcome_imported),
            capped_rules=capped,
            tiers_stored=tiers,
            challenges_stored=challenges,
            transfers=_to_transfers(item),
            erase_inactive_after_years=(
                int(item.erase_inactive_after_years) if item.erase_inactive_after_years is not None else None
            ),
            personal_metadata_keys=tuple(sorted(item.personal_metadata_keys or ())),
            personal_descriptions=bool(item.personal_descriptions),
            point_value=Decimal(item.point_value or "0"),
            households=_to_households(item),
        )

    def put(self, program: Program, audit: AuditEntry | None = None) -> None:
        """The program's fields replaced; the rules' summary kept (and completed); ``audit``
        appended in the same transaction."""
        models = self._models
        item = models.program
        expiry = json.dumps(
            {
                "kind": str(program.expiry.kind),
                "days": program.expiry.days,
                "months": program.expiry.months,
                "period": str(program.expiry.period) if program.expiry.period else None,
                "periods_after": program.expiry.periods_after,
            }
        )
        actions = [
            item.points_per_currency_unit.set(str(program.points_per_currency_unit)),
            item.rounding.set(str(program.rounding)),
            *set_or_remove(item.updated_at, program.updated_at),
            item.expiry.set(expiry),
            *set_or_remove(item.pending_days, program.pending_days or None),
            *set_or_remove(item.reversal_clawback, program.reversal_clawback or None),
            item.expiry_warning_days.set(program.expiry_warning_days),
            *set_or_remove(item.birthday_bonus, program.birthday_bonus or None),
            *set_or_remove(item.earn_on_shipping, program.earn_on_shipping or None),
            *set_or_remove(item.earn_on_tax, program.earn_on_tax or None),
            *set_or_remove(item.transfers, _transfers_json(program.transfers)),
            *set_or_remove(item.signup_bonus, program.signup_bonus or None),
            *set_or_remove(item.welcome_imported, program.welcome_imported or None),
            *rule_summary_actions(models, []),
            *set_or_remove(item.erase_inactive_after_years, program.erase_inactive_after_years),
            *set_or_remove(item.personal_metadata_keys, set(program.personal_metadata_keys) or None),
            *set_or_remove(item.personal_descriptions, program.personal_descriptions or None),
            *set_or_remove(
                item.point_value, format(program.point_value.normalize(), "f") if program.point_value else None
            ),
            *set_or_remove(item.households, _households_json(program.households)),
        ]
        self._read = None
        with audited_transaction(models.audit, audit) as tx:
            tx.update(item(pk="PROGRAM", sk="#CURRENT"), actions=actions)


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


def _transfers_json(policy: TransferPolicy) -> str | None:
    if policy == NO_TRANSFERS:
        return None
    return json.dumps({"enabled": policy.enabled, "minimum": policy.minimum, "daily_maximum": policy.daily_maximum})


def _to_transfers(item: ProgramItem) -> TransferPolicy:
    if not item.transfers:
        return NO_TRANSFERS
    data = json.loads(item.transfers)
    maximum = data.get("daily_maximum")
    return TransferPolicy(
        enabled=bool(data.get("enabled")),
        minimum=int(data.get("minimum") or 1),
        daily_maximum=int(maximum) if maximum is not None else None,
    )


def _households_json(policy: HouseholdPolicy) -> str | None:
    if policy == NO_HOUSEHOLDS:
        return None
    return json.dumps({"enabled": policy.enabled, "max_members": policy.max_members})


def _to_households(item: ProgramItem) -> HouseholdPolicy:
    if not item.households:
        return NO_HOUSEHOLDS
    data = json.loads(item.households)
    return HouseholdPolicy(
        enabled=bool(data.get("enabled")), max_members=int(data.get("max_members") or NO_HOUSEHOLDS.max_members)
    )
