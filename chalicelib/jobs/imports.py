"""Running bulk imports: one job unit lands chunks of one import from its checkpoint.

Deployed (``LOYALTY_JOBS_QUEUE_URL``): ``POST /v1/imports`` enqueues ``{"kind": "import",
"tenant_id", "import_id"}`` on the jobs queue; the ``run-tenant-job`` handler runs it for at
most ``LOYALTY_IMPORT_TIME_BUDGET_SECONDS`` (no chunk is started after that, so the 29 s
function finishes the chunk in hand) and enqueues the same message again while chunks remain.
A unit that crashes leaves its lease to expire (2 minutes) and its message is redelivered by
SQS; the ``resume-imports`` schedule (every 5 minutes) re-enqueues any unfinished import that
has not moved for 2 minutes (a message lost or dead-lettered).

Locally (no queue): the same schedule runs each unfinished import in-process, within the
budget, tick after tick (``make run`` ticks it every few seconds), as the other jobs run.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Rate

from chalicelib.domain.clock import utc_now
from chalicelib.observability import logger
from chalicelib.services import platform

if TYPE_CHECKING:
    from chalicelib.domain.imports import RunOutcome

bp = Blueprint(__name__)

SCHEDULE = "resume-imports"
#: An unfinished import that has not moved for this long is resumed by the schedule.
STALLED_AFTER = timedelta(minutes=2)


def run_import(tenant_id: str, import_id: str, *, budget_seconds: float | None = None) -> RunOutcome:
    """One unit: land chunks of the import until it is done or the budget is spent; deployed,
    enqueue its continuation while chunks remain."""
    from chalicelib.domain.tenants import TenantStatus
    from chalicelib.integrations.queues import SqsImportQueue

    services = platform()
    tenant = services.tenant_store.get(tenant_id, consistent=False)
    if tenant is None or tenant.status != TenantStatus.ACTIVE:
        logger.warning("import not run: tenant not active", extra={"tenant_id": tenant_id, "import_id": import_id})
        raise _NotActive(tenant_id)
    service = services.for_tenant_id(tenant_id, created_at=tenant.created_at, timezone=tenant.timezone).imports
    budget = services.settings.import_time_budget_seconds if budget_seconds is None else budget_seconds
    outcome: RunOutcome = service.run(import_id, owner=f"unit-{uuid.uuid4().hex[:12]}", budget_seconds=budget)
    job = outcome.job
    logger.info(
        "import run",
        extra={
            "tenant_id": tenant_id,
            "import_id": import_id,
            "claimed": outcome.claimed,
            "chunks": outcome.chunks,
            "status": str(job.status),
            "processed": job.processed,
            "total_rows": job.total_rows,
        },
    )
    url = services.settings.jobs_queue_url
    if outcome.more and url:
        SqsImportQueue(tenant_id, url, services.sqs).submit(import_id)
    return outcome


class _NotActive(Exception):
    pass


def handle(message: dict[str, Any]) -> None:
    """A jobs-queue message of kind ``import``; malformed ones are dropped (logged)."""
    from chalicelib.domain.tenants import is_tenant_id

    tenant_id, import_id = message.get("tenant_id"), message.get("import_id")
    if not isinstance(tenant_id, str) or not is_tenant_id(tenant_id) or not isinstance(import_id, str):
        logger.error("malformed import message dropped")
        return
    logger.append_keys(tenant_id=tenant_id)
    try:
        run_import(tenant_id, import_id)
    except _NotActive:
        return  # a suspended tenant's import waits: the schedule resumes it once the tenant is active


def resume_all(*, in_process: bool | None = None) -> dict[str, int]:
    """Every active tenant's unfinished imports: run here (locally), or re-enqueued when stalled."""
    from chalicelib.domain.tenants import TenantStatus
    from chalicelib.integrations.queues import SqsImportQueue

    services = platform()
    url = services.settings.jobs_queue_url
    local = not url if in_process is None else in_process
    counts = {"tenants": 0, "imports": 0, "resumed": 0}
    cursor = None
    while True:
        page = services.tenants.list(limit=100, cursor=cursor)
        for tenant in page.items:
            if tenant.status != TenantStatus.ACTIVE:
                continue
            counts["tenants"] += 1
            try:
                service = services.for_tenant_id(
                    tenant.tenant_id, created_at=tenant.created_at, timezone=tenant.timezone
                ).imports
                for import_id in service.open_imports():
                    counts["imports"] += 1
                    if local:
                        run_import(tenant.tenant_id, import_id)
                        counts["resumed"] += 1
                        continue
                    job = service.get(import_id)
                    if job.updated_at <= utc_now() - STALLED_AFTER:
                        SqsImportQueue(tenant.tenant_id, url or "", services.sqs).submit(import_id)
                        counts["resumed"] += 1
            except Exception:  # one tenant's failure must not stop the others; its imports wait
                logger.exception("resuming imports failed", extra={"tenant_id": tenant.tenant_id})
        cursor = page.next_cursor
        if not cursor:
            return counts


@bp.schedule(Rate(5, unit=Rate.MINUTES), name=SCHEDULE)
def resume_imports(event: Any) -> dict[str, int]:
    return resume_all()
