"""The OpenAPI document is valid, complete, and true: every response the API gives is documented.

A realistic scenario runs through ``DocumentedApi``, which validates every response body
against the schema the document gives for that path, method and status, and fails on any
status the document does not list for the operation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import app  # noqa: F401 - registers every blueprint, hence every operation
from chalicelib.api.routing import OPERATIONS
from chalicelib.domain.errors import TransientStoreError
from chalicelib.jobs.webhooks import dispatch_tenant
from chalicelib.persistence.ledger import LedgerRepository
from tests.support.http import OPERATOR_KEY, Api, Reply
from tests.support.receiver import webhook_environment

UTC_PLUS_3 = timezone(timedelta(hours=3))

DOCUMENT_URI = "urn:loyalty:openapi"
_PATH_PARAM = re.compile(r"{(\w+)}")


def _pattern(template: str) -> re.Pattern[str]:
    """``/v1/members/{member_id}`` -> a regex matching one concrete path segment per parameter."""
    parts = _PATH_PARAM.split(template)  # literal, name, literal, name, ...
    return re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts)) + "$")


class DocumentedApi:
    """Sends requests through ``Api`` and holds every response to the OpenAPI document."""

    def __init__(self, api: Api, document: dict[str, Any]) -> None:
        self.api = api
        self.document = document
        self.registry = Registry().with_resource(
            DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.templates = [(_pattern(path), path) for path in document["paths"]]
        #: (operationId, status) of every response checked.
        self.seen: set[tuple[str, int]] = set()

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = self.api.call(method, path, **kwargs)
        self.check(method, path, reply, request_body=kwargs.get("body"))
        return reply

    def template_of(self, path: str) -> str:
        bare = path.split("?", 1)[0]
        matches = [template for pattern, template in self.templates if pattern.match(bare)]
        assert len(matches) == 1, f"{bare}: matches documented paths {matches}"
        return matches[0]

    def validate(self, instance: Any, schema: dict[str, Any], what: str) -> None:
        if "$ref" in schema:
            schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
        validator = Draft202012Validator(
            schema, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)
        ]
        assert not errors, f"{what} does not match its documented schema:\n" + "\n".join(errors)

    def check(self, method: str, path: str, reply: Reply, *, request_body: Any = None) -> None:
        template = self.template_of(path)
        operation = self.document["paths"][template].get(method.lower())
        route = f"{method} {template}"
        assert operation is not None, f"{route} is not documented"
        documented = operation["responses"]
        assert str(reply.status) in documented, (
            f"{route} answered {reply.status}, which is not documented (documented: {sorted(documented)}): {reply.body}"
        )
        content = documented[str(reply.status)].get("content", {})
        if content:
            media = reply.headers.get("content-type", "").split(";", 1)[0].strip()
            assert media in content, f"{route} answered {media!r}, documented {sorted(content)}: {reply.headers}"
            self.validate(reply.body, content[media]["schema"], f"{route} {reply.status} body")
            if reply.status >= 400:  # an error body, as validated: its code is one the operation declares
                codes = documented[str(reply.status)]["x-error-codes"]
                assert reply.body["error"]["code"] in codes, (
                    f"{route} answered {reply.status} `{reply.body['error']['code']}`, not among its codes {codes}"
                )
            documented_headers = documented[str(reply.status)].get("headers", {})
            for name, header in documented_headers.items():
                if header.get("required"):
                    assert name.lower() in reply.headers, f"{route}: required header {name} missing"
        else:
            assert reply.body is None, f"{route} {reply.status} returned an undocumented body: {reply.body}"
        if 200 <= reply.status < 300 and request_body is not None:
            # What the API accepted conforms to the documented request schema.
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            self.validate(request_body, schema, f"{route} request body")
        self.seen.add((operation["operationId"], reply.status))


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    reply = api.call("GET", "/v1/openapi.json")
    assert reply.status == 200, reply
    return reply.body


@pytest.fixture
def documented(api: Api, document: dict[str, Any]) -> DocumentedApi:
    return DocumentedApi(api, document)


def test_the_document_is_public_and_valid_openapi_3_1(api: Api) -> None:
    # When anybody, without a key, asks for the document
    reply = api.call("GET", "/v1/openapi.json")

    # Then it is a valid OpenAPI 3.1 document, served as JSON
    assert reply.status == 200 and reply.headers["content-type"].startswith("application/json"), reply
    assert reply.body["openapi"] == "3.1.0"
    validate(reply.body)
    validate(reply.body, cls=OpenAPIV31SpecValidator)
    for schema in reply.body["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def _string_branches(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any], list[Any]]]:
    """Every ``type: string`` schema inside ``schema`` with its location and its sibling branches."""
    found: list[tuple[str, dict[str, Any], list[Any]]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "anyOf" and isinstance(value, list):
                found += [(path, b, value) for b in value if isinstance(b, dict) and b.get("type") == "string"]
            found += _string_branches(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            found += _string_branches(item, f"{path}/{index}")
    return found


def test_every_decimal_of_a_request_is_documented_as_a_string_or_an_integer_and_says_so(
    document: dict[str, Any],
) -> None:
    """A decimal field (a string pattern of digits with an optional fraction: only requests
    have patterns) takes a decimal string or a JSON integer: the document gives both
    branches, and its description gives the rule."""
    decimals = []
    for name, schema in document["components"]["schemas"].items():
        for prop, prop_schema in schema.get("properties", {}).items():
            text = repr(prop_schema)
            if "[0-9]" in text and r"(\\.[0-9]" in text:
                decimals.append((name, prop, prop_schema))
    assert len(decimals) >= 15, decimals
    for name, prop, prop_schema in decimals:
        where = f"{name}.{prop}"
        branches = _string_branches(prop_schema)
        assert branches, f"{where}: no string branch in {prop_schema}"
        for _, string, siblings in branches:
            integers = [b for b in siblings if b.get("type") == "integer"]
            assert "pattern" in string, where
            lowest = 0 if re.fullmatch(string["pattern"], "0") else 1  # a part of an order may be zero
            assert len(integers) == 1 and integers[0]["minimum"] == lowest, f"{where}: {siblings}"
        assert "never a JSON number with a fraction" in repr(prop_schema), f"{where}: the rule is not described"


def test_every_declared_operation_is_documented_as_declared(document: dict[str, Any]) -> None:
    problems: list[str] = []
    declared = set()
    for op in OPERATIONS:
        path, method = "/v1" + op.path, op.method.lower()
        declared.add((path, method))
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            problems.append(f"{op.method} {path}: missing from the document")
            continue
        where = f"{op.method} {path}"
        if operation["operationId"] != op.operation_id:
            problems.append(f"{where}: operationId {operation['operationId']} != {op.operation_id}")
        responses = operation["responses"]
        success = [int(status) for status in responses if int(status) < 400]
        if success != [op.status]:
            problems.append(f"{where}: documented success statuses {success}, declared {op.status}")
        for status, response in responses.items():
            if int(status) >= 400 and response["content"]["application/json"]["schema"] != {
                "$ref": "#/components/schemas/ErrorResponse"
            }:
                problems.append(f"{where}: {status} is not documented as an ErrorResponse")
        expected_security = {
            "tenant": [{"apiKey": []}],
            "operator": [{"operatorKey": []}],
            "none": [],
            "signature": [{"shopifyHmac": []}],
            "member": [{"memberToken": []}],
        }[op.auth]
        if operation["security"] != expected_security:
            problems.append(f"{where}: security {operation['security']}, expected {expected_security}")
        if op.auth != "none" and "401" not in responses:
            problems.append(f"{where}: needs a key but does not document 401")
        if op.auth in ("tenant", "member"):
            if operation.get("x-required-scope") != str(op.scope):
                problems.append(f"{where}: x-required-scope {operation.get('x-required-scope')} != {op.scope}")
            if "403" not in responses:
                problems.append(f"{where}: has a scope but does not document 403")
        if ("requestBody" in operation) != (op.body is not None):
            problems.append(f"{where}: request body documented={'requestBody' in operation}, declared={op.body}")
        params = {(p["in"], p["name"]) for p in operation["parameters"]}
        for name in _PATH_PARAM.findall(op.path):
            if ("path", name) not in params:
                problems.append(f"{where}: path parameter {name} undocumented")
        takes_key = op.idempotency_key or op.optional_idempotency_key
        if takes_key != (("header", "Idempotency-Key") in params):
            problems.append(f"{where}: Idempotency-Key header documented={not takes_key}, declared={takes_key}")
        for parameter in operation["parameters"]:
            if (parameter["in"], parameter["name"]) == ("header", "Idempotency-Key"):
                if parameter["required"] != op.idempotency_key:
                    problems.append(f"{where}: Idempotency-Key required={parameter['required']}, declared otherwise")
        if op.query is not None:
            for field_name, info in op.query.load().model_fields.items():
                name = info.alias or field_name  # the name on the wire ("from" for from_)
                if ("query", name) not in params:
                    problems.append(f"{where}: query parameter {name} undocumented")
    for path, methods in document["paths"].items():
        for method in methods:
            if (path, method) not in declared:
                problems.append(f"{method.upper()} {path}: documented but not a declared operation")
    assert not problems, "\n".join(problems)


def test_the_checker_fails_on_an_undocumented_status_or_body(documented: DocumentedApi) -> None:
    member = "/v1/members/mem_01JD0000000000000000000000"
    error = {"error": {"code": "teapot", "message": "short and stout", "details": {}}}
    with pytest.raises(AssertionError, match="418, which is not documented"):
        documented.check("GET", member, Reply(status=418, body=error, headers={"content-type": "application/json"}))
    with pytest.raises(AssertionError, match="does not match its documented schema"):
        documented.check("GET", member, Reply(status=200, body={"id": 1}, headers={"content-type": "application/json"}))
    with pytest.raises(AssertionError, match="does not match its documented schema"):
        documented.check(
            "GET", member, Reply(status=404, body={"error": "nope"}, headers={"content-type": "application/json"})
        )
    with pytest.raises(AssertionError, match="is not documented"):
        documented.check("DELETE", member, Reply(status=204, body=None, headers={}))
    assert documented.seen == set()


def test_a_realistic_scenario_gets_only_documented_responses(
    documented: DocumentedApi, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    api = documented
    op_key = OPERATOR_KEY

    # Meta and the operator's registry
    assert api.call("GET", "/v1/health").status == 200
    created = api.call(
        "POST",
        "/v1/tenants",
        key=op_key,
        body={"tenant_id": "acme", "name": "Acme", "currency": "EUR", "timezone": "Europe/Helsinki"},
    )
    assert created.status == 201
    admin = created.body["api_key"]["secret"]
    globex = {"tenant_id": "globex", "name": "Globex", "currency": "USD", "timezone": "America/New_York"}
    assert api.call("POST", "/v1/tenants", key=op_key, body=globex).status == 201
    assert (
        api.call(
            "POST",
            "/v1/tenants",
            key=op_key,
            body={"tenant_id": "acme", "name": "Again", "currency": "EUR", "timezone": "UTC"},
        ).error_code()
        == "tenant_exists"
    )
    assert (
        api.call(
            "POST",
            "/v1/tenants",
            key=op_key,
            body={"tenant_id": "A", "name": "x", "currency": "eur", "timezone": "Mars/Base"},
        ).status
        == 400
    )
    assert (
        api.call(
            "POST",
            "/v1/tenants",
            key=admin,
            body={"tenant_id": "nope", "name": "x", "currency": "EUR", "timezone": "UTC"},
        ).status
        == 401
    )
    first = api.call("GET", "/v1/tenants?limit=1", key=op_key)
    assert first.status == 200 and first.body["next_cursor"]
    assert api.call("GET", f"/v1/tenants?limit=1&cursor={first.body['next_cursor']}", key=op_key).status == 200
    assert api.call("GET", "/v1/tenants?limit=0", key=op_key).status == 400
    assert api.call("GET", "/v1/tenants/acme", key=op_key).status == 200
    assert api.call("GET", "/v1/tenants/initech", key=op_key).status == 404
    assert api.call("POST", "/v1/tenants/initech/suspend", key=op_key).status == 404
    assert api.call("POST", "/v1/tenants/initech/resume", key=op_key).status == 404
    assert api.call("POST", "/v1/tenants/globex/suspend", key=op_key).body["status"] == "suspended"
    assert api.call("POST", "/v1/tenants/globex/resume", key=op_key).body["status"] == "active"

    # Keys and the caller
    assert api.call("GET", "/v1/me", key=admin).status == 200
    assert api.call("GET", "/v1/me").status == 401
    reader = api.call("POST", "/v1/api-keys", key=admin, body={"name": "reports", "scopes": ["read"]})
    writer = api.call("POST", "/v1/api-keys", key=admin, body={"name": "till", "scopes": ["write"]})
    assert reader.status == writer.status == 201
    read_key, write_key = reader.body["secret"], writer.body["secret"]
    assert api.call("POST", "/v1/api-keys", key=admin, body={"name": "x", "scopes": []}).status == 400
    assert api.call("POST", "/v1/api-keys", key=read_key, body={"name": "x", "scopes": ["admin"]}).status == 403
    assert api.call("GET", "/v1/api-keys", key=admin).status == 200
    assert api.call("GET", "/v1/api-keys", key=write_key).status == 403
    assert api.call("GET", "/v1/me", key=write_key).error_code() == "forbidden"
    temporary = api.call("POST", "/v1/api-keys", key=admin, body={"name": "temp", "scopes": ["read", "write"]})
    assert api.call("DELETE", f"/v1/api-keys/{temporary.body['id']}", key=admin).status == 200
    assert api.call("GET", "/v1/me", key=temporary.body["secret"]).status == 401
    assert api.call("DELETE", "/v1/api-keys/key_01JD0000000000000000000000", key=admin).status == 404

    # The program
    assert api.call("GET", "/v1/program", key=read_key).body["updated_at"] is None
    assert (
        api.call(
            "PUT", "/v1/program", key=admin, body={"points_per_currency_unit": "1.5", "rounding": "nearest"}
        ).status
        == 200
    )
    assert api.call("PUT", "/v1/program", key=admin, body={"points_per_currency_unit": "-1"}).status == 400
    assert (
        api.call(
            "PUT", "/v1/program", key=write_key, body={"points_per_currency_unit": "2", "rounding": "floor"}
        ).status
        == 403
    )
    assert api.call("GET", "/v1/program", key=read_key).body["points_per_currency_unit"] == "1.5"

    # Earning rules and the preview
    rule_body = {"name": "Coffee x2", "kind": "line_multiplier", "factor": "2", "categories": ["coffee"]}
    rule = api.call("POST", "/v1/program/rules", key=admin, body=rule_body)
    assert rule.status == 201
    assert api.call("POST", "/v1/program/rules", key=admin, body={**rule_body, "factor": "1"}).status == 400
    assert api.call("POST", "/v1/program/rules", key=write_key, body=rule_body).status == 403
    assert [r["id"] for r in api.call("GET", "/v1/program/rules", key=read_key).body["data"]] == [rule.body["id"]]
    assert api.call("GET", f"/v1/program/rules/{rule.body['id']}", key=read_key).body["status"] == "active"
    assert api.call("GET", "/v1/program/rules/rul_01JD0000000000000000000000", key=read_key).status == 404
    order = {
        "id": "o-1",
        "total": "4.00",
        "currency": "EUR",
        "lines": [{"sku": "latte", "category": "coffee", "quantity": 1, "unit_price": "4.00"}],
    }
    assert api.call("POST", "/v1/program/preview", key=read_key, body={"order": order}).body["points"] == 12
    assert (
        api.call("POST", "/v1/program/preview", key=read_key, body={"order": {**order, "currency": "USD"}}).status
        == 400
    )
    # The preview for a member (and one unknown: 404), an earning cap
    someone = api.call("POST", "/v1/members", key=admin, body={"segments": ["vip"]}).body["id"]
    for_member = {"order": order, "member_id": someone}
    assert api.call("POST", "/v1/program/preview", key=read_key, body=for_member).body["points"] == 12
    unknown = {**for_member, "member_id": "mem_01JD0000000000000000000000"}
    assert api.call("POST", "/v1/program/preview", key=read_key, body=unknown).status == 404
    cap = {"name": "Monthly cap", "kind": "earning_cap", "cap": 100_000, "per": "month"}
    assert api.call("POST", "/v1/program/rules", key=admin, body=cap).status == 201
    assert api.call("POST", f"/v1/program/rules/{rule.body['id']}/end", key=admin).body["status"] == "ended"
    review = {"name": "Review", "kind": "activity", "activity": "review", "points": 5, "limit": 1, "per": "ever"}
    assert api.call("POST", "/v1/program/rules", key=admin, body=review).status == 201
    # Tiers: a version (far out of reach, so nothing below changes), a refusal, the list
    tiers = {
        "metric": "points",
        "window": {"kind": "calendar_year"},
        "tiers": [{"name": "gold", "threshold": "1000000"}],
    }
    assert api.call("PUT", "/v1/program/tiers", key=admin, body=tiers).status == 200
    assert api.call("PUT", "/v1/program/tiers", key=admin, body={**tiers, "grace_periods": 9}).status == 400
    assert [v["status"] for v in api.call("GET", "/v1/program/tiers", key=read_key).body["data"]] == ["active"]

    # Members
    ada = api.call(
        "POST",
        "/v1/members",
        key=write_key,
        body={"external_id": "c-1", "email": "Ada@Example.com", "name": "Ada", "birthday": "1990-12-10"},
    )
    assert ada.status == 201
    bob = api.call("POST", "/v1/members", key=write_key, body={})
    assert bob.status == 201
    ada_id = ada.body["id"]
    assert api.call("POST", "/v1/members", key=write_key, body={"external_id": "c-1"}).error_code() == "member_exists"
    assert api.call("POST", "/v1/members", key=write_key, body={"birthday": "1990-13-01"}).status == 400
    page = api.call("GET", "/v1/members?limit=1", key=read_key)
    assert page.status == 200 and page.body["next_cursor"]
    assert api.call("GET", f"/v1/members?limit=1&cursor={page.body['next_cursor']}", key=read_key).status == 200
    assert api.call("GET", "/v1/members?external_id=c-1", key=read_key).body["data"][0]["id"] == ada_id
    assert api.call("GET", "/v1/members?external_id=c-404", key=read_key).body["data"] == []
    assert api.call("GET", "/v1/members?cursor=bogus", key=read_key).status == 400
    assert api.call("GET", f"/v1/members/{ada_id}", key=read_key).status == 200
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000", key=read_key).status == 404
    assert api.call("PATCH", f"/v1/members/{ada_id}", key=write_key, body={"name": None}).body["name"] is None
    assert api.call("PATCH", f"/v1/members/{ada_id}", key=write_key, body={"marketing_consent": None}).status == 400
    assert (
        api.call("PATCH", "/v1/members/mem_01JD0000000000000000000000", key=write_key, body={"name": "x"}).status == 404
    )

    # Points
    earn = f"/v1/members/{ada_id}/earn"
    assert api.call("POST", earn, key=write_key, idempotency_key="o-1", body={"points": 100}).status == 201
    by_amount = api.call(
        "POST",
        earn,
        key=write_key,
        idempotency_key="o-2",
        body={
            "amount": "10.00",
            "reference": "order-2",
            "metadata": {"store": "hki-1"},
            "occurred_at": (datetime.now(UTC) - timedelta(days=2)).astimezone(UTC_PLUS_3).isoformat(),
        },
    )
    assert by_amount.status == 201 and by_amount.body["transaction"]["points"] == 15
    replay = api.call("POST", earn, key=write_key, idempotency_key="o-1", body={"points": 100})
    assert replay.status == 201 and replay.headers.get("idempotent-replayed") == "true"
    fan = api.call("POST", "/v1/members", key=write_key, body={"name": "Fan"}).body["id"]
    activities = f"/v1/members/{fan}/activities"
    reviewed = api.call("POST", activities, key=write_key, idempotency_key="act-1", body={"type": "review"})
    assert reviewed.status == 201 and reviewed.body["transaction"]["points"] == 5
    again = api.call("POST", activities, key=write_key, idempotency_key="act-2", body={"type": "review"})
    assert again.status == 422 and again.error_code() == "limit_reached"
    assert (
        api.call("POST", earn, key=write_key, idempotency_key="o-1", body={"points": 99}).error_code()
        == "idempotency_key_reused"
    )
    assert (
        api.call("POST", earn, key=write_key, idempotency_key="o-3", body={"amount": "0.10"}).error_code()
        == "amount_too_small"
    )
    assert api.call("POST", earn, key=write_key, body={"points": 1}).status == 400
    assert api.call("POST", earn, key=read_key, idempotency_key="o-4", body={"points": 1}).status == 403
    assert (
        api.call(
            "POST",
            "/v1/members/mem_01JD0000000000000000000000/earn",
            key=write_key,
            idempotency_key="o-5",
            body={"points": 1},
        ).status
        == 404
    )
    redeem = f"/v1/members/{ada_id}/redeem"
    assert api.call("POST", redeem, key=write_key, idempotency_key="r-1", body={"points": 15}).status == 201
    assert (
        api.call("POST", redeem, key=write_key, idempotency_key="r-2", body={"points": 1000}).error_code()
        == "insufficient_points"
    )
    adjust = f"/v1/members/{ada_id}/adjust"
    assert (
        api.call("POST", adjust, key=admin, idempotency_key="a-1", body={"points": -10, "reason": "correction"}).status
        == 201
    )
    assert (
        api.call("POST", adjust, key=write_key, idempotency_key="a-2", body={"points": 10, "reason": "x"}).status == 403
    )
    balance = api.call("GET", f"/v1/members/{ada_id}/balance", key=read_key)
    assert balance.status == 200 and balance.body["available"] == 90
    ledger = api.call("GET", f"/v1/members/{ada_id}/transactions?limit=2", key=read_key)
    assert ledger.status == 200 and ledger.body["next_cursor"]
    rest = api.call("GET", f"/v1/members/{ada_id}/transactions?cursor={ledger.body['next_cursor']}", key=read_key)
    assert [t["sequence"] for t in ledger.body["data"] + rest.body["data"]] == [4, 3, 2, 1]
    assert api.call("GET", f"/v1/members/{ada_id}/transactions?limit=101", key=read_key).status == 400
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000/balance", key=read_key).status == 404
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000/transactions", key=read_key).status == 404

    # A suspended tenant
    assert api.call("POST", "/v1/tenants/acme/suspend", key=op_key).status == 200
    assert api.call("GET", f"/v1/members/{ada_id}/balance", key=read_key).error_code() == "tenant_suspended"
    assert api.call("POST", "/v1/tenants/acme/resume", key=op_key).status == 200

    # DynamoDB throttling every commit outlasts the retries: 503 retry_later, nothing applied
    def throttled(self: LedgerRepository, *args: Any, **kwargs: Any) -> None:
        raise TransientStoreError("injected: ThrottlingException")

    with monkeypatch.context() as patch:
        patch.setattr(LedgerRepository, "commit", throttled)
        busy = api.call("POST", earn, key=write_key, idempotency_key="o-busy", body={"points": 1})
    assert busy.error_code() == "retry_later" and busy.headers.get("retry-after") == "1"
    assert api.call("GET", f"/v1/members/{ada_id}/balance", key=read_key).body["available"] == 90

    # A refund: points earned for an order taken back, and more than was earned refused
    refund_member = api.call("POST", "/v1/members", key=admin, body={}).body["id"]
    api.call(
        "POST",
        f"/v1/members/{refund_member}/earn",
        key=admin,
        idempotency_key="o-refund",
        body={"points": 30, "reference": "order-r"},
    )
    refunded = api.call(
        "POST",
        f"/v1/members/{refund_member}/reverse",
        key=admin,
        idempotency_key="refund-1",
        body={"reference": "order-r", "points": 10},
    )
    assert refunded.status == 201 and refunded.body["reversal"]["outcome"] == "full"
    over = api.call(
        "POST",
        f"/v1/members/{refund_member}/reverse",
        key=admin,
        idempotency_key="refund-2",
        body={"reference": "order-r", "points": 21},
    )
    assert over.error_code() == "reversal_exceeds_earned"

    # The event feed (events settle for a few seconds before readers see them)
    feed = api.call("GET", "/v1/events?limit=5", key=admin)
    assert feed.status == 200 and isinstance(feed.body["next_cursor"], str)

    # Jobs: a run now (as of a moment past every expiry), and the record of it
    ran = api.call("POST", "/v1/jobs/expire-points/run", key=admin, body={"as_of": "2031-01-01T00:00:00Z"})
    assert ran.status == 201 and ran.body["status"] == "succeeded"
    runs = api.call("GET", "/v1/jobs/runs", key=admin)
    assert runs.status == 200 and runs.body["data"][0]["id"] == ran.body["id"]
    assert api.call("POST", "/v1/jobs/nope/run", key=admin, body={}).error_code() == "not_found"
    # A sandbox brand's test clock; a live brand has none
    sandbox = {"tenant_id": "acme-sandbox", "name": "Sandbox", "currency": "EUR", "timezone": "UTC", "sandbox": True}
    sandbox_key = api.call("POST", "/v1/tenants", key=op_key, body=sandbox).body["api_key"]["secret"]
    moved = api.call("POST", "/v1/test-clock/advance", key=sandbox_key, body={"to": "2031-01-01T00:00:00Z"})
    assert moved.status == 200 and moved.body["now"] >= "2031-01-01T00:00:00"
    assert api.call("GET", "/v1/test-clock", key=sandbox_key).body["sandbox"] is True
    live = api.call("POST", "/v1/test-clock/advance", key=admin, body={"to": "2031-01-01T00:00:00Z"})
    assert live.error_code() == "sandbox_only"

    # Webhooks: an endpoint, a delivery the dispatch job records (not sent: no drain), its log
    webhook_environment(request, monkeypatch)
    hook = api.call(
        "POST",
        "/v1/webhooks",
        key=admin,
        body={"url": "https://1.1.1.1/hooks", "events": ["points.earned"], "description": "CRM"},
    )
    assert hook.status == 201 and hook.body["secret"].startswith("whsec_")
    hook_path = f"/v1/webhooks/{hook.body['id']}"
    assert api.call("POST", "/v1/webhooks", key=admin, body={"url": "https://10.0.0.1/", "events": ["*"]}).status == 400
    assert api.call("GET", "/v1/webhooks", key=admin).status == 200
    assert api.call("GET", hook_path, key=read_key).status == 403
    assert api.call("GET", hook_path, key=admin).body["secrets"][0]["expires_at"] is None
    assert api.call("GET", "/v1/webhooks/whk_01JD0000000000000000000000", key=admin).status == 404
    assert api.call("PATCH", hook_path, key=admin, body={"description": None}).body["description"] is None
    assert api.call("POST", f"{hook_path}/rotate-secret", key=admin).body["secret"] != hook.body["secret"]
    assert api.call("POST", earn, key=write_key, idempotency_key="o-hook", body={"points": 1}).status == 201
    dispatch_tenant("acme", clock=lambda: datetime.now(UTC) + timedelta(seconds=6), drain=False)
    log = api.call("GET", f"{hook_path}/deliveries?limit=1", key=admin)
    assert log.status == 200 and log.body["data"][0]["status"] == "pending"
    one = api.call("GET", f"{hook_path}/deliveries/{log.body['data'][0]['id']}", key=admin)
    assert one.status == 200 and one.body == log.body["data"][0], one
    assert api.call("GET", f"{hook_path}/deliveries/dlv_01JD0000000000000000000000", key=admin).status == 404
    redeliver = f"{hook_path}/deliveries/{log.body['data'][0]['id']}/redeliver"
    assert api.call("POST", redeliver, key=admin).status == 202
    assert api.call("DELETE", hook_path, key=admin).status == 200

    # Rewards: the catalog, a pool, a redemption and its coupon used, another cancelled
    voucher_body = {"name": "€5 voucher", "type": "fixed_discount", "amount": "5.00", "points_cost": 20, "stock": 2}
    voucher = api.call("POST", "/v1/rewards", key=admin, body=voucher_body).body
    assert api.call("POST", "/v1/rewards", key=admin, body={**voucher_body, "amount": None}).status == 400
    pool_body = {"name": "Cinema", "type": "experience", "points_cost": 5, "codes": "pool"}
    pool = api.call("POST", "/v1/rewards", key=admin, body=pool_body).body
    assert api.call("GET", "/v1/rewards?limit=1", key=read_key).body["next_cursor"]
    assert api.call("GET", f"/v1/rewards/{voucher['id']}", key=read_key).body["remaining_stock"] == 2
    assert api.call("GET", "/v1/rewards/rwd_01JD0000000000000000000000", key=read_key).status == 404
    assert api.call("PATCH", f"/v1/rewards/{pool['id']}", key=admin, body={"valid_days": 30}).status == 200
    codes_path = f"/v1/rewards/{pool['id']}/codes"
    assert api.call("POST", codes_path, key=admin, body={"codes": ["CINE-0001"]}).status == 201
    assert api.call("POST", codes_path, key=admin, body={"codes": ["CINE-0001"]}).error_code() == "coupon_code_exists"
    fan = api.call("POST", "/v1/members", key=admin, body={}).body["id"]
    api.call("POST", f"/v1/members/{fan}/earn", key=admin, idempotency_key="fan-1", body={"points": 100})
    redeem_path = f"/v1/members/{fan}/rewards/{voucher['id']}/redeem"
    first = api.call("POST", redeem_path, key=write_key, idempotency_key="rw-1")
    second = api.call("POST", redeem_path, key=write_key, idempotency_key="rw-2")
    assert first.status == second.status == 201
    assert api.call("POST", redeem_path, key=write_key, idempotency_key="rw-3").error_code() == "out_of_stock"
    assert api.call("POST", redeem_path, key=write_key).status == 400
    pool_coupon = api.call(
        "POST", f"/v1/members/{fan}/rewards/{pool['id']}/redeem", key=write_key, idempotency_key="rw-4"
    ).body["coupon"]
    assert pool_coupon["code"] == "CINE-0001"
    view = api.call("GET", f"/v1/members/{fan}/rewards", key=read_key).body["data"]
    assert {item["reward"]["id"]: item["locked_because"] for item in view}[voucher["id"]] == ["stock"]
    assert len(api.call("GET", f"/v1/members/{fan}/coupons", key=read_key).body["data"]) == 3
    code = first.body["coupon"]["code"]
    assert api.call("GET", f"/v1/coupons/{code}", key=read_key).body["status"] == "issued"
    assert api.call("GET", "/v1/coupons/NOPE-0000", key=read_key).status == 404
    use = f"/v1/coupons/{code}/use"
    assert api.call("POST", use, key=write_key, idempotency_key="use-1", body={}).body["status"] == "used"
    assert api.call("POST", use, key=write_key, idempotency_key="use-2", body={}).error_code() == "coupon_not_usable"
    cancel = f"/v1/coupons/{second.body['coupon']['code']}/cancel"
    assert api.call("POST", cancel, key=write_key, idempotency_key="cancel-1").body["coupon"]["status"] == "cancelled"
    assert api.call("POST", cancel, key=write_key, idempotency_key="cancel-2").error_code() == "coupon_not_usable"
    assert api.call("POST", f"/v1/rewards/{voucher['id']}/archive", key=admin).body["status"] == "archived"

    # Commerce: the order intake and a Shopify integration (KMS is set up by the webhook section)
    _commerce_scenario(api, admin, write_key, read_key, ada_id)
    # Coalition partners: the registry, a partner key earning and redeeming, the settlement
    _partner_scenario(api, admin, read_key, ada_id)
    # Referrals: the program, a referee's qualifying order, the referrer's list, codes and cards
    _referral_scenario(api, admin, write_key, read_key)
    # Paid membership: plans, a recorded period and its replay, conflicts, the list, a cancellation
    _plans_scenario(api, admin, write_key, read_key)
    # Bulk import and export: a CSV file, its import's record and errors, CSV pages
    _import_export_scenario(api, admin, read_key)
    # Challenges and badges: a challenge completed by an order, the member's progress and badges
    _challenges_scenario(api, admin, write_key, read_key)
    # Transfers: refused while the program does not allow them, then made, replayed and reversed
    _transfer_scenario(api, admin, write_key)
    # The audit trail (the tenant's and the operator's) and a member's consent history
    _audit_scenario(api, admin, read_key, ada_id)
    # Program insights: the feed folded, then every figure read, and a what-if
    _insights_scenario(api, admin, read_key)
    # Member access: a token minted, the member API with it, CORS origins, revocation, rotation
    _member_access_scenario(api, admin, write_key, read_key)
    # Households: refused while the program does not allow them, then formed, read, redeemed from, left
    _household_scenario(api, admin, write_key, read_key)

    # Then every operation answered its documented success at least once
    missing = [
        f"{op.method} /v1{op.path} -> {op.status}" for op in OPERATIONS if (op.operation_id, op.status) not in api.seen
    ]
    assert not missing, f"the scenario never exercised: {missing}"
    # And every documented kind of error was met and matched the document
    statuses = {status for _, status in api.seen}
    assert {400, 401, 403, 404, 409, 422, 503} <= statuses, sorted(statuses)


def test_unknown_query_parameters_get_a_documented_answer_on_every_operation(
    documented: DocumentedApi, admin_key: str
) -> None:
    failures = []
    for op in OPERATIONS:
        if _PATH_PARAM.search(op.path) or op.method != "GET":
            continue
        key = {"tenant": admin_key, "operator": OPERATOR_KEY, "none": None}[op.auth]
        try:
            reply = documented.call("GET", f"/v1{op.path}?unexpected=1", key=key)
            assert reply.status == 400, f"{reply.status} {reply.body}"
        except AssertionError as failure:
            failures.append(f"GET /v1{op.path}: {failure}")
    assert not failures, "\n".join(failures)


def _commerce_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str, member_id: str) -> None:
    import base64
    import hashlib
    import hmac
    import json

    orders = "/v1/integrations/orders"
    order = {"id": "shop-1", "total": "20.00", "currency": "EUR"}
    paid = {"type": "paid", "event_id": "e-1", "order": order, "customer": {"member_id": member_id}}
    assert api.call("POST", orders, key=write_key, body=paid).body["outcome"] == "earned"
    assert api.call("POST", orders, key=write_key, body=paid).body["replayed"] is True
    refund = {"type": "refunded", "event_id": "r-1", "order_id": "shop-1", "amount": "5.00"}
    assert api.call("POST", orders, key=write_key, body=refund).body["outcome"] == "reversed"
    assert api.call("POST", orders, key=write_key, body={**refund, "amount": "6.00"}).status == 422
    early = {"type": "cancelled", "event_id": "c-1", "order_id": "shop-404"}
    assert api.call("POST", orders, key=write_key, body=early).error_code() == "order_not_paid"
    assert api.call("POST", orders, key=read_key, body=early).status == 403
    assert api.call("POST", orders, key=write_key, body={"type": "paid"}).status == 400
    stranger = {**paid, "event_id": "e-2", "customer": {"external_id": "nobody"}}
    assert api.call("POST", orders, key=write_key, body=stranger).status == 404

    created = api.call("POST", "/v1/integrations/shopify", key=admin, body={"description": "store"})
    assert created.status == 201, created
    integration, secret = created.body["id"], created.body["secret"]
    assert api.call("GET", f"/v1/integrations/shopify/{integration}", key=admin).status == 200
    assert api.call("GET", "/v1/integrations/shopify/shp_01JD0000000000000000000000_acme", key=admin).status == 404
    assert api.call("GET", f"/v1/integrations/shopify/{integration}", key=read_key).status == 403
    rotated = api.call("POST", f"/v1/integrations/shopify/{integration}/rotate-secret", key=admin, body={})
    assert rotated.status == 200
    secret = rotated.body["secret"]
    hook = f"/v1/integrations/shopify/{integration}/webhooks"
    payload = {
        "id": 42,
        "currency": "EUR",
        "total_price": "10.00",
        "customer": {"id": 7, "email": "shopper@example.com"},
        "line_items": [{"sku": "MUG", "quantity": 1, "price": "10.00"}],
    }
    raw = json.dumps(payload).encode()
    signed = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": "orders/paid", "X-Shopify-Hmac-Sha256": signed}
    assert api.call("POST", hook, raw_body=raw, headers=headers).body["outcome"] == "earned"
    forged = {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}
    assert api.call("POST", hook, raw_body=raw, headers=forged).status == 401
    not_json = b"{not json"
    signed_bad = base64.b64encode(hmac.new(secret.encode(), not_json, hashlib.sha256).digest()).decode()
    bad = {**headers, "X-Shopify-Hmac-Sha256": signed_bad}
    assert api.call("POST", hook, raw_body=not_json, headers=bad).status == 400


def _partner_scenario(api: DocumentedApi, admin: str, read_key: str, member_id: str) -> None:
    partner = {"partner_id": "coffee", "name": "Coffee Co", "earn_rate": "2", "redeem_rate": "0.01"}
    assert api.call("POST", "/v1/partners", key=admin, body=partner).status == 201
    assert api.call("POST", "/v1/partners", key=admin, body=partner).error_code() == "partner_exists"
    assert api.call("POST", "/v1/partners", key=admin, body={**partner, "earn_rate": "x"}).status == 400
    assert api.call("POST", "/v1/partners", key=read_key, body=partner).status == 403
    assert api.call("GET", "/v1/partners", key=admin).body["data"][0]["partner_id"] == "coffee"
    assert api.call("GET", "/v1/partners/coffee", key=admin).status == 200
    assert api.call("GET", "/v1/partners/nobody", key=admin).status == 404
    bound = {"name": "coffee till", "scopes": ["partner"], "partner_id": "coffee"}
    key = api.call("POST", "/v1/api-keys", key=admin, body=bound).body["secret"]
    who = {"member_id": member_id}
    earned = api.call(
        "POST", "/v1/partner/earn", key=key, idempotency_key="p-1", body={"member": who, "amount": "5.00"}
    )
    assert earned.status == 201 and earned.body["transaction"]["points"] == 10, earned
    redeem = {"member": who, "points": 4}
    assert api.call("POST", "/v1/partner/redeem", key=key, idempotency_key="p-2", body=redeem).status == 201
    assert api.call("POST", "/v1/partner/redeem", key=admin, idempotency_key="p-3", body=redeem).status == 403
    short = {"member": who, "points": 10**8}
    assert api.call("POST", "/v1/partner/redeem", key=key, idempotency_key="p-4", body=short).status == 422
    refund = {"member": who, "reference": "p-sale", "points": 1}
    assert api.call("POST", "/v1/partner/reverse", key=key, idempotency_key="p-5", body=refund).status == 422
    sale = {"member": who, "points": 3, "reference": "p-sale"}
    assert api.call("POST", "/v1/partner/earn", key=key, idempotency_key="p-6", body=sale).status == 201
    reversed_ = api.call("POST", "/v1/partner/reverse", key=key, idempotency_key="p-5", body=refund)
    assert reversed_.status == 201 and reversed_.body["reversal"]["reversed"] == 1, reversed_
    assert api.call("POST", "/v1/partner/reverse", key=key, idempotency_key="p-7", body={"member": who}).status == 400
    settled = api.call("GET", "/v1/partners/coffee/settlement", key=key)
    assert (settled.body["issued_points"], settled.body["redeemed_points"]) == (13, 4), settled
    assert settled.body["reversed_points"] == 1
    assert api.call("GET", "/v1/partners/coffee/settlement?from=2026-02-01&to=2026-01-01", key=admin).status == 400


def _referral_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str) -> None:
    program = {
        "referrer_points": 50,
        "referee_points": 20,
        "min_order_total": "10.00",
        "cap": {"limit": 5, "per": "month"},
    }
    assert api.call("PUT", "/v1/program/referrals", key=admin, body=program).body["status"] == "active"
    assert api.call("PUT", "/v1/program/referrals", key=admin, body={**program, "referrer_points": 0}).status == 400
    assert api.call("PUT", "/v1/program/referrals", key=write_key, body=program).status == 403
    assert len(api.call("GET", "/v1/program/referrals", key=read_key).body["data"]) == 1
    ann = api.call("POST", "/v1/members", key=write_key, body={"email": "ann@example.com", "card_code": "CARD-1"}).body
    code = ann["referral_code"]
    ben = api.call("POST", "/v1/members", key=write_key, body={"referral_code": code, "card_code": "CARD-2"})
    assert ben.status == 201 and ben.body["referred_by"] == ann["id"]
    unknown = "22222222" if code != "22222222" else "33333333"
    assert api.call("POST", "/v1/members", key=write_key, body={"referral_code": unknown}).status == 422
    same = {"email": "ann@example.com", "referral_code": code}
    assert api.call("POST", "/v1/members", key=write_key, body=same).error_code() == "self_referral"
    assert api.call("POST", "/v1/members", key=write_key, body={"card_code": "CARD-1"}).status == 409
    taken = api.call("PATCH", f"/v1/members/{ben.body['id']}", key=write_key, body={"card_code": "CARD-1"})
    assert taken.error_code() == "card_code_taken"
    order = {"order": {"id": "ref-1", "total": "12.00", "currency": "EUR"}}
    earned = api.call("POST", f"/v1/members/{ben.body['id']}/earn", key=write_key, idempotency_key="ref-1", body=order)
    assert earned.status == 201
    listed = api.call("GET", f"/v1/members/{ann['id']}/referrals?limit=5", key=read_key)
    assert [r["status"] for r in listed.body["data"]] == ["completed"]
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000/referrals", key=read_key).status == 404
    assert api.call("GET", f"/v1/members/{ann['id']}/referrals?limit=0", key=read_key).status == 400
    assigned = api.call("POST", f"/v1/members/{ann['id']}/referral-code", key=write_key)
    assert assigned.status == 200 and assigned.body["referral_code"] == code
    assert api.call("POST", "/v1/members/mem_01JD0000000000000000000000/referral-code", key=write_key).status == 404
    assert api.call("GET", f"/v1/members?referral_code={code}", key=read_key).body["data"][0]["id"] == ann["id"]
    assert api.call("GET", "/v1/members?card_code=card-2", key=read_key).body["data"][0]["id"] == ben.body["id"]
    ran = api.call("POST", "/v1/jobs/complete-referrals/run", key=admin, body={})
    assert ran.status == 201 and ran.body["counts"] == {"referrals": 0, "completed": 0, "capped": 0}


def _plans_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str) -> None:
    plans = {
        "plans": [{"plan_id": "premium", "name": "Premium", "tier": "gold", "multiplier": "1.5", "join_bonus": 50}]
    }
    assert api.call("PUT", "/v1/program/plans", key=admin, body=plans).status == 200
    assert (
        api.call("PUT", "/v1/program/plans", key=admin, body={"plans": [{"plan_id": "x", "name": "x"}]}).status == 400
    )
    assert api.call("PUT", "/v1/program/plans", key=write_key, body=plans).status == 403
    assert api.call("GET", "/v1/program/plans", key=read_key).body["data"][0]["plan_id"] == "premium"
    member = api.call("POST", "/v1/members", key=write_key, body={}).body["id"]
    path = f"/v1/members/{member}/subscriptions"
    now = datetime.now(UTC)
    paid = {
        "plan_id": "premium",
        "period_start": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(days=365)).isoformat(),
        "reference": "inv-1",
    }
    started = api.call("POST", path, key=write_key, idempotency_key="s-1", body=paid)
    assert started.status == 201 and started.body["join_bonus"]["points"] == 50, started
    replay = api.call("POST", path, key=write_key, idempotency_key="s-1", body=paid)
    assert replay.body == started.body and replay.headers.get("idempotent-replayed") == "true"
    reused = api.call("POST", path, key=write_key, idempotency_key="s-1", body={**paid, "reference": "inv-2"})
    assert reused.error_code() == "idempotency_key_reused"
    moved = {**paid, "period_end": (now + timedelta(days=400)).isoformat()}
    assert api.call("POST", path, key=write_key, idempotency_key="s-2", body=moved).status == 409
    unknown = {**paid, "plan_id": "nope", "reference": "inv-3"}
    assert api.call("POST", path, key=write_key, idempotency_key="s-3", body=unknown).status == 404
    assert api.call("POST", path, key=write_key, body=paid).status == 400  # no Idempotency-Key
    assert api.call("POST", path, key=read_key, idempotency_key="s-4", body=paid).status == 403
    listed = api.call("GET", path, key=read_key)
    assert [s["id"] for s in listed.body["data"]] == [started.body["subscription"]["id"]]
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000/subscriptions", key=read_key).status == 404
    cancel = f"{path}/{started.body['subscription']['id']}/cancel"
    assert api.call("POST", cancel, key=write_key).body["status"] == "cancelled"
    assert api.call("POST", f"{path}/sub_01JD0000000000000000000000/cancel", key=write_key).status == 404
    balance = api.call("GET", f"/v1/members/{member}/balance", key=read_key).body
    assert (balance["plan"], balance["available"]) == (None, 50)


def _member_access_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str) -> None:
    member = api.call("POST", "/v1/members", key=write_key, body={"name": "Mia"}).body["id"]
    assert api.call("POST", f"/v1/members/{member}/earn", key=write_key, idempotency_key="mia-1", body={"points": 80})
    reward = api.call("POST", "/v1/rewards", key=admin, body={"name": "Tea", "type": "experience", "points_cost": 20})
    tokens = f"/v1/members/{member}/tokens"
    body = {"scopes": ["member:read", "member:redeem", "member:consents"], "lifetime_minutes": 10}
    assert api.call("POST", tokens, key=read_key, body=body).status == 403
    assert api.call("POST", tokens, key=write_key, body={**body, "lifetime_minutes": 0}).status == 400
    token = api.call("POST", tokens, key=write_key, body=body).body["token"]
    reader = api.call("POST", tokens, key=write_key, body={"scopes": ["member:read"]}).body["token"]
    me = "/v1/brands/acme/me"
    assert api.call("GET", f"{me}/balance", key=token).body["available"] == 80
    assert api.call("GET", f"{me}/balance", key=admin).status == 401
    assert api.call("GET", f"{me}/expiring?days=7", key=token).body["total"] == 0
    assert api.call("GET", f"{me}/expiring?days=0", key=token).status == 400
    assert len(api.call("GET", f"{me}/transactions", key=token).body["data"]) == 1
    assert api.call("GET", f"{me}/rewards", key=token).body["available_points"] == 80
    redeem = f"{me}/rewards/{reward.body['id']}/redeem"
    assert api.call("POST", redeem, key=token, idempotency_key="tap-1").status == 201
    assert api.call("POST", redeem, key=reader, idempotency_key="tap-2").status == 403
    assert (
        api.call("POST", f"{me}/rewards/rwd_01JD0000000000000000000000/redeem", key=token, idempotency_key="t").status
        == 404
    )
    assert api.call("GET", f"{me}/referral-code", key=token).body["member_id"] == member
    assert api.call("GET", f"{me}/challenges", key=token).body["member_id"] == member
    assert api.call("GET", f"{me}/badges", key=token).body["member_id"] == member
    assert api.call("GET", f"{me}/consents", key=token).body["marketing"] is False
    assert api.call("PUT", f"{me}/consents", key=token, body={"marketing": True}).body["marketing"] is True
    assert api.call("PUT", f"{me}/consents", key=token, body={}).status == 400
    origins = {"allowed_origins": ["https://shop.example.com"]}
    assert (
        api.call("PUT", "/v1/member-access", key=admin, body=origins).body["allowed_origins"]
        == origins["allowed_origins"]
    )
    assert api.call("PUT", "/v1/member-access", key=admin, body={"allowed_origins": ["ftp://x"]}).status == 400
    assert api.call("GET", "/v1/member-access", key=admin).body["signing_key"]["id"].startswith("mtk_")
    assert api.call("DELETE", tokens, key=write_key).body["member_id"] == member
    assert api.call("GET", f"{me}/balance", key=token).error_code() == "token_invalid"
    assert api.call("DELETE", "/v1/members/mem_01JD0000000000000000000000/tokens", key=write_key).status == 404
    assert api.call("POST", "/v1/member-access/rotate-key", key=admin).status == 200
    assert api.call("POST", "/v1/member-access/rotate-key", key=write_key).status == 403


def _import_export_scenario(api: DocumentedApi, admin: str, read_key: str) -> None:
    from chalicelib.jobs.imports import run_import

    csv_file = "external_id,email,points\nimp-1,imp1@example.com,10\nimp-2,not-an-email,5\n"
    submitted = api.call("POST", "/v1/imports", key=admin, raw_body=csv_file, headers={"Content-Type": "text/csv"})
    assert submitted.status == 202 and submitted.body["status"] == "queued", submitted
    as_json = api.call("POST", "/v1/imports", key=admin, body={"csv": csv_file, "filename": "again.csv"})
    assert as_json.status == 202, as_json
    assert api.call("POST", "/v1/imports", key=admin, body={"csv": "name\nx\n"}).status == 400
    assert api.call("POST", "/v1/imports", key=read_key, body={"csv": csv_file}).status == 403
    import_id = submitted.body["id"]
    run_import("acme", import_id, budget_seconds=None)
    done = api.call("GET", f"/v1/imports/{import_id}", key=admin)
    assert done.body["counts"]["imported"] == 1 and done.body["errors"][0]["code"] == "invalid_email", done
    assert api.call("GET", "/v1/imports/imp_nope", key=admin).status == 404
    assert api.call("GET", "/v1/imports?limit=1", key=admin).body["next_cursor"] is not None
    errors = api.call("GET", f"/v1/imports/{import_id}/errors", key=admin)
    assert [e["row"] for e in errors.body["data"]] == [3], errors
    assert api.call("GET", "/v1/imports/imp_nope/errors", key=admin).status == 404
    members = api.call("GET", "/v1/exports/members.csv?limit=1", key=admin)
    assert members.status == 200 and members.headers.get("next-cursor"), members
    assert api.call("GET", "/v1/exports/members.csv?cursor=x", key=admin).status == 400
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ledger = api.call("GET", f"/v1/exports/ledger.csv?from={since}", key=admin)
    assert ledger.status == 200 and ledger.body.startswith("transaction_id,"), ledger
    assert api.call("GET", "/v1/exports/ledger.csv", key=read_key).status == 403
    # privacy: a member's data, then their erasure (410 afterwards)
    leaving = api.call("POST", "/v1/members", key=admin, body={"name": "Leaving", "email": "leaving@example.com"})
    assert leaving.status == 201, leaving
    gone = leaving.body["id"]
    assert api.call("GET", f"/v1/members/{gone}/export", key=admin).status == 200
    assert api.call("POST", f"/v1/members/{gone}/erase", key=admin, idempotency_key="erase-1").status == 200
    assert api.call("GET", f"/v1/members/{gone}", key=admin).error_code() == "member_erased"


def _challenges_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str) -> None:
    starts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    body = {"name": "One order", "kind": "orders", "goal": 1, "starts_at": starts, "badge": {"id": "b", "name": "B"}}
    created = api.call("POST", "/v1/challenges", key=admin, body=body)
    assert created.status == 201, created
    challenge = f"/v1/challenges/{created.body['id']}"
    assert api.call("POST", "/v1/challenges", key=admin, body={**body, "badge": None}).status == 400
    assert api.call("GET", "/v1/challenges", key=read_key).status == 200
    assert api.call("GET", challenge, key=read_key).status == 200
    assert api.call("GET", "/v1/challenges/chl_nope", key=read_key).status == 404
    assert api.call("PATCH", challenge, key=admin, body={"reward_points": 5}).status == 200
    member = api.call("POST", "/v1/members", key=write_key, body={}).body["id"]
    order = {"order": {"id": "c-1", "total": "10.00", "currency": "EUR"}}
    earned = api.call("POST", f"/v1/members/{member}/earn", key=write_key, idempotency_key="c-1", body=order)
    assert earned.status == 201, earned
    assert api.call("GET", f"/v1/members/{member}/challenges", key=read_key).status == 200
    assert api.call("GET", f"/v1/members/{member}/badges", key=read_key).body["data"][0]["badge"]["id"] == "b"
    assert api.call("POST", f"{challenge}/archive", key=admin).status == 200


def _transfer_scenario(api: DocumentedApi, admin: str, write_key: str) -> None:
    giver = api.call("POST", "/v1/members", key=admin, body={"name": "Giver"}).body["id"]
    taker = api.call("POST", "/v1/members", key=admin, body={"name": "Taker", "external_id": "taker-1"}).body["id"]
    earned = api.call("POST", f"/v1/members/{giver}/earn", key=admin, idempotency_key="t-fund", body={"points": 100})
    assert earned.status == 201, earned
    path = f"/v1/members/{giver}/transfers"
    body = {"to": {"external_id": "taker-1"}, "points": 40}
    assert (
        api.call("POST", path, key=write_key, idempotency_key="t-0", body=body).error_code() == "transfer_not_allowed"
    )
    program = {"points_per_currency_unit": "1", "rounding": "floor", "transfers": {"enabled": True, "minimum": 5}}
    assert api.call("PUT", "/v1/program", key=admin, body=program).status == 200
    sent = api.call("POST", path, key=write_key, idempotency_key="t-1", body=body)
    assert sent.status == 201 and sent.body["to_member_id"] == taker, sent
    assert api.call("POST", path, key=write_key, idempotency_key="t-1", body=body).body == sent.body
    assert api.call("POST", path, key=write_key, body=body).status == 400  # no Idempotency-Key
    short = {"to": {"member_id": taker}, "points": 61}
    assert (
        api.call("POST", path, key=write_key, idempotency_key="t-2", body=short).error_code() == "insufficient_points"
    )
    nobody = {"to": {"external_id": "nobody"}, "points": 5}
    assert api.call("POST", path, key=write_key, idempotency_key="t-3", body=nobody).status == 404
    reverse = f"{path}/{sent.body['id']}/reverse"
    assert api.call("POST", reverse, key=write_key, body={}).status == 403
    reversed_ = api.call("POST", reverse, key=admin, body={"reason": "Wrong member"})
    assert reversed_.status == 201 and reversed_.body["balance"]["available"] == 100, reversed_
    assert api.call("POST", f"{path}/trf_01JD0000000000000000000000/reverse", key=admin, body={}).status == 404


def _audit_scenario(api: DocumentedApi, admin: str, read_key: str, member_id: str) -> None:
    trail = api.call("GET", "/v1/audit?action=program.updated&limit=1", key=admin)
    assert trail.status == 200 and trail.body["data"][0]["action"] == "program.updated", trail
    if trail.body["next_cursor"]:
        assert api.call("GET", f"/v1/audit?cursor={trail.body['next_cursor']}", key=admin).status == 200
    assert api.call("GET", "/v1/audit?action=no.such", key=admin).status == 400
    assert api.call("GET", "/v1/audit", key=read_key).status == 403
    operator = api.call("GET", "/v1/operator/audit", key=OPERATOR_KEY)
    assert operator.status == 200 and operator.body["data"][0]["action"] == "tenant.created", operator
    assert api.call("GET", "/v1/operator/audit", key=admin).status == 401
    consents = api.call("GET", f"/v1/members/{member_id}/consents", key=read_key)
    assert consents.status == 200 and consents.body["member_id"] == member_id, consents
    assert api.call("GET", "/v1/members/mem_01JD0000000000000000000000/consents", key=read_key).status == 404


def _insights_scenario(api: DocumentedApi, admin: str, read_key: str) -> None:
    from chalicelib.domain.jobs import JobName
    from chalicelib.services import platform

    def later() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=6)  # past the feed's settle window

    assert platform().for_registered_tenant("acme", clock=later).jobs.run(JobName.FOLD_INSIGHTS).counts["events"]
    summary = api.call("GET", "/v1/insights/summary", key=read_key)
    assert summary.status == 200 and summary.body["members"]["total"] > 0, summary
    assert api.call("GET", "/v1/insights/summary?from=2026-13-01", key=read_key).status == 400
    series = api.call("GET", "/v1/insights/timeseries?metric=orders&interval=month", key=read_key)
    assert series.status == 200 and series.body["points"], series
    assert api.call("GET", "/v1/insights/liability", key=read_key).status == 200
    assert api.call("GET", "/v1/insights/cohorts", key=read_key).status == 200
    draft = {"program": {"points_per_currency_unit": "3", "rounding": "floor"}, "days": 30}
    assert api.call("POST", "/v1/insights/what-if", key=admin, body=draft).status == 200
    assert api.call("POST", "/v1/insights/what-if", key=read_key, body=draft).status == 403


def _household_scenario(api: DocumentedApi, admin: str, write_key: str, read_key: str) -> None:
    owner = api.call("POST", "/v1/members", key=admin, body={"name": "Owner"}).body["id"]
    kin = api.call("POST", "/v1/members", key=admin, body={"name": "Kin"}).body["id"]
    for member in (owner, kin):
        funded = api.call(
            "POST", f"/v1/members/{member}/earn", key=admin, idempotency_key=f"h-{member}", body={"points": 100}
        )
        assert funded.status == 201, funded
    create = {"owner_member_id": owner, "name": "The Smiths"}
    assert api.call("POST", "/v1/households", key=write_key, body=create).error_code() == "household_not_allowed"
    program = {"points_per_currency_unit": "1", "rounding": "floor", "households": {"enabled": True, "max_members": 2}}
    assert api.call("PUT", "/v1/program", key=admin, body=program).status == 200
    created = api.call("POST", "/v1/households", key=write_key, body=create, idempotency_key="h-1")
    assert created.status == 201, created
    household = f"/v1/households/{created.body['id']}"
    assert api.call("POST", "/v1/households", key=write_key, body=create).error_code() == "member_in_household"
    joined = api.call("POST", f"{household}/members", key=write_key, body={"member_id": kin, "role": "member"})
    assert joined.status == 201 and joined.body["pool"]["available"] == 200, joined
    assert api.call("GET", household, key=read_key).body == joined.body
    assert api.call("GET", "/v1/households/hh_01JD0000000000000000000000", key=read_key).status == 404
    redeem = {"member_id": kin, "points": 150}
    refused = api.call("POST", f"{household}/redemptions", key=write_key, body=redeem, idempotency_key="hr-1")
    assert refused.error_code() == "household_redeemer_required", refused
    role = api.call("PATCH", f"{household}/members/{kin}", key=write_key, body={"role": "redeemer"})
    assert role.status == 200, role
    owner_role = api.call("PATCH", f"{household}/members/{owner}", key=write_key, body={"role": "member"})
    assert owner_role.error_code() == "household_not_allowed"
    redeemed = api.call("POST", f"{household}/redemptions", key=write_key, body=redeem, idempotency_key="hr-2")
    assert redeemed.status == 201 and len(redeemed.body["contributions"]) == 2, redeemed
    short = {"member_id": owner, "points": 51}
    too_much = api.call("POST", f"{household}/redemptions", key=write_key, body=short, idempotency_key="hr-3")
    assert too_much.error_code() == "insufficient_points"
    assert api.call("DELETE", f"{household}/members/{owner}", key=write_key).error_code() == "household_not_allowed"
    left = api.call("DELETE", f"{household}/members/{kin}", key=write_key)
    assert left.status == 200 and left.body["dissolved"] is False, left
    gone = api.call("DELETE", f"{household}/members/{owner}", key=write_key)
    assert gone.status == 200 and gone.body["dissolved"] is True, gone
