"""The integration suite runs once on moto (in-process) and once on Amazon's DynamoDB Local."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.services import platform, reset_platform
from tests.support.http import Api


@pytest.fixture(params=["moto", "dynamodb-local"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "moto":
        from moto import mock_aws

        # moto's in-process backend is not thread-safe (its item copies race with concurrent
        # writes): bulk imports land one row at a time there; on DynamoDB Local, 8 at a time.
        monkeypatch.setenv("LOYALTY_IMPORT_ROW_WORKERS", "1")
        with mock_aws():
            reset_platform()
            yield "moto"
        return
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    if endpoint is None:
        pytest.skip("DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1")
    monkeypatch.setenv("LOYALTY_DYNAMODB_ENDPOINT", endpoint)
    reset_platform()
    yield "dynamodb-local"


@pytest.fixture
def api(backend: str) -> Iterator[Api]:
    from app import app

    platform().provisioner.ensure_control_table()
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def admin_key(api: Api) -> str:
    return api.create_tenant("acme")


@pytest.fixture
def other_admin_key(api: Api) -> str:
    return api.create_tenant("globex")
