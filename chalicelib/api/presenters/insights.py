"""The insights' figures -> response schemas."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.api.schemas.insights import CohortsOut, LiabilityOut, SummaryOut, TimeseriesOut, WhatIfOut


def summary(figures: dict[str, Any]) -> SummaryOut:
    from chalicelib.api.schemas.insights import SummaryOut

    return SummaryOut.model_validate(figures)


def timeseries(figures: dict[str, Any]) -> TimeseriesOut:
    from chalicelib.api.schemas.insights import TimeseriesOut

    return TimeseriesOut.model_validate(figures)


def timeseries_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period", "value"])
    for point in figures["points"]:
        writer.writerow([point["period"], point["value"]])
    return out.getvalue()


def liability(figures: dict[str, Any]) -> LiabilityOut:
    from chalicelib.api.schemas.insights import LiabilityOut

    return LiabilityOut.model_validate(figures)


def cohorts(figures: dict[str, Any]) -> CohortsOut:
    from chalicelib.api.schemas.insights import CohortsOut

    return CohortsOut.model_validate(figures)


def what_if(figures: dict[str, Any]) -> WhatIfOut:
    from chalicelib.api.schemas.insights import WhatIfOut

    return WhatIfOut.model_validate(figures)
