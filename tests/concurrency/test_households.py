"""Pooled redemptions racing the members' own redemptions and each other, over real HTTP: no
member is ever overdrawn, and the points taken are exactly the points of the accepted requests."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency

FUNDS = {"owner": 600, "kin": 400, "child": 300}


def _tenant(server: LiveServer) -> str:
    key = server.create_tenant(f"h{uuid.uuid4().hex[:10]}")
    program = {"points_per_currency_unit": "1", "rounding": "floor", "households": {"enabled": True}}
    assert server.call("PUT", "/v1/program", key=key, body=program).status_code == 200
    return key


def _settled(send: Any) -> requests.Response:
    """A request sent until its outcome is known: a 503 may or may not have applied, so the client
    retries it with the same Idempotency-Key, which answers the first result or applies it once."""
    for _ in range(20):
        reply: requests.Response = send()
        if reply.status_code != 503:
            return reply
    raise AssertionError(f"still 503 after 20 tries: {reply.text}")


def test_pooled_redemptions_racing_own_redemptions_never_overdraw_and_take_what_was_accepted(
    live_server: LiveServer,
) -> None:
    # Given a household: an owner with 600 points, a kin (redeemer) with 400, a child (member) with 300
    key = _tenant(live_server)
    members = {name: live_server.funded(key, points) for name, points in FUNDS.items()}
    created = live_server.call("POST", "/v1/households", key=key, body={"owner_member_id": members["owner"]})
    assert created.status_code == 201, created.text
    household = created.json()["id"]
    for name, role in (("kin", "redeemer"), ("child", "member")):
        body = {"member_id": members[name], "role": role}
        joined = live_server.call("POST", f"/v1/households/{household}/members", key=key, body=body)
        assert joined.status_code == 201, joined.text

    # When, all at once, the owner and the kin redeem 70 points from the pool 12 times each, and each
    # member redeems 30 of their own points 6 times (1950 points asked of a 1300-point pool)
    def act(i: int) -> tuple[str, int, requests.Response]:
        if i < 24:
            redeemer = members["owner" if i % 2 else "kin"]
            body = {"member_id": redeemer, "points": 70}
            path = f"/v1/households/{household}/redemptions"
            return (
                "pool",
                70,
                _settled(lambda: live_server.call("POST", path, key=key, body=body, idempotency_key=f"p-{i}")),
            )
        member = members[("owner", "kin", "child")[i % 3]]
        path = f"/v1/members/{member}/redeem"
        return (
            "own",
            30,
            _settled(lambda: live_server.call("POST", path, key=key, body={"points": 30}, idempotency_key=f"o-{i}")),
        )

    with ThreadPoolExecutor(max_workers=14) as pool:
        replies = list(pool.map(act, range(42)))

    # Then every request was accepted or refused for want of points
    outcomes = Counter((kind, reply.status_code) for kind, _, reply in replies)
    assert {status for _, status in outcomes} <= {201, 422}, outcomes
    refused = {reply.json()["error"]["code"] for _, _, reply in replies if reply.status_code == 422}
    assert refused <= {"insufficient_points"}, refused
    assert outcomes[("pool", 201)] > 0 and outcomes[("own", 201)] > 0, outcomes

    # And the points taken are exactly the accepted requests' points, each pooled one split across members
    accepted = sum(points for _, points, reply in replies if reply.status_code == 201)
    pooled = [reply.json() for kind, _, reply in replies if kind == "pool" and reply.status_code == 201]
    assert all(sum(c["points"] for c in body["contributions"]) == body["points"] == 70 for body in pooled)
    balances = {name: live_server.balance(key, member) for name, member in members.items()}
    assert sum(FUNDS.values()) - sum(balance["available"] for balance in balances.values()) == accepted
    assert sum(balance["lifetime_redeemed"] for balance in balances.values()) == accepted

    # And no member was overdrawn, and each balance is the sum of its ledger
    for name, balance in balances.items():
        assert balance["available"] == FUNDS[name] - balance["lifetime_redeemed"] >= 0, name
        assert live_server.ledger_sum(key, members[name]) == balance["available"], name
    # And the pool answers what is left
    read = live_server.call("GET", f"/v1/households/{household}", key=key)
    assert read.json()["pool"]["available"] == sum(balance["available"] for balance in balances.values())


def test_a_pooled_redemption_retried_in_parallel_applies_once(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    owner, kin = live_server.funded(key, 50), live_server.funded(key, 50)
    household = live_server.call("POST", "/v1/households", key=key, body={"owner_member_id": owner}).json()["id"]
    body = {"member_id": kin, "role": "member"}
    assert live_server.call("POST", f"/v1/households/{household}/members", key=key, body=body).status_code == 201
    path = f"/v1/households/{household}/redemptions"
    redeem = {"member_id": owner, "points": 80}

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(
            pool.map(
                lambda _: _settled(
                    lambda: live_server.call("POST", path, key=key, body=redeem, idempotency_key="once")
                ),
                range(8),
            )
        )

    assert Counter(reply.status_code for reply in replies) == {201: 8}
    assert len({reply.json()["id"] for reply in replies}) == 1
    assert sum(1 for reply in replies if reply.headers.get("Idempotent-Replayed") != "true") == 1
    assert [live_server.balance(key, m)["available"] for m in (owner, kin)] == [0, 20]


def test_a_member_racing_into_many_households_joins_one_and_a_household_never_outgrows_its_size(
    live_server: LiveServer,
) -> None:
    key = _tenant(live_server)
    size = {"points_per_currency_unit": "1", "rounding": "floor", "households": {"enabled": True, "max_members": 3}}
    assert live_server.call("PUT", "/v1/program", key=key, body=size).status_code == 200
    owners = [live_server.enrol(key) for _ in range(6)]
    households = [
        live_server.call("POST", "/v1/households", key=key, body={"owner_member_id": owner}).json()["id"]
        for owner in owners
    ]
    wanted, joiners = live_server.enrol(key), [live_server.enrol(key) for _ in range(6)]

    def join(household: str, member: str) -> requests.Response:
        body = {"member_id": member, "role": "member"}
        return _settled(lambda: live_server.call("POST", f"/v1/households/{household}/members", key=key, body=body))

    # When one member joins six households at once, and six members join the first household at once
    with ThreadPoolExecutor(max_workers=12) as pool:
        racing = list(pool.map(lambda household: join(household, wanted), households))
        crowding = list(pool.map(lambda member: join(households[0], member), joiners))

    # Then the member is in exactly one household: the others answer member_in_household
    assert sorted(reply.status_code for reply in racing) == [201] + [409] * 5, [r.text for r in racing]
    joined = [household for household, reply in zip(households, racing, strict=True) if reply.status_code == 201]
    assert {reply.json()["error"]["details"]["household_id"] for reply in racing if reply.status_code == 409} == set(
        joined
    )
    # And the first household holds 3 members at most, the others refused as full (or already elsewhere)
    members = live_server.call("GET", f"/v1/households/{households[0]}", key=key).json()["members"]
    assert len(members) == 3, members
    accepted = [reply for reply in crowding if reply.status_code == 201]
    assert len(accepted) == 3 - (2 if joined == [households[0]] else 1)
    reasons = {reply.json()["error"]["details"].get("reason") for reply in crowding if reply.status_code == 422}
    assert reasons <= {"full"}
