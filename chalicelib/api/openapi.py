"""The OpenAPI 3.1 document, generated from the declared operations and their pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.api.errors import status_for
from chalicelib.api.routing import IDEMPOTENCY_HEADER, MAX_PATH_PARAM_LENGTH, OPERATIONS, Operation, body_required
from chalicelib.api.schemas.common import ErrorResponse
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.domain.errors import LoyaltyError

BASE_PATH = "/v1"
_PATH_PARAM = re.compile(r"{(\w+)}")

#: What each error status means, whatever the operation; its codes follow (``Operation.answers``).
_STATUS_TEXT = {
    400: "Invalid request; `details.fields` lists the offending fields.",
    401: "Missing, malformed, unknown or revoked key.",
    403: "The key may not do this, or its tenant is suspended.",
    404: "Not found, including another tenant's objects.",
    409: "Conflict with the current state.",
    410: "The member was erased (`member_erased`): their personal data is gone.",
    422: "Refused by the rules.",
    500: "A bug; it has been logged.",
    503: "Throttling or conflicts outlasted our retries (`Retry-After: 1`); retry shortly.",
}
#: A 503 of an operation that takes an Idempotency-Key.
_RETRY_WITH_THE_KEY = (
    "Throttling or conflicts outlasted our retries (`Retry-After: 1`); retry shortly with the same "
    "Idempotency-Key: it answers the first result if the attempt was applied after all."
)
#: What answers a bug (chalicelib.api.errors.internal_error_response), on every operation.
_INTERNAL_ERROR = "internal_error"


def _errors_by_status(op: Operation) -> dict[int, list[type[LoyaltyError]]]:
    by_status: dict[int, list[type[LoyaltyError]]] = {}
    for error in op.answers():
        by_status.setdefault(status_for(error), []).append(error)
    return by_status


def _example_message(error: type[LoyaltyError]) -> str:
    """The first sentence of the error class's own docstring, else its code in words."""
    doc = " ".join((error.__dict__.get("__doc__") or "").split())
    return doc.split(". ", 1)[0].rstrip(".").replace("``", "`") or error.code.replace("_", " ")


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body.load(), "validation"))
        if op.response is not None:
            models.append((op.response.load(), "serialization"))
        if op.query is not None:
            models.append((op.query.load(), "validation"))
    refs, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = schema.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "description": _description(op),
            "tags": [op.tag],
            "parameters": _parameters(op, components, refs),
            "responses": _responses(op, refs, components),
        }
        if op.auth == "tenant":
            operation["security"] = [{"apiKey": []}]
            operation["x-required-scope"] = str(op.scope)
        elif op.auth == "operator":
            operation["security"] = [{"operatorKey": []}]
        elif op.auth == "signature":
            operation["security"] = [{"shopifyHmac": []}]
        elif op.auth == "member":
            operation["security"] = [{"memberToken": []}]
            operation["x-required-scope"] = str(op.scope)
        else:
            operation["security"] = []
        if op.body is not None:
            content: dict[str, Any] = {"application/json": {"schema": refs[(op.body.load(), "validation")]}}
            for media in op.request_media:
                if media != "application/json":
                    content[media] = {"schema": {"type": "string", "minLength": 1}}
            # Without a required field, no body stands for {}.
            content["application/json"]["example"] = model_example(op.body.load(), components)
            operation["requestBody"] = {"required": body_required(op.body.load()), "content": content}
        paths.setdefault(BASE_PATH + op.path, {})[op.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loyalty API",
            "version": "1.0.0",
            "description": (
                "Multi-tenant loyalty points API. The tenant is always the one of the API key. "
                'Every error has the shape {"error": {"code", "message", "details"}}.'
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A tenant API key (lk_...)."},
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "The platform operator key."},
                "memberToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A member token (lmt_...) minted by the brand's backend (`POST /v1/members/{member_id}/"
                        "tokens`): one member of one brand, a few scopes, minutes of life."
                    ),
                },
                "shopifyHmac": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Shopify-Hmac-Sha256",
                    "description": "Base64 HMAC-SHA256 of the raw body under the integration's shared secret.",
                },
            },
        },
    }


def _description(op: Operation) -> str:
    """The declared description, then who may call the operation and the refusals of its own
    (those its kind implies are under each error status)."""
    if op.auth == "tenant" and op.scope == Scope.PARTNER:
        access = "Key: a partner API key (scope `partner`), acting for its own partner."
    elif op.auth == "tenant":
        access = f"Key: a tenant API key with the `{op.scope}` scope."
        if op.partner_access:
            access += " A partner key may call it for its own partner."
    elif op.auth == "operator":
        access = "Key: the platform operator key."
    elif op.auth == "signature":
        access = "Key: none; the raw body is signed (`X-Shopify-Hmac-Sha256`)."
    elif op.auth == "member":
        access = (
            f"Key: a member token of this brand with the `{op.scope}` scope (never an API key); it acts "
            "on its own member only. Browsers: answered with CORS headers for the brand's allowed origins "
            "(`OPTIONS` answers the preflight)."
        )
    else:
        access = "Key: none."
    parts = [op.description, access]
    if op.errors:
        parts.append(
            "Refusals of its own:\n\n"
            + "\n".join(f"- `{error.code}` ({status_for(error)}): {_example_message(error)}." for error in op.errors)
        )
    return "\n\n".join(part for part in parts if part)


