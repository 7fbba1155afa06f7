"""Bulk imports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from chalicelib.api.schemas.common import Out, StrictRequest


class ImportRequest(StrictRequest):
    """The file as JSON; or send the file itself with `Content-Type: text/csv`.

    Columns (header row, any order): `external_id` (required), `email`, `name`, `birthday`
    (YYYY-MM-DD), `marketing_consent` (true/false), `points` (opening balance, a whole number
    >= 0), `tier` (a tier of the tier program in force)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "csv": "external_id,email,points\ncust-1,ada@example.com,120\ncust-2,grace@example.com,40\n",
                    "filename": "members-2026-03.csv",
                }
            ]
        }
    )

    csv: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The CSV text, UTF-8, comma-separated, first row the header.",
        examples=["external_id,email,points\ncust-1,ada@example.com,120\n"],
    )
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Shown in the import's record (the file's name, for you)."
    )


class ImportRowIssueOut(Out):
    row: int = Field(description="The row as a spreadsheet shows it: the header is row 1.")
    external_id: str | None
    outcome: Literal["failed", "skipped"] = Field(
        description="failed: the row is invalid (nothing written); skipped: a member with this external_id "
        "exists already (left unchanged)."
    )
    code: str = Field(
        description="malformed_row, duplicate_external_id, invalid_external_id, invalid_email, invalid_name, "
        "invalid_birthday, invalid_marketing_consent, invalid_points, unknown_tier, member_erased (the external id "
        "of a member erased at the brand's request); member_exists (skipped)."
    )
    message: str
    details: dict[str, Any]


class ImportCounts(Out):
    total: int = Field(description="Rows of the file (blank lines not counted).")
    processed: int
    imported: int = Field(description="Members enrolled with their opening balance (and tier).")
    skipped: int = Field(description="Rows whose external_id was already a member's.")
    failed: int = Field(description="Invalid rows: nothing of them was written.")


class ImportSummaryOut(Out):
    id: str = Field(examples=["imp_01JD0000000000000000000000"])
    status: Literal["queued", "running", "completed", "failed"] = Field(
        description="failed: the import itself kept failing (not its rows) and is no longer resumed."
    )
    filename: str | None
    columns: list[str]
    counts: ImportCounts
    chunks: int = Field(description="Chunks the rows are stored in (up to 500 rows each).")
    chunks_done: int
    attempts: int = Field(description="Failed attempts at running the import (each resumes from its checkpoint).")
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportOut(ImportSummaryOut):
    errors: list[ImportRowIssueOut] = Field(
        description="The first rows not imported (failed or skipped), in row order; all of them: "
        "GET /v1/imports/{import_id}/errors."
    )
    error_count: int = Field(description="Rows not imported: counts.failed + counts.skipped.")


class ImportList(Out):
    data: list[ImportSummaryOut]
    next_cursor: str | None


class ImportRowIssueList(Out):
    data: list[ImportRowIssueOut]
    next_cursor: str | None
