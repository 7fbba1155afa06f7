"""Webhook work: every minute, each active tenant's new events become deliveries, and due
endpoints are drained (sent their outbox in order).

Deployed (``LOYALTY_DELIVERIES_QUEUE_URL``), the schedule only enqueues one ``dispatch``
message per active tenant; the ``deliver-webhooks`` handler dispatches it (recording the
deliveries before the checkpoint moves) and enqueues one ``drain`` message per endpoint with
new or due deliveries, which the same handler then drains, so one slow endpoint delays only
itself. Retries need no delayed messages: a failed endpoint waits out its backoff
(``retry_at``), and the minute's sweep finds it due again, so backoff is not bounded by
SQS's 15-minute delay limit and a lost message costs at most a minute. A message the handler
cannot process (storage failing) is retried by SQS, then lands in the dead-letter queue.

Locally (no queue) the schedule does all of it in-process, tenant after tenant.

When a bus is configured (``LOYALTY_EVENT_BUS_NAME``), the same per-tenant unit also puts the
tenant's new feed events on it (:mod:`chalicelib.domain.bus`); if the bus refuses some even
after retries, the unit fails (and is retried by SQS) with the bus checkpoint unmoved.
"""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.integrations.queues import InProcessDeliveryQueue, SqsDeliveryQueue, dispatch_message
from chalicelib.observability import logger
from chalicelib.services import platform

bp = Blueprint(__name__)

#: The queue's name as Chalice wires the event source; infra/ points it at the stage's own
#: ``loyalty-<stage>-deliveries`` queue.
DELIVERIES_QUEUE = "loyalty-deliveries"
FUNCTION = "deliver-webhooks"
SCHEDULE = "dispatch-webhooks"


def dispatch_tenant(tenant_id: str, *, clock: Clock = utc_now, drain: bool | None = None) -> dict[str, Any]:
    """One tenant: new events -> deliveries, then drains (in-process unless a queue takes them);
    then new events -> the bus, if one is configured."""
    summary = dispatch_webhooks_of(tenant_id, clock=clock, drain=drain)
    publisher = platform().for_tenant_id(tenant_id, clock=clock).bus_publisher
    if publisher is not None:
        published = publisher.publish()
        summary["published"] = published.published
        if published.published:
            logger.info("events published", extra={"tenant_id": tenant_id, "published": published.published})
    return summary


def dispatch_webhooks_of(tenant_id: str, *, clock: Clock = utc_now, drain: bool | None = None) -> dict[str, Any]:
    services = platform()
    webhooks = services.for_tenant_id(tenant_id, clock=clock).webhooks
    dispatched = webhooks.dispatch()
    due = webhooks.due_endpoints()
    in_process = not services.settings.deliveries_queue_url if drain is None else drain
    summary: dict[str, Any] = {"events": dispatched.events, "deliveries": dispatched.deliveries, "due": len(due)}
    if in_process:
        drains = [webhooks.drain(webhook_id) for webhook_id in due]
        summary.update(
            sent=sum(d.sent for d in drains),
            succeeded=sum(d.succeeded for d in drains),
            failed_attempts=sum(d.failed_attempts for d in drains),
            given_up=sum(d.given_up for d in drains),
            disabled=sum(d.disabled for d in drains),
        )
    else:
        queue = webhooks_queue(tenant_id)
        for webhook_id in due:
            queue.drain_soon(webhook_id)
    if dispatched.deliveries or due:
        logger.info("webhooks dispatched", extra={"tenant_id": tenant_id, **summary})
    return summary


def drain_endpoint(tenant_id: str, webhook_id: str, *, clock: Clock = utc_now) -> dict[str, Any]:
    counts = platform().for_tenant_id(tenant_id, clock=clock).webhooks.drain(webhook_id)
    if counts.more:  # the time budget ran out with more due: carry on in another invocation
        webhooks_queue(tenant_id).drain_soon(webhook_id)
    return {"sent": counts.sent, "succeeded": counts.succeeded, "failed_attempts": counts.failed_attempts}


def webhooks_queue(tenant_id: str) -> Any:
    services = platform()
    url = services.settings.deliveries_queue_url
    return SqsDeliveryQueue(tenant_id, url, services.sqs) if url else InProcessDeliveryQueue()


def fan_out() -> int:
    """One unit per active tenant: enqueued when a queue is set, else run here."""
    from chalicelib.domain.tenants import TenantStatus

    services = platform()
    queue_url = services.settings.deliveries_queue_url
    units, cursor = 0, None
    while True:
        page = services.tenants.list(limit=100, cursor=cursor)
        for tenant in page.items:
            if tenant.status != TenantStatus.ACTIVE:
                continue
            units += 1
            if queue_url:
                services.sqs.send_message(QueueUrl=queue_url, MessageBody=dispatch_message(tenant.tenant_id))
                continue
            try:
                dispatch_tenant(tenant.tenant_id)
            except Exception:  # one tenant's failure must not stop the others; its checkpoint holds
                logger.exception("webhook dispatch failed", extra={"tenant_id": tenant.tenant_id})
        cursor = page.next_cursor
        if not cursor:
            return units


def handle(body: str) -> None:
    """One queue message; raises (so SQS retries, then dead-letters) only for failures worth retrying."""
    from chalicelib.domain.tenants import is_tenant_id

    try:
        message = json.loads(body)
        kind, tenant_id = message["kind"], message["tenant_id"]
    except (ValueError, KeyError, TypeError):
        logger.error("malformed webhook message dropped", extra={"body": body[:200]})
        return
    if not isinstance(tenant_id, str) or not is_tenant_id(tenant_id):
        logger.error("webhook message for a malformed tenant id dropped")
        return
    logger.append_keys(tenant_id=tenant_id)
    if kind == "dispatch":
        dispatch_tenant(tenant_id)
    elif kind == "drain" and isinstance(message.get("webhook_id"), str):
        drain_endpoint(tenant_id, message["webhook_id"])
    else:
        logger.error("unknown webhook message dropped", extra={"kind": str(kind)[:40]})


@bp.schedule(Rate(1, unit=Rate.MINUTES), name=SCHEDULE)
def dispatch_webhooks(event: Any) -> dict[str, int]:
    return {"units": fan_out()}


@bp.on_sqs_message(queue=DELIVERIES_QUEUE, batch_size=1, name=FUNCTION)
def deliver_webhooks(event: Any) -> None:
    for record in event:
        handle(record.body)
