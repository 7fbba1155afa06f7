"""A member's data on request and erasure that keeps the books, on both emulators.

A member is given a full history (profile, consent, earns with personal metadata and
descriptions, a pending earn, a redemption, a coupon, a partner's earn, a tier change, a
referral each way, a subscription, a birthday notice). The export is checked against
everything written for them; after erasure a walk over every item of the tenant's table
(done here only) finds none of their personal values, while the books still add up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from chalicelib.domain import events as events_module
from chalicelib.services import platform
from tests.support.checks import all_pages, assert_error
from tests.support.http import Api

TZ = ZoneInfo("Europe/Helsinki")
PROGRAM = {
    "points_per_currency_unit": "1",
    "rounding": "floor",
    "personal_metadata_keys": ["note"],
    "personal_descriptions": True,
}


def partner_key(api: Api, admin_key: str) -> str:
    body = {"partner_id": "coffee", "name": "Coffee Co", "earn_rate": "2", "redeem_rate": "0.01"}
    assert api.call("POST", "/v1/partners", key=admin_key, body=body).status == 201
    reply = api.call(
        "POST", "/v1/api-keys", key=admin_key, body={"name": "till", "scopes": ["partner"], "partner_id": "coffee"}
    )
    assert reply.status == 201, reply
    return reply.body["secret"]


def ok(reply: Any, status: int = 201) -> Any:
    assert reply.status == status, reply
    return reply.body


@pytest.fixture
def history(api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Member "ada" with a full history; "ref" referred her, and she referred "kid"."""
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    ok(api.call("PUT", "/v1/program", key=admin_key, body=PROGRAM), 200)
    tiers = {"metric": "points", "window": {"kind": "calendar_year"}, "tiers": [{"name": "silver", "threshold": "100"}]}
    ok(api.call("PUT", "/v1/program/tiers", key=admin_key, body=tiers), 200)
    ok(
        api.call(
            "PUT",
            "/v1/program/plans",
            key=admin_key,
            body={"plans": [{"plan_id": "club", "name": "Club", "multiplier": "2"}]},
        ),
        200,
    )
    voucher = ok(
        api.call(
            "POST",
            "/v1/rewards",
            key=admin_key,
            body={"name": "Voucher", "type": "fixed_discount", "amount": "5.00", "points_cost": 50},
        )
    )
    coffee = partner_key(api, admin_key)
    referrer = ok(api.call("POST", "/v1/members", key=admin_key, body={"name": "Ref Erer"}))
    birthday = datetime.now(TZ).date().replace(year=1990)
    personal = {
        "external_id": "ada-external-771",
        "email": "ada.lovelace.771@example.com",
        "name": "Ada Lovelace-Byron",
        "birthday": birthday.isoformat(),
        "card_code": "CARD-7711-0042",
    }
    ada = ok(
        api.call(
            "POST",
            "/v1/members",
            key=admin_key,
            body={**personal, "marketing_consent": True, "referral_code": referrer["referral_code"]},
        )
    )
    member = ada["id"]
    personal["referral_code"] = ada["referral_code"]
    kid = ok(api.call("POST", "/v1/members", key=admin_key, body={"referral_code": ada["referral_code"]}))
    # movements: an earn with personal metadata and description, a pending earn, a redemption, a coupon
    ok(
        api.earn(
            admin_key,
            member,
            "pv-earn-1",
            points=300,
            description="Delivered to 12 Baker Street",
            metadata={"note": "rings twice at 12 Baker Street", "channel": "web"},
        )
    )
    ok(api.earn(admin_key, member, "pv-earn-2", points=40, pending_days=14))
    ok(api.redeem(admin_key, member, "pv-redeem-1", points=20))
    coupon = ok(
        api.call("POST", f"/v1/members/{member}/rewards/{voucher['id']}/redeem", key=admin_key, idempotency_key="pv-r")
    )
    partner = ok(
        api.call(
            "POST",
            "/v1/partner/earn",
            key=coffee,
            body={"member": {"external_id": personal["external_id"]}, "points": 25, "reference": "cup-1"},
            idempotency_key="pv-cup-1",
        )
    )
    now = datetime.now(UTC)
    subscription = {
        "plan_id": "club",
        "period_start": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(days=30)).isoformat(),
        "reference": "inv-pv-1",
    }
    ok(api.call("POST", f"/v1/members/{member}/subscriptions", key=admin_key, body=subscription, idempotency_key="s1"))
    ok(api.call("POST", "/v1/jobs/notify/run", key=admin_key, body={}))  # her birthday: a member.birthday notice
    return {
        "member": member,
        "personal": personal,
        "referrer": referrer["id"],
        "kid": kid["id"],
        "coupon": coupon,
        "partner_transaction": partner["transaction"]["id"],
        "coffee": coffee,
    }


