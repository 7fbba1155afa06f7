"""A real local API server for the fuzzer: `chalice local` (as `make run` serves it) on a free
port, on DynamoDB Local (or moto's serial server when DynamoDB Local is opted out of), with
a tenant, its admin key and one member created through the API first."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from chalicelib.services import platform, reset_platform
from tests.model.stats import SUMMARY
from tests.support.emulators import free_port
from tests.support.http import OPERATOR_KEY

ROOT = Path(__file__).resolve().parents[2]
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


def _wait_for(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base_url + "/v1/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("chalice local did not start")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def live_api(request: pytest.FixtureRequest) -> Iterator[LiveApi]:
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    emulator = "dynamodb-local"
    if endpoint is None:
        endpoint, emulator = request.getfixturevalue("moto_server_endpoint"), "moto-server"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LOYALTY_DYNAMODB_ENDPOINT": endpoint,
        "LOYALTY_TABLE_PREFIX": f"z{uuid.uuid4().hex[:12]}",
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        reset_platform()
        platform().provisioner.ensure_control_table()
        reset_platform()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="fuzz-server-")) / "server.log"
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "chalicelib.devserver", "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--stage", "local"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base_url, server)
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
    finally:
        server.terminate()
        server.wait(timeout=10)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY["fuzz"]:
        terminalreporter.section("API fuzzing")
        for line in SUMMARY["fuzz"]:
            terminalreporter.write_line(line)
