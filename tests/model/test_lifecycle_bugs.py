"""Bugs of the points lifecycle found while modelling it (tests/model/test_ledger_state_machine.py),
kept as minimal reproductions through the real services on moto, now that they are fixed:

* a replay whose recomputed transaction would delete a lot answered 503 for ever (the
  cancellation reasons were read by call order; PynamoDB sends deletes first);
* a client key spelling a settlement key (``expire:<lot id>``) blocked the lot for good;
* the balance ignored that maturing points pay back a claw-back's debt before the job ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.errors import InsufficientPoints, InvalidRequest
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName, RunStatus
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementResult, MovementType
from chalicelib.domain.program import Rounding
from chalicelib.domain.tenants import NewTenant
from chalicelib.services import TenantServices, platform, reset_platform
from tests.support.clocks import MovableClock

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ONE_DAY = ExpiryPolicy(ExpiryKind.FIXED_PERIOD, days=1)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def brand(clock: MovableClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantServices]:
    from moto import mock_aws

    monkeypatch.setenv("LOYALTY_CONFLICT_RETRY_ATTEMPTS", "4")  # the bugs below exhaust the retries

    with mock_aws():
        reset_platform()
        services = platform()
        services.provisioner.ensure_control_table()
        services.tenants.create(NewTenant(tenant_id="acme", name="Acme", currency="EUR", timezone="UTC"))
        yield services.for_tenant_id("acme", clock=clock)


def move(
    brand: TenantServices, member: str, movement: MovementType, points: int, key: str, **more: object
) -> MovementResult:
    request = MovementRequest(member_id=member, movement=movement, points=points, idempotency_key=key, **more)  # type: ignore[arg-type]
    return brand.points.move(request)


def test_a_replay_of_a_redeem_that_empties_a_lot_answers_its_first_response(brand: TenantServices) -> None:
    # Given points that expire, spent whole, and as many again earned since
    brand.program.replace(Decimal(1), Rounding.FLOOR, expiry=ONE_DAY)
    member = brand.members.enrol(NewMember()).member_id
    move(brand, member, MovementType.EARN, 10, "earn-1")
    first = move(brand, member, MovementType.REDEEM, 10, "redeem-1")
    move(brand, member, MovementType.EARN, 10, "earn-2")

    # When the redeem is replayed (recomputed, it would empty the second lot)
    replay = move(brand, member, MovementType.REDEEM, 10, "redeem-1")

    # Then it answers with its first entry and moves nothing
    assert replay.replayed
    assert replay.entry.transaction_id == first.entry.transaction_id
    assert brand.points.balance(member).available == 10


def test_a_late_replay_of_an_earn_whose_points_expired_answers_its_first_response(
    brand: TenantServices, clock: MovableClock
) -> None:
    # Given points earned under a one-day expiry
    brand.program.replace(Decimal(1), Rounding.FLOOR, expiry=ONE_DAY)
    member = brand.members.enrol(NewMember()).member_id
    first = move(brand, member, MovementType.EARN, 10, "earn-1")

    # When the earn is replayed after they expired (the replay's transaction would record the expiry)
    clock.now = T0 + 2 * DAY
    replay = move(brand, member, MovementType.EARN, 10, "earn-1")

    # Then it answers with its first entry
    assert replay.replayed
    assert replay.entry.transaction_id == first.entry.transaction_id


def test_a_client_key_shaped_like_a_settlement_key_is_refused_and_the_lot_still_expires(
    brand: TenantServices, clock: MovableClock
) -> None:
    # Given a lot that expires after a day (lot ids are the transaction ids responses show)
    brand.program.replace(Decimal(1), Rounding.FLOOR, expiry=ONE_DAY)
    member = brand.members.enrol(NewMember()).member_id
    lot = move(brand, member, MovementType.EARN, 10, "order-1").entry.transaction_id
    brand.program.replace(Decimal(1), Rounding.FLOOR)  # later points never expire

    # When a client sends a key that spells the lot's settlement key, or any minted shape
    for key in (f"expire:{lot}", f"mature:{lot}", f"lapse:{member}:3", f"birthday:{member}:2027"):
        with pytest.raises(InvalidRequest) as refused:
            move(brand, member, MovementType.EARN, 5, key)
        assert refused.value.details["fields"][0]["type"] == "reserved_prefix"

    # Then nothing was written, a key merely containing the prefix later is fine, and the lot expires
    assert brand.points.balance(member).available == 10
    move(brand, member, MovementType.EARN, 5, f"order-2-expire:{lot}")
    clock.now = T0 + 2 * DAY
    assert move(brand, member, MovementType.REDEEM, 5, "redeem-1").entry.balance_after.available == 0
    run = brand.jobs.run(JobName.EXPIRE_POINTS, clock.now)
    assert run.status is RunStatus.SUCCEEDED
    assert brand.points.balance(member).lifetime_expired == 10


def test_the_balance_counts_a_maturity_paying_back_a_claw_back_before_the_job(
    brand: TenantServices, clock: MovableClock
) -> None:
    # Given a member 30 points below zero after a claw-back, with 100 points pending for a day
    brand.program.replace(Decimal(1), Rounding.FLOOR, expiry=ONE_DAY, reversal_clawback=True)
    member = brand.members.enrol(NewMember()).member_id
    move(brand, member, MovementType.EARN, 100, "earn-1", reference="order-1")
    move(brand, member, MovementType.REDEEM, 100, "redeem-1")
    assert (
        move(brand, member, MovementType.REVERSE, 30, "refund-1", reference="order-1").entry.balance_after.available
        == -30
    )
    move(brand, member, MovementType.EARN, 100, "earn-2", pending_days=1)

    # When they have matured (paying the debt) and the 70 left have expired, before any job
    clock.now = T0 + 3 * DAY
    before = brand.points.view(member)
    brand.jobs.run(JobName.MATURE_PENDING, clock.now)
    after = brand.points.view(member)

    # Then the balance read before the job already shows what the job records
    assert brand.points.balance(member).lifetime_expired == 70
    assert (after.available, after.pending) == (0, 0)
    assert (before.available, before.pending) == (after.available, after.pending)


def test_a_member_in_claw_back_debt_can_earn_less_than_the_debt(brand: TenantServices) -> None:
    # Found by `make soak`: an earn smaller than a claw-back's debt was refused as insufficient_points.
    # Given a member 30 points below zero after a claw-back
    brand.program.replace(Decimal(1), Rounding.FLOOR, reversal_clawback=True)
    member = brand.members.enrol(NewMember()).member_id
    move(brand, member, MovementType.EARN, 100, "earn-1", reference="order-1")
    move(brand, member, MovementType.REDEEM, 100, "redeem-1")
    move(brand, member, MovementType.REVERSE, 30, "refund-1", reference="order-1")

    # When they earn 10 points, then 50
    first = move(brand, member, MovementType.EARN, 10, "earn-2")
    second = move(brand, member, MovementType.EARN, 50, "earn-3")

    # Then each earn pays the debt down; a redeem still cannot take the balance below zero
    assert (first.entry.balance_after.available, second.entry.balance_after.available) == (-20, 30)
    with pytest.raises(InsufficientPoints):
        move(brand, member, MovementType.REDEEM, 31, "redeem-2")
    assert brand.points.balance(member).available == 30
