"""Bulk import of members with opening balances (admin): submit a CSV file, follow the import.

``POST /v1/imports`` takes the file as ``text/csv`` (or JSON ``{"csv": ...}``), up to
``LOYALTY_MAX_IMPORT_BODY_BYTES`` (5 MB): it checks the header, stores the rows and answers
202 with the import, ``queued``. A job unit lands the rows (chalicelib.jobs.imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import CSV_MEDIA, ApiRequest, endpoint, schemas
from chalicelib.domain.scopes import Scope
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.api.schemas.imports import ImportList, ImportOut, ImportRequest, ImportRowIssueList
    from chalicelib.domain.imports import ImportService

bp = Blueprint(__name__)
TAG = "Imports and exports"
#: Rows not imported shown with the import itself (all of them: the errors route).
ERRORS_SHOWN = 100


def _service(request: ApiRequest) -> ImportService:
    return request.services.for_tenant(request.tenant).imports


@endpoint(
    bp,
    "/imports",
    "POST",
    summary="Import members with opening balances (and tiers) from a CSV file; answers at once, the rows land "
    "asynchronously",
    description=(
        "Imports members with their opening balances (and tiers) from a CSV file, sent as `text/csv` or "
        "inside JSON. Answers at once (202) with the import, `queued`; the rows land asynchronously: "
        "follow `GET /v1/imports/{import_id}`. A row whose `external_id` is a member already is skipped, "
        "so importing the same file twice credits no opening balance twice."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=202,
    body=schemas.imports.ImportRequest,
    response=schemas.imports.ImportOut,
    request_media=("application/json", CSV_MEDIA),
    large_body=True,
)
def create_import(request: ApiRequest) -> ImportOut:
    from chalicelib.api.presenters import imports as presenters

    body: ImportRequest | None = request.body
    data = request.raw_body if body is None else body.csv
    job = _service(request).submit(
        data, filename=body.filename if body is not None else None, actor_key_id=request.tenant.key_id
    )
    logger.info("import submitted", extra={"import_id": job.import_id, "rows": job.total_rows})
    return presenters.import_job(job, [])


@endpoint(
    bp,
    "/imports",
    "GET",
    summary="Imports, newest first",
    description="This tenant's imports, newest first, with their status and counts.",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.common.ListQuery,
    response=schemas.imports.ImportList,
)
def list_imports(request: ApiRequest) -> ImportList:
    from chalicelib.api.presenters import imports as presenters
    from chalicelib.api.schemas.imports import ImportList

    page = _service(request).list(limit=request.query.limit, cursor=request.query.cursor)
    return ImportList(data=[presenters.import_summary(j) for j in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/imports/{import_id}",
    "GET",
    summary="An import: its status, counts and the first rows not imported",
    description=(
        "One import: its status (queued, running, completed, failed), its counts (total, processed, "
        "imported, skipped, failed) and the first rows not imported. 404 if it is not this tenant's."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.imports.ImportOut,
)
def get_import(request: ApiRequest, import_id: str) -> ImportOut:
    from chalicelib.api.presenters import imports as presenters

    service = _service(request)
    job = service.get(import_id)
    issues = service.issues(import_id, limit=ERRORS_SHOWN, cursor=None).items if job.failed + job.skipped else []
    return presenters.import_job(job, issues)


@endpoint(
    bp,
    "/imports/{import_id}/errors",
    "GET",
    summary="Every row of an import that was not imported (failed or skipped), in row order",
    description=(
        "Every row of an import that was not imported (failed or skipped), in row order, with the reason: "
        "fix these rows and import them again."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.common.ListQuery,
    response=schemas.imports.ImportRowIssueList,
)
def list_import_errors(request: ApiRequest, import_id: str) -> ImportRowIssueList:
    from chalicelib.api.presenters import imports as presenters
    from chalicelib.api.schemas.imports import ImportRowIssueList

    page = _service(request).issues(import_id, limit=request.query.limit, cursor=request.query.cursor)
    return ImportRowIssueList(data=[presenters.import_issue(i) for i in page.items], next_cursor=page.next_cursor)
