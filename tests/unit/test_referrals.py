"""Referrals and member codes in the domain, on the in-memory twins: the code alphabet and its
normalisation, cap periods in the tenant's zone, the program's validation, enrolment with a code
(unknown, self-referral, collisions redrawn), codes for older members, and exactly-once rewards
when orders race, completions rerun, and the cap is reached."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import (
    CardCodeTaken,
    InvalidRequest,
    NotFound,
    SelfReferral,
    TransientStoreError,
    UnknownReferralCode,
)
from chalicelib.domain.ledger import PointsService
from chalicelib.domain.members import MemberService, NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementResult, MovementType
from chalicelib.domain.program import ProgramService
from chalicelib.domain.referrals import (
    CODE_ALPHABET,
    REFERRAL_CODE_LENGTH,
    CapPeriod,
    NewReferralProgram,
    ReferralCap,
    ReferralProgram,
    ReferralQualification,
    ReferralService,
    ReferralStatus,
    cap_period_key,
    new_referral_code,
    normalize_card_code,
    normalize_referral_code,
)
from chalicelib.domain.rules import Order, RuleService
from chalicelib.domain.steps import movement_steps
from tests.support.memory import (
    InMemoryLedgerStore,
    InMemoryMemberStore,
    InMemoryProgramStore,
    InMemoryReferralProgramStore,
    InMemoryReferralStore,
)
from tests.unit.builders import T0, FakeClock

# --- codes ---------------------------------------------------------------------------------------


def qualified(result: MovementResult) -> ReferralQualification | None:
    """The referral the movement qualified in its transaction, if any."""
    return next((w for w in result.writes if isinstance(w, ReferralQualification)), None)


def test_the_code_alphabet_has_no_look_alikes() -> None:
    assert len(CODE_ALPHABET) == len(set(CODE_ALPHABET)) == 31
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert set(CODE_ALPHABET) == set("23456789ABCDEFGHJKMNPQRSTUVWXYZ")


def test_generated_codes_use_only_the_alphabet_and_spread_over_it() -> None:
    codes = [new_referral_code() for _ in range(2000)]
    assert all(len(code) == REFERRAL_CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len(set(codes)) == len(codes)  # 31^8 codes: a repeat in 2 000 is a ~1e-6 event
    assert set("".join(codes)) == set(CODE_ALPHABET)  # every character is drawn
    rigged = iter("23456789")
    assert new_referral_code(lambda alphabet: next(rigged)) == "23456789"


@given(st.text(alphabet=CODE_ALPHABET + CODE_ALPHABET.lower(), min_size=8, max_size=8))
def test_a_code_is_matched_whatever_its_case(code: str) -> None:
    assert normalize_referral_code(code) == code.upper()
    assert normalize_referral_code(f" {code} ") == code.upper()


@pytest.mark.parametrize(
    "code", ["", "ABCDEFG", "ABCDEFGHJ", "ABCDEFG0", "ABCDEFGO", "ABCDEFG1", "ABCDEFGI", "ABCD-EFG"]
)
def test_what_cannot_be_a_code_is_none(code: str) -> None:
    assert normalize_referral_code(code) is None


def test_card_codes_compare_upper_cased() -> None:
    assert normalize_card_code(" 6001-abc ") == "6001-ABC"


# --- cap periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per", "at", "zone", "key"),
    [
        # 31 January 23:30 UTC is already February in Helsinki (UTC+2), still January in New York
        (CapPeriod.MONTH, datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "Europe/Helsinki", "2026-02"),
        (CapPeriod.MONTH, datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "America/New_York", "2026-01"),
        (CapPeriod.MONTH, datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "UTC", "2026-01"),
        (CapPeriod.DAY, datetime(2026, 3, 1, 22, 0, tzinfo=UTC), "Europe/Helsinki", "2026-03-02"),
        (CapPeriod.YEAR, datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "Europe/Helsinki", "2027"),
        (CapPeriod.YEAR, datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "UTC", "2026"),
        # ISO weeks: 1 January 2027 is a Friday of week 53 of 2026
        (CapPeriod.WEEK, datetime(2027, 1, 1, 12, 0, tzinfo=UTC), "UTC", "2026-W53"),
        (CapPeriod.WEEK, datetime(2027, 1, 4, 12, 0, tzinfo=UTC), "UTC", "2027-W01"),
        (CapPeriod.EVER, datetime(2026, 5, 5, tzinfo=UTC), "UTC", "ever"),
    ],
)
def test_cap_periods_are_calendar_periods_in_the_tenants_zone(
    per: CapPeriod, at: datetime, zone: str, key: str
) -> None:
    assert cap_period_key(per, at, zone) == key


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_a_month_key_is_the_local_month(at: datetime) -> None:
    local = at.astimezone(ZoneInfo("Europe/Helsinki"))
    assert cap_period_key(CapPeriod.MONTH, at, "Europe/Helsinki") == f"{local.year:04d}-{local.month:02d}"


def test_the_program_refuses_what_it_cannot_honour() -> None:
    good = {
        "version_id": "rpv_1",
        "effective_from": T0,
        "created_at": T0,
        "enabled": True,
        "referrer_points": 10,
        "referee_points": 0,
    }
    ReferralProgram(**good)  # type: ignore[arg-type]
    for change, field in [
        ({"referrer_points": 0}, "referrer_points"),
        ({"referee_points": -1}, "referee_points"),
        ({"min_order_total": Decimal(0)}, "min_order_total"),
        ({"cap": ReferralCap(0, CapPeriod.MONTH)}, "cap.limit"),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            ReferralProgram(**{**good, **change})  # type: ignore[arg-type]
        assert [f["path"] for f in refused.value.details["fields"]] == [field]


# --- a tenant over the in-memory twins ------------------------------------------------------------


class NoRules:
    def list(self) -> list:  # type: ignore[type-arg]
        return []


class Brand:
    """One tenant's members, ledger and referrals over the in-memory stores."""

    def __init__(self, **program: object) -> None:
        self.clock = FakeClock(T0)
        self.ledger = InMemoryLedgerStore()
        self.member_store = InMemoryMemberStore(self.ledger)
        self.members = MemberService(self.member_store, clock=self.clock)
        self.store = InMemoryReferralStore(self.ledger)
        self.referrals = ReferralService(
            self.store, InMemoryReferralProgramStore(), timezone="Europe/Helsinki", clock=self.clock
        )
        program_service = ProgramService(InMemoryProgramStore(), clock=self.clock)
        rules = RuleService(NoRules(), program_service, clock=self.clock)  # type: ignore[arg-type]
        self.points = PointsService(
            self.ledger,
            program_service,
            clock=self.clock,
            sleep=lambda _: None,
            rules=rules,
            steps=movement_steps(
                points=lambda: self.points, counter=self.ledger.get_counter, rules=rules, referrals=self.referrals
            ),
        )
        settings = {
            "enabled": True,
            "referrer_points": 500,
            "referee_points": 200,
            "min_order_total": Decimal(20),
            **program,
        }
        self.referrals.configure(NewReferralProgram(**settings))  # type: ignore[arg-type]

    def order(self, member_id: str, key: str, total: str) -> MovementRequest:
        return MovementRequest(
            member_id=member_id,
            movement=MovementType.EARN,
            idempotency_key=key,
            order=Order(order_id=key, total=Decimal(total), currency="EUR"),
            currency="EUR",
            timezone="Europe/Helsinki",
        )

    def available(self, member_id: str) -> int:
        return self.points.balance(member_id).available

    def reward_keys(self) -> list[str]:
        return sorted(e.idempotency_key for e in self.ledger.applied if e.idempotency_key.startswith("referral:"))


