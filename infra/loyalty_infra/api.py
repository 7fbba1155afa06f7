"""The REST API Chalice defines (SAM's ``RestAPI``), as deployed per stage: its name, X-Ray,
stage throttling, a usage plan, and gateway responses (API Gateway's own errors) in the
API's error shape. The web ACL in front of it is waf.py."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Fn, Validations
from aws_cdk import aws_apigateway as apigateway
from constructs import Construct

from .functions import ChaliceApp
from .stages import StageSettings

REST_API = "RestAPI"
#: API Gateway's own answers (before or instead of the function), in the API's error shape:
#: response type -> (status, or None to keep API Gateway's, error code, message, extra
#: headers). ``$context.error.messageString`` is API Gateway's message, already quoted.
GATEWAY_RESPONSES: dict[str, tuple[int | None, str, str | None, dict[str, str]]] = {
    "DEFAULT_4XX": (None, "invalid_request", None, {}),
    "DEFAULT_5XX": (None, "internal_error", None, {}),
    # Our keys are checked by the function, so these come only from API Gateway itself.
    "UNAUTHORIZED": (401, "unauthorized", None, {"WWW-Authenticate": "'Bearer realm=\"loyalty\"'"}),
    "ACCESS_DENIED": (403, "forbidden", None, {}),
    "WAF_FILTERED": (403, "forbidden", None, {}),
    # A path or method the API does not have: API Gateway says 403 "Missing Authentication Token".
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found", "no such route: see GET /v1/openapi.json", {}),
    "RESOURCE_NOT_FOUND": (404, "not_found", None, {}),
    "THROTTLED": (429, "throttled", "too many requests; retry shortly", {"Retry-After": "'1'"}),
    "QUOTA_EXCEEDED": (429, "throttled", "request quota exceeded", {"Retry-After": "'60'"}),
    "REQUEST_TOO_LARGE": (413, "invalid_request", "the request exceeds API Gateway's 10 MB limit", {}),
    "INTEGRATION_TIMEOUT": (
        504,
        "retry_later",
        "the request timed out; retry it (with the same Idempotency-Key for a point movement)",
        {"Retry-After": "'1'"},
    ),
}


def api_name(stage: StageSettings) -> str:
    """The API's per-stage name, which the AWS/ApiGateway metrics are keyed by."""
    return stage.resource_prefix


def rest_api_stage() -> str:
    """SAM's reference to the stage its transform creates for the API: the stage's name, and
    a dependency on it (what refers to it cannot be created before the stage)."""
    return Fn.ref(f"{REST_API}.Stage")


def acknowledge_rest_api_stage(construct: Construct) -> None:
    """``rest_api_stage()`` is not a resource of the template until the SAM transform runs."""
    Validations.of(construct).acknowledge(
        Acknowledgment(
            id="CloudFormation-Validate::F1020",
            reason="RestAPI.Stage is SAM's reference to the stage its transform creates; the CDK's own "
            "validation runs before the transform (cfn-lint, which applies it, resolves the reference).",
        )
    )


def gateway_responses() -> dict[str, dict[str, Any]]:
    """``x-amazon-apigateway-gateway-responses``: every one a JSON body
    ``{"error": {"code", "message", "details": {"request_id"}}}``, like the function's."""
    responses = {}
    for response_type, (status, code, message, headers) in GATEWAY_RESPONSES.items():
        text = json.dumps(message) if message is not None else "$context.error.messageString"
        template = (
            f'{{"error": {{"code": "{code}", "message": {text}, "details": {{"request_id": "$context.requestId"}}}}}}'
        )
        response: dict[str, Any] = {
            "responseTemplates": {"application/json": template},
            "responseParameters": {
                f"gatewayresponse.header.{name}": value
                for name, value in {"Cache-Control": "'no-store'", **headers}.items()
            },
        }
        if status is not None:
            response["statusCode"] = str(status)
        responses[response_type] = response
    return responses


def configure_rest_api(app: ChaliceApp, stage: StageSettings) -> CfnResource:
    api = app.resource(REST_API)
    # A per-stage name (Chalice names every stage's API after the app): the
    # AWS/ApiGateway metrics the alarms watch are keyed by it.
    api.add_property_override("Name", api_name(stage))
    api.add_property_override("DefinitionBody.info.title", api_name(stage))
    api.add_property_override("TracingEnabled", True)
    api.add_property_override(
        "MethodSettings",
        [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": stage.throttling_rate_limit,
                "ThrottlingBurstLimit": stage.throttling_burst_limit,
            }
        ],
    )
    # API Gateway's own refusals (no route, throttling, a body over 10 MB, a crashed or
    # timed-out function...) in the API's error shape, as JSON. Part of the API's
    # definition, so each deployment carries them.
    api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses())
    return api


def usage_plan(scope: Construct, stage: StageSettings, rest_api: CfnResource) -> apigateway.CfnUsagePlan:
    """The stage's default throttling, as a usage plan. API Gateway applies a plan per
    API Gateway API key; tenant keys are the app's own (a bearer token checked by the
    function), so the stage throttling (``configure_rest_api``) is what limits every caller.
    The plan is where per-client limits go for clients given API Gateway keys."""
    plan = apigateway.CfnUsagePlan(
        scope,
        "UsagePlan",
        usage_plan_name=f"{stage.resource_prefix}-default",
        description=f"Default throttling of the {stage.name} API (per API Gateway key)",
        api_stages=[apigateway.CfnUsagePlan.ApiStageProperty(api_id=rest_api.ref, stage=rest_api_stage())],
        throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
            rate_limit=stage.throttling_rate_limit, burst_limit=stage.throttling_burst_limit
        ),
    )
    acknowledge_rest_api_stage(plan)
    return plan
