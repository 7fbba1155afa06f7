"""The ledger in a tenant's table: balances, entries, lots, counters and the due indexes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.expiry import Lot, LotChanges
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.orders import Order, OrderLine
from chalicelib.domain.ports import (
    BalanceChanged,
    IdempotencyKeyTaken,
    Page,
)
from chalicelib.domain.rules import Share
from chalicelib.domain.tiers import TierWrite
from chalicelib.persistence.errors import (
    RETRYABLE_CANCELLATIONS,
    cancellation_codes,
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    BALANCE,
    COUNTER_PREFIX,
    COUNTER_SK,
    DUE_PREFIX,
    DUE_SHARDS,
    GSI1_KEY_FIELDS,
    LEDGER_PARTITION,
    LEDGER_PREFIX,
    LOT_PREFIX,
    MATURES_PREFIX,
    due_shard,
    feed_partition,
    gsi1_key,
    ledger_partition,
    ledger_pk,
    lot_sk,
    member_pk,
    sortable,
)
from chalicelib.persistence.models import (
    BalanceItem,
    LedgerItem,
    LotItem,
    set_or_remove,
)
from chalicelib.persistence.movement_writes import in_order, writer_of
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.plans import decode_grant
from chalicelib.persistence.quotas import guarded_transaction
from chalicelib.persistence.tiers import TIER_REVIEW_PREFIX, add_tier_write, tier_unchanged


class LedgerRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get_balance(self, member_id: str, *, consistent: bool) -> Balance | None:
        with translate_transient():
            try:
                item = self._models.balance.get(member_pk(member_id), BALANCE, consistent_read=consistent)
            except DoesNotExist:
                return None
        return to_balance(item)

    def get_lots(self, member_id: str, *, consistent: bool) -> list[Lot]:
        with translate_transient():
            rows = self._models.lot.query(
                member_pk(member_id), self._models.lot.sk.startswith(LOT_PREFIX), consistent_read=consistent
            )
            return [_to_lot(member_id, row) for row in rows]

    def commit(
        self,
        entries: Sequence[LedgerEntry],
        previous: Balance,
        new: Balance,
        lots: LotChanges,
        *,
        request_entry: bool = True,
        writes: Sequence[object] = (),
    ) -> None:
        models = self._models
        balance, lot = models.balance, models.lot
        member_id = previous.member_id
        ordered = in_order(writes)
        actions = [
            *balance_actions(balance, previous, new),
            *(action for write, writer in ordered for action in writer.balance_actions(balance, write, new)),
        ]
        try:
            with translate_transient(), guarded_transaction(models) as tx:
                for entry in entries:
                    tx.save(to_ledger_item(models, entry), condition=models.ledger.pk.does_not_exist(), label=entry)
                tx.update(
                    balance(pk=member_pk(member_id), sk=BALANCE),
                    actions=actions,
                    condition=(balance.version == previous.version) & tier_unchanged(balance, previous),
                )
                before_lots = [(write, writer) for write, writer in ordered if writer_of(write)[0] < 0]
                for write, writer in before_lots:
                    writer.add(models, tx, write, entries)
                for created in lots.created:
                    tx.save(to_lot_item(models, created), condition=lot.pk.does_not_exist())
                for changed in lots.updated:  # whole item: its index keys may move (pending -> expiring)
                    tx.save(to_lot_item(models, changed), condition=lot.pk.exists())
                for gone in lots.deleted:
                    tx.delete(lot(pk=member_pk(member_id), sk=lot_sk(gone.lot_id)), condition=lot.pk.exists())
                for write, writer in ordered:
                    if writer_of(write)[0] > 0:
                        writer.add(models, tx, write, entries)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            # The reasons follow the request's order, not the order of the calls above.
            refused = [
                label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
            ]
            if request_entry and any(label is entries[-1] for label in refused):
                raise IdempotencyKeyTaken(entries[-1].idempotency_key) from None
            for write, writer in ordered:
                if (own := writer.refused(write, refused)) is not None:
                    raise own from None
            if "ConditionalCheckFailed" in codes:
                raise BalanceChanged(member_id) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

    def set_tier(self, previous: Balance, new: Balance, tier: TierWrite) -> None:
        models = self._models
        balance = models.balance
        try:
            with translate_transient(), guarded_transaction(models) as tx:
                tx.update(
                    balance(pk=member_pk(previous.member_id), sk=BALANCE),
                    actions=_tier_actions(balance, new),
                    condition=(balance.version == previous.version) & tier_unchanged(balance, previous),
                )
                add_tier_write(models, tx, tier)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" in codes:
                raise BalanceChanged(previous.member_id) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

    def due_tier_reviews(self, as_of: datetime) -> Iterator[str]:
        index = self._models.tier_review.gsi2
        upper = f"{sortable(as_of)}#~"
        for shard in range(DUE_SHARDS):
            with translate_transient():
                for row in index.query(f"{TIER_REVIEW_PREFIX}{shard}", self._models.tier_review.gsi2sk <= upper):
                    yield (row.gsi2sk or "").split("#", 1)[1]

    def get_counter(self, name: str) -> int:
        with translate_transient():
            try:
                item = self._models.counter.get(f"{COUNTER_PREFIX}{name}", COUNTER_SK, consistent_read=True)
            except DoesNotExist:
                return 0
        return int(item.value or 0)

    def due_lots(self, as_of: datetime, *, maturity: bool = False) -> Iterator[tuple[str, str]]:
        """(member, lot id) of due lots, and (member, ``LAPSE``) of inactive balances."""
        index = self._models.lot.gsi2
        prefix = MATURES_PREFIX if maturity else DUE_PREFIX
        upper = f"{sortable(as_of)}#~"  # '~' sorts after every member and lot id
        for shard in range(DUE_SHARDS):
            with translate_transient():
                for row in index.query(f"{prefix}{shard}", self._models.lot.gsi2sk <= upper):
                    _, member_id, lot_id = (row.gsi2sk or "").split("#", 2)
                    yield member_id, lot_id

    def entries_for_reference(self, member_id: str, reference: str) -> list[LedgerEntry]:
        """A filtered query of the member's ledger: billed for the whole history it reads,
        which is fine for refunds (rare) and keeps earns (frequent) free of an extra write."""
        ledger = self._models.ledger
        with translate_transient():
            rows = ledger.gsi1.query(ledger_partition(member_id), filter_condition=ledger.reference == reference)
            return [to_entry(row) for row in rows]

    def get_entry(self, idempotency_key: str) -> LedgerEntry | None:
        with translate_transient():
            try:
                item = self._models.ledger.get(ledger_pk(idempotency_key), "#ENTRY", consistent_read=True)
            except DoesNotExist:
                return None
        return to_entry(item)

    def list_entries(self, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        partition = ledger_partition(member_id)
        start = decode_cursor(cursor, fields=GSI1_KEY_FIELDS, partition=("gsi1pk", partition)) if cursor else None
        with translate_transient():
            rows = self._models.ledger.gsi1.query(
                partition, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(rows, limit=limit, key_of=gsi1_key, convert=to_entry)


def balance_actions(balance: type[BalanceItem], previous: Balance, new: Balance) -> list[Any]:
    """The update of a balance item from ``previous`` to ``new`` (every figure a movement moves)."""
    return [
        balance.available.set(new.available),
        balance.lifetime_earned.set(new.lifetime_earned),
        balance.lifetime_redeemed.set(new.lifetime_redeemed),
        balance.lifetime_adjusted.set(new.lifetime_adjusted),
        balance.lifetime_expired.set(new.lifetime_expired),
        balance.version.set(new.version),
        balance.updated_at.set(new.updated_at),
        balance.lot_count.set(new.lot_count),
        balance.next_expiry_points.set(new.next_expiry_points),
        balance.next_expiry_at.set(new.next_expiry_at)
        if new.next_expiry_at is not None
        else balance.next_expiry_at.remove(),
        balance.pending.set(new.pending),
        balance.lifetime_reversed.set(new.lifetime_reversed),
        balance.next_maturity_at.set(new.next_maturity_at)
        if new.next_maturity_at is not None
        else balance.next_maturity_at.remove(),
        *set_or_remove(balance.last_activity_at, new.last_activity_at),
        *set_or_remove(balance.inactive_at, new.inactive_at),
        *set_or_remove(balance.order_count, new.order_count or None),
        *_lapse_index(balance, new),
        *_tier_actions(balance, new),
        *([balance.referral_from.remove()] if previous.referral_from and not new.referral_from else []),
        *set_or_remove(balance.lifetime_transferred, new.lifetime_transferred or None),
    ]


def _lapse_index(balance: type[BalanceItem], new: Balance) -> list[Any]:
    """A balance with points and an inactivity deadline is in the due index at the deadline."""
    if new.inactive_at is None or new.available <= 0:
        return [balance.gsi2pk.remove(), balance.gsi2sk.remove()]
    return [
        balance.gsi2pk.set(f"{DUE_PREFIX}{due_shard(new.member_id)}"),
        balance.gsi2sk.set(f"{sortable(new.inactive_at)}#{new.member_id}#LAPSE"),
    ]


def _tier_actions(balance: type[BalanceItem], new: Balance) -> list[Any]:
    return [
        *set_or_remove(balance.tier, new.tier),
        *set_or_remove(balance.tier_since, new.tier_since),
        *set_or_remove(balance.tier_expires_at, new.tier_expires_at),
        *set_or_remove(balance.tier_rev, new.tier_rev or None),
        *set_or_remove(balance.tier_buckets, new.tier_buckets),
    ]


# --- mapping between items and domain objects -----------------------------------------


def to_balance_item(models: TenantModels, balance: Balance) -> BalanceItem:
    """The whole balance item (an opening balance: a new member's, possibly with an opening
    credit, its inactivity deadline in the due index and a tier)."""
    lapse = (
        (f"{DUE_PREFIX}{due_shard(balance.member_id)}", f"{sortable(balance.inactive_at)}#{balance.member_id}#LAPSE")
        if balance.inactive_at is not None and balance.available > 0
        else (None, None)
    )
    return models.balance(
        pk=member_pk(balance.member_id),
        sk=BALANCE,
        last_activity_at=balance.last_activity_at,
        inactive_at=balance.inactive_at,
        order_count=balance.order_count or None,
        tier=balance.tier,
        tier_since=balance.tier_since,
        tier_expires_at=balance.tier_expires_at,
        tier_rev=balance.tier_rev or None,
        tier_buckets=balance.tier_buckets,
        gsi2pk=lapse[0],
        gsi2sk=lapse[1],
        member_id=balance.member_id,
        available=balance.available,
        lifetime_earned=balance.lifetime_earned,
        lifetime_redeemed=balance.lifetime_redeemed,
        lifetime_adjusted=balance.lifetime_adjusted,
        lifetime_expired=balance.lifetime_expired,
        version=balance.version,
        updated_at=balance.updated_at,
        lot_count=balance.lot_count,
        next_expiry_at=balance.next_expiry_at,
        next_expiry_points=balance.next_expiry_points,
        pending=balance.pending,
        next_maturity_at=balance.next_maturity_at,
        lifetime_reversed=balance.lifetime_reversed,
        referral_from=balance.referral_from,
        lifetime_transferred=balance.lifetime_transferred or None,
    )


def to_balance(item: BalanceItem) -> Balance:
    return Balance(
        member_id=item.member_id,
        available=int(item.available),
        lifetime_earned=int(item.lifetime_earned),
        lifetime_redeemed=int(item.lifetime_redeemed),
        lifetime_adjusted=int(item.lifetime_adjusted),
        lifetime_expired=int(item.lifetime_expired or 0),
        version=int(item.version),
        updated_at=item.updated_at,
        lot_count=int(item.lot_count or 0),
        next_expiry_at=item.next_expiry_at,
        next_expiry_points=int(item.next_expiry_points or 0),
        pending=int(item.pending or 0),
        next_maturity_at=item.next_maturity_at,
        lifetime_reversed=int(item.lifetime_reversed or 0),
        last_activity_at=item.last_activity_at,
        inactive_at=item.inactive_at,
        order_count=int(item.order_count or 0),
        tier=item.tier,
        tier_since=item.tier_since,
        tier_expires_at=item.tier_expires_at,
        tier_rev=int(item.tier_rev or 0),
        tier_buckets=item.tier_buckets,
        referral_from=item.referral_from,
        plan=decode_grant(item.plan),
        lifetime_transferred=int(item.lifetime_transferred or 0),
        erased_at=item.erased_at,
    )


def to_ledger_item(models: TenantModels, entry: LedgerEntry) -> LedgerItem:
    after = entry.balance_after
    return models.ledger(
        pk=ledger_pk(entry.idempotency_key),
        sk="#ENTRY",
        gsi1pk=ledger_partition(entry.member_id),
        gsi1sk=f"{entry.sequence:012d}",
        gsi3pk=feed_partition(entry.created_at),
        gsi3sk=entry.transaction_id.removeprefix("txn_"),
        transaction_id=entry.transaction_id,
        movement=str(entry.movement),
        points=entry.points,
        request_fingerprint=entry.request_fingerprint,
        occurred_at=entry.occurred_at,
        created_at=entry.created_at,
        amount=entry.amount,
        currency=entry.currency,
        reference=entry.reference,
        description=entry.description,
        reason=entry.reason,
        metadata=dict(entry.metadata) if entry.metadata else None,
        actor_key_id=entry.actor_key_id,
        expires_at=entry.expires_at,
        matures_at=entry.matures_at,
        pending_change=entry.pending_change or None,
        requested=entry.requested,
        after_available=after.available,
        after_lifetime_earned=after.lifetime_earned,
        after_lifetime_redeemed=after.lifetime_redeemed,
        after_lifetime_adjusted=after.lifetime_adjusted,
        after_lifetime_expired=after.lifetime_expired or None,
        after_next_expiry_at=after.next_expiry_at,
        after_next_expiry_points=after.next_expiry_points or None,
        after_pending=after.pending or None,
        after_lifetime_reversed=after.lifetime_reversed or None,
        after_inactive_at=after.inactive_at,
        breakdown=json.dumps([[s.source, s.name, s.points, s.rule_id] for s in entry.breakdown], separators=(",", ":"))
        if entry.breakdown
        else None,
        after_tier=after.tier,
        cap_counters=json.dumps([list(c) for c in entry.cap_counters], separators=(",", ":"))
        if entry.cap_counters
        else None,
        after_lifetime_transferred=after.lifetime_transferred or None,
        order=encode_order(entry.order) if entry.order is not None else None,
    )


def to_entry(item: LedgerItem) -> LedgerEntry:
    metadata = item.metadata.as_dict() if item.metadata is not None else {}
    member_id = (item.gsi1pk or "").removeprefix(LEDGER_PARTITION[0]).removesuffix(LEDGER_PARTITION[1])
    sequence = int(item.gsi1sk or 0)
    return LedgerEntry(
        transaction_id=item.transaction_id,
        member_id=member_id,
        movement=MovementType(item.movement),
        points=int(item.points),
        sequence=sequence,
        idempotency_key=item.pk.removeprefix(LEDGER_PREFIX),
        request_fingerprint=item.request_fingerprint,
        occurred_at=item.occurred_at,
        created_at=item.created_at,
        balance_after=Balance(
            member_id=member_id,
            available=int(item.after_available),
            lifetime_earned=int(item.after_lifetime_earned),
            lifetime_redeemed=int(item.after_lifetime_redeemed),
            lifetime_adjusted=int(item.after_lifetime_adjusted),
            version=sequence,
            updated_at=item.created_at,
            lifetime_expired=int(item.after_lifetime_expired or 0),
            next_expiry_at=item.after_next_expiry_at,
            next_expiry_points=int(item.after_next_expiry_points or 0),
            pending=int(item.after_pending or 0),
            lifetime_reversed=int(item.after_lifetime_reversed or 0),
            inactive_at=item.after_inactive_at,
            tier=item.after_tier,
            lifetime_transferred=int(item.after_lifetime_transferred or 0),
        ),
        requested=int(item.requested) if item.requested is not None else None,
        expires_at=item.expires_at,
        matures_at=item.matures_at,
        pending_change=int(item.pending_change or 0),
        breakdown=tuple(Share(*share) for share in json.loads(item.breakdown)) if item.breakdown else (),
        cap_counters=tuple((str(n), int(b)) for n, b in json.loads(item.cap_counters)) if item.cap_counters else (),
        amount=item.amount,
        currency=item.currency,
        reference=item.reference,
        description=item.description,
        reason=item.reason,
        metadata={str(k): str(v) for k, v in metadata.items()},
        actor_key_id=item.actor_key_id,
        order=decode_order(item.order) if item.order else None,
    )


def encode_order(order: Order) -> str:
    return json.dumps({"id": order.order_id, **order.canonical()}, separators=(",", ":"))


def decode_order(raw: str) -> Order:
    data = json.loads(raw)
    return Order(
        order_id=data["id"],
        total=Decimal(data["total"]),
        currency=data["currency"],
        lines=tuple(
            OrderLine(
                sku=line[0],
                category=line[1],
                quantity=int(line[2]),
                unit_price=Decimal(line[3]),
                discount=Decimal(line[4]) if len(line) > 4 else Decimal(0),
            )
            for line in data.get("lines", [])
        ),
        discount=Decimal(data.get("discount", "0")),
        shipping=Decimal(data.get("shipping", "0")),
        tax=Decimal(data.get("tax", "0")),
    )


def to_lot_item(models: TenantModels, lot: Lot) -> LotItem:
    """Indexed by its next due moment: maturity while pending, then expiry (if any)."""
    due, prefix = (lot.matures_at, MATURES_PREFIX) if lot.matures_at else (lot.expires_at, DUE_PREFIX)
    return models.lot(
        pk=member_pk(lot.member_id),
        sk=lot_sk(lot.lot_id),
        gsi2pk=f"{prefix}{due_shard(lot.member_id)}" if due else None,
        gsi2sk=f"{sortable(due)}#{lot.member_id}#{lot.lot_id}" if due else None,
        remaining=lot.remaining,
        original=lot.original,
        earned_at=lot.earned_at,
        expires_at=lot.expires_at,
        matures_at=lot.matures_at,
    )


def _to_lot(member_id: str, item: LotItem) -> Lot:
    return Lot(
        lot_id=item.sk.removeprefix(LOT_PREFIX),
        member_id=member_id,
        remaining=int(item.remaining),
        original=int(item.original),
        earned_at=item.earned_at,
        expires_at=item.expires_at,
        matures_at=item.matures_at,
    )
