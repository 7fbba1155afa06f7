"""Parallel requests over real HTTP: no lost update, no double spend, no double apply."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency


def _tenant(server: LiveServer) -> str:
    return server.create_tenant(f"t{uuid.uuid4().hex[:10]}")


def _ledger(server: LiveServer, key: str, member: str) -> list[dict]:
    reply = server.call("GET", f"/v1/members/{member}/transactions?limit=100", key=key)
    assert reply.status_code == 200, reply.text
    assert reply.json()["next_cursor"] is None
    return list(reply.json()["data"])


def test_fifty_parallel_redeems_spend_exactly_what_is_there(live_server: LiveServer) -> None:
    # Given a member with 1000 points
    key = _tenant(live_server)
    member = live_server.enrol(key)
    assert (
        live_server.call(
            "POST", f"/v1/members/{member}/earn", key=key, body={"points": 1000}, idempotency_key="opening"
        ).status_code
        == 201
    )

    # When 50 redeems of 30 points arrive at once
    def redeem(i: int):
        return live_server.call(
            "POST", f"/v1/members/{member}/redeem", key=key, body={"points": 30}, idempotency_key=f"redeem-{i}"
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(redeem, range(50)))

    # Then exactly floor(1000 / 30) = 33 succeed, the other 17 are refused, and nothing else happens
    statuses = Counter(r.status_code for r in replies)
    assert statuses == {201: 33, 422: 17}, statuses
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 422} == {"insufficient_points"}
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert balance["available"] == 10
    assert balance["lifetime_redeemed"] == 990
    ledger = _ledger(live_server, key, member)
    assert sum(entry["points"] for entry in ledger) == 10
    assert sorted(entry["sequence"] for entry in ledger) == list(range(1, 35))
    # Each success reported the balance right after itself: all distinct, 970 down to 10.
    reported = sorted(r.json()["balance"]["available"] for r in replies if r.status_code == 201)
    assert reported == list(range(10, 1000, 30))


def test_parallel_earns_lose_no_update(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    member = live_server.enrol(key)

    def earn(i: int):
        return live_server.call(
            "POST", f"/v1/members/{member}/earn", key=key, body={"points": i + 1}, idempotency_key=f"earn-{i}"
        )

    with ThreadPoolExecutor(max_workers=40) as pool:
        replies = list(pool.map(earn, range(40)))

    assert Counter(r.status_code for r in replies) == {201: 40}
    expected = sum(range(1, 41))
    balance = live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()
    assert balance["available"] == balance["lifetime_earned"] == expected
    assert sum(entry["points"] for entry in _ledger(live_server, key, member)) == expected


def test_concurrent_duplicates_of_one_key_apply_once(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    member = live_server.enrol(key)

    def duplicate(_: int):
        return live_server.call(
            "POST", f"/v1/members/{member}/earn", key=key, body={"points": 25}, idempotency_key="the-same-order"
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(duplicate, range(20)))

    assert Counter(r.status_code for r in replies) == {201: 20}
    assert len({r.text for r in replies}) == 1  # every caller sees the one committed result
    assert sum(1 for r in replies if r.headers.get("Idempotent-Replayed") != "true") == 1
    assert live_server.call("GET", f"/v1/members/{member}/balance", key=key).json()["available"] == 25
    assert len(_ledger(live_server, key, member)) == 1


def test_parallel_tenants_never_see_each_other(live_server: LiveServer) -> None:
    keys = [_tenant(live_server) for _ in range(3)]
    members = [live_server.enrol(k) for k in keys]

    def work(i: int):
        tenant = i % 3
        return live_server.call(
            "POST",
            f"/v1/members/{members[tenant]}/earn",
            key=keys[tenant],
            body={"points": tenant + 1},
            idempotency_key=f"w-{i}",
        )

    def trespass(i: int):
        tenant = i % 3
        other = (tenant + 1) % 3
        return live_server.call(
            "POST",
            f"/v1/members/{members[other]}/earn",
            key=keys[tenant],
            body={"points": 1000},
            idempotency_key=f"x-{i}",
        )

    with ThreadPoolExecutor(max_workers=30) as pool:
        legit = list(pool.map(work, range(30)))
        foreign = list(pool.map(trespass, range(30)))

    assert Counter(r.status_code for r in legit) == {201: 30}
    assert Counter(r.status_code for r in foreign) == {404: 30}
    for tenant in range(3):
        balance = live_server.call("GET", f"/v1/members/{members[tenant]}/balance", key=keys[tenant]).json()
        assert balance["available"] == 10 * (tenant + 1)
