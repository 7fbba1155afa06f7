"""A real local API server for the fuzzer: `chalice local` (as `make run` serves it) on a free
port, on DynamoDB Local (or moto's serial server when DynamoDB Local is opted out of), with
a tenant, its admin key and one member created through the API first."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.model.stats import SUMMARY
from tests.support.http import OPERATOR_KEY
from tests.support.live_server import chalice_local

TENANT_ID = "fuzz-brand"


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    emulator: str
    admin_key: str
    operator_key: str
    tenant_id: str
    member_id: str
    server_log: Path

    def key_for(self, security: list[dict[str, list[str]]] | None) -> str | None:
        """The Bearer token an operation documents: the operator's, the tenant's, or none."""
        schemes = {name for requirement in security or [] for name in requirement}
        if "operatorKey" in schemes:
            return self.operator_key
        if "apiKey" in schemes:
            return self.admin_key
        return None


@pytest.fixture(scope="session")
def live_api(request: pytest.FixtureRequest) -> Iterator[LiveApi]:
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    emulator = "dynamodb-local"
    env: dict[str, str] = {}
    if endpoint is None:
        endpoint, emulator = request.getfixturevalue("moto_server_endpoint"), "moto-server"
    else:  # DynamoDB Local speaks no KMS (webhook and Shopify secrets): the moto server does
        env["LOYALTY_KMS_ENDPOINT"] = request.getfixturevalue("moto_server_endpoint")
    log = Path(tempfile.mkdtemp(prefix="fuzz-server-")) / "server.log"
    with chalice_local(endpoint, prefix_letter="z", log=log, env=env) as base_url:
        operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        created = requests.post(
            f"{base_url}/v1/tenants",
            json={"tenant_id": TENANT_ID, "name": "Fuzz", "currency": "EUR", "timezone": "Europe/Helsinki"},
            headers=operator,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        admin_key = created.json()["api_key"]["secret"]
        member = requests.post(
            f"{base_url}/v1/members", json={}, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        )
        assert member.status_code == 201, member.text
        yield LiveApi(base_url, emulator, admin_key, OPERATOR_KEY, TENANT_ID, member.json()["id"], log)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY["fuzz"]:
        terminalreporter.section("API fuzzing")
        for line in SUMMARY["fuzz"]:
            terminalreporter.write_line(line)
