"""Injected DynamoDB faults: no lost or doubled points, bounded retries, 503 when they run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.ledger import RetryPolicy
from tests.support.faults import FaultPlan, crash, read_timeout, throttled, transaction_conflict
from tests.support.http import Api


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    plan = FaultPlan()
    plan.install(monkeypatch)
    return plan


@pytest.fixture
def member(api: Api, admin_key: str) -> str:
    return api.enrol(admin_key)


def _assert_applied_once(api: Api, key: str, member: str, points: int) -> None:
    ledger = api.ledger(key, member)
    assert len(ledger) == 1
    assert ledger[0]["points"] == points
    assert api.balance(key, member)["available"] == points


def test_transaction_conflicts_are_retried_then_succeed(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    faults.fail("TransactWriteItems", transaction_conflict, times=2)

    reply = api.earn(admin_key, member, "k", points=40)

    assert reply.status == 201
    assert faults.injected["TransactWriteItems"] == 2
    assert faults.calls["TransactWriteItems"] == 3
    _assert_applied_once(api, admin_key, member, 40)


def test_conflicts_that_outlast_the_retries_answer_503_and_change_nothing(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    faults.fail("TransactWriteItems", transaction_conflict, times=None)

    reply = api.earn(admin_key, member, "k", points=40)

    assert reply.status == 503
    assert reply.error_code() == "retry_later"
    assert reply.headers.get("retry-after") == "1"
    assert faults.calls["TransactWriteItems"] == RetryPolicy().max_transient_failures
    assert api.ledger(admin_key, member) == []
    assert api.balance(admin_key, member)["available"] == 0


def test_throttling_that_outlasts_botocore_retries_answers_503_and_writes_nothing(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    # Given the API-key read is throttled beyond botocore's own retries
    faults.fail("GetItem", throttled, times=1)

    # When a movement comes in, then the caller is told to retry, and nothing was written
    refused = api.earn(admin_key, member, "k", points=7)
    assert refused.status == 503
    assert refused.error_code() == "retry_later"
    assert faults.calls["TransactWriteItems"] == 0

    # And the retry with the same key applies it once
    retried = api.earn(admin_key, member, "k", points=7)
    assert retried.status == 201
    assert "idempotent-replayed" not in retried.headers
    _assert_applied_once(api, admin_key, member, 7)


def test_a_throttled_balance_read_is_retried_by_the_ledger(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    # The third GetItem of an earn is the balance read (after the key and tenant reads).
    faults.fail("GetItem", throttled, times=1, skip=2)

    reply = api.earn(admin_key, member, "k", points=9)

    assert reply.status == 201
    assert faults.injected["GetItem"] == 1
    _assert_applied_once(api, admin_key, member, 9)


def test_a_timeout_before_the_write_reached_the_table_is_retried(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    faults.fail("TransactWriteItems", read_timeout, times=1, after=False)

    reply = api.earn(admin_key, member, "k", points=11)

    assert reply.status == 201
    assert "idempotent-replayed" not in reply.headers
    _assert_applied_once(api, admin_key, member, 11)


def test_a_timeout_after_the_write_committed_is_answered_from_the_ledger(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    # The transaction commits, but the answer is lost on the way back.
    faults.fail("TransactWriteItems", read_timeout, times=1, after=True)

    reply = api.earn(admin_key, member, "k", points=12)
    client_retry = api.earn(admin_key, member, "k", points=12)

    assert reply.status == client_retry.status == 201
    assert reply.body == client_retry.body
    assert reply.body["balance"]["available"] == 12
    _assert_applied_once(api, admin_key, member, 12)


def test_a_crash_after_commit_then_a_client_retry_returns_the_committed_result(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    # Given the function dies right after DynamoDB committed the earn
    faults.fail("TransactWriteItems", crash, times=1, after=True)
    crashed = api.earn(admin_key, member, "order-9", points=30)
    assert crashed.status == 500
    assert crashed.error_code() == "internal_error"

    # When the client retries with the same Idempotency-Key
    retry = api.earn(admin_key, member, "order-9", points=30)

    # Then it gets the committed transaction, and the points moved once
    assert retry.status == 201
    assert retry.headers.get("idempotent-replayed") == "true"
    ledger = api.ledger(admin_key, member)
    assert retry.body["transaction"]["id"] == ledger[0]["id"]
    _assert_applied_once(api, admin_key, member, 30)


def test_refusals_are_never_retried(api: Api, admin_key: str, member: str, faults: FaultPlan) -> None:
    api.earn(admin_key, member, "e", points=5)
    writes_before = faults.calls["TransactWriteItems"]

    reply = api.redeem(admin_key, member, "r", points=6)

    assert reply.status == 422
    assert faults.calls["TransactWriteItems"] == writes_before  # refused before any write
    assert api.balance(admin_key, member)["available"] == 5


def test_a_job_run_counts_the_settlements_whose_commit_answer_was_lost(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    # Given 45 lots of one member due to expire: two transactions' worth (32, then 13)
    program = {"points_per_currency_unit": "1", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 1}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    for n in range(45):
        assert api.earn(admin_key, member, f"e-{n}", points=1 + n % 3).status == 201
    earned = sum(1 + n % 3 for n in range(45))
    # And the first settlement transaction commits, but its answer is lost on the way back
    faults.fail("TransactWriteItems", read_timeout, times=1, after=True)
    as_of = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    run = api.call("POST", "/v1/jobs/expire-points/run", key=admin_key, body={"as_of": as_of})

    # Then the run counts what was committed: every lot, once
    assert run.status == 201, run.body
    assert faults.injected["TransactWriteItems"] == 1
    expired = [entry for entry in api.ledger(admin_key, member) if entry["type"] == "expire"]
    assert len(expired) == 45
    assert len({entry["metadata"]["lot_id"] for entry in expired}) == 45
    expected = {
        "members": 1,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": len(expired),
        "lapses": 0,
        "points_expired": -sum(entry["points"] for entry in expired),
    }
    assert expected["points_expired"] == earned
    assert run.body["counts"] == expected
    (recorded,) = api.call("GET", "/v1/jobs/runs", key=admin_key).body["data"]
    assert (recorded["id"], recorded["status"], recorded["counts"]) == (run.body["id"], "succeeded", expected)
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_earned"], balance["lifetime_expired"]) == (0, earned, earned)
    # And a rerun finds nothing left
    rerun = api.call("POST", "/v1/jobs/expire-points/run", key=admin_key, body={"as_of": as_of})
    assert rerun.body["counts"] == {**expected, "members": 0, "lots_expired": 0, "points_expired": 0}