def events_of(api: Api, key: str, member_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.call("GET", "/v1/events?limit=100" + (f"&after={cursor}" if cursor else ""), key=key)
        assert page.status == 200, page
        found += [event for event in page.body["data"] if event["member_id"] == member_id]
        if len(page.body["data"]) < 100:
            return found
        cursor = page.body["next_cursor"]


def test_the_export_holds_everything_written_for_the_member(api: Api, admin_key: str, history: dict) -> None:
    member = history["member"]
    # Given she withdrew her marketing consent, then gave it again (with another key)
    other = api.create_key(admin_key, "write")
    for value in (False, True):
        ok(api.call("PATCH", f"/v1/members/{member}", key=other, body={"marketing_consent": value}), 200)

    # When the brand exports the member's data
    export = ok(api.call("GET", f"/v1/members/{member}/export", key=admin_key), 200)

    # Then the profile and consent are the member's
    profile = ok(api.call("GET", f"/v1/members/{member}", key=admin_key), 200)
    assert export["member"] == profile
    assert {k: profile[k] for k in history["personal"]} == history["personal"]
    # And the consent's history holds every change, with its time, source and value, as /consents lists it
    consents = ok(api.call("GET", f"/v1/members/{member}/consents", key=admin_key), 200)
    assert export["consents"] == {"marketing": True, "updated_at": profile["updated_at"], "history": consents["data"]}
    admin_id, other_id = f"key_{admin_key.split('_')[1]}", f"key_{other.split('_')[1]}"
    assert [(c["value"], c["previous"], c["source"]["key_id"]) for c in export["consents"]["history"]] == [
        (True, None, admin_id),
        (False, True, other_id),
        (True, False, other_id),
    ]
    changes = export["consents"]["history"]
    assert [c["at"] for c in changes] == sorted(c["at"] for c in changes)
    # And the whole ledger, oldest first, as the transactions route shows it
    ledger = api.ledger(admin_key, member)
    assert export["transactions"] == list(reversed(ledger))
    assert [e["idempotency_key"] for e in export["transactions"][:3]] == ["pv-earn-1", "pv-earn-2", "pv-redeem-1"]
    # And the balance and its unspent lots
    balance = api.balance(admin_key, member)
    for name in ("available", "pending", "lifetime_earned", "lifetime_redeemed", "lifetime_adjusted"):
        assert export["balance"][name] == balance[name], name
    # (points that never expire form no lot: here only the pending earn's)
    assert [(lot["remaining"], lot["matures_at"] is not None) for lot in export["lots"]] == [(balance["pending"], True)]
    # And the coupon, the referrals both ways, the subscription, the partner's earn, the tier change
    assert export["coupons"] == all_pages(api, admin_key, f"/v1/members/{member}/coupons")
    assert [c["code"] for c in export["coupons"]] == [history["coupon"]["coupon"]["code"]]
    assert export["referred_by"]["referrer_id"] == history["referrer"]
    assert export["referrals"] == all_pages(api, admin_key, f"/v1/members/{member}/referrals")
    assert [r["referee_id"] for r in export["referrals"]] == [history["kid"]]
    assert export["subscriptions"] == all_pages(api, admin_key, f"/v1/members/{member}/subscriptions")
    assert [s["plan_id"] for s in export["subscriptions"]] == ["club"]
    assert [t["id"] for t in export["partner_activity"]] == [history["partner_transaction"]]
    assert [e["type"] for e in export["tier_history"]] == ["tier.changed"]
    # And the member's events are those of the feed
    feed = events_of(api, admin_key, member)
    assert sorted(e["id"] for e in export["events"]) == sorted(e["id"] for e in feed)
    assert {e["type"] for e in export["events"]} >= {
        "member.created",
        "points.earned",
        "points.redeemed",
        "tier.changed",
        "subscription.started",
        "member.birthday",
    }


def test_the_export_holds_challenges_badges_and_transfers_and_the_erasure_keeps_them(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    program = {**PROGRAM, "transfers": {"enabled": True, "minimum": 1, "daily_maximum": None}}
    ok(api.call("PUT", "/v1/program", key=admin_key, body=program), 200)
    now = datetime.now(UTC)
    window = {"starts_at": (now - timedelta(days=1)).isoformat(), "ends_at": (now + timedelta(days=30)).isoformat()}
    first = {"id": "first-order", "name": "First order", "description": "An order in the month"}
    ok(
        api.call(
            "POST",
            "/v1/challenges",
            key=admin_key,
            body={**window, "name": "First order", "kind": "orders", "goal": 1, "badge": first},
        )
    )
    ok(
        api.call(
            "POST",
            "/v1/challenges",
            key=admin_key,
            body={**window, "name": "Big spender", "kind": "spend", "goal": "1000", "reward_points": 100},
        )
    )
    # Given a member who completed one challenge (and its badge), made progress in another,
    # sent points to a friend and received some back
    ada = api.enrol(admin_key, name="Ada Transfer", external_id="ada-trf-9")
    bob = api.enrol(admin_key, name="Bob Friend")
    order = {"order": {"id": "o-ada-1", "total": "40.00", "currency": "EUR"}}
    ok(api.earn(admin_key, ada, "ch-earn-1", **order))
    ok(api.earn(admin_key, bob, "ch-earn-2", points=30))
    note = "For Bob, from Ada at 12 Baker Street"
    sent = ok(
        api.call(
            "POST",
            f"/v1/members/{ada}/transfers",
            key=admin_key,
            body={"to": {"member_id": bob}, "points": 15, "description": note},
            idempotency_key="trf-1",
        )
    )
    back = ok(
        api.call(
            "POST",
            f"/v1/members/{bob}/transfers",
            key=admin_key,
            body={"to": {"member_id": ada}, "points": 10},
            idempotency_key="trf-2",
        )
    )
    # (and the friend's own transfer to somebody else, with his own note)
    carol = api.enrol(admin_key, name="Carol Third")
    own = "Bob's own note to Carol"
    body = {"to": {"member_id": carol}, "points": 5, "description": own}
    ok(api.call("POST", f"/v1/members/{bob}/transfers", key=admin_key, body=body, idempotency_key="trf-3"))
    bob_before = api.ledger(admin_key, bob)

    # When the brand exports her data
    export = ok(api.call("GET", f"/v1/members/{ada}/export", key=admin_key), 200)

    # Then her challenges with her progress, and her badge, are those her own routes list
    listed = ok(api.call("GET", f"/v1/members/{ada}/challenges", key=admin_key), 200)
    assert export["challenges"] == listed["data"]
    progress = {item["challenge"]["name"]: item["progress"] for item in export["challenges"]}
    assert (progress["First order"]["completed"], progress["First order"]["value"]) == (True, "1")
    assert (progress["Big spender"]["completed"], progress["Big spender"]["value"]) == (False, "40")
    badges = ok(api.call("GET", f"/v1/members/{ada}/badges", key=admin_key), 200)
    assert export["badges"] == badges["data"]
    assert [(b["badge"]["id"], b["badge"]["name"]) for b in export["badges"]] == [("first-order", "First order")]
    # And both transfers are in her ledger, as its entries of type transfer, each with its counterpart
    transfers = [entry for entry in export["transactions"] if entry["type"] == "transfer"]
    assert [(t["points"], t["reference"], t["description"]) for t in transfers] == [
        (-15, sent["id"], note),
        (10, back["id"], None),
    ]
    assert transfers[0]["metadata"]["to_member_id"] == bob and transfers[1]["metadata"]["from_member_id"] == bob
    assert [t["id"] for t in transfers] == [sent["transaction"]["id"], transfers[1]["id"]]
    types = [e["type"] for e in export["events"]]
    assert {"challenge.completed", "badge.awarded"} <= set(types) and types.count("points.transferred") == 2
    # (a member with none of them has an empty badge list and no progress)
    other = ok(api.call("GET", f"/v1/members/{bob}/export", key=admin_key), 200)
    assert other["badges"] == [] and all(item["progress"]["value"] in ("0", "0.00") for item in other["challenges"])

    # When she is erased
    ok(api.call("POST", f"/v1/members/{ada}/erase", key=admin_key, idempotency_key="trf-erase"), 200)

    # Then her progress and badge stay (ids, figures and dates: the brand's challenge, no personal
    # data), and so do her transfers' entries, without the description (marked personal)
    kept = sorted(item["sk"]["S"] for item in _table_items("acme") if item["pk"]["S"] == f"MEMBER#{ada}")
    assert [sk.split("#")[1] for sk in kept if sk.startswith("CHL#")] == ["B", "P", "P"]
    ledger = [entry for entry in api.ledger(admin_key, ada) if entry["type"] == "transfer"]
    assert sorted((e["points"], e["reference"], e["description"]) for e in ledger) == [
        (-15, sent["id"], None),
        (10, back["id"], None),
    ]
    # And her note leaves the friend's side of her transfer too (the same description, marked
    # personal); the rest of his ledger is unchanged, his own note to somebody else included
    bob_after = api.ledger(admin_key, bob)
    received = [e for e in bob_before if e["reference"] == sent["id"]]
    assert [e["description"] for e in received] == [note]
    assert bob_after == [e | {"description": None} if e["reference"] == sent["id"] else e for e in bob_before]
    assert [e["description"] for e in bob_after if e["type"] == "transfer"] == [own, None, None]
    assert "Baker Street" not in json.dumps(_table_items("acme"))


def test_an_export_records_its_audit_entry_naming_the_callers_key_and_no_secret(api: Api, admin_key: str) -> None:
    # Given a member, and a second admin key that exports her data
    member = api.enrol(admin_key, name="Ada Audited", email="ada.audited@example.com", marketing_consent=True)
    exporter = api.create_key(admin_key, "admin")
    exporter_id = f"key_{exporter.split('_')[1]}"
    assert all_pages(api, admin_key, "/v1/audit?action=member.exported") == []

    # When the second key exports the member's data
    export = ok(api.call("GET", f"/v1/members/{member}/export", key=exporter), 200)
    assert export["member"]["id"] == member

    # Then the trail holds one member.exported entry naming that key's id, the member, and nothing else
    (entry,) = all_pages(api, admin_key, "/v1/audit?action=member.exported")
    assert entry["actor"] == {"key_id": exporter_id, "channel": "api"}
    assert entry["target"] == {"type": "member", "id": member}
    assert (entry["before"], entry["after"]) == (None, None)
    # And no secret nor the member's personal data: neither key's secret, nor her name or email
    text = json.dumps(all_pages(api, admin_key, "/v1/audit"))
    assert "lk_" not in text
    assert not [value for value in (exporter, admin_key, "Ada Audited", "ada.audited@example.com") if value in text]

    # And an export refused (an unknown member, an erased one, a key without admin) records nothing
    ok(api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="audit-erase"), 200)
    reader = api.create_key(admin_key, "read")
    assert_error(api.call("GET", "/v1/members/mem_01JD0000000000000000000000/export", key=exporter), 404, "not_found")
    assert_error(api.call("GET", f"/v1/members/{member}/export", key=exporter), 410, "member_erased")
    assert_error(api.call("GET", f"/v1/members/{member}/export", key=reader), 403, "forbidden")
    assert [e["id"] for e in all_pages(api, admin_key, "/v1/audit?action=member.exported")] == [entry["id"]]


def _table_items(tenant_id: str) -> list[dict[str, Any]]:
    """Every item of the tenant's table (a scan: in this test only)."""
    settings = platform().settings
    client = boto3.client("dynamodb", region_name=settings.aws_region, endpoint_url=settings.dynamodb_endpoint)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": settings.tenant_table_name(tenant_id)}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_erasure_removes_the_personal_data_and_keeps_the_books(api: Api, admin_key: str, history: dict) -> None:
    member, personal = history["member"], history["personal"]
    before = api.balance(admin_key, member)
    day = datetime.now(TZ).date()
    span = f"from={day - timedelta(days=1)}&to={day}"
    settlement = ok(api.call("GET", f"/v1/partners/coffee/settlement?{span}", key=admin_key), 200)
    referrer_before = api.balance(admin_key, history["referrer"])

    # When the brand erases the member
    erased = api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="erase-1")

    # Then the answer says what was settled
    assert erased.status == 200, erased
    assert erased.body["points_forfeited"] == before["available"]
    assert erased.body["pending_forfeited"] == before["pending"]
    # And the same request again, or another key, answers the first erasure
    again = api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="erase-1")
    other = api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="erase-2")
    assert again.body == other.body == erased.body and again.headers["idempotent-replayed"] == "true"
    # And a key already used for another request is refused
    assert_error(
        api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="pv-earn-1"),
        422,
        "idempotency_key_reused",
    )

    # And requests for the member answer 410
    for method, path, body in (
        ("GET", f"/v1/members/{member}", None),
        ("PATCH", f"/v1/members/{member}", {"name": "Back again"}),
        ("GET", f"/v1/members/{member}/balance", None),
        ("GET", f"/v1/members/{member}/export", None),
        ("POST", f"/v1/members/{member}/earn", {"points": 5}),
        ("GET", f"/v1/members/{member}/subscriptions", None),
    ):
        reply = api.call(method, path, key=admin_key, body=body, idempotency_key="late-1" if method == "POST" else None)
        assert_error(reply, 410, "member_erased", f"{method} {path}")
    # And the erased identifiers find nobody
    for name in ("external_id", "card_code", "referral_code"):
        found = api.call("GET", f"/v1/members?{name}={personal[name]}", key=admin_key)
        assert found.body == {"data": [], "next_cursor": None}, name
    listed = all_pages(api, admin_key, "/v1/members")
    assert member not in {m["id"] for m in listed}
    partner_earn = api.call(
        "POST",
        "/v1/partner/earn",
        key=history["coffee"],
        body={"member": {"external_id": personal["external_id"]}, "points": 5},
        idempotency_key="pv-cup-2",
    )
    assert_error(partner_earn, 404, "not_found")

    # And the books: the erasure's entry settled every point; the ledger still adds up
    ledger = api.ledger(admin_key, member)
    last = ledger[0]
    assert (last["type"], last["reason"], last["points"]) == (
        "adjust",
        "member_erased",
        -(before["available"] + before["pending"]),
    )
    assert last["balance_after"] == 0 and last["id"] == erased.body["transaction_id"]
    assert sum(entry["points"] for entry in ledger) == 0
    assert api.balance(admin_key, history["referrer"]) == referrer_before
    assert ok(api.call("GET", f"/v1/partners/coffee/settlement?{span}", key=admin_key), 200) == settlement

    # And member.erased carries ids and points only; no event of the feed carries personal data
    feed = events_of(api, admin_key, member)
    (gone,) = [e for e in feed if e["type"] == "member.erased"]
    assert set(gone["data"]) == {"member_id", "erased_at", "points_forfeited", "pending_forfeited", "transaction_id"}
    text = json.dumps(feed)
    secrets = [*personal.values(), "Baker Street"]
    assert not [value for value in secrets if value in text]
    assert {"channel": "web"} in [e["data"].get("metadata") for e in feed]  # unmarked metadata stays

    # And a walk over every item of the tenant's table finds none of the member's personal values
    items = json.dumps(_table_items("acme"))
    assert not [value for value in secrets if value in items]


