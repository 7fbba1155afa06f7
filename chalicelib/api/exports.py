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

from chalicelib.api.routing import CSV_MEDIA, ApiRequest, TextResult, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.exports import LedgerExportQuery, MemberExportQuery
    from chalicelib.domain.exports import ExportService

bp = Blueprint(__name__)
TAG = "Imports and exports"
NEXT_CURSOR = "Next-Cursor"
_NEXT = ((NEXT_CURSOR, "Present while more pages follow: send it back as `cursor` for the next page."),)


def _service(request: ApiRequest) -> ExportService:
    return request.services.for_tenant(request.tenant).exports


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
    description=(
        "Members with their balances as CSV, one page per call: while more follow, the `Next-Cursor` "
        "header gives the cursor for the next page. Reads only."
    ),
    response_example=(
        "member_id,external_id,email,name,birthday,marketing_consent,available,pending,tier,lifetime_earned,"
        "lifetime_redeemed,lifetime_adjusted,lifetime_expired,lifetime_reversed,created_at\r\n"
        "mem_01JD0000000000000000000000,cust-1042,ada@example.com,Ada Lovelace,1990-12-10,true,1250,120,Gold,"
        "2400,1150,0,0,0,2026-01-15T09:30:00Z\r\n"
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.exports.MemberExportQuery,
    response_media=CSV_MEDIA,
    response_headers=_NEXT,
)
def export_members(request: ApiRequest) -> TextResult:
    from chalicelib.api.presenters import exports as presenters

    query: MemberExportQuery = request.query
    page = _service(request).members(limit=query.limit, cursor=query.cursor)
    return _page(presenters.members_csv(page.items), page.next_cursor, "members.csv")


@endpoint(
    bp,
    "/exports/ledger.csv",
    "GET",
    summary="Ledger entries recorded in a period [from, to), in time order, as CSV pages (Next-Cursor header "
    "while more follow)",
    description=(
        "The ledger entries recorded in the period [from, to), in time order, as CSV pages: while more "
        "follow, the `Next-Cursor` header gives the cursor for the next page. For accounting and "
        "reconciliation. Reads only."
    ),
    response_example=(
        "transaction_id,created_at,occurred_at,member_id,type,points,pending_change,balance_after,amount,"
        "currency,reference,description,reason,idempotency_key,expires_at,matures_at,metadata\r\n"
        "txn_01JD0000000000000000000000,2026-03-01T09:30:00Z,2026-03-01T09:30:00Z,mem_01JD0000000000000000000000,"
        "earn,125,0,1250,12.50,EUR,order-1042,Online order,,order-1042-earn,2027-03-01T09:30:00Z,,\r\n"
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.exports.LedgerExportQuery,
    response_media=CSV_MEDIA,
    response_headers=_NEXT,
)
def export_ledger(request: ApiRequest) -> TextResult:
    from chalicelib.api.presenters import exports as presenters

    query: LedgerExportQuery = request.query
    page = _service(request).ledger(start=query.from_, end=query.to, limit=query.limit, cursor=query.cursor)
    return _page(presenters.ledger_csv(page.entries), page.next_cursor, "ledger.csv")