def test_enrolment_with_a_code_records_a_pending_referral() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember(email="ann@example.com", external_id="ann"))
    ben = brand.members.enrol(NewMember(referral_code=(ann.referral_code or "").lower()))
    assert ben.referred_by == ann.member_id
    assert brand.points.balance(ben.member_id).referral_from == ann.member_id
    referral = brand.store.get(ben.member_id)
    assert referral is not None and (referral.referrer_id, referral.status) == (ann.member_id, ReferralStatus.PENDING)


def test_unknown_codes_and_self_referrals_are_refused_before_anything_is_written() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember(email="ann@example.com", external_id="ann"))
    code = ann.referral_code or ""
    with pytest.raises(UnknownReferralCode):
        brand.members.enrol(NewMember(referral_code="22222222" if code != "22222222" else "33333333"))
    with pytest.raises(UnknownReferralCode):
        brand.members.enrol(NewMember(referral_code="not a code"))
    with pytest.raises(SelfReferral) as same_email:
        brand.members.enrol(NewMember(email="Ann@Example.com", referral_code=code))
    assert same_email.value.details == {"same": ["email"]}
    with pytest.raises(SelfReferral) as same_id:
        brand.members.enrol(NewMember(external_id="ann", email="other@example.com", referral_code=code))
    assert same_id.value.details == {"same": ["external_id"]}
    assert [m.member_id for m in brand.members.list(limit=10, cursor=None).items] == [ann.member_id]
    assert brand.ledger.referrals == {}


