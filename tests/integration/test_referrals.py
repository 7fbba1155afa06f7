"""Referrals and member codes over HTTP, on both emulators.

Codes: every member gets a unique referral code at enrolment (shown in its view, found by
look-up), a brand may give a unique card code (moving its guard atomically), partners identify
members by either. Referrals: a referee enrolled with a code is rewarded, with its referrer, once,
when its first qualifying order earn commits (also through the commerce intake), through the
ledger under reserved keys; replays change nothing, the cap per period makes referrals
``capped``, self-referrals and unknown codes are refused writing nothing, and another tenant
sees none of it. Refusals are checked against a snapshot of the tenant.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.events import EventType
from chalicelib.domain.referrals import CODE_ALPHABET, REFERRAL_CODE_LENGTH
from chalicelib.persistence.factory import tenant_models
from chalicelib.persistence.referrals import ReferralRepository, referral_code_pk
from chalicelib.services import platform
from tests.support.checks import all_pages, assert_error, assert_invalid, tenant_state
from tests.support.http import Api

CODE = re.compile(rf"^[{CODE_ALPHABET}]{{{REFERRAL_CODE_LENGTH}}}$")
GHOST_MEMBER = "mem_01JD0000000000000000000000"
PROGRAM = {
    "referrer_points": 500,
    "referee_points": 200,
    "min_order_total": "20.00",
    "cap": {"limit": 2, "per": "month"},
}


def configure(api: Api, key: str, **changes: Any) -> dict[str, Any]:
    reply = api.call("PUT", "/v1/program/referrals", key=key, body={**PROGRAM, **changes})
    assert reply.status == 200, reply
    return reply.body


def member(api: Api, key: str, member_id: str) -> dict[str, Any]:
    reply = api.call("GET", f"/v1/members/{member_id}", key=key)
    assert reply.status == 200, reply
    return reply.body


def enrol(api: Api, key: str, **fields: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/members", key=key, body=fields)
    assert reply.status == 201, reply
    return reply.body


def order_earn(api: Api, key: str, member_id: str, order_id: str, total: str, *, idempotency_key: str = "") -> Any:
    body = {"order": {"id": order_id, "total": total, "currency": "EUR"}}
    return api.earn(key, member_id, idempotency_key or f"earn-{order_id}", **body)


def referrals_of(api: Api, key: str, member_id: str) -> list[dict[str, Any]]:
    reply = api.call("GET", f"/v1/members/{member_id}/referrals", key=key)
    assert reply.status == 200, reply
    return reply.body["data"]


def referral_events(tenant: str = "acme") -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    later = now + timedelta(seconds=10)  # past the feed's settle window
    feed = platform().for_tenant_id(tenant, clock=lambda: later, created_at=now - timedelta(days=1)).feed
    page = feed.read(after=None, types=frozenset({EventType.REFERRAL_COMPLETED}), limit=100)
    return [{**dict(event.notice.data), "member_id": event.member_id} for event in page.events if event.notice]


def rewards(api: Api, key: str, member_id: str) -> list[tuple[str, int, str | None]]:
    """The member's referral rewards in its ledger: (idempotency key, points, reference)."""
    return sorted(
        (entry["idempotency_key"], entry["points"], entry["reference"])
        for entry in api.ledger(key, member_id)
        if entry["idempotency_key"].startswith("referral:")
    )


# --- codes -------------------------------------------------------------------------------------


def test_every_member_gets_a_unique_referral_code_shown_in_its_view(api: Api, admin_key: str) -> None:
    # When 12 members are enrolled
    created = [enrol(api, admin_key, external_id=f"c-{i}") for i in range(12)]

    # Then each has a referral code of the unambiguous alphabet, all different
    codes = [body["referral_code"] for body in created]
    assert all(CODE.fullmatch(code) for code in codes), codes
    assert len(set(codes)) == len(codes)
    assert all((body["card_code"], body["referred_by"]) == (None, None) for body in created)
    # And the member's view and the list show the same code
    assert member(api, admin_key, created[0]["id"]) == created[0]
    listed = {m["id"]: m["referral_code"] for m in all_pages(api, admin_key, "/v1/members")}
    assert listed == {body["id"]: body["referral_code"] for body in created}


