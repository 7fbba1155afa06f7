"""The OpenAPI 3.1 document, generated from the declared operations and their pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.api.routing import IDEMPOTENCY_HEADER, MAX_PATH_PARAM_LENGTH, OPERATIONS, Operation, body_required
from chalicelib.api.schemas import ErrorResponse

BASE_PATH = "/v1"
_PATH_PARAM = re.compile(r"{(\w+)}")

_ERROR_TEXT = {
    400: "Invalid request (`invalid_request`); `details.fields` lists the offending fields.",
    401: "Missing, malformed, unknown or revoked key (`unauthorized`).",
    403: "The key lacks the scope (`forbidden`) or the tenant is suspended (`tenant_suspended`).",
    404: "Not found (`not_found`), including another tenant's objects.",
    409: "Conflict (`tenant_exists`, `member_exists` naming the existing member; coupons: `coupon_not_usable`, "
    "`coupon_code_exists`, `code_pool_not_used`; webhooks: `webhook_disabled`; partners: `partner_exists`; "
    "members: `card_code_taken` naming the holder; "
    "subscriptions: `subscription_active`, `period_not_contiguous`, `subscription_reference_exists`).",
    422: "Refused by the rules (`insufficient_points`, `idempotency_key_reused`, `amount_too_small`, "
    "`movement_too_large`, `balance_limit_exceeded`; reversals: `reversal_exceeds_earned`, "
    "`reversal_needs_points`; rewards: `reward_unavailable`, `out_of_stock`, `limit_reached`; "
    "enrolment: `unknown_referral_code`, `self_referral`).",
    500: "A bug (`internal_error`); it has been logged.",
    503: "Throttling or conflicts outlasted our retries (`retry_later`, `Retry-After: 1`); retry shortly.",
}
#: A 503 of an operation that takes an Idempotency-Key.
_RETRY_WITH_THE_KEY = (
    "Throttling or conflicts outlasted our retries (`retry_later`, `Retry-After: 1`); retry shortly with the same "
    "Idempotency-Key: it answers the first result if the attempt was applied after all."
)


def _error_statuses(op: Operation) -> list[int]:
    statuses = {500}
    if op.auth != "none":
        statuses.add(401)
    if op.auth == "tenant":
        statuses.update({403})
    statuses.add(400)  # every operation refuses unknown query parameters
    if _PATH_PARAM.search(op.path) or op.idempotency_key:
        statuses.add(404)
    if op.operation_id in {
        "create_tenant",
        "create_member",
        "upload_reward_codes",
        "use_coupon",
        "cancel_coupon",
        "redeliver_webhook_delivery",
        "create_partner",
        "update_member",  # card_code_taken
    }:
        statuses.add(409)
    if op.operation_id == "create_member":  # unknown_referral_code, self_referral
        statuses.add(422)
    if op.operation_id in ("create_api_key", "preview"):  # a partner key naming an unknown partner; a member_id
        statuses.add(404)
    if op.idempotency_key or op.optional_idempotency_key:  # idempotency_key_reused
        statuses.update({422, 503})
    if op.auth != "none":  # its key (or integration) is read from DynamoDB, which may stay throttled
        statuses.add(503)
    if op.operation_id in _INTAKE_OPERATIONS:  # order events: not paid yet, replays of other content, rules
        statuses.update({403, 404, 409, 422, 503})
    if op.operation_id == "record_subscription":  # another plan running, a gap, a reference recorded
        statuses.add(409)
    return sorted(statuses)


#: Operations that turn a shop's order events into movements (chalicelib.api.commerce).
_INTAKE_OPERATIONS = {"take_order_event", "receive_shopify_webhook"}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
        if op.query is not None:
            models.append((op.query, "validation"))
    refs, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = schema.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": _parameters(op, components, refs),
            "responses": _responses(op, refs),
        }
        if op.auth == "tenant":
            operation["security"] = [{"apiKey": []}]
            operation["x-required-scope"] = str(op.scope)
        elif op.auth == "operator":
            operation["security"] = [{"operatorKey": []}]
        elif op.auth == "signature":
            operation["security"] = [{"shopifyHmac": []}]
        else:
            operation["security"] = []
        if op.body is not None:
            content: dict[str, Any] = {"application/json": {"schema": refs[(op.body, "validation")]}}
            for media in op.request_media:
                if media != "application/json":
                    content[media] = {"schema": {"type": "string", "minLength": 1}}
            # Without a required field, no body stands for {}.
            operation["requestBody"] = {"required": body_required(op.body), "content": content}
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
                "shopifyHmac": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Shopify-Hmac-Sha256",
                    "description": "Base64 HMAC-SHA256 of the raw body under the integration's shared secret.",
                },
            },
        },
    }


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
        ref = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        query_schema = components[ref]
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return parameters


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    elif op.response_media != "application/json":
        success["content"] = {op.response_media: {"schema": {"type": "string"}}}
    if op.response_headers:
        success["headers"] = {
            name: {"description": text, "required": False, "schema": {"type": "string"}}
            for name, text in op.response_headers
        }
    responses: dict[str, Any] = {str(op.status): success}
    error_ref = refs[(ErrorResponse, "serialization")]
    for status in _error_statuses(op):
        text = _RETRY_WITH_THE_KEY if status == 503 and op.idempotency_key else _ERROR_TEXT[status]
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": error_ref}},
        }
    return responses
