"""A sandbox brand's test clock, over HTTP on both emulators: it moves only forward, every
operation of the brand runs at its time (expired points unspendable before the job, the jobs as
of the brand's time), and a live brand has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.http import OPERATOR_KEY, Api

PROGRAM = {"points_per_currency_unit": "1", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 30}}


def sandbox(api: Api, tenant_id: str = "playground") -> str:
    reply = api.call(
        "POST",
        "/v1/tenants",
        key=OPERATOR_KEY,
        body={"tenant_id": tenant_id, "name": "Playground", "currency": "EUR", "timezone": "UTC", "sandbox": True},
    )
    assert reply.status == 201, reply
    assert reply.body["tenant"]["sandbox"] is True
    return str(reply.body["api_key"]["secret"])


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def advance(api: Api, key: str, to: datetime) -> dict:
    reply = api.call("POST", "/v1/test-clock/advance", key=key, body={"to": to.isoformat()})
    assert reply.status == 200, reply
    return dict(reply.body)


def test_points_past_expiry_on_the_test_clock_are_unspendable_before_the_job_and_expire_with_it(api: Api) -> None:
    key = sandbox(api)
    assert api.call("PUT", "/v1/program", key=key, body=PROGRAM).status == 200
    member = api.enrol(key)
    earned = api.earn(key, member, "e-1", points=100)
    assert earned.status == 201, earned
    expires_at = moment(earned.body["transaction"]["expires_at"])

    clock = advance(api, key, expires_at + timedelta(hours=1))

    # The brand's time is past the lot's expiry: nothing is spendable, though no job has run yet.
    assert clock["sandbox"] is True and clock["offset_seconds"] > 29 * 86400
    assert moment(clock["now"]) >= expires_at + timedelta(hours=1)
    assert api.balance(key, member)["available"] == 0
    refused = api.redeem(key, member, "r-1", points=1)
    assert (refused.status, refused.error_code()) == (422, "insufficient_points")
    # The job, run now, runs as of the brand's time and records the expiry once.
    run = api.call("POST", "/v1/jobs/expire-points/run", key=key, body={})
    assert run.status == 201, run
    assert moment(run.body["as_of"]) >= expires_at
    entries = api.ledger(key, member)
    assert [entry["type"] for entry in entries] == ["expire", "earn"]
    assert entries[0]["points"] == -100
    balance = api.balance(key, member)
    assert (balance["available"], balance["lifetime_expired"]) == (0, 100)


def test_a_movement_is_stamped_with_the_brand_time_and_may_be_dated_in_it(api: Api) -> None:
    key = sandbox(api)
    member = api.enrol(key)
    target = datetime.now(UTC) + timedelta(days=200)
    advance(api, key, target)

    # occurred_at may be "now" on the brand's clock, though that is 200 days ahead of real time.
    earned = api.earn(key, member, "e-1", points=5, occurred_at=(target + timedelta(minutes=1)).isoformat())

    assert earned.status == 201, earned
    created = moment(earned.body["transaction"]["created_at"])
    assert target <= created <= target + timedelta(minutes=10)


def test_the_test_clock_never_moves_back_and_a_retry_changes_nothing(api: Api) -> None:
    key = sandbox(api)
    ahead = datetime.now(UTC) + timedelta(days=40)
    first = advance(api, key, ahead)

    retried = advance(api, key, ahead)
    back = advance(api, key, ahead - timedelta(days=20))

    assert abs(retried["offset_seconds"] - first["offset_seconds"]) <= 1
    assert abs(back["offset_seconds"] - first["offset_seconds"]) <= 1
    read = api.call("GET", "/v1/test-clock", key=key)
    assert read.status == 200 and moment(read.body["now"]) >= ahead
    too_far = api.call(
        "POST", "/v1/test-clock/advance", key=key, body={"to": (datetime.now(UTC) + timedelta(days=4000)).isoformat()}
    )
    assert (too_far.status, too_far.error_code()) == (400, "invalid_request")
    naive = api.call("POST", "/v1/test-clock/advance", key=key, body={"to": "2030-01-01T00:00:00"})
    assert (naive.status, naive.error_code()) == (400, "invalid_request")
    assert abs(api.call("GET", "/v1/test-clock", key=key).body["offset_seconds"] - first["offset_seconds"]) <= 1


def test_a_live_brand_has_no_test_clock(api: Api, admin_key: str) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    refused = api.call("POST", "/v1/test-clock/advance", key=admin_key, body={"to": tomorrow})
    read = api.call("GET", "/v1/test-clock", key=admin_key)

    assert (refused.status, refused.error_code()) == (409, "sandbox_only")
    assert read.status == 200 and (read.body["sandbox"], read.body["offset_seconds"]) == (False, 0)
    assert abs(moment(read.body["now"]) - datetime.now(UTC)) < timedelta(minutes=1)
    tenant = api.call("GET", "/v1/tenants/acme", key=OPERATOR_KEY)
    assert tenant.body["sandbox"] is False


def test_the_scheduled_job_runs_a_sandbox_brand_as_of_its_clock(api: Api) -> None:
    from chalicelib.domain.jobs import JobName
    from chalicelib.jobs.lifecycle import run_unit

    key = sandbox(api)
    assert api.call("PUT", "/v1/program", key=key, body=PROGRAM).status == 200
    member = api.enrol(key)
    expires_at = moment(api.earn(key, member, "e-1", points=30).body["transaction"]["expires_at"])
    advance(api, key, expires_at + timedelta(days=1))

    run_unit(JobName.EXPIRE_POINTS, "playground", datetime.now(UTC))  # what the schedule calls

    balance = api.balance(key, member)
    assert (balance["available"], balance["lifetime_expired"]) == (0, 30)
