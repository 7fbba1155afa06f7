"""Points follow what the customer paid, over HTTP on both emulators: discounts (of a line or
the whole order, itemised or not), shipping and tax by the program's settings, the Shopify
intake's discounted orders, and refunds by amount taking back the refunded share of the
order's points whatever multipliers gave them (its pending points first, then available ones).
The preview answers as the earn does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from tests.support.checks import assert_error, assert_invalid, tenant_state
from tests.support.http import Api
from tests.support.receiver import webhook_environment

ORDERS = "/v1/integrations/orders"


@pytest.fixture
def shop(api: Api, admin_key: str) -> Api:
    """Tenant "acme": 1 point per euro, rounded down; double points on coffee."""
    program = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    rule = {"name": "Coffee x2", "kind": "line_multiplier", "factor": "2", "categories": ["coffee"]}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    return api


def earn_order(api: Api, key: str, member: str, order: dict[str, Any], idempotency_key: str = "o-1") -> Any:
    return api.call(
        "POST", f"/v1/members/{member}/earn", key=key, idempotency_key=idempotency_key, body={"order": order}
    )


def preview(api: Api, key: str, order: dict[str, Any], member: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"order": order, **({"member_id": member} if member else {})}
    reply = api.call("POST", "/v1/program/preview", key=key, body=body)
    assert reply.status == 200, reply
    return reply.body


def shares(breakdown: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(share["source"], share["points"]) for share in breakdown]


def test_an_order_paid_less_than_its_lines_earns_on_what_was_paid(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key)
    # Given lines listing 50.00 and a paid total of 10.00
    order = {
        "id": "o-1",
        "total": "10.00",
        "currency": "EUR",
        "lines": [{"sku": "tee", "quantity": 1, "unit_price": "50.00"}],
    }

    # When the order earns, and when it is previewed (for anyone, and for the member)
    anyone, for_member = preview(shop, admin_key, order), preview(shop, admin_key, order, member)
    earned = earn_order(shop, admin_key, member, order)

    # Then it earns on the 10.00 paid, and the breakdown shows the discount
    assert earned.status == 201, earned
    transaction = earned.body["transaction"]
    assert transaction["points"] == 10 and shares(transaction["breakdown"]) == [("base", 50), ("discount", -40)]
    assert transaction["amount"] == "10.00"
    assert (anyone["points"], anyone["breakdown"]) == (10, transaction["breakdown"])
    assert (for_member["points"], for_member["breakdown"]) == (10, transaction["breakdown"])
    assert shop.balance(admin_key, member)["available"] == 10


def test_an_order_discount_is_spread_so_multipliers_apply_to_what_each_line_cost(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key)
    # Coffee 30.00 and cake 10.00 with 8.00 off the order (20%): coffee cost 24.00, cake 8.00
    order = {
        "id": "o-2",
        "total": "32.00",
        "currency": "EUR",
        "discount": "8.00",
        "lines": [
            {"sku": "beans", "category": "coffee", "quantity": 1, "unit_price": "30.00"},
            {"sku": "cake", "category": "bakery", "quantity": 2, "unit_price": "6.00", "discount": "2.00"},
        ],
    }

    earned = earn_order(shop, admin_key, member, order)

    # Then the base rate applies to the 32.00 paid (42.00 listed) and the coffee's double to its 24.00 only
    assert earned.status == 201, earned
    assert shares(earned.body["transaction"]["breakdown"]) == [("base", 42), ("discount", -10), ("rule", 24)]
    assert earned.body["transaction"]["points"] == 56 == preview(shop, admin_key, order, member)["points"]


def test_shipping_and_tax_earn_only_when_the_program_says_so(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key)
    order = {
        "id": "o-3",
        "total": "65.00",
        "currency": "EUR",
        "shipping": "5.00",
        "tax": "10.00",
        "lines": [{"sku": "tee", "quantity": 1, "unit_price": "50.00"}],
    }
    # By default only the goods earn
    assert earn_order(shop, admin_key, member, order).body["transaction"]["points"] == 50
    program = shop.call("GET", "/v1/program", key=admin_key).body
    assert (program["earn_on_shipping"], program["earn_on_tax"]) == (False, False)

    # When the program lets shipping earn
    changed = shop.call(
        "PUT",
        "/v1/program",
        key=admin_key,
        body={"points_per_currency_unit": "1", "rounding": "floor", "earn_on_shipping": True},
    )
    assert changed.status == 200 and changed.body["earn_on_shipping"] is True, changed
    assert shop.call("GET", "/v1/program", key=admin_key).body["earn_on_shipping"] is True

    # Then the same order earns on goods and shipping, not tax; the preview agrees
    again = earn_order(shop, admin_key, member, {**order, "id": "o-4"}, "o-4")
    assert again.body["transaction"]["points"] == 55 == preview(shop, admin_key, {**order, "id": "o-4"})["points"]


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        pytest.param({"shipping": "8.00", "tax": "3.00"}, "order.shipping", id="shipping and tax over the total"),
        pytest.param({"discount": "20.01"}, "order.discount", id="a discount over the lines"),
        pytest.param(
            {"lines": [{"sku": "a", "quantity": 1, "unit_price": "5.00", "discount": "6.00"}]},
            "order.lines.0.discount",
            id="a line discount over its line",
        ),
        pytest.param({"shipping": "-1.00"}, "order.shipping", id="negative shipping"),
        pytest.param({"tax": "0.001"}, "order.tax", id="more decimals than the currency"),
    ],
)
def test_parts_that_cannot_be_what_was_paid_are_refused_and_change_nothing(
    shop: Api, admin_key: str, parts: dict[str, Any], field: str
) -> None:
    member = shop.enrol(admin_key)
    before = tenant_state(shop, admin_key)
    order = {
        "id": "o-5",
        "total": "10.00",
        "currency": "EUR",
        "lines": [{"sku": "a", "quantity": 2, "unit_price": "10.00"}],
    }

    refused = earn_order(shop, admin_key, member, {**order, **parts})

    assert_invalid(refused, field)
    assert tenant_state(shop, admin_key) == before


def shopify(api: Api, integration: str, secret: str, topic: str, payload: dict[str, Any]) -> Any:
    raw = json.dumps(payload).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return api.call(
        "POST",
        f"/v1/integrations/shopify/{integration}/webhooks",
        raw_body=raw,
        headers={"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Webhook-Id": "w-1"},
    )


def test_a_discounted_shopify_order_earns_on_what_was_paid_without_shipping_or_tax(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, shop: Api, admin_key: str
) -> None:
    webhook_environment(request, monkeypatch)
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={"auto_enrol": True})
    assert created.status == 201, created
    integration, secret = created.body["id"], created.body["secret"]
    # Given a Shopify order: a 50.00 coffee with 40.00 of discounts allocated, 5.00 shipping, 2.00 tax
    payload = {
        "id": 7001,
        "currency": "EUR",
        "total_price": "17.00",
        "subtotal_price": "10.00",
        "total_tax": "2.00",
        "total_discounts": "40.00",
        "total_shipping_price_set": {"shop_money": {"amount": "5.00", "currency_code": "EUR"}},
        "customer": {"id": 42, "email": "kim@example.com"},
        "line_items": [
            {
                "sku": "BEANS",
                "product_type": "coffee",
                "quantity": 1,
                "price": "50.00",
                "discount_allocations": [{"amount": "40.00", "discount_application_index": 0}],
            }
        ],
    }

    got = shopify(shop, integration, secret, "orders/paid", payload)

    # Then the coffee earns double on the 10.00 paid for it: 10 + 10, nothing on shipping or tax
    assert got.status == 200 and got.body["outcome"] == "earned", got
    assert got.body["points"] == 20
    (entry,) = shop.ledger(admin_key, got.body["member_id"])
    assert entry["id"] == got.body["transaction_id"] and entry["amount"] == "17.00"
    assert shares(entry["breakdown"]) == [("base", 50), ("discount", -40), ("rule", 10)]


def test_a_refund_by_amount_takes_back_the_refunded_share_of_what_multipliers_gave(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key)
    campaign = {"name": "Double days", "kind": "order_multiplier", "factor": "2"}
    assert shop.call("POST", "/v1/program/rules", key=admin_key, body=campaign).status == 201
    # Given an order of 200.00 that earned 400 points under double points
    order = {"id": "o-9", "total": "200.00", "currency": "EUR"}
    assert earn_order(shop, admin_key, member, order).body["transaction"]["points"] == 400

    def refund(key: str, amount: str) -> Any:
        body = {"reference": "o-9", "amount": amount}
        return shop.call("POST", f"/v1/members/{member}/reverse", key=admin_key, idempotency_key=key, body=body)

    # When a quarter is refunded, then 0.25 (worth half a point), then 0.25 again
    quarter, tiny, again = refund("r-1", "50.00"), refund("r-2", "0.25"), refund("r-3", "0.25")

    # Then a quarter of the points comes back, the tiny refund is recorded and counts towards the next
    assert quarter.status == 201 and quarter.body["reversal"]["reversed"] == 100, quarter
    assert tiny.status == 201 and tiny.body["transaction"]["points"] == 0, tiny
    assert tiny.body["transaction"]["amount"] == "0.25"
    assert again.body["reversal"]["reversed"] == 1, again
    assert shop.balance(admin_key, member)["available"] == 299

    # When the rest of the order is refunded, then all of its points are back, never more
    rest = refund("r-4", "149.50")
    assert rest.body["reversal"] == {
        "requested": 299,
        "reversed": 299,
        "from_pending": 0,
        "from_available": 299,
        "outcome": "full",
    }
    assert shop.balance(admin_key, member)["available"] == 0
    assert_error(refund("r-5", "10.00"), 422, "reversal_exceeds_earned")
    # And a retry answers the first result
    assert refund("r-1", "50.00").body == quarter.body


def test_the_commerce_intake_and_the_api_refund_by_the_same_rule(shop: Api, admin_key: str) -> None:
    campaign = {"name": "Double days", "kind": "order_multiplier", "factor": "2"}
    assert shop.call("POST", "/v1/program/rules", key=admin_key, body=campaign).status == 201
    member = shop.enrol(admin_key, external_id="cust-9")
    paid = {
        "type": "paid",
        "event_id": "p-1",
        "order": {"id": "o-10", "total": "100.00", "currency": "EUR"},
        "customer": {"external_id": "cust-9"},
    }
    assert shop.call("POST", ORDERS, key=admin_key, body=paid).body["points"] == 200

    # When the shop refunds 25.00, then the brand's backend refunds 25.00 of the same order
    by_shop = shop.call(
        "POST",
        ORDERS,
        key=admin_key,
        body={"type": "refunded", "event_id": "r-1", "order_id": "o-10", "amount": "25.00"},
    )
    by_api = shop.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="api-r-1",
        body={"reference": "o-10", "amount": "25.00"},
    )

    # Then each takes back a quarter of the 200 points
    assert (by_shop.body["outcome"], by_shop.body["points"]) == ("reversed", -50), by_shop
    assert by_api.body["reversal"]["reversed"] == 50, by_api
    assert shop.balance(admin_key, member)["available"] == 100


def test_a_refund_by_amount_of_points_earned_without_an_amount_is_refused(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key)
    body = {"points": 40, "reference": "o-11"}
    assert shop.call("POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key="e", body=body).status == 201
    before = tenant_state(shop, admin_key)

    refused = shop.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="r",
        body={"reference": "o-11", "amount": "10.00"},
    )

    details = assert_error(refused, 422, "reversal_needs_points")
    assert details == {"reference": "o-11", "earned": 40}
    assert tenant_state(shop, admin_key) == before


def test_a_refund_by_amount_takes_back_the_orders_pending_points_first_then_available_ones(
    shop: Api, admin_key: str
) -> None:
    member = shop.enrol(admin_key)
    # Given order o-20 earned in two parts: 60.00 paid first (60 points, available), then 40.00
    # within a 30-day return window (40 points, pending); and another order's 50 points
    first = shop.earn(admin_key, member, "e-1", amount="60.00", reference="o-20")
    second = shop.earn(admin_key, member, "e-2", amount="40.00", reference="o-20", pending_days=30)
    other = shop.earn(admin_key, member, "e-3", amount="50.00", reference="o-21")
    assert [reply.status for reply in (first, second, other)] == [201, 201, 201]
    assert (second.body["transaction"]["points"], second.body["transaction"]["pending_change"]) == (40, 40)
    balance = shop.balance(admin_key, member)
    assert (balance["available"], balance["pending"]) == (110, 40)

    def refund(key: str, amount: str) -> Any:
        body = {"reference": "o-20", "amount": amount}
        return shop.call("POST", f"/v1/members/{member}/reverse", key=admin_key, idempotency_key=key, body=body)

    # When 30.00 of the order is refunded: its 30 points come out of the order's pending ones
    within_pending = refund("r-1", "30.00")
    assert within_pending.status == 201, within_pending
    assert within_pending.body["reversal"] == {
        "requested": 30,
        "reversed": 30,
        "from_pending": 30,
        "from_available": 0,
        "outcome": "full",
    }
    balance = shop.balance(admin_key, member)
    assert (balance["available"], balance["pending"], balance["lifetime_reversed"]) == (110, 10, 30)

    # When 50.00 more is refunded: the 10 pending points left, then 40 available ones
    past_pending = refund("r-2", "50.00")
    assert past_pending.status == 201, past_pending
    assert past_pending.body["reversal"] == {
        "requested": 50,
        "reversed": 50,
        "from_pending": 10,
        "from_available": 40,
        "outcome": "full",
    }
    balance = shop.balance(admin_key, member)
    assert (balance["available"], balance["pending"], balance["lifetime_reversed"]) == (70, 0, 80)
    assert (balance["lifetime_earned"], balance["lifetime_redeemed"]) == (150, 0)

    # Then the ledger records each refund: its amount, its points and what left the pending balance
    ledger = [
        (e["type"], e["points"], e["pending_change"], e["amount"], e["reference"], e["balance_after"])
        for e in shop.ledger(admin_key, member)
    ]
    assert ledger == [
        ("reverse", -50, -10, "50.00", "o-20", 70),
        ("reverse", -30, -30, "30.00", "o-20", 110),
        ("earn", 50, 0, "50.00", "o-21", 110),
        ("earn", 40, 40, "40.00", "o-20", 60),
        ("earn", 60, 0, "60.00", "o-20", 60),
    ]
    assert [e["id"] for e in shop.ledger(admin_key, member)[:2]] == [
        past_pending.body["transaction"]["id"],
        within_pending.body["transaction"]["id"],
    ]
    # And a retry of a refund answers its first result and moves nothing
    assert refund("r-1", "30.00").body == within_pending.body
    assert shop.balance(admin_key, member)["available"] == 70