def test_an_import_cannot_bring_an_erased_member_back(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key, external_id="gone-1", name="Gone")
    assert api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="e-1").status == 200

    # When an import names the erased member's external id (and a new one)
    imported = ok(
        api.call("POST", "/v1/imports", key=admin_key, body={"csv": "external_id,name\ngone-1,Gone\nnew-1,New\n"}), 202
    )
    from chalicelib.jobs.imports import run_import

    run_import("acme", imported["id"], budget_seconds=None)

    # Then that row fails with a clear error, and only the new member is enrolled
    done = ok(api.call("GET", f"/v1/imports/{imported['id']}", key=admin_key), 200)
    assert (done["counts"]["imported"], done["counts"]["failed"]) == (1, 1), done
    (issue,) = done["errors"]
    assert (issue["row"], issue["code"]) == (2, "member_erased"), issue
    assert api.call("GET", "/v1/members?external_id=gone-1", key=admin_key).body["data"] == []


def test_the_retention_job_erases_members_inactive_for_the_programs_years(api: Api, admin_key: str) -> None:
    ok(api.call("PUT", "/v1/program", key=admin_key, body={**PROGRAM, "erase_inactive_after_years": 2}), 200)
    members = [api.enrol(admin_key, name=f"Sleeper {i}") for i in range(2)]
    ok(api.earn(admin_key, members[0], "ret-1", points=10))
    now = datetime.now(UTC)

    def run(as_of: datetime) -> dict[str, int]:
        reply = ok(api.call("POST", "/v1/jobs/erase-inactive/run", key=admin_key, body={"as_of": as_of.isoformat()}))
        return reply["counts"]

    # When the job runs a year on, nobody has been inactive for two years
    assert run(now + timedelta(days=366)) == {"members_indexed": 0, "members_checked": 0, "members_erased": 0}
    # When it runs three years on, both are erased, their points settled
    assert run(now + timedelta(days=3 * 366)) == {"members_indexed": 2, "members_checked": 2, "members_erased": 2}
    for member in members:
        assert_error(api.call("GET", f"/v1/members/{member}", key=admin_key), 410, "member_erased")
    assert api.ledger(admin_key, members[0])[0]["points"] == -10
    # And a rerun finds nothing left to do
    assert run(now + timedelta(days=3 * 366)) == {"members_indexed": 0, "members_checked": 0, "members_erased": 0}


