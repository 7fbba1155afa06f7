"""The CSV files the API writes (the exports' pages, the insights' time series): one writer,
every text cell escaped against formulas (``chalicelib.domain.csv_cells``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from chalicelib.domain.clock import isoformat
from chalicelib.domain.csv_cells import escape_cell


def cell(value: object) -> str:
    """A CSV cell: text escaped against formulas (``escape_cell``); numbers, booleans and
    instants, which the platform writes itself, as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return escape_cell(str(value))


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The header, then one line per row (CRLF line ends), each value as its ``cell``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()
