"""The points ledger: Balance.apply, PointsService.move, idempotency and amount conversion."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import backoff as backoff_module
from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import (
    AmountTooSmall,
    BalanceLimitExceeded,
    BusinessRuleViolation,
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidRequest,
    MovementTooLarge,
    NotFound,
    RetryLater,
    TransientStoreError,
)
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.ids import TRANSACTION_ID_PATTERN
from chalicelib.domain.jobs import JobName, settlement_job
from chalicelib.domain.ledger import RetryPolicy
from chalicelib.domain.movement_requests import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT, MovementRequest, MovementType
from chalicelib.domain.ports import BalanceChanged
from chalicelib.domain.program import Rounding
from tests.unit.builders import T0, Ledgerland, adjust, build_world, earn, earn_amount, redeem

MEMBER = "mem_01JD0000000000000000000000"
LATER = T0 + timedelta(minutes=1)


def balance(available: int, *, earned: int = 0, redeemed: int = 0, adjusted: int = 0, version: int = 0) -> Balance:
    return Balance(MEMBER, available, earned, redeemed, adjusted, version, T0)


def all_pages(world: Ledgerland, member_id: str, limit: int = 3) -> list:
    entries, cursor = [], None
    while True:
        page = world.points.transactions(member_id, limit=limit, cursor=cursor)
        entries.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return entries


# --- Balance.apply ------------------------------------------------------------------------------


def test_opening_balance_is_all_zero_at_version_zero() -> None:
    opening = Balance.opening(MEMBER, T0)

    assert opening == Balance(MEMBER, 0, 0, 0, 0, 0, T0)


def test_earn_adds_to_available_and_lifetime_earned_and_bumps_the_version() -> None:
    # Given a balance of 40 (earned 50, redeemed 10) at version 2
    before = balance(40, earned=50, redeemed=10, version=2)

    # When 25 points are earned
    after = before.apply(MovementType.EARN, 25, LATER)

    # Then only available, earned, version and updated_at move
    assert after == Balance(MEMBER, 65, 75, 10, 0, 3, LATER)
    assert before.available == 40  # apply is pure


def test_redeem_subtracts_from_available_and_adds_to_lifetime_redeemed() -> None:
    before = balance(40, earned=50, redeemed=10, version=2)

    after = before.apply(MovementType.REDEEM, -15, LATER)

    assert after == Balance(MEMBER, 25, 50, 25, 0, 3, LATER)


@pytest.mark.parametrize(("delta", "available", "adjusted"), [(7, 47, 2), (-7, 33, -12)])
def test_adjust_moves_available_and_the_signed_lifetime_adjusted(delta: int, available: int, adjusted: int) -> None:
    before = balance(40, earned=50, redeemed=5, adjusted=-5, version=4)

    after = before.apply(MovementType.ADJUST, delta, LATER)

    assert after == Balance(MEMBER, available, 50, 5, adjusted, 5, LATER)
    assert after.available == after.lifetime_earned - after.lifetime_redeemed + after.lifetime_adjusted


def test_a_movement_may_take_the_balance_exactly_to_zero() -> None:
    after = balance(30, earned=30, version=1).apply(MovementType.REDEEM, -30, LATER)

    assert (after.available, after.lifetime_redeemed, after.version) == (0, 30, 2)


@pytest.mark.parametrize("movement", [MovementType.REDEEM, MovementType.ADJUST])
def test_a_movement_below_zero_is_refused_with_what_was_available_and_requested(movement: MovementType) -> None:
    before = balance(10, earned=10, version=1)

    with pytest.raises(InsufficientPoints) as refusal:
        before.apply(movement, -11, LATER)

    assert refusal.value.code == "insufficient_points"
    assert refusal.value.details == {"available": 10, "requested": 11}
    assert "10" in refusal.value.message and "11" in refusal.value.message


def test_the_balance_may_reach_max_balance_but_not_exceed_it() -> None:
    before = balance(MAX_BALANCE - 5, earned=MAX_BALANCE - 5, version=9)

    at_limit = before.apply(MovementType.EARN, 5, LATER)
    with pytest.raises(BalanceLimitExceeded) as refusal:
        at_limit.apply(MovementType.EARN, 1, LATER)

    assert at_limit.available == MAX_BALANCE
    assert refusal.value.code == "balance_limit_exceeded"
    assert refusal.value.details == {"available": MAX_BALANCE, "points": 1}


# --- PointsService.move: happy paths ----------------------------------------------------------


def test_earn_commits_an_entry_with_the_balance_after_it(world: Ledgerland) -> None:
    # Given a new member
    member = world.enrol()

    # When they earn 120 points
    result = world.points.move(
        earn(member, "order-1", 120, reference="order-1", metadata={"store": "42"}, actor_key_id="key_x")
    )

    # Then the entry records the movement and the balance after it, and both are stored
    entry = result.entry
    assert result.replayed is False
    assert TRANSACTION_ID_PATTERN.match(entry.transaction_id)
    assert (entry.member_id, entry.movement, entry.points, entry.sequence) == (member, MovementType.EARN, 120, 1)
    assert (entry.reference, entry.metadata, entry.actor_key_id) == ("order-1", {"store": "42"}, "key_x")
    assert entry.occurred_at == entry.created_at == T0
    assert (entry.amount, entry.currency) == (None, None)
    assert entry.balance_after == Balance(member, 120, 120, 0, 0, 1, T0, last_activity_at=T0)
    assert world.points.balance(member) == entry.balance_after
    assert world.ledger.get_entry("order-1") == entry


def test_redeem_debits_and_records_a_negative_entry(world: Ledgerland) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 100))
    world.clock.advance(seconds=5)

    result = world.points.move(redeem(member, "r1", 40))

    assert (result.entry.points, result.entry.sequence) == (-40, 2)
    later = T0 + timedelta(seconds=5)
    assert world.points.balance(member) == Balance(member, 60, 100, 40, 0, 2, later, last_activity_at=later)


def test_adjust_applies_a_signed_correction_and_keeps_the_reason(world: Ledgerland) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 100))

    down = world.points.move(adjust(member, "a1", -30, reason="duplicate order"))
    up = world.points.move(adjust(member, "a2", 5, reason="goodwill"))

    assert (down.entry.points, down.entry.reason, down.entry.movement) == (-30, "duplicate order", MovementType.ADJUST)
    assert up.entry.balance_after.available == 75
    assert world.points.balance(member).lifetime_adjusted == -25


def test_an_explicit_occurred_at_is_kept_apart_from_created_at(world: Ledgerland) -> None:
    member = world.enrol()
    yesterday = T0 - timedelta(days=1)

    entry = world.points.move(earn(member, "e1", 1, occurred_at=yesterday)).entry

    assert (entry.occurred_at, entry.created_at) == (yesterday, T0)


def test_transactions_are_listed_newest_first_across_pages(world: Ledgerland) -> None:
    member = world.enrol()
    for n in range(1, 8):
        world.points.move(earn(member, f"e{n}", n))

    first = world.points.transactions(member, limit=3, cursor=None)
    entries = all_pages(world, member, limit=3)

    assert [e.sequence for e in first.items] == [7, 6, 5]
    assert first.next_cursor is not None
    assert [e.sequence for e in entries] == [7, 6, 5, 4, 3, 2, 1]


def test_a_page_that_ends_the_ledger_has_no_cursor(world: Ledgerland) -> None:
    member = world.enrol()
    for n in range(1, 4):
        world.points.move(earn(member, f"e{n}", n))

    page = world.points.transactions(member, limit=3, cursor=None)

    assert [e.sequence for e in page.items] == [3, 2, 1]
    assert page.next_cursor is None


# --- the ledger is the running sum (property) ---------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from([MovementType.EARN, MovementType.REDEEM, MovementType.ADJUST]),
        st.integers(min_value=1, max_value=500),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_the_balance_is_always_the_sum_of_the_ledger(ops: list[tuple[MovementType, int, bool]]) -> None:
    # Given a fresh member
    world = build_world()
    member = world.enrol()
    model_available = 0

    # When a random sequence of earns, redeems and (signed) adjustments is attempted
    for n, (movement, points, negative) in enumerate(ops):
        signed = -points if movement is MovementType.ADJUST and negative else points
        request = MovementRequest(
            member_id=member, movement=movement, idempotency_key=f"k{n}", points=signed, reason="r"
        )
        delta = -points if movement is MovementType.REDEEM else signed
        if model_available + delta < 0:
            with pytest.raises(InsufficientPoints):
                world.points.move(request)
        else:
            world.points.move(request)
            model_available += delta

    # Then the balance is the sum of the entries, never negative, and the lifetime totals agree
    entries = all_pages(world, member, limit=4)[::-1]
    final = world.points.balance(member)
    assert final.available == sum(e.points for e in entries) == model_available
    assert final.available == (
        final.lifetime_earned - final.lifetime_redeemed + final.lifetime_adjusted - final.lifetime_expired
    )
    assert final.lifetime_earned == sum(e.points for e in entries if e.movement is MovementType.EARN)
    assert final.lifetime_redeemed == -sum(e.points for e in entries if e.movement is MovementType.REDEEM)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert final.version == len(entries)
    running = 0
    for e in entries:
        running += e.points
        assert e.balance_after.available == running >= 0


# --- idempotency --------------------------------------------------------------------------------


def test_a_replayed_key_returns_the_first_entry_and_applies_once(world: Ledgerland) -> None:
    # Given an earn of 10 followed by a redeem of 4
    member = world.enrol()
    first = world.points.move(earn(member, "same-key", 10, description="welcome"))
    world.points.move(redeem(member, "spend", 4))
    world.clock.advance(hours=1)

    # When the earn is replayed with the same key and body
    replay = world.points.move(earn(member, "same-key", 10, description="welcome"))

    # Then the first entry comes back (balance as it was then), flagged as a replay, applied once
    assert replay.replayed is True
    assert replay.entry == first.entry
    assert replay.entry.balance_after.available == 10
    assert world.available(member) == 6
    assert len(world.ledger.all_entries(member)) == 2


@pytest.mark.parametrize(
    "different",
    [
        pytest.param({"points": 11}, id="points"),
        pytest.param({"description": "other"}, id="description"),
        pytest.param({"reference": "ref-2"}, id="reference"),
        pytest.param({"metadata": {"a": "b"}}, id="metadata"),
        pytest.param({"movement": MovementType.REDEEM}, id="movement"),
        pytest.param({"occurred_at": T0 - timedelta(days=1)}, id="occurred_at"),
    ],
)
def test_the_same_key_with_a_different_body_is_refused(world: Ledgerland, different: dict) -> None:
    member = world.enrol()
    first = world.points.move(earn(member, "k1", 10))
    request = replace(earn(member, "k1", 10), **different)

    with pytest.raises(IdempotencyKeyReused) as refusal:
        world.points.move(request)

    assert refusal.value.details == {"idempotency_key": "k1", "transaction_id": first.entry.transaction_id}
    assert world.available(member) == 10
    assert world.delays == []


def test_a_key_is_tenant_wide_so_reusing_it_for_another_member_is_refused(world: Ledgerland) -> None:
    alice, bob = world.enrol(), world.enrol()
    world.points.move(earn(alice, "k1", 10))

    with pytest.raises(IdempotencyKeyReused):
        world.points.move(earn(bob, "k1", 10))

    assert world.available(bob) == 0


def test_a_replayed_redeem_succeeds_even_when_the_balance_is_now_too_low(world: Ledgerland) -> None:
    # Given a member who redeemed all 50 of their points
    member = world.enrol()
    world.points.move(earn(member, "e1", 50))
    first = world.points.move(redeem(member, "r1", 50))
    calls = len(world.ledger.commit_calls)

    # When the redeem is replayed
    replay = world.points.move(redeem(member, "r1", 50))

    # Then it is the first result, not insufficient_points, and nothing was written
    assert replay.replayed is True
    assert replay.entry == first.entry
    assert world.available(member) == 0
    assert len(world.ledger.commit_calls) == calls


def test_a_fresh_redeem_beyond_the_balance_is_refused_and_writes_nothing(world: Ledgerland) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 50))

    with pytest.raises(InsufficientPoints) as refusal:
        world.points.move(redeem(member, "r1", 51))

    assert refusal.value.details == {"available": 50, "requested": 51}
    assert world.ledger.get_entry("r1") is None
    assert world.available(member) == 50


@pytest.mark.parametrize("member_id", ["mem_01JD0000000000000000000000", "bob", "", "mem_01jd0000000000000000000000"])
def test_an_unknown_member_is_not_found(world: Ledgerland, member_id: str) -> None:
    world.enrol()

    with pytest.raises(NotFound) as error:
        world.points.move(earn(member_id, "k1", 10))

    assert error.value.code == "not_found"
    assert world.ledger.commit_calls == []


def test_balance_and_transactions_of_an_unknown_member_are_not_found(world: Ledgerland) -> None:
    with pytest.raises(NotFound):
        world.points.balance(MEMBER)
    with pytest.raises(NotFound):
        world.points.transactions(MEMBER, limit=10, cursor=None)


def test_concurrent_movements_are_all_applied_exactly_once(world: Ledgerland) -> None:
    # Given a member and a service that never gives up on lost races
    member = world.enrol()
    service = world.service(RetryPolicy(max_balance_races=100_000))
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for n in range(25):
                service.move(earn(member, f"w{w}-{n}", 1))
                if n % 5 == 0:  # and a duplicate delivery of a request
                    service.move(earn(member, f"w{w}-{n}", 1))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    # When 8 threads earn 25 points each, one at a time, concurrently
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every movement landed once and the sequence has no gaps
    assert errors == []
    entries = world.ledger.all_entries(member)
    assert world.available(member) == 200 == len(entries)
    assert [e.sequence for e in entries] == list(range(1, 201))


# --- amounts converted by the program ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "rounding", "amount", "points"),
    [
        ("1", Rounding.FLOOR, "12.99", 12),
        ("1", Rounding.NEAREST, "12.50", 13),
        ("1", Rounding.NEAREST, "12.49", 12),
        ("1", Rounding.CEIL, "12.01", 13),
        ("1", Rounding.CEIL, "12.00", 12),
        ("2.5", Rounding.FLOOR, "3.99", 9),
        ("2.5", Rounding.NEAREST, "3.99", 10),
        ("2.5", Rounding.NEAREST, "3.10", 8),
        ("0.1", Rounding.CEIL, "3.01", 1),
    ],
)
def test_an_amount_is_converted_with_the_programs_rate_and_rounding(
    world: Ledgerland, rate: str, rounding: Rounding, amount: str, points: int
) -> None:
    # Given a program
    world.program.replace(Decimal(rate), rounding)
    member = world.enrol()

    # When an amount is earned
    entry = world.points.move(earn_amount(member, "k1", amount)).entry

    # Then the points follow the rate and rounding, and the amount is kept as sent
    assert entry.points == points
    assert (entry.amount, entry.currency) == (amount, "EUR")
    assert world.available(member) == points


def test_the_default_program_is_one_point_per_unit_rounded_down(world: Ledgerland) -> None:
    member = world.enrol()

    entry = world.points.move(earn_amount(member, "k1", "12.50")).entry

    assert entry.points == 12


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("EUR", "12.345"), ("EUR", "12.340"), ("JPY", "1000.5"), ("KWD", "1.2345"), ("USD", "0.001")],
)
def test_an_amount_with_more_decimals_than_the_currency_has_is_refused(
    world: Ledgerland, currency: str, amount: str
) -> None:
    member = world.enrol()

    with pytest.raises(InvalidRequest) as refusal:
        world.points.move(earn_amount(member, "k1", amount, currency))

    assert [f["path"] for f in refusal.value.details["fields"]] == ["amount"]
    assert "decimal places" in refusal.value.message
    assert world.ledger.commit_calls == []


@pytest.mark.parametrize(
    ("currency", "amount", "points"), [("JPY", "1000", 1000), ("KWD", "1.234", 1), ("KWD", "0.999", 0)]
)
def test_currencies_with_zero_or_three_decimals_are_accepted(
    world: Ledgerland, currency: str, amount: str, points: int
) -> None:
    member = world.enrol()
    request = earn_amount(member, "k1", amount, currency)

    if points == 0:
        with pytest.raises(AmountTooSmall):
            world.points.move(request)
    else:
        assert world.points.move(request).entry.points == points


def test_kwd_fils_count_under_a_rate_that_makes_them_worth_points(world: Ledgerland) -> None:
    world.program.replace(Decimal("1000"), Rounding.FLOOR)
    member = world.enrol()

    entry = world.points.move(earn_amount(member, "k1", "1.234", "KWD")).entry

    assert (entry.points, entry.amount, entry.currency) == (1234, "1.234", "KWD")


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "abc", "NaN", "Infinity", ""])
def test_a_non_positive_or_malformed_amount_is_refused(world: Ledgerland, amount: str) -> None:
    member = world.enrol()

    with pytest.raises(InvalidRequest) as refusal:
        world.points.move(earn_amount(member, "k1", amount))

    assert refusal.value.message == "amount must be a positive decimal string"


@pytest.mark.parametrize(("rounding", "amount"), [(Rounding.FLOOR, "0.99"), (Rounding.NEAREST, "0.49")])
def test_an_amount_worth_no_points_is_refused(world: Ledgerland, rounding: Rounding, amount: str) -> None:
    world.program.replace(Decimal("1"), rounding)
    member = world.enrol()

    with pytest.raises(AmountTooSmall) as refusal:
        world.points.move(earn_amount(member, "k1", amount))

    assert refusal.value.code == "amount_too_small"
    assert refusal.value.details == {"amount": amount, "points": 0}
    assert world.ledger.commit_calls == []


def test_a_replayed_amount_earn_returns_the_first_points_after_the_rate_changed(world: Ledgerland) -> None:
    member = world.enrol()
    first = world.points.move(earn_amount(member, "k1", "10.00"))
    world.program.replace(Decimal("3"), Rounding.FLOOR)

    replay = world.points.move(earn_amount(member, "k1", "10.00"))

    assert replay.replayed is True
    assert replay.entry == first.entry
    assert replay.entry.points == 10
    assert world.available(member) == 10


def test_a_replayed_amount_earn_survives_a_rate_change_that_makes_it_worth_nothing(world: Ledgerland) -> None:
    # Given 1.00 EUR was earned for 1 point
    member = world.enrol()
    first = world.points.move(earn_amount(member, "k1", "1.00"))
    # And the program then halved its rate (1.00 EUR now earns 0 points)
    world.program.replace(Decimal("0.5"), Rounding.FLOOR)

    # When the client replays its request with the same key
    replay = world.points.move(earn_amount(member, "k1", "1.00"))

    # Then it gets the stored first result
    assert replay.entry == first.entry


def test_an_amount_worth_more_than_the_per_movement_maximum_is_refused(world: Ledgerland) -> None:
    member = world.enrol()
    too_much = str(MAX_POINTS_PER_MOVEMENT + 1)  # "100000001" EUR at 1 point per EUR

    with pytest.raises((InvalidRequest, BusinessRuleViolation)):
        world.points.move(earn_amount(member, "k1", too_much))


def test_a_redeem_by_amount_never_credits_points(world: Ledgerland) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 100))
    request = MovementRequest(
        member_id=member, movement=MovementType.REDEEM, idempotency_key="r1", amount="10.00", currency="EUR"
    )

    try:
        world.points.move(request)
    except (InvalidRequest, BusinessRuleViolation):
        pass

    assert world.available(member) <= 100


# --- faults: lost races, transient failures, crashes after commit ------------------------------


def test_a_lost_race_is_retried_on_a_fresh_read_of_the_balance(world: Ledgerland) -> None:
    # Given a member with 100 points
    member = world.enrol()
    world.points.move(earn(member, "e1", 100))
    # And another request that earns 5 between our read and our write
    world.ledger.before_next_commit(lambda *_: world.points.move(earn(member, "concurrent", 5)))

    # When we redeem 30
    result = world.points.move(redeem(member, "r1", 30))

    # Then our first commit lost the race, and the retry built on the concurrent earn
    assert [e.idempotency_key for e in world.ledger.commit_calls] == ["e1", "r1", "concurrent", "r1"]
    assert result.replayed is False
    assert (result.entry.sequence, result.entry.balance_after.available) == (3, 75)
    assert world.points.balance(member) == result.entry.balance_after
    assert [e.points for e in world.ledger.all_entries(member)] == [100, 5, -30]
    assert len(world.delays) == 1


def test_a_retried_race_re_checks_the_rules_against_the_fresh_balance(world: Ledgerland) -> None:
    # Given 100 points, and a concurrent redeem of 80 that lands between our read and write
    member = world.enrol()
    world.points.move(earn(member, "e1", 100))
    world.ledger.before_next_commit(lambda *_: world.points.move(redeem(member, "other", 80)))

    # When we redeem 50 (fine against the stale read of 100)
    with pytest.raises(InsufficientPoints) as refusal:
        world.points.move(redeem(member, "r1", 50))

    # Then the retry saw 20 and refused: the balance never went negative
    assert refusal.value.details == {"available": 20, "requested": 50}
    assert world.available(member) == 20


def test_a_retry_policy_tries_again_after_each_race_it_is_given_and_after_transient_failures() -> None:
    class HouseholdMoved(Exception):
        pass

    policy, delays = RetryPolicy(max_balance_races=3, max_transient_failures=2), []

    def attempts(*outcomes: object) -> Callable[[], object]:
        pending = iter(outcomes)

        def attempt() -> object:
            outcome = next(pending)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return attempt

    # Races of either kind and a transient failure are tried again, with a backoff before each try
    race = (BalanceChanged, HouseholdMoved)
    run = attempts(HouseholdMoved(), TransientStoreError("throttled"), BalanceChanged("mem"), "done")
    assert policy.run(run, delays.append, racing="moving", races=race) == "done"
    assert len(delays) == 3 and all(0 <= d <= policy.backoff_cap_seconds for d in delays)
    # Each kind gives up on its own budget, saying why
    with pytest.raises(RetryLater) as raced:
        policy.run(attempts(*[HouseholdMoved()] * 3), delays.append, racing="moving", races=race)
    assert raced.value.message == "moving"
    with pytest.raises(RetryLater) as busy:
        policy.run(attempts(*[TransientStoreError("throttled")] * 2), delays.append, racing="moving")
    assert busy.value.message == "the ledger is busy"
    # A race it was not given is not its business
    with pytest.raises(HouseholdMoved):
        policy.run(attempts(HouseholdMoved()), delays.append, racing="moving")


def test_lost_races_give_up_with_retry_later_after_max_balance_races(world: Ledgerland) -> None:

    # Given a policy allowing 5 attempts, and a balance that changes under every one of them
    member = world.enrol()
    service = world.service(RetryPolicy(max_balance_races=5))
    world.ledger.fail_next_commit(BalanceChanged(member), times=5)

    # When we earn
    with pytest.raises(RetryLater) as error:
        service.move(earn(member, "k1", 10))

    # Then it tried 5 times, backed off between tries, wrote nothing and gives the cause (the API says how to retry)
    assert error.value.code == "retry_later"
    assert error.value.message == "the member's balance is changing too fast"
    assert len(world.ledger.commit_calls) == 5
    assert len(world.delays) == 4
    assert all(0 <= d <= RetryPolicy().backoff_cap_seconds for d in world.delays)
    assert world.available(member) == 0
    assert world.ledger.get_entry("k1") is None


def test_a_race_lost_one_time_fewer_than_the_limit_still_succeeds(world: Ledgerland) -> None:

    member = world.enrol()
    service = world.service(RetryPolicy(max_balance_races=5))
    world.ledger.fail_next_commit(BalanceChanged(member), times=4)

    result = service.move(earn(member, "k1", 10))

    assert result.entry.sequence == 1
    assert world.available(member) == 10
    assert len(world.ledger.commit_calls) == 5


def test_transient_failures_give_up_with_retry_later_after_max_transient_failures(world: Ledgerland) -> None:

    # Given a ledger that is throttled on the next 4 commits, and a policy allowing 4
    member = world.enrol()
    policy = RetryPolicy(max_transient_failures=4, backoff_base_seconds=0.05, backoff_cap_seconds=0.08)
    service = world.service(policy)
    world.ledger.fail_next_commit(TransientStoreError("throttled"), times=4)

    # When we earn
    with pytest.raises(RetryLater) as error:
        service.move(earn(member, "k1", 10))

    # Then it tried 4 times with 3 bounded backoffs in between, and nothing was written
    assert error.value.message == "the ledger is busy"
    assert len(world.ledger.commit_calls) == 4
    assert len(world.delays) == 3
    assert all(0 <= d <= 0.08 for d in world.delays)
    assert world.ledger.applied == []

    # And when the client retries with the same key after the storm, it applies once
    result = service.move(earn(member, "k1", 10))
    assert result.replayed is False
    assert world.available(member) == 10


def test_transient_failures_below_the_limit_are_absorbed(world: Ledgerland) -> None:

    member = world.enrol()
    service = world.service(RetryPolicy(max_transient_failures=4))
    world.ledger.fail_next_commit(TransientStoreError("throttled"), times=3)

    result = service.move(earn(member, "k1", 10))

    assert (result.replayed, result.entry.points) == (False, 10)
    assert len(world.ledger.commit_calls) == 4
    assert len(world.delays) == 3
    assert world.available(member) == 10


def test_transient_backoff_grows_exponentially_up_to_the_cap(
    world: Ledgerland, monkeypatch: pytest.MonkeyPatch
) -> None:

    # Given jitter pinned to its upper bound
    monkeypatch.setattr(backoff_module.random, "random", lambda: 1.0)
    member = world.enrol()
    service = world.service(RetryPolicy(max_transient_failures=6, backoff_base_seconds=0.01, backoff_cap_seconds=0.05))
    world.ledger.fail_next_commit(TransientStoreError("throttled"), times=6)

    # When every attempt is throttled
    with pytest.raises(RetryLater):
        service.move(earn(member, "k1", 10))

    # Then the ceilings double from base*2 and stop at the cap
    assert world.delays == pytest.approx([0.02, 0.04, 0.05, 0.05, 0.05])


def test_race_backoff_stops_growing_after_the_third_race(world: Ledgerland, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(backoff_module.random, "random", lambda: 1.0)
    member = world.enrol()
    service = world.service(RetryPolicy(max_balance_races=6, backoff_base_seconds=0.001, backoff_cap_seconds=1.0))
    world.ledger.fail_next_commit(BalanceChanged(member), times=6)

    with pytest.raises(RetryLater):
        service.move(earn(member, "k1", 10))

    assert world.delays == pytest.approx([0.002, 0.004, 0.008, 0.008, 0.008])


def test_backoff_delays_are_jittered_within_zero_and_the_cap(world: Ledgerland) -> None:

    member = world.enrol()
    service = world.service(RetryPolicy(max_transient_failures=30, backoff_base_seconds=0.1, backoff_cap_seconds=0.1))
    world.ledger.fail_next_commit(TransientStoreError("throttled"), times=30)

    with pytest.raises(RetryLater):
        service.move(earn(member, "k1", 10))

    assert len(world.delays) == 29
    assert all(0 <= d <= 0.1 for d in world.delays)
    assert len(set(world.delays)) > 20  # random, not a fixed schedule
    assert min(world.delays) < 0.09


@given(attempt=st.integers(min_value=0, max_value=1000))
@settings(max_examples=50, deadline=None)
def test_retry_policy_backoff_is_never_above_its_ceiling(attempt: int) -> None:
    policy = RetryPolicy(backoff_base_seconds=0.005, backoff_cap_seconds=0.2)

    delay = policy.backoff(attempt)

    assert 0 <= delay <= min(0.2, 0.005 * 2 ** min(attempt, 16))


def test_a_timeout_after_the_write_landed_is_retried_into_the_committed_result(world: Ledgerland) -> None:

    # Given a commit that lands but answers with a timeout
    member = world.enrol()
    world.ledger.fail_next_commit(TransientStoreError("read timeout"), after_commit=True)

    # When we earn
    result = world.points.move(earn(member, "k1", 10))

    # Then the retry finds the committed entry instead of applying twice
    assert result.entry == world.ledger.get_entry("k1")
    assert result.entry.points == 10
    assert world.available(member) == 10
    assert len(world.ledger.applied) == 1
    assert len(world.ledger.commit_calls) == 2


def test_a_crash_after_commit_then_a_client_retry_returns_the_committed_result(world: Ledgerland) -> None:
    # Given a redeem that commits and then the process dies before answering
    member = world.enrol()
    world.points.move(earn(member, "e1", 50))
    world.ledger.fail_next_commit(ConnectionResetError("connection reset"), after_commit=True)
    with pytest.raises(ConnectionResetError):
        world.points.move(redeem(member, "r1", 50))
    committed = world.ledger.get_entry("r1")

    # When the client retries with the same key (the balance is now 0, too low for a fresh redeem)
    world.clock.advance(minutes=3)
    retry = world.points.move(redeem(member, "r1", 50))

    # Then it receives the committed result and the points moved exactly once
    assert committed is not None
    assert retry.replayed is True
    assert retry.entry == committed
    assert (retry.entry.points, retry.entry.balance_after.available) == (-50, 0)
    assert world.available(member) == 0
    assert [e.points for e in world.ledger.all_entries(member)] == [50, -50]


def test_a_failure_before_commit_then_a_client_retry_applies_once(world: Ledgerland) -> None:
    member = world.enrol()
    world.ledger.fail_next_commit(ConnectionResetError("connection reset"))
    with pytest.raises(ConnectionResetError):
        world.points.move(earn(member, "k1", 10))

    retry = world.points.move(earn(member, "k1", 10))

    assert len(world.ledger.applied) == 1
    assert len(world.ledger.commit_calls) == 2
    assert retry.replayed is False
    assert world.available(member) == 10


@pytest.mark.parametrize(
    ("request_for", "refusal"),
    [
        pytest.param(lambda m: redeem(m, "r1", 51), InsufficientPoints, id="insufficient"),
        pytest.param(lambda m: adjust(m, "a1", -51), InsufficientPoints, id="adjust-below-zero"),
        pytest.param(lambda m: earn(m, "e2", MAX_BALANCE), MovementTooLarge, id="movement-too-large"),
    ],
)
def test_business_refusals_are_never_retried(world: Ledgerland, request_for, refusal: type[Exception]) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 50))
    calls = len(world.ledger.commit_calls)

    with pytest.raises(refusal):
        world.points.move(request_for(member))

    assert len(world.ledger.commit_calls) == calls  # commit called 0 times
    assert world.delays == []
    assert world.available(member) == 50


def test_a_reused_key_is_refused_without_retrying(world: Ledgerland) -> None:
    member = world.enrol()
    world.points.move(earn(member, "k1", 10))

    with pytest.raises(IdempotencyKeyReused):
        world.points.move(earn(member, "k1", 99))

    assert len(world.ledger.commit_calls) == 2  # the first earn, and the one collision
    assert world.delays == []


# --- settlement jobs ------------------------------------------------------------------------------


def _with_expiry(world: Ledgerland, days: int = 10) -> None:
    world.program.replace(Decimal(1), Rounding.FLOOR, ExpiryPolicy(ExpiryKind.FIXED_PERIOD, days=days))


@pytest.mark.parametrize("first", [JobName.EXPIRE_POINTS, JobName.MATURE_PENDING])
def test_each_settlement_job_settles_everything_due_whichever_runs_first(world: Ledgerland, first: JobName) -> None:
    # Given a pending lot (5-day window, 10-day expiry) and a plain lot already past its expiry
    _with_expiry(world)
    pending, plain = world.enrol(), world.enrol()
    world.points.move(earn(pending, "p1", 40, pending_days=5))
    world.points.move(earn(plain, "e1", 7))
    jobs = {job: settlement_job(world.ledger, world.points) for job in JobName}
    as_of = T0 + timedelta(days=16)  # past the maturity (day 5) and the expiry (day 15)
    second = JobName.MATURE_PENDING if first is JobName.EXPIRE_POINTS else JobName.EXPIRE_POINTS

    counts = jobs[first].run(as_of)
    again = jobs[second].run(as_of)

    assert counts == {
        "members": 2,
        "lots_matured": 1,
        "points_matured": 40,
        "lots_expired": 2,
        "lapses": 0,
        "points_expired": 47,
    }
    assert not any(again.values())
    for member in (pending, plain):
        stored = world.points.balance(member)
        assert (stored.available, stored.pending, stored.lot_count) == (0, 0, 0)
    settled = world.points.transactions(pending, limit=10, cursor=None).items
    assert [(e.movement, e.points, e.pending_change) for e in settled] == [
        (MovementType.EXPIRE, -40, 0),
        (MovementType.MATURE, 0, -40),
        (MovementType.EARN, 40, 40),
    ]


def test_settled_entries_whose_commit_answer_was_lost_are_counted(world: Ledgerland) -> None:
    # Given 45 due lots: two transactions' worth (32, then 13)
    _with_expiry(world, days=1)
    member = world.enrol()
    for n in range(45):
        world.points.move(earn(member, f"e{n}", 1))
    # And the first settlement transaction lands, but its answer is lost
    world.ledger.fail_next_commit(TransientStoreError("read timeout"), after_commit=True)

    entries = world.points.settle_due(member, T0 + timedelta(days=2))

    assert len(entries) == 45  # not only the 13 of the retried attempt
    stored = world.points.transactions(member, limit=100, cursor=None).items
    assert sorted(e.transaction_id for e in entries) == sorted(
        e.transaction_id for e in stored if e.movement is MovementType.EXPIRE
    )
    assert [e.sequence for e in entries] == list(range(46, 91))
    assert world.points.balance(member).lifetime_expired == 45


def test_a_lost_answer_for_a_commit_that_never_landed_is_not_counted_twice(world: Ledgerland) -> None:
    _with_expiry(world, days=1)
    member = world.enrol()
    for n in range(3):
        world.points.move(earn(member, f"e{n}", 1))
    world.ledger.fail_next_commit(TransientStoreError("conflict"), after_commit=False)

    counts = settlement_job(world.ledger, world.points).run(T0 + timedelta(days=2))

    assert (counts["lots_expired"], counts["points_expired"]) == (3, 3)
    assert world.points.balance(member).lifetime_expired == 3


def _stale_eventual_reads(world: Ledgerland, member: str, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on an eventually consistent read of the balance answers the balance as it is
    now (a replica that fell behind); a strong read answers the truth. Returns the reads made."""
    stale = world.ledger.get_balance(member, consistent=True)
    strong = world.ledger.get_balance
    reads: list[bool] = []

    def get_balance(member_id: str, *, consistent: bool) -> Balance | None:
        reads.append(consistent)
        return strong(member_id, consistent=True) if consistent else stale

    monkeypatch.setattr(world.ledger, "get_balance", get_balance)
    return reads


