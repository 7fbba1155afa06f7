"""Points expiry through the real services and repositories, on both emulators, with a clock
the tests move: what may be spent when, FIFO by expiry, the job, reruns and crashes."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.errors import InsufficientPoints, ReversalExceedsEarned
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName, RunStatus
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import Rounding
from chalicelib.services import TenantServices, platform
from tests.support.clocks import MovableClock
from tests.support.faults import FaultPlan, crash
from tests.support.http import Api

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TZ = "Europe/Helsinki"
POLICY = ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30)


def expiry_of(earned_at: datetime) -> datetime:
    """30 days later in Helsinki wall-clock time (across a DST change this is not 30 x 24 h)."""
    expires_at = POLICY.expires_at(earned_at, TZ)
    assert expires_at is not None
    return expires_at


@dataclass
class Brand:
    services: TenantServices
    clock: MovableClock
    keys: Counter[str]

    def enrol(self) -> str:
        return self.services.members.enrol(NewMember()).member_id

    def move(self, member: str, movement: MovementType, points: int, **extra: object) -> int:
        self.keys[movement] += 1
        result = self.services.points.move(
            MovementRequest(
                member_id=member,
                movement=movement,
                points=points,
                idempotency_key=f"{movement}-{self.keys[movement]}-{member}",
                timezone=TZ,
                **extra,  # type: ignore[arg-type]
            )
        )
        return result.entry.view_after.available

    def earn(self, member: str, points: int, **extra: object) -> int:
        return self.move(member, MovementType.EARN, points, **extra)

    def redeem(self, member: str, points: int) -> int:
        return self.move(member, MovementType.REDEEM, points)

    def available(self, member: str) -> int:
        return self.services.points.view(member).available

    def ledger(self, member: str) -> list:
        page = self.services.points.transactions(member, limit=100, cursor=None)
        assert page.next_cursor is None
        return page.items

    def check_invariants(self, member: str) -> None:
        """available + pending = Σ ledger; lifetime identity; lots match the balance; nothing twice."""
        stored = self.services.points.balance(member)
        ledger = self.ledger(member)
        assert stored.available + stored.pending == sum(entry.points for entry in ledger)
        assert stored.pending == sum(entry.pending_change for entry in ledger)
        assert stored.pending >= 0
        assert stored.available >= 0 or stored.lifetime_reversed > 0  # below zero only by a claw-back
        assert stored.available + stored.pending == (
            stored.lifetime_earned
            - stored.lifetime_redeemed
            + stored.lifetime_adjusted
            - stored.lifetime_expired
            - stored.lifetime_reversed
        )
        matured = [entry.metadata["lot_id"] for entry in ledger if entry.movement is MovementType.MATURE]
        assert len(matured) == len(set(matured))
        assert sorted(entry.sequence for entry in ledger) == list(range(1, len(ledger) + 1))
        expiries = [entry for entry in ledger if entry.movement is MovementType.EXPIRE]
        expired_lots = [entry.metadata["lot_id"] for entry in expiries if "lot_id" in entry.metadata]
        # An inactivity lapse of never-expiring points carries no lot: each may never have another after it.
        assert len(expired_lots) == len(set(expired_lots))
        lapses = [entry for entry in expiries if "lot_id" not in entry.metadata]
        assert all(entry.balance_after.available == 0 for entry in lapses)  # a lapse takes everything
        lots = self.services.points._ledger.get_lots(member, consistent=True)
        assert sum(lot.remaining for lot in lots if not lot.pending) <= max(stored.available, 0)
        assert sum(lot.remaining for lot in lots if lot.pending) == stored.pending
        assert stored.lot_count == len(lots)


@pytest.fixture
def brand(api: Api) -> Brand:
    api.create_tenant("acme")  # provisions the tables
    clock = MovableClock(T0)
    services = platform().for_tenant_id("acme", clock=clock)
    services.program.replace(Decimal(1), Rounding.FLOOR, POLICY)
    return Brand(services, clock, Counter())


def run_job(brand: Brand, as_of: datetime) -> dict[str, int]:
    run = brand.services.jobs.run(JobName.EXPIRE_POINTS, as_of)
    assert run.status is RunStatus.SUCCEEDED
    return run.counts


def test_a_point_past_its_expiry_cannot_be_spent_even_before_the_job(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 100)

    expires = expiry_of(T0)
    assert expires == datetime(2027, 3, 31, 11, 0, tzinfo=UTC)  # 14:00 in Helsinki, now on summer time
    brand.clock.now = expires - timedelta(seconds=1)
    view = brand.services.points.view(member)
    assert (view.available, view.expiring_points, view.expiring_at) == (100, 100, expires)

    brand.clock.now = expires  # expired, and no job has run
    assert brand.available(member) == 0
    with pytest.raises(InsufficientPoints) as refusal:
        brand.redeem(member, 1)
    assert refusal.value.details == {"available": 0, "requested": 1}

    # The job records exactly the unspent remainder, once.
    assert run_job(brand, expires) == {
        "members": 1,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 1,
        "lapses": 0,
        "points_expired": 100,
    }
    assert run_job(brand, expires) == {
        "members": 0,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 0,
        "lapses": 0,
        "points_expired": 0,
    }
    ledger = brand.ledger(member)
    assert [(e.movement, e.points) for e in ledger] == [(MovementType.EXPIRE, -100), (MovementType.EARN, 100)]
    assert brand.services.points.balance(member).lifetime_expired == 100
    brand.check_invariants(member)


def test_redemptions_consume_the_lots_that_expire_first(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 50)  # expires T0+30
    brand.clock.now = T0 + 10 * DAY
    brand.earn(member, 70)  # expires T0+40
    brand.clock.now = T0 + 20 * DAY

    assert brand.redeem(member, 60) == 60  # 50 from the first lot, 10 from the second

    assert run_job(brand, T0 + 35 * DAY)["lots_expired"] == 0  # the first lot was spent
    brand.clock.now = T0 + 35 * DAY
    assert brand.available(member) == 60
    assert run_job(brand, T0 + 40 * DAY) == {
        "members": 1,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 1,
        "lapses": 0,
        "points_expired": 60,
    }
    brand.check_invariants(member)


def test_points_credited_without_a_policy_never_expire_and_are_spent_last(brand: Brand) -> None:
    brand.services.program.replace(Decimal(1), Rounding.FLOOR)  # no expiry
    member = brand.enrol()
    brand.earn(member, 100)
    brand.services.program.replace(Decimal(1), Rounding.FLOOR, POLICY)
    brand.earn(member, 50)

    brand.redeem(member, 60)  # 50 from the expiring lot first, then 10 that never expire

    brand.clock.now = T0 + 365 * DAY
    assert run_job(brand, brand.clock.now)["points_expired"] == 0
    assert brand.available(member) == 90
    brand.check_invariants(member)


def test_a_movement_records_the_expiry_that_is_due_before_it_applies(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 100)
    brand.clock.now = T0 + 31 * DAY

    assert brand.earn(member, 5) == 5

    ledger = brand.ledger(member)
    assert [(e.movement, e.points) for e in ledger] == [
        (MovementType.EARN, 5),
        (MovementType.EXPIRE, -100),
        (MovementType.EARN, 100),
    ]
    assert ledger[1].occurred_at == expiry_of(T0)
    assert run_job(brand, brand.clock.now)["lots_expired"] == 0
    brand.check_invariants(member)


def test_a_job_that_crashes_midway_is_finished_by_the_next_run(brand: Brand, monkeypatch: pytest.MonkeyPatch) -> None:
    members = [brand.enrol() for _ in range(3)]
    for member in members:
        brand.earn(member, 10)
    as_of = T0 + 30 * DAY

    # Given the function dies right after the first member's expiry committed
    faults = FaultPlan()
    faults.install(monkeypatch)
    faults.fail("TransactWriteItems", crash, times=1, after=True)
    with pytest.raises(Exception, match="process died"):
        brand.services.jobs.run(JobName.EXPIRE_POINTS, as_of)

    # When the job runs again, then it expires the rest, and nothing twice
    assert run_job(brand, as_of) == {
        "members": 2,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 2,
        "lapses": 0,
        "points_expired": 20,
    }
    for member in members:
        assert brand.services.points.balance(member).lifetime_expired == 10
        brand.check_invariants(member)
    runs = brand.services.jobs.list(limit=10, cursor=None).items
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED, RunStatus.FAILED]


def test_overlapping_job_runs_expire_nothing_twice(brand: Brand, backend: str) -> None:
    if backend == "moto":
        pytest.skip("moto's in-process mock is not thread-safe (see README); runs on DynamoDB Local")
    members = [brand.enrol() for _ in range(6)]
    for member in members:
        brand.earn(member, 7)
        brand.earn(member, 3)
    as_of = T0 + 31 * DAY
    results: list[dict[str, int]] = []

    def run() -> None:
        results.append(brand.services.jobs.run(JobName.EXPIRE_POINTS, as_of).counts)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r["points_expired"] for r in results) == 60
    assert sum(r["lots_expired"] for r in results) == 12
    for member in members:
        assert brand.services.points.balance(member).lifetime_expired == 10
        brand.check_invariants(member)


def test_expiry_over_http(api: Api, admin_key: str) -> None:
    policy = {"kind": "end_of_period", "period": "year", "periods_after": 1}
    put = api.call(
        "PUT",
        "/v1/program",
        key=admin_key,
        body={"points_per_currency_unit": "1", "rounding": "floor", "expiry": policy},
    )
    member = api.enrol(admin_key)

    earned = api.earn(admin_key, member, "o-1", points=40)

    assert put.status == 200 and put.body["expiry"] == {**policy, "days": None, "months": None}
    # Earned now in Europe/Helsinki: expires at the start of the year after next, local time.
    expires_at = datetime.fromisoformat(earned.body["transaction"]["expires_at"])
    now = datetime.now(UTC)
    assert expires_at.year == now.year + 2 - (1 if expires_at.month == 12 else 0)
    assert earned.body["balance"]["expiring_soon"] == {"points": 40, "at": earned.body["transaction"]["expires_at"]}
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_expired"]) == (40, 0)

    run = api.call(
        "POST",
        "/v1/jobs/expire-points/run",
        key=admin_key,
        body={"as_of": (expires_at + timedelta(seconds=1)).isoformat()},
    )
    assert run.status == 201
    assert run.body["counts"] == {
        "members": 1,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 1,
        "lapses": 0,
        "points_expired": 40,
    }
    assert run.body["status"] == "succeeded"
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_expired"], balance["expiring_soon"]) == (0, 40, None)
    runs = api.call("GET", "/v1/jobs/runs", key=admin_key)
    assert [r["id"] for r in runs.body["data"]] == [run.body["id"]]
    unknown = api.call("POST", "/v1/jobs/make-coffee/run", key=admin_key, body={})
    assert unknown.status == 404 and unknown.error_code() == "not_found"


# --- pending points ---------------------------------------------------------------------------------


def run_job_named(brand: Brand, job: JobName, as_of: datetime) -> dict[str, int]:
    run = brand.services.jobs.run(job, as_of)
    assert run.status is RunStatus.SUCCEEDED
    return run.counts


def test_pending_points_cannot_be_spent_until_they_mature_even_before_the_job(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 100, pending_days=14)
    view = brand.services.points.view(member)
    assert (view.available, view.pending) == (0, 100)
    with pytest.raises(InsufficientPoints):
        brand.redeem(member, 1)

    matures = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)  # 14 days later, 14:00 Helsinki (still winter time)
    brand.clock.now = matures - timedelta(seconds=1)
    assert brand.services.points.view(member).pending == 100
    brand.clock.now = matures  # no job has run: the balance already counts them
    view = brand.services.points.view(member)
    assert (view.available, view.pending) == (100, 0)

    assert brand.redeem(member, 30) == 70  # the maturity is recorded first, in the same transaction
    ledger = brand.ledger(member)
    assert [(e.movement, e.points, e.pending_change) for e in ledger] == [
        (MovementType.REDEEM, -30, 0),
        (MovementType.MATURE, 0, -100),
        (MovementType.EARN, 100, 100),
    ]
    assert run_job_named(brand, JobName.MATURE_PENDING, matures)["lots_matured"] == 0
    brand.check_invariants(member)


def test_the_maturity_job_makes_pending_points_available_once(brand: Brand) -> None:
    brand.services.program.replace(Decimal(1), Rounding.FLOOR, POLICY, pending_days=7)  # the program's default
    members = [brand.enrol() for _ in range(3)]
    for member in members:
        brand.earn(member, 20)
    as_of = T0 + 8 * DAY

    first = run_job_named(brand, JobName.MATURE_PENDING, as_of)
    again = run_job_named(brand, JobName.MATURE_PENDING, as_of)

    assert (first["lots_matured"], first["points_matured"], first["members"]) == (3, 60, 3)
    assert again["lots_matured"] == 0
    for member in members:
        stored = brand.services.points.balance(member)
        assert (stored.available, stored.pending) == (20, 0)
        brand.check_invariants(member)
    # Matured points expire 30 days after maturing (not after earning): the lot moved index.
    expires = POLICY.expires_at(T0 + 7 * DAY, TZ)
    assert expires is not None
    assert run_job(brand, expires - timedelta(seconds=1))["lots_expired"] == 0
    assert run_job(brand, expires) == {
        "members": 3,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 3,
        "lapses": 0,
        "points_expired": 60,
    }


def test_pending_points_over_http(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)

    earned = api.earn(admin_key, member, "o-1", points=40, pending_days=30)

    assert earned.status == 201
    transaction = earned.body["transaction"]
    assert (transaction["points"], transaction["pending_change"]) == (40, 40)
    assert transaction["matures_at"] is not None
    assert earned.body["balance"]["pending"] == 40 and earned.body["balance"]["available"] == 0
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["pending"]) == (0, 40)
    refused = api.redeem(admin_key, member, "r-1", points=1)
    assert refused.status == 422 and refused.body["error"]["details"]["available"] == 0


def _run_over_http(api: Api, key: str, job: str, as_of: datetime) -> dict[str, Any]:
    reply = api.call("POST", f"/v1/jobs/{job}/run", key=key, body={"as_of": as_of.isoformat()})
    assert reply.status == 201, reply.body
    assert reply.body["status"] == "succeeded"
    return reply.body


NOTHING = {"members": 0, "lots_matured": 0, "points_matured": 0, "lots_expired": 0, "lapses": 0, "points_expired": 0}


@pytest.mark.parametrize(
    "jobs",
    [("expire-points", "mature-pending"), ("mature-pending", "expire-points")],
    ids=["expire-first", "mature-first"],
)
def test_a_pending_lot_past_its_maturity_and_expiry_is_settled_by_whichever_job_runs(
    api: Api, admin_key: str, jobs: tuple[str, str]
) -> None:
    # Given pending points (a 5-day return window) under a 10-day expiry policy
    program = {"points_per_currency_unit": "1", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 10}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    member = api.enrol(admin_key)
    earned = api.earn(admin_key, member, "o-1", points=40, pending_days=5).body["transaction"]
    matures_at = datetime.fromisoformat(earned["matures_at"])
    expires_at = datetime.fromisoformat(earned["expires_at"])
    assert matures_at < expires_at
    as_of = expires_at + timedelta(seconds=1)

    # When one job runs as of a moment past both, then the other
    first, second = (_run_over_http(api, admin_key, job, as_of) for job in jobs)

    # Then the first records the maturity, then the expiry; the second finds nothing left
    assert first["counts"] == {
        "members": 1,
        "lots_matured": 1,
        "points_matured": 40,
        "lots_expired": 1,
        "lapses": 0,
        "points_expired": 40,
    }
    assert second["counts"] == NOTHING
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["pending"], balance["lifetime_earned"], balance["lifetime_expired"]) == (
        0,
        0,
        40,
        40,
    )
    assert balance["expiring_soon"] is None
    ledger = api.ledger(admin_key, member)
    assert [
        (e["type"], e["points"], e["pending_change"], datetime.fromisoformat(e["occurred_at"]), e["sequence"])
        for e in ledger
    ] == [("expire", -40, 0, expires_at, 3), ("mature", 0, -40, matures_at, 2), ("earn", 40, 40, earned_at(earned), 1)]
    runs = api.call("GET", "/v1/jobs/runs", key=admin_key).body["data"]
    assert [(run["job"], run["counts"]) for run in runs] == [(jobs[1], NOTHING), (jobs[0], first["counts"])]


def earned_at(transaction: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(transaction["occurred_at"])


def test_the_expiry_job_records_a_maturity_that_is_due_before_any_expiry(api: Api, admin_key: str) -> None:
    program = {"points_per_currency_unit": "1", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 10}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    member = api.enrol(admin_key)
    earned = api.earn(admin_key, member, "o-1", points=40, pending_days=5).body["transaction"]
    matures_at = datetime.fromisoformat(earned["matures_at"])

    run = _run_over_http(api, admin_key, "expire-points", matures_at)

    assert run["counts"] == {**NOTHING, "members": 1, "lots_matured": 1, "points_matured": 40}
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["pending"], balance["lifetime_expired"]) == (40, 0, 0)
    assert balance["expiring_soon"] == {"points": 40, "at": earned["expires_at"]}
    assert [e["type"] for e in api.ledger(admin_key, member)] == ["mature", "earn"]
    assert _run_over_http(api, admin_key, "mature-pending", matures_at)["counts"] == NOTHING


# --- reversals --------------------------------------------------------------------------------------


def reverse(brand: Brand, member: str, reference: str, points: int):
    brand.keys["reverse"] += 1
    return brand.services.points.move(
        MovementRequest(
            member_id=member,
            movement=MovementType.REVERSE,
            points=points,
            reference=reference,
            idempotency_key=f"reverse-{brand.keys['reverse']}",
            timezone=TZ,
        )
    ).entry


def test_a_reversal_takes_back_the_orders_pending_points_first(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 100, reference="order-1", pending_days=14)
    brand.earn(member, 50, reference="order-0")

    entry = reverse(brand, member, "order-1", 30)

    assert (entry.points, entry.pending_change, entry.requested) == (-30, -30, 30)
    view = brand.services.points.view(member)
    assert (view.available, view.pending) == (50, 70)
    brand.check_invariants(member)


def test_a_reversal_stops_at_zero_unless_the_program_claws_back(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 100, reference="order-2")
    brand.redeem(member, 80)

    stopped = reverse(brand, member, "order-2", 100)  # the member holds 20

    assert (stopped.points, stopped.requested, stopped.balance_after.available) == (-20, 100, 0)
    brand.services.program.replace(Decimal(1), Rounding.FLOOR, POLICY, reversal_clawback=True)
    clawed = reverse(brand, member, "order-2", 80)  # 20 were taken back already: 80 remain reversible
    assert (clawed.points, clawed.balance_after.available) == (-80, -80)
    with pytest.raises(ReversalExceedsEarned) as refusal:
        reverse(brand, member, "order-2", 1)
    assert refusal.value.details == {"reference": "order-2", "earned": 100, "reversed": 100, "requested": 1}
    brand.check_invariants(member)
    # A negative balance is paid back by later earns and spends nothing meanwhile.
    with pytest.raises(InsufficientPoints):
        brand.redeem(member, 1)
    assert brand.earn(member, 100) == 20
    assert [lot.remaining for lot in brand.services.points._ledger.get_lots(member, consistent=True)] == [20]
    brand.check_invariants(member)


def test_reversing_more_than_was_earned_for_the_reference_is_refused(brand: Brand) -> None:
    member = brand.enrol()
    brand.earn(member, 40, reference="order-3")

    with pytest.raises(ReversalExceedsEarned) as too_much:
        reverse(brand, member, "order-3", 41)
    with pytest.raises(ReversalExceedsEarned) as unknown:
        reverse(brand, member, "order-404", 1)

    assert too_much.value.details["earned"] == 40
    assert unknown.value.details["earned"] == 0
    assert brand.services.points.view(member).available == 40
    assert len(brand.ledger(member)) == 1


def test_reversal_over_http(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "e-1", amount="25.00", reference="order-9")

    partial = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="refund-1",
        body={"reference": "order-9", "amount": "10.00"},
    )
    replay = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="refund-1",
        body={"reference": "order-9", "amount": "10.00"},
    )
    too_much = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="refund-2",
        body={"reference": "order-9", "points": 16},
    )

    assert partial.status == 201
    assert partial.body["reversal"] == {
        "requested": 10,
        "reversed": 10,
        "from_pending": 0,
        "from_available": 10,
        "outcome": "full",
    }
    assert partial.body["transaction"]["type"] == "reverse"
    assert partial.body["balance"]["available"] == 15 and partial.body["balance"]["lifetime_reversed"] == 10
    assert replay.body == partial.body and replay.headers.get("idempotent-replayed") == "true"
    assert too_much.status == 422 and too_much.error_code() == "reversal_exceeds_earned"
    assert api.balance(admin_key, member)["available"] == 15
