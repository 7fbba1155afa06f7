"""Declaring an endpoint once: its route, who may call it, what it takes and returns.

``endpoint`` wraps a thin handler with, in this order: authentication (operator key or
tenant API key, the tenant always coming from the key), the scope check, the
Idempotency-Key header, body and query validation, and the error mapping. It also
records the operation, so that the OpenAPI document and the route security tests are
generated from the same declarations and no route can escape them.

Request and response models are named lazily (``schemas.members.MemberOut``): a feature's
schema module is imported when one of its routes is first called (or the OpenAPI document
built), so that importing the app registers routes and builds nothing else.

Each operation also declares the domain errors it can answer (``errors``); those every
route of its kind answers (an unknown key, a missing scope, a malformed path, a busy store)
are implied by its declaration (``Operation.answers``), and the OpenAPI document lists both.

Member routes (``auth="member"``, under ``/brands/{tenant_id}/me``) take a member token instead
of an API key, for the tenant their path names, and answer browsers by the tenant's own CORS
policy: each such path also answers the preflight (``OPTIONS``), and every answer carries
``Access-Control-Allow-Origin`` only for an origin the tenant lists.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.api.errors import JSON_HEADERS, error_response, internal_error_response, invalid_request_from
from chalicelib.domain.clock import request_clock, utc_now
from chalicelib.domain.errors import (
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    LoyaltyError,
    MemberErased,
    NotFound,
    RetryLater,
    StorageLimitExceeded,
    TenantNotReady,
    TenantSuspended,
    TokenInvalid,
    TransientStoreError,
    Unauthorized,
)
from chalicelib.domain.scopes import MemberScope, Scope, require_member_scope, require_scope
from chalicelib.observability import annotate, logger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.services import PlatformServices

#: ``signature``: no key; the handler authenticates the raw body itself (a shop's HMAC webhooks).
#: ``member``: a member token for the tenant of the path (chalicelib.domain.member_access).
Auth = Literal["none", "operator", "tenant", "signature", "member"]
#: Where the member routes live: the tenant in the path, so a browser's preflight (which
#: carries no token) already says whose CORS policy answers it.
MEMBER_PATH_PREFIX = "/brands/{tenant_id}/me"
#: Request headers a page may send to a member route; how long a browser may keep a preflight's answer.
MEMBER_CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"
MEMBER_CORS_MAX_AGE = "600"

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Set to ``true`` on an answer that replays an earlier request's (same Idempotency-Key).
REPLAYED_HEADER = "Idempotent-Replayed"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_PATH_PARAM_LENGTH = 64
_PATH_PARAM = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PATH_PARAM_LENGTH}}}")
#: Every content type reaches the handler, so that our own 4xx (the body is parsed as JSON
#: whatever its label) answers them in the error shape, never Chalice's bare 415.
_CONTENT_TYPES = ["application/json", "*/*"]


@dataclass(frozen=True)
class Model:
    """A pydantic model of ``chalicelib.api.schemas.<feature>``, imported on first use."""

    feature: str
    name: str

    def load(self) -> type[BaseModel]:
        return _load_model(self.feature, self.name)


@functools.cache
def _load_model(feature: str, name: str) -> type[BaseModel]:
    from pydantic import BaseModel

    model = getattr(importlib.import_module(f"chalicelib.api.schemas.{feature}"), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"chalicelib.api.schemas.{feature}.{name} is not a pydantic model")
    return model


class _FeatureSchemas:
    def __init__(self, feature: str) -> None:
        self._feature = feature

    def __getattr__(self, name: str) -> Model:
        if name.startswith("_"):
            raise AttributeError(name)
        return Model(self._feature, name)


class _Schemas:
    """``schemas.<feature>.<Model>``: a lazy name for a model of chalicelib.api.schemas."""

    def __getattr__(self, feature: str) -> _FeatureSchemas:
        if feature.startswith("_"):
            raise AttributeError(feature)
        return _FeatureSchemas(feature)


schemas = _Schemas()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    auth: Auth
    scope: Scope | MemberScope | None
    status: int
    body: Model | None
    query: Model | None
    response: Model | None
    #: The Idempotency-Key header is required (point movements).
    idempotency_key: bool
    writes: bool
    #: A partner key may call it too (for its own partner only; the handler checks which).
    partner_access: bool = False
    #: Media types of the request body: JSON always; ``text/csv`` too for routes taking a file.
    request_media: tuple[str, ...] = ("application/json",)
    #: Media type of the success response (``text/csv`` for exports).
    response_media: str = "application/json"
    #: Response headers of the success response, by name: their description (documented).
    response_headers: tuple[tuple[str, str], ...] = ()
    #: The body limit is ``max_import_body_bytes`` instead of ``max_body_bytes``.
    large_body: bool = False
    #: The Idempotency-Key header may be sent (same rules as a required one) or left out.
    optional_idempotency_key: bool = False
    #: The domain errors this operation answers besides those its kind implies (``answers``).
    errors: tuple[type[LoyaltyError], ...] = ()
    #: For a brand's integrator: what it does, what it changes, whether a retry is safe, its
    #: notable refusals (``description=``, else the handler's docstring).
    description: str = ""
    #: An example of a success answer that is not JSON (a CSV page).
    response_example: str = ""

    def answers(self) -> tuple[type[LoyaltyError], ...]:
        """Every domain error this operation can answer: the implied ones, then the declared."""
        implied: list[type[LoyaltyError]] = [InvalidRequest]  # a malformed body, query or path
        if self.auth != "none":
            implied += [Unauthorized, RetryLater]  # its key (or integration) is read from DynamoDB
        if self.auth == "tenant":
            implied += [Forbidden, TenantSuspended, TenantNotReady]
        if self.auth == "member":
            implied += [TokenInvalid, Forbidden, TenantSuspended, TenantNotReady]
        if _PATH_PARAM_NAME.search(self.path) or self.idempotency_key:
            implied.append(NotFound)
        if "{member_id}" in self.path:
            implied.append(MemberErased)  # a member erased at the brand's request answers 410
        if self.idempotency_key or self.optional_idempotency_key:
            implied += [IdempotencyKeyReused, RetryLater]
        if self.writes and self.auth != "none":
            implied.append(StorageLimitExceeded)  # every write is checked against DynamoDB's limits
        return tuple(dict.fromkeys([*implied, *self.errors]))


_PATH_PARAM_NAME = re.compile(r"{\w+}")


#: Every operation of the API, in declaration order (filled as blueprints are imported).
OPERATIONS: list[Operation] = []


@dataclass
class ApiRequest:
    """What a handler receives besides the path parameters."""

    services: PlatformServices
    tenant: Any = None  # TenantContext for tenant routes
    member: Any = None  # MemberContext for member routes
    body: Any = None
    query: Any = None
    idempotency_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The body as received (``signature`` routes verify it before parsing anything).
    raw_body: bytes = b""


@dataclass(frozen=True)
class Result:
    """A handler's answer: the response model plus optional extra headers."""

    model: BaseModel
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def replayable(cls, model: BaseModel, *, replayed: bool) -> Result:
        """``model``, with ``Idempotent-Replayed: true`` when it replays an earlier request's answer."""
        return cls(model=model, headers={REPLAYED_HEADER: "true"} if replayed else {})


