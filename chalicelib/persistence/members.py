"""Members in a tenant's table: profiles, enrolment requests, external ids and the code guards."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.domain.audit import SYSTEM, Actor
from chalicelib.domain.consents import Consent, ConsentChange, new_consent_change
from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import CardCodeTaken, MemberExists, TransientStoreError
from chalicelib.domain.ids import ulid
from chalicelib.domain.imports import ExternalIdTaken, Landing
from chalicelib.domain.members import EnrolmentRecord, Member, MemberChanges
from chalicelib.domain.ports import (
    IdempotencyKeyTaken,
    Page,
)
from chalicelib.domain.referrals import Referral, ReferralCodeTaken
from chalicelib.persistence.consents import add_consent_change
from chalicelib.persistence.errors import (
    RETRYABLE_CANCELLATIONS,
    cancellation_codes,
    response_code,
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    BIRTHDAY_PREFIX,
    ENROLMENT_SK,
    GSI1_KEY_FIELDS,
    MEMBERS_PARTITION,
    PROFILE,
    enrolment_pk,
    external_id_pk,
    feed_partition,
    gsi1_key,
    member_pk,
)
from chalicelib.persistence.ledger import to_balance_item, to_ledger_item, to_lot_item
from chalicelib.persistence.models import (
    EnrolmentItem,
    MemberItem,
)
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite, guarded_transaction
from chalicelib.persistence.referrals import (
    CODE_SK,
    card_code_pk,
    code_owner,
    guard_item,
    new_referral_item,
    referral_code_pk,
)
from chalicelib.persistence.tiers import add_tier_write


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
        consent: ConsentChange | None = None,
    ) -> None:
        models = self._models
        profile = to_member_item(models, member)
        balance = to_balance_item(models, opening_balance)
        try:
            with translate_transient(), guarded_transaction(models) as tx:
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
                if consent is not None:
                    add_consent_change(models, tx, consent)
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
                with translate_transient(), guarded_transaction(models) as tx:
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
        tx.save(to_member_item(models, member), condition=models.member.pk.does_not_exist())
        tx.save(to_balance_item(models, landing.balance), condition=models.balance.pk.does_not_exist())
        tx.save(
            models.external_id(
                pk=external_id_pk(member.external_id), sk="#EXTID", member_id=member.member_id, import_id=import_id
            ),
            condition=models.external_id.pk.does_not_exist(),
            label=("link", landing.row),
        )
        if landing.entry is not None:
            tx.save(
                to_ledger_item(models, landing.entry),
                condition=models.ledger.pk.does_not_exist(),
                label=("entry", landing.row),
            )
        for created in landing.lots.created:
            tx.save(to_lot_item(models, created), condition=models.lot.pk.does_not_exist())
        if landing.tier is not None:
            add_tier_write(models, tx, landing.tier)
        if landing.consent is not None:
            add_consent_change(models, tx, landing.consent)

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
                return to_member(self._models.member.get(member_pk(member_id), PROFILE))
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
            with translate_transient(), guarded_transaction(models) as tx:
                tx.save(
                    guard_item(models, referral_code_pk(code), member_id),
                    condition=models.code_guard.pk.does_not_exist(),
                    label="referral_code",
                )
                tx.update(
                    item,
                    actions=[model.referral_code.set(code), model.updated_at.set(at)],
                    condition=model.pk.exists()
                    & model.referral_code.does_not_exist()
                    & model.erased_at.does_not_exist(),
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
                return to_member(self._models.member.get(member_pk(member_id), PROFILE, consistent_read=True))
            except DoesNotExist:
                return None

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        start = (
            decode_cursor(cursor, fields=GSI1_KEY_FIELDS, partition=("gsi1pk", MEMBERS_PARTITION)) if cursor else None
        )
        with translate_transient():
            rows = self._models.member.gsi1.query(MEMBERS_PARTITION, limit=limit + 1, last_evaluated_key=start)
            return paginate(rows, limit=limit, key_of=gsi1_key, convert=to_member)

    def enrolled_between(self, start: datetime, end: datetime) -> Iterator[Member]:
        model = self._models.member
        low, high = f"mem_{ulid(start)}"[:14], f"mem_{ulid(end)}"[:14]
        with translate_transient():
            rows = model.gsi1.query(
                MEMBERS_PARTITION, model.gsi1sk.between(low + "0" * 16, high + "Z" * 16), page_size=100
            )
            for row in rows:
                yield to_member(row)

    def update(
        self, member_id: str, changes: MemberChanges, at: datetime, source: Actor | None = None
    ) -> Member | None:
        if {"card_code", "marketing_consent"} & changes.fields_set:
            return self._update_guarded(member_id, changes, at, source or SYSTEM)
        model = self._models.member
        actions = self._profile_actions(member_id, changes, at)
        item = model(pk=member_pk(member_id), sk=PROFILE)
        try:
            with translate_transient():
                item.update(actions=actions, condition=model.pk.exists() & model.erased_at.does_not_exist())
        except UpdateError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return None
            raise
        return to_member(item)

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

    def _update_guarded(self, member_id: str, changes: MemberChanges, at: datetime, source: Actor) -> Member | None:
        """The profile and what moves with it change together: the card code's guard (the new one
        written only if absent, the old one deleted only if it is this member's) and the change of
        a consent (recorded only if its value changes). The profile is written only if its card
        code and consent are still those read (a concurrent change re-reads)."""
        models, model = self._models, self._models.member
        card = "card_code" in changes.fields_set
        for _ in range(8):
            current = self._get_strongly(member_id)
            if current is None or current.erased_at is not None:
                return None
            old, new = (current.card_code, changes.card_code) if card else (None, None)
            actions = self._profile_actions(member_id, changes, at)
            unchanged = model.pk.exists()
            if card:
                unchanged &= model.card_code == old if old is not None else model.card_code.does_not_exist()
            consent = None
            if "marketing_consent" in changes.fields_set:
                given = current.marketing_consent
                held = model.marketing_consent == given
                unchanged &= held if given else (held | model.marketing_consent.does_not_exist())
                if changes.marketing_consent is not None and changes.marketing_consent != given:
                    consent = new_consent_change(
                        member_id, Consent.MARKETING, changes.marketing_consent, given, at, source
                    )
            item = model(pk=member_pk(member_id), sk=PROFILE)
            try:
                with translate_transient(), guarded_transaction(models) as tx:
                    tx.update(
                        item,
                        actions=actions,
                        condition=model.pk.exists() & model.erased_at.does_not_exist() & unchanged,
                        label="profile",
                    )
                    if consent is not None:
                        add_consent_change(models, tx, consent)
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


# --- mapping between items and domain objects -----------------------------------------


def _birthday_index(member_id: str, birthday: date | None) -> tuple[str, str] | None:
    return (f"{BIRTHDAY_PREFIX}{birthday:%m-%d}", member_id) if birthday else None


def to_member_item(models: TenantModels, member: Member) -> MemberItem:
    birthday_index = _birthday_index(member.member_id, member.birthday)
    return models.member(
        pk=member_pk(member.member_id),
        sk=PROFILE,
        gsi1pk=MEMBERS_PARTITION,
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
        imported=member.imported or None,
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


def to_member(item: MemberItem) -> Member:
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
        erased_at=item.erased_at,
        imported=bool(item.imported),
    )
