"""CSV cells escaped against spreadsheet formulas (OWASP CSV injection), and read back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.csv_cells import FORMULA_STARTS, escape_cell, unescape_cell
from devtools.bulk_client import write_errors


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+33 6 12", "'+33 6 12"),
        ("-2+3", "'-2+3"),
        ("-5", "'-5"),  # text that looks like a number is text: escaped like any other
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),  # a quote its owner typed is kept: one more is added, and removed on reading
        ("''-x", "'''-x"),
        ("O'Brien", "O'Brien"),
        ("'quoted'", "'quoted'"),
        ("'", "'"),
        ("", ""),
        ("Ada", "Ada"),
        (" =x", " =x"),
        ("a=b", "a=b"),
        ("12.50", "12.50"),
    ],
)
def test_a_cell_that_could_start_a_formula_gets_one_leading_quote(text: str, cell: str) -> None:
    assert escape_cell(text) == cell
    assert unescape_cell(cell) == text


@given(st.text())
def test_every_text_round_trips_and_no_escaped_cell_starts_a_formula(text: str) -> None:
    cell = escape_cell(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert unescape_cell(cell) == text


@given(st.text())
def test_reading_a_cell_no_escape_wrote_leaves_it_as_it_is(cell: str) -> None:
    """Only a quote followed by what escaping quotes is taken off: "'Quoted'" stays as typed."""
    if not (cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS)):
        assert unescape_cell(cell) == cell


def test_the_import_error_report_of_the_cli_is_escaped(tmp_path: Path) -> None:
    out = tmp_path / "errors.csv"
    issue = {"row": 2, "external_id": "=1+2", "outcome": "failed", "code": "invalid_email", "import_id": "imp_1"}
    write_errors([{**issue, "message": "-not an email"}], out)

    with out.open(newline="", encoding="utf-8") as handle:
        header, row = list(csv.reader(handle))
    assert header == ["row", "external_id", "outcome", "code", "message", "import_id"]
    assert row == ["2", "'=1+2", "failed", "invalid_email", "'-not an email", "imp_1"]
