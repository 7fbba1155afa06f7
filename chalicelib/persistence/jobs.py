"""The runs of a tenant's scheduled jobs in its table."""

from __future__ import annotations

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.jobs import JobName, JobRun, RunStatus
from chalicelib.domain.ports import (
    Page,
)
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    JOB_RUNS_PARTITION,
)
from chalicelib.persistence.models import (
    JobRunItem,
)
from chalicelib.persistence.pagination import decode_cursor, paginate


class JobRunRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def put(self, run: JobRun, audit: AuditEntry | None = None) -> None:
        """The run's record; with ``audit`` (a run an admin started) in one transaction with its
        entry, else (a scheduled run) one plain write."""
        item = self._models.job_run(
            pk=JOB_RUNS_PARTITION,
            sk=run.run_id,
            job=str(run.job),
            as_of=run.as_of,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=str(run.status),
            counts=dict(run.counts) if run.counts else None,
            error=run.error,
        )
        if audit is None:
            with translate_transient():
                item.save()
            return
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(item)

    def list(self, *, limit: int, cursor: str | None) -> Page[JobRun]:
        start = decode_cursor(cursor, fields=("pk", "sk"), partition=("pk", JOB_RUNS_PARTITION)) if cursor else None
        with translate_transient():
            rows = self._models.job_run.query(
                JOB_RUNS_PARTITION, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(
                rows,
                limit=limit,
                key_of=lambda row: {"pk": row.pk, "sk": row.sk},
                convert=lambda row: _to_run(self._models.tenant_id, row),
            )


def _to_run(tenant_id: str, item: JobRunItem) -> JobRun:
    counts = item.counts.as_dict() if item.counts is not None else {}
    return JobRun(
        run_id=item.sk,
        job=JobName(item.job),
        tenant_id=tenant_id,
        as_of=item.as_of,
        started_at=item.started_at,
        status=RunStatus(item.status),
        finished_at=item.finished_at,
        counts={str(k): int(v) for k, v in counts.items()},
        error=item.error,
    )
