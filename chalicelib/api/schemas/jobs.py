"""Scheduled jobs run on demand, and their runs."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from chalicelib.api.schemas.common import Out, StrictRequest
from chalicelib.domain.jobs import JobName, RunStatus


class RunJobRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2027-03-01T00:00:00Z"}]})

    as_of: AwareDatetime | None = Field(
        default=None, description="Run as if it were this moment (backfills, previews); defaults to now."
    )


class JobRunOut(Out):
    id: str
    job: JobName
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    counts: dict[str, int]
    error: str | None


class JobRunList(Out):
    data: list[JobRunOut]
    next_cursor: str | None