def _parameters(op: Operation, components: dict[str, Any], refs: dict[Any, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^[A-Za-z0-9_-]{{1,{MAX_PATH_PARAM_LENGTH}}}$"},
        }
        for name in _PATH_PARAM.findall(op.path)
    ]
    key_schema = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}
    if op.idempotency_key:
        parameters.append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": True,
                "description": "Unique per movement; a retry with the same key returns the first result.",
                "schema": key_schema,
            }
        )
    elif op.optional_idempotency_key:
        parameters.append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Optional. A retry with the same key and body returns the first result "
                "(`Idempotent-Replayed: true`); with another body, 422 `idempotency_key_reused`.",
                "schema": key_schema,
            }
        )
    if op.query is not None:
        ref = refs[(op.query.load(), "validation")]["$ref"].rsplit("/", 1)[-1]
        query_schema = components[ref]
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return parameters


def _responses(op: Operation, refs: dict[Any, Any], components: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        model = op.response.load()
        success["content"] = {
            "application/json": {
                "schema": refs[(model, "serialization")],
                "example": model_example(model, components, mode="serialization"),
            }
        }
        if op.response_media != "application/json":  # the same answer in another media, on request
            success["content"][op.response_media] = {"schema": {"type": "string"}, "example": op.response_example}
    elif op.response_media != "application/json":
        success["content"] = {op.response_media: {"schema": {"type": "string"}, "example": op.response_example}}
    if op.response_headers:
        success["headers"] = {
            name: {"description": text, "required": False, "schema": {"type": "string"}}
            for name, text in op.response_headers
        }
    responses: dict[str, Any] = {str(op.status): success}
    error_ref = refs[(ErrorResponse, "serialization")]
    by_status = _errors_by_status(op)
    for status in sorted({*by_status, 500}):
        text = _RETRY_WITH_THE_KEY if status == 503 and op.idempotency_key else _STATUS_TEXT[status]
        examples = {error.code: _example(error.code, _example_message(error)) for error in by_status.get(status, [])}
        if status == 500:
            examples = {_INTERNAL_ERROR: _example(_INTERNAL_ERROR, "an unexpected error occurred; it has been logged")}
        responses[str(status)] = {
            "description": f"{text} Codes: {', '.join(f'`{code}`' for code in examples)}.",
            "x-error-codes": list(examples),
            "content": {"application/json": {"schema": error_ref, "examples": examples}},
        }
    return responses


def _example(code: str, message: str) -> dict[str, Any]:
    return {"value": {"error": {"code": code, "message": message, "details": {}}}}


def declared_examples(model: type[BaseModel]) -> list[Any]:
    """The examples the model declares (``model_config``'s ``json_schema_extra``)."""
    examples = model.model_json_schema().get("examples")
    return list(examples) if isinstance(examples, list) else []


def model_example(model: type[BaseModel], components: dict[str, Any], mode: JsonSchemaMode = "validation") -> Any:
    """The model's declared example, else one built from its schema: each field's own example
    (``Field(examples=...)``), else its default, else a value of its type and format."""
    declared = declared_examples(model)
    if declared:
        return declared[0]
    return sample(model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}"), components)


#: A value for each string format the models use.
_FORMAT_SAMPLES = {
    "date-time": "2026-03-01T09:30:00Z",
    "date": "2026-03-01",
    "email": "ada@example.com",
    "uri": "https://shop.example.com/hooks/loyalty",
    "duration": "P30D",
}


#: A value for a plain string field, by the field's name (its schema gives no example).
_NAMED_SAMPLES = {
    "member_id": "mem_01JD0000000000000000000000",
    "referred_by": "mem_01JD0000000000000000000001",
    "external_id": "cust-1042",
    "email": "ada@example.com",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "tenant_id": "acme",
    "amount": "12.50",
    "multiplier": "1.5",
    "tier": "gold",
    "next_tier": "platinum",
    "plan_id": "club",
    "partner_id": "coffee",
    "reference": "order-1042",
    "idempotency_key": "order-1042-earn",
    "description": "Online order",
    "reason": "Goodwill gesture",
    "referral_code": "7KQ4MZ2P",
    "card_code": "6001-2345-6789",
}


def sample(schema: Any, components: dict[str, Any], depth: int = 0, name: str = "") -> Any:
    """A value that ``schema`` accepts, for the document's examples (the tests validate each);
    ``name``: the field's, which picks a telling value for a plain string."""
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "$ref" in schema:
        return sample(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth + 1, name)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("default") is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return sample(branches[0], components, depth + 1, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {key: sample(prop, components, depth + 1, key) for key, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema.get("items", {}), components, depth + 1, name)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        text = _FORMAT_SAMPLES.get(schema.get("format", ""), _NAMED_SAMPLES.get(name, "text"))
        return text.ljust(schema.get("minLength", 0), "x")[: schema.get("maxLength", len(text) + 64)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1)
        return max(low, min(100, schema.get("maximum", 100)))
    if kind == "boolean":
        return True
    return None
