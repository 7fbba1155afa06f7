"""A real `chalice local` HTTP server on a thread-safe emulator (never the in-process mock_aws,
which loses updates under threads), one per emulator for the whole module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.http import OPERATOR_KEY
from tests.support.live_server import chalice_local


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    emulator: str

    def call(
        self, method: str, path: str, *, key: str, body: dict | None = None, idempotency_key: str | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return requests.request(method, self.base_url + path, json=body, headers=headers, timeout=120)

    def create_tenant(self, tenant_id: str) -> str:
        reply = self.call(
            "POST",
            "/v1/tenants",
            key=OPERATOR_KEY,
            body={"tenant_id": tenant_id, "name": tenant_id, "currency": "EUR", "timezone": "UTC"},
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["api_key"]["secret"])

    def enrol(self, key: str) -> str:
        reply = self.call("POST", "/v1/members", key=key, body={})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def funded(self, key: str, points: int) -> str:
        """A new member holding ``points``."""
        member = self.enrol(key)
        reply = self.call(
            "POST", f"/v1/members/{member}/earn", key=key, body={"points": points}, idempotency_key=f"fund-{member}"
        )
        assert reply.status_code == 201, reply.text
        return member

    def balance(self, key: str, member: str) -> dict[str, Any]:
        reply = self.call("GET", f"/v1/members/{member}/balance", key=key)
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def ledger_sum(self, key: str, member: str) -> int:
        """The points of the member's ledger summed (one page: the tests write fewer than 100 entries)."""
        reply = self.call("GET", f"/v1/members/{member}/transactions?limit=100", key=key)
        assert reply.status_code == 200 and reply.json()["next_cursor"] is None, reply.text
        return sum(entry["points"] for entry in reply.json()["data"])


@pytest.fixture(scope="module", params=["dynamodb-local", "moto-server"])
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    if request.param == "dynamodb-local":
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        if endpoint is None:
            pytest.skip("DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1")
    else:
        endpoint = request.getfixturevalue("moto_server_endpoint")
    # 50 writers on one member against a one-request-at-a-time emulator on a loaded CI box:
    # allow every writer to lose every race rather than answer 503 (which the tests count).
    with chalice_local(endpoint, prefix_letter="c", env={"LOYALTY_CONFLICT_RETRY_ATTEMPTS": "200"}) as base_url:
        yield LiveServer(base_url=base_url, emulator=request.param)
