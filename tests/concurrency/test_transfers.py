"""Transfers racing redemptions, each other and their own retries, over real HTTP: no member is
ever overdrawn, no point is created or lost, a key applies once, the daily maximum holds."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency


def _tenant(server: LiveServer, transfers: dict[str, Any]) -> str:
    key = server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    program = {"points_per_currency_unit": "1", "rounding": "floor", "transfers": transfers}
    assert server.call("PUT", "/v1/program", key=key, body=program).status_code == 200
    return key


def _transfer(server: LiveServer, key: str, sender: str, receiver: str, points: int, idem: str) -> requests.Response:
    body = {"to": {"member_id": receiver}, "points": points}
    return server.call("POST", f"/v1/members/{sender}/transfers", key=key, body=body, idempotency_key=idem)


def test_transfers_racing_redemptions_never_overdraw_and_keep_the_total(live_server: LiveServer) -> None:
    # Given three members: A with 1000 points, B with 200, C with none
    key = _tenant(live_server, {"enabled": True})
    a, b = live_server.funded(key, 1000), live_server.funded(key, 200)
    c = live_server.enrol(key)

    # When, all at once, A redeems and transfers 40 points 20 times each (to B and C), and B
    # transfers 20 points back to A 10 times (two-member transactions crossing each other)
    def act(i: int) -> tuple[str, requests.Response]:
        if i < 20:
            reply = live_server.call(
                "POST", f"/v1/members/{a}/redeem", key=key, body={"points": 40}, idempotency_key=f"r-{i}"
            )
            return "redeem", reply
        if i < 40:
            return "out", _transfer(live_server, key, a, b if i % 2 else c, 40, f"t-{i}")
        return "back", _transfer(live_server, key, b, a, 20, f"b-{i}")

    with ThreadPoolExecutor(max_workers=25) as pool:
        replies = list(pool.map(act, range(50)))

    # Then every request succeeded or was refused for the balance (a 503 from an overloaded
    # emulator leaves the outcome unknown to the client: what happened is read from the ledgers)
    outcomes = Counter((kind, reply.status_code) for kind, reply in replies)
    assert {status for _, status in outcomes} <= {201, 422, 503}, outcomes
    refused = {reply.json()["error"]["code"] for _, reply in replies if reply.status_code in (422, 503)}
    assert refused <= {"insufficient_points", "retry_later"}, refused
    assert outcomes[("out", 201)] > 0 and outcomes[("back", 201)] > 0, outcomes

    # And A was never overdrawn, and the points across the members changed only by what A redeemed
    balances = {member: live_server.balance(key, member) for member in (a, b, c)}
    redeemed = balances[a]["lifetime_redeemed"]
    assert redeemed >= 40 * outcomes[("redeem", 201)]
    assert balances[a]["available"] == 1000 - redeemed + balances[a]["lifetime_transferred"] >= 0
    assert sum(balance["available"] for balance in balances.values()) == 1200 - redeemed
    assert sum(balance["lifetime_transferred"] for balance in balances.values()) == 0
    assert balances[b]["available"] >= 0 and balances[c]["available"] >= 0
    # And each balance is the sum of its ledger
    for member, balance in balances.items():
        assert live_server.ledger_sum(key, member) == balance["available"], member


def test_a_transfer_retried_in_parallel_applies_once(live_server: LiveServer) -> None:
    key = _tenant(live_server, {"enabled": True})
    sender, receiver = live_server.funded(key, 100), live_server.enrol(key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: _transfer(live_server, key, sender, receiver, 30, "once"), range(10)))

    assert Counter(reply.status_code for reply in replies) == {201: 10}
    assert len({reply.json()["id"] for reply in replies}) == 1
    assert sum(1 for reply in replies if reply.headers.get("Idempotent-Replayed") != "true") == 1
    assert live_server.balance(key, sender)["available"] == 70
    assert live_server.balance(key, receiver)["available"] == 30


def test_the_daily_maximum_holds_under_parallel_transfers(live_server: LiveServer) -> None:
    key = _tenant(live_server, {"enabled": True, "daily_maximum": 500})
    sender, receiver = live_server.funded(key, 2000), live_server.enrol(key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda i: _transfer(live_server, key, sender, receiver, 100, f"d-{i}"), range(10)))

    assert Counter(reply.status_code for reply in replies) == {201: 5, 422: 5}
    reasons = {reply.json()["error"]["details"]["reason"] for reply in replies if reply.status_code == 422}
    assert reasons == {"daily_maximum"}
    assert live_server.balance(key, sender)["available"] == 1500
    assert live_server.balance(key, receiver)["available"] == 500
