"""Bad input is refused with 400 invalid_request naming the offending field, and changes nothing.

Each test builds one tenant, loops over its cases (one subtest each, named after the case) and
finally compares everything the tenant holds with what it held before.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.checks import all_pages, assert_error, assert_invalid, operator_state, tenant_state
from tests.support.http import OPERATOR_KEY, Api, Reply

MAX_POINTS_PER_MOVEMENT = 100_000_000


@dataclass
class Tenant:
    api: Api
    key: str
    member: str
    other_member: str

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        return self.api.call(method, path, key=self.key, **kwargs)

    def move(
        self,
        movement: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        idempotency_key: str | None = "v-1",
        member: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return self.api.call(
            "POST",
            f"/v1/members/{member or self.member}/{movement}",
            key=self.key,
            body=body,
            raw_body=raw_body,
            idempotency_key=idempotency_key,
            headers=headers,
        )


@pytest.fixture
def tenant(api: Api, admin_key: str) -> Tenant:
    member = api.enrol(admin_key, external_id="cust-1", name="Ada", email="ada@example.com")
    other = api.enrol(admin_key, external_id="cust-2")
    for key, points in (("seed-1", 100), ("seed-2", 20)):
        assert api.earn(admin_key, member, key, points=points).status == 201
    return Tenant(api=api, key=admin_key, member=member, other_member=other)


@pytest.fixture
def unchanged(tenant: Tenant) -> Iterator[Callable[[], None]]:
    before = tenant_state(tenant.api, tenant.key)

    def check() -> None:
        after = tenant_state(tenant.api, tenant.key)
        assert after == before, "a refused request changed the tenant's data"
        assert len(after["members"]) == 2
        assert after["balances"][tenant.member]["available"] == 120
        assert len(after["ledgers"][tenant.member]) == 2

    yield check


def _check_all(subtests: pytest.Subtests, cases: list[tuple[str, Callable[[], Reply], tuple[str, ...]]]) -> None:
    for label, request, paths in cases:
        with subtests.test(msg=label):
            assert_invalid(request(), *paths, context=label)


# --- points and amounts ---------------------------------------------------------------------------


def test_malformed_points_and_amounts_are_refused(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    earn_points = [
        ("a string", "120"),
        ("a float", 1.5),
        ("a boolean", True),
        ("zero", 0),
        ("negative", -5),
        ("huge", 10**12),
        ("one more than the maximum", MAX_POINTS_PER_MOVEMENT + 1),
        ("null with no amount", None),
    ]
    amounts = [
        ("1e3", "1e3"),
        ("-5", "-5"),
        ("12.345 for EUR", "12.345"),
        ("abc", "abc"),
        ("empty", ""),
        ("a JSON number", 12.5),
        ("zero", "0"),
        ("0.00", "0.00"),
        ("with a comma", "12,50"),
        ("with spaces", " 12.50"),
    ]
    cases: list[tuple[str, Callable[[], Reply], tuple[str, ...]]] = []
    for label, value in earn_points:
        cases.append(
            (
                f"earn points {label}",
                lambda v=value: tenant.move("earn", {"points": v}),
                ("points",) if value is not None else ("body",),
            )
        )
    for label, value in amounts:
        cases.append((f"earn amount {label}", lambda v=value: tenant.move("earn", {"amount": v}), ("amount",)))
    for label, value in earn_points[:-1]:
        cases.append((f"redeem points {label}", lambda v=value: tenant.move("redeem", {"points": v}), ("points",)))
    cases += [
        ("redeem without points", lambda: tenant.move("redeem", {"reference": "r"}), ("points",)),
        ("redeem with an amount", lambda: tenant.move("redeem", {"points": 1, "amount": "1.00"}), ("amount",)),
        ("adjust by zero", lambda: tenant.move("adjust", {"points": 0, "reason": "x"}), ("points",)),
        ("adjust by a string", lambda: tenant.move("adjust", {"points": "-5", "reason": "x"}), ("points",)),
        ("adjust beyond the maximum", lambda: tenant.move("adjust", {"points": -(10**12), "reason": "x"}), ("points",)),
        ("adjust without a reason", lambda: tenant.move("adjust", {"points": 5}), ("reason",)),
        ("adjust with an empty reason", lambda: tenant.move("adjust", {"points": 5, "reason": ""}), ("reason",)),
    ]
    _check_all(subtests, cases)
    for label, body in {
        "both": {"points": 10, "amount": "10.00"},
        "neither": {"reference": "order-9"},
        "an empty object": {},
    }.items():
        with subtests.test(msg=f"earn with {label} of points and amount"):
            fields = assert_invalid(tenant.move("earn", body), context=f"earn with {label}")
            # A rule across two fields is reported on the body, its message naming both
            assert any("points" in f["message"] and "amount" in f["message"] for f in fields), fields
    unchanged()


# --- unknown fields, dates, lengths ------------------------------------------------------------------


def test_unknown_fields_are_refused_not_ignored(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    member_path = f"/v1/members/{tenant.member}"
    for field, value in (("balance", 1_000_000), ("tenant_id", "globex")):
        cases = [
            (f"earn with {field}", lambda f=field, v=value: tenant.move("earn", {"points": 1, f: v})),
            (f"redeem with {field}", lambda f=field, v=value: tenant.move("redeem", {"points": 1, f: v})),
            (
                f"adjust with {field}",
                lambda f=field, v=value: tenant.move("adjust", {"points": 1, "reason": "r", f: v}),
            ),
            (
                f"create member with {field}",
                lambda f=field, v=value: tenant.call("POST", "/v1/members", body={"external_id": "new-1", f: v}),
            ),
            (
                f"update member with {field}",
                lambda f=field, v=value: tenant.call("PATCH", member_path, body={"name": "Eve", f: v}),
            ),
            (
                f"put program with {field}",
                lambda f=field, v=value: tenant.call(
                    "PUT", "/v1/program", body={"points_per_currency_unit": "3", "rounding": "ceil", f: v}
                ),
            ),
            (
                f"create API key with {field}",
                lambda f=field, v=value: tenant.call(
                    "POST", "/v1/api-keys", body={"name": "k", "scopes": ["read"], f: v}
                ),
            ),
        ]
        for label, request in cases:
            with subtests.test(msg=label):
                fields = assert_invalid(request(), field, context=label)
                assert [f["type"] for f in fields if f["path"] == field] == ["extra_forbidden"], fields
    with subtests.test(msg="update member sets an unknown field only"):
        assert_invalid(tenant.call("PATCH", member_path, body={"balance": 5}), "balance")
    unchanged()


def test_malformed_dates_are_refused(tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    member_path = f"/v1/members/{tenant.member}"
    birthdays = {
        "month 13": "1990-13-01",
        "day 32": "1990-01-32",
        "before 1900": "1899-12-31",
        "tomorrow": tomorrow,
        "a timestamp": "1990-01-01T00:00:00Z",
        "a number": 19900101,
        "text": "soon",
    }
    occurred = {
        "without an offset": "2024-05-01T10:00:00",
        "far in the future": "2999-01-01T00:00:00Z",
        "an hour ahead": in_an_hour,
        "before 2000": "1999-12-31T23:59:59Z",
        "a date only": "2024-05-01",
        "text": "yesterday",
        "epoch seconds": 1714557600,
    }
    cases: list[tuple[str, Callable[[], Reply], tuple[str, ...]]] = []
    for label, value in birthdays.items():
        cases.append(
            (
                f"create member with birthday {label}",
                lambda v=value: tenant.call("POST", "/v1/members", body={"external_id": "new-1", "birthday": v}),
                ("birthday",),
            )
        )
        cases.append(
            (
                f"update member with birthday {label}",
                lambda v=value: tenant.call("PATCH", member_path, body={"birthday": v}),
                ("birthday",),
            )
        )
    for label, value in occurred.items():
        for movement, body in (("earn", {"points": 1}), ("redeem", {"points": 1})):
            cases.append(
                (
                    f"{movement} with occurred_at {label}",
                    lambda m=movement, b=body, v=value: tenant.move(m, {**b, "occurred_at": v}),
                    ("occurred_at",),
                )
            )
    _check_all(subtests, cases)
    unchanged()


def test_over_long_and_malformed_text_fields_are_refused(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    member_path = f"/v1/members/{tenant.member}"
    too_many = {f"key{i}": "v" for i in range(21)}
    create = lambda body: lambda: tenant.call("POST", "/v1/members", body=body)  # noqa: E731
    earn = lambda body: lambda: tenant.move("earn", {"points": 1, **body})  # noqa: E731
    cases = [
        ("external_id of 129 characters", create({"external_id": "x" * 129}), ("external_id",)),
        ("external_id with a space", create({"external_id": "cust 3"}), ("external_id",)),
        ("empty external_id", create({"external_id": ""}), ("external_id",)),
        ("email without a domain", create({"email": "ada@"}), ("email",)),
        ("email of 255 characters", create({"email": "a" * 243 + "@example.com"}), ("email",)),
        ("name of 201 characters", create({"name": "n" * 201}), ("name",)),
        ("blank name", create({"name": "   "}), ("name",)),
        ("marketing_consent as a string", create({"marketing_consent": "yes"}), ("marketing_consent",)),
        (
            "update with a name of 201 characters",
            lambda: tenant.call("PATCH", member_path, body={"name": "n" * 201}),
            ("name",),
        ),
        (
            "update with marketing_consent null",
            lambda: tenant.call("PATCH", member_path, body={"marketing_consent": None}),
            (),
        ),
        ("update with nothing", lambda: tenant.call("PATCH", member_path, body={}), ()),
        ("reference of 129 characters", earn({"reference": "r" * 129}), ("reference",)),
        ("empty reference", earn({"reference": ""}), ("reference",)),
        ("description of 501 characters", earn({"description": "d" * 501}), ("description",)),
        ("metadata with 21 keys", earn({"metadata": too_many}), ("metadata",)),
        ("metadata value of 501 characters", earn({"metadata": {"k": "v" * 501}}), ("metadata.k",)),
        ("metadata with a numeric value", earn({"metadata": {"k": 1}}), ("metadata.k",)),
        ("metadata as a list", earn({"metadata": ["k"]}), ("metadata",)),
        (
            "adjust reason of 501 characters",
            lambda: tenant.move("adjust", {"points": 1, "reason": "r" * 501}),
            ("reason",),
        ),
        (
            "API key without scopes",
            lambda: tenant.call("POST", "/v1/api-keys", body={"name": "k", "scopes": []}),
            ("scopes",),
        ),
        (
            "API key with an unknown scope",
            lambda: tenant.call("POST", "/v1/api-keys", body={"name": "k", "scopes": ["root"]}),
            ("scopes.0",),
        ),
        (
            "API key with a repeated scope",
            lambda: tenant.call("POST", "/v1/api-keys", body={"name": "k", "scopes": ["read", "read"]}),
            ("scopes",),
        ),
        (
            "program rate of zero",
            lambda: tenant.call("PUT", "/v1/program", body={"points_per_currency_unit": "0", "rounding": "floor"}),
            ("points_per_currency_unit",),
        ),
        (
            "program rate as a JSON number with a fraction",
            lambda: tenant.call("PUT", "/v1/program", body={"points_per_currency_unit": 2.5, "rounding": "floor"}),
            ("points_per_currency_unit",),
        ),
        (
            "program with an unknown rounding",
            lambda: tenant.call("PUT", "/v1/program", body={"points_per_currency_unit": "2", "rounding": "up"}),
            ("rounding",),
        ),
    ]
    _check_all(subtests, cases)
    unchanged()
    assert [m["external_id"] for m in all_pages(tenant.api, tenant.key, "/v1/members")] == ["cust-1", "cust-2"]


# --- bodies, headers, paths, query strings ------------------------------------------------------------


def test_unreadable_bodies_are_refused(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    oversized = json.dumps({"points": 1, "description": "d", "metadata": {"k": "x" * 17_000}})
    bodies = {
        "invalid JSON": "{points: 1",
        "truncated JSON": '{"points": 1',
        "an empty body": "",
        "whitespace only": "  \n ",
        "a JSON array": "[1]",
        "JSON null": "null",
        "a JSON string": '"points"',
        "a body over 16 KB": oversized,
    }
    targets: dict[str, Callable[[str], Reply]] = {
        "earn": lambda raw: tenant.move("earn", raw_body=raw),
        "create member": lambda raw: tenant.call("POST", "/v1/members", raw_body=raw),
        "update member": lambda raw: tenant.call("PATCH", f"/v1/members/{tenant.member}", raw_body=raw),
        "put program": lambda raw: tenant.call("PUT", "/v1/program", raw_body=raw),
    }
    for target, send in targets.items():
        for label, raw in bodies.items():
            if target == "create member" and not raw.strip():
                continue  # no field is required: no body enrols a member, as {} does
            with subtests.test(msg=f"{target} with {label}"):
                assert_invalid(send(raw), "body", context=f"{target} with {label}")
    unchanged()


def _duplicate_keys(reply: Reply, *paths: str, context: str = "") -> None:
    """400 invalid_request naming exactly these keys as given more than once."""
    fields = assert_invalid(reply, *paths, context=context)
    assert fields == [{"path": p, "message": "key given more than once", "type": "duplicate_key"} for p in paths], (
        f"{context}: {fields}"
    )
    assert reply.body["error"]["details"]["location"] == "body", reply.body
    for path in paths:
        assert path in reply.body["error"]["message"], reply.body


def test_a_key_named_twice_in_a_body_is_refused_not_resolved(tenant: Tenant, unchanged: Callable[[], None]) -> None:
    """JSON with a repeated key is ambiguous (parsers disagree on which value wins): an admin
    key request followed by a read one must not quietly make a read key, nor an admin one."""
    registry = operator_state(tenant.api)
    keys = tenant.call("GET", "/v1/api-keys").body["data"]
    both_orders = [
        '{"name": "till", "scopes": ["admin"], "scopes": ["read"]}',
        '{"name": "till", "scopes": ["read"], "scopes": ["admin"]}',
    ]
    for raw in both_orders:
        _duplicate_keys(tenant.call("POST", "/v1/api-keys", raw_body=raw), "scopes", context=raw)
    assert tenant.call("GET", "/v1/api-keys").body["data"] == keys, "a key was created"

    # At any depth: inside an object inside a list inside an object
    order = (
        '{"order": {"id": "o-1", "total": "10.00", "currency": "EUR",'
        ' "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "10.00", "quantity": 1000}]}}'
    )
    _duplicate_keys(tenant.move("earn", raw_body=order), "order.lines.0.quantity")
    nested_twice = '{"points": 5, "metadata": {"k": "a", "k": "b"}, "points": 5}'
    _duplicate_keys(tenant.move("earn", raw_body=nested_twice), "metadata.k", "points")
    unchanged()
    assert operator_state(tenant.api) == registry


def test_every_route_with_a_json_body_refuses_a_key_named_twice(
    tenant: Tenant, subtests: pytest.Subtests, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.api.routing import OPERATIONS
    from tests.support.receiver import webhook_environment

    webhook_environment(request, monkeypatch)  # KMS, for the member token of the member routes

    partner = {"partner_id": "coffee", "name": "Coffee", "earn_rate": "1", "redeem_rate": "0.01"}
    assert tenant.call("POST", "/v1/partners", body=partner).status == 201
    till = {"name": "till", "scopes": ["partner"], "partner_id": "coffee"}
    partner_key = tenant.call("POST", "/v1/api-keys", body=till).body["secret"]
    scopes = {"scopes": ["member:read", "member:redeem", "member:consents"]}
    member_token = tenant.call("POST", f"/v1/members/{tenant.member}/tokens", body=scopes).body["token"]
    keys = {"operator": OPERATOR_KEY, "partner": partner_key, "member": member_token}
    before, registry = tenant_state(tenant.api, tenant.key), operator_state(tenant.api)
    routes = [op for op in OPERATIONS if op.body is not None and op.auth != "signature"]
    assert len(routes) > 30, routes
    for op in routes:
        path = "/v1" + re.sub(r"{member_id}", tenant.member, op.path)
        path = re.sub(r"{tenant_id}", "acme", path) if op.auth == "member" else path
        path = re.sub(r"{\w+}", "x-1", path)
        with subtests.test(msg=f"{op.method} {op.path}"):
            reply = tenant.api.call(
                op.method,
                path,
                key=keys.get(op.auth, keys.get(str(op.scope), tenant.key)),
                raw_body='{"name": "a", "name": "b"}',
                idempotency_key="dup-1" if op.idempotency_key else None,
            )
            _duplicate_keys(reply, "name", context=f"{op.method} {op.path}")
    assert tenant_state(tenant.api, tenant.key) == before
    assert operator_state(tenant.api) == registry


def test_no_body_stands_for_an_empty_object_where_no_field_is_required(tenant: Tenant) -> None:
    before = tenant_state(tenant.api, tenant.key)

    # A body with required fields still needs one, and says which
    for raw in ("", "  \n "):
        refused = tenant.call("PUT", "/v1/program", raw_body=raw)
        fields = assert_invalid(refused, "body")
        assert fields == [{"path": "body", "message": "empty body", "type": "missing"}], fields
        message = refused.body["error"]["message"]
        assert "required" in message and "points_per_currency_unit" in message and "rounding" in message, message
    # And a body whose rules refuse {} answers with the rule
    fields = assert_invalid(tenant.move("earn", raw_body=""), "body")
    assert any("points" in f["message"] and "amount" in f["message"] for f in fields), fields
    assert tenant_state(tenant.api, tenant.key) == before

    # A job run takes only an optional as_of: no body runs it now
    ran = tenant.call("POST", "/v1/jobs/expire-points/run", raw_body="")
    assert ran.status == 201, ran
    assert (ran.body["job"], ran.body["status"]) == ("expire-points", "succeeded"), ran.body

    # The run is recorded, and nothing else changed
    after = tenant_state(tenant.api, tenant.key)
    assert [run["id"] for run in after.pop("job_runs")] == [ran.body["id"]]
    assert after == {k: v for k, v in before.items() if k != "job_runs"}

    # And the document says which bodies may be left out
    paths = tenant.api.call("GET", "/v1/openapi.json").body["paths"]
    assert paths["/v1/jobs/{job}/run"]["post"]["requestBody"]["required"] is False
    assert paths["/v1/program"]["put"]["requestBody"]["required"] is True
    assert paths["/v1/members/{member_id}/earn"]["post"]["requestBody"]["required"] is True  # {} is refused


def test_any_content_type_gets_our_answer_in_the_error_shape_never_a_bare_415(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    """Found by Schemathesis: a random Content-Type got Chalice's own 415 {"Code": ...}."""
    for content_type in ("text/csv", "R5Xe", "multipart/form-data; boundary=x", "image/png"):
        with subtests.test(msg=f"POST earn labelled {content_type}"):
            refused = tenant.move("earn", raw_body="points=1", headers={"Content-Type": content_type})
            assert_invalid(refused, "body", context=content_type)
        with subtests.test(msg=f"GET members labelled {content_type}"):
            listed = tenant.call("GET", "/v1/members", headers={"Content-Type": content_type})
            assert listed.status == 200, listed.body
            assert sorted(m["external_id"] for m in listed.body["data"]) == ["cust-1", "cust-2"]
    unchanged()


