"""Member access: a brand mints a member token, the member's own device calls the member API with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.services import platform
from tests.support.checks import assert_error
from tests.support.http import Api, Reply
from tests.support.receiver import webhook_environment

SHOP = "https://shop.example.com"


@pytest.fixture
def member_api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api) -> Api:
    """The API, with KMS reachable on both backends (the signing key is sealed like webhook secrets)."""
    webhook_environment(request, monkeypatch)
    return api


def mint(api: Api, key: str, member_id: str, *scopes: str, **body: Any) -> str:
    reply = api.call(
        "POST", f"/v1/members/{member_id}/tokens", key=key, body={"scopes": list(scopes or ["member:read"]), **body}
    )
    assert reply.status == 201, reply
    return str(reply.body["token"])


def me(api: Api, token: str | None, path: str, tenant: str = "acme", **kwargs: Any) -> Reply:
    method = kwargs.pop("method", "GET")
    return api.call(method, f"/v1/brands/{tenant}/me{path}", key=token, **kwargs)


def test_a_member_token_reads_its_own_account_only(member_api: Api, admin_key: str) -> None:
    api = member_api
    # Given a member with points, and another member
    alice = api.enrol(admin_key, name="Alice", email="alice@example.com")
    bob = api.enrol(admin_key, name="Bob")
    assert api.earn(admin_key, alice, "alice-1", points=120).status == 201
    assert api.earn(admin_key, bob, "bob-1", points=9).status == 201

    # When the brand mints a token for Alice
    minted = api.call(
        "POST", f"/v1/members/{alice}/tokens", key=admin_key, body={"scopes": ["member:read"], "lifetime_minutes": 5}
    )
    assert minted.status == 201, minted
    body = minted.body
    assert body["member_id"] == alice and body["tenant_id"] == "acme" and body["scopes"] == ["member:read"]
    assert body["base_path"] == "/v1/brands/acme/me" and body["token"].startswith("lmt_")
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["issued_at"])
    assert lifetime == timedelta(minutes=5)

    # Then the token reads Alice's balance, history, rewards, code and consents
    balance = me(api, body["token"], "/balance")
    assert balance.status == 200 and balance.body["member_id"] == alice and balance.body["available"] == 120
    history = me(api, body["token"], "/transactions")
    assert history.status == 200 and [t["points"] for t in history.body["data"]] == [120]
    assert "metadata" not in history.body["data"][0] and "idempotency_key" not in history.body["data"][0]
    rewards = me(api, body["token"], "/rewards")
    assert rewards.status == 200 and rewards.body["member_id"] == alice and rewards.body["available_points"] == 120
    code = me(api, body["token"], "/referral-code")
    assert code.status == 200 and code.body["member_id"] == alice and code.body["referral_code"]
    consents = me(api, body["token"], "/consents")
    assert consents.status == 200 and consents.body["marketing"] is False

    # But it cannot change consents (no member:consents scope), nor call a brand route
    refused = me(api, body["token"], "/consents", method="PUT", body={"marketing": True})
    assert assert_error(refused, 403, "forbidden", "consents with a read token")["required_scope"] == "member:consents"
    assert_error(api.call("GET", f"/v1/members/{bob}/balance", key=body["token"]), 401, "unauthorized", "brand route")
    # Nor another brand's member API
    assert_error(me(api, body["token"], "/balance", tenant="globex"), 401, "token_invalid", "another tenant")
    # And a brand key cannot call a member route as a member
    assert_error(me(api, admin_key, "/balance"), 401, "token_invalid", "an API key on a member route")


def test_consents_change_and_redemption_is_idempotent(member_api: Api, admin_key: str) -> None:
    api = member_api
    alice = api.enrol(admin_key, name="Alice")
    assert api.earn(admin_key, alice, "alice-1", points=100).status == 201
    reward = api.call(
        "POST", "/v1/rewards", key=admin_key, body={"name": "Coffee", "type": "experience", "points_cost": 30}
    )
    assert reward.status == 201, reward
    token = mint(api, admin_key, alice, "member:read", "member:redeem", "member:consents")

    # When the member turns marketing on
    changed = me(api, token, "/consents", method="PUT", body={"marketing": True})
    assert changed.status == 200 and changed.body["marketing"] is True, changed
    # Then the brand sees it on the profile
    assert api.call("GET", f"/v1/members/{alice}", key=admin_key).body["marketing_consent"] is True

    # When the member redeems the reward twice with the same key
    path = f"/rewards/{reward.body['id']}/redeem"
    first = me(api, token, path, method="POST", idempotency_key="tap-1")
    again = me(api, token, path, method="POST", idempotency_key="tap-1")
    # Then one coupon is issued, once debited
    assert first.status == 201 and again.status == 201, (first, again)
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.body["coupon"]["code"] == again.body["coupon"]["code"]
    assert api.balance(admin_key, alice)["available"] == 70
    # And the Idempotency-Key is required
    assert_error(me(api, token, path, method="POST"), 400, "invalid_request", "no key")


def test_expiring_lots_are_listed_soonest_first(member_api: Api, admin_key: str) -> None:
    api = member_api
    program = {"points_per_currency_unit": "1", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 20}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    alice = api.enrol(admin_key, name="Alice")
    assert api.earn(admin_key, alice, "alice-1", points=40).status == 201
    token = mint(api, admin_key, alice)

    soon = me(api, token, "/expiring?days=30")
    later = me(api, token, "/expiring?days=10")
    assert soon.status == 200 and soon.body["total"] == 40 and len(soon.body["data"]) == 1, soon
    assert later.status == 200 and later.body == {"member_id": alice, "days": 10, "total": 0, "data": []}


def test_revoking_the_member_or_rotating_the_key_ends_tokens_at_once(member_api: Api, admin_key: str) -> None:
    api = member_api
    alice = api.enrol(admin_key, name="Alice")
    bob = api.enrol(admin_key, name="Bob")
    alice_token, bob_token = mint(api, admin_key, alice), mint(api, admin_key, bob)

    # When the brand revokes Alice's tokens
    revoked = api.call("DELETE", f"/v1/members/{alice}/tokens", key=admin_key)
    assert revoked.status == 200 and revoked.body["member_id"] == alice, revoked
    # Then Alice's token is refused at once, Bob's still works, and a new one for Alice works
    assert_error(me(api, alice_token, "/balance"), 401, "token_invalid", "revoked")
    assert me(api, bob_token, "/balance").status == 200
    fresh = mint(api, admin_key, alice)
    assert me(api, fresh, "/balance").status == 200

    # When the brand rotates the signing key
    before = api.call("GET", "/v1/member-access", key=admin_key).body["signing_key"]["id"]
    rotated = api.call("POST", "/v1/member-access/rotate-key", key=admin_key)
    assert rotated.status == 200 and rotated.body["signing_key"]["id"] != before, rotated
    # Then every token of the brand is refused, and tokens minted afterwards work
    for token in (fresh, bob_token):
        assert_error(me(api, token, "/balance"), 401, "token_invalid", "after rotation")
    assert me(api, mint(api, admin_key, bob), "/balance").status == 200


def test_an_erased_members_tokens_end_and_no_new_one_is_minted(member_api: Api, admin_key: str) -> None:
    api = member_api
    alice = api.enrol(admin_key, name="Alice", email="alice@example.com")
    token = mint(api, admin_key, alice)
    assert me(api, token, "/balance").status == 200

    erased = api.call("POST", f"/v1/members/{alice}/erase", key=admin_key, idempotency_key="erase-alice")

    assert erased.status in (200, 201), erased
    assert_error(me(api, token, "/balance"), 401, "token_invalid", "erased")
    again = api.call("POST", f"/v1/members/{alice}/tokens", key=admin_key, body={"scopes": ["member:read"]})
    assert again.status in (404, 410), again


def test_an_expired_or_tampered_token_is_refused(member_api: Api, admin_key: str) -> None:
    api = member_api
    alice = api.enrol(admin_key, name="Alice")
    bob = api.enrol(admin_key, name="Bob")
    token = mint(api, admin_key, alice, lifetime_minutes=1)
    service = platform().for_tenant_id("acme").member_access
    # A token whose lifetime is over
    later = platform().for_tenant_id("acme", clock=lambda: datetime.now(UTC) + timedelta(minutes=2)).member_access
    from chalicelib.domain.errors import TokenInvalid
    from chalicelib.domain.member_access import read_claims

    claims, signed, signature = read_claims(token)
    assert service.verify(claims, signed, signature)[0].member_id == alice
    with pytest.raises(TokenInvalid):
        later.verify(claims, signed, signature)
    # A token whose payload names another member, under the first signature
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(signed.removeprefix("lmt_") + "=="))
    payload["m"] = bob
    forged = "lmt_" + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=") + "." + signature
    assert_error(me(api, forged, "/balance"), 401, "token_invalid", "forged")
    # The lifetime is capped
    too_long = api.call(
        "POST",
        f"/v1/members/{alice}/tokens",
        key=admin_key,
        body={"scopes": ["member:read"], "lifetime_minutes": 61},
    )
    assert_error(too_long, 400, "invalid_request", "lifetime over the cap")
    # A token for an unknown member is not minted
    unknown = api.call(
        "POST", "/v1/members/mem_01JD0000000000000000000000/tokens", key=admin_key, body={"scopes": ["member:read"]}
    )
    assert_error(unknown, 404, "not_found", "unknown member")


def test_cors_answers_only_the_brands_listed_origins(member_api: Api, admin_key: str) -> None:
    api = member_api
    alice = api.enrol(admin_key, name="Alice")
    token = mint(api, admin_key, alice)
    preflight = {"Origin": SHOP, "Access-Control-Request-Method": "GET"}

    # Given no origin listed, a preflight is refused and answers carry no CORS header
    assert api.call("OPTIONS", "/v1/brands/acme/me/balance", headers=preflight).status == 403
    plain = me(api, token, "/balance", headers={"Origin": SHOP})
    assert plain.status == 200 and "access-control-allow-origin" not in plain.headers

    # When the brand lists its shop's origin
    put = api.call("PUT", "/v1/member-access", key=admin_key, body={"allowed_origins": [SHOP + "/", SHOP]})
    assert put.status == 200 and put.body["allowed_origins"] == [SHOP], put

    # Then the preflight from it is answered with the CORS headers
    allowed = api.call("OPTIONS", "/v1/brands/acme/me/balance", headers=preflight)
    assert allowed.status == 204, allowed
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert "GET" in allowed.headers["access-control-allow-methods"]
    # And so are its requests, even refused ones (the page can read the error)
    answered = me(api, token, "/balance", headers={"Origin": SHOP})
    assert answered.status == 200 and answered.headers["access-control-allow-origin"] == SHOP
    refused = me(api, "lmt_garbage", "/balance", headers={"Origin": SHOP})
    assert refused.status == 401 and refused.headers["access-control-allow-origin"] == SHOP
    # While another origin, another brand's path, or a method the path does not take get nothing
    evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    assert api.call("OPTIONS", "/v1/brands/acme/me/balance", headers=evil).status == 403
    assert api.call("OPTIONS", "/v1/brands/globex/me/balance", headers=preflight).status == 403
    wrong_method = {"Origin": SHOP, "Access-Control-Request-Method": "DELETE"}
    assert api.call("OPTIONS", "/v1/brands/acme/me/balance", headers=wrong_method).status == 403
    other = me(api, token, "/balance", headers={"Origin": "https://evil.example"})
    assert other.status == 200 and "access-control-allow-origin" not in other.headers
    # And a brand route never answers CORS
    brand = api.call("GET", f"/v1/members/{alice}", key=admin_key, headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in brand.headers


def test_first_tokens_minted_at_once_agree_on_one_signing_key(member_api: Api, admin_key: str, backend: str) -> None:
    if backend != "dynamodb-local":
        pytest.skip("threads need a thread-safe emulator (moto's in-process backend is not)")
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.domain.scopes import MemberScope

    alice = member_api.enrol(admin_key, name="Alice")
    platform().webhook_sealer.ensure_local_key()  # the local KMS key exists before the race

    # When eight first tokens of the brand are minted at once (each may create the signing key)
    def mint_one(_: int) -> str:
        return platform().for_tenant_id("acme").member_access.issue(alice, frozenset({MemberScope.READ}), 5).token

    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(mint_one, range(8)))

    # Then one key is in force and every token works
    key_ids = {platform().for_tenant_id("acme").member_access.settings(consistent=True).signing_key.key_id}  # type: ignore[union-attr]
    assert len(key_ids) == 1
    for token in tokens:
        assert me(member_api, token, "/balance").status == 200


def test_a_member_route_costs_one_read_more_than_the_brands_and_no_kms_call_once_warm(
    member_api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collections

    import botocore.client

    api = member_api
    member = api.enrol(admin_key, name="Alice")
    token = mint(api, admin_key, member)
    assert api.call("PUT", "/v1/member-access", key=admin_key, body={"allowed_origins": [SHOP]}).status == 200
    calls: collections.Counter[str] = collections.Counter()
    real = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, params: Any) -> Any:
        calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)

    def cost(path: str, key: str, headers: dict[str, str] | None = None) -> dict[str, int]:
        assert api.call("GET", path, key=key, headers=headers).status == 200  # warm: the opened key is cached
        calls.clear()
        assert api.call("GET", path, key=key, headers=headers).status == 200
        return dict(calls)

    # The brand's balance: its key, its tenant, the balance; the member's: the tenant, the signing
    # key and origins, the member's generation, the balance; CORS answered from what was read
    assert cost(f"/v1/members/{member}/balance", admin_key) == {"dynamodb:GetItem": 3}
    assert cost("/v1/brands/acme/me/balance", token) == {"dynamodb:GetItem": 4}
    assert cost("/v1/brands/acme/me/balance", token, {"Origin": SHOP}) == {"dynamodb:GetItem": 4}


def test_a_member_sees_their_own_challenges_and_badges_only(member_api: Api, admin_key: str) -> None:
    api = member_api
    # Given "two orders" rewarded with a badge, Alice who completes it and Bob halfway there
    window = {"starts_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    badge = {"id": "regular", "name": "Regular", "description": "Two orders"}
    challenge = api.call(
        "POST",
        "/v1/challenges",
        key=admin_key,
        body={"name": "Two orders", "kind": "orders", "goal": 2, **window, "reward_points": 50, "badge": badge},
    )
    assert challenge.status == 201, challenge
    alice = api.enrol(admin_key, name="Alice")
    bob = api.enrol(admin_key, name="Bob")
    for member, orders in ((alice, ("a-1", "a-2")), (bob, ("b-1",))):
        for order_id in orders:
            body = {"order": {"id": order_id, "total": "10.00", "currency": "EUR"}}
            assert api.earn(admin_key, member, f"earn-{order_id}", **body).status == 201
    alice_token, bob_token = mint(api, admin_key, alice), mint(api, admin_key, bob)

    # When each reads their challenges and badges with their own token
    alice_challenges, bob_challenges = me(api, alice_token, "/challenges"), me(api, bob_token, "/challenges")
    alice_badges, bob_badges = me(api, alice_token, "/badges"), me(api, bob_token, "/badges")

    # Then Alice sees her completed challenge and her badge, as the brand sees them for her
    assert alice_challenges.status == 200 and alice_challenges.body["member_id"] == alice, alice_challenges
    [mine] = alice_challenges.body["data"]
    assert mine["challenge"]["id"] == challenge.body["id"] and mine["challenge"]["name"] == "Two orders"
    progress = mine["progress"]
    assert (progress["value"], progress["goal"], progress["percent"], progress["completed"]) == ("2", "2", 100, True)
    assert progress["completed_at"] is not None
    assert alice_badges.status == 200 and alice_badges.body["member_id"] == alice, alice_badges
    assert [(b["badge"], b["challenge_id"]) for b in alice_badges.body["data"]] == [
        ({"id": "regular", "name": "Regular", "description": "Two orders"}, challenge.body["id"])
    ]
    brand_view = api.call("GET", f"/v1/members/{alice}/challenges", key=admin_key)
    assert alice_challenges.body == brand_view.body
    assert alice_badges.body == api.call("GET", f"/v1/members/{alice}/badges", key=admin_key).body
    # And Bob sees his own progress, one of two, and no badge: never Alice's
    assert bob_challenges.status == 200 and bob_challenges.body["member_id"] == bob, bob_challenges
    assert [
        (c["progress"]["value"], c["progress"]["percent"], c["progress"]["completed"])
        for c in bob_challenges.body["data"]
    ] == [("1", 50, False)]
    assert bob_badges.status == 200 and bob_badges.body == {"member_id": bob, "data": []}, bob_badges

    # And a token without member:read reads neither
    redeemer = mint(api, admin_key, alice, "member:redeem")
    for path in ("/challenges", "/badges"):
        details = assert_error(me(api, redeemer, path), 403, "forbidden", f"{path} without member:read")
        assert details == {"required_scope": "member:read", "token_scopes": ["member:redeem"]}, details
    # Nor does an API key, nor Alice's token on another brand's member API
    assert_error(me(api, admin_key, "/challenges"), 401, "token_invalid", "an API key on /me/challenges")
    assert_error(me(api, alice_token, "/badges", tenant="globex"), 401, "token_invalid", "another tenant")

    # And a page of the brand's listed origin may call both (CORS as on every member route)
    assert api.call("PUT", "/v1/member-access", key=admin_key, body={"allowed_origins": [SHOP]}).status == 200
    for path in ("/challenges", "/badges"):
        preflight = {"Origin": SHOP, "Access-Control-Request-Method": "GET"}
        allowed = api.call("OPTIONS", f"/v1/brands/acme/me{path}", headers=preflight)
        assert allowed.status == 204 and allowed.headers["access-control-allow-origin"] == SHOP, allowed
        answered = me(api, alice_token, path, headers={"Origin": SHOP})
        assert answered.status == 200 and answered.headers["access-control-allow-origin"] == SHOP, answered


def test_the_members_own_balance_shows_their_tier_and_progress(member_api: Api, admin_key: str) -> None:
    api = member_api
    # Given 10 points per euro, Silver at 500 points and Gold at 2 000, and a member with 600 points
    program = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    tiers = {
        "metric": "points",
        "window": {"kind": "rolling_months", "months": 12},
        "tiers": [
            {"name": "silver", "threshold": "500", "multiplier": "1.5", "perks": ["Free delivery"]},
            {"name": "gold", "threshold": "2000", "multiplier": "2", "perks": ["Lounge access"]},
        ],
    }
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=tiers).status == 200
    alice = api.enrol(admin_key, name="Alice")
    earned = api.earn(admin_key, alice, "a-1", order={"id": "a-1", "total": "60.00", "currency": "EUR"})
    assert earned.status == 201 and earned.body["balance"]["tier"] == "silver", earned

    # When she reads her own balance
    balance = me(api, mint(api, admin_key, alice), "/balance")

    # Then it shows her tier, its multiplier and perks, and what Gold still takes
    assert balance.status == 200, balance
    body = balance.body
    assert (body["member_id"], body["available"], body["tier"]) == (alice, 600, "silver")
    status = body["tier_status"]
    assert (status["tier"], status["multiplier"], status["perks"]) == ("silver", "1.5", ["Free delivery"])
    assert (status["metric"], status["qualifying"]) == ("points", 600)
    assert status["progress"] == {"next_tier": "gold", "remaining": 1400, "metric": "points"}
    assert status["since"] is not None and status["expires_at"] is not None
    # And it is what the brand sees for her
    assert body == api.balance(admin_key, alice)
