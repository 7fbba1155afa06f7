"""CSV exports for a brand's analytics (admin): members with balances, ledger entries of a period.

Lambda cannot stream a response, so each export is a series of ``text/csv`` pages: every page
is a whole CSV file (its header row, then up to ``limit`` rows), and while more follow the
response carries ``Next-Cursor``; the next page is the same request with ``cursor=`` that
value. No header: that was the last page.

Text cells that a spreadsheet would run as a formula (beginning with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) are written with a leading quote, ``'=1+2``; numbers are
written as they are (``-5``). The import reads escaped cells back (``csv_cells``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import CSV_MEDIA, ApiRequest, TextResult, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.services import exports

if TYPE_CHECKING:
    from chalicelib.domain.exports import ExportService

bp = Blueprint(__name__)
TAG = "Imports and exports"
NEXT_CURSOR = "Next-Cursor"
_NEXT = ((NEXT_CURSOR, "Present while more pages follow: send it back as `cursor` for the next page."),)


def _service(request: ApiRequest) -> ExportService:
    tenant = request.tenant.tenant
    return exports(request.services, tenant.tenant_id, timezone=tenant.timezone)


def _page(text: str, next_cursor: str | None, filename: str) -> TextResult:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    if next_cursor:
        headers[NEXT_CURSOR] = next_cursor
    return TextResult(text=text, headers=headers)


@endpoint(
    bp,
    "/exports/members.csv",
    "GET",
    summary="Members with their balances, as CSV pages (Next-Cursor header while more follow)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.MemberExportQuery,
    response_media=CSV_MEDIA,
    response_headers=_NEXT,
)
def export_members(request: ApiRequest) -> TextResult:
    query: schemas.MemberExportQuery = request.query
    page = _service(request).members(limit=query.limit, cursor=query.cursor)
    return _page(presenters.members_csv(page.items), page.next_cursor, "members.csv")


@endpoint(
    bp,
    "/exports/ledger.csv",
    "GET",
    summary="Ledger entries recorded in a period [from, to), in time order, as CSV pages (Next-Cursor header "
    "while more follow)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.LedgerExportQuery,
    response_media=CSV_MEDIA,
    response_headers=_NEXT,
)
def export_ledger(request: ApiRequest) -> TextResult:
    query: schemas.LedgerExportQuery = request.query
    page = _service(request).ledger(start=query.from_, end=query.to, limit=query.limit, cursor=query.cursor)
    return _page(presenters.ledger_csv(page.entries), page.next_cursor, "ledger.csv")