def test_invalid_idempotency_keys_are_refused(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    keys = {
        "missing": None,
        "256 characters": "k" * 256,
        "with a space": "order 1",
        "with a tab": "order\t1",
        "non-ASCII": "commande-é",
        "empty": "",
        # the ledger's own keys (a lot's settlement, a lapse, a birthday bonus) are not the client's
        "shaped like a lot's expiry": "expire:txn_01JD0000000000000000000000",
        "shaped like a lot's maturity": "mature:txn_01JD0000000000000000000000",
        "shaped like a lapse": "lapse:mem_01JD0000000000000000000000:3",
        "shaped like a birthday bonus": "birthday:mem_01JD0000000000000000000000:2027",
    }
    movements = (("earn", {"points": 1}), ("redeem", {"points": 1}), ("adjust", {"points": 1, "reason": "r"}))
    for movement, body in movements:
        for label, key in keys.items():
            with subtests.test(msg=f"{movement} with an Idempotency-Key {label}"):
                reply = tenant.move(movement, body, idempotency_key=key)
                assert_invalid(reply, "Idempotency-Key", context=f"{movement} with an Idempotency-Key {label}")
    unchanged()
    # The longest valid key (255 visible characters) is accepted
    accepted = tenant.move("earn", {"points": 1}, idempotency_key="k" * 255)
    assert accepted.status == 201 and accepted.body["transaction"]["idempotency_key"] == "k" * 255, accepted


def test_over_long_member_ids_in_the_path_are_invalid(tenant: Tenant, unchanged: Callable[[], None]) -> None:
    # The OpenAPI document declares every path parameter with maxLength 256 and documents 400.
    too_long = "mem_" + "0" * 300
    requests = {
        "GET member": lambda: tenant.call("GET", f"/v1/members/{too_long}"),
        "PATCH member": lambda: tenant.call("PATCH", f"/v1/members/{too_long}", body={"name": "x"}),
        "GET balance": lambda: tenant.call("GET", f"/v1/members/{too_long}/balance"),
        "GET transactions": lambda: tenant.call("GET", f"/v1/members/{too_long}/transactions"),
        "earn": lambda: tenant.move("earn", {"points": 1}, member=too_long),
        "DELETE API key": lambda: tenant.call("DELETE", f"/v1/api-keys/key_{'0' * 300}"),
    }
    failures = []
    for label, request in requests.items():
        reply = request()
        if reply.status != 400 or reply.error_code() != "invalid_request":
            failures.append(f"{label}: {reply.status} {reply.error_code()}")
    unchanged()
    assert not failures, failures


def test_malformed_but_short_member_ids_are_simply_not_found(tenant: Tenant, unchanged: Callable[[], None]) -> None:
    for member in ("not-a-member", "mem_lowercase0000000000000000", tenant.member.lower()):
        reply = tenant.call("GET", f"/v1/members/{member}/balance")
        assert_error(reply, 404, "not_found", member)
        assert_error(tenant.move("earn", {"points": 1}, member=member), 404, "not_found", member)
    unchanged()


def test_invalid_query_parameters_are_refused(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    ledger = f"/v1/members/{tenant.member}/transactions"
    cases: list[tuple[str, str, str, str]] = []  # label, key, path, offending parameter
    for collection, key in (("/v1/members", tenant.key), (ledger, tenant.key), ("/v1/tenants", OPERATOR_KEY)):
        for value in ("0", "101", "abc", "-1", "1.5", ""):
            cases.append((f"GET {collection}?limit={value}", key, f"{collection}?limit={value}", "limit"))
        cases.append((f"GET {collection} with an unknown parameter", key, f"{collection}?sort=desc", "sort"))
        cases.append((f"GET {collection} with an empty cursor", key, f"{collection}?cursor=", "cursor"))
        # a repeated parameter: not the last one silently (found by the fuzzer on card_code)
        cases.append((f"GET {collection} with limit twice", key, f"{collection}?limit=5&limit=7", "limit"))
    for path in (
        f"/v1/members/{tenant.member}",
        f"/v1/members/{tenant.member}/balance",
        "/v1/program",
        "/v1/api-keys",
        "/v1/tenants/acme",
    ):
        key = OPERATOR_KEY if path.startswith("/v1/tenants") else tenant.key
        cases.append((f"GET {path} with a query parameter", key, f"{path}?expand=ledger", "expand"))
    cases.append(
        (
            "GET /v1/members with card_code twice",
            tenant.key,
            "/v1/members?card_code=%F0%92%88%88&card_code=null",
            "card_code",
        )
    )
    cases.append(
        (
            "GET /v1/members with an over-long external_id",
            tenant.key,
            f"/v1/members?external_id={'x' * 129}",
            "external_id",
        )
    )
    for label, key, path, parameter in cases:
        with subtests.test(msg=label):
            assert_invalid(tenant.api.call("GET", path, key=key), parameter, context=label)
    # A refused movement with a query string writes nothing either
    with subtests.test(msg="earn with a query parameter"):
        assert_invalid(
            tenant.api.call(
                "POST",
                f"/v1/members/{tenant.member}/earn?points=5",
                key=tenant.key,
                body={"points": 1},
                idempotency_key="q-1",
            ),
            "points",
        )
    unchanged()


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_tampered_cursors_are_refused(tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests) -> None:
    api = tenant.api
    members_page = tenant.call("GET", "/v1/members?limit=1")
    ledger_page = tenant.call("GET", f"/v1/members/{tenant.member}/transactions?limit=1")
    members_cursor, ledger_cursor = members_page.body["next_cursor"], ledger_page.body["next_cursor"]
    assert members_cursor and ledger_cursor, (members_page, ledger_page)
    decoded = json.loads(base64.urlsafe_b64decode(members_cursor + "=" * (-len(members_cursor) % 4)))
    tampered = {
        "a flipped character": members_cursor[:-2] + ("A" if members_cursor[-2] != "A" else "B") + members_cursor[-1],
        "not base64": "!!!not-a-cursor!!!",
        "base64 of text": _b64(b"hello world"),
        "another partition": _b64({**decoded, "gsi1pk": "TENANTS"}),
        "an extra key": _b64({**decoded, "tenant_id": "globex"}),
        "a missing key": _b64({k: v for k, v in decoded.items() if k != "sk"}),
        "a non-string value": _b64({**decoded, "sk": 1}),
        "a JSON list": _b64([decoded]),
        "2049 characters": "A" * 2049,
        "the ledger's cursor": ledger_cursor,
    }
    for label, cursor in tampered.items():
        with subtests.test(msg=f"members cursor: {label}"):
            assert_invalid(
                api.call("GET", f"/v1/members?limit=1&cursor={cursor}", key=tenant.key),
                "cursor",
                context=f"members cursor: {label}",
            )
    with subtests.test(msg="one member's ledger cursor on another member's ledger"):
        reply = api.call(
            "GET", f"/v1/members/{tenant.other_member}/transactions?cursor={ledger_cursor}", key=tenant.key
        )
        assert_invalid(reply, "cursor")
    with subtests.test(msg="the members cursor on a ledger"):
        reply = api.call("GET", f"/v1/members/{tenant.member}/transactions?cursor={members_cursor}", key=tenant.key)
        assert_invalid(reply, "cursor")
    with subtests.test(msg="the members cursor on the tenant registry"):
        assert_invalid(api.call("GET", f"/v1/tenants?cursor={members_cursor}", key=OPERATOR_KEY), "cursor")
    # While the untouched cursors still work
    assert (
        tenant.call("GET", f"/v1/members?limit=1&cursor={members_cursor}").body["data"][0]["id"] == tenant.other_member
    )
    unchanged()


# --- amounts that convert to more than one movement may carry --------------------------------------------


def test_an_amount_worth_more_than_one_movement_may_carry_is_refused(
    tenant: Tenant, unchanged: Callable[[], None]
) -> None:
    # Given the default program (1 point per EUR), When an amount worth 500,000,000 points is earned
    reply = tenant.move("earn", {"amount": "500000000.00"}, idempotency_key="whale")

    # Then it is refused like a points earn over the maximum would be, and nothing moves
    details = assert_error(reply, 422, "movement_too_large")
    assert details == {"points": 500_000_000, "maximum": MAX_POINTS_PER_MOVEMENT}
    unchanged()


# --- tenant creation (operator) --------------------------------------------------------------------------


def test_invalid_tenants_are_refused_and_duplicates_conflict(
    api: Api, admin_key: str, subtests: pytest.Subtests
) -> None:
    registry = operator_state(api)
    valid = {"tenant_id": "initech", "name": "Initech", "currency": "EUR", "timezone": "Europe/Paris"}
    cases = {
        "slug 'A'": ({"tenant_id": "A"}, "tenant_id"),
        "slug 'ab'": ({"tenant_id": "ab"}, "tenant_id"),
        "slug '-x-'": ({"tenant_id": "-x-"}, "tenant_id"),
        "slug 'acme_co'": ({"tenant_id": "acme_co"}, "tenant_id"),
        "slug of 40 characters": ({"tenant_id": "a" * 40}, "tenant_id"),
        "slug starting with a digit": ({"tenant_id": "1acme"}, "tenant_id"),
        "slug with a double hyphen": ({"tenant_id": "acme--co"}, "tenant_id"),
        "slug with upper case": ({"tenant_id": "Acme"}, "tenant_id"),
        "slug with a slash": ({"tenant_id": "acme/co"}, "tenant_id"),
        "currency 'eur'": ({"currency": "eur"}, "currency"),
        "currency 'EURO'": ({"currency": "EURO"}, "currency"),
        "timezone 'Mars/Base'": ({"timezone": "Mars/Base"}, "timezone"),
        "timezone as a path": ({"timezone": "../../etc/passwd"}, "timezone"),
        "empty name": ({"name": ""}, "name"),
        "a status field": ({"status": "suspended"}, "status"),
    }
    for label, (change, field) in cases.items():
        with subtests.test(msg=label):
            reply = api.call("POST", "/v1/tenants", key=OPERATOR_KEY, body={**valid, **change})
            assert_invalid(reply, field, context=label)
    with subtests.test(msg="missing tenant_id"):
        body = {k: v for k, v in valid.items() if k != "tenant_id"}
        assert_invalid(api.call("POST", "/v1/tenants", key=OPERATOR_KEY, body=body), "tenant_id")
    assert operator_state(api) == registry, "a refused tenant was registered"

    # A duplicate is a conflict that leaves the existing tenant and its key untouched
    duplicate = api.call(
        "POST",
        "/v1/tenants",
        key=OPERATOR_KEY,
        body={**valid, "tenant_id": "acme", "name": "Impostor", "currency": "USD"},
    )
    details = assert_error(duplicate, 409, "tenant_exists")
    assert details == {"tenant_id": "acme"}
    assert operator_state(api) == registry
    me = api.call("GET", "/v1/me", key=admin_key)
    assert me.status == 200 and me.body["tenant"]["name"] == "acme brand" and me.body["tenant"]["currency"] == "EUR"


# --- the shape of details.fields ---------------------------------------------------------------------------


def test_every_invalid_request_field_has_a_path_a_message_and_a_type(tenant: Tenant) -> None:
    replies = {
        "missing Idempotency-Key": tenant.move("earn", {"points": 1}, idempotency_key=None),
        "invalid Idempotency-Key": tenant.move("earn", {"points": 1}, idempotency_key="a b"),
        "empty body": tenant.move("earn", raw_body=""),
        "body over 16 KB": tenant.move("earn", raw_body=" " * 17_000 + "{}"),
        "unknown query parameter": tenant.call("GET", "/v1/program?x=1"),
        "tampered cursor": tenant.call("GET", "/v1/members?cursor=abc"),
        "12.345 EUR": tenant.move("earn", {"amount": "12.345"}),
        "pydantic error": tenant.move("earn", {"points": "1"}),
    }
    missing = {}
    for label, reply in replies.items():
        fields = assert_invalid(reply, context=label)
        untyped = [f for f in fields if not isinstance(f.get("type"), str)]
        if untyped:
            missing[label] = untyped
    assert not missing, missing


# --- decimals: a string or a JSON integer, never a JSON number with a fraction ------------------------


def test_decimal_fields_take_whole_numbers_as_json_integers(tenant: Tenant) -> None:
    """Each decimal type of the requests, sent as a JSON integer, is stored as the same decimal
    string and computes as it does."""

    def ok(method: str, path: str, body: Any, status: int = 200) -> Any:
        reply = tenant.call(method, path, body=body)
        assert reply.status == status, (path, reply)
        return reply.body

    program = ok("PUT", "/v1/program", {"points_per_currency_unit": 10, "rounding": "floor"})
    assert program["points_per_currency_unit"] == "10"

    # amounts: an earn's amount, an order's total and unit prices, a reversal's amount
    by_integer = tenant.move("earn", {"amount": 12, "reference": "o-1"}, idempotency_key="int-1")
    by_string = tenant.move("earn", {"amount": "12", "reference": "o-2"}, idempotency_key="str-1")
    assert by_integer.status == by_string.status == 201, (by_integer, by_string)
    assert by_integer.body["transaction"]["points"] == by_string.body["transaction"]["points"] == 120
    assert by_integer.body["transaction"]["amount"] == by_string.body["transaction"]["amount"]
    order = {"id": "o-3", "total": 30, "currency": "EUR", "lines": [{"sku": "MUG", "quantity": 2, "unit_price": 15}]}
    ordered = tenant.move("earn", {"order": order}, idempotency_key="int-2")
    assert ordered.status == 201 and ordered.body["transaction"]["points"] == 300, ordered
    reversed_ = tenant.move("reverse", {"reference": "o-1", "amount": 6}, idempotency_key="int-3")
    assert reversed_.status == 201 and reversed_.body["transaction"]["points"] == -60, reversed_

    rule = ok(
        "POST",
        "/v1/program/rules",
        {"name": "Double", "kind": "order_multiplier", "factor": 2, "min_order_total": 20},
        status=201,
    )
    assert (rule["factor"], rule["min_order_total"]) == ("2", "20")
    tiers = {
        "metric": "points",
        "window": {"kind": "rolling_months", "months": 12},
        "tiers": [{"name": "silver", "threshold": 500, "multiplier": 2}],
    }
    (silver,) = ok("PUT", "/v1/program/tiers", tiers)["tiers"]
    assert (silver["threshold"], silver["multiplier"]) == ("500", "2")
    (plan,) = ok("PUT", "/v1/program/plans", {"plans": [{"plan_id": "boost", "name": "Boost", "multiplier": 2}]})[
        "data"
    ]
    assert plan["multiplier"] == "2"
    reward = ok(
        "POST", "/v1/rewards", {"name": "Voucher", "type": "fixed_discount", "points_cost": 100, "amount": 5}, 201
    )
    assert reward["amount"] == "5"
    partner = ok(
        "POST", "/v1/partners", {"partner_id": "coffee", "name": "Coffee", "earn_rate": 2, "redeem_rate": 1}, 201
    )
    assert (partner["earn_rate"], partner["redeem_rate"]) == ("2", "1")
    referrals = ok("PUT", "/v1/program/referrals", {"referrer_points": 10, "min_order_total": 20})
    assert referrals["min_order_total"] == "20"


def test_decimal_fields_refuse_json_numbers_with_a_fraction_and_what_the_string_refuses(
    tenant: Tenant, unchanged: Callable[[], None], subtests: pytest.Subtests
) -> None:
    def program(rate: Any) -> Reply:
        return tenant.call("PUT", "/v1/program", body={"points_per_currency_unit": rate, "rounding": "floor"})

    fraction_cases: dict[str, tuple[Callable[[], Reply], str]] = {
        "a program rate 12.5": (lambda: program(12.5), "points_per_currency_unit"),
        "a program rate 10.0": (lambda: program(10.0), "points_per_currency_unit"),
        "a program rate 1e3": (
            lambda: tenant.call(
                "PUT", "/v1/program", raw_body='{"points_per_currency_unit": 1e3, "rounding": "floor"}'
            ),
            "points_per_currency_unit",
        ),
        "an earn amount 12.5": (lambda: tenant.move("earn", {"amount": 12.5}), "amount"),
        "an order total 30.5": (
            lambda: tenant.move("earn", {"order": {"id": "o-9", "total": 30.5, "currency": "EUR"}}),
            "order.total",
        ),
        "a rule factor 1.5": (
            lambda: tenant.call(
                "POST", "/v1/program/rules", body={"name": "x", "kind": "order_multiplier", "factor": 1.5}
            ),
            "factor",
        ),
    }
    for label, (request, path) in fraction_cases.items():
        with subtests.test(msg=label):
            fields = assert_invalid(request(), path, context=label)
            (field,) = [f for f in fields if f["path"] == path]
            assert field["type"] == "decimal_as_string", field
            assert "string" in field["message"] and '"12.50"' in field["message"], field
    whole_refusals = {
        "zero": 0,
        "negative": -5,
        "too large": 1_000_000,
        "a boolean": True,
        "null": None,
        "a list": [10],
    }
    for label, value in whole_refusals.items():
        with subtests.test(msg=f"a program rate {label}"):
            assert_invalid(program(value), "points_per_currency_unit", context=label)
    for label, value in {"zero": 0, "negative": -5}.items():
        with subtests.test(msg=f"an earn amount {label}"):
            assert_invalid(tenant.move("earn", {"amount": value}), "amount", context=label)
    unchanged()
