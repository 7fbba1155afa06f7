"""Cells of the CSV files the platform writes and reads, safe to open in a spreadsheet.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CSV injection, OWASP): a member named ``=HYPERLINK(...)`` would become a
live link in the brand's export. Every text cell the platform writes that begins so gets a
leading single quote, which spreadsheets read as "this is text" and do not show; the import
reads such a cell back as the value it escaped, so an exported cell imports as it was.

A value whose leading quotes are followed by one of those characters (``'=x``) gets one
quote more (``''=x``): reading back removes exactly the quote writing added, so every text
round-trips. Numbers the platform computes (points, balances, signed movements) are written
as they are: ``-5`` is no formula, and a spreadsheet reads it as the number it is.
"""

from __future__ import annotations

#: What a spreadsheet may take as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def _needs_quote(text: str) -> bool:
    return text.lstrip(QUOTE).startswith(FORMULA_STARTS)


def escape_cell(text: str) -> str:
    """The text as a cell no spreadsheet runs: a quote before one that could start a formula."""
    return QUOTE + text if _needs_quote(text) else text


def unescape_cell(cell: str) -> str:
    """The text ``escape_cell`` wrote this cell for (any other cell as it is)."""
    return cell[1:] if cell.startswith(QUOTE) and _needs_quote(cell) else cell
