"""A real `chalice local` HTTP server on a thread-safe emulator (never the in-process mock_aws,
which loses updates under threads), one per emulator for the whole module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from chalicelib.services import platform, reset_platform
from tests.support.emulators import free_port
from tests.support.http import OPERATOR_KEY

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="module", params=["dynamodb-local", "moto-server"])
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    if request.param == "dynamodb-local":
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        if endpoint is None:
            pytest.skip("DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1")
    else:
        endpoint = request.getfixturevalue("moto_server_endpoint")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LOYALTY_DYNAMODB_ENDPOINT": endpoint,
        "LOYALTY_TABLE_PREFIX": f"c{uuid.uuid4().hex[:12]}",
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        # 50 writers on one member against a one-request-at-a-time emulator on a loaded CI box:
        # allow every writer to lose every race rather than answer 503 (which the tests count).
        "LOYALTY_CONFLICT_RETRY_ATTEMPTS": "200",
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
    server = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.devserver", "--host", "127.0.0.1", "--port", str(port), "--stage", "local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base_url + "/v1/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("chalice local did not start")
        time.sleep(0.2)
    try:
        yield LiveServer(base_url=base_url, emulator=request.param)
    finally:
        server.terminate()
        server.wait(timeout=10)
