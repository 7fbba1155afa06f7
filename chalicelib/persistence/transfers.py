"""Transfers in a tenant's table: both members' sides of a transfer in one transaction."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.ports import BalanceChanged, CounterLimitReached, IdempotencyKeyTaken
from chalicelib.domain.transfers import TransferCommit
from chalicelib.persistence.audit import add_audit_entry
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, cancellation_codes, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import BALANCE, lot_sk, member_pk
from chalicelib.persistence.ledger import balance_actions, to_ledger_item, to_lot_item
from chalicelib.persistence.movement_writes import writer_of
from chalicelib.persistence.quotas import guarded_transaction
from chalicelib.persistence.tiers import tier_unchanged


class TransferRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def commit(self, transfer: TransferCommit) -> None:
        models = self._models
        balance, lot = models.balance, models.lot
        sides = (transfer.out, transfer.into)
        try:
            with translate_transient(), guarded_transaction(models) as tx:
                for side in sides:
                    tx.save(
                        to_ledger_item(models, side.entry),
                        condition=models.ledger.pk.does_not_exist(),
                        label=side.entry,
                    )
                for side in sides:
                    previous = side.previous
                    tx.update(
                        balance(pk=member_pk(previous.member_id), sk=BALANCE),
                        actions=balance_actions(balance, previous, side.after),
                        condition=(balance.version == previous.version) & tier_unchanged(balance, previous),
                    )
                    for created in side.lots.created:
                        tx.save(to_lot_item(models, created), condition=lot.pk.does_not_exist())
                    for changed in side.lots.updated:
                        tx.save(to_lot_item(models, changed), condition=lot.pk.exists())
                    for gone in side.lots.deleted:
                        tx.delete(
                            lot(pk=member_pk(previous.member_id), sk=lot_sk(gone.lot_id)), condition=lot.pk.exists()
                        )
                if transfer.counter is not None:
                    writer_of(transfer.counter)[1].add(models, tx, transfer.counter, [transfer.out.entry])
                if transfer.audit is not None:
                    add_audit_entry(models.audit, tx, transfer.audit)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            refused = [
                label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
            ]
            if any(label is transfer.out.entry for label in refused):
                raise IdempotencyKeyTaken(transfer.out.entry.idempotency_key) from None
            if transfer.counter is not None and any(label is transfer.counter for label in refused):
                raise CounterLimitReached(transfer.counter) from None
            if "ConditionalCheckFailed" in codes:
                raise BalanceChanged(transfer.out.previous.member_id) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise
