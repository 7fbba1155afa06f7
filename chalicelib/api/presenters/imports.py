"""Bulk imports -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.imports import ImportJob, RowIssue, RowOutcome

if TYPE_CHECKING:
    from chalicelib.api.schemas.imports import ImportOut, ImportRowIssueOut, ImportSummaryOut


#: A row issue is a row not imported: failed or skipped.
_ISSUE_OUTCOMES: dict[RowOutcome, Literal["failed", "skipped"]] = {
    RowOutcome.FAILED: "failed",
    RowOutcome.SKIPPED: "skipped",
}


def import_issue(value: RowIssue) -> ImportRowIssueOut:
    from chalicelib.api.schemas.imports import ImportRowIssueOut

    return ImportRowIssueOut(
        row=value.row,
        external_id=value.external_id,
        outcome=_ISSUE_OUTCOMES[value.outcome],
        code=value.code,
        message=value.message,
        details=value.details,
    )


def _import_fields(job: ImportJob) -> dict[str, Any]:
    from chalicelib.api.schemas.imports import ImportCounts

    return {
        "id": job.import_id,
        "status": str(job.status),
        "filename": job.filename,
        "columns": list(job.columns),
        "counts": ImportCounts(
            total=job.total_rows,
            processed=job.processed,
            imported=job.imported,
            skipped=job.skipped,
            failed=job.failed,
        ),
        "chunks": job.chunk_count,
        "chunks_done": job.next_chunk,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def import_summary(job: ImportJob) -> ImportSummaryOut:
    from chalicelib.api.schemas.imports import ImportSummaryOut

    return ImportSummaryOut(**_import_fields(job))


def import_job(job: ImportJob, issues: list[RowIssue]) -> ImportOut:
    from chalicelib.api.schemas.imports import ImportOut

    return ImportOut(
        **_import_fields(job),
        errors=[import_issue(issue) for issue in issues],
        error_count=job.failed + job.skipped,
    )