def test_members_are_found_by_referral_code_and_card_code(api: Api, admin_key: str, other_admin_key: str) -> None:
    ada = enrol(api, admin_key, external_id="ada", card_code="6001-abcd-42")
    enrol(api, admin_key, external_id="bob")
    assert ada["card_code"] == "6001-ABCD-42"  # stored upper-cased

    def find(query: str, key: str = admin_key) -> Any:
        reply = api.call("GET", f"/v1/members?{query}", key=key)
        assert reply.status == 200, reply
        return reply.body

    code = ada["referral_code"]
    found = {"data": [ada], "next_cursor": None}
    nothing = {"data": [], "next_cursor": None}
    assert find(f"referral_code={code}") == found
    assert find(f"referral_code={code.lower()}") == found  # case-insensitive
    assert find("card_code=6001-ABCD-42") == found
    assert find("card_code=6001-abcd-42") == found
    assert find(f"referral_code={code}&external_id=ada") == found  # every identifier given must match
    assert find(f"referral_code={code}&external_id=bob") == nothing
    assert find(f"referral_code={code}&card_code=0000-0000") == nothing
    unknown = "22222222" if code != "22222222" else "33333333"
    assert find(f"referral_code={unknown}") == nothing
    assert find("card_code=9999-9999") == nothing
    # A malformed code is a 400 naming the parameter (0, O, 1, I and L are not in the alphabet)
    assert_invalid(api.call("GET", "/v1/members?referral_code=ABCDEFG0", key=admin_key), "referral_code")
    # And another tenant finds nothing with them, exactly as for unknown codes
    assert find(f"referral_code={code}", other_admin_key) == nothing
    assert find("card_code=6001-ABCD-42", other_admin_key) == nothing


def test_a_card_code_is_unique_and_moves_with_its_member(api: Api, admin_key: str) -> None:
    ada = enrol(api, admin_key, name="Ada", card_code="CARD-0001")
    bob = enrol(api, admin_key, name="Bob")
    before = tenant_state(api, admin_key)

    # A second member with the same card (any case) is a conflict naming its holder; nothing is written
    details = assert_error(
        api.call("POST", "/v1/members", key=admin_key, body={"name": "Eve", "card_code": "card-0001"}),
        409,
        "card_code_taken",
    )
    assert details == {"card_code": "CARD-0001", "member_id": ada["id"]}
    details = assert_error(
        api.call("PATCH", f"/v1/members/{bob['id']}", key=admin_key, body={"card_code": "CARD-0001", "name": "B"}),
        409,
        "card_code_taken",
    )
    assert details == {"card_code": "CARD-0001", "member_id": ada["id"]}
    assert tenant_state(api, admin_key) == before

    def holder(card: str) -> str | None:
        data = api.call("GET", f"/v1/members?card_code={card}", key=admin_key).body["data"]
        return data[0]["id"] if data else None

    # When Ada's card changes, Then the old number is free at once and the new one is hers
    moved = api.call("PATCH", f"/v1/members/{ada['id']}", key=admin_key, body={"card_code": "CARD-0002"})
    assert moved.status == 200 and moved.body["card_code"] == "CARD-0002", moved
    assert (holder("CARD-0001"), holder("CARD-0002")) == (None, ada["id"])
    taken = api.call("PATCH", f"/v1/members/{bob['id']}", key=admin_key, body={"card_code": "CARD-0001"})
    assert taken.status == 200 and taken.body["card_code"] == "CARD-0001", taken
    assert holder("CARD-0001") == bob["id"]
    # Sending the same number again changes nothing else; null clears it and frees it
    same = api.call("PATCH", f"/v1/members/{bob['id']}", key=admin_key, body={"card_code": "card-0001"})
    assert same.status == 200 and same.body["card_code"] == "CARD-0001"
    cleared = api.call("PATCH", f"/v1/members/{ada['id']}", key=admin_key, body={"card_code": None})
    assert cleared.status == 200 and cleared.body["card_code"] is None, cleared
    assert holder("CARD-0002") is None
    reused = enrol(api, admin_key, name="Cy", card_code="CARD-0002")
    assert holder("CARD-0002") == reused["id"]
    # An unknown member is a 404 whatever the card
    assert_error(
        api.call("PATCH", f"/v1/members/{GHOST_MEMBER}", key=admin_key, body={"card_code": "CARD-0009"}),
        404,
        "not_found",
    )
    assert holder("CARD-0009") is None


