"""Two gaps in the replay contract found by the state machine, pinned through HTTP, now fixed.

README: "Replaying a key with the same body returns the first response (status and body ...)
however late the replay comes; the same key with another body ... is 422
idempotency_key_reused". Fixed in ``MovementRequest``: occurred_at is normalised to UTC
when the request is built, and fingerprinted at full (microsecond) precision.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from chalicelib.services import platform, reset_platform
from tests.support.http import Api

#: Yesterday (within the dating rule's window), at a fixed time of day.
YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


@pytest.fixture
def api() -> Iterator[Api]:
    from moto import mock_aws

    with mock_aws():
        reset_platform()
        from app import app

        platform().provisioner.ensure_control_table()
        with Client(app) as client:
            yield Api(client)


def test_a_replay_returns_the_first_body_even_when_occurred_at_had_an_offset(api: Api) -> None:
    key = api.create_tenant("acme")
    member = api.enrol(key)

    first = api.earn(key, member, "order-1", points=5, occurred_at=f"{YESTERDAY}T08:30:00+02:00")
    replay = api.earn(key, member, "order-1", points=5, occurred_at=f"{YESTERDAY}T08:30:00+02:00")

    assert first.status == replay.status == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.body == first.body


def test_the_same_key_with_another_occurred_at_is_refused(api: Api) -> None:
    key = api.create_tenant("acme")
    member = api.enrol(key)

    first = api.earn(key, member, "order-1", points=5, occurred_at=f"{YESTERDAY}T08:30:00.000100Z")
    other = api.earn(key, member, "order-1", points=5, occurred_at=f"{YESTERDAY}T08:30:00.000900Z")

    assert first.status == 201
    assert other.status == 422, other.body
    assert other.error_code() == "idempotency_key_reused"
