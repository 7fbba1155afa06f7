"""Paid membership under parallel requests over real HTTP: recordings racing each other, the
same request sent at once, earns racing a recording, and lapse jobs overlapping. Every change
of a plan is one conditional transaction with the balance's grant, so a subscription starts
once, its join bonus is credited once, and a lapse happens once."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency

PLANS = {"plans": [{"plan_id": "plus", "name": "Plus", "multiplier": "2", "join_bonus": 50}]}
DAY = timedelta(days=30)


def tenant(live_server: LiveServer) -> str:
    key = live_server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    assert (
        live_server.call(
            "PUT", "/v1/program", key=key, body={"points_per_currency_unit": "10", "rounding": "floor"}
        ).status_code
        == 200
    )
    assert live_server.call("PUT", "/v1/program/plans", key=key, body=PLANS).status_code == 200
    return key


def events(live_server: LiveServer, key: str, kind: str) -> list[dict]:
    return live_server.call("GET", f"/v1/events?type={kind}", key=key).json()["data"]


def test_parallel_recordings_and_earns_start_one_subscription_with_one_bonus(live_server: LiveServer) -> None:
    key = tenant(live_server)
    member = live_server.enrol(key)
    now = datetime.now(UTC)

    # When 6 periods (all overlapping, different references and keys) and 6 order earns arrive at once
    def record(i: int):
        body = {
            "plan_id": "plus",
            "period_start": (now - timedelta(minutes=1)).isoformat(),
            "period_end": (now + (i + 1) * DAY).isoformat(),
            "reference": f"inv-{i}",
        }
        path = f"/v1/members/{member}/subscriptions"
        return live_server.call("POST", path, key=key, body=body, idempotency_key=f"rec-{i}")

    def earn(i: int):
        body = {"order": {"id": f"o-{i}", "total": "1.00", "currency": "EUR"}}
        return live_server.call("POST", f"/v1/members/{member}/earn", key=key, body=body, idempotency_key=f"o-{i}")

    with ThreadPoolExecutor(max_workers=12) as pool:
        recordings = [pool.submit(record, i) for i in range(6)]
        earns = [pool.submit(earn, i) for i in range(6)]
        recorded = [f.result() for f in recordings]
        earned = [f.result() for f in earns]

    # Then every request succeeded; one started the subscription, the others extended or recorded into it
    assert [r.status_code for r in recorded + earned] == [201] * 12, [r.text for r in recorded + earned]
    outcomes = sorted(r.json()["outcome"] for r in recorded)
    assert outcomes.count("started") == 1 and set(outcomes) <= {"started", "renewed", "recorded"}, outcomes
    assert len({r.json()["subscription"]["id"] for r in recorded}) == 1
    (subscription,) = live_server.call("GET", f"/v1/members/{member}/subscriptions", key=key).json()["data"]
    assert subscription["period_count"] == 6
    assert datetime.fromisoformat(subscription["ends_at"]) == now + 6 * DAY
    # And each earn got the plan's share exactly when its own commit saw the plan
    points = [r.json()["transaction"]["points"] for r in earned]
    assert set(points) <= {10, 20}, points
    # And the balance is every earn plus one join bonus
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert balance["available"] == sum(points) + 50
    ledger = live_server.call("GET", f"/v1/members/{member}/transactions?limit=100", key=key).json()["data"]
    assert [e["points"] for e in ledger if e["idempotency_key"].startswith("plan-bonus:")] == [50]
    time.sleep(6)  # past the feed's settle window
    assert len(events(live_server, key, "subscription.started")) == 1


def test_the_same_recording_sent_at_once_applies_once(live_server: LiveServer) -> None:
    key = tenant(live_server)
    member = live_server.enrol(key)
    now = datetime.now(UTC)
    body = {
        "plan_id": "plus",
        "period_start": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + DAY).isoformat(),
        "reference": "inv-1",
    }

    def send(_: int):
        path = f"/v1/members/{member}/subscriptions"
        return live_server.call("POST", path, key=key, body=body, idempotency_key="same-key")

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(send, range(6)))

    assert [r.status_code for r in replies] == [201] * 6, [r.text for r in replies]
    assert len({r.text for r in replies}) == 1  # the first result, every time
    assert sum(1 for r in replies if r.headers.get("Idempotent-Replayed") == "true") == 5
    assert live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()["available"] == 50


def test_overlapping_lapse_jobs_lapse_each_subscription_once(live_server: LiveServer) -> None:
    key = tenant(live_server)
    now = datetime.now(UTC)
    members = [live_server.enrol(key) for _ in range(3)]
    for i, member in enumerate(members):
        body = {
            "plan_id": "plus",
            "period_start": (now - timedelta(minutes=1)).isoformat(),
            "period_end": (now + DAY).isoformat(),
            "reference": f"inv-{i}",
        }
        path = f"/v1/members/{member}/subscriptions"
        assert live_server.call("POST", path, key=key, body=body, idempotency_key=f"k-{i}").status_code == 201
    as_of = (now + DAY + timedelta(hours=1)).isoformat()

    def run(_: int):
        return live_server.call("POST", "/v1/jobs/lapse-subscriptions/run", key=key, body={"as_of": as_of})

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(run, range(4)))

    assert [r.status_code for r in runs] == [201] * 4, [r.text for r in runs]
    assert sum(r.json()["counts"]["lapsed"] for r in runs) == 3, [r.json()["counts"] for r in runs]
    for member in members:
        (listed,) = live_server.call("GET", f"/v1/members/{member}/subscriptions", key=key).json()["data"]
        assert listed["status"] == "lapsed"
    time.sleep(6)
    assert len(events(live_server, key, "subscription.lapsed")) == 3
