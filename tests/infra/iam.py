"""Reading the synthesised IAM policy as AWS would evaluate it, for one concrete account.

CloudFormation intrinsics in ARNs are rendered for a fixed partition, region and account;
references to this template's tables, queues, log groups and event buses become their real
ARNs; a KMS key's ARN (its id is chosen by KMS at deploy time) is ``key/<its logical id>``.
A statement matches an action and a resource with IAM's wildcard rules (``*`` any run of
characters, ``/`` and ``:`` included; ``?`` one character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "111122223333"


def arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{resource}"


def key_arn(logical_id: str) -> str:
    """The stand-in ARN of the template's KMS key ``logical_id``."""
    return arn("kms", f"key/{logical_id}")


def _attribute_arn(template: dict[str, Any], logical_id: str, attribute: str) -> str:
    resource = template["Resources"][logical_id]
    properties = resource.get("Properties", {})
    kind = resource["Type"]
    if attribute != "Arn":
        raise AssertionError(f"unexpected Fn::GetAtt {logical_id}.{attribute} in a policy")
    if kind == "AWS::DynamoDB::Table":
        return arn("dynamodb", f"table/{properties['TableName']}")
    if kind == "AWS::SQS::Queue":
        return arn("sqs", properties["QueueName"])
    if kind == "AWS::Logs::LogGroup":
        return arn("logs", f"log-group:{properties['LogGroupName']}:*")
    if kind == "AWS::KMS::Key":
        return key_arn(logical_id)
    if kind == "AWS::Events::EventBus":
        return arn("events", f"event-bus/{properties['Name']}")
    raise AssertionError(f"unexpected Fn::GetAtt of a {kind} in a policy")


def render(value: Any, template: dict[str, Any]) -> str:
    """A policy value as the string AWS would see in account ``ACCOUNT``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(render(part, template) for part in parts)
        if function == "Ref":
            pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            if argument in pseudo:
                return pseudo[argument]
            referenced = template["Resources"].get(argument, {})
            if referenced.get("Type") == "AWS::SSM::Parameter":
                return referenced["Properties"]["Name"]
            raise AssertionError(f"unexpected Ref {argument} in a policy")
        if function == "Fn::GetAtt":
            return _attribute_arn(template, *argument)
    raise AssertionError(f"unexpected policy value {value!r}")


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text), re.DOTALL)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    document: str
    #: The logical id of the role holding it.
    role: str = ""
    #: The statement's ``Condition`` block, as written (empty: none).
    conditions: dict[str, Any] = field(default_factory=dict)

    def matches(self, action: str, resource: str, context: dict[str, list[str]] | None = None) -> bool:
        return (
            any(_pattern(a.lower()).fullmatch(action.lower()) for a in self.actions)
            and any(_pattern(r).fullmatch(resource) for r in self.resources)
            and self._conditions_hold(context or {})
        )

    def _conditions_hold(self, context: dict[str, list[str]]) -> bool:
        """The conditions this helper knows, evaluated as IAM does: ``ForAllValues`` holds
        for a key the request does not carry (an empty set), so a request described
        without it is allowed, never refused, by such a statement; ``Null`` "false" holds
        only for a key the request carries (with a value), "true" only for one it does not."""
        for operator, keys in self.conditions.items():
            for key, expected in keys.items():
                values = context.get(key, [])
                if operator == "ForAllValues:StringLike":
                    if not all(any(_pattern(p).fullmatch(v) for p in _listed(expected)) for v in values):
                        return False
                elif operator == "ForAllValues:StringEquals":
                    if not all(v in _listed(expected) for v in values):
                        return False
                elif operator == "Null":
                    if expected not in ("true", "false"):
                        raise AssertionError(f"Null condition on {key} expects 'true' or 'false', not {expected!r}")
                    if (expected == "true") != (not values):
                        return False
                else:
                    raise AssertionError(f"condition operator {operator} is not modelled by tests/infra/iam.py")
        return True


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role: str | None = None) -> list[Statement]:
    """Every statement of every IAM role in the template (inline policies), or of one role
    (its logical id)."""
    statements = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role" or role not in (None, logical_id):
            continue
        for policy in resource["Properties"].get("Policies", []):
            for raw in policy["PolicyDocument"]["Statement"]:
                assert "NotAction" not in raw and "NotResource" not in raw, raw
                statements.append(
                    Statement(
                        sid=raw.get("Sid", ""),
                        effect=raw["Effect"],
                        actions=tuple(_listed(raw["Action"])),
                        resources=tuple(render(r, template) for r in _listed(raw["Resource"])),
                        document=policy["PolicyName"],
                        role=logical_id,
                        conditions=raw.get("Condition", {}),
                    )
                )
    return statements


def allowed(
    statements: list[Statement], action: str, resource: str, *, context: dict[str, list[str]] | None = None
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` to a request carrying
    the condition keys in ``context`` (e.g. ``{"dynamodb:LeadingKeys": ["TENANT#acme"]}``)."""
    return any(s.effect == "Allow" and s.matches(action, resource, context) for s in statements)
