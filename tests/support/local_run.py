"""``make run`` (``python -m devtools.cli run-local``) started for a test: in its own process, on a
free port and a data folder of the test's, its output in a log file; stopped with SIGTERM, as a
developer's Ctrl-C stops it, and checked to leave no process behind.
"""

from __future__ import annotations

import json
import os
import re
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

import requests

from devtools.emulators import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90
STOP_SECONDS = 30


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

    def printed(self, label: str) -> str:
        """The first word after ``label`` on the banner's line of that label (``Demo key``: the key)."""
        found = re.search(rf"^{re.escape(label)}\s+(\S+)", self.log.read_text(), re.MULTILINE)
        assert found, f"no {label!r} line in the banner:\n{self.log.read_text()}"
        return found.group(1)


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
    """``run-local`` on ``data_dir``, yielded once its banner is printed (the API answers then).

    Whatever the test's outcome, the run is stopped on leaving: SIGTERM first (it stops what it
    started), killed only when it has not exited within ``STOP_SECONDS``.
    """
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
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def stop_with_sigterm(run: Started) -> None:
    """SIGTERM: the run exits 0, the port closes, and none of the processes it started remains."""
    children = _descendants(run.process.pid)
    assert len(children) >= 2, children  # DynamoDB Local's JVM and chalice local at least
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=STOP_SECONDS) == 0, run.log.read_text()
    assert not _listening(run.port)
    assert [pid for pid in children if _alive(pid)] == []
