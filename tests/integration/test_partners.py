"""Coalition partners over HTTP, on both emulators: the registry, partner keys earning and
redeeming through the ledger, replays, the settlement, and who may reach what.

Refusals are checked against a snapshot of the tenant to have written nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.checks import assert_error, assert_invalid, tenant_state
from tests.support.http import Api

EARN = "/v1/partner/earn"
REDEEM = "/v1/partner/redeem"
REVERSE = "/v1/partner/reverse"


def partner_key(api: Api, admin_key: str, partner_id: str) -> str:
    reply = api.call(
        "POST",
        "/v1/api-keys",
        key=admin_key,
        body={"name": f"{partner_id} till", "scopes": ["partner"], "partner_id": partner_id},
    )
    assert reply.status == 201, reply
    assert (reply.body["scopes"], reply.body["partner_id"]) == (["partner"], partner_id)
    return reply.body["secret"]


@pytest.fixture
def coalition(api: Api, admin_key: str) -> dict[str, Any]:
    """Tenant "acme" with partners coffee (2 points per EUR, 0.01 EUR per point) and books."""
    coffee = api.call(
        "POST",
        "/v1/partners",
        key=admin_key,
        body={"partner_id": "coffee", "name": "Coffee Co", "earn_rate": "2", "redeem_rate": "0.01"},
    )
    assert coffee.status == 201, coffee
    assert {k: v for k, v in coffee.body.items() if k != "created_at"} == {
        "partner_id": "coffee",
        "name": "Coffee Co",
        "earn_rate": "2",
        "redeem_rate": "0.01",
    }
    books = api.call(
        "POST",
        "/v1/partners",
        key=admin_key,
        body={"partner_id": "books", "name": "Books", "earn_rate": "1", "redeem_rate": "0.005"},
    )
    assert books.status == 201, books
    member = api.enrol(admin_key, external_id="card-1", name="Ann")
    return {
        "member": member,
        "coffee": partner_key(api, admin_key, "coffee"),
        "books": partner_key(api, admin_key, "books"),
    }


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_partners_are_registered_listed_and_read(api: Api, admin_key: str, coalition: dict[str, Any]) -> None:
    listed = api.call("GET", "/v1/partners", key=admin_key)
    assert listed.status == 200, listed
    assert [(p["partner_id"], p["earn_rate"], p["redeem_rate"]) for p in listed.body["data"]] == [
        ("books", "1", "0.005"),
        ("coffee", "2", "0.01"),
    ]
    one = api.call("GET", "/v1/partners/coffee", key=admin_key)
    assert one.status == 200 and one.body["name"] == "Coffee Co", one
    assert_error(api.call("GET", "/v1/partners/nobody", key=admin_key), 404, "not_found")
    again = {"partner_id": "coffee", "name": "Again", "earn_rate": "1", "redeem_rate": "1"}
    details = assert_error(api.call("POST", "/v1/partners", key=admin_key, body=again), 409, "partner_exists")
    assert details == {"partner_id": "coffee"}


def test_a_partner_key_earns_and_redeems_and_the_ledger_carries_the_partner(
    api: Api, admin_key: str, coalition: dict[str, Any]
) -> None:
    member, coffee = coalition["member"], coalition["coffee"]

    # When the coffee partner reports 12.75 EUR spent by the card holder (external id)
    body = {"member": {"external_id": "card-1"}, "amount": "12.75", "reference": "till-9"}
    earned = api.call("POST", EARN, key=coffee, body=body, idempotency_key="sale-1")

    # Then floor(12.75 * 2) = 25 points are credited, the entry naming the partner
    assert earned.status == 201, earned
    transaction = earned.body["transaction"]
    assert (transaction["type"], transaction["points"]) == ("earn", 25)
    assert transaction["reference"] == "partner:coffee:till-9"
    assert transaction["metadata"] == {"partner_id": "coffee", "partner_amount": "12.75"}
    assert earned.body["balance"]["available"] == 25
    assert "idempotent-replayed" not in earned.headers

    # When the same request is replayed with the same key, Then the first result comes back
    replay = api.call("POST", EARN, key=coffee, body=body, idempotency_key="sale-1")
    assert replay.status == 201 and replay.body == earned.body, replay
    assert replay.headers.get("idempotent-replayed") == "true"
    # And a different request under that key is refused
    other = {"member": {"external_id": "card-1"}, "amount": "99.00"}
    reused = assert_error(
        api.call("POST", EARN, key=coffee, body=other, idempotency_key="sale-1"), 422, "idempotency_key_reused"
    )
    assert reused == {"idempotency_key": "sale-1", "transaction_id": transaction["id"]}

    # When the partner redeems 10 points for the member (by member id)
    redeemed = api.call(
        "POST", REDEEM, key=coffee, body={"member": {"member_id": member}, "points": 10}, idempotency_key="use-1"
    )
    assert redeemed.status == 201, redeemed
    assert (redeemed.body["transaction"]["type"], redeemed.body["transaction"]["points"]) == ("redeem", -10)
    assert redeemed.body["transaction"]["metadata"] == {"partner_id": "coffee"}
    assert redeemed.body["balance"]["available"] == 15

    # And the same Idempotency-Key used by the tenant itself is another request entirely
    own = api.earn(admin_key, member, "sale-1", points=1)
    assert own.status == 201 and own.body["transaction"]["points"] == 1, own

    # And the member's ledger shows exactly these movements
    ledger = api.ledger(admin_key, member)
    assert sorted((e["type"], e["points"]) for e in ledger) == [("earn", 1), ("earn", 25), ("redeem", -10)]
    assert api.balance(admin_key, member)["available"] == 16


def test_settlement_figures(api: Api, admin_key: str, coalition: dict[str, Any]) -> None:
    member, coffee, books = coalition["member"], coalition["coffee"], coalition["books"]
    moves = [
        (coffee, EARN, {"amount": "10.00"}, "c1"),  # 20 points
        (coffee, EARN, {"points": 11}, "c2"),  # 11 points
        (coffee, REDEEM, {"points": 6}, "c3"),
        (books, EARN, {"points": 100}, "b1"),
        (books, REDEEM, {"points": 40}, "b2"),
    ]
    for key, path, fields, idem in moves:
        reply = api.call("POST", path, key=key, body={"member": {"member_id": member}, **fields}, idempotency_key=idem)
        assert reply.status == 201, reply
    # A replay counts once
    replay = api.call(
        "POST", EARN, key=coffee, body={"member": {"member_id": member}, "points": 11}, idempotency_key="c2"
    )
    assert replay.status == 201 and replay.headers.get("idempotent-replayed") == "true"
    # The tenant's own movements are not the partner's
    assert api.earn(admin_key, member, "own-1", points=1000).status == 201

    day = today()
    span = f"from={(datetime.now(UTC) - timedelta(days=3)).date()}&to={day}"
    coffee_report = api.call("GET", f"/v1/partners/coffee/settlement?{span}", key=admin_key)
    assert coffee_report.status == 200, coffee_report
    assert {k: v for k, v in coffee_report.body.items() if k not in {"from_date", "to_date"}} == {
        "partner_id": "coffee",
        "currency": "EUR",
        "earn_rate": "2",
        "redeem_rate": "0.01",
        "issued_points": 31,
        "redeemed_points": 6,
        "issued_value": "15.50",  # 31 / 2
        "redeemed_value": "0.06",  # 6 x 0.01
        "reversed_points": 0,
        "reversed_value": "0.00",
        "net_issued_points": 31,
        "days": [{"day": day, "issued_points": 31, "redeemed_points": 6, "reversed_points": 0}],
    }
    assert coffee_report.body["to_date"] == day

    # The partner reads its own settlement with its own key
    own = api.call("GET", f"/v1/partners/books/settlement?{span}", key=books)
    assert own.status == 200, own
    assert (own.body["issued_points"], own.body["redeemed_points"]) == (100, 40)
    assert (own.body["issued_value"], own.body["redeemed_value"]) == ("100.00", "0.20")

    # Without a period: this month to date
    default = api.call("GET", "/v1/partners/coffee/settlement", key=admin_key)
    assert default.status == 200, default
    assert (default.body["from_date"], default.body["to_date"]) == (day[:8] + "01", day)
    assert (default.body["issued_points"], default.body["redeemed_points"]) == (31, 6)

    # A period without activity is all zeros
    empty = api.call("GET", "/v1/partners/coffee/settlement?from=2020-01-01&to=2020-01-31", key=admin_key)
    assert empty.status == 200, empty
    assert (empty.body["issued_points"], empty.body["redeemed_points"], empty.body["days"]) == (0, 0, [])
    assert (empty.body["issued_value"], empty.body["redeemed_value"]) == ("0.00", "0.00")


def test_a_partner_refund_takes_back_what_it_issued_for_the_reference_and_the_settlement_nets_it(
    api: Api, admin_key: str, coalition: dict[str, Any]
) -> None:
    member, coffee, books = coalition["member"], coalition["coffee"], coalition["books"]
    who = {"member": {"member_id": member}}
    # Given coffee issued 40 points for till-7 (20 EUR at 2 per EUR), books 30 for its own till-7
    first = api.call(
        "POST", EARN, key=coffee, body={**who, "amount": "20.00", "reference": "till-7"}, idempotency_key="s1"
    )
    assert first.status == 201 and first.body["transaction"]["points"] == 40, first
    other = api.call("POST", EARN, key=books, body={**who, "points": 30, "reference": "till-7"}, idempotency_key="s1")
    assert other.status == 201, other

    # When coffee refunds 7.50 EUR of it
    body = {**who, "reference": "till-7", "amount": "7.50"}
    refund = api.call("POST", REVERSE, key=coffee, body=body, idempotency_key="r1")

    # Then floor(7.50 x 2) = 15 points come back from coffee's reference only
    assert refund.status == 201, refund
    assert (refund.body["transaction"]["type"], refund.body["transaction"]["points"]) == ("reverse", -15)
    assert refund.body["transaction"]["reference"] == "partner:coffee:till-7"
    assert refund.body["transaction"]["metadata"] == {"partner_id": "coffee", "partner_amount": "7.5"}
    assert refund.body["reversal"] == {
        "requested": 15,
        "reversed": 15,
        "from_pending": 0,
        "from_available": 15,
        "outcome": "full",
    }
    assert refund.body["balance"]["available"] == 40 + 30 - 15
    # And a replay returns the first result, changing nothing
    replay = api.call("POST", REVERSE, key=coffee, body=body, idempotency_key="r1")
    assert replay.status == 201 and replay.body == refund.body and replay.headers.get("idempotent-replayed") == "true"

    # When coffee asks back more than is left of its 40 (25), Then 422 and nothing moves
    beyond = {**who, "reference": "till-7", "points": 26}
    before = tenant_state(api, admin_key)
    details = assert_error(
        api.call("POST", REVERSE, key=coffee, body=beyond, idempotency_key="r2"), 422, "reversal_exceeds_earned"
    )
    assert (details["earned"], details["reversed"], details["requested"]) == (40, 15, 26)
    assert tenant_state(api, admin_key) == before
    # And a reference coffee never earned with (unknown till-8; till-9, the tenant's own) is not coffee's to reverse
    assert api.earn(admin_key, member, "own", points=5, reference="till-9").status == 201
    before = tenant_state(api, admin_key)
    for reference in ("till-8", "till-9"):
        refused = api.call(
            "POST",
            REVERSE,
            key=coffee,
            body={**who, "reference": reference, "points": 1},
            idempotency_key=f"x-{reference}",
        )
        assert_error(refused, 422, "reversal_exceeds_earned")
    assert tenant_state(api, admin_key) == before

    # And the settlement shows what coffee issued, took back, and the net
    report = api.call("GET", "/v1/partners/coffee/settlement", key=admin_key).body
    assert (report["issued_points"], report["reversed_points"], report["net_issued_points"]) == (40, 15, 25)
    assert (report["issued_value"], report["reversed_value"]) == ("20.00", "7.50")
    assert report["days"] == [{"day": today(), "issued_points": 40, "redeemed_points": 0, "reversed_points": 15}]
    books_report = api.call("GET", "/v1/partners/books/settlement", key=admin_key).body
    assert (books_report["issued_points"], books_report["reversed_points"]) == (30, 0)
    # And the rest of coffee's 40 can still be refunded in full
    rest = api.call(
        "POST", REVERSE, key=coffee, body={**who, "reference": "till-7", "points": 25}, idempotency_key="r3"
    )
    assert rest.status == 201 and rest.body["reversal"]["reversed"] == 25, rest
    assert api.balance(admin_key, member)["available"] == 30 + 5


def test_partner_keys_reach_only_the_partner_routes_and_their_own_settlement(
    api: Api, admin_key: str, coalition: dict[str, Any]
) -> None:
    member, coffee = coalition["member"], coalition["coffee"]
    before = tenant_state(api, admin_key)

    # A partner key calling the tenant's routes is refused
    for method, path, body in [
        ("GET", "/v1/members", None),
        ("GET", f"/v1/members/{member}/balance", None),
        ("POST", f"/v1/members/{member}/earn", {"points": 5}),
        ("POST", "/v1/partners", {"partner_id": "evil", "name": "E", "earn_rate": "1", "redeem_rate": "1"}),
        ("GET", "/v1/partners", None),
        ("POST", "/v1/api-keys", {"name": "x", "scopes": ["admin"]}),
    ]:
        reply = api.call(method, path, key=coffee, body=body, idempotency_key="pk-1")
        details = assert_error(reply, 403, "forbidden", f"{method} {path}")
        assert details["key_scopes"] == ["partner"], details

    # And another partner's settlement is refused to it
    details = assert_error(
        api.call("GET", f"/v1/partners/books/settlement?from={today()}&to={today()}", key=coffee), 403, "forbidden"
    )
    assert details == {"required_scope": "admin", "key_scopes": ["partner"]}

    # The tenant's own keys, admin included, never reach the partner routes
    for scopes in (("admin",), ("write",), ("read", "write")):
        key = api.create_key(admin_key, *scopes) if scopes != ("admin",) else admin_key
        body = {"member": {"member_id": member}, "points": 5}
        for path in (EARN, REDEEM):
            details = assert_error(api.call("POST", path, key=key, body=body, idempotency_key="x1"), 403, "forbidden")
            assert details["required_scope"] == "partner", details
    after = tenant_state(api, admin_key)
    assert after["balances"] == before["balances"] and after["ledgers"] == before["ledgers"]
    assert after["partners"] == before["partners"]


def test_another_tenants_keys_cannot_reach_the_partners(
    api: Api, admin_key: str, other_admin_key: str, coalition: dict[str, Any]
) -> None:
    member = coalition["member"]
    before = tenant_state(api, admin_key)
    # Tenant B's admin does not see A's partners and cannot bind a key to one
    assert_error(api.call("GET", "/v1/partners/coffee", key=other_admin_key), 404, "not_found")
    assert api.call("GET", "/v1/partners", key=other_admin_key).body == {"data": []}
    span = f"from={today()}&to={today()}"
    assert_error(api.call("GET", f"/v1/partners/coffee/settlement?{span}", key=other_admin_key), 404, "not_found")
    bind = {"name": "steal", "scopes": ["partner"], "partner_id": "coffee"}
    assert_error(api.call("POST", "/v1/api-keys", key=other_admin_key, body=bind), 404, "not_found")

    # Tenant B's own partner key cannot move tenant A's member's points
    created = api.call(
        "POST",
        "/v1/partners",
        key=other_admin_key,
        body={"partner_id": "coffee", "name": "B coffee", "earn_rate": "1", "redeem_rate": "1"},
    )
    assert created.status == 201, created
    b_coffee = partner_key(api, other_admin_key, "coffee")
    for path in (EARN, REDEEM):
        reply = api.call(
            "POST", path, key=b_coffee, body={"member": {"member_id": member}, "points": 1}, idempotency_key="b-1"
        )
        assert_error(reply, 404, "not_found", path)
    reply = api.call(
        "POST", EARN, key=b_coffee, body={"member": {"external_id": "card-1"}, "points": 1}, idempotency_key="b-2"
    )
    assert_error(reply, 404, "not_found")
    # And its settlement of "coffee" is its own (empty), not A's
    own = api.call("GET", f"/v1/partners/coffee/settlement?{span}", key=b_coffee)
    assert own.status == 200 and own.body["issued_points"] == 0, own
    assert tenant_state(api, admin_key) == before


def test_bad_input_is_refused_and_writes_nothing(api: Api, admin_key: str, coalition: dict[str, Any]) -> None:
    member, coffee = coalition["member"], coalition["coffee"]
    before = tenant_state(api, admin_key)
    ref = {"member_id": member}

    bad_partners = [
        ({"partner_id": "Bad Slug", "name": "x", "earn_rate": "1", "redeem_rate": "1"}, "partner_id"),
        ({"partner_id": "ok-id", "name": "x", "earn_rate": "-1", "redeem_rate": "1"}, "earn_rate"),
        ({"partner_id": "ok-id", "name": "x", "earn_rate": "1", "redeem_rate": 0.01}, "redeem_rate"),
        ({"partner_id": "ok-id", "name": "x", "earn_rate": "1"}, "redeem_rate"),
    ]
    for body, field in bad_partners:
        assert_invalid(api.call("POST", "/v1/partners", key=admin_key, body=body), field, context=field)

    bad_keys = [
        {"name": "p", "scopes": ["partner"]},  # no partner
        {"name": "p", "scopes": ["partner", "read"], "partner_id": "coffee"},  # more than partner
        {"name": "p", "scopes": ["admin"], "partner_id": "coffee"},  # partner_id without the scope
    ]
    for body in bad_keys:
        assert_error(api.call("POST", "/v1/api-keys", key=admin_key, body=body), 400, "invalid_request", str(body))
    missing = {"name": "p", "scopes": ["partner"], "partner_id": "nobody"}
    assert_error(api.call("POST", "/v1/api-keys", key=admin_key, body=missing), 404, "not_found")

    bad_moves = [
        (EARN, {"member": ref}, "body"),  # neither points nor amount
        (EARN, {"member": ref, "points": 1, "amount": "1.00"}, "body"),
        (EARN, {"member": {"member_id": member, "external_id": "card-1"}, "points": 1}, "member"),
        (EARN, {"member": ref, "points": 0}, "points"),
        (EARN, {"member": ref, "amount": "abc"}, "amount"),
        (EARN, {"member": ref, "points": 5, "partner_id": "books"}, "partner_id"),  # never from the body
        (REDEEM, {"member": ref}, "points"),
        (REDEEM, {"member": ref, "points": -3}, "points"),
    ]
    for path, body, field in bad_moves:
        assert_invalid(api.call("POST", path, key=coffee, body=body, idempotency_key="bad-1"), field, context=str(body))
    # No Idempotency-Key, or one in the ledger's reserved shapes
    assert_invalid(api.call("POST", EARN, key=coffee, body={"member": ref, "points": 5}), "Idempotency-Key")
    reserved = api.call("POST", EARN, key=coffee, body={"member": ref, "points": 5}, idempotency_key="partner:books:x")
    assert_invalid(reserved, "Idempotency-Key")
    # Business refusals write nothing either
    small = api.call("POST", EARN, key=coffee, body={"member": ref, "amount": "0.25"}, idempotency_key="small")
    assert_error(small, 422, "amount_too_small")
    short = api.call("POST", REDEEM, key=coffee, body={"member": ref, "points": 5}, idempotency_key="short")
    assert_error(short, 422, "insufficient_points")
    unknown = api.call(
        "POST", EARN, key=coffee, body={"member": {"external_id": "nobody"}, "points": 5}, idempotency_key="nobody"
    )
    assert_error(unknown, 404, "not_found")

    # Bad settlement periods
    for query, field in [
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("from=yesterday&to=2026-01-01", "from"),
        ("from=2026-01-01&to=2026-13-01", "to"),
        ("from=2026-01-01&until=2026-01-02", "until"),
    ]:
        assert_invalid(api.call("GET", f"/v1/partners/coffee/settlement?{query}", key=admin_key), field, context=query)

    assert tenant_state(api, admin_key) == before
    settled = api.call("GET", f"/v1/partners/coffee/settlement?from={today()}&to={today()}", key=admin_key)
    assert settled.status == 200 and settled.body["issued_points"] == 0, settled
