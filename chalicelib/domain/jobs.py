"""Scheduled jobs, one unit of work per tenant: what they do and the record of each run.

A unit is resumable by construction: the expiry job works from the index of due lots, and a
lot leaves that index in the same transaction that records its expiry, so a rerun after a
crash (or an overlapping run) continues where the first stopped and expires nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import NotFound
from chalicelib.domain.ids import new_job_run_id

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import JobRunStore, LedgerStore, Page


class JobName(StrEnum):
    EXPIRE_POINTS = "expire-points"


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class JobRun:
    run_id: str
    job: JobName
    tenant_id: str
    as_of: datetime
    started_at: datetime
    status: RunStatus
    finished_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


class ExpiryJob:
    """Records the expiry of every lot due by ``as_of``; cost follows the due lots only."""

    def __init__(self, ledger: LedgerStore, points: PointsService) -> None:
        self._ledger = ledger
        self._points = points

    def run(self, as_of: datetime) -> dict[str, int]:
        members = lots = points = 0
        done: set[str] = set()
        for member_id, _lot_id in self._ledger.due_lots(as_of):
            if member_id in done:
                continue
            done.add(member_id)
            expired = self._points.expire_due(member_id, as_of)
            if expired:
                members += 1
                lots += len(expired)
                points += -sum(entry.points for entry in expired)
        return {"members": members, "lots_expired": lots, "points_expired": points}


class JobRunner:
    """Runs one job for one tenant and records the run, whatever its outcome."""

    def __init__(self, tenant_id: str, runs: JobRunStore, jobs: dict[JobName, ExpiryJob], clock: Clock = utc_now):
        self._tenant_id = tenant_id
        self._runs = runs
        self._jobs = jobs
        self._clock = clock

    def run(self, job: JobName, as_of: datetime | None = None) -> JobRun:
        started = self._clock()
        run = JobRun(
            run_id=new_job_run_id(),
            job=job,
            tenant_id=self._tenant_id,
            as_of=as_of or started,
            started_at=started,
            status=RunStatus.FAILED,
        )
        try:
            counts = self._jobs[job].run(run.as_of)
        except Exception as error:
            self._runs.put(replace(run, finished_at=self._clock(), error=type(error).__name__))
            raise
        finished = replace(run, status=RunStatus.SUCCEEDED, finished_at=self._clock(), counts=counts)
        self._runs.put(finished)
        return finished

    def list(self, *, limit: int, cursor: str | None) -> Page[JobRun]:
        return self._runs.list(limit=limit, cursor=cursor)


def parse_job(name: str) -> JobName:
    try:
        return JobName(name)
    except ValueError:
        raise NotFound(f"no job named {name!r}", details={"jobs": [str(job) for job in JobName]}) from None
