"""``make run`` (``python -m devtools.cli run-local``) as a developer meets it: on DynamoDB Local,
with its data in a folder, a brand created before a restart works after it, and so does the
signing secret of its webhook; SIGTERM stops every process it started; a path or method that no
route takes answers 404 or 405 in the API's error shape.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from devtools.emulators import DynamoDBLocal
from tests.support import emulators
from tests.support.local_run import running, stop_with_sigterm
from tests.support.receiver import Receiver

pytestmark = pytest.mark.skipif(
    DynamoDBLocal.unavailable() is not None and not emulators.required(),
    reason="DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1",
)


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