def test_an_imported_members_external_id_leaves_the_ledgers_keys_too(api: Api, admin_key: str) -> None:
    # Given a member enrolled by a bulk import, with an opening balance (keyed by the external id)
    from chalicelib.jobs.imports import run_import

    imported = ok(
        api.call("POST", "/v1/imports", key=admin_key, body={"csv": "external_id,points\nimp-77-xq,40\n"}), 202
    )
    run_import("acme", imported["id"], budget_seconds=None)
    (member,) = api.call("GET", "/v1/members?external_id=imp-77-xq", key=admin_key).body["data"]
    assert [e["idempotency_key"] for e in api.ledger(admin_key, member["id"])] == ["import:imp-77-xq"]

    # When the member is erased
    erased = ok(api.call("POST", f"/v1/members/{member['id']}/erase", key=admin_key, idempotency_key="e-77"), 200)

    # Then the opening entry stays (the books) under a key that no longer names the external id
    ledger = api.ledger(admin_key, member["id"])
    assert [e["points"] for e in ledger] == [-40, 40] and erased["points_forfeited"] == 40
    assert ledger[1]["idempotency_key"].startswith("import:erased-")
    holding = [item["pk"]["S"] for item in _table_items("acme") if "imp-77-xq" in json.dumps(item)]
    assert holding == []


