"""Repositories of one tenant's own table: members, balances, the ledger and the program."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib.domain.errors import MemberExists, TransientStoreError
from chalicelib.domain.events import Event, EventType
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy, Lot, LotChanges, Period
from chalicelib.domain.imports import ExternalIdTaken, Landing
from chalicelib.domain.jobs import JobName, JobRun, RunStatus
from chalicelib.domain.ledger import Balance, LedgerEntry, MovementType
from chalicelib.domain.members import EnrolmentRecord, Member, MemberChanges
from chalicelib.domain.notifications import Notice
from chalicelib.domain.ports import (
    BalanceChanged,
    IdempotencyKeyTaken,
    Page,
)
from chalicelib.domain.program import Program, Rounding
from chalicelib.domain.referrals import CardCodeTaken, Referral, ReferralCodeTaken
from chalicelib.domain.rules import EarningRule, Per, RuleKind, Share
from chalicelib.domain.tiers import TierWrite
from chalicelib.persistence.errors import (
    RETRYABLE_CANCELLATIONS,
    cancellation_codes,
    response_code,
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import DUE_SHARDS, due_shard
from chalicelib.persistence.index_keys import sortable as _sortable
from chalicelib.persistence.limits import GuardedTransactWrite
from chalicelib.persistence.models import (
    BalanceItem,
    EnrolmentItem,
    JobRunItem,
    LedgerItem,
    LotItem,
    MemberItem,
    NoticeItem,
    ProgramItem,
    RuleItem,
)
from chalicelib.persistence.movement_writes import COUNTER_PREFIX, in_order, writer_of
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.plans import decode_grant
from chalicelib.persistence.referrals import (
    CODE_SK,
    card_code_pk,
    code_owner,
    guard_item,
    new_referral_item,
    referral_code_pk,
)
from chalicelib.persistence.tiers import TIER_REVIEW_PREFIX, add_tier_write, tier_unchanged

_MEMBERS = "MEMBERS"
_INDEX_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")
PROFILE = "#PROFILE"
BALANCE = "#BALANCE"


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


_LEDGER_PREFIX = "LEDGER#"
_LEDGER_PARTITION = ("MEMBER#", "#LEDGER")


def ledger_pk(idempotency_key: str) -> str:
    return f"{_LEDGER_PREFIX}{idempotency_key}"


def ledger_partition(member_id: str) -> str:
    return f"{_LEDGER_PARTITION[0]}{member_id}{_LEDGER_PARTITION[1]}"


LOT_PREFIX = "LOT#"
_JOB_RUNS = "JOBRUNS"
_DUE_PREFIX = "EXPIRES#"
_MATURES_PREFIX = "MATURES#"
_BIRTHDAY_PREFIX = "BIRTHDAY#"
_NOTICE = "#NOTICE"
_RULE_PREFIX = "RULE#"
_COUNTER_PREFIX = COUNTER_PREFIX


def lot_sk(lot_id: str) -> str:
    return f"{LOT_PREFIX}{lot_id}"


def feed_partition(moment: datetime) -> str:
    return f"EVENTS#{moment.astimezone(UTC):%Y-%m-%d}"


def feed_partition_of_day(day: date) -> str:
    return f"EVENTS#{day.isoformat()}"


def external_id_pk(external_id: str) -> str:
    return f"EXTID#{external_id}"


ENROLMENT_SK = "#ENROLREQ"


def enrolment_pk(idempotency_key: str) -> str:
    return f"ENROLREQ#{idempotency_key}"


def _index_key(item: MemberItem | LedgerItem) -> dict[str, str]:
    return {"pk": item.pk, "sk": item.sk, "gsi1pk": item.gsi1pk or "", "gsi1sk": item.gsi1sk or ""}


def _transaction(models: TenantModels) -> GuardedTransactWrite:
    """A transaction that checks DynamoDB's limits (100 items, 4 MB, ...) before it is sent."""
    return GuardedTransactWrite(connection=models.balance._get_connection().connection)


def _card_code_taken(models: TenantModels, code: str) -> CardCodeTaken:
    holder = code_owner(models, card_code_pk(code))
    return CardCodeTaken(f"another member has the card code {code!r}", details={"card_code": code, "member_id": holder})


class MemberRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def create(
        self,
        member: Member,
        opening_balance: Balance,
        referral: Referral | None = None,
        *,
        record: EnrolmentRecord | None = None,
    ) -> None:
        models = self._models
        profile = _to_member_item(models, member)
        balance = _to_balance_item(models, opening_balance)
        try:
            with translate_transient(), _transaction(models) as tx:
                if record is not None:
                    tx.save(
                        _to_enrolment_item(models, record),
                        condition=models.enrolment.pk.does_not_exist(),
                        label="idempotency_key",
                    )
                tx.save(profile, condition=models.member.pk.does_not_exist(), label="profile")
                tx.save(balance, condition=models.balance.pk.does_not_exist(), label="balance")
                if member.external_id is not None:
                    tx.save(
                        models.external_id(
                            pk=external_id_pk(member.external_id), sk="#EXTID", member_id=member.member_id
                        ),
                        condition=models.external_id.pk.does_not_exist(),
                        label="external_id",
                    )
                guards = (
                    ("referral_code", referral_code_pk, member.referral_code),
                    ("card_code", card_code_pk, member.card_code),
                )
                for label, pk_of, code in guards:
                    if code is not None:
                        tx.save(
                            guard_item(models, pk_of(code), member.member_id),
                            condition=models.code_guard.pk.does_not_exist(),
                            label=label,
                        )
                if referral is not None:
                    tx.save(new_referral_item(models, referral), condition=models.referral.pk.does_not_exist())
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            refused = {
                label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
            }
            if "idempotency_key" in refused and record is not None:
                raise IdempotencyKeyTaken(record.idempotency_key) from None
            if "external_id" in refused:
                existing = self.find_by_external_id(member.external_id or "")
                raise MemberExists(
                    f"a member with external_id {member.external_id!r} already exists",
                    details={"external_id": member.external_id, "member_id": existing.member_id if existing else None},
                ) from None
            if "card_code" in refused:
                raise _card_code_taken(models, member.card_code or "") from None
            if "referral_code" in refused:
                raise ReferralCodeTaken(member.referral_code or "") from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

    def create_with_opening(self, landings: Sequence[Landing], *, import_id: str) -> dict[int, ExternalIdTaken]:
        """New members, each with its balance, opening entry, lot, tier review entry and tier
        event, in one transaction (bulk import): a member is written only if its external id
        is free, and the link remembers the import, so a rerun of that import recognises its
        own members. When some external ids are taken, those rows are left out and the
        transaction is sent again with the others: returns the rows left out, by row number."""
        models = self._models
        pending = list(landings)
        taken: dict[int, ExternalIdTaken] = {}
        while pending:
            try:
                with translate_transient(), _transaction(models) as tx:
                    for landing in pending:
                        self._add_landing(tx, landing, import_id)
                return taken
            except TransactWriteError as error:
                codes = cancellation_codes(error)
                refused = {
                    label[1]
                    for label, code in zip(tx.labels(), codes, strict=False)
                    if code == "ConditionalCheckFailed" and isinstance(label, tuple)
                }
                if not refused:
                    if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                        raise TransientStoreError(str(error)) from error
                    raise
                for landing in pending:
                    if landing.row in refused:
                        taken[landing.row] = self._taken(landing.member.external_id or "")
                pending = [landing for landing in pending if landing.row not in refused]
        return taken

    def _add_landing(self, tx: GuardedTransactWrite, landing: Landing, import_id: str) -> None:
        models, member = self._models, landing.member
        if member.external_id is None:
            raise ValueError("an imported member has an external id")
        tx.save(_to_member_item(models, member), condition=models.member.pk.does_not_exist())
        tx.save(_to_balance_item(models, landing.balance), condition=models.balance.pk.does_not_exist())
        tx.save(
            models.external_id(
                pk=external_id_pk(member.external_id), sk="#EXTID", member_id=member.member_id, import_id=import_id
            ),
            condition=models.external_id.pk.does_not_exist(),
            label=("link", landing.row),
        )
        if landing.entry is not None:
            tx.save(
                _to_ledger_item(models, landing.entry),
                condition=models.ledger.pk.does_not_exist(),
                label=("entry", landing.row),
            )
        for created in landing.lots.created:
            tx.save(_to_lot_item(models, created), condition=models.lot.pk.does_not_exist())
        if landing.tier is not None:
            add_tier_write(models, tx, landing.tier)

    def _taken(self, external_id: str) -> ExternalIdTaken:
        with translate_transient():
            try:
                found = self._models.external_id.get(external_id_pk(external_id), "#EXTID", consistent_read=True)
            except DoesNotExist:
                raise TransientStoreError("the external id's link is not readable yet") from None
        return ExternalIdTaken(found.member_id, found.import_id)

    def get_enrolment(self, idempotency_key: str) -> EnrolmentRecord | None:
        with translate_transient():
            try:
                item = self._models.enrolment.get(enrolment_pk(idempotency_key), ENROLMENT_SK, consistent_read=True)
            except DoesNotExist:
                return None
        return EnrolmentRecord(
            idempotency_key=idempotency_key,
            fingerprint=item.fingerprint,
            member_id=item.member_id,
            created_at=item.created_at,
            referral_code=item.referral_code,
            referred_by=item.referred_by,
        )

    def get(self, member_id: str) -> Member | None:
        with translate_transient():
            try:
                return _to_member(self._models.member.get(member_pk(member_id), PROFILE))
            except DoesNotExist:
                return None

    def find_by_external_id(self, external_id: str) -> Member | None:
        with translate_transient():
            try:
                link = self._models.external_id.get(external_id_pk(external_id), "#EXTID")
            except DoesNotExist:
                return None
        return self.get(link.member_id)

    def find_by_referral_code(self, code: str) -> Member | None:
        owner = code_owner(self._models, referral_code_pk(code))
        return self.get(owner) if owner is not None else None

    def find_by_card_code(self, code: str) -> Member | None:
        owner = code_owner(self._models, card_code_pk(code))
        return self.get(owner) if owner is not None else None

    def assign_referral_code(self, member_id: str, code: str, at: datetime) -> Member | None:
        models, model = self._models, self._models.member
        item = model(pk=member_pk(member_id), sk=PROFILE)
        try:
            with translate_transient(), _transaction(models) as tx:
                tx.save(
                    guard_item(models, referral_code_pk(code), member_id),
                    condition=models.code_guard.pk.does_not_exist(),
                    label="referral_code",
                )
                tx.update(
                    item,
                    actions=[model.referral_code.set(code), model.updated_at.set(at)],
                    condition=model.pk.exists() & model.referral_code.does_not_exist(),
                    label="profile",
                )
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            refused = {
                label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
            }
            if "profile" in refused:
                return self._get_strongly(member_id)  # unknown, or a concurrent call gave it its code
            if "referral_code" in refused:
                raise ReferralCodeTaken(code) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise
        return self._get_strongly(member_id)

    def _get_strongly(self, member_id: str) -> Member | None:
        with translate_transient():
            try:
                return _to_member(self._models.member.get(member_pk(member_id), PROFILE, consistent_read=True))
            except DoesNotExist:
                return None

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", _MEMBERS)) if cursor else None
        with translate_transient():
            rows = self._models.member.gsi1.query(_MEMBERS, limit=limit + 1, last_evaluated_key=start)
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_member)

    def update(self, member_id: str, changes: MemberChanges, at: datetime) -> Member | None:
        if "card_code" in changes.fields_set:
            return self._update_with_card_code(member_id, changes, at)
        model = self._models.member
        actions = self._profile_actions(member_id, changes, at)
        item = model(pk=member_pk(member_id), sk=PROFILE)
        try:
            with translate_transient():
                item.update(actions=actions, condition=model.pk.exists())
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return _to_member(item)

    def _profile_actions(self, member_id: str, changes: MemberChanges, at: datetime) -> builtins.list[Any]:
        model = self._models.member
        actions = [model.updated_at.set(at)]
        for name in sorted(changes.fields_set):
            value = getattr(changes, name)
            attribute = getattr(model, name)
            if name == "birthday" and value is not None:
                value = value.isoformat()
            if name == "segments":
                value = set(value) if value else None  # no empty sets in DynamoDB: absent is none
            actions.append(attribute.remove() if value is None else attribute.set(value))
        if "birthday" in changes.fields_set:
            birthday_index = _birthday_index(member_id, changes.birthday)
            actions += [
                model.gsi2pk.set(birthday_index[0]) if birthday_index else model.gsi2pk.remove(),
                model.gsi2sk.set(birthday_index[1]) if birthday_index else model.gsi2sk.remove(),
            ]
        return actions

    def _update_with_card_code(self, member_id: str, changes: MemberChanges, at: datetime) -> Member | None:
        """The profile and the card code's guard move together: the new guard is written only if
        absent, the old one deleted only if it is this member's, the profile only if its card
        code is still the one read (a concurrent change re-reads)."""
        models, model = self._models, self._models.member
        for _ in range(8):
            current = self._get_strongly(member_id)
            if current is None:
                return None
            old, new = current.card_code, changes.card_code
            actions = self._profile_actions(member_id, changes, at)
            unchanged = model.card_code == old if old is not None else model.card_code.does_not_exist()
            item = model(pk=member_pk(member_id), sk=PROFILE)
            try:
                with translate_transient(), _transaction(models) as tx:
                    tx.update(item, actions=actions, condition=model.pk.exists() & unchanged, label="profile")
                    if new != old and new is not None:
                        tx.save(
                            guard_item(models, card_code_pk(new), member_id),
                            condition=models.code_guard.pk.does_not_exist(),
                            label="card_code",
                        )
                    if new != old and old is not None:
                        tx.delete(
                            models.code_guard(pk=card_code_pk(old), sk=CODE_SK),
                            condition=models.code_guard.member_id == member_id,
                        )
            except TransactWriteError as error:
                codes = cancellation_codes(error)
                refused = {
                    label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
                }
                if "card_code" in refused:
                    raise _card_code_taken(models, new or "") from None
                if refused or any(code in RETRYABLE_CANCELLATIONS for code in codes):
                    continue  # the profile changed since it was read (or a conflict): read again
                raise
            return self._get_strongly(member_id)
        raise TransientStoreError(f"member {member_id!r} changed too often to update")


class LedgerRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get_balance(self, member_id: str, *, consistent: bool) -> Balance | None:
        with translate_transient():
            try:
                item = self._models.balance.get(member_pk(member_id), BALANCE, consistent_read=consistent)
            except DoesNotExist:
                return None
        return _to_balance(item)

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
            *_optional(balance.last_activity_at, new.last_activity_at),
            *_optional(balance.inactive_at, new.inactive_at),
            *_optional(balance.order_count, new.order_count or None),
            *_lapse_index(balance, new),
            *_tier_actions(balance, new),
            *([balance.referral_from.remove()] if previous.referral_from and not new.referral_from else []),
            *(action for write, writer in ordered for action in writer.balance_actions(balance, write, new)),
        ]
        try:
            with translate_transient(), _transaction(models) as tx:
                for entry in entries:
                    tx.save(_to_ledger_item(models, entry), condition=models.ledger.pk.does_not_exist(), label=entry)
                tx.update(
                    balance(pk=member_pk(member_id), sk=BALANCE),
                    actions=actions,
                    condition=(balance.version == previous.version) & tier_unchanged(balance, previous),
                )
                before_lots = [(write, writer) for write, writer in ordered if writer_of(write)[0] < 0]
                for write, writer in before_lots:
                    writer.add(models, tx, write, entries)
                for created in lots.created:
                    tx.save(_to_lot_item(models, created), condition=lot.pk.does_not_exist())
                for changed in lots.updated:  # whole item: its index keys may move (pending -> expiring)
                    tx.save(_to_lot_item(models, changed), condition=lot.pk.exists())
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
            with translate_transient(), _transaction(models) as tx:
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
        upper = f"{_sortable(as_of)}#~"
        for shard in range(DUE_SHARDS):
            with translate_transient():
                for row in index.query(f"{TIER_REVIEW_PREFIX}{shard}", self._models.tier_review.gsi2sk <= upper):
                    yield (row.gsi2sk or "").split("#", 1)[1]

    def get_counter(self, name: str) -> int:
        with translate_transient():
            try:
                item = self._models.counter.get(f"{_COUNTER_PREFIX}{name}", "#COUNTER", consistent_read=True)
            except DoesNotExist:
                return 0
        return int(item.value or 0)

    def due_lots(self, as_of: datetime, *, maturity: bool = False) -> Iterator[tuple[str, str]]:
        """(member, lot id) of due lots, and (member, ``LAPSE``) of inactive balances."""
        index = self._models.lot.gsi2
        prefix = _MATURES_PREFIX if maturity else _DUE_PREFIX
        upper = f"{_sortable(as_of)}#~"  # '~' sorts after every member and lot id
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
            return [_to_entry(row) for row in rows]

    def get_entry(self, idempotency_key: str) -> LedgerEntry | None:
        with translate_transient():
            try:
                item = self._models.ledger.get(ledger_pk(idempotency_key), "#ENTRY", consistent_read=True)
            except DoesNotExist:
                return None
        return _to_entry(item)

    def list_entries(self, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        partition = ledger_partition(member_id)
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", partition)) if cursor else None
        with translate_transient():
            rows = self._models.ledger.gsi1.query(
                partition, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_entry)


def _optional(attribute: Any, value: Any) -> list[Any]:
    """SET the attribute, or REMOVE it when there is no value."""
    return [attribute.set(value) if value is not None else attribute.remove()]


def _lapse_index(balance: type[BalanceItem], new: Balance) -> list[Any]:
    """A balance with points and an inactivity deadline is in the due index at the deadline."""
    if new.inactive_at is None or new.available <= 0:
        return [balance.gsi2pk.remove(), balance.gsi2sk.remove()]
    return [
        balance.gsi2pk.set(f"{_DUE_PREFIX}{due_shard(new.member_id)}"),
        balance.gsi2sk.set(f"{_sortable(new.inactive_at)}#{new.member_id}#LAPSE"),
    ]


def _tier_actions(balance: type[BalanceItem], new: Balance) -> list[Any]:
    return [
        *_optional(balance.tier, new.tier),
        *_optional(balance.tier_since, new.tier_since),
        *_optional(balance.tier_expires_at, new.tier_expires_at),
        *_optional(balance.tier_rev, new.tier_rev or None),
        *_optional(balance.tier_buckets, new.tier_buckets),
    ]


class JobRunRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def put(self, run: JobRun) -> None:
        with translate_transient():
            self._models.job_run(
                pk=_JOB_RUNS,
                sk=run.run_id,
                job=str(run.job),
                as_of=run.as_of,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=str(run.status),
                counts=dict(run.counts) if run.counts else None,
                error=run.error,
            ).save()

    def list(self, *, limit: int, cursor: str | None) -> Page[JobRun]:
        start = decode_cursor(cursor, fields=("pk", "sk"), partition=("pk", _JOB_RUNS)) if cursor else None
        with translate_transient():
            rows = self._models.job_run.query(
                _JOB_RUNS, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(
                rows,
                limit=limit,
                key_of=lambda row: {"pk": row.pk, "sk": row.sk},
                convert=lambda row: _to_run(self._models.tenant_id, row),
            )


def _to_run(tenant_id: str, item: JobRunItem) -> JobRun:
    counts = item.counts.as_dict() if item.counts is not None else {}
    return JobRun(
        run_id=item.sk,
        job=JobName(item.job),
        tenant_id=tenant_id,
        as_of=item.as_of,
        started_at=item.started_at,
        status=RunStatus(item.status),
        finished_at=item.finished_at,
        counts={str(k): int(v) for k, v in counts.items()},
        error=item.error,
    )


class EventRepository:
    """Reads the feed index raw: a day's partition holds ledger entries and member profiles."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def read_day(self, day: date, *, after: str, upper: str, limit: int) -> list[Event]:
        ledger, member = self._models.ledger, self._models.member
        condition = ledger.gsi3sk.between(after, upper) if after else ledger.gsi3sk <= upper
        with translate_transient():
            raw = ledger._get_connection().query(
                f"EVENTS#{day.isoformat()}", range_key_condition=condition, index_name="feed", limit=limit + 1
            )
        events = []
        for data in raw.get("Items", []):
            if data.get("gsi3sk", {}).get("S") == after:
                continue  # between() is inclusive
            if data["sk"]["S"] == PROFILE:
                events.append(Event.of_member(_to_member(member.from_raw_data(data))))
            elif data["sk"]["S"] == _NOTICE:
                events.append(Event.of_notice(_to_notice(self._models.notice.from_raw_data(data))))
            else:
                events.append(Event.of_entry(_to_entry(ledger.from_raw_data(data))))
        return events[:limit]


class NoticeRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add_once(self, notice: Notice) -> int:
        item = self._models.notice(
            pk=f"NOTICE#{notice.type}#{notice.member_id}#{notice.subject}",
            sk=_NOTICE,
            gsi3pk=feed_partition(notice.created_at),
            gsi3sk=notice.notice_id.removeprefix("ntc_"),
            notice_id=notice.notice_id,
            type=str(notice.type),
            member_id=notice.member_id,
            subject=notice.subject,
            created_at=notice.created_at,
            data=json.dumps(notice.data, separators=(",", ":")),
        )
        try:
            with translate_transient():
                item.save(condition=self._models.notice.pk.does_not_exist())
        except PutError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return 0
            raise
        return 1

    def members_born_on(self, days: list[str]) -> Iterator[str]:
        index = self._models.lot.gsi2
        for day in days:
            with translate_transient():
                for row in index.query(f"{_BIRTHDAY_PREFIX}{day}"):
                    yield str(row.gsi2sk)


def _to_notice(item: NoticeItem) -> Notice:
    return Notice(
        notice_id=item.notice_id,
        type=EventType(item.type),
        member_id=item.member_id,
        subject=item.subject,
        created_at=item.created_at,
        data=json.loads(item.data),
    )


class RuleRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def list(self) -> list[EarningRule]:
        rule = self._models.rule
        with translate_transient():
            return [_to_rule(item) for item in rule.query("PROGRAM", rule.sk.startswith(_RULE_PREFIX))]

    def get(self, rule_id: str) -> EarningRule | None:
        with translate_transient():
            try:
                return _to_rule(self._models.rule.get("PROGRAM", f"{_RULE_PREFIX}{rule_id}"))
            except DoesNotExist:
                return None

    def put(self, rule: EarningRule) -> None:
        definition = {
            "name": rule.name,
            "kind": str(rule.kind),
            "created_at": isoformat_micros(rule.created_at),
            "starts_at": isoformat_micros(rule.starts_at),
            "ends_at": isoformat_micros(rule.ends_at),
            "factor": str(rule.factor) if rule.factor is not None else None,
            "points": rule.points,
            "skus": sorted(rule.skus),
            "categories": sorted(rule.categories),
            "weekdays": sorted(rule.weekdays),
            "min_order_total": str(rule.min_order_total) if rule.min_order_total is not None else None,
            "every": rule.every,
            "at": rule.at,
            "activity": rule.activity,
            "limit": rule.limit,
            "per": str(rule.per) if rule.per else None,
            **({"tiers": sorted(rule.tiers)} if rule.tiers else {}),
            **({"cap": rule.cap} if rule.cap is not None else {}),
            **({"segments": sorted(rule.segments)} if rule.segments else {}),
        }
        with translate_transient():
            self._models.rule(
                pk="PROGRAM", sk=f"{_RULE_PREFIX}{rule.rule_id}", definition=json.dumps(definition)
            ).save()


def isoformat_micros(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _to_rule(item: RuleItem) -> EarningRule:
    data = json.loads(item.definition)

    def moment(name: str) -> datetime | None:
        return datetime.fromisoformat(data[name]) if data.get(name) else None

    return EarningRule(
        rule_id=item.sk.removeprefix(_RULE_PREFIX),
        name=data["name"],
        kind=RuleKind(data["kind"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        starts_at=moment("starts_at"),
        ends_at=moment("ends_at"),
        factor=Decimal(data["factor"]) if data.get("factor") else None,
        points=data.get("points"),
        skus=frozenset(data.get("skus") or ()),
        categories=frozenset(data.get("categories") or ()),
        weekdays=frozenset(data.get("weekdays") or ()),
        min_order_total=Decimal(data["min_order_total"]) if data.get("min_order_total") else None,
        every=data.get("every"),
        at=data.get("at"),
        activity=data.get("activity"),
        limit=data.get("limit"),
        per=Per(data["per"]) if data.get("per") else None,
        tiers=frozenset(data.get("tiers") or ()),
        cap=data.get("cap"),
        segments=frozenset(data.get("segments") or ()),
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


# --- mapping between items and domain objects -----------------------------------------


def _birthday_index(member_id: str, birthday: date | None) -> tuple[str, str] | None:
    return (f"{_BIRTHDAY_PREFIX}{birthday:%m-%d}", member_id) if birthday else None


def _to_member_item(models: TenantModels, member: Member) -> MemberItem:
    birthday_index = _birthday_index(member.member_id, member.birthday)
    return models.member(
        pk=member_pk(member.member_id),
        sk=PROFILE,
        gsi1pk=_MEMBERS,
        gsi1sk=member.member_id,
        gsi3pk=feed_partition(member.created_at),
        gsi3sk=member.member_id.removeprefix("mem_"),
        member_id=member.member_id,
        external_id=member.external_id,
        email=member.email,
        name=member.name,
        birthday=member.birthday.isoformat() if member.birthday else None,
        gsi2pk=birthday_index[0] if birthday_index else None,
        gsi2sk=birthday_index[1] if birthday_index else None,
        marketing_consent=member.marketing_consent,
        created_at=member.created_at,
        updated_at=member.updated_at,
        referral_code=member.referral_code,
        card_code=member.card_code,
        referred_by=member.referred_by,
        segments=set(member.segments) or None,
    )


def _to_enrolment_item(models: TenantModels, record: EnrolmentRecord) -> EnrolmentItem:
    return models.enrolment(
        pk=enrolment_pk(record.idempotency_key),
        sk=ENROLMENT_SK,
        member_id=record.member_id,
        fingerprint=record.fingerprint,
        created_at=record.created_at,
        referral_code=record.referral_code,
        referred_by=record.referred_by,
    )


def _to_member(item: MemberItem) -> Member:
    return Member(
        member_id=item.member_id,
        external_id=item.external_id,
        email=item.email,
        name=item.name,
        birthday=date.fromisoformat(item.birthday) if item.birthday else None,
        marketing_consent=bool(item.marketing_consent),
        created_at=item.created_at,
        updated_at=item.updated_at,
        referral_code=item.referral_code,
        card_code=item.card_code,
        referred_by=item.referred_by,
        segments=frozenset(item.segments or ()),
    )


def _to_balance_item(models: TenantModels, balance: Balance) -> BalanceItem:
    """The whole balance item (an opening balance: a new member's, possibly with an opening
    credit, its inactivity deadline in the due index and a tier)."""
    lapse = (
        (f"{_DUE_PREFIX}{due_shard(balance.member_id)}", f"{_sortable(balance.inactive_at)}#{balance.member_id}#LAPSE")
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
    )


def _to_balance(item: BalanceItem) -> Balance:
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
    )


def _to_ledger_item(models: TenantModels, entry: LedgerEntry) -> LedgerItem:
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
    )


def _to_entry(item: LedgerItem) -> LedgerEntry:
    metadata = item.metadata.as_dict() if item.metadata is not None else {}
    member_id = (item.gsi1pk or "").removeprefix(_LEDGER_PARTITION[0]).removesuffix(_LEDGER_PARTITION[1])
    sequence = int(item.gsi1sk or 0)
    return LedgerEntry(
        transaction_id=item.transaction_id,
        member_id=member_id,
        movement=MovementType(item.movement),
        points=int(item.points),
        sequence=sequence,
        idempotency_key=item.pk.removeprefix(_LEDGER_PREFIX),
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
    )


def _to_lot_item(models: TenantModels, lot: Lot) -> LotItem:
    """Indexed by its next due moment: maturity while pending, then expiry (if any)."""
    due, prefix = (lot.matures_at, _MATURES_PREFIX) if lot.matures_at else (lot.expires_at, _DUE_PREFIX)
    return models.lot(
        pk=member_pk(lot.member_id),
        sk=lot_sk(lot.lot_id),
        gsi2pk=f"{prefix}{due_shard(lot.member_id)}" if due else None,
        gsi2sk=f"{_sortable(due)}#{lot.member_id}#{lot.lot_id}" if due else None,
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