@dataclass(frozen=True)
class TextResult:
    """A handler's answer that is not JSON (a CSV page): the text, in the route's declared
    ``response_media``, plus optional extra headers."""

    text: str
    headers: dict[str, str] = field(default_factory=dict)


CSV_MEDIA = "text/csv"


def endpoint(
    blueprint: Blueprint,
    path: str,
    method: str,
    *,
    summary: str,
    tag: str,
    auth: Auth,
    scope: Scope | MemberScope | None = None,
    status: int = 200,
    body: Model | None = None,
    query: Model | None = None,
    response: Model | None = None,
    idempotency_key: bool = False,
    read_only: bool = False,
    partner_access: bool = False,
    request_media: tuple[str, ...] = ("application/json",),
    response_media: str = "application/json",
    response_headers: tuple[tuple[str, str], ...] = (),
    large_body: bool = False,
    optional_idempotency_key: bool = False,
    errors: tuple[type[LoyaltyError], ...] = (),
    description: str = "",
    response_example: str = "",
) -> Callable[[Callable[..., BaseModel | Result | TextResult]], Callable[..., Response]]:
    """Declare a route. ``read_only`` marks a POST that computes without writing (a preview).

    ``idempotency_key``: the Idempotency-Key header is required; ``optional_idempotency_key``:
    it may be left out (``ApiRequest.idempotency_key`` is then None), and when sent it is
    checked as a required one is.

    ``request_media`` with ``text/csv``: a body labelled ``text/csv`` reaches the handler
    unparsed, as ``raw_body`` (``body`` is None); any other label is parsed as JSON.
    ``response_media`` other than JSON: the handler answers a ``TextResult``.

    ``errors``: the domain errors the handler and the services it calls can raise, beyond
    those implied by the other arguments (``Operation.answers``): the OpenAPI document lists
    exactly these codes under each status.

    ``description``: the operation's description in the OpenAPI document, written for a brand's
    integrator; the handler's docstring when left out. ``response_example``: an answer that is
    not JSON (JSON answers take their example from the response model)."""
    if auth == "tenant" and not isinstance(scope, Scope):
        raise ValueError(f"{method} {path}: tenant routes must name a key scope")
    if auth == "member" and not (isinstance(scope, MemberScope) and path.startswith(MEMBER_PATH_PREFIX)):
        raise ValueError(f"{method} {path}: member routes name a member scope and live under {MEMBER_PATH_PREFIX}")
    if idempotency_key and optional_idempotency_key:
        raise ValueError(f"{method} {path}: the Idempotency-Key is either required or optional")

    def decorator(handler: Callable[..., BaseModel | Result | TextResult]) -> Callable[..., Response]:
        OPERATIONS.append(
            Operation(
                method=method,
                path=path,
                operation_id=handler.__name__,
                summary=summary,
                tag=tag,
                auth=auth,
                scope=scope,
                status=status,
                body=body,
                query=query,
                response=response,
                idempotency_key=idempotency_key,
                writes=method != "GET" and not read_only,
                partner_access=partner_access,
                request_media=request_media,
                response_media=response_media,
                response_headers=response_headers,
                large_body=large_body,
                optional_idempotency_key=optional_idempotency_key,
                errors=errors,
                description=description or inspect.getdoc(handler) or "",
                response_example=response_example,
            )
        )

        @functools.wraps(handler)
        def view(**path_params: str) -> Response:
            calls: list[ApiRequest] = []
            response = answer(calls, **path_params)
            if auth == "member":
                origin = blueprint.current_request.headers.get("origin")
                member = calls[0].member if calls else None
                # The settings the token was verified against, else (a refusal) read for the origin.
                allowed = origin is not None and (
                    member.access.allows_origin(origin)
                    if member is not None
                    else _origin_allowed(path_params.get("tenant_id", ""), origin)
                )
                if origin is not None and allowed:
                    response.headers.update(_cors_headers(origin))
            return response

        def answer(calls: list[ApiRequest], **path_params: str) -> Response:
            """The handler's answer, or the error's; ``calls`` receives the request as it is built."""
            request = blueprint.current_request
            request_clock.set(utc_now)  # real time until the caller's brand is known
            try:
                from chalicelib.services import platform

                services = platform()
                call = ApiRequest(services=services, headers={k.lower(): v for k, v in request.headers.items()})
                calls.append(call)
                authorization = call.headers.get("authorization")
                if auth == "operator":
                    services.authenticator.authenticate_operator(authorization)
                elif auth == "tenant":
                    call.tenant = services.authenticator.authenticate_tenant(authorization)
                    request_clock.set(call.tenant.tenant.clock)
                    logger.append_keys(tenant_id=call.tenant.tenant_id, api_key_id=call.tenant.key_id)
                    annotate(tenant_id=call.tenant.tenant_id)
                    if not (partner_access and call.tenant.partner_id is not None):
                        assert isinstance(scope, Scope)  # a tenant route names its scope (checked above)
                        require_scope(call.tenant, scope)
                elif auth == "member":
                    call.member = services.authenticator.authenticate_member(
                        authorization, path_params.get("tenant_id", "")
                    )
                    request_clock.set(call.member.tenant.clock)
                    logger.append_keys(tenant_id=call.member.tenant_id, member_token_id=call.member.token_id)
                    annotate(tenant_id=call.member.tenant_id)
                    assert isinstance(scope, MemberScope)  # a member route names its scope (checked above)
                    require_member_scope(call.member, scope)
                _check_path_params(path_params)
                if auth == "signature":
                    call.raw_body = body_within_limit(_raw_body(request), services.settings.max_body_bytes)
                sent_key = call.headers.get(IDEMPOTENCY_HEADER.lower())
                if idempotency_key or (optional_idempotency_key and sent_key is not None):
                    call.idempotency_key = _idempotency_key(sent_key)
                limit = services.settings.max_import_body_bytes if large_body else services.settings.max_body_bytes
                if body is not None and CSV_MEDIA in request_media and _is_csv(call.headers.get("content-type")):
                    call.raw_body = body_within_limit(_raw_body(request), limit)
                elif body is not None:
                    call.body = parse_body(body.load(), _raw_body(request), limit)
                call.query = _parse_query(query.load() if query is not None else None, request.query_params)
                result = handler(call, **path_params)
            except LoyaltyError as error:
                logger.info("request refused", extra={"code": error.code, "operation": handler.__name__})
                return error_response(error, idempotency_key=idempotency_key)
            except TransientStoreError:
                logger.warning("storage busy after retries", extra={"operation": handler.__name__})
                return error_response(RetryLater("the service is busy"), idempotency_key=idempotency_key)
            except Exception:
                logger.exception("unhandled error", extra={"operation": handler.__name__})
                return internal_error_response()
            if isinstance(result, TextResult):
                return Response(
                    body=result.text,
                    status_code=status,
                    headers={"Content-Type": f"{response_media}; charset=utf-8", **result.headers},
                )
            if not isinstance(result, Result):
                result = Result(model=result)
            return Response(
                body=result.model.model_dump(mode="json"),
                status_code=status,
                headers={**JSON_HEADERS, **result.headers},
            )

        blueprint.route(path, methods=[method], content_types=_CONTENT_TYPES)(view)
        if auth == "member":
            _member_preflight(blueprint, path, method)
        return view

    return decorator