def test_a_taken_code_is_drawn_again_and_a_taken_card_is_refused() -> None:
    ledger = InMemoryLedgerStore()
    store = InMemoryMemberStore(ledger)
    draws = iter(["AAAA2222", "AAAA2222", "AAAA2222", "BBBB3333"])
    members = MemberService(store, clock=lambda: T0, new_code=lambda: next(draws))
    first = members.enrol(NewMember(card_code="card-9"))
    second = members.enrol(NewMember())
    assert (first.referral_code, first.card_code, second.referral_code) == ("AAAA2222", "CARD-9", "BBBB3333")
    with pytest.raises(CardCodeTaken) as taken:
        MemberService(store, clock=lambda: T0).enrol(NewMember(card_code="CARD-9"))
    assert taken.value.details == {"card_code": "CARD-9", "member_id": first.member_id}


def test_an_older_member_gets_one_code_however_often_it_asks() -> None:
    ledger = InMemoryLedgerStore()
    store = InMemoryMemberStore(ledger)
    legacy = MemberService(store, clock=lambda: T0, new_code=lambda: "CCCC4444").enrol(NewMember())
    store._members[legacy.member_id] = replace(legacy, referral_code=None)  # as enrolled before codes
    del store._referral_codes["CCCC4444"]
    draws = iter(["DDDD5555", "EEEE6666"])
    members = MemberService(store, clock=lambda: T0, new_code=lambda: next(draws))
    assert members.assign_referral_code(legacy.member_id).referral_code == "DDDD5555"
    assert members.assign_referral_code(legacy.member_id).referral_code == "DDDD5555"
    assert members.identify(referral_code="dddd5555").member_id == legacy.member_id
    with pytest.raises(NotFound):
        members.assign_referral_code("mem_01JD0000000000000000000000")


def test_the_first_qualifying_order_rewards_both_once() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember())
    ben = brand.members.enrol(NewMember(referral_code=ann.referral_code))

    small = brand.points.move(brand.order(ben.member_id, "o-small", "19.99"))
    first = brand.points.move(brand.order(ben.member_id, "o-1", "25"))
    replay = brand.points.move(brand.order(ben.member_id, "o-1", "25"))
    later = brand.points.move(brand.order(ben.member_id, "o-2", "90"))

    assert qualified(small) is None and qualified(later) is None and replay.replayed
    assert qualified(first) is not None and qualified(first).order_id == "o-1"
    assert brand.reward_keys() == [f"referral:{ben.member_id}:referee", f"referral:{ben.member_id}:referrer"]
    assert (brand.available(ann.member_id), brand.available(ben.member_id)) == (500, 19 + 25 + 90 + 200)
    done = brand.store.get(ben.member_id)
    assert done is not None and (done.status, done.referrer_points, done.referee_points) == (
        ReferralStatus.COMPLETED,
        500,
        200,
    )
    assert [e.data["status"] for e in brand.store.events] == ["completed"]
    # Rerunning the completion (the job, a replay) credits nothing more
    assert brand.referrals.complete(ben.member_id, brand.points) == done
    assert brand.referrals.complete_due(brand.points, T0 + timedelta(days=1)) == {
        "referrals": 0,
        "completed": 0,
        "capped": 0,
    }
    assert len(brand.reward_keys()) == 2


