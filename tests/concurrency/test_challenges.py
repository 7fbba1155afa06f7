"""Challenges under racing orders over real HTTP: each order moves the member's progress in its
own transaction, under the condition that the progress is still the one read, so parallel
orders crossing the goal complete the challenge exactly once (one reward share, one badge,
one ``challenge.completed``)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency


def test_racing_orders_complete_a_challenge_once(live_server: LiveServer) -> None:
    # Given "three orders" rewarded with 300 points and a badge, and a member
    key = live_server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    now = datetime.now(UTC)
    challenge = {
        "name": "Three orders",
        "kind": "orders",
        "goal": 3,
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "reward_points": 300,
        "badge": {"id": "regular", "name": "Regular"},
    }
    created = live_server.call("POST", "/v1/challenges", key=key, body=challenge)
    assert created.status_code == 201, created.text
    member = live_server.enrol(key)
    path = f"/v1/members/{member}/earn"

    # When 8 orders of 10.00 arrive at once (any of them may be the third)
    def earn(i: int):
        body = {"order": {"id": f"o-{i}", "total": "10.00", "currency": "EUR"}}
        return live_server.call("POST", path, key=key, body=body, idempotency_key=f"earn-{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(earn, range(8)))

    # Then all 8 count, and exactly one of them carries the challenge's 300 points
    assert [r.status_code for r in replies] == [201] * 8, [r.text for r in replies]
    shares = [
        share
        for reply in replies
        for share in reply.json()["transaction"]["breakdown"]
        if share["source"] == "challenge"
    ]
    assert [(s["points"], s["rule_id"]) for s in shares] == [(300, created.json()["id"])]
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert balance["available"] == 8 * 10 + 300
    # And the member's progress is complete, with the badge held once
    mine = live_server.call("GET", f"/v1/members/{member}/challenges", key=key).json()["data"]
    assert [(c["progress"]["value"], c["progress"]["completed"]) for c in mine] == [("3", True)]
    badges = live_server.call("GET", f"/v1/members/{member}/badges", key=key).json()["data"]
    assert [b["badge"]["id"] for b in badges] == ["regular"]
    # And the feed holds one completion and one badge
    time.sleep(6)  # events are visible once past the feed's settle window (5 s)
    completed = live_server.call("GET", "/v1/events?type=challenge.completed", key=key).json()["data"]
    awarded = live_server.call("GET", "/v1/events?type=badge.awarded", key=key).json()["data"]
    assert [e["member_id"] for e in completed] == [member]
    assert [e["data"]["badge_id"] for e in awarded] == ["regular"]
