"""Order intake and the Shopify adapter, over HTTP, on both emulators.

Given/When/Then, asserting what the shop and the brand see: the response bodies, the member's
balance and ledger. Refusals are checked to have written nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from tests.support.checks import assert_error, assert_invalid, tenant_state
from tests.support.http import Api, Reply
from tests.support.receiver import webhook_environment

ORDERS = "/v1/integrations/orders"


@pytest.fixture
def shop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str) -> Api:
    """Tenant "acme" earning 1 point per euro, rounded down; KMS for sealed secrets."""
    webhook_environment(request, monkeypatch)
    program = api.call("PUT", "/v1/program", key=admin_key, body={"points_per_currency_unit": "1", "rounding": "floor"})
    assert program.status == 200, program
    return api


def paid(event_id: str, order_id: str, total: str, **customer: Any) -> dict[str, Any]:
    return {
        "type": "paid",
        "event_id": event_id,
        "order": {"id": order_id, "total": total, "currency": "EUR"},
        "customer": customer,
    }


def test_paid_then_partial_refunds_then_cancel_reverse_exactly_what_was_earned(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key, external_id="cust-1", name="Ann")

    # When the shop reports a paid order of 100 EUR for the customer's external id
    earned = shop.call("POST", ORDERS, key=admin_key, body=paid("evt-1", "o-100", "100.00", external_id="cust-1"))

    # Then 100 points are earned with the order as reference
    assert earned.status == 200, earned
    body = earned.body
    assert (body["outcome"], body["member_id"], body["points"], body["replayed"]) == ("earned", member, 100, False)
    assert body["transaction"]["type"] == "earn" and body["transaction"]["reference"] == "o-100"
    assert shop.balance(admin_key, member)["available"] == 100

    # When 30.00 then 0.50 are refunded: 30 points, then floor(100 * 30.5 / 100) - 30 = 0 more
    first = shop.call(
        "POST",
        ORDERS,
        key=admin_key,
        body={"type": "refunded", "event_id": "r-1", "order_id": "o-100", "amount": "30.00"},
    )
    tiny = shop.call(
        "POST",
        ORDERS,
        key=admin_key,
        body={"type": "refunded", "event_id": "r-2", "order_id": "o-100", "amount": "0.50"},
    )
    again = shop.call(
        "POST",
        ORDERS,
        key=admin_key,
        body={"type": "refunded", "event_id": "r-3", "order_id": "o-100", "amount": "0.50"},
    )
    assert (first.body["outcome"], first.body["points"]) == ("reversed", -30), first
    # the half euro is worth no whole point yet: it is recorded (0 points) and counts towards the next refund
    assert (tiny.body["outcome"], tiny.body["points"]) == ("nothing_to_reverse", 0), tiny
    assert (tiny.body["transaction"]["points"], tiny.body["transaction"]["amount"]) == (0, "0.50")
    # the two halves add up to one euro: the cumulative share gives its point
    assert (again.body["outcome"], again.body["points"]) == ("reversed", -1), again
    assert shop.balance(admin_key, member)["available"] == 69

    # When the order is cancelled, Then what is left of it is reversed
    cancelled = shop.call(
        "POST", ORDERS, key=admin_key, body={"type": "cancelled", "event_id": "c-1", "order_id": "o-100"}
    )
    assert (cancelled.body["outcome"], cancelled.body["points"]) == ("reversed", -69), cancelled
    assert cancelled.body["transaction"]["type"] == "reverse"
    assert shop.balance(admin_key, member)["available"] == 0
    ledger = shop.ledger(admin_key, member)
    assert sorted(e["points"] for e in ledger) == [-69, -30, -1, 0, 100]


def test_a_replayed_event_changes_nothing_and_answers_the_first_result(shop: Api, admin_key: str) -> None:
    member = shop.enrol(admin_key, external_id="cust-2")
    event = paid("evt-1", "o-7", "40.00", member_id=member)
    first = shop.call("POST", ORDERS, key=admin_key, body=event)
    refund = {"type": "refunded", "event_id": "r-1", "order_id": "o-7", "amount": "10.00"}
    refunded = shop.call("POST", ORDERS, key=admin_key, body=refund)
    assert first.status == 200 and refunded.status == 200, (first, refunded)
    before = tenant_state(shop, admin_key)

    # When both events are delivered again
    paid_again = shop.call("POST", ORDERS, key=admin_key, body=event)
    refunded_again = shop.call("POST", ORDERS, key=admin_key, body=refund)

    # Then each answers its first result, marked as a replay, and nothing changed
    assert paid_again.status == 200 and paid_again.headers.get("idempotent-replayed") == "true"
    assert paid_again.body == {**first.body, "replayed": True}
    assert refunded_again.body == {**refunded.body, "replayed": True}
    assert tenant_state(shop, admin_key) == before
    assert shop.balance(admin_key, member)["available"] == 30

    # And the same paid order told under another event id earns nothing more
    other = shop.call("POST", ORDERS, key=admin_key, body=paid("evt-2", "o-7", "40.00", member_id=member))
    assert other.status == 200 and other.body["transaction"] == first.body["transaction"], other
    assert (other.body["outcome"], other.body["points"], other.body["replayed"]) == ("already_earned", 0, False)
    assert shop.call("POST", ORDERS, key=admin_key, body=paid("evt-2", "o-7", "40.00", member_id=member)).body == {
        **other.body,
        "replayed": True,
    }
    assert shop.balance(admin_key, member)["available"] == 30

    # But an event id reused with other content is refused, and changes nothing
    changed = shop.call("POST", ORDERS, key=admin_key, body={**refund, "amount": "20.00"})
    assert_error(changed, 422, "idempotency_key_reused")
    assert shop.balance(admin_key, member)["available"] == 30


def test_bad_or_premature_events_are_refused_and_write_nothing(shop: Api, admin_key: str) -> None:
    shop.enrol(admin_key, external_id="cust-3")
    before = tenant_state(shop, admin_key)

    early = {"type": "refunded", "event_id": "r-1", "order_id": "o-unknown", "amount": "1.00"}
    assert_error(shop.call("POST", ORDERS, key=admin_key, body=early), 409, "order_not_paid")
    unknown = paid("e-1", "o-1", "10.00", external_id="nobody")
    assert_error(shop.call("POST", ORDERS, key=admin_key, body=unknown), 404, "not_found")
    assert_invalid(shop.call("POST", ORDERS, key=admin_key, body={"type": "paid", "event_id": "e"}), "paid.order")
    both = paid("e-2", "o-2", "10.00", external_id="cust-3", member_id="mem_x")
    assert_invalid(shop.call("POST", ORDERS, key=admin_key, body=both))
    wrong_currency = paid("e-3", "o-3", "10.00", external_id="cust-3")
    wrong_currency["order"]["currency"] = "USD"
    assert_invalid(shop.call("POST", ORDERS, key=admin_key, body=wrong_currency), "order.currency")
    reserved = shop.call(
        "POST",
        "/v1/members/mem_01JD0000000000000000000000/earn",
        key=admin_key,
        body={"points": 1},
        idempotency_key="intake:orders:o-1:paid",
    )
    assert_invalid(reserved, "Idempotency-Key")

    assert tenant_state(shop, admin_key) == before


def test_unknown_customers_are_enrolled_only_when_asked(shop: Api, admin_key: str) -> None:
    event = paid("e-1", "o-1", "12.00", external_id="new-cust", email="New@Example.com", name="New")
    enrolled = shop.call("POST", ORDERS, key=admin_key, body={**event, "enrol": True})
    assert enrolled.status == 200 and enrolled.body["points"] == 12, enrolled
    member = shop.call("GET", f"/v1/members/{enrolled.body['member_id']}", key=admin_key).body
    assert (member["external_id"], member["email"], member["name"]) == ("new-cust", "new@example.com", "New")


# --- Shopify ---------------------------------------------------------------------------------------------


def shopify_call(
    api: Api, integration_id: str, topic: str, payload: Any, secret: str, *, signature: str | None = None
) -> Reply:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return api.call(
        "POST",
        f"/v1/integrations/shopify/{integration_id}/webhooks",
        raw_body=raw,
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": digest if signature is None else signature,
            "X-Shopify-Webhook-Id": "w-1",
        },
    )


def shopify_order(order_id: int, customer_id: int | None, email: str | None, price: str = "25.00") -> dict[str, Any]:
    return {
        "id": order_id,
        "currency": "EUR",
        "total_price": price,
        "subtotal_price": price,
        "email": email,
        "customer": {"id": customer_id, "email": email, "first_name": "Sam", "last_name": "Shop"}
        if customer_id
        else None,
        "line_items": [{"sku": "MUG", "quantity": 1, "price": price, "product_type": "kitchen"}],
    }


def test_a_shopify_paid_then_refunded_order_ends_with_the_points_reversed(shop: Api, admin_key: str) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={"description": "store"})
    assert created.status == 201, created
    integration, secret = created.body["id"], created.body["secret"]
    assert integration.endswith("_acme") and secret.startswith("shpss_")
    assert created.body["webhook_path"] == f"/v1/integrations/shopify/{integration}/webhooks"
    shown = shop.call("GET", f"/v1/integrations/shopify/{integration}", key=admin_key)
    assert shown.status == 200 and "secret" not in shown.body and secret not in json.dumps(shown.body)

    # When the store sends orders/paid for a new customer
    got = shopify_call(shop, integration, "orders/paid", shopify_order(5001, 77, "sam@example.com"), secret)

    # Then the customer is enrolled as shopify:77 and earns 25 points
    assert got.status == 200, got
    assert (got.body["outcome"], got.body["points"], got.body["order_id"]) == ("earned", 25, "5001")
    member = shop.call("GET", f"/v1/members/{got.body['member_id']}", key=admin_key).body
    assert (member["external_id"], member["email"], member["name"]) == ("shopify:77", "sam@example.com", "Sam Shop")

    # And a second order of the same customer finds the same member
    second = shopify_call(shop, integration, "orders/paid", shopify_order(5002, 77, "sam@example.com", "5.00"), secret)
    assert second.body["member_id"] == got.body["member_id"] and second.body["points"] == 5

    # When the first order is fully refunded (twice delivered)
    refund = {
        "id": 9001,
        "order_id": 5001,
        "transactions": [{"kind": "refund", "status": "success", "amount": "25.00"}],
    }
    reversed_ = shopify_call(shop, integration, "refunds/create", refund, secret)
    replay = shopify_call(shop, integration, "refunds/create", refund, secret)

    # Then its points are reversed once
    assert (reversed_.body["outcome"], reversed_.body["points"]) == ("reversed", -25), reversed_
    assert replay.body == {**reversed_.body, "replayed": True}
    assert shop.balance(admin_key, got.body["member_id"])["available"] == 5

    # And a topic we do not act on is acknowledged without effect
    ignored = shopify_call(shop, integration, "products/update", {"id": 1}, secret)
    assert ignored.status == 200 and ignored.body["outcome"] == "ignored"


def test_guests_are_matched_by_email(shop: Api, admin_key: str) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={})
    integration, secret = created.body["id"], created.body["secret"]
    first = shopify_call(shop, integration, "orders/paid", shopify_order(1, None, "Guest@Example.com"), secret)
    again = shopify_call(shop, integration, "orders/paid", shopify_order(2, None, "guest@example.com"), secret)
    assert first.status == 200 and again.status == 200, (first, again)
    assert first.body["member_id"] == again.body["member_id"]
    assert shop.balance(admin_key, first.body["member_id"])["available"] == 50


def test_shopify_hmac_failures_are_401_and_write_nothing(
    shop: Api, admin_key: str, other_admin_key: str, subtests: pytest.Subtests
) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={})
    integration, secret = created.body["id"], created.body["secret"]
    other = shop.call("POST", "/v1/integrations/shopify", key=other_admin_key, body={})
    before = tenant_state(shop, admin_key), tenant_state(shop, other_admin_key)
    order = shopify_order(5001, 77, "sam@example.com")
    raw = json.dumps(order).encode()
    cases: dict[str, tuple[str, str | None, str]] = {
        "a wrong secret": (integration, None, "shpss_not-the-secret-at-all"),
        "another tenant's secret": (integration, None, other.body["secret"]),
        "no signature": (integration, "", secret),
        "a signature of another body": (
            integration,
            base64.b64encode(hmac.new(secret.encode(), raw + b" ", hashlib.sha256).digest()).decode(),
            secret,
        ),
        "an unknown integration of the tenant": ("shp_01JD0000000000000000000000_acme", None, secret),
        "the id of another tenant's integration": (other.body["id"], None, secret),
        "an id naming no tenant": ("shp_01JD0000000000000000000000_nobody", None, secret),
        "a malformed id": ("not-an-integration", None, secret),
    }
    for label, (target, signature, key) in cases.items():
        with subtests.test(msg=label):
            reply = shopify_call(shop, target, "orders/paid", order, key, signature=signature)
            assert_error(reply, 401, "unauthorized", label)
    assert (tenant_state(shop, admin_key), tenant_state(shop, other_admin_key)) == before


def test_a_signed_webhook_naming_a_key_twice_is_refused_and_writes_nothing(shop: Api, admin_key: str) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={})
    integration, secret = created.body["id"], created.body["secret"]
    before = tenant_state(shop, admin_key)
    order = json.dumps(shopify_order(5001, 77, "sam@example.com"))
    # the line's price twice (which one would count?), and the total twice at the top
    raw = order.replace('"price": "25.00"', '"price": "25.00", "price": "2500.00"')
    raw = raw[:-1] + ', "total_price": "2500.00"}'

    reply = shopify_call(shop, integration, "orders/paid", raw.encode(), secret)

    fields = assert_invalid(reply, "total_price", "line_items.0.price")
    assert {f["type"] for f in fields} == {"duplicate_key"}, fields
    assert tenant_state(shop, admin_key) == before


def test_a_rotated_secret_verifies_alongside_the_previous_one(shop: Api, admin_key: str) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={"auto_enrol": True})
    integration, old = created.body["id"], created.body["secret"]
    rotated = shop.call("POST", f"/v1/integrations/shopify/{integration}/rotate-secret", key=admin_key, body={})
    assert rotated.status == 200 and rotated.body["secret"] not in (None, old), rotated
    assert [s["expires_at"] is None for s in rotated.body["secrets"]] == [True, False]
    new = rotated.body["secret"]
    assert shopify_call(shop, integration, "orders/paid", shopify_order(1, 5, None), new).status == 200
    assert shopify_call(shop, integration, "orders/paid", shopify_order(2, 5, None), old).status == 200

    # A secret supplied by the brand (Shopify's own) is never echoed
    supplied = shop.call(
        "POST", f"/v1/integrations/shopify/{integration}/rotate-secret", key=admin_key, body={"secret": "x" * 32}
    )
    assert supplied.status == 200 and supplied.body["secret"] is None
    assert shopify_call(shop, integration, "orders/paid", shopify_order(3, 5, None), "x" * 32).status == 200


def test_without_auto_enrol_an_unknown_customer_is_404_and_nothing_written(shop: Api, admin_key: str) -> None:
    created = shop.call("POST", "/v1/integrations/shopify", key=admin_key, body={"auto_enrol": False})
    integration, secret = created.body["id"], created.body["secret"]
    before = tenant_state(shop, admin_key)
    reply = shopify_call(shop, integration, "orders/paid", shopify_order(1, 99, "x@example.com"), secret)
    assert_error(reply, 404, "not_found")
    assert tenant_state(shop, admin_key) == before
    # a member whose external id is the Shopify customer id is matched
    member = shop.enrol(admin_key, external_id="99")
    matched = shopify_call(shop, integration, "orders/paid", shopify_order(1, 99, "x@example.com"), secret)
    assert matched.status == 200 and matched.body["member_id"] == member
