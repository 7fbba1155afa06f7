"""The caller and its API keys."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import presenters, schemas
from chalicelib.api.routing import ApiRequest, endpoint
from chalicelib.domain.api_keys import Scope

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
    response=schemas.Me,
)
def get_me(request: ApiRequest) -> schemas.Me:
    context = request.tenant
    return schemas.Me(
        tenant=presenters.tenant(context.tenant),
        api_key=schemas.CallerKey(id=context.key_id, name=context.key_name, scopes=sorted(context.scopes)),
    )


@endpoint(
    bp,
    "/api-keys",
    "POST",
    summary="Create an API key (the secret is shown once)",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.CreateApiKeyRequest,
    response=schemas.CreatedApiKey,
)
def create_api_key(request: ApiRequest) -> schemas.CreatedApiKey:
    body: schemas.CreateApiKeyRequest = request.body
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
    response=schemas.ApiKeyList,
)
def list_api_keys(request: ApiRequest) -> schemas.ApiKeyList:
    return schemas.ApiKeyList(data=[presenters.api_key(k) for k in request.services.api_keys.list(request.tenant)])


@endpoint(
    bp,
    "/api-keys/{key_id}",
    "DELETE",
    summary="Revoke an API key, effective immediately",
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.ApiKeyOut,
)
def revoke_api_key(request: ApiRequest, key_id: str) -> schemas.ApiKeyOut:
    return presenters.api_key(request.services.api_keys.revoke(request.tenant, key_id))
