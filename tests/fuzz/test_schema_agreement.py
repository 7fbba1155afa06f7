"""The OpenAPI document and the API agree on which request bodies are valid.

Schemathesis' ``positive_data_acceptance`` check (schema-valid requests must not get a 400)
found bodies that the served document accepts and the API refuses. Some rules cannot be
written in JSON Schema (an IANA time zone, an opaque cursor); those below can, so a client
generated from the document sends requests that are then refused. Each case asserts that
the document and the API give the same verdict, and the verdict expected: bodies both must
accept (a document stricter than the API fails these) and bodies both must refuse. The
refused ones need the document to say what the API enforces:
``uniqueItems``, ``not: {const: 0}``, a pattern for positive decimals, ``minProperties``,
``oneOf`` for "exactly one of", ``propertyNames`` for metadata keys, no null where the API
refuses it, a pattern for "not blank".
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from tests.fuzz.conftest import LiveApi


def _document_accepts(document: dict[str, Any], method: str, path: str, body: Any) -> bool:
    schema = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return validator.is_valid(body)


def _api_accepts(live_api: LiveApi, method: str, path: str, body: Any, key: str) -> bool:
    """Anything but 400 invalid_request: the body passed validation (404, 422 are later verdicts)."""
    url = live_api.base_url + path.replace("{member_id}", live_api.member_id)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"agreement-{id(body)}-{path}"}
    response = requests.request(method, url, json=body, headers=headers, timeout=30)
    assert response.status_code < 500, response.text
    return response.status_code != 400


MEMBER = "/v1/members/{member_id}"
CHALLENGE = {"name": "C", "kind": "orders", "goal": 3, "starts_at": "2026-01-01T00:00:00Z", "reward_points": 5}
BADGE = {"id": "b", "name": "B"}

ACCEPTED = [
    pytest.param("POST", f"{MEMBER}/earn", {"points": 5}, id="earn with points"),
    pytest.param("POST", f"{MEMBER}/earn", {"amount": "12.50", "points": None}, id="earn with amount, points null"),
    pytest.param("POST", f"{MEMBER}/earn", {"points": 5, "amount": None}, id="earn with points, amount null"),
    pytest.param("POST", f"{MEMBER}/redeem", {"points": 1, "metadata": {"k": "v"}}, id="metadata"),
    pytest.param("POST", f"{MEMBER}/redeem", {"points": 1, "metadata": {"Store_1.a:b-c": ""}}, id="metadata key"),
    pytest.param("POST", "/v1/api-keys", {"name": "till", "scopes": ["read", "write"]}, id="distinct scopes"),
    pytest.param("POST", f"{MEMBER}/adjust", {"points": -1, "reason": "fix"}, id="negative adjustment"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": "0.0005", "rounding": "floor"}, id="small rate"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": "2.50", "rounding": "floor"}, id="rate 2.50"),
    pytest.param("PATCH", MEMBER, {"email": None}, id="patch clearing a field"),
    pytest.param("PATCH", MEMBER, {"name": " Ada "}, id="patch with a padded name"),
    pytest.param("POST", f"{MEMBER}/reverse", {"reference": "o-1", "points": 1}, id="reverse with points"),
    # referrals and member codes
    pytest.param("POST", "/v1/members", {"card_code": "ab-12"}, id="enrol with a lower-case card code"),
    pytest.param("PATCH", MEMBER, {"card_code": None}, id="patch clearing the card code"),
    pytest.param("PUT", "/v1/program/referrals", {"referrer_points": 10}, id="referral program, defaults"),
    pytest.param(
        "PUT",
        "/v1/program/referrals",
        {"referrer_points": 10, "referee_points": 0, "cap": None, "min_order_total": "0.50"},
        id="referral program, no cap",
    ),
    # paid membership
    pytest.param(
        "PUT", "/v1/program/plans", {"plans": [{"plan_id": "boost", "name": "B", "multiplier": "2"}]}, id="plan"
    ),
    pytest.param(
        "PUT", "/v1/program/plans", {"plans": [{"plan_id": "p", "name": "P", "perks": ["Lounge"]}]}, id="perks"
    ),
    pytest.param(
        "POST",
        f"{MEMBER}/subscriptions",
        {
            "plan_id": "unknown",
            "period_start": "2030-01-01T00:00:00Z",
            "period_end": "2031-01-01T00:00:00Z",
            "reference": "inv-1",
        },
        id="subscription period",
    ),
    pytest.param("PATCH", MEMBER, {"segments": []}, id="patch clearing the segments"),
    pytest.param("POST", "/v1/members", {"segments": ["vip", "staff_2"]}, id="enrol with segments"),
    pytest.param(
        "POST",
        "/v1/program/rules",
        {"name": "Weekly cap", "kind": "earning_cap", "cap": 500, "per": "week"},
        id="an earning cap",
    ),
    pytest.param(
        "POST",
        "/v1/program/preview",
        {"order": {"id": "o-1", "total": "1.00", "currency": "EUR"}, "member_id": "mem_01J00000000000000000000000"},
        id="preview for a member",
    ),
    pytest.param("POST", "/v1/imports", {"csv": "external_id,points\nagree-1,5\n"}, id="import as JSON"),
    # decimals: a string or a JSON integer
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": 10, "rounding": "floor"}, id="integer rate"),
    pytest.param("POST", f"{MEMBER}/earn", {"amount": 12}, id="earn an integer amount"),
    pytest.param(
        "PUT", "/v1/program/plans", {"plans": [{"plan_id": "two", "name": "T", "multiplier": 2}]}, id="integer plan"
    ),
    # challenges and badges
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "kind": "spend", "goal": "100.50"}, id="spend goal"),
    pytest.param(
        "POST",
        "/v1/challenges",
        {**CHALLENGE, "kind": "streak", "period": "month", "grace": 1, "reward_points": 0, "badge": BADGE},
        id="streak with a badge only",
    ),
]

#: Bodies both the document and the API refuse.
REFUSED = [
    pytest.param("POST", f"{MEMBER}/redeem", {"points": 0}, id="zero redeem"),
    pytest.param("POST", "/v1/api-keys", {"name": "till", "scopes": ["read", "read"]}, id="repeated scopes"),
    pytest.param("POST", f"{MEMBER}/adjust", {"points": 0, "reason": "none"}, id="zero adjustment"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": "0", "rounding": "floor"}, id="rate 0"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": "0.0", "rounding": "floor"}, id="rate 0.0"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": "0.0000", "rounding": "floor"}, id="rate 0.0000"),
    pytest.param("PATCH", MEMBER, {}, id="empty patch"),
    pytest.param("PATCH", MEMBER, {"marketing_consent": None}, id="patch with marketing_consent null"),
    pytest.param("PATCH", MEMBER, {"name": " \t\u3000"}, id="patch with a blank name"),
    pytest.param("POST", "/v1/api-keys", {"name": "   ", "scopes": ["read"]}, id="api key with a blank name"),
    pytest.param("POST", f"{MEMBER}/earn", {"points": 5, "amount": "1.00"}, id="earn with points and amount"),
    pytest.param("POST", f"{MEMBER}/earn", {"reference": "o-1"}, id="earn with neither points nor amount"),
    pytest.param("POST", f"{MEMBER}/earn", {"points": None, "amount": None}, id="earn with both null"),
    pytest.param("POST", f"{MEMBER}/earn", {"amount": "0.00"}, id="earn a zero amount"),
    pytest.param("POST", f"{MEMBER}/reverse", {"reference": "o-1"}, id="reverse with neither points nor amount"),
    pytest.param("POST", f"{MEMBER}/reverse", {"reference": "o-1", "points": 1, "amount": "1"}, id="reverse with both"),
    pytest.param(
        "POST",
        f"{MEMBER}/earn",
        {"points": 5, "metadata": {"not a key!": ["any", "value"]}},
        id="metadata key outside the pattern",
    ),
    pytest.param("POST", f"{MEMBER}/earn", {"points": 5, "metadata": {"": "v"}}, id="empty metadata key"),
    pytest.param("POST", f"{MEMBER}/earn", {"points": 5, "metadata": {"k": 1}}, id="metadata value not a string"),
    # referrals and member codes
    pytest.param("POST", "/v1/members", {"referral_code": "ABCDEFG0"}, id="referral code with a look-alike"),
    pytest.param("POST", "/v1/members", {"referral_code": "ABCDEFG"}, id="referral code too short"),
    pytest.param("POST", "/v1/members", {"card_code": "ab 12"}, id="card code with a space"),
    pytest.param("PUT", "/v1/program/referrals", {"referrer_points": 0}, id="referral program, no referrer reward"),
    pytest.param(
        "PUT",
        "/v1/program/referrals",
        {"referrer_points": 5, "cap": {"limit": 1, "per": "fortnight"}},
        id="referral program, unknown cap period",
    ),
    # paid membership
    pytest.param("PUT", "/v1/program/plans", {"plans": [{"plan_id": "p", "name": "P"}]}, id="plan granting nothing"),
    pytest.param(
        "PUT",
        "/v1/program/plans",
        {"plans": [{"plan_id": "p", "name": "P", "multiplier": "1.00", "perks": []}]},
        id="plan with multiplier 1.00 only",
    ),
    pytest.param(
        "PUT", "/v1/program/plans", {"plans": [{"plan_id": "P", "name": "P", "multiplier": "2"}]}, id="plan id"
    ),
    pytest.param(
        "PUT",
        "/v1/program/plans",
        {"plans": [{"plan_id": "p", "name": "P", "join_bonus": -1, "perks": ["x"]}]},
        id="bonus",
    ),
    pytest.param(
        "POST",
        f"{MEMBER}/subscriptions",
        {"plan_id": "p", "period_start": "2026-01-01T00:00:00Z", "period_end": "2099-01-01T00:00:00Z"},
        id="subscription without reference",
    ),
    pytest.param(
        "POST",
        f"{MEMBER}/subscriptions",
        {
            "plan_id": "p",
            "period_start": "2026-01-01T00:00:00Z",
            "period_end": "2099-01-01T00:00:00Z",
            "reference": "inv-1",
            "price": "99.00",
        },
        id="subscription with a price",
    ),
    pytest.param("PATCH", MEMBER, {"segments": None}, id="patch with segments null"),
    pytest.param("PATCH", MEMBER, {"segments": ["vip", "vip"]}, id="repeated segments"),
    pytest.param("POST", "/v1/members", {"segments": ["VIP"]}, id="a segment outside the pattern"),
    pytest.param(
        "POST",
        "/v1/program/preview",
        {"order": {"id": "o-1", "total": "1.00", "currency": "EUR"}, "member_id": "someone"},
        id="preview for a malformed member id",
    ),
    pytest.param("POST", "/v1/imports", {"csv": ""}, id="import of an empty file"),
    pytest.param("POST", "/v1/imports", {"csv": "x", "rows": 1}, id="import with an unknown field"),
    # decimals: never a JSON number with a fraction; integers as the string form allows
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": 12.5, "rounding": "floor"}, id="float rate"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": 0, "rounding": "floor"}, id="integer rate 0"),
    pytest.param("PUT", "/v1/program", {"points_per_currency_unit": -5, "rounding": "floor"}, id="negative rate"),
    pytest.param("POST", f"{MEMBER}/earn", {"amount": 12.5}, id="earn a float amount"),
    pytest.param("POST", f"{MEMBER}/earn", {"amount": True}, id="earn a boolean amount"),
    pytest.param(
        "PUT",
        "/v1/program/plans",
        {"plans": [{"plan_id": "one", "name": "O", "multiplier": 1}]},
        id="plan with integer multiplier 1 only",
    ),
    # challenges and badges: each kind's own fields, whole counts, a reward
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "kind": "activities"}, id="activities without activity"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "activity": "review"}, id="orders with an activity"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "kind": "streak"}, id="streak without period"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "grace": 1}, id="grace outside a streak"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "goal": "2.5"}, id="a fraction of an order"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "goal": 1001}, id="too many orders"),
    pytest.param("POST", "/v1/challenges", {**CHALLENGE, "reward_points": 0}, id="challenge without reward"),
]


@pytest.fixture(scope="module")
def document(live_api: LiveApi) -> dict[str, Any]:
    return requests.get(f"{live_api.base_url}/v1/openapi.json", timeout=30).json()


@pytest.mark.parametrize(
    ("method", "path", "body", "valid"),
    [pytest.param(*case.values, True, id=case.id) for case in ACCEPTED]
    + [pytest.param(*case.values, False, id=case.id) for case in REFUSED],
)
def test_the_document_and_the_api_agree_on_the_body(
    method: str, path: str, body: Any, valid: bool, document: dict[str, Any], live_api: LiveApi
) -> None:
    documented = _document_accepts(document, method, path, body)
    accepted = _api_accepts(live_api, method, path, body, live_api.admin_key)

    assert documented == accepted, f"the document {'accepts' if documented else 'refuses'} {body!r}; the API " + (
        "accepts it" if accepted else "refuses it with 400"
    )
    assert accepted == valid, f"both {'accept' if accepted else 'refuse'} {body!r}"
