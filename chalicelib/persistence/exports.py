"""Reads for exports: balances by key, and a day of the feed index's ledger entries."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from chalicelib.persistence.errors import translate_transient
from chalicelib.persistence.index_keys import BALANCE, feed_partition_of_day, member_pk
from chalicelib.persistence.ledger import to_balance, to_entry

if TYPE_CHECKING:
    from chalicelib.domain.ledger import Balance, LedgerEntry
    from chalicelib.persistence.factory import TenantModels

#: BatchGetItem takes at most 100 keys.
_BATCH_GET = 100
_ENTRY_SK = "#ENTRY"


class ExportRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def balances(self, member_ids: list[str]) -> dict[str, Balance]:
        model = self._models.balance
        found: dict[str, Balance] = {}
        for start in range(0, len(member_ids), _BATCH_GET):
            keys = [(member_pk(member_id), BALANCE) for member_id in member_ids[start : start + _BATCH_GET]]
            with translate_transient():
                for item in model.batch_get(keys):
                    balance = to_balance(item)
                    found[balance.member_id] = balance
        return found

    def ledger_day(self, day: date, *, lower: str, upper: str, after: str | None, limit: int) -> list[LedgerEntry]:
        """A Query of the day's feed partition (never a Scan), keys in [lower, upper) above
        ``after``, keeping ledger entries only (profiles and notices share the partition)."""
        ledger = self._models.ledger
        start = after if after is not None and after > lower else lower
        entries: list[LedgerEntry] = []
        with translate_transient():
            rows = ledger.feed.query(
                feed_partition_of_day(day),
                ledger.gsi3sk.between(start, upper),
                filter_condition=ledger.sk == _ENTRY_SK,
                limit=limit + 2,
            )
            for row in rows:
                key = row.gsi3sk or ""
                if key >= upper or (after is not None and key <= after):
                    continue  # between() is inclusive at both ends
                entries.append(to_entry(row))
                if len(entries) >= limit:
                    break
        return entries