def test_two_orders_racing_qualify_the_referral_once() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember())
    ben = brand.members.enrol(NewMember(referral_code=ann.referral_code))
    results = []
    # Another order of Ben's commits between this one's read and its conditional write
    brand.ledger.before_next_commit(
        lambda *_: results.append(brand.points.move(brand.order(ben.member_id, "o-b", "40")))
    )

    mine = brand.points.move(brand.order(ben.member_id, "o-a", "30"))

    (theirs,) = results
    # Then the one that committed first qualified it; ours retried and found it qualified already
    assert qualified(theirs) is not None and qualified(mine) is None
    orders = [e.idempotency_key for e in brand.ledger.commit_calls if e.idempotency_key.startswith("o-")]
    assert orders == ["o-a", "o-b", "o-a"]
    assert brand.reward_keys() == [f"referral:{ben.member_id}:referee", f"referral:{ben.member_id}:referrer"]
    assert (brand.available(ann.member_id), brand.available(ben.member_id)) == (500, 30 + 40 + 200)
    done = brand.store.get(ben.member_id)
    assert done is not None and done.order_id == "o-b"


def test_the_cap_is_decided_by_the_counter_and_a_rerun_decides_the_same() -> None:
    brand = Brand(cap=ReferralCap(2, CapPeriod.MONTH), referee_rewarded_when_capped=False)
    ann = brand.members.enrol(NewMember())
    referees = [brand.members.enrol(NewMember(referral_code=ann.referral_code)) for _ in range(4)]
    order = list(range(4))
    random.Random(7).shuffle(order)
    for i in order:
        brand.points.move(brand.order(referees[i].member_id, f"o-{i}", "50"))
    statuses = [brand.store.get(r.member_id).status for r in referees]  # type: ignore[union-attr]
    assert sorted(statuses) == [ReferralStatus.CAPPED] * 2 + [ReferralStatus.COMPLETED] * 2
    assert brand.available(ann.member_id) == 1000
    assert (
        brand.ledger.get_counter(f"referral:{ann.member_id}:{cap_period_key(CapPeriod.MONTH, T0, 'Europe/Helsinki')}")
        == 2
    )
    capped = [r for r, status in zip(referees, statuses, strict=True) if status is ReferralStatus.CAPPED]
    assert all(brand.available(r.member_id) == 50 for r in capped)  # no referee reward past the cap here

    # A new month opens a new allowance
    brand.clock.advance(days=40)
    late = brand.members.enrol(NewMember(referral_code=ann.referral_code))
    brand.points.move(brand.order(late.member_id, "o-late", "50"))
    assert brand.store.get(late.member_id).status is ReferralStatus.COMPLETED  # type: ignore[union-attr]
    assert brand.available(ann.member_id) == 1500


def test_a_qualified_referral_whose_rewards_failed_is_finished_by_the_job() -> None:
    brand = Brand()
    ann = brand.members.enrol(NewMember())
    ben = brand.members.enrol(NewMember(referral_code=ann.referral_code))
    deferred: list[str] = []
    brand.referrals._on_deferred = lambda referee, error: deferred.append(referee)

    # When the order commits, then every commit of the referrer's reward is throttled (6 attempts)
    ledger = brand.ledger
    ledger.before_next_commit(
        lambda *_: ledger.before_next_commit(
            lambda *_: ledger.fail_next_commit(TransientStoreError("throttled"), times=6)
        )
    )
    earned = brand.points.move(brand.order(ben.member_id, "o-1", "30"))

    # Then the order stands, the referral is qualified and the deferral reported
    assert qualified(earned) is not None and deferred == [ben.member_id]
    assert brand.store.get(ben.member_id).status is ReferralStatus.QUALIFIED  # type: ignore[union-attr]
    assert brand.reward_keys() == []
    # And the job finishes it, once
    assert brand.referrals.complete_due(brand.points, brand.clock.now) == {"referrals": 1, "completed": 1, "capped": 0}
    assert brand.referrals.complete_due(brand.points, brand.clock.now) == {"referrals": 0, "completed": 0, "capped": 0}
    assert (brand.available(ann.member_id), brand.available(ben.member_id)) == (500, 230)
