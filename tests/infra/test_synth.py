"""The synthesised CloudFormation of every deployed stage: IAM above all, then the
resources, cfn-lint and cdk-nag. Offline: one `cdk synth` per session (conftest)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.persistence.control import _key_pk, _tenant_pk
from tests.infra.conftest import ROOT, STAGES, Synthesis
from tests.infra.iam import ACCOUNT, REGION, allowed, arn, key_arn, role_statements

PREFIX = {"dev": "loyalty-dev", "prod": "loyalty-prod"}
OTHER = {"dev": "prod", "prod": "dev"}
ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
)
#: Table-level actions: the provisioning function's, and no other function's.
TABLE_ACTIONS = (
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:ListTagsOfResource",
    "dynamodb:TagResource",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
)
#: Nobody's.
NEVER = (
    "dynamodb:DeleteTable",
    "dynamodb:Scan",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:UntagResource",
    "iam:PassRole",
    "sqs:PurgeQueue",
    "ssm:PutParameter",
    "ssm:GetParametersByPath",
)
#: The function that provisions tenant tables (chalicelib/jobs/provisioning.py).
PROVISIONING = "ProvisionTenant"
#: The webhook functions (chalicelib/jobs/webhooks.py): the queue consumer and the schedule.
DELIVER, DISPATCH = "DeliverWebhooks", "DispatchWebhooks"
#: Every queue of a stage, by suffix of ``loyalty-<stage>-``; the dead-letter queues are
#: these with ``-dlq``.
QUEUES = ("jobs", "provisioning", "deliveries")


def table(name: str) -> str:
    return arn("dynamodb", f"table/{name}")


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value["Properties"] for key, value in resources_of(template, "AWS::Serverless::Function").items()}


def the_resource(template: dict[str, Any], kind: str) -> str:
    """The logical id of the template's only resource of this type."""
    (logical_id,) = resources_of(template, kind)
    return logical_id


def kms_context(**context: str) -> dict[str, list[str]]:
    """The condition keys of a KMS request made with this encryption context."""
    return {
        "kms:EncryptionContextKeys": sorted(context),
        **{f"kms:EncryptionContext:{key}": [value] for key, value in context.items()},
    }


# --- synthesis ---------------------------------------------------------------------------


def test_cdk_synth_produces_both_stages_offline_with_cdk_nag(synthesis: Synthesis) -> None:
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    stacks = {
        key: artifact["properties"]["stackName"]
        for key, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"dev": "loyalty-dev", "prod": "loyalty-prod"}
    # Environment-agnostic: nothing was looked up in an account.
    assert all(manifest["artifacts"][key]["environment"] == "aws://unknown-account/unknown-region" for key in stacks)
    assert not (ROOT / "infra" / "cdk.context.json").exists()
    # cdk-nag ran as a validation plugin: a finding would have failed the synthesis.
    report = json.loads((synthesis.outdir / "validation-report.json").read_text())
    assert all(plugin.get("summary", {}).get("status") != "failure" for plugin in report["pluginReports"])
    # Chalice packaged the app offline from the prebuilt package (no pip download).
    assert "Reusing existing deployment package" in synthesis.output
    print(f"\ncdk synth (both stages): {synthesis.seconds:.1f} s")


def test_the_deployment_package_is_the_app_and_its_pinned_runtime_dependencies(
    synthesis: Synthesis, templates: dict[str, dict[str, Any]]
) -> None:
    keys = {props["CodeUri"]["Key"] for t in templates.values() for props in functions(t).values()}
    assert len(keys) == 1, keys  # one package for every function of both stages
    with zipfile.ZipFile(synthesis.outdir / f"asset.{keys.pop()}") as package:
        names = set(package.namelist())
    assert {"app.py", "chalice/app.py", "chalicelib/__init__.py", "chalicelib/services.py"} <= names
    assert any(n.startswith("pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu") for n in names)
    installed = {n.split("/")[0].lower() for n in names if n.split("/")[0].endswith(".dist-info")}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            assert f"{re.sub(r'[-.]', '_', name.lower())}-{version}.dist-info" in installed, line
    # Development and deployment tooling never ships.
    tooling = ("pytest", "moto", "aws_cdk", "cdk_nag", "cfnlint", "jsii", "pip", "hypothesis")
    for tool in (*tooling, "tests", "infra", "bench", "devtools"):
        assert not any(n.split("/")[0] == tool for n in names), tool


# --- IAM ---------------------------------------------------------------------------------


def roles(template: dict[str, Any]) -> dict[str, str]:
    """The roles by purpose: "functions" (the API and the jobs) and "provisioning"."""
    found = {}
    for logical_id in resources_of(template, "AWS::IAM::Role"):
        purpose = "provisioning" if logical_id.startswith("ProvisioningRole") else "functions"
        assert logical_id.startswith({"functions": "FunctionRole", "provisioning": "ProvisioningRole"}[purpose])
        found[purpose] = logical_id
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_two_roles_inline_statements_only_and_only_provisioning_has_the_provisioning_role(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    template = templates[stage]
    by_purpose = roles(template)
    assert set(by_purpose) == {"functions", "provisioning"}
    for role in resources_of(template, "AWS::IAM::Role").values():
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]
        assert "ManagedPolicyArns" not in role["Properties"]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert not resources_of(template, kind), kind
    assert PROVISIONING in functions(template) and "APIHandler" in functions(template)
    for name, props in functions(template).items():
        expected = by_purpose["provisioning" if name == PROVISIONING else "functions"]
        assert props["Role"] == {"Fn::GetAtt": [expected, "Arn"]}, name
        # No SAM policy templates or managed policies: they would add statements.
        assert "Policies" not in props and "PermissionsBoundary" not in props, name


