"""A small helper over chalice.test.Client that speaks JSON and remembers nothing between calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

OPERATOR_KEY = "test-operator-key-0123456789"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None


class Api:
    def __init__(self, client: Client) -> None:
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        raw_body: bytes | str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        all_headers = {"Content-Type": "application/json"}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        all_headers.update(headers or {})
        payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client.http, method.lower())(path, headers=all_headers, body=payload)
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        headers = {k.lower(): v for k, v in response.headers.items()}
        # JSON bodies are parsed; others (CSV exports) are kept as text.
        media = headers.get("content-type", "application/json").split(";", 1)[0].strip()
        parsed = (json.loads(text) if text else None) if media == "application/json" else text
        return Reply(status=response.status_code, body=parsed, headers=headers)

    # --- conveniences used across the suite ------------------------------------------------

    def create_tenant(self, tenant_id: str, *, currency: str = "EUR", sandbox: bool = False) -> str:
        reply = self.call(
            "POST",
            "/v1/tenants",
            key=OPERATOR_KEY,
            body={
                "tenant_id": tenant_id,
                "name": f"{tenant_id} brand",
                "currency": currency,
                "timezone": "Europe/Helsinki",
                **({"sandbox": True} if sandbox else {}),
            },
        )
        assert reply.status == 201, reply
        return reply.body["api_key"]["secret"]

    def create_key(self, admin_key: str, *scopes: str) -> str:
        reply = self.call(
            "POST", "/v1/api-keys", key=admin_key, body={"name": "-".join(scopes), "scopes": list(scopes)}
        )
        assert reply.status == 201, reply
        return reply.body["secret"]

    def enrol(self, key: str, **fields: Any) -> str:
        reply = self.call("POST", "/v1/members", key=key, body=fields)
        assert reply.status == 201, reply
        return reply.body["id"]

    def earn(self, key: str, member_id: str, idempotency_key: str, **body: Any) -> Reply:
        return self.call("POST", f"/v1/members/{member_id}/earn", key=key, body=body, idempotency_key=idempotency_key)

    def redeem(self, key: str, member_id: str, idempotency_key: str, **body: Any) -> Reply:
        return self.call("POST", f"/v1/members/{member_id}/redeem", key=key, body=body, idempotency_key=idempotency_key)

    def balance(self, key: str, member_id: str) -> dict[str, Any]:
        reply = self.call("GET", f"/v1/members/{member_id}/balance", key=key)
        assert reply.status == 200, reply
        return reply.body

    def ledger(self, key: str, member_id: str) -> list[dict[str, Any]]:
        entries, cursor = [], None
        while True:
            path = f"/v1/members/{member_id}/transactions?limit=100" + (f"&cursor={cursor}" if cursor else "")
            reply = self.call("GET", path, key=key)
            assert reply.status == 200, reply
            entries.extend(reply.body["data"])
            cursor = reply.body["next_cursor"]
            if not cursor:
                return entries
