"""Reading an import file and checking its rows: pure functions of chalicelib.domain.imports."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from chalicelib.domain import imports
from chalicelib.domain.credits import opening_credit
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT, MovementType
from chalicelib.domain.program import DEFAULT_PROGRAM, Program

TODAY = date(2026, 6, 1)


def fields_of(error: pytest.ExceptionInfo[InvalidRequest]) -> list[tuple[str, str]]:
    return [(f["path"], f["type"]) for f in error.value.details["fields"]]


def test_the_header_names_known_columns_once_and_external_id() -> None:
    parsed = imports.parse_csv(" External_ID , Points ,tier\nA-1,5,gold\n")
    assert parsed.columns == ("external_id", "points", "tier")
    with pytest.raises(InvalidRequest) as unknown:
        imports.parse_csv("external_id,emial\nx,y\n")
    assert fields_of(unknown) == [("header.1", "csv_column")]
    assert unknown.value.details["columns"] == list(imports.COLUMNS)
    with pytest.raises(InvalidRequest) as missing:
        imports.parse_csv("email\nx@example.com\n")
    assert fields_of(missing) == [("header", "missing")]
    with pytest.raises(InvalidRequest) as twice:
        imports.parse_csv("external_id,name,name\nx,a,b\n")
    assert fields_of(twice) == [("header.2", "csv_duplicate_column")]
    with pytest.raises(InvalidRequest) as trailing_comma:
        imports.parse_csv("external_id,\nx,\n")
    assert fields_of(trailing_comma) == [("header.1", "csv_column")]
    for empty in ("", "\n", " , \n"):
        with pytest.raises(InvalidRequest):
            imports.parse_csv(empty)
    with pytest.raises(InvalidRequest) as latin:
        imports.parse_csv("external_id\ncaf\xe9\n".encode("latin-1"))
    assert fields_of(latin) == [("body", "csv_encoding")]
    with pytest.raises(InvalidRequest) as huge:  # over the csv module's field limit (128 KB)
        imports.parse_csv("external_id,name\nx," + "y" * 200_000 + "\n")
    assert fields_of(huge) == [("body", "csv_syntax")]


def test_rows_are_numbered_as_a_spreadsheet_shows_them_and_duplicates_point_at_the_first() -> None:
    text = 'external_id,name\na,"two\nlines"\n\nb,x\na,again\nc,1,2\n'
    parsed = imports.parse_csv(text.encode())
    rows = parsed.chunks[0].rows
    assert parsed.total_rows == 4  # the blank line is not a row
    assert [(r.number, r.duplicate_of, r.field_count) for r in rows] == [(2, 0, 0), (4, 0, 0), (5, 2, 0), (6, 0, 3)]
    assert rows[0].fields == ("a", "two\nlines")
    assert imports.decode_rows(imports.encode_rows(rows)) == rows


def test_cells_escaped_against_formulas_are_read_as_the_values_they_escape() -> None:
    text = "external_id,name,email,points\n'=ext,'=1+2,'+x@example.com,5\nplain,''=kept,'quoted',\n"
    rows = imports.parse_csv(text).chunks[0].rows
    assert [row.fields for row in rows] == [
        ("=ext", "=1+2", "+x@example.com", "5"),
        ("plain", "'=kept", "'quoted'", ""),
    ]
    columns = ("external_id", "name", "email", "points")
    row, problems = imports.validate_row(columns, rows[0].fields, TODAY)
    assert problems == [] and row is not None
    assert (row.external_id, row.name, row.email, row.points) == ("=ext", "=1+2", "+x@example.com", 5)


def test_rows_are_chunked_by_count_and_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    many = "external_id\n" + "".join(f"m-{n}\n" for n in range(1201))
    parsed = imports.parse_csv(many)
    assert [len(c.rows) for c in parsed.chunks] == [500, 500, 201]
    assert [c.index for c in parsed.chunks] == [0, 1, 2]
    wide = "external_id,name\n" + "".join(f"w-{n},{'x' * 1000}\n" for n in range(600))
    for chunk in imports.parse_csv(wide).chunks:
        assert len(imports.encode_rows(chunk.rows).encode()) <= imports.CHUNK_BYTES
    # a field is stored cut just past the longest column's limit (the row then fails on it)
    (row,) = imports.parse_csv("external_id,name\nlong," + "y" * 5000 + "\n").chunks[0].rows
    assert len(row.fields[1]) == imports.MAX_FIELD_CHARS + 1
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    with pytest.raises(InvalidRequest):
        imports.parse_csv("external_id\na\nb\nc\nd\n", max_rows=3)


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("external_id", "", "invalid_external_id"),
        ("external_id", "has space", "invalid_external_id"),
        ("external_id", "x" * 129, "invalid_external_id"),
        ("email", "nope", "invalid_email"),
        ("name", "n" * 201, "invalid_name"),
        ("birthday", "1899-12-31", "invalid_birthday"),
        ("birthday", "2026-06-02", "invalid_birthday"),
        ("birthday", "2026-02-30", "invalid_birthday"),
        ("birthday", "01/02/1990", "invalid_birthday"),
        ("marketing_consent", "maybe", "invalid_marketing_consent"),
        ("points", "-1", "invalid_points"),
        ("points", "1.5", "invalid_points"),
        ("points", "1e3", "invalid_points"),
        ("points", str(MAX_POINTS_PER_MOVEMENT + 1), "invalid_points"),
    ],
)
def test_each_column_has_the_apis_rules(column: str, value: str, code: str) -> None:
    values = {"external_id": "ok", "email": "", "name": "", "birthday": "", "marketing_consent": "", "points": ""}
    values[column] = value
    parsed, problems = imports.validate_row(tuple(values), tuple(values.values()), TODAY)
    assert parsed is None and [p[0] for p in problems] == [code]


def test_a_valid_row_is_normalised() -> None:
    columns = ("external_id", "email", "name", "birthday", "marketing_consent", "points", "tier")
    parsed, problems = imports.validate_row(
        columns,
        (" c-1 ", " Ada@Example.COM ", " Ada ", "2026-06-01", "YES", str(MAX_POINTS_PER_MOVEMENT), "gold"),
        TODAY,
    )
    assert problems == []
    assert parsed == imports.ImportRow("c-1", "ada@example.com", "Ada", TODAY, True, MAX_POINTS_PER_MOVEMENT, "gold")
    parsed, _ = imports.validate_row(("external_id",), ("c-2",), TODAY)
    assert parsed == imports.ImportRow("c-2", None, None, None, False, 0, None)


def test_an_opening_credit_is_the_first_movement_of_an_empty_balance() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    expiring = Program(expiry=ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30))
    opening = opening_credit(
        expiring, "mem_01JD0000000000000000000000", 120, idempotency_key="import:c-1", now=now, reason="r"
    )
    assert opening.entry is not None
    assert (opening.entry.movement, opening.entry.points, opening.entry.sequence) == (MovementType.ADJUST, 120, 1)
    assert (opening.balance.available, opening.balance.lifetime_adjusted, opening.balance.version) == (120, 120, 1)
    (lot,) = opening.lots.created
    assert lot.remaining == 120 and lot.expires_at == opening.entry.expires_at == opening.balance.next_expiry_at
    zero = opening_credit(
        DEFAULT_PROGRAM, "mem_01JD0000000000000000000000", 0, idempotency_key="import:c-2", now=now, reason="r"
    )
    assert zero.entry is None and zero.balance.version == 0 and zero.lots.created == ()
