"""Paid membership through the HTTP API, on both emulators: plans configured and validated, a
period recorded (the plan's tier and multiplier in the earn's breakdown and the member view,
the join bonus in the same transaction), renewals, replays, a plan that ends before the lapse
job runs granting nothing, the job lapsing once with its events, cancellation, and another
tenant seeing none of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.events import EventType
from chalicelib.services import platform
from tests.support.checks import assert_error, assert_invalid
from tests.support.http import Api

TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "500", "multiplier": "1.5", "perks": ["Free delivery"]},
        {"name": "gold", "threshold": "2000", "multiplier": "2", "perks": ["Free delivery", "Lounge access"]},
    ],
}
PREMIUM = {
    "plan_id": "premium",
    "name": "Premium membership",
    "tier": "gold",
    "multiplier": "1.5",
    "perks": ["Free returns"],
    "join_bonus": 100,
}
BOOST = {"plan_id": "boost", "name": "Boost", "multiplier": "2"}
PLAN_EVENTS = frozenset(
    {
        EventType.SUBSCRIPTION_STARTED,
        EventType.SUBSCRIPTION_RENEWED,
        EventType.SUBSCRIPTION_LAPSED,
        EventType.SUBSCRIPTION_CANCELLED,
        EventType.TIER_CHANGED,
    }
)


def at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def period(reference: str, start: timedelta, end: timedelta, plan_id: str = "premium") -> dict[str, Any]:
    return {"plan_id": plan_id, "period_start": at(start), "period_end": at(end), "reference": reference}


def record(api: Api, key: str, member: str, body: dict[str, Any], idempotency_key: str) -> Any:
    return api.call("POST", f"/v1/members/{member}/subscriptions", key=key, body=body, idempotency_key=idempotency_key)


def recorded(api: Api, key: str, member: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    reply = record(api, key, member, body, idempotency_key)
    assert reply.status == 201, reply.body
    return reply.body


def earn_order(api: Api, key: str, member: str, order_id: str, total: str) -> dict[str, Any]:
    reply = api.earn(key, member, order_id, order={"id": order_id, "total": total, "currency": "EUR"})
    assert reply.status == 201, reply.body
    return reply.body


def plan_events(tenant: str = "acme") -> list[tuple[str, dict[str, Any]]]:
    now = datetime.now(UTC)
    later = now + timedelta(seconds=10)  # past the feed's settle window
    feed = platform().for_tenant_id(tenant, clock=lambda: later, created_at=now - timedelta(days=1)).feed
    page = feed.read(after=None, types=PLAN_EVENTS, limit=100)
    return [(str(event.type), dict(event.notice.data)) for event in page.events if event.notice is not None]


def run_job(api: Api, key: str, as_of: str | None = None) -> dict[str, Any]:
    reply = api.call("POST", "/v1/jobs/lapse-subscriptions/run", key=key, body={"as_of": as_of} if as_of else {})
    assert reply.status == 201, reply.body
    return reply.body


@pytest.fixture
def program(api: Api, admin_key: str) -> dict[str, Any]:
    """10 points per euro; Silver at 500 points, Gold at 2 000; Premium grants Gold and x1.5."""
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=TIERS).status == 200
    reply = api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": [PREMIUM, BOOST]})
    assert reply.status == 200, reply.body
    return reply.body


# --- the catalog --------------------------------------------------------------------------------


def test_plans_are_configured_and_read_back_by_their_tenant_only(
    api: Api, admin_key: str, other_admin_key: str, program: dict[str, Any]
) -> None:
    listed = api.call("GET", "/v1/program/plans", key=api.create_key(admin_key, "read"))
    other = api.call("GET", "/v1/program/plans", key=other_admin_key)

    assert program["data"] == [
        {**PREMIUM},
        {"plan_id": "boost", "name": "Boost", "tier": None, "multiplier": "2", "perks": [], "join_bonus": 0},
    ]
    assert program["updated_at"] is not None
    assert listed.status == 200 and listed.body == program
    assert other.status == 200 and other.body == {"data": [], "updated_at": None}


@pytest.mark.parametrize(
    ("plans", "field"),
    [
        ([{**PREMIUM, "tier": "platinum"}], "plans.0.tier"),  # not a tier of the program
        ([PREMIUM, {**BOOST, "plan_id": "premium"}], "plans"),  # an id twice
        ([{"plan_id": "empty", "name": "Nothing"}], "plans.0"),  # grants nothing
        ([{**PREMIUM, "multiplier": "0.5"}], "plans.0.multiplier"),
        ([{**PREMIUM, "join_bonus": -1}], "plans.0.join_bonus"),
        ([{**PREMIUM, "plan_id": "Premium Plus"}], "plans.0.plan_id"),
        ([{**PREMIUM, "price": "99.00"}], "plans.0.price"),  # the API takes no payment
    ],
)
def test_invalid_plans_are_refused_with_a_400_that_changes_nothing(
    api: Api, admin_key: str, program: dict[str, Any], plans: list[dict[str, Any]], field: str
) -> None:
    reply = api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": plans})

    assert_invalid(reply, field)
    assert api.call("GET", "/v1/program/plans", key=admin_key).body == program


def test_a_plan_granting_a_tier_needs_a_tier_program(api: Api, admin_key: str) -> None:
    reply = api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": [PREMIUM]})

    fields = assert_invalid(reply, "plans.0.tier")
    assert "configure tiers first" in fields[0]["message"]
    assert api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": [BOOST]}).status == 200


# --- recording, benefits ------------------------------------------------------------------------


def test_a_recorded_period_grants_the_plan_tier_multiplier_and_bonus_at_once(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    writer = api.create_key(admin_key, "write")

    # When the billing reports a paid year of Premium
    body = period("inv-1", -timedelta(minutes=1), timedelta(days=365))
    first = recorded(api, writer, member, body, "sub-1")

    # Then the subscription started, with its join bonus credited in the same request
    subscription = first["subscription"]
    assert first["outcome"] == "started"
    assert subscription["id"].startswith("sub_") and subscription["member_id"] == member
    assert (subscription["plan_id"], subscription["status"], subscription["tier"]) == ("premium", "active", "gold")
    assert (subscription["multiplier"], subscription["join_bonus"], subscription["period_count"]) == ("1.5", 100, 1)
    assert datetime.fromisoformat(subscription["ends_at"]) == datetime.fromisoformat(body["period_end"])
    assert [p["reference"] for p in subscription["periods"]] == ["inv-1"]
    assert first["join_bonus"]["points"] == 100
    (bonus,) = api.ledger(admin_key, member)
    assert (bonus["id"], bonus["type"], bonus["points"]) == (first["join_bonus"]["transaction_id"], "earn", 100)
    assert bonus["idempotency_key"] == f"plan-bonus:premium:{member}"
    assert bonus["breakdown"] == [
        {"source": "plan", "name": "premium join bonus", "points": 100, "rule_id": "plan:premium"}
    ]

    # And the member view shows Gold by the plan, the plan and its end, and the earned tier's own progress
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["tier"]) == (100, "gold")
    assert balance["plan"] == {
        "subscription_id": subscription["id"],
        "plan_id": "premium",
        "name": "Premium membership",
        "tier": "gold",
        "multiplier": "1.5",
        "perks": ["Free returns"],
        "starts_at": subscription["starts_at"],
        "ends_at": subscription["ends_at"],
    }
    assert balance["tier_status"]["tier"] is None
    assert balance["tier_status"]["progress"] == {"next_tier": "silver", "remaining": 400, "metric": "points"}

    # When the member orders for 20 euros
    earned = earn_order(api, admin_key, member, "o-1", "20.00")

    # Then the order earns the base, Gold's x2 (the plan's tier) and the plan's own x1.5, each a line
    assert earned["transaction"]["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 200, "rule_id": None},
        {"source": "tier", "name": "gold tier", "points": 200, "rule_id": "tier:gold"},
        {"source": "plan", "name": "premium plan", "points": 100, "rule_id": "plan:premium"},
    ]
    assert earned["transaction"]["points"] == 500 and earned["balance"]["tier"] == "gold"
    # And the points count towards the tier earned on its own: Silver, kept under the plan's Gold
    after = api.balance(admin_key, member)
    assert (after["tier"], after["tier_status"]["tier"], after["tier_status"]["qualifying"]) == ("gold", "silver", 600)
    assert after["tier_status"]["progress"] == {"next_tier": "gold", "remaining": 1400, "metric": "points"}

    # And the feed has the start and the change of tier
    events = plan_events()
    assert [(kind, data.get("reason")) for kind, data in events] == [
        ("subscription.started", None),
        ("tier.changed", "plan_started"),
        ("tier.changed", "qualified"),  # the earned tier, which the plan's outranks
    ]
    assert events[0][1]["reference"] == "inv-1" and events[0][1]["join_bonus"] == 100
    assert (events[1][1]["from_tier"], events[1][1]["to_tier"], events[1][1]["direction"]) == (None, "gold", "upgrade")
    assert events[1][1]["subscription_id"] == subscription["id"]


def test_a_plan_without_a_tier_adds_its_multiplier_only(api: Api, admin_key: str, program: dict[str, Any]) -> None:
    member = api.enrol(admin_key)
    recorded(api, admin_key, member, period("inv-b", -timedelta(minutes=1), timedelta(days=30), "boost"), "b-1")

    earned = earn_order(api, admin_key, member, "o-1", "10.00")

    assert earned["transaction"]["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 100, "rule_id": None},
        {"source": "plan", "name": "boost plan", "points": 100, "rule_id": "plan:boost"},
    ]
    balance = api.balance(admin_key, member)
    assert (balance["tier"], balance["plan"]["tier"], balance["plan"]["multiplier"]) == (None, None, "2")
    assert api.ledger(admin_key, member)[-1]["reference"] == "o-1"  # no join bonus for Boost


def test_the_preview_for_a_subscribed_member_applies_the_plan_as_the_earn_does(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    recorded(api, admin_key, member, period("inv-p", -timedelta(minutes=1), timedelta(days=30)), "p-1")
    order = {"id": "o-9", "total": "10.00", "currency": "EUR"}

    preview = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": order, "member_id": member})
    assert preview.status == 200, preview
    earned = earn_order(api, admin_key, member, "o-9", "10.00")

    # Then the preview names Gold (granted by the plan) and carries the plan's share, as the earn
    assert preview.body["tier"] == "gold"
    assert "plan:premium" in {share["rule_id"] for share in preview.body["breakdown"]}
    assert preview.body["breakdown"] == earned["transaction"]["breakdown"]
    assert preview.body["points"] == earned["transaction"]["points"]


def test_a_gold_only_reward_is_open_to_a_member_gold_by_the_plan(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    lounge = api.call(
        "POST",
        "/v1/rewards",
        key=admin_key,
        body={"name": "Lounge", "type": "experience", "points_cost": 60, "tiers": ["gold"]},
    )
    assert lounge.status == 201, lounge.body
    member = api.enrol(admin_key)
    path = f"/v1/members/{member}/rewards/{lounge.body['id']}/redeem"
    recorded(api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=30)), "k-1")

    redeemed = api.call("POST", path, key=admin_key, idempotency_key="lounge-1")

    assert redeemed.status == 201, redeemed.body
    assert (redeemed.body["transaction"]["points"], redeemed.body["balance"]["tier"]) == (-60, "gold")


# --- idempotency ----------------------------------------------------------------------------------


def test_replays_answer_the_first_result_and_a_reference_is_recorded_once(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    body = period("inv-1", -timedelta(minutes=1), timedelta(days=365))
    first = recorded(api, admin_key, member, body, "sub-1")

    # The same key and body: the first answer, marked replayed
    replay = record(api, admin_key, member, body, "sub-1")
    assert replay.status == 201 and replay.body == first
    assert replay.headers["idempotent-replayed"] == "true"
    # The same key with another body (or another member): 422, nothing written
    other = record(api, admin_key, member, {**body, "reference": "inv-2"}, "sub-1")
    details = assert_error(other, 422, "idempotency_key_reused")
    assert details == {"idempotency_key": "sub-1", "subscription_id": first["subscription"]["id"]}
    # Another key for the reference already recorded, same period: nothing more written
    again = recorded(api, admin_key, member, body, "sub-2")
    assert again["outcome"] == "already_recorded" and again["join_bonus"] is None
    assert again["subscription"]["id"] == first["subscription"]["id"]
    assert again["subscription"]["period_count"] == 1
    # The reference with another period: 409
    moved = record(api, admin_key, member, {**body, "period_end": at(timedelta(days=400))}, "sub-3")
    assert assert_error(moved, 409, "subscription_reference_exists") == {"reference": "inv-1"}

    # One bonus, one subscription, one start
    assert [entry["points"] for entry in api.ledger(admin_key, member)] == [100]
    listed = api.call("GET", f"/v1/members/{member}/subscriptions", key=admin_key)
    assert listed.status == 200 and [s["id"] for s in listed.body["data"]] == [first["subscription"]["id"]]
    assert [kind for kind, _ in plan_events()] == ["subscription.started", "tier.changed"]


def test_renewals_extend_and_conflicting_periods_are_refused(api: Api, admin_key: str, program: dict[str, Any]) -> None:
    member = api.enrol(admin_key)
    first = recorded(api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=30)), "k-1")
    end = datetime.fromisoformat(first["subscription"]["ends_at"])

    # A consecutive period (starting where the first ends) renews it
    follow = {"plan_id": "premium", "period_start": end.isoformat(), "reference": "inv-2"}
    renewed = recorded(api, admin_key, member, {**follow, "period_end": (end + timedelta(days=30)).isoformat()}, "k-2")
    # An overlapping one extends it further
    overlap = {
        "plan_id": "premium",
        "period_start": (end + timedelta(days=20)).isoformat(),
        "period_end": (end + timedelta(days=60)).isoformat(),
        "reference": "inv-3",
    }
    extended = recorded(api, admin_key, member, overlap, "k-3")
    # One within what is covered is recorded, extending nothing
    inside = recorded(api, admin_key, member, period("inv-4", timedelta(days=1), timedelta(days=2)), "k-4")

    subscription_id = first["subscription"]["id"]
    assert (renewed["outcome"], extended["outcome"], inside["outcome"]) == ("renewed", "renewed", "recorded")
    assert {renewed["subscription"]["id"], extended["subscription"]["id"], inside["subscription"]["id"]} == {
        subscription_id
    }
    assert datetime.fromisoformat(renewed["subscription"]["ends_at"]) == end + timedelta(days=30)
    assert datetime.fromisoformat(inside["subscription"]["ends_at"]) == end + timedelta(days=60)
    assert inside["subscription"]["period_count"] == 4
    assert [p["reference"] for p in inside["subscription"]["periods"]] == ["inv-1", "inv-2", "inv-3", "inv-4"]
    assert renewed["join_bonus"] is None  # the bonus is for joining only
    assert api.balance(admin_key, member)["plan"]["ends_at"] == inside["subscription"]["ends_at"]

    # A period after a gap, and another plan while this one runs: 409, nothing written
    gap = period("inv-5", timedelta(days=200), timedelta(days=230))
    details = assert_error(record(api, admin_key, member, gap, "k-5"), 409, "period_not_contiguous")
    assert details["subscription_id"] == subscription_id
    boost = period("inv-6", -timedelta(minutes=1), timedelta(days=30), "boost")
    details = assert_error(record(api, admin_key, member, boost, "k-6"), 409, "subscription_active")
    assert (details["subscription_id"], details["plan_id"]) == (subscription_id, "premium")

    events = plan_events()
    assert [kind for kind, _ in events] == [
        "subscription.started",
        "tier.changed",
        "subscription.renewed",
        "subscription.renewed",
    ]
    assert [data["reference"] for kind, data in events if kind == "subscription.renewed"] == ["inv-2", "inv-3"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"period_end": at(-timedelta(days=1))}, "period_end"),  # ended already
        ({"period_start": at(timedelta(days=10)), "period_end": at(timedelta(days=5))}, "period_end"),
        ({"period_start": at(timedelta(days=1)), "period_end": at(timedelta(days=40))}, "period_start"),  # future
        ({"period_end": at(timedelta(days=2000))}, "period_end"),  # longer than 5 years
        ({"period_start": "2026-01-01T00:00:00"}, "period_start"),  # no offset
    ],
)
def test_invalid_periods_are_refused_with_a_400_that_changes_nothing(
    api: Api, admin_key: str, program: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    member = api.enrol(admin_key)

    reply = record(
        api, admin_key, member, {**period("inv-1", -timedelta(minutes=1), timedelta(days=30)), **change}, "k"
    )

    assert_invalid(reply, field)
    assert api.balance(admin_key, member)["plan"] is None
    assert api.call("GET", f"/v1/members/{member}/subscriptions", key=admin_key).body["data"] == []


def test_unknown_plans_and_members_are_404(api: Api, admin_key: str, program: dict[str, Any]) -> None:
    member = api.enrol(admin_key)

    unknown_plan = record(
        api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=3), "gold"), "k"
    )
    ghost = "mem_01JD0000000000000000000000"
    unknown_member = record(api, admin_key, ghost, period("inv-1", -timedelta(minutes=1), timedelta(days=3)), "k2")

    assert assert_error(unknown_plan, 404, "not_found") == {"plan_id": "gold"}
    assert_error(unknown_member, 404, "not_found")
    assert_error(api.call("GET", f"/v1/members/{ghost}/subscriptions", key=admin_key), 404, "not_found")
    cancel = api.call(
        "POST", f"/v1/members/{member}/subscriptions/sub_01JD0000000000000000000000/cancel", key=admin_key
    )
    assert_error(cancel, 404, "not_found")


# --- the end of a plan ------------------------------------------------------------------------------


def test_a_plan_past_its_end_grants_nothing_before_the_job_which_then_lapses_it_once(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    bystander = api.enrol(admin_key)
    recorded(api, admin_key, bystander, period("inv-b", -timedelta(minutes=1), timedelta(days=30)), "k-b")
    # Given a period that ends in a few seconds
    end = datetime.now(UTC) + timedelta(seconds=3)
    body = {"plan_id": "premium", "period_start": at(-timedelta(minutes=1)), "period_end": end.isoformat()}
    started = recorded(api, admin_key, member, {**body, "reference": "inv-1"}, "k-1")
    assert api.balance(admin_key, member)["tier"] == "gold"

    # When it has ended, before the lapse job has run
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.2)
    earned = earn_order(api, admin_key, member, "o-1", "20.00")
    balance = api.balance(admin_key, member)
    listed = api.call("GET", f"/v1/members/{member}/subscriptions", key=admin_key).body["data"]

    # Then the plan grants nothing: no tier, no plan share, no plan in the view, the subscription lapsed
    assert earned["transaction"]["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 200, "rule_id": None}
    ]
    assert earned["balance"]["tier"] is None
    assert (balance["tier"], balance["plan"]) == (None, None)
    assert (listed[0]["status"], listed[0]["lapsed_at"]) == ("lapsed", started["subscription"]["ends_at"])
    assert [kind for kind, _ in plan_events() if kind == "subscription.lapsed"] == []  # not recorded yet

    # When the job runs, twice
    first = run_job(api, admin_key)
    second = run_job(api, admin_key)

    # Then it lapsed that subscription once (the bystander's runs on), with its events
    assert first["counts"] == {"subscriptions": 1, "lapsed": 1, "skipped": 0}, first
    assert second["counts"] == {"subscriptions": 0, "lapsed": 0, "skipped": 0}, second
    lapses = [(kind, data) for kind, data in plan_events() if data["member_id"] == member]
    assert [(kind, data.get("reason")) for kind, data in lapses] == [
        ("subscription.started", None),
        ("tier.changed", "plan_started"),
        ("subscription.lapsed", None),
        ("tier.changed", "plan_lapsed"),
    ]
    assert (lapses[3][1]["from_tier"], lapses[3][1]["to_tier"], lapses[3][1]["direction"]) == (
        "gold",
        None,
        "downgrade",
    )
    runs = api.call("GET", "/v1/jobs/runs", key=admin_key).body["data"]
    assert [(r["job"], r["status"]) for r in runs[:2]] == [("lapse-subscriptions", "succeeded")] * 2
    assert api.balance(admin_key, bystander)["plan"]["plan_id"] == "premium"

    # When the billing reports the renewal late (consecutive), the subscription resumes, without a second bonus
    renewal = {"plan_id": "premium", "period_start": end.isoformat(), "period_end": at(timedelta(days=30))}
    resumed = recorded(api, admin_key, member, {**renewal, "reference": "inv-2"}, "k-2")
    assert (resumed["outcome"], resumed["subscription"]["id"]) == ("renewed", started["subscription"]["id"])
    assert resumed["subscription"]["status"] == "active" and resumed["join_bonus"] is None
    assert api.balance(admin_key, member)["tier"] == "gold"
    assert plan_events()[-2][1]["resumed"] is True
    assert [e["points"] for e in api.ledger(admin_key, member) if e["idempotency_key"].startswith("plan-bonus:")] == [
        100
    ]


def test_another_plan_after_the_end_lapses_the_previous_one_in_the_same_write(
    api: Api, admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    end = datetime.now(UTC) + timedelta(seconds=2)
    body = {"plan_id": "premium", "period_start": at(-timedelta(minutes=1)), "period_end": end.isoformat()}
    premium = recorded(api, admin_key, member, {**body, "reference": "inv-1"}, "k-1")
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.2)

    # When a period of another plan is recorded after Premium ended, before the job ran
    boost = recorded(api, admin_key, member, period("inv-2", -timedelta(minutes=1), timedelta(days=30), "boost"), "k-2")

    # Then Premium is lapsed by that write, with its events, and Boost started
    assert boost["outcome"] == "started" and boost["subscription"]["plan_id"] == "boost"
    listed = api.call("GET", f"/v1/members/{member}/subscriptions", key=admin_key).body["data"]
    assert [(s["plan_id"], s["status"]) for s in listed] == [("boost", "active"), ("premium", "lapsed")]
    assert [(kind, data["plan_id"], data.get("reason")) for kind, data in plan_events()] == [
        ("subscription.started", "premium", None),
        ("tier.changed", "premium", "plan_started"),
        ("subscription.lapsed", "premium", None),
        ("tier.changed", "premium", "plan_lapsed"),
        ("subscription.started", "boost", None),
    ]
    assert plan_events()[3][1]["subscription_id"] == premium["subscription"]["id"]
    assert run_job(api, admin_key)["counts"]["lapsed"] == 0  # nothing left for the job


def test_the_job_lapses_by_as_of_and_records_each_run(api: Api, admin_key: str, program: dict[str, Any]) -> None:
    member = api.enrol(admin_key)
    started = recorded(api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=30)), "k-1")

    early = run_job(api, admin_key, at(timedelta(days=29)))
    due = run_job(api, admin_key, at(timedelta(days=31)))
    again = run_job(api, admin_key, at(timedelta(days=32)))

    assert early["counts"] == {"subscriptions": 0, "lapsed": 0, "skipped": 0}
    assert due["counts"] == {"subscriptions": 1, "lapsed": 1, "skipped": 0}
    assert again["counts"] == {"subscriptions": 0, "lapsed": 0, "skipped": 0}
    (listed,) = api.call("GET", f"/v1/members/{member}/subscriptions", key=admin_key).body["data"]
    assert (listed["id"], listed["status"], listed["lapsed_at"]) == (
        started["subscription"]["id"],
        "lapsed",
        started["subscription"]["ends_at"],
    )
    assert api.balance(admin_key, member)["plan"] is None


def test_cancelling_ends_the_benefits_now(api: Api, admin_key: str, program: dict[str, Any]) -> None:
    member = api.enrol(admin_key)
    started = recorded(api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=365)), "k-1")
    path = f"/v1/members/{member}/subscriptions/{started['subscription']['id']}/cancel"

    cancelled = api.call("POST", path, key=api.create_key(admin_key, "write"))
    again = api.call("POST", path, key=admin_key)

    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    assert (
        cancelled.body["cancelled_at"] is not None and cancelled.body["ends_at"] == started["subscription"]["ends_at"]
    )
    assert again.status == 200 and again.body == cancelled.body
    balance = api.balance(admin_key, member)
    assert (balance["tier"], balance["plan"], balance["available"]) == (None, None, 100)  # the bonus stays
    earned = earn_order(api, admin_key, member, "o-1", "10.00")
    assert [share["source"] for share in earned["transaction"]["breakdown"]] == ["base"]
    assert [(kind, data.get("reason")) for kind, data in plan_events()][-2:] == [
        ("subscription.cancelled", None),
        ("tier.changed", "plan_cancelled"),
    ]
    # The job has nothing left to lapse; another plan may be recorded now
    assert run_job(api, admin_key, at(timedelta(days=400)))["counts"]["subscriptions"] == 0
    boost = recorded(api, admin_key, member, period("inv-2", -timedelta(minutes=1), timedelta(days=30), "boost"), "k-2")
    assert boost["outcome"] == "started" and boost["subscription"]["plan_id"] == "boost"


def test_another_tenant_can_neither_see_nor_record(
    api: Api, admin_key: str, other_admin_key: str, program: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    started = recorded(api, admin_key, member, period("inv-1", -timedelta(minutes=1), timedelta(days=30)), "k-1")
    assert api.call("PUT", "/v1/program/plans", key=other_admin_key, body={"plans": [BOOST]}).status == 200
    base = f"/v1/members/{member}/subscriptions"

    theirs = record(
        api, other_admin_key, member, period("inv-9", -timedelta(minutes=1), timedelta(days=3), "boost"), "k-1"
    )
    listed = api.call("GET", base, key=other_admin_key)
    cancel = api.call("POST", f"{base}/{started['subscription']['id']}/cancel", key=other_admin_key)

    assert_error(theirs, 404, "not_found")
    assert_error(listed, 404, "not_found")
    assert_error(cancel, 404, "not_found")
    assert api.balance(admin_key, member)["plan"]["subscription_id"] == started["subscription"]["id"]
    assert plan_events("globex") == []


def test_a_retry_whose_first_attempt_lands_between_its_looks_answers_the_first_result(
    api: Api, admin_key: str, program: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a period recorded with an Idempotency-Key
    member = api.enrol(admin_key)
    body = period("inv-race", timedelta(minutes=-1), timedelta(days=30))
    first = recorded(api, admin_key, member, body, "race-1")
    assert first["outcome"] == "started"

    # When the same request with the same key is decided by a service that first looked for the
    # key before that attempt landed (its first look finds nothing), then finds the reference
    service = platform().for_tenant_id("acme").subscriptions
    store = service._store
    looks = {"n": 0}
    real_get_request = store.get_request

    def first_look_misses(key: str) -> Any:
        looks["n"] += 1
        return None if looks["n"] == 1 else real_get_request(key)

    monkeypatch.setattr(store, "get_request", first_look_misses)
    from chalicelib.domain.plans import PeriodRequest

    request = PeriodRequest(
        plan_id="premium",
        period_start=datetime.fromisoformat(body["period_start"]),
        period_end=datetime.fromisoformat(body["period_end"]),
        reference="inv-race",
    )
    again = service.record(member, request, "race-1")

    # Then it answers the first attempt's result, replayed, not "already recorded"
    assert again.replayed is True
    assert again.outcome.value == "started"
    assert again.subscription.subscription_id == first["subscription"]["id"]
