"""The caller and its API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.errors import NotFound
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.access import ApiKeyList, ApiKeyOut, CreateApiKeyRequest, CreatedApiKey
    from chalicelib.api.schemas.tenants import Me

bp = Blueprint(__name__)
TAG = "Access"


@endpoint(
    bp,
    "/me",
    "GET",
    summary="The tenant and the calling key",
    description=(
        "Who is calling: the tenant (its id, name, currency, timezone and status) and the API key used "
        "(its id, name and scopes). Reads only; useful to check a key and its scopes when an integration "
        "starts."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.tenants.Me,
)
def get_me(request: ApiRequest) -> Me:
    from chalicelib.api.presenters import tenants as presenters

    return presenters.me(request.tenant)


@endpoint(
    bp,
    "/api-keys",
    "POST",
    summary="Create an API key (the secret is shown once)",
    description=(
        "Creates a new API key for this tenant with the scopes given (read, write, admin, or partner for "
        "one coalition partner). The secret is in this answer only: store it now, it is kept as a hash "
        "and can never be shown again. Not idempotent: each call creates another key. 404 `not_found` if "
        "the partner named does not exist."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.access.CreateApiKeyRequest,
    response=schemas.access.CreatedApiKey,
    errors=(NotFound,),
)
def create_api_key(request: ApiRequest) -> CreatedApiKey:
    from chalicelib.api.presenters import access as presenters

    body: CreateApiKeyRequest = request.body
    if body.partner_id is not None:
        # A partner key acts for a partner the tenant registered (404 for another tenant's).
        request.services.for_tenant(request.tenant).partners.get(body.partner_id)
    issued = request.services.api_keys.create(
        request.tenant, name=body.name, scopes=frozenset(body.scopes), partner_id=body.partner_id
    )
    return presenters.issued_api_key(issued)


@endpoint(
    bp,
    "/api-keys",
    "GET",
    summary="List API keys (never their secrets)",
    description=(
        "Every API key of this tenant, active and revoked, with its name, scopes and dates. Secrets are never returned."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.access.ApiKeyList,
)
def list_api_keys(request: ApiRequest) -> ApiKeyList:
    from chalicelib.api.presenters import access as presenters
    from chalicelib.api.schemas.access import ApiKeyList

    return ApiKeyList(data=[presenters.api_key(k) for k in request.services.api_keys.list(request.tenant)])


@endpoint(
    bp,
    "/api-keys/{key_id}",
    "DELETE",
    summary="Revoke an API key, effective immediately",
    description=(
        "Revokes a key: from the next request on it is refused with 401. 404 if the key is not this tenant's."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.access.ApiKeyOut,
)
def revoke_api_key(request: ApiRequest, key_id: str) -> ApiKeyOut:
    from chalicelib.api.presenters import access as presenters

    return presenters.api_key(request.services.api_keys.revoke(request.tenant, key_id))
