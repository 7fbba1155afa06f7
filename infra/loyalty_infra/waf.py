"""The WAF web ACL on the API's stage: request size at the edge, answered with the app's own
400 for an oversized body (chalicelib/api/routing.py).

The function refuses bodies over ``max_body_bytes`` with a 400, but only bodies it
receives: Lambda takes at most 6 MB, so a body between 6 and 10 MB (API Gateway's own
limit) would fail the integration, a 5xx for bad input. The web ACL refuses every body over
the limit before API Gateway passes it on. API Gateway lets WAF inspect the first 16 KB of a
body; ``OversizeHandling: MATCH`` counts a longer body as over.

``POST .../imports`` (a CSV file, up to ``max_import_body_bytes``) is exempt from that rule;
WAF cannot measure a body that long, so a second rule refuses an import whose
``Content-Length`` is over its limit (a regular expression on the header's digits), with
the function's own 400 for that limit."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, CfnResource, Fn
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from .api import acknowledge_rest_api_stage, rest_api_stage
from .stages import StageSettings

_NO_TRANSFORMATION = [wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")]


def body_too_large(limit: int) -> dict[str, Any]:
    """What the function answers for a body over ``limit`` (chalicelib/api/routing.py),
    which the web ACL answers instead for bodies Lambda would never receive."""
    return {
        "error": {
            "code": "invalid_request",
            "message": f"the request body exceeds {limit} bytes",
            "details": {"fields": [{"path": "body", "message": f"larger than {limit} bytes", "type": "too_long"}]},
        }
    }


def integer_above(limit: int) -> str:
    """A regular expression matching exactly the decimal integers greater than ``limit``
    (no sign, no leading zero): more digits, or as many with a greater prefix."""
    digits = str(limit)
    alternatives = [f"[1-9][0-9]{{{len(digits)},}}"]
    for index, digit in enumerate(digits):
        if digit == "9":
            continue
        rest = len(digits) - index - 1
        higher = f"[{int(digit) + 1}-9]" if int(digit) < 8 else "9"
        alternatives.append(digits[:index] + higher + (f"[0-9]{{{rest}}}" if rest else ""))
    return "^(" + "|".join(alternatives) + ")$"


def _all_of(*statements: wafv2.CfnWebACL.StatementProperty) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        and_statement=wafv2.CfnWebACL.AndStatementProperty(statements=list(statements))
    )


def _byte_match(
    field: wafv2.CfnWebACL.FieldToMatchProperty, constraint: str, text: str
) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=field,
            positional_constraint=constraint,
            search_string=text,
            text_transformations=_NO_TRANSFORMATION,
        )
    )


def _blocking_rule(
    acl_name: str, name: str, priority: int, statement: wafv2.CfnWebACL.StatementProperty
) -> wafv2.CfnWebACL.RuleProperty:
    """Rule ``name`` answers a match with a 400 whose body is the custom body ``name``."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        statement=statement,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(response_code=400, custom_response_body_key=name)
            )
        ),
        visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True,
            metric_name=f"{acl_name}-{name}",
            sampled_requests_enabled=False,
        ),
    )


def web_acl(scope: Construct, stage: StageSettings, rest_api: CfnResource) -> wafv2.CfnWebACL:
    """The web ACL, associated with SAM's stage of ``rest_api``."""
    name = f"{stage.resource_prefix}-api"
    limit = stage.max_body_bytes
    import_limit = stage.max_import_body_bytes
    if limit > 16_384:
        raise ValueError("LOYALTY_MAX_BODY_BYTES above 16 KB needs a larger WAF body inspection limit")
    if not limit < import_limit <= 5_500_000:
        # Lambda takes a 6 MB event, and the body travels JSON-escaped inside it.
        raise ValueError("LOYALTY_MAX_IMPORT_BODY_BYTES must be above the body limit and at most 5.5 MB")
    import_route = _all_of(
        _byte_match(wafv2.CfnWebACL.FieldToMatchProperty(method={}), "EXACTLY", "POST"),
        _byte_match(wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}), "ENDS_WITH", "/imports"),
    )
    body_over_limit = wafv2.CfnWebACL.StatementProperty(
        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
            ),
            comparison_operator="GT",
            size=limit,
            text_transformations=_NO_TRANSFORMATION,
        )
    )
    length_over_import_limit = wafv2.CfnWebACL.StatementProperty(
        regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": "content-length"}),
            regex_string=integer_above(import_limit),
            text_transformations=_NO_TRANSFORMATION,
        )
    )
    acl = wafv2.CfnWebACL(
        scope,
        "ApiWebAcl",
        name=name,
        description=f"Request size limit of the {stage.name} API",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        association_config=wafv2.CfnWebACL.AssociationConfigProperty(
            request_body={
                "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                    default_size_inspection_limit="KB_16"
                )
            }
        ),
        custom_response_bodies={
            "body-too-large": wafv2.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=json.dumps(body_too_large(limit))
            ),
            "import-too-large": wafv2.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=json.dumps(body_too_large(import_limit))
            ),
        },
        rules=[
            _blocking_rule(
                name,
                "body-too-large",
                0,
                _all_of(
                    body_over_limit,
                    wafv2.CfnWebACL.StatementProperty(
                        not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=import_route)
                    ),
                ),
            ),
            _blocking_rule(name, "import-too-large", 1, _all_of(import_route, length_over_import_limit)),
        ],
        visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
        ),
    )
    association = wafv2.CfnWebACLAssociation(
        scope,
        "ApiWebAclAssociation",
        web_acl_arn=acl.attr_arn,
        resource_arn=Fn.join(
            "",
            [
                f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/restapis/",
                rest_api.ref,
                "/stages/",
                rest_api_stage(),
            ],
        ),
    )
    acknowledge_rest_api_stage(association)
    return acl
