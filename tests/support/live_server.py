"""A real `chalice local` server (as `make run` serves it) on a free port, for the tests that
need real HTTP: the concurrency tests and the fuzzer.

The server runs in its own process on a thread-safe DynamoDB emulator (DynamoDB Local or
moto's server, never the in-process mock_aws), under its own table prefix, with the
control-plane table created first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import requests

from chalicelib.services import platform, reset_platform
from tests.support.emulators import free_port
from tests.support.http import OPERATOR_KEY

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


def _environment(endpoint: str, table_prefix: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: fake AWS credentials, the emulator, the operator key, quiet
    powertools, plus ``extra`` (e.g. ``LOYALTY_CONFLICT_RETRY_ATTEMPTS``)."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LOYALTY_DYNAMODB_ENDPOINT": endpoint,
        "LOYALTY_TABLE_PREFIX": table_prefix,
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **extra,
    }


def _create_control_table(env: dict[str, str]) -> None:
    """In this process, with the server's settings: the server itself never creates it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        reset_platform()
        platform().provisioner.ensure_control_table()
        reset_platform()


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if requests.get(base_url + "/v1/health", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still importing
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            server.wait(timeout=10)
            raise RuntimeError(f"chalice local did not start (exit code {server.returncode})")
        time.sleep(0.2)


@contextmanager
def chalice_local(
    endpoint: str, *, prefix_letter: str, log: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start `chalice local` on the DynamoDB ``endpoint``, its tables prefixed
    ``<prefix_letter><random>`` and ``env`` added to its environment, and yield its base URL
    once /v1/health answers; stop it on exit. Its output goes to ``log`` (discarded when None)."""
    server_env = _environment(endpoint, f"{prefix_letter}{uuid.uuid4().hex[:12]}", env or {})
    _create_control_table(server_env)
    port = free_port()
    command = [sys.executable, "-m", "devtools.devserver", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") if log is not None else nullcontext(subprocess.DEVNULL) as sink:
        server = subprocess.Popen(
            [*command, "--stage", "local"], cwd=ROOT, env=server_env, stdout=sink, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, server)
        yield base_url
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
