"""The OpenAPI document and the API agree on which request bodies are valid.

Schemathesis' ``positive_data_acceptance`` check (schema-valid requests must not get a 400)
found bodies that the served document accepts and the API refuses. Some rules cannot be
written in JSON Schema (an IANA time zone, an opaque cursor); those below can, so a client
generated from the document sends requests that are then refused. Each case asserts that
the document and the API give the same verdict; the known disagreements are strict xfails
that start passing (and must be un-marked) once the document says what the API enforces.
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


def _bug(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=f"BUG (OpenAPI document): {reason}")


CASES = [
    pytest.param("POST", "/v1/members/{member_id}/earn", {"points": 5}, id="earn with points"),
    pytest.param("POST", "/v1/members/{member_id}/redeem", {"points": 1, "metadata": {"k": "v"}}, id="metadata"),
    pytest.param("POST", "/v1/members/{member_id}/redeem", {"points": 0}, id="zero redeem"),
    pytest.param(
        "POST",
        "/v1/api-keys",
        {"name": "till", "scopes": ["read", "read"]},
        id="repeated scopes",
        marks=_bug("scopes must not repeat, but the schema has no uniqueItems: true"),
    ),
    pytest.param(
        "POST",
        "/v1/members/{member_id}/adjust",
        {"points": 0, "reason": "none"},
        id="zero adjustment",
        marks=_bug("adjust points must not be 0, but the schema allows 0 (no not: {const: 0})"),
    ),
    pytest.param(
        "PUT",
        "/v1/program",
        {"points_per_currency_unit": "0.0", "rounding": "floor"},
        id="zero rate",
        marks=_bug("points_per_currency_unit must be > 0, but its pattern accepts '0' and '0.0'"),
    ),
    pytest.param(
        "PATCH",
        "/v1/members/{member_id}",
        {},
        id="empty patch",
        marks=_bug("a member update needs at least one field, but the schema has no minProperties: 1"),
    ),
    pytest.param(
        "POST",
        "/v1/members/{member_id}/earn",
        {"points": 5, "amount": "1.00"},
        id="earn with points and amount",
        marks=_bug("earn takes exactly one of points or amount, but the schema allows both (and neither)"),
    ),
    pytest.param(
        "POST",
        "/v1/members/{member_id}/earn",
        {"points": 5, "metadata": {"not a key!": ["any", "value"]}},
        id="metadata key outside the pattern",
        marks=_bug(
            "metadata keys must match ^[A-Za-z0-9_.:-]+$, but the schema puts the pattern in patternProperties "
            "(constraining only matching keys) instead of propertyNames, so any other key with any value is valid"
        ),
    ),
]


@pytest.fixture(scope="module")
def document(live_api: LiveApi) -> dict[str, Any]:
    return requests.get(f"{live_api.base_url}/v1/openapi.json", timeout=30).json()


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_the_document_and_the_api_agree_on_the_body(
    method: str, path: str, body: Any, document: dict[str, Any], live_api: LiveApi
) -> None:
    documented = _document_accepts(document, method, path, body)
    accepted = _api_accepts(live_api, method, path, body, live_api.admin_key)

    assert documented == accepted, f"the document {'accepts' if documented else 'refuses'} {body!r}; the API " + (
        "accepts it" if accepted else "refuses it with 400"
    )
