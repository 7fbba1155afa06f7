"""``make run`` (``python -m devtools.cli run-local``) as a developer meets it: on DynamoDB Local,
with its data in a folder, a brand created before a restart works after it, and so does the
signing secret of its webhook; SIGTERM stops every process it started; a path or method that no
route takes answers 404 or 405 in the API's error shape.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.emulators import DynamoDBLocal, free_port
from tests.support import emulators
from tests.support.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90

pytestmark = pytest.mark.skipif(
    DynamoDBLocal.unavailable() is not None and not emulators.required(),
    reason="DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1",
)


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    keys: dict[str, str]
    log: Path

    def call(self, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(
            method, self.base + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )


def _environment() -> dict[str, str]:
    """This machine's environment without the suite's settings: the run chooses its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "AWS_", "POWERTOOLS_"))}


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running(data_dir: Path, log: Path) -> Iterator[Started]:
    port = free_port()
    command = [sys.executable, "-m", "devtools.cli", "run-local", "--port", str(port), "--data-dir", str(data_dir)]
    options = ["--webhooks-every", "1", "--jobs-every", "3600"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*command, *options], cwd=ROOT, env=_environment(), stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Stop " not in log.read_text():  # the banner's last line: printed once the API answers
            assert process.poll() is None, f"run-local exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"run-local did not start:\n{log.read_text()}"
            time.sleep(0.2)
        keys = json.loads((data_dir / "keys.json").read_text())
        yield Started(process, base, port, keys, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def stop_with_sigterm(run: Started) -> None:
    """SIGTERM: the run exits 0, the port closes, and none of the processes it started remains."""
    children = _descendants(run.process.pid)
    assert len(children) >= 2, children  # DynamoDB Local's JVM and chalice local at least
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=30) == 0, run.log.read_text()
    assert not _listening(run.port)
    assert [pid for pid in children if _alive(pid)] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_brand_its_keys_and_its_webhook_secret_outlive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with Receiver() as receiver:
        # Given a run where the operator created a brand, and the brand subscribed a receiver
        with running(data_dir, tmp_path / "first.log") as first:
            created = first.call(
                "POST",
                "/v1/tenants",
                first.keys["operator_key"],
                {"tenant_id": "acme", "name": "Acme", "currency": "EUR", "timezone": "UTC"},
            )
            assert created.status_code == 201, created.text
            acme_key = created.json()["api_key"]["secret"]
            hook = first.call("POST", "/v1/webhooks", acme_key, {"url": receiver.url(), "events": ["member.created"]})
            assert hook.status_code == 201, hook.text
            secret = hook.json()["secret"]
            # When it is stopped with SIGTERM
            stop_with_sigterm(first)

        # Then, started again on the same folder, the keys are the same and the brand's key works
        with running(data_dir, tmp_path / "second.log") as second:
            assert second.keys == first.keys
            enrolled = second.call("POST", "/v1/members", acme_key, {"external_id": "c-1", "email": "c1@example.com"})
            assert enrolled.status_code == 201, enrolled.text
            demo = second.call("GET", "/v1/members?limit=1", second.keys["admin_key"])
            assert demo.status_code == 200, demo.text
            # and the webhook's secret, sealed before the restart, still signs its deliveries
            deadline = time.monotonic() + 30
            while not receiver.at("/hook") and time.monotonic() < deadline:
                time.sleep(0.2)
            (delivery,) = receiver.at("/hook")
            assert delivery.verify(secret)["type"] == "member.created"
            # and a path no route takes answers 404 in the error shape, the header not echoed
            unknown = second.call("GET", "/v1/no-such-thing", acme_key)
            assert unknown.status_code == 404
            assert unknown.json() == {
                "error": {"code": "not_found", "message": "no route matches this path", "details": {}}
            }
            assert acme_key not in unknown.text
            # and a method its route does not take, 405 naming those it does
            refused = second.call("PUT", "/v1/members", acme_key)
            assert refused.status_code == 405 and refused.headers["Allow"] == "GET, POST"
            assert refused.json()["error"]["code"] == "method_not_allowed"
            assert acme_key not in refused.text
            stop_with_sigterm(second)
    assert "Traceback" not in first.log.read_text() + second.log.read_text()