def _origin_allowed(tenant_id: str, origin: str) -> bool:
    """Whether the tenant lists the origin for its member API (False when it cannot be read now)."""
    from chalicelib.services import platform

    try:
        return platform().authenticator.member_access_of(tenant_id).allows_origin(origin)
    except Exception:
        logger.warning("member API origins unreadable", extra={"tenant_id": tenant_id})
        return False


def _cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


#: Member paths whose preflight route is registered, with the methods each declares.
_PREFLIGHT_METHODS: dict[str, list[str]] = {}


def _member_preflight(blueprint: Blueprint, path: str, method: str) -> None:
    """``OPTIONS path``: a browser's preflight, answered from the tenant's allowed origins
    (204 with the CORS headers for a listed origin and a declared method; else 403 without them).
    Registered with the path's first method; the path's later methods join its list."""
    methods = _PREFLIGHT_METHODS.setdefault(path, [])
    if method not in methods:
        methods.append(method)
    if len(methods) > 1:
        return

    def preflight(**path_params: str) -> Response:
        request = blueprint.current_request
        origin = request.headers.get("origin")
        wanted = (request.headers.get("access-control-request-method") or "").upper()
        if origin is None or wanted not in methods or not _origin_allowed(path_params.get("tenant_id", ""), origin):
            return error_response(Forbidden("this origin may not call the member API of this brand"))
        return Response(
            body="",
            status_code=204,
            headers={
                **_cors_headers(origin),
                "Access-Control-Allow-Methods": ", ".join(methods),
                "Access-Control-Allow-Headers": MEMBER_CORS_HEADERS,
                "Access-Control-Max-Age": MEMBER_CORS_MAX_AGE,
            },
        )

    preflight.__name__ = f"preflight_{len(_PREFLIGHT_METHODS)}"
    blueprint.route(path, methods=["OPTIONS"])(preflight)


