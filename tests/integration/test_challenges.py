"""Challenges and badges over HTTP, on both emulators.

A brand sets challenges (orders, spend, activities, streaks) over a window, open to all or to
a tier or segment; each movement that advances one moves the member's progress in its own
transaction; completion credits its points as a ``challenge`` share of the completing
movement and awards its badge, once, with ``challenge.completed`` and ``badge.awarded``.
A brand without challenges reads nothing more per movement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.events import EventType
from chalicelib.persistence.challenges import ChallengeRepository
from chalicelib.services import platform
from tests.support.checks import assert_error, assert_invalid, tenant_state
from tests.support.http import Api

NOW = datetime.now(UTC)
WINDOW = {"starts_at": (NOW - timedelta(days=40)).isoformat(), "ends_at": (NOW + timedelta(days=30)).isoformat()}
THREE_ORDERS = {
    "name": "Three orders",
    "kind": "orders",
    "goal": 3,
    **WINDOW,
    "reward_points": 300,
    "badge": {"id": "regular", "name": "Regular", "description": "Three orders in a month"},
}


ZONE = ZoneInfo("Europe/Helsinki")  # the zone Api.create_tenant gives a tenant
TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "tiers": [
        {"name": "silver", "threshold": "500", "multiplier": "1"},
        {"name": "gold", "threshold": "2000", "multiplier": "1"},
    ],
}


def create(api: Api, key: str, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/challenges", key=key, body=body)
    assert reply.status == 201, reply
    return reply.body


def order(api: Api, key: str, member_id: str, order_id: str, total: str = "10.00", **extra: Any) -> dict[str, Any]:
    body = {"order": {"id": order_id, "total": total, "currency": "EUR"}, **extra}
    reply = api.earn(key, member_id, f"earn-{order_id}", **body)
    assert reply.status == 201, reply
    return reply.body


def challenges_of(api: Api, key: str, member_id: str) -> dict[str, dict[str, Any]]:
    reply = api.call("GET", f"/v1/members/{member_id}/challenges", key=key)
    assert reply.status == 200, reply
    return {item["challenge"]["name"]: item["progress"] for item in reply.body["data"]}


def badges_of(api: Api, key: str, member_id: str) -> list[tuple[str, str]]:
    reply = api.call("GET", f"/v1/members/{member_id}/badges", key=key)
    assert reply.status == 200, reply
    return [(item["badge"]["id"], item["challenge_id"]) for item in reply.body["data"]]


def events(*types: EventType) -> list[dict[str, Any]]:
    later = datetime.now(UTC) + timedelta(seconds=10)  # past the feed's settle window
    feed = platform().for_tenant_id("acme", clock=lambda: later, created_at=NOW - timedelta(days=1)).feed
    page = feed.read(after=None, types=frozenset(types), limit=100)
    return [{"type": str(event.type), **dict(event.notice.data)} for event in page.events if event.notice]


def challenge_shares(transaction: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    return [(s["name"], s["points"], s["rule_id"]) for s in transaction["breakdown"] if s["source"] == "challenge"]


def test_an_orders_challenge_completes_once_with_its_points_badge_and_events(api: Api, admin_key: str) -> None:
    # Given "three orders" rewarded with 300 points and a badge
    challenge = create(api, admin_key, **THREE_ORDERS)
    assert (challenge["kind"], challenge["goal"], challenge["status"]) == ("orders", "3", "active")
    member = api.enrol(admin_key, name="Ada")

    # When the member orders twice, the progress shows 2 of 3
    order(api, admin_key, member, "o-1")
    order(api, admin_key, member, "o-2")
    assert challenges_of(api, admin_key, member)["Three orders"] | {"updated_at": None} == {
        "value": "2",
        "goal": "3",
        "percent": 66,
        "completed": False,
        "completed_at": None,
        "updated_at": None,
    }
    # And the third order completes it: its own transaction carries the 300 points as a share
    third = order(api, admin_key, member, "o-3")
    assert challenge_shares(third["transaction"]) == [("Three orders", 300, challenge["id"])]
    assert third["transaction"]["points"] == 10 + 300
    # A replay of the completing order answers the same, and a fourth order adds nothing
    replay = api.earn(admin_key, member, "earn-o-3", order={"id": "o-3", "total": "10.00", "currency": "EUR"})
    assert replay.status == 201 and replay.body["transaction"] == third["transaction"]
    fourth = order(api, admin_key, member, "o-4")
    assert challenge_shares(fourth["transaction"]) == []

    # Then the balance holds the 4 orders and the reward once
    assert api.balance(admin_key, member)["available"] == 40 + 300
    progress = challenges_of(api, admin_key, member)["Three orders"]
    assert (progress["value"], progress["percent"], progress["completed"]) == ("3", 100, True)
    assert badges_of(api, admin_key, member) == [("regular", challenge["id"])]
    # And the feed holds one completion (naming the completing transaction) and one badge
    announced = events(EventType.CHALLENGE_COMPLETED, EventType.BADGE_AWARDED)
    assert [(e["type"], e["member_id"]) for e in announced] == [
        ("challenge.completed", member),
        ("badge.awarded", member),
    ]
    assert announced[0]["transaction_id"] == third["transaction"]["id"]
    assert (announced[0]["reward_points"], announced[0]["badge_id"]) == (300, "regular")
    assert (announced[1]["badge_id"], announced[1]["challenge_id"]) == ("regular", challenge["id"])


def test_a_members_challenge_and_badge_events_are_in_their_export(api: Api, admin_key: str) -> None:
    # Given a member who completed a challenge and got its badge
    create(api, admin_key, **THREE_ORDERS)
    member = api.enrol(admin_key, name="Ada")
    for number in range(3):
        order(api, admin_key, member, f"x-{number}")

    # Then the member's export holds both events (the notices are indexed per member)
    reply = api.call("GET", f"/v1/members/{member}/export", key=admin_key)
    assert reply.status == 200, reply
    exported = [e["type"] for e in reply.body["events"]]
    assert exported.count("challenge.completed") == 1 and exported.count("badge.awarded") == 1


def test_a_badge_is_held_once_whichever_challenge_awards_it(api: Api, admin_key: str) -> None:
    badge = {"id": "shopper", "name": "Shopper"}
    create(api, admin_key, name="One order", kind="orders", goal=1, **WINDOW, badge=badge)
    create(api, admin_key, name="Two orders", kind="orders", goal=2, **WINDOW, badge=badge, reward_points=5)
    member = api.enrol(admin_key)

    order(api, admin_key, member, "o-1")
    second = order(api, admin_key, member, "o-2")

    assert challenge_shares(second["transaction"])[0][:2] == ("Two orders", 5)
    assert [b for b, _ in badges_of(api, admin_key, member)] == ["shopper"]
    assert [e["type"] for e in events(EventType.BADGE_AWARDED)] == ["badge.awarded"]
    assert len(events(EventType.CHALLENGE_COMPLETED)) == 2


def test_a_spend_challenge_counts_totals_and_a_reversal_withdraws_its_order(api: Api, admin_key: str) -> None:
    create(api, admin_key, name="Spend 100", kind="spend", goal="100.00", **WINDOW, reward_points=50)
    member = api.enrol(admin_key)

    # An order of 60, then a refund of 20 of it, then its reversal by points
    order(api, admin_key, member, "o-1", "60.00")
    assert challenges_of(api, admin_key, member)["Spend 100"]["value"] == "60"
    refund = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        body={"reference": "o-1", "amount": "20.00"},
        idempotency_key="refund-1",
    )
    assert refund.status == 201, refund
    assert challenges_of(api, admin_key, member)["Spend 100"]["value"] == "40"
    full = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        body={"reference": "o-1", "points": 40},
        idempotency_key="reverse-1",
    )
    assert full.status == 201, full
    assert challenges_of(api, admin_key, member)["Spend 100"]["value"] == "0"

    # Then two orders of 50 and 50.50 complete it
    order(api, admin_key, member, "o-2", "50.00")
    done = order(api, admin_key, member, "o-3", "50.50")
    assert challenge_shares(done["transaction"])[0][:2] == ("Spend 100", 50)
    progress = challenges_of(api, admin_key, member)["Spend 100"]
    assert (progress["value"], progress["completed"]) == ("100.5", True)

    # And reversing the completing order leaves the challenge completed (its share goes with the order)
    back = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        body={"reference": "o-3", "points": 100},
        idempotency_key="rev-3",
    )
    assert back.status == 201, back
    assert back.body["transaction"]["points"] == -(50 + 50)
    assert challenges_of(api, admin_key, member)["Spend 100"]["completed"] is True


def test_an_activities_challenge_counts_its_activity_type_only(api: Api, admin_key: str) -> None:
    for activity in ("review", "social_follow"):
        rule = {"name": activity, "kind": "activity", "activity": activity, "points": 5, "limit": 2, "per": "day"}
        assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    create(api, admin_key, name="Two reviews", kind="activities", activity="review", goal=2, **WINDOW, reward_points=20)
    member = api.enrol(admin_key)

    def record(kind: str, key: str) -> dict[str, Any]:
        reply = api.call(
            "POST", f"/v1/members/{member}/activities", key=admin_key, body={"type": kind}, idempotency_key=key
        )
        assert reply.status == 201, reply
        return reply.body

    record("review", "a-1")
    record("social_follow", "a-2")
    assert challenges_of(api, admin_key, member)["Two reviews"]["value"] == "1"
    done = record("review", "a-3")
    assert challenge_shares(done["transaction"])[0][:2] == ("Two reviews", 20)
    assert api.balance(admin_key, member)["available"] == 15 + 20
    # A retry of the completing activity, once the day's allowance is used, is its replay
    retry = api.call(
        "POST", f"/v1/members/{member}/activities", key=admin_key, body={"type": "review"}, idempotency_key="a-3"
    )
    assert retry.status == 201 and retry.body["transaction"] == done["transaction"], retry
    assert api.balance(admin_key, member)["available"] == 15 + 20


def test_a_weekly_streak_forgives_one_missed_week(api: Api, admin_key: str) -> None:
    create(
        api,
        admin_key,
        name="Three weeks",
        kind="streak",
        period="week",
        goal=3,
        grace=1,
        **WINDOW,
        badge={"id": "weekly", "name": "Weekly"},
    )
    member = api.enrol(admin_key)
    this_monday = (NOW - timedelta(days=NOW.weekday())).replace(hour=1, minute=0, second=0, microsecond=0)
    weeks_ago = [3, 3, 1]  # two orders in one week count once; the week between is missed (forgiven)
    for i, weeks in enumerate(weeks_ago):
        order(api, admin_key, member, f"o-{i}", occurred_at=(this_monday - timedelta(weeks=weeks)).isoformat())
    assert challenges_of(api, admin_key, member)["Three weeks"]["value"] == "2"

    order(api, admin_key, member, "o-now")

    assert challenges_of(api, admin_key, member)["Three weeks"]["completed"] is True
    assert badges_of(api, admin_key, member)[0][0] == "weekly"


def test_a_challenge_for_a_segment_counts_only_its_members(api: Api, admin_key: str) -> None:
    create(api, admin_key, name="VIP order", kind="orders", goal=1, **WINDOW, segments=["vip"], reward_points=100)
    vip = api.enrol(admin_key, segments=["vip"])
    other = api.enrol(admin_key)

    assert challenge_shares(order(api, admin_key, vip, "o-vip")["transaction"])[0][:2] == ("VIP order", 100)
    assert challenge_shares(order(api, admin_key, other, "o-other")["transaction"]) == []
    assert list(challenges_of(api, admin_key, other)) == []  # not open to them
    assert challenges_of(api, admin_key, vip)["VIP order"]["completed"] is True


def test_a_challenge_for_a_tier_counts_only_its_members(api: Api, admin_key: str) -> None:
    # Given 10 points per euro, Silver at 500 points and Gold at 2 000, and a challenge for Silver only
    program = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=TIERS).status == 200
    create(api, admin_key, name="Silver orders", kind="orders", goal=2, **WINDOW, tiers=["silver"], reward_points=100)
    silver, plain, gold = api.enrol(admin_key), api.enrol(admin_key), api.enrol(admin_key)

    # When a member without a tier orders three times, and a Gold member (from the 300.00 order) orders
    for i in range(3):
        assert challenge_shares(order(api, admin_key, plain, f"p-{i}")["transaction"]) == []
    order(api, admin_key, gold, "g-0", "300.00")
    assert challenge_shares(order(api, admin_key, gold, "g-1")["transaction"]) == []
    # Then neither progresses, nor is the challenge listed for them (not open to them)
    assert list(challenges_of(api, admin_key, plain)) == []
    assert list(challenges_of(api, admin_key, gold)) == []
    assert api.balance(admin_key, plain)["available"] == 300

    # When a member reaches Silver with an order (the tier comes with that order, not before it)
    crossing = order(api, admin_key, silver, "s-0", "60.00")
    assert crossing["balance"]["tier"] == "silver" and challenge_shares(crossing["transaction"]) == []
    assert challenges_of(api, admin_key, silver)["Silver orders"]["value"] == "0"
    # Then their orders as Silver progress and complete it
    order(api, admin_key, silver, "s-1")
    assert challenges_of(api, admin_key, silver)["Silver orders"]["value"] == "1"
    done = order(api, admin_key, silver, "s-2")
    assert challenge_shares(done["transaction"])[0][:2] == ("Silver orders", 100)
    assert challenges_of(api, admin_key, silver)["Silver orders"]["completed"] is True


def test_a_monthly_streak_advances_per_local_month_and_breaks_after_a_missed_month(api: Api) -> None:
    # Given a sandbox brand in Helsinki (its test clock moves months ahead) and "an order three
    # months in a row", no month forgiven
    key = api.create_tenant("streaks", sandbox=True)
    challenge = create(
        api,
        key,
        name="Three months",
        kind="streak",
        period="month",
        goal=3,
        starts_at=(NOW - timedelta(days=1)).isoformat(),
        badge={"id": "monthly", "name": "Monthly"},
    )
    member = api.enrol(key)
    local = NOW.astimezone(ZONE)

    def month(ahead: int, day: int = 10, hour: int = 12, minute: int = 0) -> datetime:
        year, index = divmod(local.month - 1 + ahead, 12)
        return datetime(local.year + year, index + 1, day, hour, minute, tzinfo=ZONE)

    def order_at(order_id: str, at: datetime) -> dict[str, Any]:
        advanced = api.call("POST", "/v1/test-clock/advance", key=key, body={"to": at.isoformat()})
        assert advanced.status == 200, advanced
        return order(api, key, member, order_id)

    def streak() -> tuple[str, bool]:
        progress = challenges_of(api, key, member)["Three months"]
        return progress["value"], progress["completed"]

    # When the member orders in a month, twice: the month counts once
    order_at("m1-a", month(1))
    order_at("m1-b", month(1, day=20))
    assert streak() == ("1", False)
    # And half an hour into the next local month (still the month before in UTC): a second month
    first_minutes = month(2, day=1, hour=0, minute=30)
    assert first_minutes.astimezone(UTC).month != first_minutes.month
    order_at("m2", first_minutes)
    assert streak() == ("2", False)

    # When a month passes without an order, the next month's order starts the streak again
    order_at("m4", month(4))
    assert streak() == ("1", False)

    # Then two more months in a row complete it, with its badge
    order_at("m5", month(5))
    assert streak() == ("2", False)
    order_at("m6", month(6))
    assert streak() == ("3", True)
    assert badges_of(api, key, member) == [("monthly", challenge["id"])]


def test_an_archived_or_ended_challenge_counts_no_more(api: Api, admin_key: str) -> None:
    archived = create(api, admin_key, **{**THREE_ORDERS, "name": "Archived", "goal": 1})
    reply = api.call("POST", f"/v1/challenges/{archived['id']}/archive", key=admin_key)
    assert reply.status == 200 and reply.body["status"] == "archived", reply
    ended_window = {
        "starts_at": (NOW - timedelta(days=9)).isoformat(),
        "ends_at": (NOW - timedelta(days=2)).isoformat(),
    }
    create(api, admin_key, **{**THREE_ORDERS, "name": "Ended", "goal": 1, **ended_window})
    member = api.enrol(admin_key)

    assert challenge_shares(order(api, admin_key, member, "o-1")["transaction"]) == []
    # An order dated inside the ended window still counts for it (it happened then)
    dated = order(api, admin_key, member, "o-2", occurred_at=(NOW - timedelta(days=5)).isoformat())
    assert challenge_shares(dated["transaction"])[0][:2] == ("Ended", 300)


def test_challenges_are_defined_checked_and_changed(api: Api, admin_key: str) -> None:
    created = create(api, admin_key, **THREE_ORDERS)
    listed = api.call("GET", "/v1/challenges", key=admin_key)
    assert listed.status == 200 and listed.body["data"] == [created]
    assert api.call("GET", f"/v1/challenges/{created['id']}", key=admin_key).body == created
    changed = api.call(
        "PATCH", f"/v1/challenges/{created['id']}", key=admin_key, body={"reward_points": 500, "badge": None}
    )
    assert changed.status == 200, changed
    assert (changed.body["reward_points"], changed.body["badge"], changed.body["goal"]) == (500, None, "3")

    before = tenant_state(api, admin_key)
    bad = [
        {**THREE_ORDERS, "kind": "activities"},  # no activity
        {**THREE_ORDERS, "kind": "streak"},  # no period
        {**THREE_ORDERS, "goal": "2.5"},  # a count is whole
        {**THREE_ORDERS, "grace": 1},  # only streaks
        {**THREE_ORDERS, "reward_points": 0, "badge": None},  # no reward
    ]
    for body in bad:
        assert_error(api.call("POST", "/v1/challenges", key=admin_key, body=body), 400, "invalid_request", str(body))
    backwards = {**THREE_ORDERS, "ends_at": (NOW - timedelta(days=50)).isoformat()}
    assert_invalid(api.call("POST", "/v1/challenges", key=admin_key, body=backwards), "ends_at")
    assert_error(api.call("GET", "/v1/challenges/chl_01JD0000000000000000000000", key=admin_key), 404, "not_found")
    assert tenant_state(api, admin_key) == before


def test_at_most_eight_challenges_are_open_at_once(api: Api, admin_key: str) -> None:
    for i in range(8):
        create(api, admin_key, **{**THREE_ORDERS, "name": f"c-{i}"})
    assert_error(api.call("POST", "/v1/challenges", key=admin_key, body=THREE_ORDERS), 422, "limit_reached")


def test_another_tenant_sees_none_of_it(api: Api, admin_key: str, other_admin_key: str) -> None:
    created = create(api, admin_key, **THREE_ORDERS)
    member = api.enrol(admin_key)
    order(api, admin_key, member, "o-1")

    assert api.call("GET", "/v1/challenges", key=other_admin_key).body["data"] == []
    assert_error(api.call("GET", f"/v1/challenges/{created['id']}", key=other_admin_key), 404, "not_found")
    assert_error(api.call("GET", f"/v1/members/{member}/challenges", key=other_admin_key), 404, "not_found")
    assert_error(api.call("GET", f"/v1/members/{member}/badges", key=other_admin_key), 404, "not_found")


def test_a_brand_without_challenges_reads_nothing_more_per_movement(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a brand that never stored a challenge
    calls: list[str] = []
    for name in ("all", "member", "get"):
        original = getattr(ChallengeRepository, name)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ChallengeRepository, name, counted)
    member = api.enrol(admin_key)

    # When orders, activities and reversals move points
    order(api, admin_key, member, "o-1")
    reversed_ = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        body={"reference": "o-1", "points": 10},
        idempotency_key="r-1",
    )
    assert reversed_.status == 201, reversed_

    # Then no challenge was read
    assert calls == []
    # And once one exists, an order reads the challenges and the member's progress (once each)
    create(api, admin_key, **THREE_ORDERS)
    calls.clear()
    order(api, admin_key, member, "o-2")
    assert sorted(calls) == ["all", "member"]
