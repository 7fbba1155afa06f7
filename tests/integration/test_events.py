"""The event feed: every change in order, written with the change, read with a cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain import events as events_module
from chalicelib.domain.events import EventType
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import Rounding
from chalicelib.services import platform
from tests.support.clocks import MovableClock
from tests.support.http import Api

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def test_the_feed_lists_every_change_in_order_across_days_with_a_cursor(api: Api) -> None:
    # Given a brand whose members earned, redeemed and saw points expire over a month
    api.create_tenant("acme")
    clock = MovableClock(T0)
    services = platform().for_tenant_id("acme", clock=clock, created_at=T0)
    services.program.replace(Decimal(1), Rounding.FLOOR, ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=10))
    ada = services.members.enrol(NewMember(external_id="ada")).member_id
    clock.now += timedelta(seconds=1)
    services.points.move(MovementRequest(ada, MovementType.EARN, "e1", points=30, reference="order-1"))
    clock.now += timedelta(seconds=1)
    services.points.move(MovementRequest(ada, MovementType.REDEEM, "r1", points=10))
    clock.now = T0 + timedelta(days=20)
    services.jobs.run(JobName.EXPIRE_POINTS, clock.now)
    clock.now += timedelta(minutes=1)

    # When an integration reads the feed two events at a time
    first = services.feed.read(after=None, types=frozenset(), limit=2)
    second = services.feed.read(after=first.next_cursor, types=frozenset(), limit=2)
    third = services.feed.read(after=second.next_cursor, types=frozenset(), limit=2)

    # Then it sees each change once, in order, across days
    seen = [(e.type, e.member_id) for e in first.events + second.events + third.events]
    assert seen == [
        (EventType.MEMBER_CREATED, ada),
        (EventType.POINTS_EARNED, ada),
        (EventType.POINTS_REDEEMED, ada),
        (EventType.POINTS_EXPIRED, ada),
    ]
    expired = second.events[1].entry
    assert expired is not None and expired.points == -20
    assert third.events == []
    # And a filter keeps only one type; the cursor still moves past what it skipped
    only = services.feed.read(after=None, types=frozenset({EventType.POINTS_REDEEMED}), limit=10)
    assert [e.type for e in only.events] == [EventType.POINTS_REDEEMED]


def test_events_are_visible_only_once_they_settle(api: Api) -> None:
    api.create_tenant("acme")
    clock = MovableClock(T0)
    services = platform().for_tenant_id("acme", clock=clock, created_at=T0)
    member = services.members.enrol(NewMember()).member_id
    services.points.move(MovementRequest(member, MovementType.EARN, "e1", points=5))

    clock.now = T0 + events_module.SETTLE_WINDOW - timedelta(milliseconds=10)
    early = services.feed.read(after=None, types=frozenset(), limit=10)
    clock.now = T0 + events_module.SETTLE_WINDOW + timedelta(milliseconds=10)
    later = services.feed.read(after=early.next_cursor, types=frozenset(), limit=10)

    assert early.events == []
    assert [e.type for e in later.events] == [EventType.MEMBER_CREATED, EventType.POINTS_EARNED]


def test_the_feed_over_http_is_the_callers_tenant_only(
    api: Api, admin_key: str, other_admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    member = api.enrol(admin_key, external_id="cust-7")
    earned = api.earn(admin_key, member, "o-7", points=12, reference="order-7")

    feed = api.call("GET", "/v1/events?limit=10", key=admin_key)
    other = api.call("GET", "/v1/events", key=other_admin_key)
    typed = api.call("GET", "/v1/events?type=points.earned", key=admin_key)
    bad = api.call("GET", "/v1/events?after=not-a-cursor", key=admin_key)

    assert feed.status == 200
    assert [e["type"] for e in feed.body["data"]] == ["member.created", "points.earned"]
    assert feed.body["data"][0]["data"] == {
        "member_id": member,
        "external_id": "cust-7",
        "created_at": feed.body["data"][0]["data"]["created_at"],
    }
    assert feed.body["data"][1]["data"] == earned.body["transaction"]
    assert other.status == 200 and other.body["data"] == []
    assert [e["type"] for e in typed.body["data"]] == ["points.earned"]
    assert bad.status == 400 and bad.error_code() == "invalid_request"
    again = api.call("GET", f"/v1/events?after={feed.body['next_cursor']}", key=admin_key)
    assert again.body["data"] == []
