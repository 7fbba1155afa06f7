"""The rewards catalog and coupons, through the HTTP API, on moto and on DynamoDB Local.

A redemption debits the points, takes one of the reward's stock (and of the member's limit)
and issues a coupon in one transaction: a refusal writes none of them, a replay returns the
first coupon, and a cancelled coupon gives its points, its stock and its limit back, once. A
use writes its ``coupon.used`` event with the coupon; a replay or a refused use writes none.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import events as events_module
from chalicelib.domain import rewards as reward_domain
from chalicelib.domain.errors import CouponNotUsable
from chalicelib.domain.rewards import CouponStatus
from chalicelib.persistence.rewards import RewardRepository
from chalicelib.services import platform
from tests.support.checks import assert_error, assert_invalid
from tests.support.http import Api, Reply

GENERATED_CODE = re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$")
VOUCHER = {"name": "€5 voucher", "type": "fixed_discount", "amount": "5.00", "points_cost": 500, "valid_days": 30}


def create_reward(api: Api, key: str, **fields: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/rewards", key=key, body=fields)
    assert reply.status == 201, reply
    return reply.body


def funded_member(api: Api, key: str, points: int) -> str:
    member = api.enrol(key)
    if points:
        assert api.earn(key, member, f"fund-{member}", points=points).status == 201
    return member


def redeem(api: Api, key: str, member: str, reward_id: str, idempotency_key: str) -> Reply:
    return api.call(
        "POST", f"/v1/members/{member}/rewards/{reward_id}/redeem", key=key, idempotency_key=idempotency_key
    )


def reward_of(api: Api, key: str, reward_id: str) -> dict[str, Any]:
    reply = api.call("GET", f"/v1/rewards/{reward_id}", key=key)
    assert reply.status == 200, reply
    return reply.body


def coupons_of(api: Api, key: str, member: str) -> list[dict[str, Any]]:
    reply = api.call("GET", f"/v1/members/{member}/coupons", key=key)
    assert reply.status == 200, reply
    return reply.body["data"]


def member_view(api: Api, key: str, member: str) -> dict[str, dict[str, Any]]:
    reply = api.call("GET", f"/v1/members/{member}/rewards", key=key)
    assert reply.status == 200, reply
    return {item["reward"]["id"]: item for item in reply.body["data"]}


# --- the example -------------------------------------------------------------------------


def test_a_5_euro_voucher_for_500_points_limited_in_stock(api: Api, admin_key: str) -> None:
    # Given a €5 voucher for 500 points limited to 3 codes (1 000 in the issue; 3 here)
    voucher = create_reward(api, admin_key, **VOUCHER, stock=3)
    assert voucher["id"].startswith("rwd_") and voucher["status"] == "active"
    assert (voucher["amount"], voucher["stock"], voucher["issued"], voucher["remaining_stock"]) == ("5.00", 3, 0, 3)
    members = [funded_member(api, admin_key, 600) for _ in range(4)]

    # When four members with 600 points each redeem it
    replies = [redeem(api, admin_key, member, voucher["id"], f"redeem-{i}") for i, member in enumerate(members)]

    # Then the first three get a coupon and 500 points are debited, in one movement each
    for member, reply in zip(members[:3], replies[:3], strict=True):
        assert reply.status == 201, reply
        coupon, transaction = reply.body["coupon"], reply.body["transaction"]
        assert GENERATED_CODE.fullmatch(coupon["code"]), coupon
        assert coupon["member_id"] == member and coupon["reward_id"] == voucher["id"]
        assert coupon["status"] == "issued" and coupon["points"] == 500
        issued_at = datetime.fromisoformat(coupon["issued_at"])
        assert datetime.fromisoformat(coupon["expires_at"]) - issued_at == timedelta(days=30)
        assert transaction["type"] == "redeem" and transaction["points"] == -500
        assert transaction["reference"] == coupon["code"]
        assert transaction["metadata"] == {"reward_id": voucher["id"]}
        assert reply.body["balance"]["available"] == 100
        assert api.balance(admin_key, member)["lifetime_redeemed"] == 500
        assert coupons_of(api, admin_key, member) == [coupon]
        assert api.call("GET", f"/v1/coupons/{coupon['code']}", key=admin_key).body == coupon
    assert len({reply.body["coupon"]["code"] for reply in replies[:3]}) == 3

    # And the fourth is refused: out of stock, with nothing debited and no coupon
    details = assert_error(replies[3], 422, "out_of_stock")
    assert details == {"reward_id": voucher["id"], "reason": "stock", "stock": 3}
    assert api.balance(admin_key, members[3])["available"] == 600
    assert coupons_of(api, admin_key, members[3]) == []
    assert [t["type"] for t in api.ledger(admin_key, members[3])] == ["earn"]
    after = reward_of(api, admin_key, voucher["id"])
    assert (after["issued"], after["remaining_stock"]) == (3, 0)

    # And the member view says why
    view = member_view(api, admin_key, members[3])[voucher["id"]]
    assert (view["redeemable"], view["locked_because"], view["points_short"]) == (False, ["stock"], 0)


def test_a_replayed_redemption_returns_the_first_coupon_and_debits_once(api: Api, admin_key: str) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER)
    other = create_reward(api, admin_key, name="Free shipping", type="free_shipping", points_cost=50)
    member = funded_member(api, admin_key, 1200)

    first = redeem(api, admin_key, member, voucher["id"], "checkout-1")
    again = redeem(api, admin_key, member, voucher["id"], "checkout-1")

    assert first.status == again.status == 201, (first, again)
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert again.body == first.body
    assert api.balance(admin_key, member)["available"] == 700
    assert len(coupons_of(api, admin_key, member)) == 1
    assert reward_of(api, admin_key, voucher["id"])["issued"] == 1
    # The same key for another reward, another member or another movement is refused
    assert_error(redeem(api, admin_key, member, other["id"], "checkout-1"), 422, "idempotency_key_reused")
    stranger = funded_member(api, admin_key, 1000)
    assert_error(redeem(api, admin_key, stranger, voucher["id"], "checkout-1"), 422, "idempotency_key_reused")
    assert_error(redeem(api, admin_key, member, voucher["id"], f"fund-{member}"), 422, "idempotency_key_reused")
    assert api.balance(admin_key, stranger)["available"] == 1000


def test_not_enough_points_writes_nothing(api: Api, admin_key: str) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER, stock=5)
    member = funded_member(api, admin_key, 499)

    details = assert_error(redeem(api, admin_key, member, voucher["id"], "short"), 422, "insufficient_points")

    assert details == {"available": 499, "requested": 500}
    assert coupons_of(api, admin_key, member) == []
    assert reward_of(api, admin_key, voucher["id"])["issued"] == 0
    view = member_view(api, admin_key, member)[voucher["id"]]
    assert (view["locked_because"], view["points_short"]) == (["balance"], 1)


# --- limits, windows, archive, tiers --------------------------------------------------------------


def test_a_per_member_limit_counts_each_members_coupons(api: Api, admin_key: str) -> None:
    once = create_reward(
        api, admin_key, name="Welcome gift", type="free_product", sku="mug", points_cost=100, per_member_limit=1
    )
    monthly = create_reward(
        api,
        admin_key,
        name="Coffee",
        type="free_product",
        sku="latte",
        points_cost=10,
        per_member_limit=2,
        limit_period="month",
    )
    ada, bob = funded_member(api, admin_key, 1000), funded_member(api, admin_key, 1000)

    assert redeem(api, admin_key, ada, once["id"], "ada-1").status == 201
    refused = redeem(api, admin_key, ada, once["id"], "ada-2")
    assert redeem(api, admin_key, bob, once["id"], "bob-1").status == 201  # a limit per member, not in all
    assert [redeem(api, admin_key, ada, monthly["id"], f"ada-m{i}").status for i in range(3)] == [201, 201, 422]

    details = assert_error(refused, 422, "limit_reached")
    assert details["reward_id"] == once["id"] and details["limit"] == 1 and details["period"] == "ever"
    month = assert_error(redeem(api, admin_key, ada, monthly["id"], "ada-m9"), 422, "limit_reached")
    this_month = f"{datetime.now(ZoneInfo('Europe/Helsinki')):%Y-%m}"  # the tenant's time zone
    assert month["period"] == "month" and month["counter"] == f"reward:{monthly['id']}:{ada}:{this_month}"
    assert api.balance(admin_key, ada)["available"] == 1000 - 100 - 2 * 10
    view = member_view(api, admin_key, ada)
    assert view[once["id"]]["locked_because"] == ["limit"] and view[once["id"]]["remaining_for_member"] == 0
    assert view[monthly["id"]]["locked_because"] == ["limit"]
    bob_view = member_view(api, admin_key, bob)
    assert bob_view[monthly["id"]]["redeemable"] and bob_view[monthly["id"]]["remaining_for_member"] == 2


def test_windows_archive_and_tiers_lock_a_reward(api: Api, admin_key: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    scheduled = create_reward(api, admin_key, name="Summer", type="experience", points_cost=10, starts_at=later)
    gold = create_reward(api, admin_key, name="Lounge", type="experience", points_cost=10, tiers=["gold"])
    plain = create_reward(api, admin_key, name="Tote", type="free_product", sku="tote", points_cost=10)
    member = funded_member(api, admin_key, 100)
    assert scheduled["status"] == "scheduled" and gold["tiers"] == ["gold"]

    archived = api.call("POST", f"/v1/rewards/{plain['id']}/archive", key=admin_key)
    assert archived.status == 200 and archived.body["status"] == "archived" and archived.body["archived_at"]
    assert api.call("POST", f"/v1/rewards/{plain['id']}/archive", key=admin_key).body == archived.body

    for reward, reason in ((scheduled, "window"), (gold, "tier"), (plain, "archived")):
        details = assert_error(redeem(api, admin_key, member, reward["id"], f"r-{reason}"), 422, "reward_unavailable")
        assert details == {"reward_id": reward["id"], "reason": reason}
        assert member_view(api, admin_key, member)[reward["id"]]["locked_because"] == [reason]
    assert api.balance(admin_key, member)["available"] == 100
    assert coupons_of(api, admin_key, member) == []


# --- pool codes -------------------------------------------------------------------------------------


def test_a_pool_of_uploaded_codes_is_issued_once_each(api: Api, admin_key: str) -> None:
    pool = create_reward(api, admin_key, name="Cinema", type="experience", points_cost=100, codes="pool")
    generated = create_reward(api, admin_key, **VOUCHER)
    codes = ["CINE-0001", "CINE-0002", "CINE-0003"]

    uploaded = api.call("POST", f"/v1/rewards/{pool['id']}/codes", key=admin_key, body={"codes": codes})
    assert uploaded.status == 201 and uploaded.body == {"reward_id": pool["id"], "added": 3}, uploaded
    # Duplicates are refused: in the list, already in a pool, or on a reward without a pool
    assert_invalid(
        api.call("POST", f"/v1/rewards/{pool['id']}/codes", key=admin_key, body={"codes": ["X-11", "X-11"]}), "codes"
    )
    taken = api.call("POST", f"/v1/rewards/{pool['id']}/codes", key=admin_key, body={"codes": ["NEW-0001", codes[1]]})
    assert assert_error(taken, 409, "coupon_code_exists") == {"codes": [codes[1]], "count": 1}
    wrong = api.call("POST", f"/v1/rewards/{generated['id']}/codes", key=admin_key, body={"codes": ["GEN-0001"]})
    assert_error(wrong, 409, "code_pool_not_used")
    assert_error(api.call("GET", "/v1/coupons/NEW-0001", key=admin_key), 404, "not_found")  # nothing partial
    # An uploaded code is not a coupon until it is issued
    assert_error(api.call("GET", f"/v1/coupons/{codes[0]}", key=admin_key), 404, "not_found")

    members = [funded_member(api, admin_key, 100) for _ in range(4)]
    replies = [redeem(api, admin_key, m, pool["id"], f"pool-{i}") for i, m in enumerate(members)]

    assert [r.status for r in replies] == [201, 201, 201, 422], replies
    assert sorted(r.body["coupon"]["code"] for r in replies[:3]) == codes
    assert assert_error(replies[3], 422, "out_of_stock") == {"reward_id": pool["id"], "reason": "pool_empty"}
    assert [api.balance(admin_key, m)["available"] for m in members] == [0, 0, 0, 100]
    assert member_view(api, admin_key, members[3])[pool["id"]]["locked_because"] == ["stock"]
    assert api.call("GET", f"/v1/coupons/{codes[0]}", key=admin_key).body["status"] == "issued"


def test_a_pool_code_claimed_meanwhile_is_skipped_without_losing_points(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pool whose first code is issued already, while the index still lists it
    pool = create_reward(api, admin_key, name="Cinema", type="experience", points_cost=100, codes="pool")
    api.call("POST", f"/v1/rewards/{pool['id']}/codes", key=admin_key, body={"codes": ["STALE-01", "FRESH-01"]})
    first = funded_member(api, admin_key, 100)
    original = RewardRepository.pool_codes
    monkeypatch.setattr(RewardRepository, "pool_codes", lambda self, reward_id, limit: ["STALE-01"])
    assert redeem(api, admin_key, first, pool["id"], "first").body["coupon"]["code"] == "STALE-01"
    calls: list[int] = []

    def stale_then_real(self: RewardRepository, reward_id: str, *, limit: int) -> list[str]:
        calls.append(limit)
        return ["STALE-01"] if len(calls) == 1 else original(self, reward_id, limit=limit)

    monkeypatch.setattr(RewardRepository, "pool_codes", stale_then_real)
    member = funded_member(api, admin_key, 150)

    # When the member redeems: the claim of the stale code fails inside the transaction
    reply = redeem(api, admin_key, member, pool["id"], "second")

    # Then the next code is claimed, and the member paid once
    assert reply.status == 201 and reply.body["coupon"]["code"] == "FRESH-01", reply
    assert len(calls) == 2
    assert api.balance(admin_key, member)["available"] == 50
    assert [t["type"] for t in api.ledger(admin_key, member)] == ["redeem", "earn"]
    assert api.call("GET", "/v1/coupons/STALE-01", key=admin_key).body["member_id"] == first


def test_a_generated_code_that_exists_is_replaced_without_losing_points(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER)
    ada, bob = funded_member(api, admin_key, 500), funded_member(api, admin_key, 500)
    taken = redeem(api, admin_key, ada, voucher["id"], "ada").body["coupon"]["code"]
    codes = iter([taken, "ABCD-EFGH-JKMN"])
    monkeypatch.setattr(reward_domain, "generate_code", lambda: next(codes))

    reply = redeem(api, admin_key, bob, voucher["id"], "bob")

    assert reply.status == 201 and reply.body["coupon"]["code"] == "ABCD-EFGH-JKMN", reply
    assert api.balance(admin_key, bob)["available"] == 0
    assert api.call("GET", f"/v1/coupons/{taken}", key=admin_key).body["member_id"] == ada


# --- using and cancelling -------------------------------------------------------------------------


def test_a_coupon_is_used_once_and_a_replay_answers_the_same(api: Api, admin_key: str) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER)
    member = funded_member(api, admin_key, 500)
    code = redeem(api, admin_key, member, voucher["id"], "r").body["coupon"]["code"]
    till = api.create_key(admin_key, "write")

    used = api.call("POST", f"/v1/coupons/{code}/use", key=till, body={"reference": "order-77"}, idempotency_key="u1")
    again = api.call("POST", f"/v1/coupons/{code}/use", key=till, body={"reference": "order-77"}, idempotency_key="u1")
    other = api.call("POST", f"/v1/coupons/{code}/use", key=till, body={}, idempotency_key="u2")
    changed = api.call("POST", f"/v1/coupons/{code}/use", key=till, body={"reference": "x"}, idempotency_key="u1")
    cancel = api.call("POST", f"/v1/coupons/{code}/cancel", key=till, idempotency_key="c1")

    assert used.status == 200 and used.body["status"] == "used" and used.body["used_reference"] == "order-77"
    assert used.body["used_at"] is not None and "idempotent-replayed" not in used.headers
    assert again.status == 200 and again.body == used.body and again.headers.get("idempotent-replayed") == "true"
    assert assert_error(other, 409, "coupon_not_usable") == {"code": code, "status": "used"}
    assert_error(changed, 422, "idempotency_key_reused")
    assert assert_error(cancel, 409, "coupon_not_usable") == {"code": code, "status": "used"}
    assert api.balance(admin_key, member)["available"] == 0  # a used coupon is never refunded
    assert coupons_of(api, admin_key, member)[0]["status"] == "used"


def test_a_coupon_use_writes_its_coupon_used_event_once_and_a_replay_or_a_refusal_none(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    # Given three coupons of a member who gave their name and email: one to use, one cancelled, one to expire
    voucher = create_reward(api, admin_key, **VOUCHER)
    member = api.enrol(admin_key, email="ada@example.com", name="Ada Lovelace")
    assert api.earn(admin_key, member, "fund", points=1500).status == 201
    used_code, cancelled_code, expiring_code = (
        redeem(api, admin_key, member, voucher["id"], f"r{n}").body["coupon"]["code"] for n in range(3)
    )
    assert api.call("POST", f"/v1/coupons/{cancelled_code}/cancel", key=admin_key, idempotency_key="c1").status == 200
    till = api.create_key(admin_key, "write")
    store = platform().for_registered_tenant("acme").rewards.store
    issued = store.get_coupon(used_code)
    assert issued is not None

    # When the till uses one, replays the use, uses it again with another key, and uses the cancelled one
    order = {"reference": "order-77"}
    used = api.call("POST", f"/v1/coupons/{used_code}/use", key=till, body=order, idempotency_key="u1")
    again = api.call("POST", f"/v1/coupons/{used_code}/use", key=till, body=order, idempotency_key="u1")
    other = api.call("POST", f"/v1/coupons/{used_code}/use", key=till, body={}, idempotency_key="u2")
    cancelled = api.call("POST", f"/v1/coupons/{cancelled_code}/use", key=till, body={}, idempotency_key="u3")
    # And the third is used once past its validity
    later = datetime.now(UTC) + timedelta(days=31)
    with pytest.raises(CouponNotUsable) as expired:
        platform().for_registered_tenant("acme", clock=lambda: later).rewards.use(expiring_code, "u4")
    # And a use judged on a stale read reaches the table: the coupon used since, or past its validity
    stale = replace(issued, status=CouponStatus.USED, used_at=datetime.now(UTC), used_key="u5", used_reference=None)
    assert store.mark_used(stale, now=datetime.now(UTC), event=reward_domain.use_event(stale)) is False
    expiring = store.get_coupon(expiring_code)
    assert expiring is not None
    late = replace(expiring, status=CouponStatus.USED, used_at=later, used_key="u6", used_reference=None)
    assert store.mark_used(late, now=later, event=reward_domain.use_event(late)) is False

    # Then the use answered once, and every other attempt was refused or replayed
    assert used.status == 200 and again.status == 200 and again.headers.get("idempotent-replayed") == "true"
    assert assert_error(other, 409, "coupon_not_usable")["status"] == "used"
    assert assert_error(cancelled, 409, "coupon_not_usable")["status"] == "cancelled"
    assert expired.value.details == {"code": expiring_code, "status": "expired"}
    assert api.call("GET", f"/v1/coupons/{expiring_code}", key=admin_key).body["status"] == "issued"
    # And the feed holds one coupon.used event: the used coupon's, with no personal data
    feed = api.call("GET", "/v1/events?type=coupon.used", key=admin_key)
    assert feed.status == 200, feed
    (event,) = feed.body["data"]
    used_at = datetime.fromisoformat(used.body["used_at"].replace("Z", "+00:00"))
    assert (event["type"], event["member_id"]) == ("coupon.used", member)
    assert event["data"] == {
        "reward_id": voucher["id"],
        "code": used_code,
        "member_id": member,
        "reference": "order-77",
        "used_at": event["data"]["used_at"],
    }
    assert abs(datetime.fromisoformat(event["data"]["used_at"].replace("Z", "+00:00")) - used_at) < timedelta(
        milliseconds=1
    )
    everything = api.call("GET", "/v1/events?limit=100", key=admin_key).body["data"]
    assert [e["data"]["code"] for e in everything if e["type"] == "coupon.used"] == [used_code]


def test_cancelling_a_coupon_gives_its_points_stock_and_limit_back_once(api: Api, admin_key: str) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER, stock=1, per_member_limit=1)
    member = funded_member(api, admin_key, 1000)
    code = redeem(api, admin_key, member, voucher["id"], "r1").body["coupon"]["code"]
    assert reward_of(api, admin_key, voucher["id"])["remaining_stock"] == 0

    cancelled = api.call("POST", f"/v1/coupons/{code}/cancel", key=admin_key, idempotency_key="cancel-1")
    replay = api.call("POST", f"/v1/coupons/{code}/cancel", key=admin_key, idempotency_key="cancel-1")
    twice = api.call("POST", f"/v1/coupons/{code}/cancel", key=admin_key, idempotency_key="cancel-2")
    use = api.call("POST", f"/v1/coupons/{code}/use", key=admin_key, body={}, idempotency_key="use-1")

    assert cancelled.status == 200, cancelled
    transaction = cancelled.body["transaction"]
    assert (transaction["type"], transaction["points"], transaction["reference"]) == ("adjust", 500, code)
    assert transaction["reason"] == f"coupon {code} cancelled: its points given back"
    assert cancelled.body["balance"]["available"] == 1000
    assert cancelled.body["coupon"]["status"] == "cancelled" and cancelled.body["coupon"]["cancelled_at"]
    assert replay.status == 200 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.body == cancelled.body
    assert assert_error(twice, 409, "coupon_not_usable") == {"code": code, "status": "cancelled"}
    assert assert_error(use, 409, "coupon_not_usable")["status"] == "cancelled"
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_redeemed"], balance["lifetime_adjusted"]) == (1000, 500, 500)
    assert [t["type"] for t in api.ledger(admin_key, member)] == ["adjust", "redeem", "earn"]
    # The stock and the member's limit are back: the member may redeem it again
    restored = reward_of(api, admin_key, voucher["id"])
    assert (restored["issued"], restored["remaining_stock"]) == (0, 1)
    again = redeem(api, admin_key, member, voucher["id"], "r2")
    assert again.status == 201 and again.body["coupon"]["code"] != code
    assert [c["status"] for c in coupons_of(api, admin_key, member)] == ["issued", "cancelled"]


def test_charity_donations_are_totalled_per_cause(api: Api, admin_key: str) -> None:
    seas = create_reward(
        api, admin_key, name="Clean seas", type="charity_donation", cause="Clean Seas", points_cost=100
    )
    more = create_reward(
        api, admin_key, name="Clean seas x5", type="charity_donation", cause="Clean Seas", points_cost=500
    )
    trees = create_reward(api, admin_key, name="Trees", type="charity_donation", cause="Plant Trees", points_cost=50)
    member = funded_member(api, admin_key, 1000)

    codes = [redeem(api, admin_key, member, r["id"], f"give-{r['id']}").body["coupon"]["code"] for r in (seas, more)]
    redeem(api, admin_key, member, trees["id"], "give-trees")
    cancelled = api.call("POST", f"/v1/coupons/{codes[0]}/cancel", key=admin_key, idempotency_key="undo")
    redeem(api, admin_key, member, seas["id"], "give-again")

    assert cancelled.status == 200
    assert reward_of(api, admin_key, seas["id"])["cause_total_points"] == 600
    assert reward_of(api, admin_key, more["id"])["cause_total_points"] == 600
    assert reward_of(api, admin_key, trees["id"])["cause_total_points"] == 50
    assert api.balance(admin_key, member)["available"] == 1000 - 500 - 50 - 100


# --- the catalog ----------------------------------------------------------------------------------


def test_the_catalog_is_listed_paged_and_edited(api: Api, admin_key: str) -> None:
    made = [
        create_reward(api, admin_key, name=f"Gift {i}", type="gift_card", amount="10", points_cost=900)
        for i in range(3)
    ]
    first = api.call("GET", "/v1/rewards?limit=2", key=admin_key)
    rest = api.call("GET", f"/v1/rewards?cursor={first.body['next_cursor']}", key=admin_key)
    assert [r["id"] for r in first.body["data"] + rest.body["data"]] == [r["id"] for r in made]
    assert rest.body["next_cursor"] is None

    patched = api.call(
        "PATCH", f"/v1/rewards/{made[0]['id']}", key=admin_key, body={"points_cost": 800, "stock": 5, "amount": "12.5"}
    )
    assert patched.status == 200, patched
    assert (patched.body["points_cost"], patched.body["stock"], patched.body["amount"]) == (800, 5, "12.5")
    assert patched.body["updated_at"] > made[0]["updated_at"] and patched.body["created_at"] == made[0]["created_at"]
    cleared = api.call("PATCH", f"/v1/rewards/{made[0]['id']}", key=admin_key, body={"stock": None})
    assert cleared.body["stock"] is None and cleared.body["remaining_stock"] is None
    assert reward_of(api, admin_key, made[0]["id"]) == cleared.body


def test_invalid_rewards_are_refused_naming_the_field(api: Api, admin_key: str) -> None:
    def create(**body: Any) -> Reply:
        return api.call("POST", "/v1/rewards", key=admin_key, body={"name": "x", "points_cost": 10, **body})

    assert_invalid(create(type="fixed_discount"), "amount")
    assert_invalid(create(type="percent_discount", percent=10, amount="5"), "amount")
    assert_invalid(create(type="percent_discount", percent=101), "percent")
    assert_invalid(create(type="experience", points_cost=0), "points_cost")
    assert_invalid(create(type="experience", per_member_limit=0), "per_member_limit")
    assert_invalid(create(type="experience", limit_period="month"), "limit_period")
    assert_invalid(
        create(type="experience", starts_at="2030-01-02T00:00:00Z", ends_at="2030-01-01T00:00:00Z"), "ends_at"
    )
    assert_invalid(create(type="experience", tiers=["gold", "gold"]), "tiers")
    reward = create_reward(api, admin_key, name="x", type="experience", points_cost=10)
    assert_invalid(api.call("PATCH", f"/v1/rewards/{reward['id']}", key=admin_key, body={"type": "gift_card"}), "type")
    assert_invalid(api.call("PATCH", f"/v1/rewards/{reward['id']}", key=admin_key, body={"sku": "mug"}), "sku")
    assert_invalid(api.call("PATCH", f"/v1/rewards/{reward['id']}", key=admin_key, body={}))
    assert reward_of(api, admin_key, reward["id"]) == reward
    assert api.call("GET", "/v1/rewards", key=admin_key).body["data"] == [reward]


# --- tenant isolation ---------------------------------------------------------------------------


def test_another_tenant_reaches_none_of_the_rewards_or_coupons(api: Api, admin_key: str, other_admin_key: str) -> None:
    voucher = create_reward(api, admin_key, **VOUCHER)
    pool = create_reward(api, admin_key, name="Pool", type="experience", points_cost=10, codes="pool")
    member = funded_member(api, admin_key, 1000)
    code = redeem(api, admin_key, member, voucher["id"], "r").body["coupon"]["code"]
    stranger = funded_member(api, other_admin_key, 1000)
    before = (reward_of(api, admin_key, voucher["id"]), coupons_of(api, admin_key, member))

    attempts = [
        ("GET", f"/v1/rewards/{voucher['id']}", None, None),
        ("PATCH", f"/v1/rewards/{voucher['id']}", {"points_cost": 1}, None),
        ("POST", f"/v1/rewards/{voucher['id']}/archive", None, None),
        ("POST", f"/v1/rewards/{pool['id']}/codes", {"codes": ["INTRUDER-1"]}, None),
        ("POST", f"/v1/members/{member}/rewards/{voucher['id']}/redeem", None, "x1"),
        ("POST", f"/v1/members/{stranger}/rewards/{voucher['id']}/redeem", None, "x2"),
        ("GET", f"/v1/members/{member}/rewards", None, None),
        ("GET", f"/v1/members/{member}/coupons", None, None),
        ("GET", f"/v1/coupons/{code}", None, None),
        ("POST", f"/v1/coupons/{code}/use", {}, "x3"),
        ("POST", f"/v1/coupons/{code}/cancel", None, "x4"),
    ]
    for method, path, body, key in attempts:
        reply = api.call(method, path, key=other_admin_key, body=body, idempotency_key=key)
        assert_error(reply, 404, "not_found", f"{method} {path} from tenant B")

    assert api.call("GET", "/v1/rewards", key=other_admin_key).body == {"data": [], "next_cursor": None}
    assert (reward_of(api, admin_key, voucher["id"]), coupons_of(api, admin_key, member)) == before
    assert api.balance(admin_key, member)["available"] == 500
    assert api.balance(other_admin_key, stranger)["available"] == 1000
