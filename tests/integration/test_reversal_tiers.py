"""Reversals lower tier qualification, on both emulators: what a refunded order had counted
(points, spend, the order itself) comes out of the month bucket it was counted in, in the
reversal's own transaction; the tier is kept through its grace and the review job then lowers
it, while a member who kept their order keeps the tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.tiers import Bucket, decode_buckets, month_of
from chalicelib.services import platform
from tests.support.http import Api
from tests.support.receiver import webhook_environment

ZONE = ZoneInfo("Europe/Helsinki")  # the zone Api.create_tenant gives a tenant
ORDERS = "/v1/integrations/orders"


def configure(api: Api, key: str, metric: str, gold: str) -> None:
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=key, body=body).status == 200
    tiers = {
        "metric": metric,
        "window": {"kind": "rolling_months", "months": 12},
        "grace_periods": 1,
        "tiers": [{"name": "gold", "threshold": gold}],
    }
    assert api.call("PUT", "/v1/program/tiers", key=key, body=tiers).status == 200


def buckets(member: str) -> dict[str, Bucket]:
    return decode_buckets(platform().for_tenant_id("acme").points.balance(member).tier_buckets)


def this_month() -> str:
    return month_of(datetime.now(UTC), "Europe/Helsinki")


def month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=ZONE).astimezone(UTC)


def reverse(api: Api, key: str, member: str, idempotency_key: str, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", f"/v1/members/{member}/reverse", key=key, idempotency_key=idempotency_key, body=body)
    assert reply.status == 201, reply.body
    return reply.body


def test_a_refunded_order_lowers_spend_and_the_review_then_downgrades_after_the_grace(api: Api, admin_key: str) -> None:
    # Given Gold at 100.00 EUR of spend, and two members reaching it with a 150.00 order each
    configure(api, admin_key, "spend", "100.00")
    refunder, keeper = api.enrol(admin_key), api.enrol(admin_key)
    for member in (refunder, keeper):
        reply = api.earn(admin_key, member, f"o-1-{member}", order={"id": "o-1", "total": "150.00", "currency": "EUR"})
        assert reply.body["balance"]["tier"] == "gold", reply.body

    # When one of them has the order refunded in full
    reversal = reverse(api, admin_key, refunder, "refund-1", reference="o-1", points=1500)

    # Then the spend, points and order come out of that month, in the reversal itself; the tier stays (grace)
    assert reversal["balance"]["tier"] == "gold"
    assert buckets(refunder) == {} and buckets(keeper) == {this_month(): Bucket(1500, 150_000, 1)}
    status = api.balance(admin_key, refunder)["tier_status"]
    assert (status["tier"], status["qualifying"]) == ("gold", "0")

    # When the review job runs once the tier is due for review (end of next month: the grace)
    now = datetime.now(UTC).astimezone(ZONE)
    review_at = month_start(now.year, now.month + 2)
    early = api.call(
        "POST", "/v1/jobs/review-tiers/run", key=admin_key, body={"as_of": (review_at - timedelta(hours=1)).isoformat()}
    )
    due = api.call(
        "POST", "/v1/jobs/review-tiers/run", key=admin_key, body={"as_of": (review_at + timedelta(hours=1)).isoformat()}
    )

    # Then nothing happens before, and at the review the refunder loses Gold, the keeper keeps it
    assert early.body["counts"] == {"members": 0, "downgraded": 0, "kept": 0}
    assert due.body["counts"] == {"members": 2, "downgraded": 1, "kept": 1}, due.body
    assert api.balance(admin_key, refunder)["tier"] is None
    assert api.balance(admin_key, keeper)["tier"] == "gold"


def test_a_backdated_earn_is_taken_back_from_its_own_month(api: Api, admin_key: str) -> None:
    configure(api, admin_key, "points", "100000")
    member = api.enrol(admin_key)
    # The last second of last month: always inside the 31 days an earn may be backdated.
    month_start = datetime.now(ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (month_start - timedelta(seconds=1)).astimezone(UTC)
    api.earn(admin_key, member, "old", amount="20.00", reference="old-order", occurred_at=last_month.isoformat())
    api.earn(admin_key, member, "new", amount="30.00", reference="new-order")
    old_month = month_of(last_month, "Europe/Helsinki")
    assert buckets(member) == {old_month: Bucket(200, 20_000, 0), this_month(): Bucket(300, 30_000, 0)}

    # When part of the old earn is reversed today
    reverse(api, admin_key, member, "r-1", reference="old-order", points=50)

    # Then it comes out of last month's bucket (points and the spend in proportion), not this month's
    assert buckets(member) == {old_month: Bucket(150, 15_000, 0), this_month(): Bucket(300, 30_000, 0)}


@pytest.fixture
def shop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str) -> Api:
    webhook_environment(request, monkeypatch)
    configure(api, admin_key, "orders", "2")
    return api


def test_order_intake_refunds_lower_spend_in_proportion_and_a_cancellation_the_order(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key, external_id="cust-1")
    for order_id in ("o-1", "o-2"):
        paid = {
            "type": "paid",
            "event_id": f"paid-{order_id}",
            "order": {"id": order_id, "total": "100.00", "currency": "EUR"},
            "customer": {"external_id": "cust-1"},
        }
        assert shop.call("POST", ORDERS, key=admin_key, body=paid).status == 200
    assert shop.balance(admin_key, member)["tier"] == "gold"
    assert buckets(member) == {this_month(): Bucket(2000, 200_000, 2)}

    # When 30.00 of the first order is refunded: its order still counts
    refund = {"type": "refunded", "event_id": "r-1", "order_id": "o-1", "amount": "30.00"}
    assert shop.call("POST", ORDERS, key=admin_key, body=refund).body["points"] == -300
    assert buckets(member) == {this_month(): Bucket(1700, 170_000, 2)}

    # When the rest of it is cancelled: the order no longer counts, nor any of its spend
    cancel = {"type": "cancelled", "event_id": "c-1", "order_id": "o-1"}
    assert shop.call("POST", ORDERS, key=admin_key, body=cancel).body["points"] == -700
    assert buckets(member) == {this_month(): Bucket(1000, 100_000, 1)}
    status = shop.balance(admin_key, member)["tier_status"]
    assert (status["tier"], status["qualifying"]) == ("gold", 1)  # held through its grace
