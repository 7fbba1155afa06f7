"""Households in a tenant's table: the household item (its members as JSON, under a version),
each member's membership item (written only if absent), a creation's key, and a pooled
redemption's single transaction over its contributors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.errors import MemberInHousehold, TransientStoreError
from chalicelib.domain.households import (
    CreationKey,
    Household,
    HouseholdChanged,
    HouseholdRole,
    Membership,
    MemberUnavailable,
    PooledCommit,
)
from chalicelib.domain.ports import BalanceChanged, IdempotencyKeyTaken
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, cancellation_codes, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import BALANCE, lot_sk, member_pk
from chalicelib.persistence.ledger import balance_actions, to_ledger_item, to_lot_item
from chalicelib.persistence.models import HouseholdItem
from chalicelib.persistence.quotas import GuardedTransactWrite, guarded_transaction
from chalicelib.persistence.tiers import tier_unchanged

HOUSEHOLD_SK = "#HOUSEHOLD"
REQUEST_SK = "#HOUSEHOLDREQ"


def household_pk(household_id: str) -> str:
    return f"HOUSEHOLD#{household_id}"


def request_pk(idempotency_key: str) -> str:
    return f"HOUSEHOLDREQ#{idempotency_key}"


class HouseholdRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    # --- reads -------------------------------------------------------------------------------------

    def get(self, household_id: str) -> Household | None:
        item = self._read(household_pk(household_id))
        return _to_household(household_id, item) if item is not None else None

    def household_of(self, member_id: str) -> str | None:
        item = self._read(member_pk(member_id))
        return item.household_id if item is not None else None

    def creation(self, idempotency_key: str) -> tuple[str, str] | None:
        item = self._read(request_pk(idempotency_key), REQUEST_SK)
        return (item.household_id or "", item.data or "") if item is not None else None

    def _read(self, pk: str, sk: str = HOUSEHOLD_SK) -> HouseholdItem | None:
        with translate_transient():
            try:
                return self._models.household.get(pk, sk, consistent_read=True)
            except DoesNotExist:
                return None

    # --- membership changes ------------------------------------------------------------------------

    def create(self, household: Household, key: CreationKey | None) -> None:
        model = self._models.household
        owner = household.owner.member_id
        marker, record = object(), object()

        def build(tx: GuardedTransactWrite) -> None:
            tx.save(_household_item(model, household), condition=model.pk.does_not_exist())
            membership = _membership_item(model, owner, household.household_id)
            tx.save(membership, condition=model.pk.does_not_exist(), label=marker)
            if key is not None:
                item = model(
                    request_pk(key.idempotency_key),
                    REQUEST_SK,
                    household_id=household.household_id,
                    data=key.fingerprint,
                )
                tx.save(item, condition=model.pk.does_not_exist(), label=record)
            self._member_present(tx, owner)

        refused = self._commit(build)
        if record in refused:
            raise IdempotencyKeyTaken(key.idempotency_key if key else "")
        self._raise_for(refused, marker, owner)

    def join(self, previous: Household, after: Household, member_id: str) -> None:
        model = self._models.household
        marker = object()

        def build(tx: GuardedTransactWrite) -> None:
            membership = _membership_item(model, member_id, after.household_id)
            tx.save(membership, condition=model.pk.does_not_exist(), label=marker)
            self._replace(tx, previous, after)
            self._member_present(tx, member_id)

        self._raise_for(self._commit(build), marker, member_id)

    def update(self, previous: Household, after: Household) -> None:
        if self._commit(lambda tx: self._replace(tx, previous, after)):
            raise HouseholdChanged(previous.household_id)

    def leave(self, previous: Household, after: Household | None, member_id: str) -> None:
        model = self._models.household

        def build(tx: GuardedTransactWrite) -> None:
            tx.delete(model(member_pk(member_id), HOUSEHOLD_SK), condition=model.household_id == previous.household_id)
            if after is None:
                tx.delete(
                    model(household_pk(previous.household_id), HOUSEHOLD_SK),
                    condition=model.version == previous.version,
                )
            else:
                self._replace(tx, previous, after)

        if self._commit(build):
            raise HouseholdChanged(previous.household_id)

    # --- the pooled redemption -----------------------------------------------------------------------

    def redeem(self, commit: PooledCommit) -> None:
        models = self._models
        balance, lot, household = models.balance, models.lot, models.household
        lead = commit.sides[0].entry

        def build(tx: GuardedTransactWrite) -> None:
            tx.condition_check(
                household,
                household_pk(commit.household.household_id),
                HOUSEHOLD_SK,
                condition=household.version == commit.household.version,
            )
            for side in commit.sides:
                tx.save(
                    to_ledger_item(models, side.entry), condition=models.ledger.pk.does_not_exist(), label=side.entry
                )
            for side in commit.sides:
                previous = side.previous
                tx.update(
                    balance(pk=member_pk(previous.member_id), sk=BALANCE),
                    actions=balance_actions(balance, previous, side.after),
                    condition=(balance.version == previous.version) & tier_unchanged(balance, previous),
                )
                for changed in side.lots.updated:
                    tx.save(to_lot_item(models, changed), condition=lot.pk.exists())
                for gone in side.lots.deleted:
                    tx.delete(lot(pk=member_pk(previous.member_id), sk=lot_sk(gone.lot_id)), condition=lot.pk.exists())

        refused = self._commit(build)
        if any(label is lead for label in refused):
            raise IdempotencyKeyTaken(lead.idempotency_key)
        if refused:
            raise BalanceChanged(lead.member_id)

    # --- helpers -----------------------------------------------------------------------------------

    def _commit(self, build: Callable[[GuardedTransactWrite], None]) -> list[object]:
        """Write the transaction ``build`` fills in; the labels of the conditions that failed
        (an unlabelled one's as None), empty when it was written. Throttling and conflicts:
        TransientStoreError."""
        tx = guarded_transaction(self._models)
        try:
            with translate_transient(), tx:
                build(tx)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" in codes:
                return [
                    label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
                ]
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise
        return []

    def _replace(self, tx: GuardedTransactWrite, previous: Household, after: Household) -> None:
        model = self._models.household
        tx.update(
            model(household_pk(previous.household_id), HOUSEHOLD_SK),
            actions=[model.data.set(_members_json(after)), model.version.set(after.version)],
            condition=model.version == previous.version,
        )

    def _member_present(self, tx: GuardedTransactWrite, member_id: str) -> None:
        """The member's balance exists and was not erased (checked in the transaction)."""
        balance = self._models.balance
        tx.condition_check(
            balance,
            member_pk(member_id),
            BALANCE,
            condition=balance.pk.exists() & balance.erased_at.does_not_exist(),
            label=MemberUnavailable,
        )

    def _raise_for(self, refused: list[object], marker: object, member_id: str) -> None:
        if marker in refused:
            household_id = self.household_of(member_id)
            raise MemberInHousehold(
                f"member {member_id!r} is already in a household",
                details={"member_id": member_id, "household_id": household_id},
            )
        if MemberUnavailable in refused:
            raise MemberUnavailable(member_id)
        if refused:
            raise HouseholdChanged(member_id)


def _household_item(model: type[HouseholdItem], household: Household) -> HouseholdItem:
    return model(
        household_pk(household.household_id),
        HOUSEHOLD_SK,
        household_id=household.household_id,
        data=_members_json(household),
        version=household.version,
    )


def _membership_item(model: type[HouseholdItem], member_id: str, household_id: str) -> HouseholdItem:
    return model(member_pk(member_id), HOUSEHOLD_SK, household_id=household_id)


def _members_json(household: Household) -> str:
    return json.dumps(
        {
            "name": household.name,
            "created_at": household.created_at.isoformat(),
            "members": [
                {"member_id": m.member_id, "role": str(m.role), "joined_at": m.joined_at.isoformat()}
                for m in household.members
            ],
        }
    )


def _to_household(household_id: str, item: HouseholdItem) -> Household:
    data = json.loads(item.data or "{}")
    return Household(
        household_id=household_id,
        name=data.get("name"),
        members=tuple(
            Membership(m["member_id"], HouseholdRole(m["role"]), datetime.fromisoformat(m["joined_at"]))
            for m in data.get("members", [])
        ),
        created_at=datetime.fromisoformat(data["created_at"]),
        version=int(item.version or 0),
    )
