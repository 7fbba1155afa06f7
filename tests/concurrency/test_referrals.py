"""Referrals under parallel requests over real HTTP: a referee's orders racing (and replays of the
qualifying one racing too) reward referrer and referee exactly once; referees of one referrer
qualifying at once respect the cap exactly; a card code claimed by several members at once goes
to exactly one."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency

PROGRAM = {"referrer_points": 500, "referee_points": 200, "min_order_total": "20.00"}


def _tenant(live_server: LiveServer, **program: Any) -> str:
    key = live_server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    reply = live_server.call("PUT", "/v1/program/referrals", key=key, body={**PROGRAM, **program})
    assert reply.status_code == 200, reply.text
    return key


def _enrol(live_server: LiveServer, key: str, **fields: Any) -> dict[str, Any]:
    reply = live_server.call("POST", "/v1/members", key=key, body=fields)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _available(live_server: LiveServer, key: str, member_id: str) -> int:
    return int(live_server.call("GET", f"/v1/members/{member_id}/balance", key=key).json()["available"])


def _order(order_id: str, total: str) -> dict[str, Any]:
    return {"order": {"id": order_id, "total": total, "currency": "EUR"}}


def test_racing_orders_and_replays_reward_the_referral_once(live_server: LiveServer) -> None:
    # Given Ann and her referee Ben
    key = _tenant(live_server)
    ann = _enrol(live_server, key, name="Ann")
    ben = _enrol(live_server, key, name="Ben", referral_code=ann["referral_code"])
    path = f"/v1/members/{ben['id']}/earn"

    # When 8 different qualifying orders and 4 replays of the first arrive at once
    calls = [(f"o-{i}", _order(f"o-{i}", "30.00")) for i in range(8)] + [("o-0", _order("o-0", "30.00"))] * 4

    def earn(call: tuple[str, dict[str, Any]]) -> Any:
        return live_server.call("POST", path, key=key, body=call[1], idempotency_key=call[0])

    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(pool.map(earn, calls))

    # Then every order earned once (replays answer the first result)
    assert [r.status_code for r in replies] == [201] * 12, [r.text for r in replies]
    first = {r.json()["transaction"]["id"] for r in replies[:1] + replies[8:]}
    assert len(first) == 1
    # And exactly one order qualified: Ann got 500 once, Ben 200 once
    assert _available(live_server, key, ann["id"]) == 500
    assert _available(live_server, key, ben["id"]) == 8 * 30 + 200
    ledger = live_server.call("GET", f"/v1/members/{ben['id']}/transactions?limit=100", key=key).json()["data"]
    assert sorted(e["idempotency_key"] for e in ledger if e["idempotency_key"].startswith("referral:")) == [
        f"referral:{ben['id']}:referee"
    ]
    (referral,) = live_server.call("GET", f"/v1/members/{ann['id']}/referrals", key=key).json()["data"]
    assert (referral["status"], referral["referrer_points"], referral["referee_points"]) == ("completed", 500, 200)
    assert referral["order_id"] in {f"o-{i}" for i in range(8)}
    # And the feed holds one referral.completed event
    time.sleep(6)  # events are visible once past the feed's settle window (5 s)
    events = live_server.call("GET", "/v1/events?type=referral.completed", key=key).json()["data"]
    assert [(e["data"]["referee_id"], e["data"]["status"]) for e in events] == [(ben["id"], "completed")]


def test_referees_qualifying_at_once_respect_the_cap_exactly(live_server: LiveServer) -> None:
    # Given a cap of 3 rewarded referrals per month, and 7 referees of Ann
    key = _tenant(live_server, cap={"limit": 3, "per": "month"})
    ann = _enrol(live_server, key, name="Ann")
    referees = [_enrol(live_server, key, referral_code=ann["referral_code"])["id"] for _ in range(7)]

    # When all 7 make their qualifying order at once
    def earn(referee: str) -> Any:
        body = _order(f"first-{referee}", "25.00")
        return live_server.call(
            "POST", f"/v1/members/{referee}/earn", key=key, body=body, idempotency_key=f"first-{referee}"
        )

    with ThreadPoolExecutor(max_workers=7) as pool:
        replies = list(pool.map(earn, referees))
    assert [r.status_code for r in replies] == [201] * 7, [r.text for r in replies]

    # Then exactly 3 rewarded Ann, 4 are capped; every referee got its own reward
    listed = live_server.call("GET", f"/v1/members/{ann['id']}/referrals", key=key).json()["data"]
    assert sorted(r["status"] for r in listed) == ["capped"] * 4 + ["completed"] * 3
    assert sum(r["referrer_points"] for r in listed) == 1500
    assert _available(live_server, key, ann["id"]) == 1500
    assert [_available(live_server, key, referee) for referee in referees] == [225] * 7


def test_a_card_code_claimed_at_once_goes_to_one_member(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    members = [_enrol(live_server, key)["id"] for _ in range(6)]

    # When 6 members claim the same card at once, and 6 new members enrol with another at once
    def claim(member_id: str) -> Any:
        return live_server.call("PATCH", f"/v1/members/{member_id}", key=key, body={"card_code": "RACE-0001"})

    def enrol(i: int) -> Any:
        return live_server.call("POST", "/v1/members", key=key, body={"name": f"n{i}", "card_code": "RACE-0002"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        claims = list(pool.map(claim, members))
        enrolments = list(pool.map(enrol, range(6)))

    # Then one of each wins, the others are 409 card_code_taken naming the winner
    for replies, card in ((claims, "RACE-0001"), (enrolments, "RACE-0002")):
        statuses = sorted(r.status_code for r in replies)
        assert statuses == [200 if replies is claims else 201] + [409] * 5, [r.text for r in replies]
        (winner,) = [r.json()["id"] for r in replies if r.status_code < 300]
        for refused in (r for r in replies if r.status_code == 409):
            assert refused.json()["error"]["code"] == "card_code_taken"
            assert refused.json()["error"]["details"] == {"card_code": card, "member_id": winner}
        found = live_server.call("GET", f"/v1/members?card_code={card}", key=key).json()["data"]
        assert [m["id"] for m in found] == [winner]
    # And only the one enrolment that won created a member
    assert len(live_server.call("GET", "/v1/members?limit=100", key=key).json()["data"]) == 7
