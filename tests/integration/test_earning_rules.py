"""Earning rules through the HTTP API, on both emulators: rules are created, listed, ended
(never deleted), previewed, and an order earn returns and stores the breakdown. Another
tenant's key sees none of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.http import Api

LATTE = {"sku": "latte", "category": "coffee", "quantity": 2, "unit_price": "3.50"}
CAKE = {"sku": "cake", "category": "bakery", "quantity": 1, "unit_price": "18.00"}
ORDER = {"id": "order-1", "total": "25.00", "currency": "EUR", "lines": [LATTE, CAKE]}


def add_rule(api: Api, key: str, **rule: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/program/rules", key=key, body=rule)
    assert reply.status == 201, reply.body
    return reply.body


@pytest.fixture
def program(api: Api, admin_key: str) -> dict[str, dict[str, Any]]:
    """10 points per euro, double points on coffee, 50 points for orders of 20 EUR or more."""
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    return {
        "coffee": add_rule(api, admin_key, name="Coffee x2", kind="line_multiplier", factor="2", categories=["coffee"]),
        "big": add_rule(api, admin_key, name="Big order", kind="order_bonus", points=50, min_order_total="20.00"),
    }


def test_an_order_earn_returns_and_stores_its_breakdown(api: Api, admin_key: str, program: dict) -> None:
    member = api.enrol(admin_key)

    preview = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER})
    earned = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="o1", body={"order": ORDER})
    replay = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="o1", body={"order": ORDER})

    expected = [
        {"source": "base", "name": "Base rate", "points": 250, "rule_id": None},  # 7.00 + 18.00 at 10/EUR
        {"source": "rule", "name": "Coffee x2", "points": 70, "rule_id": program["coffee"]["id"]},
        {"source": "rule", "name": "Big order", "points": 50, "rule_id": program["big"]["id"]},
    ]
    assert preview.status == 200 and preview.body == {"points": 370, "breakdown": expected, "tier": None}
    assert earned.status == 201, earned.body
    transaction = earned.body["transaction"]
    assert (transaction["points"], transaction["breakdown"]) == (370, expected)
    assert (transaction["reference"], transaction["amount"], transaction["currency"]) == ("order-1", "25.00", "EUR")
    assert replay.body == earned.body and replay.headers["idempotent-replayed"] == "true"
    assert api.ledger(admin_key, member)[0]["breakdown"] == expected
    assert api.balance(admin_key, member)["available"] == 370


def test_the_same_key_with_another_order_is_refused(api: Api, admin_key: str, program: dict) -> None:
    member = api.enrol(admin_key)
    api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="o1", body={"order": ORDER})

    other = {**ORDER, "lines": [LATTE]}
    reused = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="o1", body={"order": other})

    assert reused.status == 422 and reused.error_code() == "idempotency_key_reused"
    assert api.balance(admin_key, member)["available"] == 370


def test_an_ended_rule_no_longer_applies_and_past_earns_keep_their_explanation(
    api: Api, admin_key: str, program: dict
) -> None:
    member = api.enrol(admin_key)
    first = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="a", body={"order": ORDER})

    ended = api.call("POST", f"/v1/program/rules/{program['coffee']['id']}/end", key=admin_key)
    second_order = {**ORDER, "id": "order-2"}
    second = api.call(
        "POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="b", body={"order": second_order}
    )
    listed = api.call("GET", "/v1/program/rules", key=admin_key)

    assert ended.status == 200 and ended.body["status"] == "ended" and ended.body["ends_at"] is not None
    assert second.body["transaction"]["points"] == 300  # 250 base + 50 bonus
    assert [share["name"] for share in second.body["transaction"]["breakdown"]] == ["Base rate", "Big order"]
    assert [rule["status"] for rule in listed.body["data"]] == ["ended", "active"]
    assert api.ledger(admin_key, member)[1]["breakdown"] == first.body["transaction"]["breakdown"]


def test_a_weekend_campaign_is_scheduled_and_applies_only_in_its_window(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    start = datetime(2027, 5, 1, tzinfo=UTC)
    campaign = add_rule(
        api,
        admin_key,
        name="Double weekend",
        kind="order_multiplier",
        factor="2",
        weekdays=["sat", "sun"],
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(days=31)).isoformat(),
    )
    order = {"id": "o", "total": "40.00", "currency": "EUR"}

    def preview(at: datetime) -> int:
        reply = api.call(
            "POST", "/v1/program/preview", key=admin_key, body={"order": order, "occurred_at": at.isoformat()}
        )
        assert reply.status == 200, reply.body
        return reply.body["points"]

    saturday_noon = datetime(2027, 5, 8, 12, tzinfo=UTC)  # Saturday in Helsinki too
    assert campaign["status"] == "scheduled"
    assert preview(saturday_noon) == 80
    assert preview(saturday_noon + timedelta(days=2)) == 40  # Monday
    assert preview(datetime(2027, 4, 24, 12, tzinfo=UTC)) == 40  # a Saturday before the campaign
    assert preview(datetime(2027, 5, 7, 22, 30, tzinfo=UTC)) == 80  # Friday in UTC, Saturday 01:30 in Helsinki


def test_a_scheduled_rule_can_be_ended_before_it_starts(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    start = datetime.now(UTC) + timedelta(days=3)
    later = add_rule(api, admin_key, name="Later bonus", kind="order_bonus", points=5, starts_at=start.isoformat())
    order = {"id": "o", "total": "10.00", "currency": "EUR"}

    ended = api.call("POST", f"/v1/program/rules/{later['id']}/end", key=admin_key)
    again = api.call("POST", f"/v1/program/rules/{later['id']}/end", key=admin_key)
    fetched = api.call("GET", f"/v1/program/rules/{later['id']}", key=admin_key)
    preview = api.call(
        "POST",
        "/v1/program/preview",
        key=admin_key,
        body={"order": order, "occurred_at": (start + timedelta(days=1)).isoformat()},
    )

    assert later["status"] == "scheduled"
    assert ended.status == 200, ended.body
    assert ended.body["status"] == "ended"
    assert ended.body["starts_at"] == later["starts_at"] and ended.body["ends_at"] < later["starts_at"]
    assert again.status == 200 and again.body == ended.body  # ending it again keeps its end
    assert fetched.status == 200 and fetched.body == ended.body
    assert preview.body["points"] == 10  # the bonus never applies


def test_an_order_that_earns_only_its_milestone_is_credited_as_the_preview_says(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    add_rule(api, admin_key, name="First order", kind="milestone", at=1, points=100)
    member = api.enrol(admin_key)
    order = {"id": "o-1", "total": "0.50", "currency": "EUR"}  # 0 points at 1 per euro, rounded down

    preview = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": order, "member_id": member})
    earned = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="o-1", body={"order": order})
    second = api.call(
        "POST",
        f"/v1/members/{member}/earn",
        key=admin_key,
        idempotency_key="o-2",
        body={"order": {**order, "id": "o-2"}},
    )

    assert preview.status == 200 and preview.body["points"] == 100, preview.body
    assert earned.status == 201 and earned.body["transaction"]["points"] == 100, earned.body
    assert [s["source"] for s in earned.body["transaction"]["breakdown"]] == ["base", "rule"]
    # The second order reaches no milestone and earns nothing: refused, as before
    assert second.status == 422 and second.error_code() == "amount_too_small", second.body
    assert api.balance(admin_key, member)["available"] == 100


def test_invalid_rules_and_orders_are_refused_and_change_nothing(api: Api, admin_key: str, program: dict) -> None:
    member = api.enrol(admin_key)
    bad_rules = {
        "multiplier without factor": {"name": "x", "kind": "line_multiplier", "categories": ["c"]},
        "factor of 1": {"name": "x", "kind": "order_multiplier", "factor": "1"},
        "line multiplier matching nothing": {"name": "x", "kind": "line_multiplier", "factor": "2"},
        "bonus without points": {"name": "x", "kind": "order_bonus"},
        "bonus with a factor": {"name": "x", "kind": "order_bonus", "points": 5, "factor": "2"},
        "ends before it starts": {
            "name": "x",
            "kind": "order_bonus",
            "points": 5,
            "starts_at": "2027-01-02T00:00:00Z",
            "ends_at": "2027-01-01T00:00:00Z",
        },
        "unknown weekday": {"name": "x", "kind": "order_multiplier", "factor": "2", "weekdays": ["caturday"]},
    }
    for label, rule in bad_rules.items():
        reply = api.call("POST", "/v1/program/rules", key=admin_key, body=rule)
        assert reply.status == 400 and reply.error_code() == "invalid_request", label

    bad_orders = {
        "another currency": {**ORDER, "currency": "USD"},
        "a price with 3 decimals": {**ORDER, "lines": [{**LATTE, "unit_price": "3.505"}]},
        "a zero quantity": {**ORDER, "lines": [{**LATTE, "quantity": 0}]},
    }
    for label, order in bad_orders.items():
        reply = api.call(
            "POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key=label[:8], body={"order": order}
        )
        assert reply.status == 400 and reply.error_code() == "invalid_request", label
    both = api.call(
        "POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="both", body={"order": ORDER, "points": 5}
    )
    assert both.status == 400
    assert [rule["id"] for rule in api.call("GET", "/v1/program/rules", key=admin_key).body["data"]] == [
        program["coffee"]["id"],
        program["big"]["id"],
    ]
    assert api.balance(admin_key, member)["available"] == 0


def test_another_tenants_key_sees_no_rule(api: Api, admin_key: str, other_admin_key: str, program: dict) -> None:
    rule_id = program["coffee"]["id"]

    listed = api.call("GET", "/v1/program/rules", key=other_admin_key)
    fetched = api.call("GET", f"/v1/program/rules/{rule_id}", key=other_admin_key)
    ended = api.call("POST", f"/v1/program/rules/{rule_id}/end", key=other_admin_key)
    preview = api.call("POST", "/v1/program/preview", key=other_admin_key, body={"order": ORDER})

    assert listed.status == 200 and listed.body["data"] == []
    assert fetched.status == 404 and ended.status == 404
    assert preview.body["breakdown"] == [{"source": "base", "name": "Base rate", "points": 25, "rule_id": None}]
    assert api.call("GET", f"/v1/program/rules/{rule_id}", key=admin_key).body["status"] == "active"


# --- activities and milestones ------------------------------------------------------------------


def activity(api: Api, key: str, member: str, kind: str, idempotency_key: str, **body: Any) -> Any:
    return api.call(
        "POST",
        f"/v1/members/{member}/activities",
        key=key,
        idempotency_key=idempotency_key,
        body={"type": kind, **body},
    )


def test_a_review_earns_50_points_at_most_5_times_a_month(api: Api, admin_key: str) -> None:
    rule = add_rule(api, admin_key, name="Review", kind="activity", activity="review", points=50, limit=5, per="month")
    member, other = api.enrol(admin_key), api.enrol(admin_key)

    replies = [activity(api, admin_key, member, "review", f"r-{n}", reference=f"review-{n}") for n in range(6)]
    retry_of_fifth = activity(api, admin_key, member, "review", "r-4", reference="review-4")
    others = activity(api, admin_key, other, "review", "o-1")

    assert [reply.status for reply in replies] == [201] * 5 + [422]
    assert replies[5].error_code() == "limit_reached"
    assert replies[5].body["error"]["details"]["limits"] == [{"rule_id": rule["id"], "limit": 5, "per": "month"}]
    assert retry_of_fifth.status == 201 and retry_of_fifth.body == replies[4].body
    assert retry_of_fifth.headers["idempotent-replayed"] == "true"
    first = replies[0].body["transaction"]
    assert (first["points"], first["reference"], first["metadata"]) == (50, "review-0", {"activity": "review"})
    assert first["breakdown"] == [{"source": "rule", "name": "Review", "points": 50, "rule_id": rule["id"]}]
    assert api.balance(admin_key, member)["available"] == 250
    assert others.status == 201  # the allowance is per member
    unrewarded = activity(api, admin_key, member, "social_follow", "f-1")
    assert unrewarded.status == 422 and unrewarded.error_code() == "activity_not_rewarded"
    assert api.balance(admin_key, member)["available"] == 250


def test_a_retried_activity_replays_when_the_first_attempt_used_one_of_its_allowances_up(
    api: Api, admin_key: str
) -> None:
    """Two rules reward a review: one once a day, one every time. The retry of the first
    review (same key, same body) finds the daily allowance used up by that very review, so the
    rules now give less; it is still the same request, so it replays."""
    add_rule(api, admin_key, name="Every review", kind="activity", activity="review", points=10)
    daily = add_rule(
        api,
        admin_key,
        name="First review of the day",
        kind="activity",
        activity="review",
        points=25,
        limit=1,
        per="day",
    )
    member = api.enrol(admin_key)

    first = activity(api, admin_key, member, "review", "r-1", reference="review-1")
    retry = activity(api, admin_key, member, "review", "r-1", reference="review-1")
    second = activity(api, admin_key, member, "review", "r-2", reference="review-2")
    other_body = activity(api, admin_key, member, "review", "r-1", reference="review-9")

    assert first.status == 201 and first.body["transaction"]["points"] == 35, first.body
    assert retry.status == 201, retry.body
    assert retry.body == first.body and retry.headers["idempotent-replayed"] == "true"
    assert second.status == 201 and second.body["transaction"]["points"] == 10  # the daily one is used up
    assert [share["rule_id"] for share in first.body["transaction"]["breakdown"]][1] == daily["id"]
    assert other_body.status == 422 and other_body.error_code() == "idempotency_key_reused"
    assert api.balance(admin_key, member)["available"] == 45


def test_a_signup_bonus_is_given_once_ever(api: Api, admin_key: str) -> None:
    add_rule(api, admin_key, name="Welcome", kind="activity", activity="signup", points=100, limit=1, per="ever")
    member = api.enrol(admin_key)

    first = activity(api, admin_key, member, "signup", "s-1")
    second = activity(api, admin_key, member, "signup", "s-2")

    assert first.status == 201 and second.status == 422 and second.error_code() == "limit_reached"
    assert api.balance(admin_key, member)["available"] == 100


def test_a_milestone_every_5th_order_and_a_bigger_one_at_the_10th(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    every_5th = add_rule(api, admin_key, name="Every 5th", kind="milestone", every=5, points=30)
    tenth = add_rule(api, admin_key, name="10th order", kind="milestone", at=10, points=200)
    member = api.enrol(admin_key)

    points = []
    for n in range(1, 12):
        order = {"id": f"order-{n}", "total": "10.00", "currency": "EUR"}
        reply = api.call(
            "POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key=f"o-{n}", body={"order": order}
        )
        assert reply.status == 201, reply.body
        points.append(reply.body["transaction"]["points"])
    retried_5th = api.call(
        "POST",
        f"/v1/members/{member}/earn",
        key=admin_key,
        idempotency_key="o-5",
        body={"order": {"id": "order-5", "total": "10.00", "currency": "EUR"}},
    )
    plain = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="p", body={"points": 1})

    assert points == [10, 10, 10, 10, 40, 10, 10, 10, 10, 240, 10]
    assert retried_5th.body["transaction"]["points"] == 40  # a replay: not counted again
    assert plain.status == 201  # earns without an order do not count as orders
    tenth_order = api.ledger(admin_key, member)[2]  # newest first: plain, order-11, order-10
    assert [share["rule_id"] for share in tenth_order["breakdown"]] == [None, every_5th["id"], tenth["id"]]
    assert api.balance(admin_key, member)["available"] == sum(points) + 1


def test_invalid_activity_and_milestone_rules_are_refused(api: Api, admin_key: str) -> None:
    bad = {
        "activity without type": {"name": "x", "kind": "activity", "points": 5},
        "unknown activity type": {"name": "x", "kind": "activity", "activity": "dance", "points": 5},
        "limit without per": {"name": "x", "kind": "activity", "activity": "review", "points": 5, "limit": 2},
        "milestone with both": {"name": "x", "kind": "milestone", "every": 3, "at": 3, "points": 5},
        "milestone every 1": {"name": "x", "kind": "milestone", "every": 1, "points": 5},
        "activity with every": {"name": "x", "kind": "activity", "activity": "review", "points": 5, "every": 3},
    }
    for label, rule in bad.items():
        reply = api.call("POST", "/v1/program/rules", key=admin_key, body=rule)
        assert reply.status == 400 and reply.error_code() == "invalid_request", label
    custom = add_rule(api, admin_key, name="Quiz", kind="activity", activity="custom:quiz", points=5)
    assert (custom["activity"], custom["limit"], custom["per"]) == ("custom:quiz", None, None)
