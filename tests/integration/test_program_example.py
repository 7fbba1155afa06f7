"""An example program, expressed through the API alone and lived by two members:

10 points per euro; double points on weekends for Gold; Silver at 500 and Gold at 2 000
points per rolling 12 months; a free coffee every 5th purchase (a milestone worth the coffee
reward's cost); 50 points for a review, at most 5 a month; a EUR 5 voucher for 500 points,
1 000 codes; a referral bonus of 200 points each.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.support.http import Api


def last(weekday: int, before: date) -> datetime:
    """Noon UTC (a day in Helsinki too) of the last ``weekday`` (Monday 0) strictly before ``before``."""
    day = before - timedelta(days=1)
    while day.weekday() != weekday:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def ok(reply: Any, status: int = 201) -> dict[str, Any]:
    assert reply.status == status, reply
    return reply.body  # type: ignore[no-any-return]


def order(api: Api, key: str, member: str, order_id: str, total: str, when: datetime) -> dict[str, Any]:
    body = {"order": {"id": order_id, "total": total, "currency": "EUR"}, "occurred_at": when.isoformat()}
    return ok(api.call("POST", f"/v1/members/{member}/earn", key=key, body=body, idempotency_key=order_id))


def redeem(api: Api, key: str, member: str, reward_id: str, idempotency_key: str) -> dict[str, Any]:
    path = f"/v1/members/{member}/rewards/{reward_id}/redeem"
    return ok(api.call("POST", path, key=key, idempotency_key=idempotency_key))


def shares(earned: dict[str, Any]) -> list[tuple[str, int]]:
    return [(share["source"], share["points"]) for share in earned["transaction"]["breakdown"]]


def test_the_example_program_runs_through_the_api(api: Api, admin_key: str) -> None:
    key = admin_key
    today = datetime.now(UTC).date()
    saturday, wednesday = last(5, today), last(2, today)

    # The program, through the API alone
    ok(api.call("PUT", "/v1/program", key=key, body={"points_per_currency_unit": "10", "rounding": "floor"}), 200)
    tiers = {
        "metric": "points",
        "window": {"kind": "rolling_months", "months": 12},
        "tiers": [{"name": "silver", "threshold": "500"}, {"name": "gold", "threshold": "2000"}],
    }
    ok(api.call("PUT", "/v1/program/tiers", key=key, body=tiers), 200)
    rules = [
        {
            "name": "Gold weekends",
            "kind": "order_multiplier",
            "factor": "2",
            "weekdays": ["sat", "sun"],
            "tiers": ["gold"],
        },
        {"name": "Free coffee every 5th purchase", "kind": "milestone", "every": 5, "points": 30},
        {"name": "Review", "kind": "activity", "activity": "review", "points": 50, "limit": 5, "per": "month"},
    ]
    for rule in rules:
        ok(api.call("POST", "/v1/program/rules", key=key, body=rule))
    voucher_body = {
        "name": "EUR 5 voucher",
        "type": "fixed_discount",
        "amount": "5.00",
        "points_cost": 500,
        "stock": 1000,
    }
    voucher = ok(api.call("POST", "/v1/rewards", key=key, body=voucher_body))
    coffee = ok(
        api.call(
            "POST",
            "/v1/rewards",
            key=key,
            body={"name": "Coffee", "type": "free_product", "sku": "coffee", "points_cost": 30},
        )
    )
    referrals = {"referrer_points": 200, "referee_points": 200}
    assert ok(api.call("PUT", "/v1/program/referrals", key=key, body=referrals), 200)["status"] == "active"

    # Ann joins; Ben joins with Ann's referral code
    ann = ok(api.call("POST", "/v1/members", key=key, body={"name": "Ann", "email": "ann@example.com"}))
    ben = ok(api.call("POST", "/v1/members", key=key, body={"name": "Ben", "referral_code": ann["referral_code"]}))
    assert ben["referred_by"] == ann["id"]
    ann_id, ben_id = ann["id"], ben["id"]

    # 10 points per euro; a weekend order of a member below Gold is not doubled
    first = order(api, key, ann_id, "a-1", "30.00", wednesday)
    assert shares(first) == [("base", 300)] and first["balance"]["tier"] is None
    weekend = order(api, key, ann_id, "a-2", "30.00", saturday)
    assert shares(weekend) == [("base", 300)]
    # Silver at 500 points, at once
    assert weekend["balance"]["tier"] == "silver" and weekend["balance"]["available"] == 600

    # 50 points for a review, at most 5 a month
    reviews = [
        api.call(
            "POST",
            f"/v1/members/{ann_id}/activities",
            key=key,
            body={"type": "review", "reference": f"p-{n}"},
            idempotency_key=f"review-{n}",
        )
        for n in range(6)
    ]
    assert [r.status for r in reviews] == [201] * 5 + [422]
    assert reviews[5].error_code() == "limit_reached"
    assert sum(r.body["transaction"]["points"] for r in reviews[:5]) == 250

    # Gold at 2 000 points in the rolling 12 months: 600 + 250 + 600 + 600 = 2 050, on the 4th order
    assert order(api, key, ann_id, "a-3", "60.00", wednesday)["balance"]["tier"] == "silver"
    fourth = order(api, key, ann_id, "a-4", "60.00", wednesday)
    assert fourth["balance"]["tier"] == "gold" and fourth["balance"]["available"] == 2050

    # The 5th purchase, on a weekend, as Gold: doubled, plus the free coffee's points
    fifth = order(api, key, ann_id, "a-5", "10.00", saturday)
    named = sorted((share["name"], share["points"]) for share in fifth["transaction"]["breakdown"])
    assert named == [("Base rate", 100), ("Free coffee every 5th purchase", 30), ("Gold weekends", 100)], named
    assert fifth["transaction"]["points"] == 230 and fifth["balance"]["available"] == 2280
    coffee_coupon = redeem(api, key, ann_id, coffee["id"], "coffee-1")
    assert coffee_coupon["coupon"]["status"] == "issued" and coffee_coupon["balance"]["available"] == 2250

    # The EUR 5 voucher for 500 points, 1 000 codes
    redeemed = redeem(api, key, ann_id, voucher["id"], "v-1")
    assert redeemed["transaction"]["points"] == -500 and redeemed["balance"]["available"] == 1750
    stock = ok(api.call("GET", f"/v1/rewards/{voucher['id']}", key=key), 200)
    assert (stock["issued"], stock["remaining_stock"]) == (1, 999)

    # A referral bonus of 200 points each, when Ben's first order earns
    ben_order = order(api, key, ben_id, "b-1", "20.00", wednesday)
    assert shares(ben_order) == [("base", 200)]
    assert api.balance(key, ben_id)["available"] == 200 + 200
    assert api.balance(key, ann_id)["available"] == 1750 + 200
    (referral,) = ok(api.call("GET", f"/v1/members/{ann_id}/referrals", key=key), 200)["data"]
    assert (referral["referee_id"], referral["status"]) == (ben_id, "completed")
    assert (referral["referrer_points"], referral["referee_points"]) == (200, 200)