def test_a_colliding_referral_code_is_drawn_again(api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = enrol(api, admin_key, name="First")
    fresh = "ZZZZ2222" if first["referral_code"] != "ZZZZ2222" else "YYYY2222"
    draws = iter([first["referral_code"], first["referral_code"], fresh])
    monkeypatch.setattr("chalicelib.domain.members.new_referral_code", lambda: next(draws))

    # When the code drawn for a new member is taken (twice), Then it is drawn again and the member enrolled once
    second = enrol(api, admin_key, name="Second", external_id="second")
    assert second["referral_code"] == fresh
    assert [m["id"] for m in all_pages(api, admin_key, "/v1/members")] == [first["id"], second["id"]]
    found = api.call("GET", f"/v1/members?referral_code={first['referral_code']}", key=admin_key).body["data"]
    assert [m["id"] for m in found] == [first["id"]]


def test_a_member_enrolled_before_codes_gets_one_on_demand(api: Api, admin_key: str, other_admin_key: str) -> None:
    # Given a member as enrolled before referral codes existed (no code, no guard)
    legacy = enrol(api, admin_key, name="Old timer")
    models = tenant_models("acme", platform().settings.tenant_table_name("acme"), platform().connection)
    models.code_guard(pk=referral_code_pk(legacy["referral_code"]), sk="#CODE").delete()
    profile = models.member.get(f"MEMBER#{legacy['id']}", "#PROFILE")
    profile.update(actions=[models.member.referral_code.remove()])
    assert member(api, admin_key, legacy["id"])["referral_code"] is None

    # When a code is asked for (twice), Then the member gets one, and keeps it
    path = f"/v1/members/{legacy['id']}/referral-code"
    first = api.call("POST", path, key=admin_key)
    assert first.status == 200 and CODE.fullmatch(first.body["referral_code"]), first
    again = api.call("POST", path, key=admin_key)
    assert again.status == 200 and again.body == first.body
    assert member(api, admin_key, legacy["id"]) == first.body
    found = api.call("GET", f"/v1/members?referral_code={first.body['referral_code']}", key=admin_key)
    assert [m["id"] for m in found.body["data"]] == [legacy["id"]]
    # And it refers like any code
    configure(api, admin_key)
    referee = enrol(api, admin_key, referral_code=first.body["referral_code"])
    assert referee["referred_by"] == legacy["id"]
    # Unknown members and another tenant's members are 404
    assert_error(api.call("POST", f"/v1/members/{GHOST_MEMBER}/referral-code", key=admin_key), 404, "not_found")
    assert_error(api.call("POST", path, key=other_admin_key), 404, "not_found")


# --- partners ------------------------------------------------------------------------------------


def test_partners_identify_members_by_referral_code_or_card_code(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    body = {"partner_id": "coffee", "name": "Coffee Co", "earn_rate": "2", "redeem_rate": "0.01"}
    assert api.call("POST", "/v1/partners", key=admin_key, body=body).status == 201
    bound = {"name": "till", "scopes": ["partner"], "partner_id": "coffee"}
    coffee = api.call("POST", "/v1/api-keys", key=admin_key, body=bound).body["secret"]
    ada = enrol(api, admin_key, external_id="ada", card_code="6001-0001")

    # When the partner earns by the member's referral code (any case), then by its card
    by_code = api.call(
        "POST",
        "/v1/partner/earn",
        key=coffee,
        body={"member": {"referral_code": ada["referral_code"].lower()}, "points": 30},
        idempotency_key="p-1",
    )
    by_card = api.call(
        "POST",
        "/v1/partner/earn",
        key=coffee,
        body={"member": {"card_code": "6001-0001"}, "amount": "5.00"},
        idempotency_key="p-2",
    )
    redeem = api.call(
        "POST",
        "/v1/partner/redeem",
        key=coffee,
        body={"member": {"card_code": "6001-0001"}, "points": 15},
        idempotency_key="p-3",
    )

    # Then each moves the member's points
    assert by_code.status == 201 and by_code.body["transaction"]["member_id"] == ada["id"], by_code
    assert by_card.status == 201 and by_card.body["transaction"]["points"] == 10, by_card
    assert redeem.status == 201 and redeem.body["balance"]["available"] == 25, redeem
    assert api.balance(admin_key, ada["id"])["available"] == 25

    before = tenant_state(api, admin_key)
    # Exactly one identifier: two, or none, are a 400 naming the member
    for who in ({"member_id": ada["id"], "card_code": "6001-0001"}, {}):
        reply = api.call(
            "POST", "/v1/partner/earn", key=coffee, body={"member": who, "points": 1}, idempotency_key="p-4"
        )
        assert_invalid(reply, "member")
    # Unknown codes are 404
    unknown_code = "22222222" if ada["referral_code"] != "22222222" else "33333333"
    unknown = api.call(
        "POST",
        "/v1/partner/earn",
        key=coffee,
        body={"member": {"referral_code": unknown_code}, "points": 1},
        idempotency_key="p-5",
    )
    assert_error(unknown, 404, "not_found")
    assert_error(
        api.call(
            "POST",
            "/v1/partner/redeem",
            key=coffee,
            body={"member": {"card_code": "0000-0000"}, "points": 1},
            idempotency_key="p-6",
        ),
        404,
        "not_found",
    )
    # And another tenant's partner key finds none of this tenant's codes: the same 404 as an unknown code
    assert api.call("POST", "/v1/partners", key=other_admin_key, body=body).status == 201
    theirs = api.call("POST", "/v1/api-keys", key=other_admin_key, body=bound).body["secret"]
    stolen = api.call(
        "POST",
        "/v1/partner/earn",
        key=theirs,
        body={"member": {"referral_code": ada["referral_code"]}, "points": 1},
        idempotency_key="p-5",
    )
    assert_error(stolen, 404, "not_found")
    assert stolen.body == {
        "error": {
            **unknown.body["error"],
            "message": unknown.body["error"]["message"].replace(unknown_code, ada["referral_code"]),
        }
    }
    assert tenant_state(api, admin_key) == before


# --- referrals ---------------------------------------------------------------------------------


def test_the_referral_program_is_versioned_and_validated(api: Api, admin_key: str, other_admin_key: str) -> None:
    first = configure(api, admin_key)
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    second = configure(api, admin_key, enabled=False, effective_from=later.isoformat())
    assert {k: v for k, v in first.items() if k not in {"id", "effective_from", "created_at"}} == {
        "enabled": True,
        "referrer_points": 500,
        "referee_points": 200,
        "min_order_total": "20.00",
        "cap": {"limit": 2, "per": "month"},
        "referee_rewarded_when_capped": True,
        "status": "active",
    }
    assert first["id"].startswith("rpv_") and second["status"] == "scheduled"
    listed = api.call("GET", "/v1/program/referrals", key=admin_key)
    assert [(v["id"], v["status"]) for v in listed.body["data"]] == [
        (first["id"], "active"),
        (second["id"], "scheduled"),
    ]
    assert api.call("GET", "/v1/program/referrals", key=other_admin_key).body == {"data": []}

    for change, field in [
        ({"min_order_total": "20.005"}, "min_order_total"),  # more decimals than EUR has
        ({"referrer_points": 0}, "referrer_points"),
        ({"referee_points": -1}, "referee_points"),
        ({"cap": {"limit": 0, "per": "month"}}, "cap.limit"),
        ({"cap": {"limit": 3, "per": "fortnight"}}, "cap.per"),
        ({"effective_from": "2020-01-01T00:00:00Z"}, "effective_from"),
    ]:
        reply = api.call("PUT", "/v1/program/referrals", key=admin_key, body={**PROGRAM, **change})
        assert_invalid(reply, field, context=str(change))
    assert api.call("GET", "/v1/program/referrals", key=admin_key).body == listed.body


def test_the_first_qualifying_order_rewards_referrer_and_referee_once(api: Api, admin_key: str) -> None:
    # Given a program (500 to the referrer, 200 to the referee, on an order of 20.00 or more)
    configure(api, admin_key)
    referrer = enrol(api, admin_key, name="Ann", email="ann@example.com")
    # When a new member enrols with Ann's code (any case)
    referee = enrol(api, admin_key, name="Ben", referral_code=referrer["referral_code"].lower())

    # Then Ben is Ann's referee, pending
    assert referee["referred_by"] == referrer["id"] and CODE.fullmatch(referee["referral_code"])
    (pending,) = referrals_of(api, admin_key, referrer["id"])
    assert {k: v for k, v in pending.items() if k != "enrolled_at"} == {
        "referee_id": referee["id"],
        "referrer_id": referrer["id"],
        "status": "pending",
        "qualified_at": None,
        "completed_at": None,
        "order_id": None,
        "referrer_points": 0,
        "referee_points": 0,
    }

    # When Ben earns on an order below the minimum, and on one without an order, Then nothing happens
    assert order_earn(api, admin_key, referee["id"], "o-small", "19.99").status == 201
    assert api.earn(admin_key, referee["id"], "plain", points=50).status == 201
    assert referrals_of(api, admin_key, referrer["id"])[0]["status"] == "pending"
    assert api.balance(admin_key, referrer["id"])["available"] == 0

    # When Ben's first qualifying order earn commits
    qualifying = order_earn(api, admin_key, referee["id"], "o-1", "25.00")
    assert qualifying.status == 201, qualifying
    assert qualifying.body["transaction"]["points"] == 25

    # Then Ann gets 500 and Ben 200, each once, through the ledger under reserved keys
    assert rewards(api, admin_key, referrer["id"]) == [
        (f"referral:{referee['id']}:referrer", 500, f"referral:{referee['id']}")
    ]
    assert rewards(api, admin_key, referee["id"]) == [
        (f"referral:{referee['id']}:referee", 200, f"referral:{referee['id']}")
    ]
    assert api.balance(admin_key, referrer["id"])["available"] == 500
    assert api.balance(admin_key, referee["id"])["available"] == 19 + 50 + 25 + 200
    entry = next(e for e in api.ledger(admin_key, referrer["id"]) if e["idempotency_key"].startswith("referral:"))
    assert (entry["type"], entry["metadata"]) == ("earn", {"referrer_id": referrer["id"], "referee_id": referee["id"]})
    (done,) = referrals_of(api, admin_key, referrer["id"])
    assert (done["status"], done["order_id"], done["referrer_points"], done["referee_points"]) == (
        "completed",
        "o-1",
        500,
        200,
    )
    assert done["qualified_at"] and done["completed_at"]
    # And the feed has one referral.completed event naming both and the points
    (event,) = referral_events()
    assert event.pop("qualified_at")[:23] == done["qualified_at"][:23]  # to the millisecond
    assert event == {
        "member_id": referrer["id"],
        "referrer_id": referrer["id"],
        "referee_id": referee["id"],
        "status": "completed",
        "referrer_points": 500,
        "referee_points": 200,
        "order_id": "o-1",
    }

    # When the qualifying earn is replayed, and later orders qualify too, Then nothing more is rewarded
    replay = order_earn(api, admin_key, referee["id"], "o-1", "25.00")
    assert replay.status == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.body == qualifying.body
    assert order_earn(api, admin_key, referee["id"], "o-2", "80.00").status == 201
    assert len(rewards(api, admin_key, referrer["id"])) == len(rewards(api, admin_key, referee["id"])) == 1
    assert api.balance(admin_key, referrer["id"])["available"] == 500
    assert len(referral_events()) == 1
    # And a client cannot forge a referral key
    forged = api.earn(admin_key, referrer["id"], f"referral:{referee['id']}:referrer", points=500)
    assert_invalid(forged, "Idempotency-Key")


def test_the_commerce_intake_paid_order_completes_a_referral(api: Api, admin_key: str) -> None:
    configure(api, admin_key)
    referrer = enrol(api, admin_key, name="Ann")
    referee = enrol(api, admin_key, external_id="shop-7", referral_code=referrer["referral_code"])
    paid = {
        "type": "paid",
        "event_id": "e-1",
        "order": {"id": "shop-order-1", "total": "42.00", "currency": "EUR"},
        "customer": {"external_id": "shop-7"},
    }
    reply = api.call("POST", "/v1/integrations/orders", key=admin_key, body=paid)
    assert reply.status == 200 and reply.body["outcome"] == "earned", reply
    again = api.call("POST", "/v1/integrations/orders", key=admin_key, body={**paid, "event_id": "e-2"})
    assert again.status == 200, again
    (done,) = referrals_of(api, admin_key, referrer["id"])
    assert (done["status"], done["order_id"]) == ("completed", "shop-order-1")
    assert api.balance(admin_key, referrer["id"])["available"] == 500
    assert api.balance(admin_key, referee["id"])["available"] == 42 + 200


def test_the_cap_per_period_makes_further_referrals_capped(api: Api, admin_key: str) -> None:
    # Given a cap of 2 rewarded referrals per month, the referee still rewarded past it
    configure(api, admin_key)
    referrer = enrol(api, admin_key, name="Ann")
    referees = [enrol(api, admin_key, referral_code=referrer["referral_code"]) for _ in range(3)]

    # When all three make a qualifying order this month
    for i, referee in enumerate(referees):
        assert order_earn(api, admin_key, referee["id"], f"o-{i}", "30.00").status == 201

    # Then the first two reward Ann; the third is capped, its referee still rewarded
    statuses = {
        r["referee_id"]: (r["status"], r["referrer_points"], r["referee_points"])
        for r in referrals_of(api, admin_key, referrer["id"])
    }
    assert statuses == {
        referees[0]["id"]: ("completed", 500, 200),
        referees[1]["id"]: ("completed", 500, 200),
        referees[2]["id"]: ("capped", 0, 200),
    }
    assert api.balance(admin_key, referrer["id"])["available"] == 1000
    assert [api.balance(admin_key, r["id"])["available"] for r in referees] == [230, 230, 230]
    assert sorted(e["status"] for e in referral_events()) == ["capped", "completed", "completed"]

    # When the program no longer rewards the referee past the cap, Then a fourth referee gets nothing either
    configure(api, admin_key, referee_rewarded_when_capped=False)
    fourth = enrol(api, admin_key, referral_code=referrer["referral_code"])
    assert order_earn(api, admin_key, fourth["id"], "o-4", "30.00").status == 201
    mine = next(r for r in referrals_of(api, admin_key, referrer["id"]) if r["referee_id"] == fourth["id"])
    assert (mine["status"], mine["referrer_points"], mine["referee_points"]) == ("capped", 0, 0)
    assert api.balance(admin_key, fourth["id"])["available"] == 30
    assert api.balance(admin_key, referrer["id"])["available"] == 1000


def test_a_disabled_program_leaves_referrals_pending(api: Api, admin_key: str) -> None:
    referrer = enrol(api, admin_key, name="Ann")
    referee = enrol(api, admin_key, referral_code=referrer["referral_code"])
    # Without a program, and with a disabled one, an order qualifies nothing
    assert order_earn(api, admin_key, referee["id"], "o-1", "50.00").status == 201
    configure(api, admin_key, enabled=False)
    assert order_earn(api, admin_key, referee["id"], "o-2", "50.00").status == 201
    assert referrals_of(api, admin_key, referrer["id"])[0]["status"] == "pending"
    # Once enabled, the next qualifying order is the first qualifying one
    configure(api, admin_key)
    assert order_earn(api, admin_key, referee["id"], "o-3", "50.00").status == 201
    (done,) = referrals_of(api, admin_key, referrer["id"])
    assert (done["status"], done["order_id"]) == ("completed", "o-3")


def test_self_referrals_and_unknown_codes_are_refused_writing_nothing(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    configure(api, admin_key)
    ann = enrol(api, admin_key, name="Ann", email="ann@example.com", external_id="ann-1")
    theirs = enrol(api, other_admin_key, name="Other brand's member")
    before = tenant_state(api, admin_key)
    before_referrals = referrals_of(api, admin_key, ann["id"])
    code = ann["referral_code"]

    # The referrer's own email (any case) or external id is the same person
    for fields, same in [({"email": "ANN@example.com"}, ["email"]), ({"external_id": "ann-1"}, ["external_id"])]:
        reply = api.call("POST", "/v1/members", key=admin_key, body={**fields, "referral_code": code})
        assert assert_error(reply, 422, "self_referral", str(fields)) == {"same": same}
    # An unknown code, and another tenant's code, are the same 422
    unknown_code = "22222222" if code != "22222222" else "33333333"
    unknown = api.call("POST", "/v1/members", key=admin_key, body={"name": "X", "referral_code": unknown_code})
    assert assert_error(unknown, 422, "unknown_referral_code") == {"referral_code": unknown_code}
    foreign = api.call(
        "POST", "/v1/members", key=admin_key, body={"name": "X", "referral_code": theirs["referral_code"]}
    )
    assert assert_error(foreign, 422, "unknown_referral_code") == {"referral_code": theirs["referral_code"]}
    assert foreign.body["error"]["message"] == unknown.body["error"]["message"].replace(
        unknown_code, theirs["referral_code"]
    )
    # A malformed code is a 400
    assert_invalid(api.call("POST", "/v1/members", key=admin_key, body={"referral_code": "ann"}), "referral_code")

    # And nothing was written: no member, no referral
    assert tenant_state(api, admin_key) == before
    assert referrals_of(api, admin_key, ann["id"]) == before_referrals == []


def test_another_tenant_cannot_see_or_use_referrals(api: Api, admin_key: str, other_admin_key: str) -> None:
    configure(api, admin_key)
    ann = enrol(api, admin_key, name="Ann")
    enrol(api, admin_key, referral_code=ann["referral_code"])
    assert_error(api.call("GET", f"/v1/members/{ann['id']}/referrals", key=other_admin_key), 404, "not_found")
    assert_error(api.call("GET", f"/v1/members/{GHOST_MEMBER}/referrals", key=admin_key), 404, "not_found")
    assert api.call("GET", "/v1/program/referrals", key=other_admin_key).body == {"data": []}


def test_referrals_are_listed_newest_first_page_by_page(api: Api, admin_key: str) -> None:
    ann = enrol(api, admin_key, name="Ann")
    referees = [enrol(api, admin_key, referral_code=ann["referral_code"])["id"] for _ in range(5)]
    listed = all_pages(api, admin_key, f"/v1/members/{ann['id']}/referrals", limit=2)
    assert [r["referee_id"] for r in listed] == referees[::-1]
    assert all(r["status"] == "pending" for r in listed)
    # A referee refers nobody
    assert referrals_of(api, admin_key, referees[0]) == []


def test_a_completion_that_fails_after_the_order_is_finished_once_later(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(api, admin_key)
    ann = enrol(api, admin_key, name="Ann")
    ben = enrol(api, admin_key, referral_code=ann["referral_code"])

    # Given the completion's final write fails (throttled) after the order earn committed
    def throttled(self: ReferralRepository, *args: Any, **kwargs: Any) -> bool:
        raise TransientStoreError("injected: ThrottlingException")

    with monkeypatch.context() as patch:
        patch.setattr(ReferralRepository, "finish", throttled)
        earned = order_earn(api, admin_key, ben["id"], "o-1", "30.00")
        # Then the order earn still answers 201 (it is committed), the referral left qualified
        assert earned.status == 201, earned
        assert referrals_of(api, admin_key, ann["id"])[0]["status"] == "qualified"
        # And a replay of the order meets the same failure and still replays the order
        replay = order_earn(api, admin_key, ben["id"], "o-1", "30.00")
        assert replay.status == 201 and replay.body == earned.body
    # The rewards themselves were credited once each (the failure came after them)
    assert api.balance(admin_key, ann["id"])["available"] == 500

    # When the job runs (twice), Then the referral is finished once, nothing credited twice
    for _ in range(2):
        ran = api.call("POST", "/v1/jobs/complete-referrals/run", key=admin_key, body={})
        assert ran.status == 201 and ran.body["status"] == "succeeded", ran
    (done,) = referrals_of(api, admin_key, ann["id"])
    assert (done["status"], done["referrer_points"], done["referee_points"]) == ("completed", 500, 200)
    assert api.balance(admin_key, ann["id"])["available"] == 500
    assert api.balance(admin_key, ben["id"])["available"] == 230
    assert len(referral_events()) == 1
    runs = api.call("GET", "/v1/jobs/runs", key=admin_key).body["data"]
    assert [run["counts"] for run in runs] == [
        {"referrals": 0, "completed": 0, "capped": 0},
        {"referrals": 1, "completed": 1, "capped": 0},
    ]


def test_a_replay_of_the_qualifying_order_finishes_a_deferred_completion(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(api, admin_key)
    ann = enrol(api, admin_key, name="Ann")
    ben = enrol(api, admin_key, referral_code=ann["referral_code"])
    with monkeypatch.context() as patch:
        patch.setattr(ReferralRepository, "finish", lambda *a, **k: (_ for _ in ()).throw(TransientStoreError("x")))
        assert order_earn(api, admin_key, ben["id"], "o-1", "30.00").status == 201
    replay = order_earn(api, admin_key, ben["id"], "o-1", "30.00")
    assert replay.status == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert referrals_of(api, admin_key, ann["id"])[0]["status"] == "completed"
    assert (api.balance(admin_key, ann["id"])["available"], api.balance(admin_key, ben["id"])["available"]) == (
        500,
        230,
    )


def test_concurrent_code_requests_for_an_older_member_agree_on_one_code(
    api: Api, admin_key: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "moto":
        pytest.skip("moto's in-process mock applies conditional writes without a lock (README, emulator notes)")
    # Given a member enrolled before codes (no code, no guard)
    legacy = enrol(api, admin_key, name="Old timer")
    models = tenant_models("acme", platform().settings.tenant_table_name("acme"), platform().connection)
    models.code_guard(pk=referral_code_pk(legacy["referral_code"]), sk="#CODE").delete()
    models.member.get(f"MEMBER#{legacy['id']}", "#PROFILE").update(actions=[models.member.referral_code.remove()])
    drawn: list[str] = []
    lock = threading.Lock()
    together = threading.Barrier(8, timeout=60)

    def draw() -> str:
        with lock:
            code = f"{len(drawn) + 2:02d}AAAAAA".replace("0", "Z").replace("1", "Y")
            drawn.append(code)
        together.wait()  # every request has read the member without a code before any writes
        return code

    monkeypatch.setattr("chalicelib.domain.members.new_referral_code", draw)
    members = platform().for_tenant_id("acme").members

    # When 8 requests for its code run at once, each having drawn its own code
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: members.assign_referral_code(legacy["id"]).referral_code, range(8)))

    # Then all answer the same code, its guard names the member, and no other drawn code was kept
    (winner,) = set(codes)
    assert winner in drawn and len(drawn) == 8, drawn
    assert member(api, admin_key, legacy["id"])["referral_code"] == winner
    owners = {code: models.code_guard.count(referral_code_pk(code)) for code in drawn}
    assert owners == {code: int(code == winner) for code in drawn}
