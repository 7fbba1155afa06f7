"""The tenant's program settings."""

from __future__ import annotations

from decimal import Decimal

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.expiry import ExpiryPolicy

bp = Blueprint(__name__)
TAG = "Program"


@endpoint(
    bp,
    "/program",
    "GET",
    summary="The program's settings",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.ProgramOut,
)
def get_program(request: ApiRequest) -> schemas.ProgramOut:
    return presenters.program(request.services.for_tenant(request.tenant).program.get())


@endpoint(
    bp,
    "/program",
    "PUT",
    summary="Replace the program's settings",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.ProgramRequest,
    response=schemas.ProgramOut,
)
def put_program(request: ApiRequest) -> schemas.ProgramOut:
    body: schemas.ProgramRequest = request.body
    expiry = ExpiryPolicy(
        kind=body.expiry.kind,
        days=body.expiry.days,
        months=body.expiry.months,
        period=body.expiry.period,
        periods_after=body.expiry.periods_after,
    )
    program = request.services.for_tenant(request.tenant).program.replace(
        Decimal(body.points_per_currency_unit),
        body.rounding,
        expiry,
        body.pending_days,
        body.reversal_clawback,
        expiry_warning_days=body.expiry_warning_days,
        birthday_bonus=body.birthday_bonus,
    )
    return presenters.program(program)
