"""Rewards under parallel requests over real HTTP: stock never oversold, limits never passed,
pool codes issued once each, a coupon cancelled (and refunded) once."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency


def _tenant(server: LiveServer) -> str:
    return server.create_tenant(f"r{uuid.uuid4().hex[:10]}")


def _reward(server: LiveServer, key: str, **body: Any) -> dict[str, Any]:
    reply = server.call("POST", "/v1/rewards", key=key, body=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _get(server: LiveServer, key: str, path: str) -> Any:
    reply = server.call("GET", path, key=key)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_forty_members_race_for_ten_vouchers(live_server: LiveServer) -> None:
    # Given a voucher with a stock of 10 and 40 members who can each afford it
    key = _tenant(live_server)
    voucher = _reward(
        live_server, key, name="€5 voucher", type="fixed_discount", amount="5.00", points_cost=100, stock=10
    )
    members = [live_server.funded(key, 100) for _ in range(40)]

    # When all 40 redeem it at once
    def redeem(member: str):
        return live_server.call(
            "POST", f"/v1/members/{member}/rewards/{voucher['id']}/redeem", key=key, idempotency_key=f"r-{member}"
        )

    with ThreadPoolExecutor(max_workers=40) as pool:
        replies = list(pool.map(redeem, members))

    # Then exactly 10 get a coupon and 30 are refused as out of stock
    assert Counter(r.status_code for r in replies) == {201: 10, 422: 30}, [r.text for r in replies[:3]]
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 422} == {"out_of_stock"}
    winners = {m for m, r in zip(members, replies, strict=True) if r.status_code == 201}
    codes = [r.json()["coupon"]["code"] for r in replies if r.status_code == 201]
    assert len(set(codes)) == 10
    # And the stock counter says 10, each winner paid once and holds its coupon, the others nothing
    after = _get(live_server, key, f"/v1/rewards/{voucher['id']}")
    assert (after["issued"], after["remaining_stock"]) == (10, 0)
    for member in members:
        balance = _get(live_server, key, f"/v1/members/{member}/balance")
        coupons = _get(live_server, key, f"/v1/members/{member}/coupons")["data"]
        ledger = _get(live_server, key, f"/v1/members/{member}/transactions")["data"]
        if member in winners:
            assert (balance["available"], balance["lifetime_redeemed"]) == (0, 100), balance
            assert [c["code"] for c in coupons] == [ledger[0]["reference"]] and ledger[0]["type"] == "redeem"
        else:
            assert (balance["available"], coupons, [e["type"] for e in ledger]) == (100, [], ["earn"])


def test_one_member_racing_a_per_member_limit_gets_exactly_the_limit(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    gift = _reward(
        live_server, key, name="Coffee", type="free_product", sku="latte", points_cost=10, per_member_limit=3
    )
    member = live_server.funded(key, 1000)

    def redeem(i: int):
        path = f"/v1/members/{member}/rewards/{gift['id']}/redeem"
        return live_server.call("POST", path, key=key, idempotency_key=f"coffee-{i}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(redeem, range(20)))

    assert Counter(r.status_code for r in replies) == {201: 3, 422: 17}, [r.text for r in replies]
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 422} == {"limit_reached"}
    balance = _get(live_server, key, f"/v1/members/{member}/balance")
    assert (balance["available"], balance["lifetime_redeemed"]) == (970, 30)
    assert len(_get(live_server, key, f"/v1/members/{member}/coupons")["data"]) == 3


def test_a_pool_of_ten_codes_is_issued_once_each_under_contention(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    cinema = _reward(live_server, key, name="Cinema", type="experience", points_cost=50, codes="pool")
    codes = [f"CINE-{i:04d}" for i in range(10)]
    uploaded = live_server.call("POST", f"/v1/rewards/{cinema['id']}/codes", key=key, body={"codes": codes})
    assert uploaded.status_code == 201, uploaded.text
    members = [live_server.funded(key, 50) for _ in range(25)]

    def redeem(member: str):
        path = f"/v1/members/{member}/rewards/{cinema['id']}/redeem"
        return live_server.call("POST", path, key=key, idempotency_key=f"c-{member}")

    with ThreadPoolExecutor(max_workers=25) as pool:
        replies = list(pool.map(redeem, members))

    assert Counter(r.status_code for r in replies) == {201: 10, 422: 15}, [r.text for r in replies]
    assert sorted(r.json()["coupon"]["code"] for r in replies if r.status_code == 201) == codes
    assert {r.json()["error"]["details"]["reason"] for r in replies if r.status_code == 422} == {"pool_empty"}
    paid = sum(_get(live_server, key, f"/v1/members/{m}/balance")["lifetime_redeemed"] for m in members)
    assert paid == 10 * 50


def test_parallel_cancels_of_one_coupon_refund_it_once(live_server: LiveServer) -> None:
    key = _tenant(live_server)
    voucher = _reward(live_server, key, name="Voucher", type="fixed_discount", amount="5", points_cost=100, stock=1)
    member = live_server.funded(key, 100)
    redeemed = live_server.call(
        "POST", f"/v1/members/{member}/rewards/{voucher['id']}/redeem", key=key, idempotency_key="once"
    )
    code = redeemed.json()["coupon"]["code"]

    def cancel(i: int):
        return live_server.call("POST", f"/v1/coupons/{code}/cancel", key=key, idempotency_key=f"cancel-{i}")

    with ThreadPoolExecutor(max_workers=15) as pool:
        replies = list(pool.map(cancel, range(15)))

    assert Counter(r.status_code for r in replies) == {200: 1, 409: 14}, [r.text for r in replies]
    balance = _get(live_server, key, f"/v1/members/{member}/balance")
    assert (balance["available"], balance["lifetime_adjusted"]) == (100, 100)
    assert _get(live_server, key, f"/v1/coupons/{code}")["status"] == "cancelled"
    after = _get(live_server, key, f"/v1/rewards/{voucher['id']}")
    assert (after["issued"], after["remaining_stock"]) == (0, 1)
