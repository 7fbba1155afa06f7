"""Earn, redeem, adjust and idempotency, through HTTP, on both emulators."""

from __future__ import annotations

from tests.support.http import Api


def test_earn_redeem_and_the_ledger_agree(api: Api, admin_key: str) -> None:
    # Given a member
    member = api.enrol(admin_key, external_id="cust-1")

    # When they earn 120, earn 12.50 EUR at the default rate, and redeem 100
    earned = api.earn(admin_key, member, "order-1", points=120, reference="order-1")
    by_amount = api.earn(admin_key, member, "order-2", amount="12.50")
    redeemed = api.redeem(admin_key, member, "reward-1", points=100)

    # Then every response shows the committed balance after it
    assert earned.status == 201
    assert earned.body["transaction"]["points"] == 120
    assert earned.body["balance"]["available"] == 120
    assert by_amount.body["transaction"]["points"] == 12
    assert by_amount.body["transaction"]["amount"] == "12.50"
    assert by_amount.body["balance"]["available"] == 132
    assert redeemed.status == 201
    assert redeemed.body["transaction"]["points"] == -100
    assert redeemed.body["balance"] == {
        **redeemed.body["balance"],
        "available": 32,
        "lifetime_earned": 132,
        "lifetime_redeemed": 100,
        "lifetime_adjusted": 0,
    }
    # And the balance equals the sum of the ledger, newest first
    ledger = api.ledger(admin_key, member)
    assert [entry["sequence"] for entry in ledger] == [3, 2, 1]
    assert sum(entry["points"] for entry in ledger) == api.balance(admin_key, member)["available"] == 32


def test_redeeming_more_than_available_is_refused_and_changes_nothing(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "e1", points=50)

    reply = api.redeem(admin_key, member, "r1", points=51)

    assert reply.status == 422
    assert reply.body["error"]["code"] == "insufficient_points"
    assert reply.body["error"]["details"] == {"available": 50, "requested": 51}
    assert api.balance(admin_key, member)["available"] == 50
    assert len(api.ledger(admin_key, member)) == 1


def test_a_replayed_key_returns_the_first_response_and_applies_once(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    first = api.earn(admin_key, member, "same-key", points=10, description="welcome")
    api.redeem(admin_key, member, "spend", points=4)

    replay = api.earn(admin_key, member, "same-key", points=10, description="welcome")

    assert replay.status == first.status == 201
    assert replay.body == first.body  # including the balance as it was then (10), not now (6)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert api.balance(admin_key, member)["available"] == 6


def test_a_key_reused_with_another_body_is_refused(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "k", points=10)

    changed = api.earn(admin_key, member, "k", points=11)
    other_operation = api.redeem(admin_key, member, "k", points=10)

    assert changed.status == other_operation.status == 422
    assert changed.error_code() == other_operation.error_code() == "idempotency_key_reused"
    assert api.balance(admin_key, member)["available"] == 10


def test_a_replayed_redeem_succeeds_even_when_the_balance_is_now_too_low(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "e", points=10)
    first = api.redeem(admin_key, member, "r", points=10)

    replay = api.redeem(admin_key, member, "r", points=10)

    assert replay.status == 201
    assert replay.body == first.body
    assert api.balance(admin_key, member)["available"] == 0


def test_movements_require_an_idempotency_key(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)

    reply = api.call("POST", f"/v1/members/{member}/earn", key=admin_key, body={"points": 5})

    assert reply.status == 400
    assert reply.body["error"]["details"]["fields"][0]["path"] == "Idempotency-Key"
    assert api.balance(admin_key, member)["available"] == 0


def test_adjustments_move_both_ways_but_never_below_zero(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    up = api.call(
        "POST",
        f"/v1/members/{member}/adjust",
        key=admin_key,
        idempotency_key="a1",
        body={"points": 30, "reason": "goodwill"},
    )
    too_far = api.call(
        "POST",
        f"/v1/members/{member}/adjust",
        key=admin_key,
        idempotency_key="a2",
        body={"points": -31, "reason": "correction"},
    )
    down = api.call(
        "POST",
        f"/v1/members/{member}/adjust",
        key=admin_key,
        idempotency_key="a3",
        body={"points": -30, "reason": "correction"},
    )

    assert up.status == 201 and up.body["transaction"]["reason"] == "goodwill"
    assert too_far.status == 422 and too_far.error_code() == "insufficient_points"
    assert down.status == 201
    assert down.body["balance"] == {**down.body["balance"], "available": 0, "lifetime_adjusted": 0}


def test_amounts_convert_with_the_program_rate_and_rounding(api: Api, admin_key: str) -> None:
    put = api.call("PUT", "/v1/program", key=admin_key, body={"points_per_currency_unit": "2.5", "rounding": "ceil"})
    member = api.enrol(admin_key)

    reply = api.earn(admin_key, member, "o1", amount="10.01")

    assert put.status == 200 and put.body["points_per_currency_unit"] == "2.5"
    assert reply.body["transaction"]["points"] == 26  # 25.025 rounded up
    assert api.call("GET", "/v1/program", key=admin_key).body["rounding"] == "ceil"


def test_an_amount_worth_no_points_is_refused(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)

    reply = api.earn(admin_key, member, "tiny", amount="0.50")

    assert reply.status == 422
    assert reply.error_code() == "amount_too_small"
    assert api.ledger(admin_key, member) == []


def test_unknown_members_are_not_found(api: Api, admin_key: str) -> None:
    ghost = "mem_01JD0000000000000000000000"

    earn = api.earn(admin_key, ghost, "k", points=1)
    balance = api.call("GET", f"/v1/members/{ghost}/balance", key=admin_key)

    assert earn.status == balance.status == 404
    assert earn.error_code() == balance.error_code() == "not_found"
