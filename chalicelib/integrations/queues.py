"""Where drains of webhook outboxes, and runs of bulk imports, are requested.

Deployed (``LOYALTY_DELIVERIES_QUEUE_URL``): one SQS message ``{"kind": "drain", "tenant_id",
"webhook_id"}`` per endpoint with new deliveries; the ``deliver-webhooks`` handler drains it.
Locally there is no queue: the ``dispatch-webhooks`` job drains every due endpoint itself.
"""

from __future__ import annotations

import json
from typing import Any


def drain_message(tenant_id: str, webhook_id: str) -> str:
    return json.dumps({"kind": "drain", "tenant_id": tenant_id, "webhook_id": webhook_id}, separators=(",", ":"))


def dispatch_message(tenant_id: str) -> str:
    return json.dumps({"kind": "dispatch", "tenant_id": tenant_id}, separators=(",", ":"))


class SqsDeliveryQueue:
    def __init__(self, tenant_id: str, queue_url: str, sqs: Any) -> None:
        self._tenant_id = tenant_id
        self._queue_url = queue_url
        self._sqs = sqs

    def drain_soon(self, webhook_id: str) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=drain_message(self._tenant_id, webhook_id))


class InProcessDeliveryQueue:
    """No queue: the requests are remembered (tests look) and the job drains due endpoints itself."""

    def __init__(self) -> None:
        self.requested: list[str] = []

    def drain_soon(self, webhook_id: str) -> None:
        self.requested.append(webhook_id)


# --- bulk imports (on the jobs queue) ----------------------------------------------------------


def import_message(tenant_id: str, import_id: str) -> str:
    return json.dumps({"kind": "import", "tenant_id": tenant_id, "import_id": import_id}, separators=(",", ":"))


class SqsImportQueue:
    """Deployed: one message on the jobs queue starts (or continues) an import."""

    def __init__(self, tenant_id: str, queue_url: str, sqs: Any) -> None:
        self._tenant_id = tenant_id
        self._queue_url = queue_url
        self._sqs = sqs

    def submit(self, import_id: str) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=import_message(self._tenant_id, import_id))
