"""Bulk exports."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from chalicelib.api.schemas.common import Cursor, Query

ExportLimit = Annotated[int, Field(ge=1, le=1000)]


class MemberExportQuery(Query):
    limit: ExportLimit = Field(default=1000, description="Members per page.")
    cursor: Cursor | None = Field(default=None, description="The Next-Cursor header of the previous page.")


class LedgerExportQuery(Query):
    from_: AwareDatetime | None = Field(
        default=None,
        alias="from",
        description="First instant (RFC 3339, e.g. 2026-01-01T00:00:00Z), inclusive, to the millisecond; "
        "default: the first of `to`'s month (UTC).",
    )
    to: AwareDatetime | None = Field(
        default=None,
        description="End instant, exclusive, at most 366 days after `from`; default: now. Entries of the last "
        "5 seconds are not visible yet.",
    )
    limit: ExportLimit = Field(default=1000, description="Entries per page.")
    cursor: Cursor | None = Field(default=None, description="The Next-Cursor header of the previous page.")
