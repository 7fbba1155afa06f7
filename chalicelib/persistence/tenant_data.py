"""Repositories of one tenant's own table: members, balances, the ledger and the program."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.errors import MemberExists, TransientStoreError
from chalicelib.domain.ledger import Balance, LedgerEntry, MovementType
from chalicelib.domain.members import Member, MemberChanges
from chalicelib.domain.ports import BalanceChanged, IdempotencyKeyTaken, Page
from chalicelib.domain.program import Program, Rounding
from chalicelib.persistence.errors import (
    RETRYABLE_CANCELLATIONS,
    cancellation_codes,
    response_code,
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import BalanceItem, LedgerItem, MemberItem
from chalicelib.persistence.pagination import decode_cursor, paginate

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


def external_id_pk(external_id: str) -> str:
    return f"EXTID#{external_id}"


def _index_key(item: MemberItem | LedgerItem) -> dict[str, str]:
    return {"pk": item.pk, "sk": item.sk, "gsi1pk": item.gsi1pk or "", "gsi1sk": item.gsi1sk or ""}


def _transaction(models: TenantModels) -> TransactWrite:
    return TransactWrite(connection=models.balance._get_connection().connection)


class MemberRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def create(self, member: Member, opening_balance: Balance) -> None:
        models = self._models
        profile = _to_member_item(models, member)
        balance = _to_balance_item(models, opening_balance)
        try:
            with translate_transient(), _transaction(models) as tx:
                tx.save(profile, condition=models.member.pk.does_not_exist())
                tx.save(balance, condition=models.balance.pk.does_not_exist())
                if member.external_id is not None:
                    tx.save(
                        models.external_id(
                            pk=external_id_pk(member.external_id), sk="#EXTID", member_id=member.member_id
                        ),
                        condition=models.external_id.pk.does_not_exist(),
                    )
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if len(codes) == 3 and codes[2] == "ConditionalCheckFailed":
                existing = self.find_by_external_id(member.external_id or "")
                raise MemberExists(
                    f"a member with external_id {member.external_id!r} already exists",
                    details={"external_id": member.external_id, "member_id": existing.member_id if existing else None},
                ) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

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

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", _MEMBERS)) if cursor else None
        with translate_transient():
            rows = self._models.member.gsi1.query(_MEMBERS, limit=limit + 1, last_evaluated_key=start)
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_member)

    def update(self, member_id: str, changes: MemberChanges, at: datetime) -> Member | None:
        model = self._models.member
        actions = [model.updated_at.set(at)]
        for name in sorted(changes.fields_set):
            value = getattr(changes, name)
            attribute = getattr(model, name)
            if name == "birthday" and value is not None:
                value = value.isoformat()
            actions.append(attribute.remove() if value is None else attribute.set(value))
        item = model(pk=member_pk(member_id), sk=PROFILE)
        try:
            with translate_transient():
                item.update(actions=actions, condition=model.pk.exists())
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return _to_member(item)


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

    def commit(self, entry: LedgerEntry, previous: Balance, new: Balance) -> None:
        models = self._models
        balance = models.balance
        entry_item = _to_ledger_item(models, entry)
        try:
            with translate_transient(), _transaction(models) as tx:
                tx.save(entry_item, condition=models.ledger.pk.does_not_exist())
                tx.update(
                    balance(pk=member_pk(entry.member_id), sk=BALANCE),
                    actions=[
                        balance.available.set(new.available),
                        balance.lifetime_earned.set(new.lifetime_earned),
                        balance.lifetime_redeemed.set(new.lifetime_redeemed),
                        balance.lifetime_adjusted.set(new.lifetime_adjusted),
                        balance.version.set(new.version),
                        balance.updated_at.set(new.updated_at),
                    ],
                    condition=(balance.version == previous.version),
                )
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise IdempotencyKeyTaken(entry.idempotency_key) from None
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise BalanceChanged(entry.member_id) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

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
        )

    def put(self, program: Program) -> None:
        with translate_transient():
            self._models.program(
                pk="PROGRAM",
                sk="#CURRENT",
                points_per_currency_unit=str(program.points_per_currency_unit),
                rounding=str(program.rounding),
                updated_at=program.updated_at,
            ).save()


# --- mapping between items and domain objects -----------------------------------------


def _to_member_item(models: TenantModels, member: Member) -> MemberItem:
    return models.member(
        pk=member_pk(member.member_id),
        sk=PROFILE,
        gsi1pk=_MEMBERS,
        gsi1sk=member.member_id,
        member_id=member.member_id,
        external_id=member.external_id,
        email=member.email,
        name=member.name,
        birthday=member.birthday.isoformat() if member.birthday else None,
        marketing_consent=member.marketing_consent,
        created_at=member.created_at,
        updated_at=member.updated_at,
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
    )


def _to_balance_item(models: TenantModels, balance: Balance) -> BalanceItem:
    return models.balance(
        pk=member_pk(balance.member_id),
        sk=BALANCE,
        member_id=balance.member_id,
        available=balance.available,
        lifetime_earned=balance.lifetime_earned,
        lifetime_redeemed=balance.lifetime_redeemed,
        lifetime_adjusted=balance.lifetime_adjusted,
        version=balance.version,
        updated_at=balance.updated_at,
    )


def _to_balance(item: BalanceItem) -> Balance:
    return Balance(
        member_id=item.member_id,
        available=int(item.available),
        lifetime_earned=int(item.lifetime_earned),
        lifetime_redeemed=int(item.lifetime_redeemed),
        lifetime_adjusted=int(item.lifetime_adjusted),
        version=int(item.version),
        updated_at=item.updated_at,
    )


def _to_ledger_item(models: TenantModels, entry: LedgerEntry) -> LedgerItem:
    after = entry.balance_after
    return models.ledger(
        pk=ledger_pk(entry.idempotency_key),
        sk="#ENTRY",
        gsi1pk=ledger_partition(entry.member_id),
        gsi1sk=f"{entry.sequence:012d}",
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
        after_available=after.available,
        after_lifetime_earned=after.lifetime_earned,
        after_lifetime_redeemed=after.lifetime_redeemed,
        after_lifetime_adjusted=after.lifetime_adjusted,
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
        ),
        amount=item.amount,
        currency=item.currency,
        reference=item.reference,
        description=item.description,
        reason=item.reason,
        metadata={str(k): str(v) for k, v in metadata.items()},
        actor_key_id=item.actor_key_id,
    )
