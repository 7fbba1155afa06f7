"""Exports -> CSV pages."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalicelib.api.presenters.csv_files import csv_text

if TYPE_CHECKING:
    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.exports import MemberRow


#: Columns of the members export; those named like the import's columns mean the same.
MEMBER_EXPORT_COLUMNS = (
    "member_id",
    "external_id",
    "email",
    "name",
    "birthday",
    "marketing_consent",
    "available",
    "pending",
    "tier",
    "lifetime_earned",
    "lifetime_redeemed",
    "lifetime_adjusted",
    "lifetime_expired",
    "lifetime_reversed",
    "created_at",
)


LEDGER_EXPORT_COLUMNS = (
    "transaction_id",
    "created_at",
    "occurred_at",
    "member_id",
    "type",
    "points",
    "pending_change",
    "balance_after",
    "amount",
    "currency",
    "reference",
    "description",
    "reason",
    "idempotency_key",
    "expires_at",
    "matures_at",
    "metadata",
)


def members_csv(rows: list[MemberRow]) -> str:
    """A page of the members export: the header, then one member per row."""
    return csv_text(
        MEMBER_EXPORT_COLUMNS,
        [
            [
                row.member.member_id,
                row.member.external_id,
                row.member.email,
                row.member.name,
                row.member.birthday.isoformat() if row.member.birthday else None,
                row.member.marketing_consent,
                row.balance.available,
                row.balance.pending,
                row.tier,
                row.balance.balance.lifetime_earned,
                row.balance.balance.lifetime_redeemed,
                row.balance.balance.lifetime_adjusted,
                row.balance.balance.lifetime_expired,
                row.balance.balance.lifetime_reversed,
                row.member.created_at,
            ]
            for row in rows
        ],
    )


def ledger_csv(entries: list[LedgerEntry]) -> str:
    """A page of the ledger export: the header, then one entry per row, in time order."""
    return csv_text(
        LEDGER_EXPORT_COLUMNS,
        [
            [
                entry.transaction_id,
                entry.created_at,
                entry.occurred_at,
                entry.member_id,
                str(entry.movement),
                entry.points,
                entry.pending_change,
                entry.balance_after.available,
                entry.amount,
                entry.currency,
                entry.reference,
                entry.description,
                entry.reason,
                entry.idempotency_key,
                entry.expires_at,
                entry.matures_at,
                json.dumps(entry.metadata, sort_keys=True, separators=(",", ":")) if entry.metadata else None,
            ]
            for entry in entries
        ],
    )
