"""Earning caps under parallel earns over real HTTP: the cap counters move in each earn's own
transaction under their condition, so parallel earns never credit more than the cap, and
together they credit exactly min(asked, cap): one earn gets the remainder, the rest nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency


def _tenant(server: LiveServer) -> str:
    key = server.create_tenant(f"k{uuid.uuid4().hex[:10]}")
    program = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert server.call("PUT", "/v1/program", key=key, body=program).status_code == 200
    return key


def _rule(server: LiveServer, key: str, **body: Any) -> None:
    reply = server.call("POST", "/v1/program/rules", key=key, body=body)
    assert reply.status_code == 201, reply.text


def _in_parallel(server: LiveServer, key: str, member: str, bodies: list[dict[str, Any]]) -> list[Any]:
    def earn(i: int) -> Any:
        return server.call("POST", f"/v1/members/{member}/earn", key=key, body=bodies[i], idempotency_key=f"earn-{i}")

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(earn, range(len(bodies))))


def test_twenty_parallel_earns_never_pass_a_monthly_cap(live_server: LiveServer) -> None:
    # Given at most 1 000 points a month, and a member
    key = _tenant(live_server)
    _rule(live_server, key, name="Monthly cap", kind="earning_cap", cap=1000, per="month")
    member = live_server.enrol(key)

    # When 20 earns of 70 points (1 400 asked) arrive at once
    replies = _in_parallel(live_server, key, member, [{"points": 70}] * 20)

    # Then every one is recorded, and together they credit exactly the cap: 14 whole, one of 20, 5 of 0
    assert [r.status_code for r in replies] == [201] * 20, [r.text for r in replies if r.status_code != 201]
    points = [r.json()["transaction"]["points"] for r in replies]
    assert sum(points) == 1000 and Counter(points) == {70: 14, 20: 1, 0: 5}, points
    for reply in replies:  # a cut earn explains itself; a whole one has no breakdown (plain points)
        transaction = reply.json()["transaction"]
        breakdown = transaction["breakdown"]
        assert not breakdown or sum(share["points"] for share in breakdown) == transaction["points"]
        assert bool(breakdown) == (transaction["points"] < 70)
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert (balance["available"], balance["lifetime_earned"]) == (1000, 1000)


def test_parallel_orders_never_pass_a_campaign_cap(live_server: LiveServer) -> None:
    # Given double points capped at 35 extra points a month per member
    key = _tenant(live_server)
    _rule(live_server, key, name="Double", kind="order_multiplier", factor="2", cap=35, per="month")
    member = live_server.enrol(key)
    orders = [{"order": {"id": f"o-{i}", "total": "10.00", "currency": "EUR"}} for i in range(10)]

    # When 10 orders of 10 EUR (10 base + 10 extra each) arrive at once
    replies = _in_parallel(live_server, key, member, orders)

    # Then every base is credited, and the extras add up to exactly the campaign's 35
    assert [r.status_code for r in replies] == [201] * 10, [r.text for r in replies if r.status_code != 201]
    points = [r.json()["transaction"]["points"] for r in replies]
    assert sum(points) == 100 + 35 and Counter(points) == {20: 3, 15: 1, 10: 6}, points
    assert live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()["available"] == 135
