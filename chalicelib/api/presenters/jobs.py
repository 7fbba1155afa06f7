"""Job runs -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.api.schemas.jobs import JobRunOut
    from chalicelib.domain.jobs import JobRun


def job_run(run: JobRun) -> JobRunOut:
    from chalicelib.api.schemas.jobs import JobRunOut

    return JobRunOut(
        id=run.run_id,
        job=run.job,
        as_of=run.as_of,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        counts=run.counts,
        error=run.error,
    )
