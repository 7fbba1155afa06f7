"""Enrolment with an Idempotency-Key, on the in-memory twins: a retry (even after a write that
landed without its answer) answers the member the first request created and writes nothing; the
same key with another request is refused; without a key nothing changes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from chalicelib.domain.errors import IdempotencyKeyReused, MemberExists, TransientStoreError, UnknownReferralCode
from chalicelib.domain.members import MemberChanges, MemberService, NewMember
from tests.support.memory import InMemoryLedgerStore, InMemoryMemberStore
from tests.unit.builders import T0, FakeClock

ADA = NewMember(
    external_id="cust-1",
    email="ada@example.com",
    name="Ada",
    birthday=date(1990, 12, 10),
    marketing_consent=True,
    card_code="ab-12",
    segments=frozenset({"vip", "staff"}),
)


class Brand:
    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.ledger = InMemoryLedgerStore()
        self.store = InMemoryMemberStore(self.ledger)
        self.members = MemberService(self.store, clock=self.clock)

    def all_members(self) -> list[str]:
        return [m.member_id for m in self.members.list(limit=100, cursor=None).items]


def test_a_retry_with_the_key_answers_the_first_member_and_writes_nothing() -> None:
    brand = Brand()
    first = brand.members.enrol_once(ADA, "enrol-1")
    assert not first.replayed and first.member.card_code == "AB-12"

    brand.clock.advance(minutes=5)
    retry = brand.members.enrol_once(ADA, "enrol-1")

    assert retry.replayed and retry.member == first.member
    assert brand.all_members() == [first.member.member_id]
    assert brand.members.find_by_external_id("cust-1") == first.member
    assert brand.ledger.get_balance(first.member.member_id, consistent=True) is not None


def test_a_replay_answers_the_member_as_enrolled_even_after_it_changed() -> None:
    brand = Brand()
    first = brand.members.enrol_once(ADA, "enrol-1").member
    brand.clock.advance(days=1)
    brand.members.update(first.member_id, MemberChanges(fields_set=frozenset({"name"}), name="Ada L."))

    late = brand.members.enrol_once(ADA, "enrol-1")

    assert late.replayed and late.member == first
    assert brand.members.get(first.member_id).name == "Ada L."


def test_the_key_with_another_request_is_refused_and_writes_nothing() -> None:
    brand = Brand()
    first = brand.members.enrol_once(ADA, "enrol-1").member

    for other in (NewMember(external_id="cust-1", name="Eve"), NewMember(name="Eve"), NewMember()):
        with pytest.raises(IdempotencyKeyReused) as reused:
            brand.members.enrol_once(other, "enrol-1")
        assert reused.value.details == {"idempotency_key": "enrol-1", "member_id": first.member_id}
    # A request the rules would refuse anyway is still answered as the key's misuse
    with pytest.raises(IdempotencyKeyReused):
        brand.members.enrol_once(NewMember(referral_code="22222222"), "enrol-1")
    assert brand.all_members() == [first.member_id]


def test_a_write_that_landed_without_its_answer_is_replayed_by_the_retry() -> None:
    brand = Brand()
    brand.store.fail_next_create(TransientStoreError("timed out after the commit"), after_create=True)
    with pytest.raises(TransientStoreError):
        brand.members.enrol_once(ADA, "enrol-1")
    (created,) = brand.all_members()

    retry = brand.members.enrol_once(ADA, "enrol-1")

    assert retry.replayed and retry.member.member_id == created
    assert retry.member == brand.members.get(created)
    assert brand.all_members() == [created]


def test_a_write_that_never_landed_is_made_by_the_retry() -> None:
    brand = Brand()
    brand.store.fail_next_create(TransientStoreError("throttled"))
    with pytest.raises(TransientStoreError):
        brand.members.enrol_once(ADA, "enrol-1")
    assert brand.all_members() == []

    retry = brand.members.enrol_once(ADA, "enrol-1")

    assert not retry.replayed and brand.all_members() == [retry.member.member_id]


def test_a_replay_keeps_the_referral_and_the_code_the_first_answer_had() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember(external_id="ann"))
    ben = NewMember(external_id="ben", referral_code=(ann.referral_code or "").lower())
    first = brand.members.enrol_once(ben, "enrol-ben").member
    assert first.referred_by == ann.member_id and first.referral_code

    retry = brand.members.enrol_once(ben, "enrol-ben")

    assert retry.replayed and retry.member == first
    assert sorted(brand.all_members()) == sorted([ann.member_id, first.member_id])
    assert list(brand.ledger.referrals) == [first.member_id]


def test_without_a_key_enrolment_is_unchanged() -> None:
    brand = Brand()
    first = brand.members.enrol_once(ADA, None)
    assert not first.replayed
    with pytest.raises(MemberExists) as exists:
        brand.members.enrol_once(ADA, None)
    assert exists.value.details == {"external_id": "cust-1", "member_id": first.member.member_id}
    # A key then does not adopt a member it did not create: the external id is taken
    with pytest.raises(MemberExists):
        brand.members.enrol_once(ADA, "enrol-late")
    assert brand.all_members() == [first.member.member_id]


def test_a_refused_enrolment_leaves_its_key_free() -> None:
    brand = Brand()
    with pytest.raises(UnknownReferralCode):
        brand.members.enrol_once(NewMember(referral_code="22222222"), "enrol-1")
    assert brand.store.get_enrolment("enrol-1") is None

    created = brand.members.enrol_once(NewMember(name="Ada"), "enrol-1")

    assert not created.replayed and brand.all_members() == [created.member.member_id]


def test_two_keys_enrol_two_members_and_keys_of_the_same_content_differ() -> None:
    brand = Brand()
    one = brand.members.enrol_once(NewMember(), "k-1").member
    brand.clock.advance(seconds=1)
    two = brand.members.enrol_once(NewMember(), "k-2").member
    assert one.member_id != two.member_id
    assert brand.members.enrol_once(NewMember(), "k-1").member == one
    assert brand.members.enrol_once(NewMember(), "k-2").member == two
    assert two.created_at - one.created_at == timedelta(seconds=1)
