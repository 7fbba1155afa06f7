"""Scheduled jobs, one unit of work per tenant: what they do and the record of each run.

A unit is resumable by construction: the settlement jobs work from the index of due lots, and
a lot leaves (or moves in) that index in the same transaction that records its maturity or
expiry, so a rerun after a crash (or an overlapping run) continues where the first stopped
and settles nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from chalicelib.domain.audit import SYSTEM, AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import NotFound
from chalicelib.domain.ids import new_job_run_id

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import JobRunStore, LedgerStore, Page


class JobName(StrEnum):
    EXPIRE_POINTS = "expire-points"
    MATURE_PENDING = "mature-pending"
    NOTIFY = "notify"
    #: Tiers whose review time has passed: kept, lowered or lost (chalicelib.domain.tiers).
    REVIEW_TIERS = "review-tiers"
    #: Referrals whose qualifying order committed but whose rewards were not credited yet.
    COMPLETE_REFERRALS = "complete-referrals"
    #: Paid subscriptions past their end: lapsed, with their events (chalicelib.domain.subscriptions).
    LAPSE_SUBSCRIPTIONS = "lapse-subscriptions"
    #: Members inactive for the program's ``erase_inactive_after_years``: erased (chalicelib.domain.privacy).
    ERASE_INACTIVE = "erase-inactive"
    #: The event feed folded into the insights' aggregate rows (chalicelib.domain.insights).
    FOLD_INSIGHTS = "fold-insights"


class Job(Protocol):
    def run(self, as_of: datetime) -> dict[str, int]: ...


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


class SettlementJob:
    """Records everything due by ``as_of`` for every member with something due: maturities,
    then expiries and inactivity lapses, in time order (``entries.settle``). Members are found
    through the index of due lots, never a scan, so cost follows what is due.

    Both ``expire-points`` and ``mature-pending`` run it, reading both halves of that index:
    lots by maturity (pending lots) and lots by expiry (with balances by inactivity deadline).
    A lot has one index slot, its next due moment, so a pending lot past both its maturity and
    its expiry is found by its maturity only: a job reading the expiry half alone would leave
    it pending. Reading both, each job settles everything due as of its ``as_of``, so the end
    state does not depend on which runs first, and neither repeats the other's work (each
    entry's key, ``mature:<lot>``, ``expire:<lot>``, is written once).

    The counts are what this run committed (``PointsService.settle_due``)."""

    def __init__(self, ledger: LedgerStore, points: PointsService) -> None:
        self._ledger = ledger
        self._points = points

    def _due_members(self, as_of: datetime) -> Iterator[str]:
        done: set[str] = set()
        for maturity in (True, False):
            for member_id, _lot_id in self._ledger.due_lots(as_of, maturity=maturity):
                if member_id not in done:
                    done.add(member_id)
                    yield member_id

    def run(self, as_of: datetime) -> dict[str, int]:
        from chalicelib.domain.movement_requests import MovementType

        members = matured = expired = lapsed = points_expired = points_matured = 0
        for member_id in self._due_members(as_of):
            entries = self._points.settle_due(member_id, as_of)
            if entries:
                members += 1
            for entry in entries:
                if entry.movement is MovementType.EXPIRE:
                    if "lot_id" in entry.metadata:
                        expired += 1
                    else:
                        lapsed += 1  # an inactive member's never-expiring points
                    points_expired -= entry.points
                else:
                    matured += 1
                    points_matured -= entry.pending_change
        return {
            "members": members,
            "lots_matured": matured,
            "points_matured": points_matured,
            "lots_expired": expired,
            "lapses": lapsed,
            "points_expired": points_expired,
        }


def settlement_job(ledger: LedgerStore, points: PointsService) -> SettlementJob:
    """What ``expire-points`` and ``mature-pending`` run (each settles everything due)."""
    return SettlementJob(ledger, points)


class JobRunner:
    """Runs one job for one tenant and records the run, whatever its outcome."""

    def __init__(
        self,
        tenant_id: str,
        runs: JobRunStore,
        jobs: dict[JobName, Job],
        clock: Clock = utc_now,
        *,
        auditor: Auditor | None = None,
    ) -> None:
        #: A run asked for by an API key is recorded in the audit trail; a scheduled one is not.
        self._auditor = auditor if auditor is not None and auditor.actor != SYSTEM else None
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
            failed = replace(run, finished_at=self._clock(), error=type(error).__name__)
            self._runs.put(failed, self._audit(failed))
            raise
        finished = replace(run, status=RunStatus.SUCCEEDED, finished_at=self._clock(), counts=counts)
        self._runs.put(finished, self._audit(finished))
        return finished

    def _audit(self, run: JobRun) -> AuditEntry | None:
        if self._auditor is None:
            return None
        return self._auditor.entry(AuditAction.JOB_RUN, "job", str(run.job), after=run)

    def list(self, *, limit: int, cursor: str | None) -> Page[JobRun]:
        return self._runs.list(limit=limit, cursor=cursor)


def parse_job(name: str) -> JobName:
    try:
        return JobName(name)
    except ValueError:
        raise NotFound(f"no job named {name!r}", details={"jobs": [str(job) for job in JobName]}) from None
