"""Scheduled jobs seen from the API: their recorded runs, and starting one now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.jobs import JobRunList, JobRunOut, RunJobRequest

bp = Blueprint(__name__)
TAG = "Jobs"


@endpoint(
    bp,
    "/jobs/runs",
    "GET",
    summary="Recorded runs of the scheduled jobs, newest first",
    description=(
        "The recorded runs of the scheduled jobs for this tenant (expiry, maturing of pending points...), "
        "newest first, with their counts."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.common.ListQuery,
    response=schemas.jobs.JobRunList,
)
def list_job_runs(request: ApiRequest) -> JobRunList:
    from chalicelib.api.presenters import jobs as presenters
    from chalicelib.api.schemas.jobs import JobRunList

    page = request.services.for_tenant(request.tenant).jobs.list(limit=request.query.limit, cursor=request.query.cursor)
    return JobRunList(data=[presenters.job_run(run) for run in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/jobs/{job}/run",
    "POST",
    summary="Run a job for this tenant now (optionally as of a time)",
    description=(
        "Runs one scheduled job for this tenant now, optionally as of a given time (to test expiry or "
        "tier evaluation ahead of time, as Stripe's test clocks do). The job's own movements are "
        "idempotent: running it twice for the same time moves no point twice. An unknown job is 404, "
        "listing the jobs."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.jobs.RunJobRequest,
    response=schemas.jobs.JobRunOut,
)
def run_job(request: ApiRequest, job: str) -> JobRunOut:
    from chalicelib.api.presenters import jobs as presenters
    from chalicelib.domain.jobs import parse_job

    body: RunJobRequest = request.body
    run = request.services.for_tenant(request.tenant).jobs.run(parse_job(job), body.as_of)
    return presenters.job_run(run)
