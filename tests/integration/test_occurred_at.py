"""The dating rule through the HTTP API, on both emulators: every request that says when
something happened (`occurred_at`: movements, activities, order events) may be at most
5 minutes ahead and 31 days back; allowances count in the period of an accepted date; the
preview may look ahead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.dating import CLOCK_SKEW, MAX_AGE
from tests.support.http import Api, Reply

ZONE = ZoneInfo("Europe/Helsinki")  # the tenant's (tests.support.http.Api.create_tenant)


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def activity(api: Api, key: str, member: str, idempotency_key: str, **body: Any) -> Reply:
    return api.call(
        "POST",
        f"/v1/members/{member}/activities",
        key=key,
        idempotency_key=idempotency_key,
        body={"type": "review", **body},
    )


def assert_out_of_window(reply: Reply, path: str, sent_at: datetime, asked: datetime) -> None:
    """400 invalid_request naming the field, with the window (min, max) in the details."""
    assert reply.status == 400, reply.body
    assert reply.error_code() == "invalid_request"
    details = reply.body["error"]["details"]
    (field,) = details["fields"]
    assert (field["path"], field["type"]) == (path, "occurred_at_out_of_range")
    earliest, latest = datetime.fromisoformat(details["min"]), datetime.fromisoformat(details["max"])
    assert (field["min"], field["max"]) == (details["min"], details["max"])
    # The window as of the request: 31 days back, 5 minutes ahead (to the millisecond).
    assert sent_at - MAX_AGE - timedelta(milliseconds=1) <= earliest <= datetime.now(UTC) - MAX_AGE
    assert sent_at + CLOCK_SKEW - timedelta(milliseconds=1) <= latest <= datetime.now(UTC) + CLOCK_SKEW
    assert latest - earliest == MAX_AGE + CLOCK_SKEW
    assert not earliest <= asked <= latest


def test_a_future_activity_opens_no_allowance(api: Api, admin_key: str) -> None:
    # Given reviews earn 50 points, 3 a month, and a member who used this month's 3
    rule = {"name": "Review", "kind": "activity", "activity": "review", "points": 50, "limit": 3, "per": "month"}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    member = api.enrol(admin_key)
    for n in range(3):
        assert activity(api, admin_key, member, f"r-{n}").status == 201
    assert activity(api, admin_key, member, "r-3").error_code() == "limit_reached"

    # When reviews dated in later months come in (30 years ahead, next month, 6 minutes ahead)
    sent_at = datetime.now(UTC)
    ahead = [sent_at + timedelta(days=365 * 30), sent_at + timedelta(days=32), sent_at + timedelta(minutes=6)]
    replies = [activity(api, admin_key, member, f"f-{n}", occurred_at=when(at)) for n, at in enumerate(ahead)]

    # Then each is refused, naming occurred_at and the window, and nothing is credited
    for reply, at in zip(replies, ahead, strict=True):
        assert_out_of_window(reply, "occurred_at", sent_at, at)
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_earned"]) == (150, 150)
    ledger = api.ledger(admin_key, member)
    assert [(entry["type"], entry["points"]) for entry in ledger] == [("earn", 50)] * 3
    # And the refused keys were never used: the same key with an accepted date is a fresh request
    refused_again = activity(api, admin_key, member, "f-0")
    assert refused_again.error_code() == "limit_reached"


def test_an_accepted_past_date_uses_its_own_months_allowance_once(api: Api, admin_key: str) -> None:
    rule = {"name": "Review", "kind": "activity", "activity": "review", "points": 50, "limit": 1, "per": "month"}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    member = api.enrol(admin_key)
    # The last second of last month (Helsinki): always within 31 days of now.
    this_month = datetime.now(ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = this_month - timedelta(seconds=1)

    now_first = activity(api, admin_key, member, "a-1")
    now_again = activity(api, admin_key, member, "a-2")
    backdated = activity(api, admin_key, member, "b-1", occurred_at=when(last_month))
    backdated_again = activity(api, admin_key, member, "b-2", occurred_at=when(last_month))
    too_old = activity(api, admin_key, member, "b-3", occurred_at=when(datetime.now(UTC) - MAX_AGE - timedelta(days=1)))

    assert now_first.status == 201 and now_again.error_code() == "limit_reached"
    assert backdated.status == 201, backdated.body
    assert datetime.fromisoformat(backdated.body["transaction"]["occurred_at"]) == last_month.replace(microsecond=0)
    assert backdated_again.error_code() == "limit_reached"  # last month's allowance: used once
    assert too_old.status == 400 and too_old.body["error"]["details"]["fields"][0]["path"] == "occurred_at"
    assert api.balance(admin_key, member)["available"] == 100
    assert len(api.ledger(admin_key, member)) == 2


def _order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "total": "20.00", "currency": "EUR"}


def _requests(member: str) -> dict[str, tuple[str, str, dict[str, Any], str]]:
    """Every request that carries occurred_at: (method, path, body without it, error path)."""
    points = f"/v1/members/{member}"
    return {
        "earn": ("POST", f"{points}/earn", {"points": 10}, "occurred_at"),
        "earn an order": ("POST", f"{points}/earn", {"order": _order("o-9")}, "occurred_at"),
        "redeem": ("POST", f"{points}/redeem", {"points": 1}, "occurred_at"),
        "adjust": ("POST", f"{points}/adjust", {"points": 5, "reason": "goodwill"}, "occurred_at"),
        "reverse": ("POST", f"{points}/reverse", {"reference": "o-1", "points": 1}, "occurred_at"),
        "activity": ("POST", f"{points}/activities", {"type": "review"}, "occurred_at"),
        "paid order": (
            "POST",
            "/v1/integrations/orders",
            {"type": "paid", "event_id": "p-2", "order": _order("o-2"), "customer": {"member_id": member}},
            "paid.occurred_at",
        ),
        "refunded order": (
            "POST",
            "/v1/integrations/orders",
            {"type": "refunded", "event_id": "r-1", "order_id": "o-0", "amount": "1.00"},
            "refunded.occurred_at",
        ),
        "cancelled order": (
            "POST",
            "/v1/integrations/orders",
            {"type": "cancelled", "event_id": "c-1", "order_id": "o-0"},
            "cancelled.occurred_at",
        ),
    }


@pytest.mark.parametrize("request_name", list(_requests("mem_x")))
@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(lambda: CLOCK_SKEW + timedelta(seconds=30), id="ahead"),
        pytest.param(lambda: -(MAX_AGE + timedelta(hours=1)), id="too-old"),
    ],
)
def test_every_request_dated_outside_the_window_is_refused_and_writes_nothing(
    api: Api, admin_key: str, request_name: str, offset: Callable[[], timedelta]
) -> None:
    review = {"name": "Review", "kind": "activity", "activity": "review", "points": 5}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=review).status == 201
    member = api.enrol(admin_key)
    paid = {"type": "paid", "event_id": "p-0", "order": _order("o-0"), "customer": {"member_id": member}}
    assert api.call("POST", "/v1/integrations/orders", key=admin_key, body=paid).status == 200
    assert api.earn(admin_key, member, "e-1", points=100, reference="o-1").status == 201
    before = (api.balance(admin_key, member), api.ledger(admin_key, member))
    method, path, body, error_path = _requests(member)[request_name]
    sent_at = datetime.now(UTC)
    asked = sent_at + offset()

    reply = api.call(method, path, key=admin_key, idempotency_key="dated", body={**body, "occurred_at": when(asked)})

    assert_out_of_window(reply, error_path, sent_at, asked)
    assert (api.balance(admin_key, member), api.ledger(admin_key, member)) == before
    # The same request dated inside the window goes through
    inside = {**body, "occurred_at": when(sent_at - MAX_AGE + timedelta(hours=1))}
    accepted = api.call(method, path, key=admin_key, idempotency_key="dated", body=inside)
    assert accepted.status in (200, 201), accepted.body


def test_a_preview_may_look_ahead_but_stays_within_2000_to_2099(api: Api, admin_key: str) -> None:
    order = _order("o-1")
    next_year = api.call(
        "POST",
        "/v1/program/preview",
        key=admin_key,
        body={"order": order, "occurred_at": when(datetime.now(UTC) + timedelta(days=365))},
    )
    beyond = api.call(
        "POST", "/v1/program/preview", key=admin_key, body={"order": order, "occurred_at": "2100-01-01T00:00:00Z"}
    )

    assert next_year.status == 200 and next_year.body["points"] == 20
    assert beyond.status == 400
    assert beyond.body["error"]["details"]["fields"][0]["type"] == "occurred_at_out_of_range"
    assert (beyond.body["error"]["details"]["min"], beyond.body["error"]["details"]["max"]) == (
        "2000-01-01T00:00:00.000Z",
        "2099-12-31T23:59:59.999Z",
    )
