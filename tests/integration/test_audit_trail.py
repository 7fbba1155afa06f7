"""The audit trail, generated from the declared operations so that no admin write can escape it.

Every write route an admin key (or the operator) may call is called once with the valid sample
request of the security matrix (``test_route_security``), on a tenant holding one of each
object; each must add at least one entry to the trail, naming the caller's key id and never a
secret. A new admin route that records nothing fails here until it does, or until it is added
to ``EXEMPT`` with the reason why it changes nothing worth recording.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.api.routing import OPERATIONS, Operation
from chalicelib.domain.audit import AUDIT_RETENTION_YEARS
from tests.integration.test_route_security import (  # noqa: F401 - ``world`` is a fixture
    World,
    required_scope,
    route,
    send,
    world,
)
from tests.support.checks import all_pages, assert_error
from tests.support.http import OPERATOR_KEY, Api

#: Admin or operator writes that record nothing, each with why. Reads never write, so they
#: need no entry here (they are not ``writes`` in the route table).
EXEMPT: dict[str, str] = {
    "advance_test_clock": "moves a sandbox brand's test clock (live brands have none): a test setting, not the program",
}

#: Every write an admin key or the operator may call: tenant routes first, then the operator's
#: (suspending the tenant would refuse the tenant's routes), each in declaration order.
AUDITED: list[Operation] = [
    op for op in OPERATIONS if op.writes and op.auth == "tenant" and required_scope(op) == "admin"
] + [op for op in OPERATIONS if op.writes and op.auth == "operator"]


@pytest.fixture
def admin_key(api: Api) -> str:
    """Tenant A is a sandbox brand, as in the security matrix, so its world takes every route."""
    return api.create_tenant("acme", sandbox=True)


def trail(api: Api, key: str, path: str = "/v1/audit") -> list[dict[str, Any]]:
    return all_pages(api, key, path)


def key_id(api: Api, key: str) -> str:
    me = api.call("GET", "/v1/me", key=key)
    assert me.status == 200, me
    return str(me.body["api_key"]["id"])


def test_the_audited_routes_are_generated_from_the_route_table() -> None:
    names = {op.operation_id for op in AUDITED}
    assert {"put_program", "adjust_points", "create_api_key", "revoke_api_key", "suspend_tenant"} <= names
    assert len(AUDITED) >= 25, "OPERATIONS looks unpopulated"
    assert set(EXEMPT) <= names, f"EXEMPT names routes that are not admin writes: {set(EXEMPT) - names}"


def test_every_admin_and_operator_write_records_an_audit_entry(
    world: World,  # noqa: F811 - the security matrix's fixture, imported above
    subtests: pytest.Subtests,
) -> None:
    api = world.api
    admin_id = key_id(api, world.admin)
    secrets = [world.admin, *world.keys.values(), world.spare_key, OPERATOR_KEY]
    before = {entry["id"] for entry in trail(api, world.admin)}
    before_operator = {entry["id"] for entry in trail(api, OPERATOR_KEY, "/v1/operator/audit")}

    for op in AUDITED:
        with subtests.test(msg=route(op)):
            # When an admin key (or the operator) makes the change
            operator = op.auth == "operator"
            reply = send(world, op, key=OPERATOR_KEY if operator else world.admin)
            assert reply.status == op.status, f"{route(op)}: {reply.status} {reply.body}"
            if isinstance(reply.body, dict):
                secrets += [str(value) for name, value in _walk(reply.body) if "secret" in name and value]
            if op.operation_id in EXEMPT:
                continue

            # Then the trail holds a new entry naming the caller's key id, the action and the target
            path = "/v1/operator/audit" if operator else "/v1/audit"
            entries = trail(api, OPERATOR_KEY if operator else world.admin, path)
            seen = before_operator if operator else before
            new = [entry for entry in entries if entry["id"] not in seen]
            seen.update(entry["id"] for entry in new)
            assert new, f"{route(op)} changed something and recorded no audit entry (or add it to EXEMPT)"
            for entry in new:
                assert entry["actor"]["key_id"] == ("operator" if operator else admin_id), f"{route(op)}: {entry}"
                assert entry["actor"]["channel"] == ("operator" if operator else "api"), f"{route(op)}: {entry}"
                assert entry["action"] and entry["target"]["type"] and entry["target"]["id"], entry

    # And no entry carries a secret: neither an API key, nor the operator's, nor a signing secret
    everything = json.dumps([trail(api, world.admin), trail(api, OPERATOR_KEY, "/v1/operator/audit")])
    assert "lk_" not in everything, "an API key's secret reached the audit trail"
    leaked = [secret for secret in secrets if secret in everything]
    assert not leaked, f"secrets in the audit trail: {leaked}"


def _walk(value: Any, name: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _walk(item, key)]
    if isinstance(value, list):
        return [pair for item in value for pair in _walk(item, name)]
    return [(name, value)]


def test_a_program_edit_records_before_and_after_and_the_trail_filters_and_pages(api: Api, admin_key: str) -> None:
    # Given two admin keys, and edits by each
    other = api.create_key(admin_key, "admin")
    admin_id, other_id = key_id(api, admin_key), key_id(api, other)
    first = {"points_per_currency_unit": "2", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=first).status == 200
    second = {"points_per_currency_unit": "3", "rounding": "ceil"}
    assert api.call("PUT", "/v1/program", key=other, body=second).status == 200
    rule = {"name": "x2", "kind": "order_multiplier", "factor": "2"}
    assert api.call("POST", "/v1/program/rules", key=other, body=rule).status == 201

    # When the trail is read whole, Then it is oldest first, each program edit with its before and after
    entries = trail(api, admin_key)
    edits = [entry for entry in entries if entry["action"] == "program.updated"]
    assert [edit["actor"]["key_id"] for edit in edits] == [admin_id, other_id]
    assert edits[0]["after"]["points_per_currency_unit"] == "2"
    assert edits[1]["before"]["points_per_currency_unit"] == "2" and edits[1]["before"]["rounding"] == "floor"
    assert edits[1]["after"]["points_per_currency_unit"] == "3" and edits[1]["after"]["rounding"] == "ceil"
    assert [entry["at"] for entry in entries] == sorted(entry["at"] for entry in entries)
    assert entries[0]["action"] == "api_key.created" and entries[0]["target"]["id"] == other_id

    # And it filters by actor and by action, and pages with a cursor
    by_other = trail(api, admin_key, f"/v1/audit?actor={other_id}")
    assert [entry["action"] for entry in by_other] == ["program.updated", "rule.added"]
    rules = trail(api, admin_key, "/v1/audit?action=rule.added")
    assert [(entry["actor"]["key_id"], entry["target"]["type"]) for entry in rules] == [(other_id, "rule")]
    paged = all_pages(api, admin_key, "/v1/audit", limit=1)
    assert [entry["id"] for entry in paged] == [entry["id"] for entry in entries]
    # And `after` gives only the entries written after an instant
    later = api.call("GET", f"/v1/audit?after={entries[1]['at'].replace('+00:00', 'Z')}", key=admin_key)
    assert later.status == 200
    assert {entry["id"] for entry in later.body["data"]} <= {entry["id"] for entry in entries[1:]}
    assert entries[-1]["id"] in {entry["id"] for entry in later.body["data"]}
    # (a moment before any entry could be written stands for the start)
    assert trail(api, admin_key, "/v1/audit?after=0001-01-01T00:00:00Z") == entries


def test_a_refused_change_records_nothing_and_a_read_key_cannot_read_the_trail(api: Api, admin_key: str) -> None:
    body = {"partner_id": "coffee", "name": "Coffee", "earn_rate": "1", "redeem_rate": "0.01"}
    assert api.call("POST", "/v1/partners", key=admin_key, body=body).status == 201
    before = trail(api, admin_key)

    # When the same partner is created again (refused: it exists)
    assert_error(api.call("POST", "/v1/partners", key=admin_key, body=body), 409, "partner_exists")

    # Then the trail is unchanged: the entry is written in the change's own transaction
    assert trail(api, admin_key) == before
    # And only an admin key reads it
    assert_error(api.call("GET", "/v1/audit", key=api.create_key(admin_key, "read")), 403, "forbidden")
    assert_error(api.call("GET", "/v1/audit?action=no.such"), 401, "unauthorized")


def test_manual_adjustments_are_audited_in_their_ledger_transaction(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key, name="Ada")
    adjusted = api.call(
        "POST",
        f"/v1/members/{member}/adjust",
        key=admin_key,
        body={"points": 25, "reason": "goodwill"},
        idempotency_key="adjust-1",
    )
    assert adjusted.status == 201, adjusted
    # A replay of the same request adjusts nothing more, and records nothing more
    replay = api.call(
        "POST",
        f"/v1/members/{member}/adjust",
        key=admin_key,
        body={"points": 25, "reason": "goodwill"},
        idempotency_key="adjust-1",
    )
    assert replay.status == 201, replay

    (entry,) = trail(api, admin_key, "/v1/audit?action=points.adjusted")
    assert entry["target"] == {"type": "member", "id": member}
    assert entry["before"] == {"available": 0}
    assert entry["after"] == {
        "available": 25,
        "points": 25,
        "reason": "goodwill",
        "transaction_id": adjusted.body["transaction"]["id"],
    }


def test_the_operators_changes_are_in_the_control_tables_trail(api: Api, admin_key: str) -> None:
    assert api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY).status == 200
    assert api.call("POST", "/v1/tenants/acme/resume", key=OPERATOR_KEY).status == 200

    entries = trail(api, OPERATOR_KEY, "/v1/operator/audit")
    assert [(e["action"], e["target"]["id"]) for e in entries] == [
        ("tenant.created", "acme"),
        ("tenant.suspended", "acme"),
        ("tenant.resumed", "acme"),
    ]
    assert entries[1]["before"] == {"status": "active"} and entries[1]["after"] == {"status": "suspended"}
    # And the tenant's own trail does not hold them
    assert [e for e in trail(api, admin_key) if e["action"].startswith("tenant.")] == []
    assert_error(api.call("GET", "/v1/operator/audit", key=admin_key), 401, "unauthorized")


def test_retention_is_stated() -> None:
    assert AUDIT_RETENTION_YEARS == 7
