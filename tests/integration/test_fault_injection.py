"""Injected DynamoDB faults: no lost or doubled points, bounded retries, 503 when they run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.ledger import RetryPolicy
from tests.support.checks import all_pages, assert_error
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


ENROLMENT = {"external_id": "cust-42", "name": "Ada", "email": "ada@example.com"}


@pytest.mark.parametrize(("fault", "status"), [(read_timeout, 503), (crash, 500)], ids=["timeout", "crash"])
def test_an_enrolment_whose_answer_was_lost_is_replayed_to_the_client_retry(
    api: Api, admin_key: str, faults: FaultPlan, fault: Any, status: int
) -> None:
    # Given the enrolment's transaction commits, but its answer is lost on the way back
    faults.fail("TransactWriteItems", fault, times=1, after=True)
    lost = api.call("POST", "/v1/members", key=admin_key, body=ENROLMENT, idempotency_key="enrol-42")
    assert lost.status == status, lost
    assert faults.injected["TransactWriteItems"] == 1

    # When the client retries with the same Idempotency-Key
    retry = api.call("POST", "/v1/members", key=admin_key, body=ENROLMENT, idempotency_key="enrol-42")

    # Then it gets 201 with the member the lost request created, and there is exactly that one
    assert retry.status == 201, retry
    assert retry.headers.get("idempotent-replayed") == "true"
    members = all_pages(api, admin_key, "/v1/members")
    assert members == [retry.body]
    assert {k: retry.body[k] for k in ENROLMENT} == ENROLMENT
    found = api.call("GET", "/v1/members?external_id=cust-42", key=admin_key).body["data"]
    assert [m["id"] for m in found] == [retry.body["id"]]
    assert api.balance(admin_key, retry.body["id"])["available"] == 0
    # And a further retry answers the same again, still without writing
    writes = faults.calls["TransactWriteItems"]
    again = api.call("POST", "/v1/members", key=admin_key, body=ENROLMENT, idempotency_key="enrol-42")
    assert again.status == 201 and again.body == retry.body
    assert all_pages(api, admin_key, "/v1/members") == members
    assert faults.calls["TransactWriteItems"] == writes + 1  # refused by the key's condition: nothing written


def test_an_enrolment_that_never_reached_the_table_is_written_by_the_retry(
    api: Api, admin_key: str, faults: FaultPlan
) -> None:
    faults.fail("TransactWriteItems", read_timeout, times=1, after=False)
    lost = api.call("POST", "/v1/members", key=admin_key, body=ENROLMENT, idempotency_key="enrol-42")
    assert_error(lost, 503, "retry_later")
    assert all_pages(api, admin_key, "/v1/members") == []

    retry = api.call("POST", "/v1/members", key=admin_key, body=ENROLMENT, idempotency_key="enrol-42")

    assert retry.status == 201, retry
    assert "idempotent-replayed" not in retry.headers
    assert all_pages(api, admin_key, "/v1/members") == [retry.body]


def test_refusals_are_never_retried(api: Api, admin_key: str, member: str, faults: FaultPlan) -> None:
    api.earn(admin_key, member, "e", points=5)
    writes_before = faults.calls["TransactWriteItems"]

    reply = api.redeem(admin_key, member, "r", points=6)

    assert reply.status == 422
    assert faults.calls["TransactWriteItems"] == writes_before  # refused before any write
    assert api.balance(admin_key, member)["available"] == 5


def test_a_busy_store_asks_for_the_idempotency_key_only_where_the_route_takes_one(
    api: Api, admin_key: str, member: str, faults: FaultPlan
) -> None:
    members_before = all_pages(api, admin_key, "/v1/members")

    # When reads and writes of routes without an Idempotency-Key outlast the retries
    faults.fail("GetItem", throttled, times=1)  # the API key's read
    balance = api.call("GET", f"/v1/members/{member}/balance", key=admin_key)
    faults.fail("Query", throttled, times=1)
    exported = api.call("GET", "/v1/exports/members.csv", key=admin_key)
    faults.fail("GetItem", throttled, times=1)
    enrolled = api.call("POST", "/v1/members", key=admin_key, body={"external_id": "busy-1"})

    # Then each is asked to retry, and not for a key it never takes
    for label, reply in {"GET balance": balance, "GET export": exported, "POST member": enrolled}.items():
        assert_error(reply, 503, "retry_later", label)
        assert reply.headers.get("retry-after") == "1", label
        message = reply.body["error"]["message"]
        assert message.endswith("; retry shortly") and "Idempotency-Key" not in message, f"{label}: {message}"

    # When a movement's read, or its commit, outlasts them
    faults.fail("GetItem", throttled, times=1)
    unread = api.earn(admin_key, member, "busy-earn", points=3)
    faults.fail("TransactWriteItems", transaction_conflict, times=None)
    uncommitted = api.earn(admin_key, member, "busy-earn", points=3)

    # Then it is asked to retry with the same Idempotency-Key
    assert_error(unread, 503, "retry_later")
    assert_error(uncommitted, 503, "retry_later")
    assert unread.body["error"]["message"] == "the service is busy; retry shortly with the same Idempotency-Key"
    assert uncommitted.body["error"]["message"] == "the ledger is busy; retry shortly with the same Idempotency-Key"

    # And nothing was written
    faults.rules.clear()
    assert all_pages(api, admin_key, "/v1/members") == members_before
    assert api.ledger(admin_key, member) == []

    # And the document says the same of each route
    paths = api.call("GET", "/v1/openapi.json").body["paths"]
    for path, method in (("/v1/members/{member_id}/balance", "get"), ("/v1/members", "post")):
        text = paths[path][method]["responses"]["503"]["description"]
        assert "retry shortly" in text and "Idempotency-Key" not in text, (path, text)
    assert "same Idempotency-Key" in paths["/v1/members/{member_id}/earn"]["post"]["responses"]["503"]["description"]


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