def preflight_paths() -> set[str]:
    """The member paths that answer a preflight (each declared operation's path under it)."""
    return set(_PREFLIGHT_METHODS)


def _is_csv(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == CSV_MEDIA


def _check_path_params(path_params: dict[str, str]) -> None:
    """Identifiers in the path are short, plain tokens; anything else is a malformed request.
    (A well-formed id that does not exist, or belongs to another tenant, is a 404 later.)"""
    problems = [
        (name, f"at most {MAX_PATH_PARAM_LENGTH} letters, digits, '_' or '-'", "string_pattern_mismatch")
        for name, value in sorted(path_params.items())
        if not _PATH_PARAM.fullmatch(value)
    ]
    if problems:
        raise InvalidRequest.for_fields("malformed identifier in the path", *problems)


def _idempotency_key(value: str | None) -> str:
    if value is None:
        raise InvalidRequest.for_fields(
            f"the {IDEMPOTENCY_HEADER} header is required for every point movement",
            (IDEMPOTENCY_HEADER, "missing header", "missing"),
        )
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest.for_fields(
            f"the {IDEMPOTENCY_HEADER} header must be 1-255 visible ASCII characters",
            (IDEMPOTENCY_HEADER, "1-255 visible ASCII characters", "string_pattern_mismatch"),
        )
    from chalicelib.domain.movement_requests import refuse_minted_key

    refuse_minted_key(value)
    return value


def _raw_body(request: Request) -> bytes:
    """The request's body as bytes (Chalice decodes a base64 body and encodes a text one)."""
    raw = request.raw_body
    return raw.encode() if isinstance(raw, str) else raw or b""


def body_within_limit(raw: bytes, max_bytes: int) -> bytes:
    """``raw`` when it is at most ``max_bytes`` long; else the request is refused (400, ``too_long``)."""
    if len(raw) > max_bytes:
        raise InvalidRequest.for_fields(
            f"the request body exceeds {max_bytes} bytes", ("body", f"larger than {max_bytes} bytes", "too_long")
        )
    return raw


def parse_body(model: type[BaseModel], raw: bytes | None, max_bytes: int) -> BaseModel:
    """The body as ``model``. No body (or only whitespace) stands for ``{}`` when the model
    has no required field; JSON that names a key twice is refused (see ``read_json``)."""
    from pydantic import RootModel, ValidationError

    raw = raw or b""
    if len(raw) > max_bytes:
        raise InvalidRequest.for_fields(
            f"the request body exceeds {max_bytes} bytes", ("body", f"larger than {max_bytes} bytes", "too_long")
        )
    if not raw.strip():
        if (required := _required_fields(model)) or issubclass(model, RootModel):
            raise InvalidRequest.for_fields(
                "a JSON request body is required" + (f" (required fields: {', '.join(required)})" if required else ""),
                ("body", "empty body", "missing"),
            )
        raw = b"{}"  # the model's own rules answer it (e.g. "send at least one field")
    read_json(raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as validation:
        raise invalid_request_from(validation, location="body") from None


def body_required(model: type[BaseModel]) -> bool:
    """Whether a request must send a body (as documented): one left out stands for ``{}``,
    which a model with a required field, or a rule across fields, refuses."""
    from pydantic import RootModel, ValidationError

    if _required_fields(model) or issubclass(model, RootModel):
        return True
    try:
        model.model_validate_json(b"{}")
    except ValidationError:
        return True
    return False


def _required_fields(model: type[BaseModel]) -> list[str]:
    from pydantic import RootModel

    if issubclass(model, RootModel):
        return []
    return [field.alias or name for name, field in model.model_fields.items() if field.is_required()]


class _JsonObject(dict[str, Any]):
    """A JSON object as parsed, remembering the keys its text named more than once."""

    repeated: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    parsed = _JsonObject(pairs)
    if len(parsed) != len(pairs):
        parsed.repeated = tuple(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _repeated_keys(value: Any) -> list[str]:
    """Paths (dotted, as in ``details.fields``) of the keys named twice in one object, at any depth."""
    found: list[str] = []
    pending: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, _JsonObject):
            found += [".".join((*path, key)) for key in item.repeated]
            pending += [((*path, key), child) for key, child in item.items()]
        elif isinstance(item, list):
            pending += [((*path, str(index)), child) for index, child in enumerate(item)]
    return sorted(found)


def read_json(raw: bytes) -> Any:
    """The one reader of JSON request bodies. Refused (400): text that is not JSON (NaN and
    Infinity are not), and an object naming a key twice, at any depth: parsers disagree on
    which value wins (most keep the last silently), so the request is ambiguous."""
    try:
        parsed = json.loads(raw, object_pairs_hook=_json_object, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidRequest(
            "the request body is not valid JSON",
            details={"location": "body", "fields": [{"path": "body", "message": str(error), "type": "json_invalid"}]},
        ) from None
    if repeated := _repeated_keys(parsed):
        raise InvalidRequest(
            f"the request body names a key more than once: {', '.join(repeated)}",
            details={
                "location": "body",
                "fields": [
                    {"path": path, "message": "key given more than once", "type": "duplicate_key"} for path in repeated
                ],
            },
        )
    return parsed


def _parse_query(model: type[BaseModel] | None, params: Any) -> BaseModel | None:
    from pydantic import ValidationError

    getlist = getattr(params, "getlist", None)
    if getlist is not None:  # Chalice's MultiDict: a plain read would keep only the last value
        if repeated := sorted(name for name in params if len(getlist(name)) > 1):
            raise InvalidRequest.for_fields(
                "a query parameter may be given once",
                *((name, "given more than once", "value_error") for name in repeated),
            )
    values = dict(params or {})
    if model is None:
        if values:
            raise InvalidRequest.for_fields(
                "this endpoint takes no query parameters",
                *((name, "unknown parameter", "extra_forbidden") for name in sorted(values)),
            )
        return None
    try:
        return model.model_validate(values)
    except ValidationError as validation:
        raise invalid_request_from(validation, location="query") from None
