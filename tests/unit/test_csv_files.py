"""The one writer of the CSV files the API answers: text escaped against formulas, numbers as
they are, in the exports and in the insights' time series alike."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from chalicelib.api.presenters.csv_files import csv_text
from chalicelib.api.presenters.insights import timeseries_csv


def test_text_is_escaped_and_numbers_instants_and_booleans_are_written_as_they_are() -> None:
    written = csv_text(
        ("name", "points", "amount", "at", "consent", "none"),
        [["=HYPERLINK(1)", -5, Decimal("-3.50"), datetime(2026, 3, 2, 9, tzinfo=UTC), True, None]],
    )

    assert written.splitlines() == [
        "name,points,amount,at,consent,none",
        "'=HYPERLINK(1),-5,-3.50,2026-03-02T09:00:00.000Z,true,",
    ]
    assert written.endswith("\r\n")


def test_a_time_series_writes_its_points_and_money_as_numbers() -> None:
    points = {"points": [{"period": "2026-03-02", "value": 41000}, {"period": "2026-03-09", "value": "-3.50"}]}

    assert timeseries_csv(points) == "period,value\r\n2026-03-02,41000\r\n2026-03-09,-3.50\r\n"
