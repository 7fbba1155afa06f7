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

from tests.infra.conftest import ROOT, STAGES, Synthesis
from tests.infra.iam import ACCOUNT, REGION, allowed, arn, role_statements

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
NEVER = (
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:Scan",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:CreateTable",
    "iam:PassRole",
    "sqs:PurgeQueue",
    "ssm:PutParameter",
    "ssm:GetParametersByPath",
)


def table(name: str) -> str:
    return arn("dynamodb", f"table/{name}")


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value["Properties"] for key, value in resources_of(template, "AWS::Serverless::Function").items()}


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
    for tool in ("pytest", "moto", "aws_cdk", "cdk_nag", "cfnlint", "jsii", "pip", "hypothesis", "tests", "infra"):
        assert not any(n.split("/")[0] == tool for n in names), tool


# --- IAM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_one_role_inline_statements_only_and_every_function_uses_it(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    template = templates[stage]
    roles = resources_of(template, "AWS::IAM::Role")
    assert len(roles) == 1
    ((role_id, role),) = roles.items()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert not resources_of(template, kind), kind
    assert functions(template)
    for name, props in functions(template).items():
        assert props["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}, name
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
    statements = role_statements(templates[stage])
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
            assert not allowed(statements, action, foreign), (action, foreign)
    for forbidden in ("dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:ExportTableToPointInTime"):
        assert not allowed(statements, forbidden, table(f"{prefix}-tenant-acme")), forbidden


@pytest.mark.parametrize("stage", STAGES)
def test_tables_can_be_created_only_under_the_tenant_prefix_and_never_deleted(
    stage: str, templates: dict[str, dict[str, Any]]
) -> None:
    statements = role_statements(templates[stage])
    prefix, other = PREFIX[stage], PREFIX[OTHER[stage]]
    for action in ("dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:TagResource"):
        assert allowed(statements, action, table(f"{prefix}-tenant-acme")), action
        assert not allowed(statements, action, table(f"{other}-tenant-acme")), action
    assert allowed(statements, "dynamodb:UpdateContinuousBackups", table(f"{prefix}-tenant-acme"))
    for action in ("dynamodb:CreateTable", "dynamodb:TagResource", "dynamodb:UpdateContinuousBackups"):
        assert not allowed(statements, action, table(f"{prefix}-control")), action
        assert not allowed(statements, action, table("orders")), action
    for action in NEVER:
        if action == "dynamodb:CreateTable":
            continue
        for resource in (table(f"{prefix}-tenant-acme"), table(f"{prefix}-control"), "*"):
            assert not allowed(statements, action, resource), (action, resource)
    provisioning = [s for s in statements if "dynamodb:CreateTable" in s.actions]
    assert [(s.sid, s.document) for s in provisioning] == [("TenantTableProvisioning", "tenant-table-provisioning")]


@pytest.mark.parametrize("stage", STAGES)
def test_queue_parameter_and_logs_are_the_stages_own(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    statements = role_statements(templates[stage])
    prefix = PREFIX[stage]
    queue, dead_letters = arn("sqs", f"{prefix}-jobs"), arn("sqs", f"{prefix}-jobs-dlq")
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allowed(statements, action, queue), action
        assert not allowed(statements, action, dead_letters), action
        assert not allowed(statements, action, arn("sqs", f"{PREFIX[OTHER[stage]]}-jobs")), action
        assert not allowed(statements, action, arn("sqs", "loyalty-jobs")), action
    parameter = arn("ssm", f"parameter/loyalty/{stage}/operator-key-sha256")
    assert allowed(statements, "ssm:GetParameter", parameter)
    other_parameter = arn("ssm", f"parameter/loyalty/{OTHER[stage]}/operator-key-sha256")
    assert not allowed(statements, "ssm:GetParameter", other_parameter)
    for function in functions(templates[stage]).values():
        group = arn("logs", f"log-group:/aws/lambda/{function['FunctionName']}:log-stream:2026/11/23/[$LATEST]abc")
        assert allowed(statements, "logs:PutLogEvents", group)
    assert not allowed(statements, "logs:PutLogEvents", arn("logs", "log-group:/aws/lambda/other:log-stream:x"))
    assert not allowed(statements, "logs:CreateLogGroup", arn("logs", f"log-group:/aws/lambda/{prefix}-APIHandler"))


def test_iam_statements_are_exactly_these(templates: dict[str, dict[str, Any]]) -> None:
    """The whole policy of prod, rendered for one account: a change to it shows up here."""
    rendered = sorted(
        (s.document, s.sid, tuple(sorted(s.actions)), tuple(sorted(s.resources)))
        for s in role_statements(templates["prod"])
    )
    control = table("loyalty-prod-control")
    tenant = table("loyalty-prod-tenant-*")
    items = tuple(sorted((*ITEM_ACTIONS, "dynamodb:DescribeTable")))
    logs = tuple(
        sorted(arn("logs", f"log-group:/aws/lambda/loyalty-prod-{name}:*") for name in functions(templates["prod"]))
    )
    assert rendered == sorted(
        [
            ("data-access", "ControlTableItems", items, (control, f"{control}/index/gsi1")),
            ("data-access", "TenantTableItems", items, (tenant, f"{tenant}/index/*")),
            (
                "jobs-queue",
                "JobsQueue",
                (
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ),
                (arn("sqs", "loyalty-prod-jobs"),),
            ),
            (
                "operator-key",
                "OperatorKeyDigest",
                ("ssm:GetParameter",),
                (arn("ssm", "parameter/loyalty/prod/operator-key-sha256"),),
            ),
            ("telemetry", "FunctionLogs", ("logs:CreateLogStream", "logs:PutLogEvents"), logs),
            ("telemetry", "XRayTraces", ("xray:PutTelemetryRecords", "xray:PutTraceSegments"), ("*",)),
            (
                "tenant-table-provisioning",
                "TenantTableProvisioning",
                (
                    "dynamodb:CreateTable",
                    "dynamodb:DescribeTable",
                    "dynamodb:TagResource",
                    "dynamodb:UpdateContinuousBackups",
                ),
                (tenant,),
            ),
        ]
    )


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
    assert set(queues) == {f"{PREFIX[stage]}-jobs", f"{PREFIX[stage]}-jobs-dlq"}
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
    # Both refuse plain-HTTP requests.
    template.resource_count_is("AWS::SQS::QueuePolicy", 2)
    for policy in resources_of(templates[stage], "AWS::SQS::QueuePolicy").values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("stage", STAGES)
def test_functions_are_configured_for_the_stage(stage: str, templates: dict[str, dict[str, Any]]) -> None:
    template = templates[stage]
    queue_id = next(
        key
        for key, value in resources_of(template, "AWS::SQS::Queue").items()
        if value["Properties"]["QueueName"] == f"{PREFIX[stage]}-jobs"
    )
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
        assert "LOYALTY_OPERATOR_KEY" not in variables and "LOYALTY_DYNAMODB_ENDPOINT" not in variables
        assert "POWERTOOLS_TRACE_DISABLED" not in variables
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "SQS":  # the stage's own queue, not the name fixed in the app
                assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]}
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
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", None) in watched  # dead letters
    for name in functions(template):
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, "Sum", f"loyalty-{stage}-{name}") in watched
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"loyalty-{stage}"


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
