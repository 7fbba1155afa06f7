"""The member widget of the docs (examples/member-widget.html) calls only declared member routes, sends
only headers the CORS preflight allows, and reads only fields those routes answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.routing import MEMBER_CORS_HEADERS, MEMBER_PATH_PREFIX, OPERATIONS
from tests.support.http import Api
from tests.support.receiver import webhook_environment

WIDGET = Path(__file__).resolve().parents[2] / "examples" / "member-widget.html"
SHOP = "https://shop.example.com"
_CALL = re.compile(r'call\("(GET|POST|PUT)", [`"]([^`"?]+)')


def widget_calls() -> list[tuple[str, str]]:
    """(method, path template) of every call the page makes."""
    found = [
        (method, re.sub(r"\$\{[^}]+\}", "{reward_id}", path)) for method, path in _CALL.findall(WIDGET.read_text())
    ]
    assert len(found) >= 8, found
    return found


def test_the_widget_calls_only_declared_member_routes_with_allowed_headers() -> None:
    import app  # noqa: F401  (registers every operation)

    declared = {(op.method, op.path) for op in OPERATIONS if op.auth == "member"}
    for method, path in widget_calls():
        assert (method, MEMBER_PATH_PREFIX + path) in declared, f"{method} {path} is not a member route"
    sent = set(re.findall(r'headers(?:\.|\[")([A-Za-z-]+)', WIDGET.read_text())) | {"Authorization"}
    allowed = {name.strip() for name in MEMBER_CORS_HEADERS.split(",")}
    assert sent <= allowed, sent - allowed


def test_every_answer_the_widget_reads_has_the_fields_it_uses(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str
) -> None:
    webhook_environment(request, monkeypatch)
    # Given the brand's shop origin listed, a member with points, a reward, and a token minted for the page
    assert api.call("PUT", "/v1/member-access", key=admin_key, body={"allowed_origins": [SHOP]}).status == 200
    member = api.enrol(admin_key, name="Ada")
    assert api.earn(admin_key, member, "o-1", points=90).status == 201
    reward = api.call(
        "POST", "/v1/rewards", key=admin_key, body={"name": "Tea", "type": "experience", "points_cost": 30}
    )
    scopes = ["member:read", "member:redeem", "member:consents"]
    token = api.call("POST", f"/v1/members/{member}/tokens", key=admin_key, body={"scopes": scopes}).body["token"]
    base = "/v1/brands/acme/me"

    def page(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        preflight = api.call(
            "OPTIONS", base + path.split("?")[0], headers={"Origin": SHOP, "Access-Control-Request-Method": method}
        )
        assert preflight.status == 204, preflight
        reply = api.call(method, base + path, key=token, headers={"Origin": SHOP}, **kwargs)
        assert reply.status in (200, 201) and reply.headers["access-control-allow-origin"] == SHOP, reply
        return dict(reply.body)

    # When the page loads, Then each answer has what the page shows
    balance = page("GET", "/balance")
    assert balance["available"] == 90 and "tier" in balance and "tier_status" in balance
    assert page("GET", "/expiring?days=30")["total"] == 0
    rewards = page("GET", "/rewards")["data"]
    assert [(r["reward"]["id"], r["reward"]["name"], r["reward"]["points_cost"], r["redeemable"]) for r in rewards] == [
        (reward.body["id"], "Tea", 30, True)
    ]
    assert page("GET", "/referral-code")["referral_code"]
    assert page("GET", "/consents")["marketing"] is False
    history = page("GET", "/transactions?limit=10")["data"]
    assert [(t["points"], t["type"]) for t in history] == [(90, "earn")] and history[0]["created_at"]
    # And a tap on Redeem, and the consent box, do what they say
    redeemed = page("POST", f"/rewards/{reward.body['id']}/redeem", idempotency_key="tap-1")
    assert redeemed["coupon"]["code"]
    assert page("PUT", "/consents", body={"marketing": True})["marketing"] is True
    assert page("GET", "/balance")["available"] == 60
