"""Tiers under parallel earns over real HTTP: the qualifying total moves in each earn's own
transaction, so concurrent earns crossing a threshold upgrade the member exactly once."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency

TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "tiers": [{"name": "silver", "threshold": "500"}, {"name": "gold", "threshold": "1000"}],
}


def test_parallel_earns_crossing_two_thresholds_upgrade_once_each(live_server: LiveServer) -> None:
    # Given Silver at 500 and Gold at 1000 points, and a member at 400
    key = live_server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    assert live_server.call("PUT", "/v1/program/tiers", key=key, body=TIERS).status_code == 200
    member = live_server.enrol(key)
    path = f"/v1/members/{member}/earn"
    assert live_server.call("POST", path, key=key, body={"points": 400}, idempotency_key="opening").status_code == 201

    # When 8 earns of 100 points arrive at once (each may be the one crossing a threshold)
    def earn(i: int):
        return live_server.call("POST", path, key=key, body={"points": 100}, idempotency_key=f"earn-{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(earn, range(8)))

    # Then all 8 count, and each response's tier is the one its own total reached
    assert [r.status_code for r in replies] == [201] * 8, [r.text for r in replies]
    for reply in replies:
        body = reply.json()
        total = body["balance"]["available"]
        assert body["balance"]["tier"] == (None if total < 500 else "silver" if total < 1000 else "gold"), body
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert (balance["tier"], balance["tier_status"]["qualifying"], balance["available"]) == ("gold", 1200, 1200)
    # And the feed holds exactly one upgrade to Silver and one to Gold
    time.sleep(6)  # events are visible once past the feed's settle window (5 s)
    events = live_server.call("GET", "/v1/events?type=tier.changed", key=key).json()["data"]
    assert [(e["data"]["from_tier"], e["data"]["to_tier"]) for e in events] == [(None, "silver"), ("silver", "gold")]
