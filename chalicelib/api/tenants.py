"""Operator endpoints: the registry of brands; and a sandbox brand's test clock.

Where a provisioning queue is configured (deployed stages), a new tenant is answered as
``provisioning``: its admin key is returned at once and works (instead of answering 409
``tenant_not_ready``) once its table is ready; ``GET /v1/tenants/{id}`` shows when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.errors import SandboxOnly, TenantExists, TenantNotReady
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.tenants import (
        AdvanceClockRequest,
        BrandClockOut,
        CreatedTenant,
        CreateTenantRequest,
        TenantList,
        TenantOut,
    )

bp = Blueprint(__name__)
TAG = "Tenants (operator)"


@endpoint(
    bp,
    "/tenants",
    "POST",
    summary="Create a tenant and its first admin key; its table is provisioned (status provisioning, then active)",
    description=(
        "For the platform operator: creates a brand (a tenant) and its first admin key, shown in this "
        "answer only. Its table is provisioned asynchronously: status `provisioning`, then `active`; "
        "until then its keys get 503 `tenant_not_ready`. 409 `tenant_exists` if the id is taken."
    ),
    tag=TAG,
    auth="operator",
    status=201,
    body=schemas.tenants.CreateTenantRequest,
    response=schemas.tenants.CreatedTenant,
    errors=(TenantExists,),
)
def create_tenant(request: ApiRequest) -> CreatedTenant:
    from chalicelib.api.presenters import tenants as presenters
    from chalicelib.domain.tenants import NewTenant

    body: CreateTenantRequest = request.body
    created = request.services.tenants.create(
        NewTenant(
            tenant_id=body.tenant_id,
            name=body.name,
            currency=body.currency,
            timezone=body.timezone,
            sandbox=body.sandbox,
        )
    )
    return presenters.created_tenant(created)


@endpoint(
    bp,
    "/tenants",
    "GET",
    summary="List tenants",
    description="For the platform operator: every tenant with its status.",
    tag=TAG,
    auth="operator",
    query=schemas.common.ListQuery,
    response=schemas.tenants.TenantList,
)
def list_tenants(request: ApiRequest) -> TenantList:
    from chalicelib.api.presenters import tenants as presenters
    from chalicelib.api.schemas.tenants import TenantList

    page = request.services.tenants.list(limit=request.query.limit, cursor=request.query.cursor)
    return TenantList(data=[presenters.tenant(t) for t in page.items], next_cursor=page.next_cursor)


@endpoint(
    bp,
    "/tenants/{tenant_id}",
    "GET",
    summary="Get a tenant",
    description="For the platform operator: one tenant with its currency, timezone and status.",
    tag=TAG,
    auth="operator",
    response=schemas.tenants.TenantOut,
)
def get_tenant(request: ApiRequest, tenant_id: str) -> TenantOut:
    from chalicelib.api.presenters import tenants as presenters

    return presenters.tenant(request.services.tenants.get(tenant_id))


@endpoint(
    bp,
    "/tenants/{tenant_id}/suspend",
    "POST",
    summary="Suspend a tenant: its keys get 403",
    description=(
        "For the platform operator: suspends a tenant; its keys get 403 `tenant_suspended` until it is "
        "resumed. No data is changed or lost."
    ),
    tag=TAG,
    auth="operator",
    response=schemas.tenants.TenantOut,
    errors=(TenantNotReady,),
)
def suspend_tenant(request: ApiRequest, tenant_id: str) -> TenantOut:
    from chalicelib.api.presenters import tenants as presenters

    return presenters.tenant(request.services.tenants.suspend(tenant_id))


@endpoint(
    bp,
    "/tenants/{tenant_id}/resume",
    "POST",
    summary="Resume a suspended tenant",
    description="For the platform operator: resumes a suspended tenant; its keys work again at once.",
    tag=TAG,
    auth="operator",
    response=schemas.tenants.TenantOut,
    errors=(TenantNotReady,),
)
def resume_tenant(request: ApiRequest, tenant_id: str) -> TenantOut:
    from chalicelib.api.presenters import tenants as presenters

    return presenters.tenant(request.services.tenants.resume(tenant_id))


# --- a sandbox brand's test clock ---------------------------------------------------------------------

CLOCK_TAG = "Test clock"


@endpoint(
    bp,
    "/test-clock",
    "GET",
    summary="The brand's clock: real time, or a sandbox brand's test clock",
    description=(
        "The brand's time, as every operation of the brand sees it: expiry and maturity of lots, "
        "birthdays, tier windows and reviews, plan lapses, caps' periods, the scheduled jobs. A live "
        "brand's time is real time (offset 0); a sandbox brand's test clock runs ahead of it by what "
        "POST /v1/test-clock/advance moved it."
    ),
    tag=CLOCK_TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.tenants.BrandClockOut,
)
def get_test_clock(request: ApiRequest) -> BrandClockOut:
    from chalicelib.api.presenters import tenants as presenters

    return presenters.test_clock(request.tenant.tenant)


@endpoint(
    bp,
    "/test-clock/advance",
    "POST",
    summary="Move a sandbox brand's test clock forward",
    description=(
        "Sandbox brands only (409 sandbox_only otherwise): moves the brand's clock forward to `to`, at "
        "most ten years ahead of real time. From then on every operation of the brand runs at that time "
        "(and the clock keeps ticking from it): points past their expiry are no longer spendable, even "
        "before the expiry job records them; the scheduled jobs run as of the brand's time; run one now "
        "with POST /v1/jobs/{job}/run. The clock never moves back: a `to` already passed changes "
        "nothing, so a retry is harmless."
    ),
    tag=CLOCK_TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.tenants.AdvanceClockRequest,
    response=schemas.tenants.BrandClockOut,
    errors=(SandboxOnly,),
)
def advance_test_clock(request: ApiRequest) -> BrandClockOut:
    from chalicelib.api.presenters import tenants as presenters

    body: AdvanceClockRequest = request.body
    return presenters.test_clock(request.services.tenants.advance_clock(request.tenant.tenant, body.to))