def test_a_stale_first_read_is_caught_by_the_version_and_read_again_strongly(
    world: Ledgerland, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a member whose eventually consistent reads lag one earn behind
    member = world.enrol()
    reads = _stale_eventual_reads(world, member, monkeypatch)
    world.points.move(earn(member, "e1", 50))

    # When they earn again
    result = world.points.move(earn(member, "e2", 30))

    # Then the stale read's commit was refused by the version, the strong read's landed
    assert reads[-2:] == [False, True]
    assert result.entry.balance_after.available == 80
    truth = world.ledger.get_balance(member, consistent=True)
    assert truth is not None and truth.available == 80
    assert len(world.delays) == 1  # one lost race: the usual short backoff


def test_a_refusal_is_never_decided_on_a_stale_read(world: Ledgerland, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a member who has just earned 50 points, whose eventual reads still show 0
    member = world.enrol()
    reads = _stale_eventual_reads(world, member, monkeypatch)
    world.points.move(earn(member, "e1", 50))
    calls = len(world.ledger.commit_calls)

    # When they redeem the 50 points
    world.points.move(redeem(member, "r1", 50))

    # Then the stale read's "insufficient" was decided again on a strong read, without a retry
    assert reads[-2:] == [False, True]
    assert len(world.ledger.commit_calls) == calls + 1
    assert world.delays == []
    truth = world.ledger.get_balance(member, consistent=True)
    assert truth is not None and truth.available == 0
