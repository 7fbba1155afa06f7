"""Program insights: summary, time series (JSON or CSV), liability by expiry month, cohorts.

Every figure is read from the aggregate rows the ``fold-insights`` job keeps
(chalicelib.domain.insights); ``as_of`` says up to which event they are folded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import CSV_MEDIA, ApiRequest, TextResult, endpoint, schemas
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.insights import (
        CohortQuery,
        CohortsOut,
        LiabilityOut,
        LiabilityQuery,
        PeriodQuery,
        SummaryOut,
        TimeseriesOut,
        TimeseriesQuery,
        WhatIfOut,
        WhatIfRequest,
    )
    from chalicelib.domain.insights import InsightsService

bp = Blueprint(__name__)
TAG = "Insights"
_FRESHNESS = (
    " Figures are folded from the event feed by the `fold-insights` job (every minute deployed); `as_of` is "
    "the time of the freshest event they include. Days are local days of the tenant's time zone."
)


def _service(request: ApiRequest) -> InsightsService:
    return request.services.for_tenant(request.tenant).insights


@endpoint(
    bp,
    "/insights/summary",
    "GET",
    summary="The program's key figures over a period",
    description=(
        "Members (total, enrolled in the period, active in the last 30 and 90 days), points issued, "
        "redeemed, expired, reversed and adjusted in the period, redemption rate, breakage, the outstanding "
        "liability in points and money, orders (count, revenue, AOV, per member, repeat rate), CLV, tier "
        "mix, rewards, referrals, paid plans and activities. Reads only." + _FRESHNESS
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.insights.PeriodQuery,
    response=schemas.insights.SummaryOut,
)
def insights_summary(request: ApiRequest) -> SummaryOut:
    from chalicelib.api.presenters import insights as presenters
    from chalicelib.domain.insights import parse_day

    query: PeriodQuery = request.query
    figures = _service(request).summary(
        parse_day(query.from_, "from"), parse_day(query.to, "to"), currency=request.tenant.tenant.currency
    )
    return presenters.summary(figures)


@endpoint(
    bp,
    "/insights/timeseries",
    "GET",
    summary="One figure per day, week or month, for charts (JSON, or CSV with format=csv)",
    description=(
        "One point per period (`day`, `week` starting Monday, or `month`) from the period holding `from` to "
        "`to`: enrolments, points issued, redeemed, expired, reversed or adjusted, the liability at the end "
        "of the period (available + pending points), orders, revenue, or distinct active members. With "
        "`format=csv` (or `Accept: text/csv`) the same points as CSV `period,value`. Reads only." + _FRESHNESS
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.insights.TimeseriesQuery,
    response=schemas.insights.TimeseriesOut,
    response_media=CSV_MEDIA,
    response_example="period,value\n2026-12-01,1200\n2026-12-02,950\n",
)
def insights_timeseries(request: ApiRequest) -> TimeseriesOut | TextResult:
    from chalicelib.api.presenters import insights as presenters
    from chalicelib.domain.insights import parse_day

    query: TimeseriesQuery = request.query
    figures = _service(request).timeseries(
        query.metric,
        query.interval,
        parse_day(query.from_, "from"),
        parse_day(query.to, "to"),
        currency=request.tenant.tenant.currency,
    )
    if query.format == "csv" or CSV_MEDIA in request.headers.get("accept", ""):
        return TextResult(
            text=presenters.timeseries_csv(figures), headers={"Content-Type": f"{CSV_MEDIA}; charset=utf-8"}
        )
    return presenters.timeseries(figures)


@endpoint(
    bp,
    "/insights/liability",
    "GET",
    summary="Outstanding points by the month they expire, and pending points by the month they mature",
    description=(
        "The points liability a finance team books: available points by local month of expiry (and those "
        "without an expiry), pending points by month of maturity, each in points and in money (the program's "
        "`point_value`). Summed, it equals the sum of the members' balances. Reads only." + _FRESHNESS
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.insights.LiabilityQuery,
    response=schemas.insights.LiabilityOut,
)
def insights_liability(request: ApiRequest) -> LiabilityOut:
    from chalicelib.api.presenters import insights as presenters
    from chalicelib.domain.insights import parse_day

    query: LiabilityQuery = request.query
    figures = _service(request).liability(parse_day(query.as_of, "as_of"), currency=request.tenant.tenant.currency)
    return presenters.liability(figures)


@endpoint(
    bp,
    "/insights/cohorts",
    "GET",
    summary="Retention by enrolment month: the share of each cohort active in each later month",
    description=(
        "For each enrolment month from `from` to `to`: its size, and for it and each later month the members "
        "of the cohort active then (earned or redeemed) and their share of the cohort. Reads only." + _FRESHNESS
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    query=schemas.insights.CohortQuery,
    response=schemas.insights.CohortsOut,
)
def insights_cohorts(request: ApiRequest) -> CohortsOut:
    from chalicelib.api.presenters import insights as presenters
    from chalicelib.domain.insights import parse_month

    query: CohortQuery = request.query
    figures = _service(request).cohorts(parse_month(query.from_, "from"), parse_month(query.to, "to"))
    return presenters.cohorts(figures)


@endpoint(
    bp,
    "/insights/what-if",
    "POST",
    summary="What a draft program would have issued on the orders of the last N days",
    description=(
        "Earns the orders of the last `days` days (at most 90) again, under the program in force and under "
        "the draft `program` (the body `PUT /v1/program` takes), each as its earn did: the earning rules in "
        "force at the order's time, the member's tier, segments and paid plan as the order's ledger entry "
        "recorded them, milestones and challenge rewards, and the earning caps replayed in order from their "
        "counters. Answers the points issued under each, the liability were the difference outstanding, and "
        "the tier mix once the members whose qualifying points the draft changes are moved across the tier "
        "thresholds. Nothing is stored or published."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    read_only=True,
    body=schemas.insights.WhatIfRequest,
    response=schemas.insights.WhatIfOut,
)
def insights_what_if(request: ApiRequest) -> WhatIfOut:
    from decimal import Decimal

    from chalicelib.api.presenters import insights as presenters
    from chalicelib.domain.expiry import ExpiryPolicy
    from chalicelib.domain.program import Program

    body: WhatIfRequest = request.body
    draft = body.program
    program = Program(
        points_per_currency_unit=Decimal(draft.points_per_currency_unit),
        rounding=draft.rounding,
        expiry=ExpiryPolicy(
            kind=draft.expiry.kind,
            days=draft.expiry.days,
            months=draft.expiry.months,
            period=draft.expiry.period,
            periods_after=draft.expiry.periods_after,
        ),
        pending_days=draft.pending_days,
        reversal_clawback=draft.reversal_clawback,
        expiry_warning_days=draft.expiry_warning_days,
        birthday_bonus=draft.birthday_bonus,
        earn_on_shipping=draft.earn_on_shipping,
        earn_on_tax=draft.earn_on_tax,
        point_value=Decimal(draft.point_value),
    )
    return presenters.what_if(_service(request).what_if(program, body.days))
