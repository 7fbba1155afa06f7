"""The in-memory twins keep the DynamoDB repositories' semantics (they are only useful if they do)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.errors import InvalidRequest, MemberExists, NotFound, TransientStoreError
from chalicelib.domain.ids import new_transaction_id
from chalicelib.domain.members import MemberChanges, MemberService, NewMember
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.ports import BalanceChanged, IdempotencyKeyTaken
from tests.support.memory import InMemoryLedgerStore, InMemoryMemberStore
from tests.unit.builders import T0, Ledgerland, earn


def entry_for(previous: Balance, key: str, points: int) -> tuple[LedgerEntry, Balance]:
    after = previous.apply(MovementType.EARN, points, T0)
    entry = LedgerEntry(
        transaction_id=new_transaction_id(),
        member_id=previous.member_id,
        movement=MovementType.EARN,
        points=points,
        sequence=after.version,
        idempotency_key=key,
        request_fingerprint="f",
        occurred_at=T0,
        created_at=T0,
        balance_after=after,
        metadata={"a": "1"},
    )
    return entry, after


@pytest.fixture
def opened() -> tuple[InMemoryLedgerStore, Balance]:
    ledger = InMemoryLedgerStore()
    members = InMemoryMemberStore(ledger)
    member_id = MemberService(members, clock=lambda: T0).enrol(NewMember()).member_id
    return ledger, ledger.get_balance(member_id, consistent=True)


def test_commit_writes_the_entry_and_the_balance_together(opened: tuple[InMemoryLedgerStore, Balance]) -> None:
    ledger, opening = opened
    entry, after = entry_for(opening, "k1", 10)

    ledger.commit([entry], opening, after)

    assert ledger.get_balance(opening.member_id, consistent=True) == after
    assert ledger.get_entry("k1") == entry


def test_commit_with_a_taken_key_writes_neither(opened: tuple[InMemoryLedgerStore, Balance]) -> None:
    ledger, opening = opened
    first, after = entry_for(opening, "k1", 10)
    ledger.commit([first], opening, after)
    second, after_second = entry_for(after, "k1", 5)

    with pytest.raises(IdempotencyKeyTaken):
        ledger.commit([second], after, after_second)

    assert ledger.get_balance(opening.member_id, consistent=True) == after
    assert ledger.get_entry("k1") == first


def test_commit_from_a_stale_version_writes_neither(opened: tuple[InMemoryLedgerStore, Balance]) -> None:
    ledger, opening = opened
    first, after = entry_for(opening, "k1", 10)
    ledger.commit([first], opening, after)
    stale, after_stale = entry_for(opening, "k2", 5)  # built on version 0, the balance is at 1

    with pytest.raises(BalanceChanged):
        ledger.commit([stale], opening, after_stale)

    assert ledger.get_balance(opening.member_id, consistent=True) == after
    assert ledger.get_entry("k2") is None


def test_commit_for_a_member_without_a_balance_is_a_changed_balance() -> None:
    ledger = InMemoryLedgerStore()
    opening = Balance.opening("mem_01JD0000000000000000000000", T0)
    entry, after = entry_for(opening, "k1", 1)

    with pytest.raises(BalanceChanged):
        ledger.commit([entry], opening, after)

    assert ledger.get_entry("k1") is None


def test_faults_before_and_after_commit(opened: tuple[InMemoryLedgerStore, Balance]) -> None:
    ledger, opening = opened
    entry, after = entry_for(opening, "k1", 10)
    ledger.fail_next_commit(TransientStoreError("before"))
    ledger.fail_next_commit(TimeoutError("after"), after_commit=True)

    with pytest.raises(TransientStoreError):
        ledger.commit([entry], opening, after)
    assert ledger.get_entry("k1") is None

    with pytest.raises(TimeoutError):
        ledger.commit([entry], opening, after)
    assert ledger.get_entry("k1") == entry
    assert ledger.pending_faults == 0
    assert len(ledger.commit_calls) == 2
    assert ledger.applied == [entry]


def test_stored_objects_are_copies(opened: tuple[InMemoryLedgerStore, Balance]) -> None:
    ledger, opening = opened
    entry, after = entry_for(opening, "k1", 10)
    ledger.commit([entry], opening, after)

    entry.metadata["a"] = "changed"
    ledger.get_entry("k1").metadata["a"] = "changed again"

    assert ledger.get_entry("k1").metadata == {"a": "1"}


def test_a_duplicate_external_id_names_the_existing_member(world: Ledgerland) -> None:
    first = world.members.enrol(NewMember(external_id="cust-1", email="a@example.com"))

    with pytest.raises(MemberExists) as refusal:
        world.members.enrol(NewMember(external_id="cust-1"))

    assert refusal.value.code == "member_exists"
    assert refusal.value.details == {"external_id": "cust-1", "member_id": first.member_id}
    assert world.members.list(limit=10, cursor=None).items == [first]
    assert world.members.find_by_external_id("cust-1") == first


def test_members_without_external_ids_never_collide(world: Ledgerland) -> None:
    a = world.members.enrol(NewMember())
    b = world.members.enrol(NewMember())

    assert a.member_id != b.member_id
    assert world.points.balance(a.member_id) == Balance.opening(a.member_id, T0)


def test_members_are_paginated_in_id_order(world: Ledgerland) -> None:
    ids = sorted(world.enrol() for _ in range(5))

    first = world.members.list(limit=2, cursor=None)
    second = world.members.list(limit=2, cursor=first.next_cursor)
    third = world.members.list(limit=2, cursor=second.next_cursor)

    assert [m.member_id for m in first.items + second.items + third.items] == ids
    assert third.next_cursor is None


def test_a_ledger_cursor_is_bound_to_its_member(world: Ledgerland) -> None:
    alice, bob = world.enrol(), world.enrol()
    for n in range(3):
        world.points.move(earn(alice, f"k{n}", 1))
    cursor = world.points.transactions(alice, limit=1, cursor=None).next_cursor

    with pytest.raises(InvalidRequest):
        world.points.transactions(bob, limit=1, cursor=cursor)


def test_member_update_changes_only_the_fields_set(world: Ledgerland) -> None:
    member = world.members.enrol(NewMember(external_id="c1", email="a@example.com", name="Ann", marketing_consent=True))
    at = world.clock.advance(days=1)

    updated = world.members.update(
        member.member_id,
        MemberChanges(fields_set=frozenset({"name", "birthday"}), name="Anna", birthday=date(1990, 1, 2)),
    )

    assert updated == replace(member, name="Anna", birthday=date(1990, 1, 2), updated_at=at)
    assert world.members.get(member.member_id) == updated
    assert updated.updated_at - member.created_at == timedelta(days=1)


def test_updating_an_unknown_member_is_not_found(world: Ledgerland) -> None:
    with pytest.raises(NotFound):
        world.members.update("mem_01JD0000000000000000000000", MemberChanges(fields_set=frozenset({"name"}), name="x"))
