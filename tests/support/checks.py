"""Assertions shared by the integration suite: the error contract and "nothing changed" snapshots.

A snapshot reads everything a tenant (or the operator) can see through the API, so comparing
one taken before a refused request with one taken after proves the request wrote nothing.
"""

from __future__ import annotations

from typing import Any

from tests.support.http import OPERATOR_KEY, Api, Reply


def assert_error(reply: Reply, status: int, code: str, context: str = "") -> dict[str, Any]:
    """The reply is the documented error body with this status and code; returns its details."""
    where = f"{context}: " if context else ""
    assert reply.status == status, f"{where}expected {status} {code}, got {reply.status} {reply.body}"
    assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, f"{where}not an error body: {reply.body}"
    error = reply.body["error"]
    assert set(error) == {"code", "message", "details"}, f"{where}error keys are {sorted(error)}"
    assert error["code"] == code, f"{where}expected code {code}, got {error['code']} ({error['message']})"
    assert isinstance(error["message"], str) and error["message"], f"{where}empty message"
    assert isinstance(error["details"], dict), f"{where}details is not an object: {error['details']}"
    return error["details"]


def assert_invalid(reply: Reply, *paths: str, context: str = "") -> list[dict[str, Any]]:
    """400 invalid_request naming at least these fields in details.fields; returns the entries."""
    details = assert_error(reply, 400, "invalid_request", context)
    where = f"{context}: " if context else ""
    fields = details.get("fields")
    assert isinstance(fields, list) and fields, f"{where}details.fields missing or empty: {details}"
    for entry in fields:
        assert isinstance(entry.get("path"), str) and entry["path"], f"{where}field without a path: {entry}"
        assert isinstance(entry.get("message"), str) and entry["message"], f"{where}field without a message: {entry}"
    named = [entry["path"] for entry in fields]
    for path in paths:
        assert path in named, f"{where}expected {path!r} in details.fields, got {named}"
    return fields


def all_pages(api: Api, key: str, path: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated collection, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    separator = "&" if "?" in path else "?"
    for _ in range(1000):
        page = api.call("GET", f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else ""), key=key)
        assert page.status == 200, f"GET {path}: {page}"
        items.extend(page.body["data"])
        cursor = page.body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError(f"GET {path}: pagination never ended")


def tenant_state(api: Api, admin_key: str) -> dict[str, Any]:
    """Everything the tenant of ``admin_key`` holds: members, balances, ledgers, keys, program, job runs,
    partners, bulk imports, challenges and badges."""
    members = all_pages(api, admin_key, "/v1/members")
    keys = api.call("GET", "/v1/api-keys", key=admin_key)
    program = api.call("GET", "/v1/program", key=admin_key)
    partners = api.call("GET", "/v1/partners", key=admin_key)
    assert keys.status == 200 and program.status == 200 and partners.status == 200, (keys, program, partners)
    referral_programs = api.call("GET", "/v1/program/referrals", key=admin_key)
    assert referral_programs.status == 200, referral_programs
    return {
        "members": members,
        "balances": {m["id"]: api.balance(admin_key, m["id"]) for m in members},
        "ledgers": {m["id"]: api.ledger(admin_key, m["id"]) for m in members},
        "api_keys": sorted(keys.body["data"], key=lambda k: k["id"]),
        "program": program.body,
        "job_runs": all_pages(api, admin_key, "/v1/jobs/runs"),
        "partners": partners.body["data"],
        "referral_programs": referral_programs.body["data"],
        "referrals": {m["id"]: all_pages(api, admin_key, f"/v1/members/{m['id']}/referrals") for m in members},
        # paid membership: the plans and every member's subscriptions
        "plans": _read(api, admin_key, "/v1/program/plans"),
        "subscriptions": {m["id"]: all_pages(api, admin_key, f"/v1/members/{m['id']}/subscriptions") for m in members},
        "imports": all_pages(api, admin_key, "/v1/imports"),
        # challenges and badges: the brand's challenges, every member's progress and badges
        "challenges": _read(api, admin_key, "/v1/challenges"),
        "member_challenges": {m["id"]: _read(api, admin_key, f"/v1/members/{m['id']}/challenges") for m in members},
        "badges": {m["id"]: _read(api, admin_key, f"/v1/members/{m['id']}/badges") for m in members},
    }


def _read(api: Api, key: str, path: str) -> Any:
    reply = api.call("GET", path, key=key)
    assert reply.status == 200, f"GET {path}: {reply}"
    return reply.body


def operator_state(api: Api) -> list[dict[str, Any]]:
    """The tenant registry as the operator sees it (status included)."""
    return all_pages(api, OPERATOR_KEY, "/v1/tenants")
