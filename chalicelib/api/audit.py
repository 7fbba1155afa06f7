"""The audit trail: every admin change of the tenant, and the operator's changes of tenants."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.audit import AUDIT_RETENTION_YEARS, AuditQuery
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.audit import AuditList

bp = Blueprint(__name__)
TAG = "Audit"

_ENTRIES = (
    "Each entry names the API key that made the change (its id, never its secret), the action, the object "
    "changed, the time, and the object before and after (secrets left out). An entry is written in the same "
    "transaction as the change it records, so neither exists without the other; the trail is append-only, "
    f"and each entry is kept {AUDIT_RETENTION_YEARS} years."
)


def _query(request: ApiRequest) -> AuditQuery:
    query = request.query
    return AuditQuery(after=query.after, actor=query.actor, action=query.action)


@endpoint(
    bp,
    "/audit",
    "GET",
    summary="The audit trail of the tenant's admin changes, oldest first",
    description=(
        "Every admin change of the tenant, oldest first: the program, its rules, tiers, rewards, plans and "
        "referral settings, API keys created and revoked, manual point adjustments, webhooks, partners, "
        "integrations, imports and jobs run on demand. " + _ENTRIES + " Filter by `after` (poll with the `at` "
        "of the last entry read), `actor` (a key id) and `action`. Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    query=schemas.audit.AuditQuery,
    response=schemas.audit.AuditList,
)
def list_audit(request: ApiRequest) -> AuditList:
    from chalicelib.api.presenters import audit as presenters

    trail = request.services.for_tenant(request.tenant).audit
    return presenters.audit_list(trail.list(_query(request), limit=request.query.limit, cursor=request.query.cursor))


@endpoint(
    bp,
    "/operator/audit",
    "GET",
    summary="The audit trail of the operator's changes of tenants, oldest first",
    description=(
        "The operator's changes of tenants (created, suspended, resumed), oldest first. " + _ENTRIES + " Filter "
        "by `after`, `actor` and `action`. Reads only."
    ),
    tag=TAG,
    auth="operator",
    query=schemas.audit.AuditQuery,
    response=schemas.audit.AuditList,
)
def list_operator_audit(request: ApiRequest) -> AuditList:
    from chalicelib.api.presenters import audit as presenters

    trail = request.services.operator_audit
    return presenters.audit_list(trail.list(_query(request), limit=request.query.limit, cursor=request.query.cursor))