def test_an_erasure_settles_more_lots_than_one_transaction_holds(api: Api, admin_key: str) -> None:
    # Given points that expire, earned 45 times (a lot each: more than one transaction may delete)
    expiring = {**PROGRAM, "expiry": {"kind": "fixed_period", "days": 365}}
    ok(api.call("PUT", "/v1/program", key=admin_key, body=expiring), 200)
    member = api.enrol(admin_key, name="Many Lots")
    for i in range(45):
        ok(api.earn(admin_key, member, f"lot-{i}", points=2))

    # When the member is erased
    erased = ok(api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="e-lots"), 200)

    # Then every point is settled by the one entry, no lot is left, and the expiry job finds nothing
    assert erased["points_forfeited"] == 90
    remaining = [item for item in _table_items("acme") if item["pk"]["S"] == f"MEMBER#{member}"]
    assert sorted(item["sk"]["S"] for item in remaining) == ["#BALANCE", "#PROFILE"]
    run = ok(api.call("POST", "/v1/jobs/expire-points/run", key=admin_key, body={"as_of": "2099-01-01T00:00:00Z"}))
    assert run["counts"]["points_expired"] == 0
    assert sum(e["points"] for e in api.ledger(admin_key, member)) == 0


def test_the_erased_members_webhook_deliveries_are_redacted(
    api: Api, admin_key: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.jobs.webhooks import dispatch_tenant
    from tests.support.receiver import webhook_environment

    # Given a webhook whose deliveries (recorded, not sent yet) carry the member's external id and a
    # description marked personal
    webhook_environment(request, monkeypatch)
    program = {**PROGRAM, "transfers": {"enabled": True, "minimum": 1, "daily_maximum": None}}
    ok(api.call("PUT", "/v1/program", key=admin_key, body=program), 200)
    hook = ok(api.call("POST", "/v1/webhooks", key=admin_key, body={"url": "https://1.1.1.1/h", "events": ["*"]}))
    member = api.enrol(admin_key, external_id="hooked-5150")
    ok(api.earn(admin_key, member, "hook-earn", points=5, description="for 5150 Elm Road"))
    # (and a transfer to a friend, whose side's deliveries carry its description too)
    friend = api.enrol(admin_key, name="Friend")
    body = {"to": {"member_id": friend}, "points": 2, "description": "from 5150 Elm Road"}
    ok(api.call("POST", f"/v1/members/{member}/transfers", key=admin_key, body=body, idempotency_key="hook-trf"))
    dispatch_tenant("acme", clock=lambda: datetime.now(UTC) + timedelta(seconds=6), drain=False)
    assert "hooked-5150" in json.dumps(_table_items("acme"))
    assert [
        item["sk"]["S"].split("#")[0]
        for item in _table_items("acme")
        if item.get("member_id", {}).get("S") == friend and "Elm" in json.dumps(item)
    ] == ["DELIVERY"]

    # When the member is erased
    ok(api.call("POST", f"/v1/members/{member}/erase", key=admin_key, idempotency_key="e-hook"), 200)

    # Then the deliveries still exist, without the personal data
    deliveries = all_pages(api, admin_key, f"/v1/webhooks/{hook['id']}/deliveries")
    assert len(deliveries) == 5  # two enrolments, the earn, the transfer's two sides
    holding = [item for item in _table_items("acme") if "hooked-5150" in json.dumps(item) or "Elm" in json.dumps(item)]
    assert holding == []
