"""The two execution roles, written out statement by statement (``autogen_policy`` is false
and Chalice does not manage them): one for the API and the job functions, one for the
provisioning function, the only one that may create tables (and only under the stage's
tenant-table prefix). Nobody may delete a table.

The roles are made before the Chalice app (which takes the function role's ARN); their
statements are added by :meth:`ExecutionRoles.grant` once the functions' log groups exist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .control_table import CONTROL_INDEXES
from .provisioning import PROVISIONING_FUNCTION
from .queues import StageQueues
from .stages import StageSettings
from .webhooks import WEBHOOK_KEY_ACTIONS, WEBHOOK_KEY_CONTEXT

#: Item-level actions the repositories use. Transactions (TransactWriteItems) are
#: authorised per item against these; there is no Scan anywhere (listing goes through
#: gsi1 with a cursor), so none is granted. No table-level action at all: only the
#: provisioning function looks at or changes tables.
ITEM_ACTIONS = (
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
#: What provisioning a tenant's table takes (chalicelib/persistence/provisioning.py), granted
#: to the provisioning function's role only, on the tenant-table prefix only: CreateTable
#: (with its encryption, deletion protection and tags, hence TagResource), DescribeTable
#: (exists? then wait for ACTIVE), UpdateTable (deletion protection on an existing table
#: that lacks it), UpdateContinuousBackups (point-in-time recovery, which CreateTable cannot
#: set), DescribeTimeToLive and UpdateTimeToLive (the TTL that clears the webhook delivery
#: log), ListTagsOfResource and TagResource (tags of a table that already exists). No
#: DeleteTable anywhere: removing a brand's data is an operator's decision, taken outside
#: the functions' roles (and deletion protection is on).
TABLE_PROVISIONING_ACTIONS = (
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:ListTagsOfResource",
    "dynamodb:TagResource",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
)
#: What the provisioning function does with the registry: read the tenant, then record a
#: failed attempt or make it active (conditional updates of the tenant's own item).
REGISTRY_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
#: ... and only on tenant items: their partition key is ``TENANT#<id>``
#: (chalicelib/persistence/control.py), so API key items (``APIKEY#<id>``) are out of reach.
TENANT_REGISTRY_KEYS = "TENANT#*"
#: What an SQS event source's poller does with its queue.
CONSUMER_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)
#: The inline policies of each role, in this order.
FUNCTION_POLICIES = (
    "data-access",
    "jobs-queue",
    "provisioning-requests",
    "deliveries-queue",
    "webhook-secrets",
    "event-bus",
    "operator-key",
    "telemetry",
)
PROVISIONING_POLICIES = ("tenant-registry", "tenant-table-provisioning", "provisioning-queue", "telemetry")

#: A cdk-nag finding a role keeps: (construct, finding, reason).
NagAcknowledgment = tuple[Construct, str, str]


def _allow(
    sid: str, actions: Iterable[str], resources: Iterable[str], conditions: Mapping[str, Any] | None = None
) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=list(actions), resources=list(resources), conditions=dict(conditions) if conditions else None
    )


def _telemetry(groups: Iterable[logs.LogGroup]) -> list[iam.PolicyStatement]:
    return [
        _allow("FunctionLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [g.log_group_arn for g in groups]),
        # X-Ray has no resource-level permissions.
        _allow("XRayTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
    ]


class _Role:
    """A Lambda execution role and its inline policies by name (filled in by ``allow``)."""

    def __init__(self, scope: Construct, construct_id: str, description: str, policies: Iterable[str]) -> None:
        self.policies = {name: iam.PolicyDocument() for name in policies}
        self.role = iam.Role(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
            inline_policies=self.policies,
        )

    def allow(self, statements: Mapping[str, list[iam.PolicyStatement]]) -> None:
        for name, policy_statements in statements.items():
            self.policies[name].add_statements(*policy_statements)


class ExecutionRoles:
    """``function_role`` (the API and job functions) and ``provisioning_role`` (the
    provisioning function only), each with its inline policies, empty until :meth:`grant`."""

    def __init__(self, scope: Construct, stage: StageSettings) -> None:
        self.stage = stage
        self._function = _Role(
            scope,
            "FunctionRole",
            f"Execution role of the {stage.resource_prefix} API and job functions (not provisioning); "
            "statements in infra/",
            FUNCTION_POLICIES,
        )
        self._provisioning = _Role(
            scope,
            "ProvisioningRole",
            f"Execution role of {stage.resource_prefix}-{PROVISIONING_FUNCTION}, the only function that may "
            "create tables; statements in infra/",
            PROVISIONING_POLICIES,
        )
        self.function_role = self._function.role
        self.provisioning_role = self._provisioning.role
        self._stack = Stack.of(scope)

    def grant(
        self,
        *,
        control_table: dynamodb.Table,
        queues: StageQueues,
        webhook_key: kms.Key,
        event_bus: events.EventBus,
        operator_key: ssm.StringParameter,
        log_groups: Mapping[str, logs.LogGroup],
    ) -> None:
        tenant_tables = self._stack.format_arn(
            service="dynamodb", resource="table", resource_name=self.stage.tenant_table_pattern
        )
        control = control_table.table_arn
        self._function.allow(
            {
                "data-access": [
                    _allow(
                        "ControlTableItems",
                        ITEM_ACTIONS,
                        [control, *(f"{control}/index/{index}" for index in CONTROL_INDEXES)],
                    ),
                    # <prefix>-tenant-*: this stage's brands only (another stage's prefix, the
                    # control table and any other table in the account do not match).
                    _allow("TenantTableItems", ITEM_ACTIONS, [tenant_tables, f"{tenant_tables}/index/*"]),
                ],
                # Send: the schedules' fan-out. The rest: the SQS event source's poller.
                "jobs-queue": [
                    _allow("JobsQueue", [*CONSUMER_ACTIONS, "sqs:SendMessage"], [queues.jobs.queue.queue_arn])
                ],
                # Creating a tenant only asks for its table (POST /v1/tenants enqueues).
                "provisioning-requests": [
                    _allow("ProvisioningRequests", ["sqs:SendMessage"], [queues.provisioning.queue.queue_arn])
                ],
                # Webhook work: the schedule enqueues dispatch units, the API (a redelivery, an
                # endpoint re-enabled) and the consumer enqueue drains; the consumer polls.
                "deliveries-queue": [
                    _allow(
                        "DeliveriesQueue", [*CONSUMER_ACTIONS, "sqs:SendMessage"], [queues.deliveries.queue.queue_arn]
                    )
                ],
                "webhook-secrets": [
                    _allow(
                        "WebhookSecrets",
                        WEBHOOK_KEY_ACTIONS,
                        [webhook_key.key_arn],
                        {
                            # No key other than the tenant and the endpoint in the context...
                            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(WEBHOOK_KEY_CONTEXT)},
                            # ... and both of them (ForAllValues alone holds for an empty context).
                            "Null": {f"kms:EncryptionContext:{key}": "false" for key in WEBHOOK_KEY_CONTEXT},
                        },
                    )
                ],
                "event-bus": [_allow("EventBus", ["events:PutEvents"], [event_bus.event_bus_arn])],
                "operator-key": [_allow("OperatorKeyDigest", ["ssm:GetParameter"], [operator_key.parameter_arn])],
                "telemetry": _telemetry(group for name, group in log_groups.items() if name != PROVISIONING_FUNCTION),
            },
        )
        # The provisioning function: its queue, tenants' registry items, and the only
        # table-level rights of the stack. Scoped to the tenant-table prefix: it can make and
        # configure tables for this stage's brands and nothing else, and can never delete one.
        self._provisioning.allow(
            {
                "tenant-registry": [
                    _allow(
                        "TenantRegistry",
                        REGISTRY_ACTIONS,
                        [control],
                        # Every key a request names must be a tenant's (GetItem and UpdateItem
                        # always name one, so ForAllValues cannot pass on an empty set here).
                        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [TENANT_REGISTRY_KEYS]}},
                    )
                ],
                "tenant-table-provisioning": [
                    _allow("TenantTableProvisioning", TABLE_PROVISIONING_ACTIONS, [tenant_tables])
                ],
                "provisioning-queue": [
                    _allow("ProvisioningQueue", CONSUMER_ACTIONS, [queues.provisioning.queue.queue_arn])
                ],
                "telemetry": _telemetry([log_groups[PROVISIONING_FUNCTION]]),
            },
        )

    def nag_acknowledgments(self) -> list[NagAcknowledgment]:
        """The IAM wildcards the roles hold: the tenant-table prefix and X-Ray's ``*``."""
        tenant_tables = (
            f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/{self.stage.tenant_table_pattern}"
        )
        xray = "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions."
        return [
            (
                self.function_role,
                f"AwsSolutions-IAM5[Resource::{tenant_tables}]",
                "One table per brand, created at run time: the tenant-table prefix of this stage is the narrowest "
                "resource naming them all, and it excludes the control table, other stages and other tables.",
            ),
            (
                self.function_role,
                f"AwsSolutions-IAM5[Resource::{tenant_tables}/index/*]",
                "The indexes of this stage's tenant tables (same prefix as the tables).",
            ),
            (self.function_role, "AwsSolutions-IAM5[Resource::*]", xray),
            (
                self.provisioning_role,
                f"AwsSolutions-IAM5[Resource::{tenant_tables}]",
                "The provisioning function creates one table per brand at run time, under names known only then: "
                "the tenant-table prefix of this stage is the narrowest resource, and excludes every other table.",
            ),
            (self.provisioning_role, "AwsSolutions-IAM5[Resource::*]", xray),
        ]
