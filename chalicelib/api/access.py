"""The caller and its API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.errors import NotFound

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
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.access.ApiKeyOut,
)
def revoke_api_key(request: ApiRequest, key_id: str) -> ApiKeyOut:
    from chalicelib.api.presenters import access as presenters

    return presenters.api_key(request.services.api_keys.revoke(request.tenant, key_id))
