"""Members, API keys and the tenant registry through HTTP: what each call returns and what it leaves."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from tests.support.checks import all_pages, assert_error, assert_invalid, operator_state
from tests.support.http import OPERATOR_KEY, Api

MEMBER_ID = re.compile(r"^mem_[0-9A-HJKMNP-TV-Z]{26}$")
KEY_ID = re.compile(r"^key_[0-9A-HJKMNP-TV-Z]{26}$")
GHOST_MEMBER = "mem_01JD0000000000000000000000"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- members ---------------------------------------------------------------------------------------


def test_enrolling_a_member_returns_the_stored_profile(api: Api, admin_key: str) -> None:
    # When a member is enrolled with every field, and another with none
    full = api.call(
        "POST",
        "/v1/members",
        key=admin_key,
        body={
            "external_id": "cust-1",
            "email": "Ada.Lovelace@Example.COM",
            "name": "  Ada  ",
            "birthday": "1990-12-10",
            "marketing_consent": True,
            "segments": ["vip", "staff"],
        },
    )
    bare = api.call("POST", "/v1/members", key=admin_key, body={})

    # Then the 201 body is the profile, with the email lowercased and the name trimmed
    assert full.status == 201, full
    assert MEMBER_ID.match(full.body["id"])
    assert {k: v for k, v in full.body.items() if k not in {"id", "created_at", "updated_at", "referral_code"}} == {
        "external_id": "cust-1",
        "email": "ada.lovelace@example.com",
        "name": "Ada",
        "birthday": "1990-12-10",
        "marketing_consent": True,
        "card_code": None,
        "referred_by": None,
        "segments": ["staff", "vip"],
    }
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", full.body["referral_code"])
    assert full.body["created_at"] == full.body["updated_at"]
    assert bare.status == 201 and MEMBER_ID.match(bare.body["id"]) and bare.body["id"] != full.body["id"]
    assert {k: bare.body[k] for k in ("external_id", "email", "name", "birthday", "marketing_consent")} == {
        "external_id": None,
        "email": None,
        "name": None,
        "birthday": None,
        "marketing_consent": False,
    }
    # And GET returns exactly that profile, with an empty balance
    assert api.call("GET", f"/v1/members/{full.body['id']}", key=admin_key).body == full.body
    balance = api.balance(admin_key, full.body["id"])
    assert {
        k: balance[k] for k in ("member_id", "available", "lifetime_earned", "lifetime_redeemed", "lifetime_adjusted")
    } == {
        "member_id": full.body["id"],
        "available": 0,
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "lifetime_adjusted": 0,
    }
    assert api.ledger(admin_key, full.body["id"]) == []


def test_a_taken_external_id_is_a_conflict_naming_the_existing_member(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    # Given a member with external_id cust-1
    first = api.call("POST", "/v1/members", key=admin_key, body={"external_id": "cust-1", "name": "Ada"})
    assert first.status == 201

    # When another member is enrolled with the same external_id
    again = api.call("POST", "/v1/members", key=admin_key, body={"external_id": "cust-1", "name": "Impostor"})

    # Then it is 409 member_exists naming the existing member, which is untouched, and no member is added
    details = assert_error(again, 409, "member_exists")
    assert details == {"external_id": "cust-1", "member_id": first.body["id"]}
    assert all_pages(api, admin_key, "/v1/members") == [first.body]
    # While another tenant may use the same external_id for its own customer
    theirs = api.call("POST", "/v1/members", key=other_admin_key, body={"external_id": "cust-1"})
    assert theirs.status == 201 and theirs.body["id"] != first.body["id"]


def test_a_retried_enrolment_with_its_idempotency_key_answers_the_member_it_created(api: Api, admin_key: str) -> None:
    enrolment = {
        "external_id": "cust-7",
        "email": "ada@example.com",
        "name": "Ada",
        "birthday": "1990-12-10",
        "card_code": "ab-12",
        "segments": ["vip"],
    }
    # Given a member enrolled with an Idempotency-Key
    first = api.call("POST", "/v1/members", key=admin_key, body=enrolment, idempotency_key="enrol-7")
    assert first.status == 201, first
    assert "idempotent-replayed" not in first.headers
    assert first.body["card_code"] == "AB-12" and first.body["external_id"] == "cust-7"

    # When the same request is sent again with the same key (its answer was lost, say)
    retry = api.call("POST", "/v1/members", key=admin_key, body=enrolment, idempotency_key="enrol-7")

    # Then it answers the first answer: 201, the same member, marked as a replay
    assert retry.status == 201, retry
    assert retry.body == first.body
    assert retry.headers.get("idempotent-replayed") == "true"
    # And exactly one member exists, the one first created
    assert all_pages(api, admin_key, "/v1/members") == [first.body]
    found = api.call("GET", "/v1/members?external_id=cust-7", key=admin_key)
    assert found.body == {"data": [first.body], "next_cursor": None}

    # When the key is sent with another body, Then 422 idempotency_key_reused naming the member, nothing written
    other = api.call("POST", "/v1/members", key=admin_key, body={**enrolment, "name": "Eve"}, idempotency_key="enrol-7")
    details = assert_error(other, 422, "idempotency_key_reused")
    assert details == {"idempotency_key": "enrol-7", "member_id": first.body["id"]}
    elsewhere = api.call("POST", "/v1/members", key=admin_key, body={"name": "Eve"}, idempotency_key="enrol-7")
    assert_error(elsewhere, 422, "idempotency_key_reused")
    assert all_pages(api, admin_key, "/v1/members") == [first.body]

    # When the member changes, a late replay still answers what the enrolment answered
    changed = api.call("PATCH", f"/v1/members/{first.body['id']}", key=admin_key, body={"name": "Ada L."})
    assert changed.status == 200
    late = api.call("POST", "/v1/members", key=admin_key, body=enrolment, idempotency_key="enrol-7")
    assert late.status == 201 and late.body == first.body and late.headers.get("idempotent-replayed") == "true"
    assert all_pages(api, admin_key, "/v1/members") == [changed.body]

    # Without the key the same request is, as before, a conflict naming the member
    unkeyed = api.call("POST", "/v1/members", key=admin_key, body=enrolment)
    assert assert_error(unkeyed, 409, "member_exists") == {"external_id": "cust-7", "member_id": first.body["id"]}

    # A member without an external id is enrolled once per key too; another key enrols another member
    bare = api.call("POST", "/v1/members", key=admin_key, body={}, idempotency_key="enrol-bare")
    bare_again = api.call("POST", "/v1/members", key=admin_key, body={}, idempotency_key="enrol-bare")
    fresh = api.call("POST", "/v1/members", key=admin_key, body={}, idempotency_key="enrol-fresh")
    assert bare.status == bare_again.status == fresh.status == 201
    assert bare_again.body == bare.body and bare_again.headers.get("idempotent-replayed") == "true"
    assert fresh.body["id"] != bare.body["id"] and "idempotent-replayed" not in fresh.headers
    ids = [m["id"] for m in all_pages(api, admin_key, "/v1/members")]
    assert sorted(ids) == sorted([first.body["id"], bare.body["id"], fresh.body["id"]])


def test_an_enrolment_key_is_checked_like_a_movement_key_and_is_the_tenant_own(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    # A malformed or reserved key is refused before anything is written
    for malformed in ("two words", "x" * 256, "import:cust-1"):
        reply = api.call("POST", "/v1/members", key=admin_key, body={"name": "Ada"}, idempotency_key=malformed)
        assert_invalid(reply, "Idempotency-Key")
    assert all_pages(api, admin_key, "/v1/members") == []

    # Another tenant's use of the same key is its own enrolment
    ours = api.call("POST", "/v1/members", key=admin_key, body={"name": "Ada"}, idempotency_key="shared")
    theirs = api.call("POST", "/v1/members", key=other_admin_key, body={"name": "Bob"}, idempotency_key="shared")
    assert ours.status == theirs.status == 201 and "idempotent-replayed" not in theirs.headers
    assert all_pages(api, other_admin_key, "/v1/members") == [theirs.body]
    assert all_pages(api, admin_key, "/v1/members") == [ours.body]


def test_finding_a_member_by_external_id(api: Api, admin_key: str) -> None:
    ada = api.call("POST", "/v1/members", key=admin_key, body={"external_id": "cust-1", "name": "Ada"}).body
    api.enrol(admin_key, external_id="cust-2")

    found = api.call("GET", "/v1/members?external_id=cust-1", key=admin_key)
    missing = api.call("GET", "/v1/members?external_id=cust-404", key=admin_key)

    assert found.status == 200 and found.body == {"data": [ada], "next_cursor": None}
    assert missing.status == 200 and missing.body == {"data": [], "next_cursor": None}


def test_listing_members_pages_through_all_of_them_in_creation_order(api: Api, admin_key: str) -> None:
    # Given 25 members
    created = [api.enrol(admin_key, external_id=f"cust-{i:02d}") for i in range(25)]

    # When they are listed 10 at a time, following next_cursor
    pages: list[list[str]] = []
    cursor = None
    while True:
        reply = api.call("GET", "/v1/members?limit=10" + (f"&cursor={cursor}" if cursor else ""), key=admin_key)
        assert reply.status == 200, reply
        pages.append([member["id"] for member in reply.body["data"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"

    # Then the pages hold 10, 10 and 5 members: every id exactly once, in creation order
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [member_id for page in pages for member_id in page] == created
    # And the default page is 20 long
    default = api.call("GET", "/v1/members", key=admin_key)
    assert len(default.body["data"]) == 20 and default.body["next_cursor"]
    # And a page that ends exactly at the last member says there is nothing more
    five = api.call("GET", f"/v1/members?limit=5&cursor={default.body['next_cursor']}", key=admin_key)
    assert [m["id"] for m in five.body["data"]] == created[20:] and five.body["next_cursor"] is None


def test_updating_a_member_changes_only_the_fields_sent(api: Api, admin_key: str) -> None:
    created = api.call(
        "POST",
        "/v1/members",
        key=admin_key,
        body={
            "external_id": "cust-1",
            "email": "ada@example.com",
            "name": "Ada",
            "birthday": "1990-12-10",
            "marketing_consent": False,
        },
    ).body
    path = f"/v1/members/{created['id']}"

    # When only the email and the consent are sent
    changed = api.call("PATCH", path, key=admin_key, body={"email": "ADA@NEW.EXAMPLE", "marketing_consent": True})

    # Then only those change (the email lowercased), and updated_at moves forward
    assert changed.status == 200, changed
    unchanged_fields = ("id", "external_id", "name", "birthday", "created_at")
    assert {k: changed.body[k] for k in unchanged_fields} == {k: created[k] for k in unchanged_fields}
    assert changed.body["email"] == "ada@new.example" and changed.body["marketing_consent"] is True
    assert _time(changed.body["updated_at"]) > _time(created["updated_at"])
    assert api.call("GET", path, key=admin_key).body == changed.body

    # When the name and birthday are sent as null, Then they are cleared and nothing else moves
    cleared = api.call("PATCH", path, key=admin_key, body={"name": None, "birthday": None})
    assert cleared.status == 200
    assert cleared.body == {**changed.body, "name": None, "birthday": None, "updated_at": cleared.body["updated_at"]}
    assert api.call("GET", path, key=admin_key).body == cleared.body

    # When marketing_consent is sent as null, Then it is refused and the profile stays as it was
    refused = api.call("PATCH", path, key=admin_key, body={"marketing_consent": None, "name": "Eve"})
    assert_invalid(refused)
    assert "marketing_consent" in json.dumps(refused.body["error"]["details"])
    assert api.call("GET", path, key=admin_key).body == cleared.body

    # When an unknown member is updated, Then 404, and no member appears
    ghost = api.call("PATCH", f"/v1/members/{GHOST_MEMBER}", key=admin_key, body={"name": "Ghost"})
    assert_error(ghost, 404, "not_found")
    assert [m["id"] for m in all_pages(api, admin_key, "/v1/members")] == [created["id"]]
    assert_error(api.call("GET", f"/v1/members/{GHOST_MEMBER}", key=admin_key), 404, "not_found")


# --- API keys ----------------------------------------------------------------------------------------


def test_a_new_key_shows_its_secret_once_and_never_again(api: Api, admin_key: str) -> None:
    # When an API key is created
    created = api.call("POST", "/v1/api-keys", key=admin_key, body={"name": "till", "scopes": ["write", "read"]})

    # Then the 201 body shows its id, name, sorted scopes and, this once, its secret
    assert created.status == 201, created
    body = created.body
    secret = body["secret"]
    assert secret.startswith("lk_") and len(secret) > 60
    assert KEY_ID.match(body["id"]) and secret.startswith("lk_" + body["id"].removeprefix("key_") + "_")
    assert {k: body[k] for k in ("name", "scopes", "revoked_at")} == {
        "name": "till",
        "scopes": ["read", "write"],
        "revoked_at": None,
    }
    # And the key works
    me = api.call("GET", "/v1/me", key=secret)
    assert me.status == 200 and me.body["api_key"] == {"id": body["id"], "name": "till", "scopes": ["read", "write"]}

    # And listing the keys never shows a secret or its hash, not even in the raw JSON
    raw = api.client.http.get("/v1/api-keys", headers={"Authorization": f"Bearer {admin_key}"})
    text = raw.body.decode()
    assert raw.status_code == 200
    for leak in (secret, admin_key, hashlib.sha256(secret.encode()).hexdigest(), secret.split("_", 2)[2]):
        assert leak not in text, "the key list leaks a secret"
    listed = json.loads(text)["data"]
    assert all(set(key) == {"id", "name", "scopes", "created_at", "revoked_at", "partner_id"} for key in listed), listed
    assert {key["id"]: key["name"] for key in listed} == {
        api.call("GET", "/v1/me", key=admin_key).body["api_key"]["id"]: "admin",
        body["id"]: "till",
    }
    assert next(k for k in listed if k["id"] == body["id"]) == {k: v for k, v in body.items() if k != "secret"}


def test_every_created_key_is_the_same_documented_object(api: Api) -> None:
    """A tenant's first admin key, a key made with POST /v1/api-keys and a partner key are one
    object: the key as listed plus its secret, each field always there, as the document says."""
    # When a tenant is created, then a read key and a partner key are created under it
    tenant = _create_tenant(api, "initech")
    assert tenant.status == 201, tenant
    admin = tenant.body["api_key"]
    reader = api.call("POST", "/v1/api-keys", key=admin["secret"], body={"name": "reports", "scopes": ["read"]})
    partner = api.call(
        "POST",
        "/v1/partners",
        key=admin["secret"],
        body={"partner_id": "coffee", "name": "Coffee Co", "earn_rate": "2", "redeem_rate": "0.01"},
    )
    assert partner.status == 201, partner
    bound = api.call(
        "POST",
        "/v1/api-keys",
        key=admin["secret"],
        body={"name": "coffee till", "scopes": ["partner"], "partner_id": "coffee"},
    )
    assert reader.status == bound.status == 201, (reader, bound)
    created = {"admin": admin, "reports": reader.body, "coffee till": bound.body}

    # Then the document gives both routes one schema for the created key, every field required
    document = api.call("GET", "/v1/openapi.json").body
    paths, schemas = document["paths"], document["components"]["schemas"]
    tenant_schema = paths["/v1/tenants"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    key_schema = paths["/v1/api-keys"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    tenant_component = schemas[tenant_schema["$ref"].rsplit("/", 1)[-1]]
    assert tenant_component["properties"]["api_key"] == key_schema == {"$ref": "#/components/schemas/CreatedApiKey"}
    documented = schemas["CreatedApiKey"]
    fields = {"id", "name", "scopes", "created_at", "revoked_at", "partner_id", "secret"}
    assert set(documented["properties"]) == set(documented["required"]) == fields

    # And every created key has exactly those fields: the listed key plus its secret
    listed = {k["id"]: k for k in api.call("GET", "/v1/api-keys", key=admin["secret"]).body["data"]}
    for name, key in created.items():
        assert set(key) == fields, name
        assert key["name"] == name and key["secret"].startswith("lk_" + key["id"].removeprefix("key_") + "_")
        assert listed[key["id"]] == {k: v for k, v in key.items() if k != "secret"}, name
    assert [created[n]["partner_id"] for n in created] == [None, None, "coffee"]
    assert api.call("GET", "/v1/me", key=reader.body["secret"]).body["api_key"]["id"] == reader.body["id"]


def test_revoking_a_key_takes_effect_immediately(api: Api, admin_key: str) -> None:
    # Given a working key
    key = api.call("POST", "/v1/api-keys", key=admin_key, body={"name": "temp", "scopes": ["read"]}).body
    assert api.call("GET", "/v1/me", key=key["secret"]).status == 200

    # When it is revoked
    revoked = api.call("DELETE", f"/v1/api-keys/{key['id']}", key=admin_key)

    # Then the very next call with it is 401, and the list shows when it was revoked
    assert revoked.status == 200 and revoked.body["id"] == key["id"] and revoked.body["revoked_at"], revoked
    assert "secret" not in revoked.body
    assert_error(api.call("GET", "/v1/me", key=key["secret"]), 401, "unauthorized")
    listed = {k["id"]: k for k in api.call("GET", "/v1/api-keys", key=admin_key).body["data"]}
    assert listed[key["id"]]["revoked_at"] == revoked.body["revoked_at"]
    # And revoking it again changes nothing; an unknown or malformed key id is 404
    again = api.call("DELETE", f"/v1/api-keys/{key['id']}", key=admin_key)
    assert again.status == 200 and again.body == revoked.body
    assert_error(api.call("DELETE", "/v1/api-keys/key_01JD0000000000000000000000", key=admin_key), 404, "not_found")
    assert_error(api.call("DELETE", "/v1/api-keys/not-a-key", key=admin_key), 404, "not_found")
    # While the admin key still works
    assert api.call("GET", "/v1/me", key=admin_key).status == 200


def test_me_shows_the_tenant_and_the_calling_key(api: Api, admin_key: str) -> None:
    keys = {
        name: api.call("POST", "/v1/api-keys", key=admin_key, body={"name": name, "scopes": scopes}).body
        for name, scopes in {"reports": ["read"], "pos": ["write", "read"], "ops": ["admin"]}.items()
    }
    for name, key in keys.items():
        me = api.call("GET", "/v1/me", key=key["secret"])
        assert me.status == 200, (name, me)
        assert me.body["api_key"] == {"id": key["id"], "name": name, "scopes": key["scopes"]}, name
        assert {k: me.body["tenant"][k] for k in ("tenant_id", "currency", "timezone", "status")} == {
            "tenant_id": "acme",
            "currency": "EUR",
            "timezone": "Europe/Helsinki",
            "status": "active",
        }
    # A write-only key may not read, not even itself
    write_only = api.create_key(admin_key, "write")
    details = assert_error(api.call("GET", "/v1/me", key=write_only), 403, "forbidden")
    assert details["required_scope"] == "read"


# --- tenants (operator) ----------------------------------------------------------------------------


def _create_tenant(api: Api, tenant_id: str, **overrides: Any) -> Any:
    body = {
        "tenant_id": tenant_id,
        "name": f"{tenant_id.title()} Ltd",
        "currency": "EUR",
        "timezone": "UTC",
        **overrides,
    }
    return api.call("POST", "/v1/tenants", key=OPERATOR_KEY, body=body)


def test_creating_a_tenant_returns_it_and_its_first_admin_key(api: Api) -> None:
    created = _create_tenant(api, "initech", name="Initech", currency="JPY", timezone="Asia/Tokyo")

    assert created.status == 201, created
    tenant, key = created.body["tenant"], created.body["api_key"]
    assert {k: tenant[k] for k in ("tenant_id", "name", "currency", "timezone", "status")} == {
        "tenant_id": "initech",
        "name": "Initech",
        "currency": "JPY",
        "timezone": "Asia/Tokyo",
        "status": "active",
    }
    assert tenant["created_at"] == tenant["updated_at"]
    assert key["name"] == "admin" and key["scopes"] == ["admin"] and key["revoked_at"] is None
    assert key["secret"].startswith("lk_") and KEY_ID.match(key["id"])
    # The key is the tenant's, and the operator sees the same tenant
    me = api.call("GET", "/v1/me", key=key["secret"])
    assert me.status == 200 and me.body == {
        "tenant": tenant,
        "api_key": {"id": key["id"], "name": "admin", "scopes": ["admin"]},
    }
    assert api.call("GET", "/v1/tenants/initech", key=OPERATOR_KEY).body == tenant
    # Its members live in its own table and start empty
    assert api.call("GET", "/v1/members", key=key["secret"]).body == {"data": [], "next_cursor": None}


def test_listing_tenants_pages_through_all_of_them(api: Api) -> None:
    slugs = ["delta", "alpha", "echo", "charlie", "bravo"]
    for slug in slugs:
        assert _create_tenant(api, slug).status == 201

    pages: list[list[str]] = []
    cursor = None
    while True:
        reply = api.call("GET", "/v1/tenants?limit=2" + (f"&cursor={cursor}" if cursor else ""), key=OPERATOR_KEY)
        assert reply.status == 200, reply
        pages.append([t["tenant_id"] for t in reply.body["data"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"

    # Every tenant exactly once, ordered by slug
    assert pages == [["alpha", "bravo"], ["charlie", "delta"], ["echo"]]
    assert [t["tenant_id"] for t in operator_state(api)] == sorted(slugs)


def test_suspending_and_resuming_a_tenant(api: Api, admin_key: str) -> None:
    before = api.call("GET", "/v1/tenants/acme", key=OPERATOR_KEY).body
    member = api.enrol(admin_key, external_id="cust-1")

    # When the operator suspends it
    suspended = api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY)

    # Then it shows as suspended, and its keys get 403 tenant_suspended
    assert suspended.status == 200 and suspended.body["status"] == "suspended"
    assert _time(suspended.body["updated_at"]) > _time(before["updated_at"])
    assert {k: v for k, v in suspended.body.items() if k not in {"status", "updated_at"}} == {
        k: v for k, v in before.items() if k not in {"status", "updated_at"}
    }
    assert api.call("GET", "/v1/tenants/acme", key=OPERATOR_KEY).body == suspended.body
    assert_error(api.call("GET", f"/v1/members/{member}", key=admin_key), 403, "tenant_suspended")
    # And suspending it again is harmless
    assert api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY).body["status"] == "suspended"

    # When it is resumed, Then it is active and its keys and data work again
    resumed = api.call("POST", "/v1/tenants/acme/resume", key=OPERATOR_KEY)
    assert resumed.status == 200 and resumed.body["status"] == "active"
    assert api.call("GET", f"/v1/members/{member}", key=admin_key).body["external_id"] == "cust-1"
    assert api.call("GET", "/v1/tenants/acme", key=OPERATOR_KEY).body["status"] == "active"


def test_unknown_tenants_are_not_found(api: Api, admin_key: str) -> None:
    registry = operator_state(api)
    for tenant_id in ("initech", "ACME", "acme-", "a"):
        for method, path in (
            ("GET", f"/v1/tenants/{tenant_id}"),
            ("POST", f"/v1/tenants/{tenant_id}/suspend"),
            ("POST", f"/v1/tenants/{tenant_id}/resume"),
        ):
            assert_error(api.call(method, path, key=OPERATOR_KEY), 404, "not_found", f"{method} {path}")
    assert operator_state(api) == registry
    assert [t["tenant_id"] for t in registry] == ["acme"]