@pytest.mark.parametrize("stage", STAGES)
def test_no_wildcard_table_access_only_the_stage_prefix(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    statements = role_statements(templates[stage])
    prefix = PREFIX[stage]
    tenant = table(f"{prefix}-tenant-")
    control = table(f"{prefix}-control")
    for statement in statements:
        assert statement.effect == "Allow"
        for action in statement.actions:
            assert "*" not in action and "?" not in action, statement
        for resource in statement.resources:
            if resource == "*":
                assert set(statement.actions) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, statement
                continue
            if resource.startswith(arn("dynamodb", "")):
                assert resource in {control, f"{control}/index/gsi1"} or (
                    resource.startswith(tenant) and resource.index("*") == len(tenant)
                ), resource
            else:
                logs = resource.endswith(":*") and resource.startswith(arn("logs", "log-group:/aws/lambda/"))
                assert "*" not in resource or logs, resource


@pytest.mark.parametrize("stage", STAGES)
def test_tenant_table_access_is_limited_to_the_stages_own_prefix(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    statements = role_statements(templates[stage], roles(templates[stage])["functions"])
    prefix, other = PREFIX[stage], PREFIX[OTHER[stage]]
    for action in ITEM_ACTIONS:
        assert allowed(statements, action, table(f"{prefix}-tenant-acme"))
        assert allowed(statements, action, table(f"{prefix}-tenant-acme") + "/index/gsi1")
        assert allowed(statements, action, table(f"{prefix}-control"))
        assert allowed(statements, action, table(f"{prefix}-control") + "/index/gsi1")
        for foreign in (
            table(f"{other}-tenant-acme"),
            table(f"{other}-control"),
            table(f"{prefix}-acme"),
            table(f"{prefix}2-tenant-acme"),
            table(f"x{prefix}-tenant-acme"),
            table("orders"),
            arn("dynamodb", f"table/{prefix}-tenant-acme").replace(ACCOUNT, "444455556666"),
            arn("dynamodb", f"table/{prefix}-tenant-acme").replace(REGION, "us-east-1"),
        ):
            assert not allowed(role_statements(templates[stage]), action, foreign), (action, foreign)
    for forbidden in ("dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:ExportTableToPointInTime"):
        assert not allowed(role_statements(templates[stage]), forbidden, table(f"{prefix}-tenant-acme")), forbidden


@pytest.mark.parametrize("stage", STAGES)
def test_only_the_provisioning_role_may_create_or_change_tables_and_only_under_the_tenant_prefix(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    template = templates[stage]
    by_purpose = roles(template)
    api = role_statements(template, by_purpose["functions"])
    provisioning = role_statements(template, by_purpose["provisioning"])
    prefix, other = PREFIX[stage], PREFIX[OTHER[stage]]
    tenant, control = table(f"{prefix}-tenant-acme"), table(f"{prefix}-control")
    # The API and job functions: no table-level action anywhere (they only ask, through the queue)
    for action in TABLE_ACTIONS:
        for resource in (tenant, control, table(f"{other}-tenant-acme"), "*"):
            assert not allowed(api, action, resource), (action, resource)
    # The provisioning function: every table-level action it needs, on this stage's tenant tables only
    for action in TABLE_ACTIONS:
        assert allowed(provisioning, action, tenant), action
        for resource in (control, table(f"{other}-tenant-acme"), table("orders"), table(f"{prefix}-acme")):
            assert not allowed(provisioning, action, resource), (action, resource)
    # ... reading and updating tenants' registry items (keys as the repository writes them),
    # not an API key's item, and not one item of a tenant table
    tenant_item = {"dynamodb:LeadingKeys": [_tenant_pk("acme")]}
    key_item = {"dynamodb:LeadingKeys": [_key_pk("key_01JD0000000000000000000000")]}
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert allowed(provisioning, action, control, context=tenant_item), action
        assert not allowed(provisioning, action, control, context=key_item), action
        assert allowed(api, action, control, context=key_item), action  # the API's own reads and writes
    for action in ITEM_ACTIONS:
        assert not allowed(provisioning, action, tenant), action
        assert not allowed(provisioning, action, f"{control}/index/gsi1"), action
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"):
        assert not allowed(provisioning, action, control), action
    # Nobody deletes, restores or scans
    for action in NEVER:
        for resource in (tenant, control, "*"):
            assert not allowed(api + provisioning, action, resource), (action, resource)
    creating = [(s.role, s.sid, s.document) for s in api + provisioning if "dynamodb:CreateTable" in s.actions]
    assert creating == [(by_purpose["provisioning"], "TenantTableProvisioning", "tenant-table-provisioning")]


@pytest.mark.parametrize("stage", STAGES)
def test_queue_parameter_and_logs_are_the_stages_own(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    by_purpose = roles(template)
    api = role_statements(template, by_purpose["functions"])
    provisioning = role_statements(template, by_purpose["provisioning"])
    prefix = PREFIX[stage]
    queue, dead_letters = arn("sqs", f"{prefix}-jobs"), arn("sqs", f"{prefix}-jobs-dlq")
    requests, request_dead_letters = arn("sqs", f"{prefix}-provisioning"), arn("sqs", f"{prefix}-provisioning-dlq")
    deliveries, delivery_dead_letters = arn("sqs", f"{prefix}-deliveries"), arn("sqs", f"{prefix}-deliveries-dlq")
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allowed(api, action, queue), action
        assert not allowed(provisioning, action, queue), action
        # Webhook work: the schedule and the API enqueue, deliver-webhooks consumes (one role)
        assert allowed(api, action, deliveries), action
        assert not allowed(provisioning, action, deliveries), action
        for statements in (api, provisioning):
            assert not allowed(statements, action, dead_letters), action
            assert not allowed(statements, action, request_dead_letters), action
            assert not allowed(statements, action, delivery_dead_letters), action
            assert not allowed(statements, action, arn("sqs", f"{PREFIX[OTHER[stage]]}-deliveries")), action
            assert not allowed(statements, action, arn("sqs", "loyalty-deliveries")), action
            assert not allowed(statements, action, arn("sqs", f"{PREFIX[OTHER[stage]]}-jobs")), action
            assert not allowed(statements, action, arn("sqs", f"{PREFIX[OTHER[stage]]}-provisioning")), action
            assert not allowed(statements, action, arn("sqs", "loyalty-jobs")), action
    # The API only sends provisioning requests; the provisioning function only consumes them
    assert allowed(api, "sqs:SendMessage", requests)
    assert not allowed(provisioning, "sqs:SendMessage", requests)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"):
        assert allowed(provisioning, action, requests), action
        assert not allowed(api, action, requests), action
    parameter = arn("ssm", f"parameter/loyalty/{stage}/operator-key-sha256")
    assert allowed(api, "ssm:GetParameter", parameter)
    assert not allowed(provisioning, "ssm:GetParameter", parameter)
    other_parameter = arn("ssm", f"parameter/loyalty/{OTHER[stage]}/operator-key-sha256")
    assert not allowed(api + provisioning, "ssm:GetParameter", other_parameter)
    for name, function in functions(template).items():
        group = arn("logs", f"log-group:/aws/lambda/{function['FunctionName']}:log-stream:2026/11/23/[$LATEST]abc")
        assert allowed(provisioning if name == PROVISIONING else api, "logs:PutLogEvents", group), name
        assert not allowed(api if name == PROVISIONING else provisioning, "logs:PutLogEvents", group), name
    everyone = api + provisioning
    assert not allowed(everyone, "logs:PutLogEvents", arn("logs", "log-group:/aws/lambda/other:log-stream:x"))
    assert not allowed(everyone, "logs:CreateLogGroup", arn("logs", f"log-group:/aws/lambda/{prefix}-APIHandler"))


@pytest.mark.parametrize("stage", STAGES)
def test_sqs_send_only_to_the_stages_own_queues(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    own = {arn("sqs", f"{PREFIX[stage]}-{queue}") for queue in QUEUES}
    sending = [s for s in role_statements(template) if "sqs:SendMessage" in s.actions]
    assert sending
    for statement in sending:
        assert set(statement.resources) <= own, statement
    everyone = role_statements(template)
    for queue in QUEUES:
        assert allowed(everyone, "sqs:SendMessage", arn("sqs", f"{PREFIX[stage]}-{queue}")), queue
        for foreign in (
            arn("sqs", f"{PREFIX[stage]}-{queue}-dlq"),
            arn("sqs", f"{PREFIX[OTHER[stage]]}-{queue}"),
            arn("sqs", f"loyalty-{queue}"),  # the name fixed in the app
            arn("sqs", f"{PREFIX[stage]}-{queue}").replace(ACCOUNT, "444455556666"),
            arn("sqs", f"{PREFIX[stage]}-{queue}").replace(REGION, "us-east-1"),
            arn("sqs", f"{PREFIX[stage]}-{queue}x"),
        ):
            assert not allowed(everyone, "sqs:SendMessage", foreign), foreign
    for never in ("sqs:PurgeQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:CreateQueue"):
        for queue in QUEUES:
            assert not allowed(everyone, never, arn("sqs", f"{PREFIX[stage]}-{queue}")), never


@pytest.mark.parametrize("stage", STAGES)
def test_webhook_secrets_key_only_that_key_only_under_the_webhook_encryption_context(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    """chalicelib/integrations/kms.py seals each secret with Encrypt (KeyId: the stage's key)
    and opens it with Decrypt, always with the context {tenant_id, webhook_id}
    (chalicelib/domain/webhooks.py)."""
    template = templates[stage]
    by_purpose = roles(template)
    api = role_statements(template, by_purpose["functions"])
    provisioning = role_statements(template, by_purpose["provisioning"])
    key = key_arn(the_resource(template, "AWS::KMS::Key"))
    webhook = kms_context(tenant_id="acme", webhook_id="wh_01JD0000000000000000000000")
    for action in ("kms:Encrypt", "kms:Decrypt"):
        assert allowed(api, action, key, context=webhook), action
        # Not without the context, nor with part of it, nor with anything more
        for context in (
            {},
            kms_context(tenant_id="acme"),
            kms_context(webhook_id="wh_1"),
            kms_context(tenant_id="acme", webhook_id="wh_1", purpose="other"),
            kms_context(tenant="acme", webhook="wh_1"),
        ):
            assert not allowed(api, action, key, context=context), (action, context)
        # Not with another key (another stage's, an AWS-managed one, any other), nor by alias
        for other in (
            key_arn("SomeOtherKey"),
            key.replace(ACCOUNT, "444455556666"),
            key.replace(REGION, "us-east-1"),
            arn("kms", f"alias/loyalty-{stage}-webhooks"),
            arn("kms", "key/*"),
            "*",
        ):
            assert not allowed(api, action, other, context=webhook), (action, other)
        assert not allowed(provisioning, action, key, context=webhook), action
    # Nothing else on the key, and no key or alias management anywhere
    for action in (
        "kms:CreateKey",
        "kms:CreateAlias",
        "kms:ListAliases",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:PutKeyPolicy",
        "kms:CreateGrant",
    ):
        for resource in (key, "*", arn("kms", f"alias/loyalty-{stage}-webhooks")):
            assert not allowed(api + provisioning, action, resource, context=webhook), (action, resource)
    kms = [s for s in api + provisioning if any(a.startswith("kms:") for a in s.actions)]
    assert [(s.sid, set(s.actions), s.resources) for s in kms] == [
        ("WebhookSecrets", {"kms:Encrypt", "kms:Decrypt"}, (key,))
    ]
    # What the code sends, deployed: the key's ARN (never the local alias it would create)
    for name, props in functions(template).items():
        assert props["Environment"]["Variables"]["LOYALTY_WEBHOOK_KMS_KEY_ID"] == {
            "Fn::GetAtt": [the_resource(template, "AWS::KMS::Key"), "Arn"]
        }, name


@pytest.mark.parametrize("stage", STAGES)
def test_put_events_only_on_the_stages_own_bus(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    by_purpose = roles(template)
    api = role_statements(template, by_purpose["functions"])
    provisioning = role_statements(template, by_purpose["provisioning"])
    bus = arn("events", f"event-bus/loyalty-{stage}")
    assert allowed(api, "events:PutEvents", bus)
    assert not allowed(provisioning, "events:PutEvents", bus)
    for other in (
        arn("events", "event-bus/default"),
        arn("events", f"event-bus/loyalty-{OTHER[stage]}"),
        arn("events", f"event-bus/loyalty-{stage}x"),
        bus.replace(ACCOUNT, "444455556666"),
        bus.replace(REGION, "us-east-1"),
        "*",
    ):
        assert not allowed(api + provisioning, "events:PutEvents", other), other
    for action in ("events:PutRule", "events:PutTargets", "events:DeleteEventBus", "events:PutPermission"):
        assert not allowed(api + provisioning, action, bus), action
    events = [s for s in api + provisioning if any(a.startswith("events:") for a in s.actions)]
    assert [(s.sid, s.actions, s.resources) for s in events] == [("EventBus", ("events:PutEvents",), (bus,))]


def test_iam_statements_are_exactly_these(templates: dict[str, dict[str, Any]]) -> None:
    """The whole policy of prod, rendered for one account: a change to it shows up here."""
    template = templates["prod"]
    by_purpose = {role: purpose for purpose, role in roles(template).items()}
    rendered = sorted(
        (by_purpose[s.role], s.document, s.sid, tuple(sorted(s.actions)), tuple(sorted(s.resources)))
        for s in role_statements(template)
    )
    control = table("loyalty-prod-control")
    tenant = table("loyalty-prod-tenant-*")
    items = tuple(sorted(ITEM_ACTIONS))
    consumer = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")

    def log_groups(*names: str) -> tuple[str, ...]:
        return tuple(sorted(arn("logs", f"log-group:/aws/lambda/loyalty-prod-{name}:*") for name in names))

    xray = ("XRayTraces", ("xray:PutTelemetryRecords", "xray:PutTraceSegments"), ("*",))
    api_functions = [name for name in functions(template) if name != PROVISIONING]
    assert rendered == sorted(
        [
            ("functions", "data-access", "ControlTableItems", items, (control, f"{control}/index/gsi1")),
            ("functions", "data-access", "TenantTableItems", items, (tenant, f"{tenant}/index/*")),
            (
                "functions",
                "jobs-queue",
                "JobsQueue",
                tuple(sorted((*consumer, "sqs:SendMessage"))),
                (arn("sqs", "loyalty-prod-jobs"),),
            ),
            (
                "functions",
                "provisioning-requests",
                "ProvisioningRequests",
                ("sqs:SendMessage",),
                (arn("sqs", "loyalty-prod-provisioning"),),
            ),
            (
                "functions",
                "deliveries-queue",
                "DeliveriesQueue",
                tuple(sorted((*consumer, "sqs:SendMessage"))),
                (arn("sqs", "loyalty-prod-deliveries"),),
            ),
            (
                "functions",
                "webhook-secrets",
                "WebhookSecrets",
                ("kms:Decrypt", "kms:Encrypt"),
                (key_arn(the_resource(template, "AWS::KMS::Key")),),
            ),
            (
                "functions",
                "event-bus",
                "EventBus",
                ("events:PutEvents",),
                (arn("events", "event-bus/loyalty-prod"),),
            ),
            (
                "functions",
                "operator-key",
                "OperatorKeyDigest",
                ("ssm:GetParameter",),
                (arn("ssm", "parameter/loyalty/prod/operator-key-sha256"),),
            ),
            (
                "functions",
                "telemetry",
                "FunctionLogs",
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                log_groups(*api_functions),
            ),
            ("functions", "telemetry", *xray),
            (
                "provisioning",
                "tenant-registry",
                "TenantRegistry",
                ("dynamodb:GetItem", "dynamodb:UpdateItem"),
                (control,),
            ),
            ("provisioning", "tenant-table-provisioning", "TenantTableProvisioning", TABLE_ACTIONS, (tenant,)),
            (
                "provisioning",
                "provisioning-queue",
                "ProvisioningQueue",
                consumer,
                (arn("sqs", "loyalty-prod-provisioning"),),
            ),
            (
                "provisioning",
                "telemetry",
                "FunctionLogs",
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                log_groups(PROVISIONING),
            ),
            ("provisioning", "telemetry", *xray),
        ]
    )
    conditions = {s.sid: s.conditions for s in role_statements(template) if s.conditions}
    assert conditions == {
        "TenantRegistry": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TENANT#*"]}},
        "WebhookSecrets": {
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant_id", "webhook_id"]},
            "Null": {"kms:EncryptionContext:tenant_id": "false", "kms:EncryptionContext:webhook_id": "false"},
        },
    }


# --- resources ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_control_table(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    from aws_cdk.assertions import Match, Template  # a jsii runtime: not at collection

    template = Template.from_json(templates[stage])
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "TableName": f"{PREFIX[stage]}-control",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "gsi1",
                        "KeySchema": [
                            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
                "SSESpecification": {"SSEEnabled": True},
                "Tags": Match.array_with(
                    [{"Key": "app", "Value": "loyalty"}, {"Key": "component", "Value": "control-plane"}]
                ),
            },
        },
    )
    tags = next(iter(resources_of(templates[stage], "AWS::DynamoDB::Table").values()))["Properties"]["Tags"]
    assert {"Key": "stage", "Value": stage} in tags


@pytest.mark.parametrize("stage", STAGES)
def test_job_queue_with_dead_letter_queue(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    from aws_cdk.assertions import Template

    template = Template.from_json(templates[stage])
    queues = {p["Properties"]["QueueName"]: key for key, p in resources_of(templates[stage], "AWS::SQS::Queue").items()}
    assert set(queues) == {f"{PREFIX[stage]}-{queue}{dlq}" for queue in QUEUES for dlq in ("", "-dlq")}
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX[stage]}-jobs",
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": 180,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [queues[f"{PREFIX[stage]}-jobs-dlq"], "Arn"]},
                "maxReceiveCount": 5,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": f"{PREFIX[stage]}-jobs-dlq", "SqsManagedSseEnabled": True}
    )
    # The provisioning queue: a failed attempt is retried after 12 minutes (6x the function's
    # 120 s timeout), 10 times (about two hours of DynamoDB limits), then dead-lettered.
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX[stage]}-provisioning",
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": 720,
            "MessageRetentionPeriod": 14 * 24 * 3600,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [queues[f"{PREFIX[stage]}-provisioning-dlq"], "Arn"]},
                "maxReceiveCount": 10,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": f"{PREFIX[stage]}-provisioning-dlq", "SqsManagedSseEnabled": True}
    )
    # The webhook queue: a message that fails 5 times (storage failing: a failing endpoint
    # backs off on its own record) is dead-lettered; redelivered after 6 minutes (6x the
    # deliver-webhooks function's 60 s timeout).
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX[stage]}-deliveries",
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": 360,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [queues[f"{PREFIX[stage]}-deliveries-dlq"], "Arn"]},
                "maxReceiveCount": 5,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX[stage]}-deliveries-dlq",
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 1209600,
        },
    )
    # Every queue's visibility timeout is at least 6x its consumer's timeout (AWS's advice)
    timeouts = {name: props["Timeout"] for name, props in functions(templates[stage]).items()}
    visibility = {
        key: value["Properties"].get("VisibilityTimeout", 30)
        for key, value in resources_of(templates[stage], "AWS::SQS::Queue").items()
    }
    consumed = 0
    for name, props in functions(templates[stage]).items():
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "SQS":
                consumed += 1
                (queue_id, _) = event["Properties"]["Queue"]["Fn::GetAtt"]
                assert visibility[queue_id] >= 6 * timeouts[name], name
    assert consumed == len(QUEUES)
    # All refuse plain-HTTP requests.
    template.resource_count_is("AWS::SQS::QueuePolicy", 2 * len(QUEUES))
    for policy in resources_of(templates[stage], "AWS::SQS::QueuePolicy").values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("stage", STAGES)
