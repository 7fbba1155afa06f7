"""The insights' figures -> response schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.api.presenters.csv_files import csv_text

if TYPE_CHECKING:
    from chalicelib.api.schemas.insights import CohortsOut, LiabilityOut, SummaryOut, TimeseriesOut, WhatIfOut


def summary(figures: dict[str, Any]) -> SummaryOut:
    from chalicelib.api.schemas.insights import SummaryOut

    return SummaryOut.model_validate(figures)


def timeseries(figures: dict[str, Any]) -> TimeseriesOut:
    from chalicelib.api.schemas.insights import TimeseriesOut

    return TimeseriesOut.model_validate(figures)


def timeseries_csv(figures: dict[str, Any]) -> str:
    """The series as CSV ``period,value``; every value is a number (money's decimal string too)."""
    return csv_text(
        ("period", "value"), [[point["period"], Decimal(str(point["value"]))] for point in figures["points"]]
    )


def liability(figures: dict[str, Any]) -> LiabilityOut:
    from chalicelib.api.schemas.insights import LiabilityOut

    return LiabilityOut.model_validate(figures)


def cohorts(figures: dict[str, Any]) -> CohortsOut:
    from chalicelib.api.schemas.insights import CohortsOut

    return CohortsOut.model_validate(figures)


def what_if(figures: dict[str, Any]) -> WhatIfOut:
    from chalicelib.api.schemas.insights import WhatIfOut

    return WhatIfOut.model_validate(figures)
