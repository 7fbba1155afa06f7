"""The lifecycle jobs (``JobName`` in :mod:`chalicelib.domain.jobs`: points expiry and
maturity, notices, tier reviews, referral completion, subscription lapses, retention): EventBridge
schedules fan out one unit of work per tenant; SQS delivers each unit, on the jobs queue that
also carries the bulk imports' units (:mod:`chalicelib.jobs.imports`).

Deployed, ``LOYALTY_JOBS_QUEUE_URL`` names the queue: a schedule only enqueues (one
message per active tenant), so one large brand cannot starve the others and no
invocation nears Lambda's 15-minute limit. Locally (no queue) the schedule runs each
unit in-process, through the same function the queue handler calls.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.domain.clock import isoformat, utc_now
from chalicelib.domain.jobs import JobName
from chalicelib.jobs import imports
from chalicelib.observability import logger
from chalicelib.services import platform

bp = Blueprint(__name__)

#: The queue's name is fixed at import (Chalice wires the event source when packaging);
#: one stage per AWS account keeps it unique.
JOBS_QUEUE = "loyalty-jobs"


def run_unit(job: JobName, tenant_id: str, as_of: datetime) -> None:
    """One job for one tenant: the unit of work, resumable by rerunning it. A sandbox brand's
    run is as of its test clock: the schedule's moment, that far ahead."""
    tenant = platform().tenants.get(tenant_id)
    run = platform().for_tenant_record(tenant).jobs.run(job, as_of + tenant.clock_offset)
    logger.info("job run", extra={"job": str(job), "tenant_id": tenant_id, "counts": run.counts})


def fan_out(job: JobName, as_of: datetime) -> int:
    from chalicelib.domain.tenants import TenantStatus

    services = platform()
    queue_url = services.settings.jobs_queue_url
    units = 0
    cursor = None
    while True:
        page = services.tenants.list(limit=100, cursor=cursor)
        for tenant in page.items:
            if tenant.status != TenantStatus.ACTIVE:
                continue
            units += 1
            if queue_url:
                body = {"job": str(job), "tenant_id": tenant.tenant_id, "as_of": isoformat(as_of)}
                services.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
            else:
                try:
                    run_unit(job, tenant.tenant_id, as_of)
                except Exception:  # one tenant's failure must not stop the others; the run is recorded
                    logger.exception("job unit failed", extra={"job": str(job), "tenant_id": tenant.tenant_id})
        cursor = page.next_cursor
        if not cursor:
            return units


@bp.schedule(Rate(1, unit=Rate.HOURS), name="expire-points")
def expire_points(event: Any) -> dict[str, int]:
    return {"units": fan_out(JobName.EXPIRE_POINTS, utc_now())}


@bp.schedule(Rate(1, unit=Rate.HOURS), name="mature-pending")
def mature_pending(event: Any) -> dict[str, int]:
    return {"units": fan_out(JobName.MATURE_PENDING, utc_now())}


@bp.schedule(Rate(1, unit=Rate.HOURS), name="notify")
def notify(event: Any) -> dict[str, int]:
    """Hourly, so each tenant's local day (birthdays, expiry dates) is caught in its own zone."""
    return {"units": fan_out(JobName.NOTIFY, utc_now())}


@bp.on_sqs_message(queue=JOBS_QUEUE, batch_size=1, name="run-tenant-job")
def run_tenant_job(event: Any) -> None:
    for record in event:
        message = json.loads(record.body)
        if message.get("kind") == "import":  # a bulk import's unit (chalicelib.jobs.imports)
            imports.handle(message)
            continue
        run_unit(JobName(message["job"]), message["tenant_id"], datetime.fromisoformat(message["as_of"]))


@bp.schedule(Rate(1, unit=Rate.HOURS), name="review-tiers")
def review_tiers(event: Any) -> dict[str, int]:
    """Hourly: a tier is reviewed at the end of a local month or year, in each tenant's zone."""
    return {"units": fan_out(JobName.REVIEW_TIERS, utc_now())}


@bp.schedule(Rate(1, unit=Rate.HOURS), name="complete-referrals")
def complete_referrals(event: Any) -> dict[str, int]:
    """Hourly safety net: referral rewards are credited in the qualifying order's own request;
    this finishes those a crash, timeout or throttling left qualified."""
    return {"units": fan_out(JobName.COMPLETE_REFERRALS, utc_now())}


@bp.schedule(Rate(1, unit=Rate.HOURS), name="lapse-subscriptions")
def lapse_subscriptions(event: Any) -> dict[str, int]:
    """Hourly: paid subscriptions past their end lapse, with their events (their benefits
    already stopped at the end: every read and earn checks it)."""
    return {"units": fan_out(JobName.LAPSE_SUBSCRIPTIONS, utc_now())}


@bp.schedule(Rate(1, unit=Rate.DAYS), name="erase-inactive")
def erase_inactive(event: Any) -> dict[str, int]:
    """Daily: members with no earn or redeem for the program's ``erase_inactive_after_years``
    are erased (nothing for a tenant that did not set it)."""
    return {"units": fan_out(JobName.ERASE_INACTIVE, utc_now())}


#: The insights' schedule (``make run`` runs it on its fast local cadence).
INSIGHTS_SCHEDULE = "fold-insights"


@bp.schedule(Rate(1, unit=Rate.MINUTES), name=INSIGHTS_SCHEDULE)
def fold_insights(event: Any) -> dict[str, int]:
    """Every minute: each tenant's new feed events folded into the insights' aggregate rows, so
    deployed figures are at most about a minute (plus the feed's settle window) behind."""
    return {"units": fan_out(JobName.FOLD_INSIGHTS, utc_now())}