def test_webhook_secrets_key_rotates_is_kept_and_has_the_stages_alias(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    template = templates[stage]
    key_id = the_resource(template, "AWS::KMS::Key")
    key = template["Resources"][key_id]
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"  # sealed secrets need it
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    assert props.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    assert props.get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
    assert props.get("Enabled", True) is True
    assert {"Key": "stage", "Value": stage} in props["Tags"]
    # The key policy only delegates to this account's IAM: the roles' statements decide
    (statement,) = props["KeyPolicy"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert statement["Principal"] == {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    }
    (alias,) = resources_of(template, "AWS::KMS::Alias").values()
    assert alias["Properties"] == {
        "AliasName": f"alias/loyalty-{stage}-webhooks",
        "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_owns_its_event_bus(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    (bus,) = resources_of(template, "AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == f"loyalty-{stage}"
    assert "EventSourceName" not in bus["Properties"]  # not a partner bus
    # Nothing in the stack puts rules on it: partners' rules are theirs (the only rules are
    # SAM's schedules, on the default bus)
    assert not resources_of(template, "AWS::Events::Rule")


@pytest.mark.parametrize("stage", STAGES)
def test_functions_are_configured_for_the_stage(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    queue_ids = {
        value["Properties"]["QueueName"]: key for key, value in resources_of(template, "AWS::SQS::Queue").items()
    }
    queue_id = queue_ids[f"{PREFIX[stage]}-jobs"]
    provisioning_queue_id = queue_ids[f"{PREFIX[stage]}-provisioning"]
    deliveries_queue_id = queue_ids[f"{PREFIX[stage]}-deliveries"]
    consumed = {PROVISIONING: provisioning_queue_id, DELIVER: deliveries_queue_id}
    key_id = the_resource(template, "AWS::KMS::Key")
    bus_id = the_resource(template, "AWS::Events::EventBus")
    parameter = next(iter(resources_of(template, "AWS::SSM::Parameter").values()))["Properties"]
    assert parameter["Name"] == f"/loyalty/{stage}/operator-key-sha256"
    assert parameter["Type"] == "String" and not re.fullmatch(r"[0-9a-f]{64}", parameter["Value"])
    groups = {
        value["Properties"]["LogGroupName"]: value["Properties"]["RetentionInDays"]
        for value in resources_of(template, "AWS::Logs::LogGroup").values()
    }
    assert "APIHandler" in functions(template)
    for name, props in functions(template).items():
        assert props["FunctionName"] == f"loyalty-{stage}-{name}"
        assert props["Tracing"] == "Active"
        assert props["Runtime"] == "python3.11"
        assert groups[f"/aws/lambda/loyalty-{stage}-{name}"] == {"dev": 30, "prod": 365}[stage]
        variables = props["Environment"]["Variables"]
        assert variables["LOYALTY_STAGE"] == stage
        assert variables["LOYALTY_TABLE_PREFIX"] == PREFIX[stage]
        assert variables["LOYALTY_OPERATOR_KEY_SSM_PARAMETER"] == parameter["Name"]
        assert variables["LOYALTY_JOBS_QUEUE_URL"] == {"Ref": queue_id}
        assert variables["LOYALTY_PROVISIONING_QUEUE_URL"] == {"Ref": provisioning_queue_id}
        assert variables["LOYALTY_DELIVERIES_QUEUE_URL"] == {"Ref": deliveries_queue_id}
        assert variables["LOYALTY_WEBHOOK_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert variables["LOYALTY_EVENT_BUS_NAME"] == {"Ref": bus_id}
        # The app's default source (`loyalty`); webhook URLs must be public https (no local mode)
        assert variables.get("LOYALTY_EVENT_BUS_SOURCE", "loyalty") == "loyalty"
        assert "LOYALTY_WEBHOOKS_LOCAL_MODE" not in variables
        assert "LOYALTY_KMS_ENDPOINT" not in variables and "LOYALTY_EVENTS_ENDPOINT" not in variables
        assert "LOYALTY_PROVISIONING_ASYNC" not in variables  # the real queue, not the tests' stand-in
        assert "LOYALTY_OPERATOR_KEY" not in variables and "LOYALTY_DYNAMODB_ENDPOINT" not in variables
        assert "POWERTOOLS_TRACE_DISABLED" not in variables
        assert props["Timeout"] == {PROVISIONING: 120, DELIVER: 60}.get(name, 29), name
        # Webhooks go out to the internet from the functions: no VPC (it would need a NAT gateway)
        assert "VpcConfig" not in props, name
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "SQS":  # the stage's own queue, not the name fixed in the app
                expected = consumed.get(name, queue_id)
                assert event["Properties"]["Queue"] == {"Fn::GetAtt": [expected, "Arn"]}, name
                assert event["Properties"]["BatchSize"] == 1, name
    # At most 5 tables provisioned at once: far below DynamoDB's 500 table operations in progress.
    (provisioning_event,) = functions(template)[PROVISIONING]["Events"].values()
    assert provisioning_event["Type"] == "SQS"
    assert provisioning_event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    # The webhook consumer reads its own queue one message at a time (one dispatch or drain)
    (deliver_event,) = functions(template)[DELIVER]["Events"].values()
    assert deliver_event["Type"] == "SQS"
    assert deliver_event["Properties"]["Queue"] == {"Fn::GetAtt": [deliveries_queue_id, "Arn"]}
    assert deliver_event["Properties"]["BatchSize"] == 1
    # The dispatch schedule is the app's: a SAM Schedule event, which the SAM transform
    # deploys as an EventBridge rule (default bus) invoking the function every minute
    (dispatch_event,) = functions(template)[DISPATCH]["Events"].values()
    assert dispatch_event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    assert len(groups) == len(functions(template))


@pytest.mark.parametrize("stage", STAGES)
def test_rest_api_is_named_traced_and_throttled(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    (api,) = resources_of(templates[stage], "AWS::Serverless::Api").values()
    props = api["Properties"]
    assert props["Name"] == props["DefinitionBody"]["info"]["title"] == f"loyalty-{stage}"
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"] <= 5000


@pytest.mark.parametrize("stage", STAGES)
def test_alarms_notify_the_topic_and_cover_the_failure_modes(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    (topic_id,) = resources_of(template, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()]
    watched = set()
    for alarm in alarms:
        assert alarm["AlarmName"].startswith(f"loyalty-{stage}-")
        assert alarm["AlarmActions"] == [{"Ref": topic_id}] and alarm["OKActions"] == [{"Ref": topic_id}]
        if "Metrics" in alarm:  # a labelled metric is rendered as a one-metric query
            (query,) = alarm["Metrics"]
            metric, statistic = query["MetricStat"]["Metric"], query["MetricStat"]["Stat"]
        else:
            metric, statistic = alarm, alarm.get("ExtendedStatistic") or alarm["Statistic"]
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        watched.add((metric["Namespace"], metric["MetricName"], statistic, dimensions.get("FunctionName")))
        if metric["Namespace"] == "AWS/ApiGateway":
            assert dimensions == {"ApiName": f"loyalty-{stage}", "Stage": "v1"}
    assert ("AWS/ApiGateway", "5XXError", "Average", None) in watched  # the 5xx rate
    assert ("AWS/ApiGateway", "Latency", "p99", None) in watched
    dead_letters = [a for a in alarms if a["AlarmName"].endswith("-dead-letters")]
    assert sorted(a["AlarmName"] for a in dead_letters) == sorted(
        f"loyalty-{stage}-{queue}-dead-letters" for queue in QUEUES
    )
    for alarm in dead_letters:
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 0
    backlog = {a["AlarmName"]: a for a in alarms if a["AlarmName"].endswith("-backlog-age")}
    assert set(backlog) == {f"loyalty-{stage}-{queue}-backlog-age" for queue in QUEUES}
    queue_names = {
        key: value["Properties"]["QueueName"] for key, value in resources_of(template, "AWS::SQS::Queue").items()
    }
    for name, alarm in backlog.items():
        (dimension,) = alarm["Dimensions"]
        assert queue_names[dimension["Value"]["Fn::GetAtt"][0]] == name.removesuffix("-backlog-age"), alarm
    for alarm in dead_letters:
        (dimension,) = alarm["Dimensions"]
        queue = alarm["AlarmName"].removesuffix("-dead-letters")
        assert queue_names[dimension["Value"]["Fn::GetAtt"][0]] == f"{queue}-dlq", alarm
    # Webhooks late by more than 10 minutes
    deliveries_age = backlog[f"loyalty-{stage}-deliveries-backlog-age"]
    assert deliveries_age["MetricName"] == "ApproximateAgeOfOldestMessage" and deliveries_age["Threshold"] == 600
    # Failed runs of both webhook functions
    assert {DELIVER, DISPATCH} <= set(functions(template))
    for name in (DELIVER, DISPATCH):
        assert ("AWS/Lambda", "Errors", "Sum", f"loyalty-{stage}-{name}") in watched
    for name in functions(template):
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, "Sum", f"loyalty-{stage}-{name}") in watched
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"loyalty-{stage}"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for shown in ("Webhook queue", "Webhook functions", f"loyalty-{stage}-{DELIVER}", f"loyalty-{stage}-{DISPATCH}"):
        assert shown in body, shown
    deliveries_queues = [key for key, name in queue_names.items() if name.startswith(f"loyalty-{stage}-deliveries")]
    assert len(deliveries_queues) == 2 and all(key in body for key in deliveries_queues)


#: Every response type API Gateway can answer with on its own, that a client may meet.
GATEWAY_RESPONSE_TYPES = {
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "WAF_FILTERED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 404,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "INTEGRATION_TIMEOUT": 504,
}
#: The API's own error codes, plus API Gateway's throttling.
ERROR_CODES = {"invalid_request", "unauthorized", "forbidden", "not_found", "internal_error", "retry_later"}


def render_gateway_template(template: str, message: str = "Missing Authentication Token") -> Any:
    """The template as API Gateway renders it: ``$context.error.messageString`` is the message
    as a quoted JSON string, ``$context.requestId`` the request's id."""
    text = template.replace("$context.error.messageString", json.dumps(message))
    return json.loads(text.replace("$context.requestId", "c0ffee00-1234-4321-9876-0123456789ab"))


@pytest.mark.parametrize("stage", STAGES)
def test_gateway_responses_answer_in_the_api_error_shape(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    (api,) = resources_of(templates[stage], "AWS::Serverless::Api").values()
    responses = api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(GATEWAY_RESPONSE_TYPES)
    for response_type, status in GATEWAY_RESPONSE_TYPES.items():
        response = responses[response_type]
        assert response.get("statusCode") == (str(status) if status else None), response_type
        assert set(response["responseTemplates"]) == {"application/json"}, response_type
        # Every one renders to {"error": {"code", "message", "details"}}, with a quote in the message
        body = render_gateway_template(response["responseTemplates"]["application/json"], 'say "hi"')
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, response_type
        assert body["error"]["code"] in ERROR_CODES | {"throttled"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
        assert body["error"]["details"] == {"request_id": "c0ffee00-1234-4321-9876-0123456789ab"}, body
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'", response_type
    codes = {
        name: render_gateway_template(r["responseTemplates"]["application/json"])["error"]["code"]
        for name, r in responses.items()
    }
    assert codes["DEFAULT_4XX"] == "invalid_request" and codes["DEFAULT_5XX"] == "internal_error"
    assert codes["UNAUTHORIZED"] == "unauthorized" and codes["ACCESS_DENIED"] == "forbidden"
    assert codes["MISSING_AUTHENTICATION_TOKEN"] == "not_found" and codes["THROTTLED"] == "throttled"
    assert codes["INTEGRATION_TIMEOUT"] == "retry_later"
    unauthorized = responses["UNAUTHORIZED"]["responseParameters"]
    assert unauthorized["gatewayresponse.header.WWW-Authenticate"] == "'Bearer realm=\"loyalty\"'"
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    # The function's own 404 for an unknown id says the same as API Gateway's for an unknown path
    route = render_gateway_template(responses["MISSING_AUTHENTICATION_TOKEN"]["responseTemplates"]["application/json"])
    assert route["error"]["message"] == "no such route: see GET /v1/openapi.json"


@pytest.mark.parametrize("stage", STAGES)
def test_a_usage_plan_carries_the_stage_throttling(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    (plan,) = resources_of(template, "AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["UsagePlanName"] == f"loyalty-{stage}-default"
    assert props["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    (settings,) = next(iter(resources_of(template, "AWS::Serverless::Api").values()))["Properties"]["MethodSettings"]
    assert props["Throttle"] == {
        "RateLimit": settings["ThrottlingRateLimit"],
        "BurstLimit": settings["ThrottlingBurstLimit"],
    }
    assert "Quota" not in props  # a quota would cut a brand off mid-month


@pytest.mark.parametrize("stage", STAGES)
def test_a_web_acl_refuses_bodies_over_the_apps_limit_with_the_functions_own_400(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    """Lambda never receives a body over 6 MB (API Gateway takes 10): without this, such a
    body would fail the integration, a 5xx for bad input."""
    from chalicelib.api.errors import error_body, status_of
    from chalicelib.api.routing import _parse_body, _within_limit
    from chalicelib.api.schemas import CreateTenantRequest
    from chalicelib.domain.errors import InvalidRequest
    from chalicelib.settings import Settings

    template = templates[stage]
    ((acl_id, acl),) = resources_of(template, "AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rule, import_rule = props["Rules"]
    limit = Settings.model_fields["max_body_bytes"].default
    # Every body over the app's limit, however long (WAF inspects the first 16 KB of a body
    # behind API Gateway; a longer one counts as a match), but a bulk import's
    assert props["AssociationConfig"] == {"RequestBody": {"API_GATEWAY": {"DefaultSizeInspectionLimit": "KB_16"}}}
    assert limit <= 16 * 1024
    none = [{"Priority": 0, "Type": "NONE"}]
    import_route = {
        "AndStatement": {
            "Statements": [
                {
                    "ByteMatchStatement": {
                        "FieldToMatch": {"Method": {}},
                        "PositionalConstraint": "EXACTLY",
                        "SearchString": "POST",
                        "TextTransformations": none,
                    }
                },
                {
                    "ByteMatchStatement": {
                        "FieldToMatch": {"UriPath": {}},
                        "PositionalConstraint": "ENDS_WITH",
                        "SearchString": "/imports",
                        "TextTransformations": none,
                    }
                },
            ]
        }
    }
    assert rule["Statement"] == {
        "AndStatement": {
            "Statements": [
                {
                    "SizeConstraintStatement": {
                        "ComparisonOperator": "GT",
                        "FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},
                        "Size": limit,
                        "TextTransformations": none,
                    }
                },
                {"NotStatement": {"Statement": import_route}},
            ]
        }
    }
    # A bulk import over its own limit (5 MB, under Lambda's 6 MB event), by its Content-Length
    import_limit = Settings.model_fields["max_import_body_bytes"].default
    first, by_length = import_rule["Statement"]["AndStatement"]["Statements"]
    assert first == import_route and import_rule["Priority"] == 1
    regex = by_length["RegexMatchStatement"]
    assert regex["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    for length in (0, 16_385, import_limit - 1, import_limit, import_limit + 1, 6_000_000, 10_485_760, 10**9):
        assert bool(re.fullmatch(regex["RegexString"], str(length))) == (length > import_limit), length
    with pytest.raises(InvalidRequest) as too_long:
        _within_limit(b"x" * (import_limit + 1), import_limit)
    import_block = import_rule["Action"]["Block"]["CustomResponse"]
    assert import_block["ResponseCode"] == 400
    import_body = props["CustomResponseBodies"][import_block["CustomResponseBodyKey"]]
    assert json.loads(import_body["Content"]) == error_body(
        too_long.value.code, too_long.value.message, too_long.value.details
    )
    # ... is answered as the function answers one it receives: same status, same body
    with pytest.raises(InvalidRequest) as refused:
        _parse_body(CreateTenantRequest, b"x" * (limit + 1), limit)
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == status_of(refused.value) == 400
    body = props["CustomResponseBodies"][block["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert json.loads(body["Content"]) == error_body(refused.value.code, refused.value.message, refused.value.details)
    # And it guards this stage's API
    (association,) = resources_of(template, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    parts = association["Properties"]["ResourceArn"]["Fn::Join"][1]
    assert parts[-4:] == ["::/restapis/", {"Ref": "RestAPI"}, "/stages/", {"Ref": "RestAPI.Stage"}]


# --- cfn-lint ----------------------------------------------------------------------------


def _cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run([str(executable), *map(str, paths)], capture_output=True, text=True, timeout=300, check=False)


def test_cfn_lint_passes_on_the_synthesised_templates(synthesis: Synthesis, tmp_path: Path) -> None:
    result = _cfn_lint(*(synthesis.template_path(stage) for stage in STAGES))
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and is not vacuous: the same template with a wrong SAM property and a wrong
    # DynamoDB value fails.
    broken = synthesis.template("prod")
    broken["Resources"]["APIHandler"]["Properties"]["Timeout"] = "soon"
    next(iter(resources_of(broken, "AWS::DynamoDB::Table").values()))["Properties"]["BillingMode"] = "FREE"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    result = _cfn_lint(path)
    assert result.returncode != 0
    assert "E3012" in result.stdout and "FREE" in result.stdout, result.stdout
