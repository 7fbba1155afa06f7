"""Tenant provisioning, off the request path: one SQS message per tenant to provision.

``POST /v1/tenants`` registers the tenant as ``provisioning`` and enqueues
``{"tenant_id": ...}`` (``LOYALTY_PROVISIONING_QUEUE_URL``). This handler runs in its own
function, the only one whose role may create tables. It creates the table (or finds it),
waits until it is usable, then makes the tenant ``active``.

A failed attempt is recorded on the tenant and raised: the message becomes visible again
after the queue's visibility timeout and is retried, up to the queue's receive limit, then
lands in the dead-letter queue (alarmed). That is how DynamoDB's table limits are respected:
``LimitExceededException`` (500 table operations in progress, or the account's table
quota) leaves the tenant ``provisioning`` and the next delivery tries again. The event
source's maximum concurrency (infra/) keeps this function's table operations far below 500.
Duplicates are harmless: every step is idempotent. The message is sent just before the
tenant is registered; a message whose tenant is not (yet) registered is redelivered a few
times, then dropped (its request failed, and was answered so).
"""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint

from chalicelib.domain.errors import LoyaltyError, NotFound, TransientStoreError
from chalicelib.observability import logger
from chalicelib.services import platform

bp = Blueprint(__name__)

#: The queue's name as Chalice wires the event source; infra/ points it at the stage's own
#: ``loyalty-<stage>-provisioning`` queue.
PROVISIONING_QUEUE = "loyalty-provisioning"
FUNCTION = "provision-tenant"
#: Deliveries of a message naming an unregistered tenant before it is dropped.
UNREGISTERED_DELIVERIES = 3


def _tenant_id(body: str) -> str | None:
    from chalicelib.domain.tenants import is_tenant_id

    try:
        message = json.loads(body)
    except ValueError:
        return None
    tenant_id = message.get("tenant_id") if isinstance(message, dict) else None
    return tenant_id if isinstance(tenant_id, str) and is_tenant_id(tenant_id) else None


def provision(body: str, *, receive_count: int = 1) -> None:
    """One message: provision its tenant, or raise so that the queue redelivers it."""
    tenant_id = _tenant_id(body)
    if tenant_id is None:  # retrying cannot help a message that names no tenant
        logger.error("malformed provisioning message dropped", extra={"body": body[:200]})
        return
    logger.append_keys(tenant_id=tenant_id)
    try:
        tenant = platform().tenants.provision(tenant_id)
    except NotFound:
        if receive_count < UNREGISTERED_DELIVERIES:  # its registration may still be landing
            logger.warning("provisioning message for an unregistered tenant; retried later")
            raise
        logger.warning("provisioning message for an unregistered tenant dropped", extra={"receives": receive_count})
        return
    except (LoyaltyError, TransientStoreError) as error:
        logger.warning(
            "tenant provisioning deferred; the message will be redelivered",
            extra={"reason": getattr(error, "code", type(error).__name__), "detail": str(error)},
        )
        raise
    logger.info("tenant provisioned", extra={"status": str(tenant.status)})


@bp.on_sqs_message(queue=PROVISIONING_QUEUE, batch_size=1, name=FUNCTION)
def provision_tenant(event: Any) -> None:
    for record in event:
        attributes = record.to_dict().get("attributes") or {}
        provision(record.body, receive_count=int(attributes.get("ApproximateReceiveCount", 1)))
