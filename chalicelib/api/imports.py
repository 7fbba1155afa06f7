"""Bulk import of members with opening balances (admin): submit a CSV file, follow the import.

``POST /v1/imports`` takes the file as ``text/csv`` (or JSON ``{"csv": ...}``), up to
``LOYALTY_MAX_IMPORT_BODY_BYTES`` (5 MB): it checks the header, stores the rows and answers
202 with the import, ``queued``. A job unit lands the rows (chalicelib.jobs.imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import CSV_MEDIA, ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.observability import logger
from chalicelib.services import imports

if TYPE_CHECKING:
    from chalicelib.domain.imports import ImportService

bp = Blueprint(__name__)
TAG = "Imports and exports"
#: Rows not imported shown with the import itself (all of them: the errors route).
ERRORS_SHOWN = 100


def _service(request: ApiRequest) -> ImportService:
    tenant = request.tenant.tenant
    return imports(request.services, tenant.tenant_id, timezone=tenant.timezone)


@endpoint(
    bp,
    "/imports",
    "POST",
    summary="Import members with opening balances (and tiers) from a CSV file; answers at once, the rows land "
    "asynchronously",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=202,
    body=schemas.ImportRequest,
    response=schemas.ImportOut,
    request_media=("application/json", CSV_MEDIA),
    large_body=True,
)
def create_import(request: ApiRequest) -> schemas.ImportOut:
    body: schemas.ImportRequest | None = request.body
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
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.ListQuery,
    response=schemas.ImportList,
)
def list_imports(request: ApiRequest) -> schemas.ImportList:
    page = _service(request).list(limit=request.query.limit, cursor=request.query.cursor)
    return schemas.ImportList(data=[presenters.import_summary(j) for j in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/imports/{import_id}",
    "GET",
    summary="An import: its status, counts and the first rows not imported",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.ImportOut,
)
def get_import(request: ApiRequest, import_id: str) -> schemas.ImportOut:
    service = _service(request)
    job = service.get(import_id)
    issues = service.issues(import_id, limit=ERRORS_SHOWN, cursor=None).items if job.failed + job.skipped else []
    return presenters.import_job(job, issues)


@endpoint(
    bp,
    "/imports/{import_id}/errors",
    "GET",
    summary="Every row of an import that was not imported (failed or skipped), in row order",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.ListQuery,
    response=schemas.ImportRowIssueList,
)
def list_import_errors(request: ApiRequest, import_id: str) -> schemas.ImportRowIssueList:
    page = _service(request).issues(import_id, limit=request.query.limit, cursor=request.query.cursor)
    return schemas.ImportRowIssueList(
        data=[presenters.import_issue(i) for i in page.items], next_cursor=page.next_cursor
    )
