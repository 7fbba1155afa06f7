"""Shared fixtures. Every test gets fresh settings, a unique table prefix and fake credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from chalicelib.services import reset_platform
from tests.support import emulators
from tests.support.http import OPERATOR_KEY


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        "LOYALTY_TABLE_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOYALTY_DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    reset_platform()
    yield
    reset_platform()


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str | None]:
    if emulators.dynamodb_local_dir() is None and not emulators.required():
        yield None
        return
    with emulators.dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_server_endpoint() -> Iterator[str]:
    with emulators.moto_server() as endpoint:
        yield endpoint
