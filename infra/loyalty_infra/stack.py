"""One stage of the loyalty API: the Chalice app (via ``chalice.cdk.Chalice``) and
everything it needs around it.

Resources per stage (``dev``, ``prod``):

* the control-plane table ``<prefix>-control`` (pk/sk + ``gsi1``, on demand, PITR,
  deletion protection, AWS-managed KMS encryption, tags); tenant tables
  ``<prefix>-tenant-<id>`` are *not* here: the provisioning function creates each one
  after its tenant is registered, which is why its role (and only its role) may create
  tables, and only under that prefix;
* the job fan-out queue ``loyalty-<stage>-jobs`` and its dead-letter queue: the
  lifecycle jobs (points expiry and later ones) enqueue one message per tenant from their
  EventBridge schedule and consume them from this queue (``LOYALTY_JOBS_QUEUE_URL``);
* the provisioning queue ``loyalty-<stage>-provisioning`` and its dead-letter queue: the
  API enqueues one message per new tenant (``LOYALTY_PROVISIONING_QUEUE_URL``), the
  ``provision-tenant`` function consumes them, a few at a time;
* the webhook queue ``loyalty-<stage>-deliveries`` and its dead-letter queue: the
  ``dispatch-webhooks`` schedule enqueues one dispatch unit per tenant, the
  ``deliver-webhooks`` function consumes them (one message at a time) and enqueues one drain
  per due endpoint on the same queue (``LOYALTY_DELIVERIES_QUEUE_URL``);
* the customer-managed KMS key (rotation on, alias ``alias/loyalty-<stage>-webhooks``)
  sealing webhook signing secrets (``LOYALTY_WEBHOOK_KMS_KEY_ID``): the functions may
  Encrypt and Decrypt with it only under an encryption context of exactly ``tenant_id``
  and ``webhook_id``, and may not create keys or aliases;
* the stage's EventBridge bus ``loyalty-<stage>`` every feed event is also put on
  (``LOYALTY_EVENT_BUS_NAME``; PutEvents on that bus only);
* the SSM parameter holding the operator key's SHA-256 (a placeholder until an operator
  sets it, see the README's "Deploy to AWS");
* two IAM roles, written out statement by statement (``autogen_policy`` is false and
  Chalice does not manage them): one for the API and the job functions, one for the
  provisioning function;
* log groups with retention, X-Ray on the functions and on API Gateway, stage throttling,
  a usage plan, and gateway responses (API Gateway's own errors) in the API's error shape;
* a WAF web ACL on the API's stage refusing bodies over the app's limit with its own 400
  (bulk imports: over their own limit, by Content-Length);
* CloudWatch alarms (API 5xx rate, p99 latency, Lambda errors and throttles, dead
  letters, job, provisioning and webhook backlog age) notifying an SNS topic, and a dashboard.

Webhook deliveries go out to the internet from the functions themselves: no function is
in a VPC (one would need a NAT gateway for that egress).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Tags,
    Validations,
)
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from chalice.cdk import Chalice
from constructs import Construct

from .packaging import prebuild_from_environment
from .queues import QueueWithDeadLetters, queue_with_dead_letters
from .sam import sqs_queue_name
from .stages import APP_NAME, PROJECT_DIR, StageSettings

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
#: (exists? then wait for ACTIVE), UpdateTable (deletion protection on a table created
#: before it was set at creation), UpdateContinuousBackups (point-in-time recovery, which
#: CreateTable cannot set), DescribeTimeToLive and UpdateTimeToLive (the TTL that clears
#: the webhook delivery log), ListTagsOfResource and TagResource (tags of a table that
#: already existed). No DeleteTable anywhere: removing a brand's data is an operator's
#: decision, taken outside the functions' roles (and deletion protection is on).
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
CONTROL_INDEXES = ("gsi1",)
#: Names under which the app's ``@app.on_sqs_message`` handlers may refer to the job queue
#: (Chalice fixes the queue name at import; the stack points the event source at its own,
#: per-stage queue instead, so dev and prod can share an account).
APP_JOBS_QUEUE_NAMES = ("loyalty-jobs",)
#: The same for the provisioning queue (chalicelib/jobs/provisioning.py).
APP_PROVISIONING_QUEUE_NAMES = ("loyalty-provisioning",)
#: The same for the webhook queue (``DELIVERIES_QUEUE`` in chalicelib/jobs/webhooks.py).
APP_DELIVERIES_QUEUE_NAMES = ("loyalty-deliveries",)
#: The webhook functions (``deliver-webhooks``, ``dispatch-webhooks`` in the app). The
#: consumer's timeout (60 s: a drain stops starting sends after 20 s, and one exchange may
#: take 10 s more) is in .chalice/config.json (``lambda_functions``).
DELIVERIES_FUNCTION = "DeliverWebhooks"
DISPATCH_FUNCTION = "DispatchWebhooks"
#: Deliveries of a webhook message before it goes to the dead-letter queue. Only storage
#: failures raise (a failing endpoint waits out its backoff on its own record), and a lost
#: drain is requested again by the next minute's sweep.
DELIVERIES_RECEIVES = 5
#: What sealing and opening webhook signing secrets takes (chalicelib/integrations/kms.py):
#: Encrypt and Decrypt, nothing else (the key is this stack's: no CreateKey, CreateAlias
#: or ListAliases, which only the local fallback calls).
WEBHOOK_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt")
#: The encryption context of every sealed secret (chalicelib/domain/webhooks.py, _context):
#: exactly these keys, both present.
WEBHOOK_KEY_CONTEXT = ("tenant_id", "webhook_id")
#: The function consuming it (``provision-tenant`` in the app), the only one with the
#: provisioning role. Its timeout is in .chalice/config.json (``lambda_functions``).
PROVISIONING_FUNCTION = "ProvisionTenant"
#: At most this many tables are being provisioned at once (the SQS event source's maximum
#: concurrency): far below DynamoDB's 500 table operations in progress per account.
PROVISIONING_CONCURRENCY = 5
#: Deliveries of a provisioning message before it goes to the dead-letter queue: with a
#: 12-minute visibility timeout, about two hours of retries (DynamoDB's table limits).
PROVISIONING_RECEIVES = 10
_RETENTION = {
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


class LoyaltyStack(Stack):
    def __init__(self, scope: Construct, stage: StageSettings, *, project_dir: Path = PROJECT_DIR) -> None:
        # The construct id must be the Chalice stage name: chalice.cdk.Chalice takes its
        # stage from str(scope), the scope's construct path.
        super().__init__(
            scope,
            stage.name,
            stack_name=stage.stack_name,
            description=f"Loyalty API, stage {stage.name} (Chalice app, control table, queues, alarms)",
            termination_protection=stage.termination_protection,
        )
        self.stage = stage
        Tags.of(self).add("app", APP_NAME)
        Tags.of(self).add("stage", stage.name)

        self.control_table = self._control_table()
        self.jobs_queues = self._job_queues()
        self.provisioning_queues = self._provisioning_queues()
        self.deliveries_queues = self._deliveries_queues()
        self.webhook_key = self._webhook_key()
        self.event_bus = self._event_bus()
        self.operator_key = self._operator_key_parameter()

        # Filled in once the functions are known (their log groups are named after them).
        self.policies: dict[str, iam.PolicyDocument] = {
            name: iam.PolicyDocument()
            for name in (
                "data-access",
                "jobs-queue",
                "provisioning-requests",
                "deliveries-queue",
                "webhook-secrets",
                "event-bus",
                "operator-key",
                "telemetry",
            )
        }
        self.function_role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=(
                f"Execution role of the {stage.resource_prefix} API and job functions (not provisioning); "
                "statements in infra/"
            ),
            inline_policies=self.policies,
        )
        self.provisioning_policies: dict[str, iam.PolicyDocument] = {
            name: iam.PolicyDocument()
            for name in ("tenant-registry", "tenant-table-provisioning", "provisioning-queue", "telemetry")
        }
        self.provisioning_role = iam.Role(
            self,
            "ProvisioningRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=(
                f"Execution role of {stage.resource_prefix}-{PROVISIONING_FUNCTION}, the only function that may "
                "create tables; statements in infra/"
            ),
            inline_policies=self.provisioning_policies,
        )

        self.app, self.functions = self._chalice_app(project_dir)
        self.log_groups = self._name_functions_and_log_groups()
        self._require_webhook_functions()
        self._point_sqs_events_at_stage_queues()
        self._configure_provisioning_function()
        self._configure_rest_api()
        self.usage_plan = self._usage_plan()
        self.web_acl = self._web_acl()
        self._grant_least_privilege()
        self.alarm_topic, self.alarms = self._alarms()
        self.dashboard = self._dashboard()
        self._acknowledge_nag_findings()
        self._outputs()

    # --- data and messaging -----------------------------------------------------------

    def _control_table(self) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "ControlTable",
            table_name=self.stage.control_table_name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in CONTROL_INDEXES:
            table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=f"{index}pk", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=f"{index}sk", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        Tags.of(table).add("component", "control-plane")
        return table

    def _job_queues(self) -> QueueWithDeadLetters:
        return queue_with_dead_letters(
            self,
            "Jobs",
            queue_name=f"{self.stage.resource_prefix}-jobs",
            component="jobs",
            # Lambda's SQS poller needs at least the function timeout (29 s); AWS advises 6x.
            visibility_timeout=Duration.minutes(3),
            retention_period=Duration.days(4),
            max_receive_count=5,
        )

    def _provisioning_queues(self) -> QueueWithDeadLetters:
        return queue_with_dead_letters(
            self,
            "Provisioning",
            queue_name=f"{self.stage.resource_prefix}-provisioning",
            component="provisioning",
            # 6x the provisioning function's timeout (120 s, .chalice/config.json), as AWS
            # advises; it is also the pause before a failed attempt is retried.
            visibility_timeout=Duration.minutes(12),
            retention_period=Duration.days(14),
            max_receive_count=PROVISIONING_RECEIVES,
        )

    def _deliveries_queues(self) -> QueueWithDeadLetters:
        return queue_with_dead_letters(
            self,
            "Deliveries",
            queue_name=f"{self.stage.resource_prefix}-deliveries",
            component="webhooks",
            # 6x the deliver-webhooks function's timeout (60 s, .chalice/config.json), as AWS
            # advises (also above the drain and dispatch leases' 90 s).
            visibility_timeout=Duration.minutes(6),
            # A message is work for the next minutes: the sweep asks again every minute.
            retention_period=Duration.days(1),
            max_receive_count=DELIVERIES_RECEIVES,
        )

    def _webhook_key(self) -> kms.Key:
        """The key sealing webhook signing secrets. Kept if the stack is deleted (the
        secrets in the tenant tables would not open without it); rotated yearly by KMS
        (old ciphertexts still open). Its key policy is the CDK's default (the account
        delegates to IAM): who may use it is the function role's statement below."""
        key = kms.Key(
            self,
            "WebhookSecretsKey",
            description=f"Seals the {self.stage.resource_prefix} webhook signing secrets",
            enable_key_rotation=True,
            alias=f"alias/{self.stage.resource_prefix}-webhooks",
            removal_policy=RemovalPolicy.RETAIN,
        )
        Tags.of(key).add("component", "webhooks")
        return key

    def _event_bus(self) -> events.EventBus:
        """The stage's own bus: every feed event is put on it (chalicelib/domain/bus.py);
        partners' rules and targets are added to it outside this stack."""
        bus = events.EventBus(self, "EventBus", event_bus_name=self.stage.resource_prefix)
        Tags.of(bus).add("component", "integrations")
        return bus

    def _operator_key_parameter(self) -> ssm.StringParameter:
        # CloudFormation cannot create a SecureString, and this is not a secret: it is the
        # SHA-256 of a 256-bit random key, which cannot be inverted. The placeholder is not
        # a digest, so no operator key is accepted until an operator sets the real one;
        # CloudFormation leaves the value alone on later deploys while this text is unchanged.
        return ssm.StringParameter(
            self,
            "OperatorKeyDigest",
            parameter_name=self.stage.operator_key_parameter,
            string_value="unset: put the operator key's SHA-256 here (README, Deploy to AWS)",
            description=f"SHA-256 (hex) of the {self.stage.name} operator key",
            tier=ssm.ParameterTier.STANDARD,
        )

    # --- the Chalice app --------------------------------------------------------------

    def _chalice_app(self, project_dir: Path) -> tuple[Chalice, dict[str, dict[str, Any]]]:
        # Offline: put the deployment package Chalice would build in its cache first (see
        # packaging.py). Where this environment cannot stand in for Lambda's, nothing is
        # built and Chalice downloads the wheels itself (that needs the network).
        prebuild_from_environment(project_dir)
        with _preserved_environment(), _scratch_working_directory(), _packaging_region():
            app = Chalice(
                self,
                "App",
                source_dir=str(project_dir),
                stage_config={
                    # The role is this stack's: no policy generation, no policy file.
                    "manage_iam_role": False,
                    "iam_role_arn": self.function_role.role_arn,
                    "environment_variables": {
                        "LOYALTY_JOBS_QUEUE_URL": self.jobs_queues.queue.queue_url,
                        "LOYALTY_PROVISIONING_QUEUE_URL": self.provisioning_queues.queue.queue_url,
                        "LOYALTY_DELIVERIES_QUEUE_URL": self.deliveries_queues.queue.queue_url,
                        # Required deployed: without it the code would create a key itself.
                        "LOYALTY_WEBHOOK_KMS_KEY_ID": self.webhook_key.key_arn,
                        # The source stays the app's default (`loyalty`).
                        "LOYALTY_EVENT_BUS_NAME": self.event_bus.event_bus_name,
                    },
                },
            )
            # The functions `chalice package` produced, by logical id, with their properties,
            # from the package's SAM template: the typed accessors of the included
            # AWS::Serverless::Function L1s cannot deserialise its event-source union.
            template = json.loads((Path(app._sam_package_dir) / "sam.json").read_text())
        return app, {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }

    def function_name(self, logical_id: str) -> str:
        name = f"{self.stage.resource_prefix}-{logical_id}"
        if len(name) > 64:
            raise ValueError(f"Lambda function name {name!r} is over 64 characters: shorten the handler's name")
        return name

    def _name_functions_and_log_groups(self) -> dict[str, logs.LogGroup]:
        log_groups = {}
        for logical_id in self.functions:
            name = self.function_name(logical_id)
            function = self.app.get_resource(logical_id)
            # Explicit names: log groups, the logs policy and the alarms can name them.
            function.add_property_override("FunctionName", name)
            log_group = logs.LogGroup(
                self,
                f"{logical_id}LogGroup",
                log_group_name=f"/aws/lambda/{name}",
                retention=_RETENTION[self.stage.log_retention_days],
                removal_policy=RemovalPolicy.RETAIN,
            )
            # The group exists (with its retention) before Lambda could create one without.
            function.add_resource_dependency(log_group.node.default_child)
            log_groups[logical_id] = log_group
        return log_groups

    def _point_sqs_events_at_stage_queues(self) -> None:
        known = {
            name: queues.queue
            for app_names, queues in (
                (APP_JOBS_QUEUE_NAMES, self.jobs_queues),
                (APP_PROVISIONING_QUEUE_NAMES, self.provisioning_queues),
                (APP_DELIVERIES_QUEUE_NAMES, self.deliveries_queues),
            )
            for name in (*app_names, queues.queue_name)
        }
        for logical_id, properties in self.functions.items():
            for event_name, event in (properties.get("Events") or {}).items():
                if event.get("Type") != "SQS":
                    continue
                queue_name = sqs_queue_name(event["Properties"]["Queue"])
                if queue_name not in known:
                    raise ValueError(
                        f"{logical_id} consumes SQS queue {queue_name!r}, which infra/ does not define: "
                        "add it to the stack (with its dead-letter queue, alarm and IAM statement)"
                    )
                queue = known[queue_name]
                # AWS advises a visibility timeout of 6x the consumer's timeout (a retry
                # must not overlap a run still going).
                visibility = queue.node.default_child.visibility_timeout
                timeout = properties.get("Timeout")
                if not isinstance(visibility, int) or not isinstance(timeout, int) or visibility < 6 * timeout:
                    raise ValueError(
                        f"{queue_name}: visibility timeout {visibility!r} s is under 6x the timeout of "
                        f"{logical_id} ({timeout!r} s)"
                    )
                self.app.get_resource(logical_id).add_property_override(
                    f"Events.{event_name}.Properties.Queue", queue.queue_arn
                )

    def _require_webhook_functions(self) -> None:
        missing = {DELIVERIES_FUNCTION, DISPATCH_FUNCTION} - set(self.functions)
        if missing:
            raise ValueError(f"the app has no {', '.join(sorted(missing))} function (chalicelib/jobs/webhooks.py)")

    def _configure_provisioning_function(self) -> None:
        if PROVISIONING_FUNCTION not in self.functions:
            raise ValueError(f"the app has no {PROVISIONING_FUNCTION} function (chalicelib/jobs/provisioning.py)")
        function = self.app.get_resource(PROVISIONING_FUNCTION)
        # Its own role: the only one that may create tables.
        function.add_property_override("Role", self.provisioning_role.role_arn)
        for event_name, event in (self.functions[PROVISIONING_FUNCTION].get("Events") or {}).items():
            if event.get("Type") == "SQS":
                function.add_property_override(
                    f"Events.{event_name}.Properties.ScalingConfig", {"MaximumConcurrency": PROVISIONING_CONCURRENCY}
                )

    @property
    def api_name(self) -> str:
        return self.stage.resource_prefix

    def _configure_rest_api(self) -> None:
        api = self.app.get_resource("RestAPI")
        # A per-stage name (Chalice names every stage's API after the app): the
        # AWS/ApiGateway metrics the alarms watch are keyed by it.
        api.add_property_override("Name", self.api_name)
        api.add_property_override("DefinitionBody.info.title", self.api_name)
        api.add_property_override("TracingEnabled", True)
        api.add_property_override(
            "MethodSettings",
            [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": self.stage.throttling_rate_limit,
                    "ThrottlingBurstLimit": self.stage.throttling_burst_limit,
                }
            ],
        )
        # API Gateway's own refusals (no route, throttling, a body over 10 MB, a crashed or
        # timed-out function...) in the API's error shape, as JSON. Part of the API's
        # definition, so each deployment carries them.
        api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", gateway_responses())

    def _usage_plan(self) -> apigateway.CfnUsagePlan:
        """The stage's default throttling, as a usage plan. API Gateway applies a plan per
        API Gateway API key; tenant keys are the app's own (a bearer token checked by the
        function), so today the stage throttling above is what limits every caller. The plan
        is where per-client limits go once keys are mapped to API Gateway keys."""
        plan = apigateway.CfnUsagePlan(
            self,
            "UsagePlan",
            usage_plan_name=f"{self.stage.resource_prefix}-default",
            description=f"Default throttling of the {self.stage.name} API (per API Gateway key)",
            api_stages=[
                apigateway.CfnUsagePlan.ApiStageProperty(
                    api_id=self.app.get_resource("RestAPI").ref,
                    # SAM's reference to the stage it creates for the API: its name, and a
                    # dependency on it (the plan cannot be created before the stage).
                    stage=Fn.ref("RestAPI.Stage"),
                )
            ],
            throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
                rate_limit=self.stage.throttling_rate_limit, burst_limit=self.stage.throttling_burst_limit
            ),
        )
        Validations.of(plan).acknowledge(
            Acknowledgment(
                id="CloudFormation-Validate::F1020",
                reason="RestAPI.Stage is SAM's reference to the stage its transform creates; the CDK's own "
                "validation runs before the transform (cfn-lint, which applies it, resolves the reference).",
            )
        )
        return plan

    def body_too_large(self, limit: int | None = None) -> dict[str, Any]:
        """What the function answers for a body over the limit (chalicelib/api/routing.py),
        which the web ACL answers instead for bodies Lambda would never receive."""
        limit = self.stage.max_body_bytes if limit is None else limit
        return {
            "error": {
                "code": "invalid_request",
                "message": f"the request body exceeds {limit} bytes",
                "details": {"fields": [{"path": "body", "message": f"larger than {limit} bytes", "type": "too_long"}]},
            }
        }

    def _web_acl(self) -> wafv2.CfnWebACL:
        """Request size at the edge. The function refuses bodies over ``max_body_bytes``
        with a 400, but only bodies it receives: Lambda takes at most 6 MB, so a body
        between 6 and 10 MB (API Gateway's own limit) would fail the integration, a 5xx
        for bad input. The web ACL refuses every body over the limit before API Gateway
        passes it on, with the function's own 400. API Gateway lets WAF inspect the first
        16 KB of a body; ``OversizeHandling: MATCH`` counts a longer body as over.

        ``POST .../imports`` (a CSV file, up to ``max_import_body_bytes``) is exempt from
        that rule; WAF cannot measure a body that long, so a second rule refuses an import
        whose ``Content-Length`` is over its limit (a regular expression on the header's
        digits), with the function's own 400 for that limit."""
        name = f"{self.stage.resource_prefix}-api"
        limit = self.stage.max_body_bytes
        import_limit = self.stage.max_import_body_bytes
        if limit > 16_384:
            raise ValueError("LOYALTY_MAX_BODY_BYTES above 16 KB needs a larger WAF body inspection limit")
        if not limit < import_limit <= 5_500_000:
            # Lambda takes a 6 MB event, and the body travels JSON-escaped inside it.
            raise ValueError("LOYALTY_MAX_IMPORT_BODY_BYTES must be above the body limit and at most 5.5 MB")
        import_route = wafv2.CfnWebACL.StatementProperty(
            and_statement=wafv2.CfnWebACL.AndStatementProperty(
                statements=[
                    wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(method={}),
                            positional_constraint="EXACTLY",
                            search_string="POST",
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )
                    ),
                    wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                            positional_constraint="ENDS_WITH",
                            search_string="/imports",
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )
                    ),
                ]
            )
        )
        acl = wafv2.CfnWebACL(
            self,
            "ApiWebAcl",
            name=name,
            description=f"Request size limit of the {self.stage.name} API",
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
                    content_type="APPLICATION_JSON", content=json.dumps(self.body_too_large())
                ),
                "import-too-large": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps(self.body_too_large(import_limit))
                ),
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="body-too-large",
                    priority=0,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        and_statement=wafv2.CfnWebACL.AndStatementProperty(
                            statements=[
                                wafv2.CfnWebACL.StatementProperty(
                                    size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                            body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                                        ),
                                        comparison_operator="GT",
                                        size=limit,
                                        text_transformations=[
                                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                                        ],
                                    )
                                ),
                                wafv2.CfnWebACL.StatementProperty(
                                    not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=import_route)
                                ),
                            ]
                        )
                    ),
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=400, custom_response_body_key="body-too-large"
                            )
                        )
                    ),
                    visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                        cloud_watch_metrics_enabled=True,
                        metric_name=f"{name}-body-too-large",
                        sampled_requests_enabled=False,
                    ),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="import-too-large",
                    priority=1,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        and_statement=wafv2.CfnWebACL.AndStatementProperty(
                            statements=[
                                import_route,
                                wafv2.CfnWebACL.StatementProperty(
                                    regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                            single_header={"Name": "content-length"}
                                        ),
                                        regex_string=integer_above(import_limit),
                                        text_transformations=[
                                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                                        ],
                                    )
                                ),
                            ]
                        )
                    ),
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=400, custom_response_body_key="import-too-large"
                            )
                        )
                    ),
                    visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                        cloud_watch_metrics_enabled=True,
                        metric_name=f"{name}-import-too-large",
                        sampled_requests_enabled=False,
                    ),
                ),
            ],
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
            ),
        )
        association = wafv2.CfnWebACLAssociation(
            self,
            "ApiWebAclAssociation",
            web_acl_arn=acl.attr_arn,
            resource_arn=Fn.join(
                "",
                [
                    f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/restapis/",
                    self.app.get_resource("RestAPI").ref,
                    "/stages/",
                    # SAM's stage: its name, and a dependency on it (see the usage plan).
                    Fn.ref("RestAPI.Stage"),
                ],
            ),
        )
        Validations.of(association).acknowledge(
            Acknowledgment(
                id="CloudFormation-Validate::F1020",
                reason="RestAPI.Stage is SAM's reference to the stage its transform creates; the CDK's own "
                "validation runs before the transform (cfn-lint, which applies it, resolves the reference).",
            )
        )
        return acl

    # --- least privilege ----------------------------------------------------------------

    def _table_arn(self, table_name: str) -> str:
        return self.format_arn(service="dynamodb", resource="table", resource_name=table_name)

    def _grant_least_privilege(self) -> None:
        tenant_tables = self._table_arn(self.stage.tenant_table_pattern)
        self.policies["data-access"].add_statements(
            iam.PolicyStatement(
                sid="ControlTableItems",
                actions=list(ITEM_ACTIONS),
                resources=[
                    self.control_table.table_arn,
                    *(f"{self.control_table.table_arn}/index/{index}" for index in CONTROL_INDEXES),
                ],
            ),
            iam.PolicyStatement(
                sid="TenantTableItems",
                actions=list(ITEM_ACTIONS),
                # <prefix>-tenant-*: this stage's brands only (another stage's prefix, the
                # control table and any other table in the account do not match).
                resources=[tenant_tables, f"{tenant_tables}/index/*"],
            ),
        )
        self.policies["jobs-queue"].add_statements(
            iam.PolicyStatement(
                sid="JobsQueue",
                # Send: the schedules' fan-out. The rest: the SQS event source's poller.
                actions=[*CONSUMER_ACTIONS, "sqs:SendMessage"],
                resources=[self.jobs_queues.queue.queue_arn],
            )
        )
        # Creating a tenant only asks for its table (POST /v1/tenants enqueues).
        self.policies["provisioning-requests"].add_statements(
            iam.PolicyStatement(
                sid="ProvisioningRequests",
                actions=["sqs:SendMessage"],
                resources=[self.provisioning_queues.queue.queue_arn],
            )
        )
        # Webhook work: the schedule enqueues dispatch units, the API (a redelivery, an
        # endpoint re-enabled) and the consumer enqueue drains; the consumer polls.
        self.policies["deliveries-queue"].add_statements(
            iam.PolicyStatement(
                sid="DeliveriesQueue",
                actions=[*CONSUMER_ACTIONS, "sqs:SendMessage"],
                resources=[self.deliveries_queues.queue.queue_arn],
            )
        )
        self.policies["webhook-secrets"].add_statements(
            iam.PolicyStatement(
                sid="WebhookSecrets",
                actions=list(WEBHOOK_KEY_ACTIONS),
                resources=[self.webhook_key.key_arn],
                conditions={
                    # No key other than the tenant and the endpoint in the context...
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(WEBHOOK_KEY_CONTEXT)},
                    # ... and both of them (ForAllValues alone holds for an empty context).
                    "Null": {f"kms:EncryptionContext:{key}": "false" for key in WEBHOOK_KEY_CONTEXT},
                },
            )
        )
        self.policies["event-bus"].add_statements(
            iam.PolicyStatement(
                sid="EventBus",
                actions=["events:PutEvents"],
                resources=[self.event_bus.event_bus_arn],
            )
        )
        self.policies["operator-key"].add_statements(
            iam.PolicyStatement(
                sid="OperatorKeyDigest",
                actions=["ssm:GetParameter"],
                resources=[self.operator_key.parameter_arn],
            )
        )
        self.policies["telemetry"].add_statements(
            *self._telemetry_statements(
                [group for name, group in self.log_groups.items() if name != PROVISIONING_FUNCTION]
            )
        )
        self._grant_provisioning(tenant_tables)

    def _grant_provisioning(self, tenant_tables: str) -> None:
        """The provisioning function: its queue, tenants' registry items, and the only
        table-level rights of the stack. Scoped to the tenant-table prefix: it can make and
        configure tables for this stage's brands and nothing else, and can never delete one."""
        self.provisioning_policies["tenant-registry"].add_statements(
            iam.PolicyStatement(
                sid="TenantRegistry",
                actions=list(REGISTRY_ACTIONS),
                resources=[self.control_table.table_arn],
                # Every key a request names must be a tenant's (GetItem and UpdateItem
                # always name one, so ForAllValues cannot pass on an empty set here).
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [TENANT_REGISTRY_KEYS]}},
            )
        )
        self.provisioning_policies["tenant-table-provisioning"].add_statements(
            iam.PolicyStatement(
                sid="TenantTableProvisioning",
                actions=list(TABLE_PROVISIONING_ACTIONS),
                resources=[tenant_tables],
            )
        )
        self.provisioning_policies["provisioning-queue"].add_statements(
            iam.PolicyStatement(
                sid="ProvisioningQueue",
                actions=list(CONSUMER_ACTIONS),
                resources=[self.provisioning_queues.queue.queue_arn],
            )
        )
        self.provisioning_policies["telemetry"].add_statements(
            *self._telemetry_statements([self.log_groups[PROVISIONING_FUNCTION]])
        )

    @staticmethod
    def _telemetry_statements(groups: list[logs.LogGroup]) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="FunctionLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[group.log_group_arn for group in groups],
            ),
            iam.PolicyStatement(
                sid="XRayTraces",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],  # X-Ray has no resource-level permissions
            ),
        ]

    # --- alarms and dashboard ---------------------------------------------------------

    def _api_metric(self, metric_name: str, statistic: str, label: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name=metric_name,
            dimensions_map={"ApiName": self.api_name, "Stage": self.stage.api_gateway_stage},
            statistic=statistic,
            period=Duration.minutes(5),
            label=label,
        )

    def _function_metric(self, logical_id: str, metric_name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=metric_name,
            dimensions_map={"FunctionName": self.function_name(logical_id)},
            statistic=statistic,
            period=Duration.minutes(5),
            label=f"{logical_id} {metric_name}",
        )

    def _alarms(self) -> tuple[sns.Topic, list[cloudwatch.Alarm]]:
        prefix = self.stage.resource_prefix
        topic = sns.Topic(self, "AlarmTopic", topic_name=f"{prefix}-alarms", enforce_ssl=True)
        alarms = [
            cloudwatch.Alarm(
                self,
                "Api5xxRateAlarm",
                alarm_name=f"{prefix}-api-5xx-rate",
                alarm_description=(
                    f"More than {self.stage.api_5xx_rate_threshold:.0%} of API requests ended in a 5xx "
                    "(a 500 is a bug; a 503 retry_later means DynamoDB throttling or contention)."
                ),
                # The Average of 5XXError is the fraction of requests that ended in a 5xx.
                metric=self._api_metric("5XXError", "Average", "5xx rate"),
                threshold=self.stage.api_5xx_rate_threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "ApiLatencyP99Alarm",
                alarm_name=f"{prefix}-api-latency-p99",
                alarm_description=f"API p99 latency above {self.stage.api_p99_latency_ms} ms.",
                metric=self._api_metric("Latency", "p99", "p99 latency"),
                threshold=self.stage.api_p99_latency_ms,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            self.jobs_queues.dead_letters_alarm(
                self, alarm_description="Job units failed 5 times and wait in the dead-letter queue."
            ),
            self.provisioning_queues.dead_letters_alarm(
                self,
                alarm_description=(
                    f"A tenant's table could not be provisioned in {PROVISIONING_RECEIVES} attempts (about two hours); "
                    "the tenant stays provisioning. Look at its recorded failure, fix (e.g. the table quota), "
                    "then redrive the dead-letter queue (README, Deploy to AWS)."
                ),
            ),
            self.provisioning_queues.backlog_age_alarm(
                self,
                threshold_seconds=1800,
                alarm_description=(
                    "A new tenant has waited over 30 minutes for its table: DynamoDB refuses table operations "
                    "(500 in progress, or the account's table quota), or the provisioning function is failing."
                ),
            ),
            self.deliveries_queues.dead_letters_alarm(
                self,
                alarm_description=(
                    f"Webhook dispatch or drain messages failed {DELIVERIES_RECEIVES} times (storage failing, "
                    "not an endpoint: those back off on their own record). The next minute's sweep asks again; "
                    "look at the deliver-webhooks logs, then purge or redrive the dead-letter queue."
                ),
            ),
            self.deliveries_queues.backlog_age_alarm(
                self,
                threshold_seconds=600,
                alarm_description=(
                    "The oldest webhook message has waited over 10 minutes: deliver-webhooks is failing, "
                    "throttled or stalled, and webhooks (and bus events) are late."
                ),
            ),
            self.jobs_queues.backlog_age_alarm(
                self,
                threshold_seconds=1800,
                alarm_description="The oldest job unit has waited over 30 minutes: the consumer is failing or stalled.",
            ),
        ]
        for logical_id, properties in self.functions.items():
            job = any(e.get("Type") in {"SQS", "Schedule"} for e in (properties.get("Events") or {}).values())
            for metric_name, what in (("Errors", "errors"), ("Throttles", "throttles")):
                alarms.append(
                    cloudwatch.Alarm(
                        self,
                        f"{logical_id}{metric_name}Alarm",
                        alarm_name=f"{prefix}-{logical_id}-{what}",
                        alarm_description=(
                            f"{self.function_name(logical_id)} {what}"
                            + (" (a job run failed)" if job and what == "errors" else "")
                            + "."
                        ),
                        metric=self._function_metric(logical_id, metric_name),
                        threshold=0,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                        evaluation_periods=1,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        action = cloudwatch_actions.SnsAction(topic)
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return topic, alarms

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.stage.resource_prefix,
            default_interval=Duration.hours(6),
        )
        functions = list(self.functions)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    self._api_metric("Count", "Sum", "requests"),
                    self._api_metric("4XXError", "Sum", "4xx"),
                    self._api_metric("5XXError", "Sum", "5xx"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    self._api_metric("Latency", "p50", "p50"),
                    self._api_metric("Latency", "p99", "p99"),
                    self._api_metric("IntegrationLatency", "p99", "integration p99"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles",
                left=[self._function_metric(f, m) for f in functions for m in ("Errors", "Throttles")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms) and concurrency",
                left=[self._function_metric(f, "Duration", "p99") for f in functions],
                right=[self._function_metric(f, "ConcurrentExecutions", "Maximum") for f in functions],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Control table",
                left=[
                    self.control_table.metric_consumed_read_capacity_units(period=Duration.minutes(5)),
                    self.control_table.metric_consumed_write_capacity_units(period=Duration.minutes(5)),
                ],
                width=12,
            ),
            self.jobs_queues.graph_widget("Job queue"),
        )
        dashboard.add_widgets(
            self.provisioning_queues.graph_widget("Tenant provisioning queue"),
            self.deliveries_queues.graph_widget("Webhook queue"),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Webhook functions",
                left=[
                    self._function_metric(f, m)
                    for f in (DISPATCH_FUNCTION, DELIVERIES_FUNCTION)
                    for m in ("Invocations", "Errors")
                ],
                right=[self._function_metric(DELIVERIES_FUNCTION, "Duration", "p99")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Event bus: events matched by rules",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Events",
                        metric_name="MatchedEvents",
                        dimensions_map={"EventBusName": self.event_bus.event_bus_name},
                        statistic="Sum",
                        period=Duration.minutes(5),
                        label="matched events",
                    )
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
        return dashboard

    # --- cdk-nag and outputs ------------------------------------------------------------

    def nag_acknowledgments(self) -> list[tuple[Construct, str, str]]:
        """Every cdk-nag (AwsSolutions) finding this stack keeps: (construct, finding, reason).

        The tests check that each one is still raised without it, so none goes stale.
        cdk-nag checks CloudFormation resource types; the Chalice resources are SAM
        (``AWS::Serverless::*``, expanded at deploy time), which it does not inspect;
        cfn-lint validates those against SAM's schemas instead, and the tests check them."""
        tenant_tables = (
            f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/{self.stage.tenant_table_pattern}"
        )
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
            (
                self.function_role,
                "AwsSolutions-IAM5[Resource::*]",
                "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
            ),
            (
                self.provisioning_role,
                f"AwsSolutions-IAM5[Resource::{tenant_tables}]",
                "The provisioning function creates one table per brand at run time, under names known only then: "
                "the tenant-table prefix of this stage is the narrowest resource, and excludes every other table.",
            ),
            (
                self.provisioning_role,
                "AwsSolutions-IAM5[Resource::*]",
                "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
            ),
        ]

    def _acknowledge_nag_findings(self) -> None:
        for construct, finding, reason in self.nag_acknowledgments():
            Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))

    def _outputs(self) -> None:
        CfnOutput(self, "ControlTableName", value=self.control_table.table_name)
        CfnOutput(self, "TenantTablePattern", value=self.stage.tenant_table_pattern)
        for queues in (self.jobs_queues, self.provisioning_queues, self.deliveries_queues):
            queues.outputs(self)
        CfnOutput(self, "WebhookKeyArn", value=self.webhook_key.key_arn)
        CfnOutput(self, "EventBusName", value=self.event_bus.event_bus_name)
        CfnOutput(self, "OperatorKeyParameterName", value=self.operator_key.parameter_name)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}#dashboards:name={self.stage.resource_prefix}",
        )


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


@contextmanager
def _preserved_environment() -> Iterator[None]:
    """``chalice package`` imports the app with the stage's environment variables written
    into ``os.environ``, and leaves them there (queue URLs as unresolved CDK tokens, the
    stage's table prefix...). Restore it, so that building a stack in-process (the tests
    do) changes nothing around it."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _packaging_region() -> Iterator[None]:
    """``chalice package`` builds a botocore client to learn the region's DNS suffix (for
    service principals such as apigateway.amazonaws.com) and fails without a region. The
    template itself uses ``${AWS::Region}``, and every region of the commercial partition
    has the same suffix, so offline (no AWS configuration) any of them will do."""
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        yield
        return
    os.environ["AWS_DEFAULT_REGION"] = os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    try:
        yield
    finally:
        del os.environ["AWS_DEFAULT_REGION"]


@contextmanager
def _scratch_working_directory() -> Iterator[None]:
    """``chalice.cdk.Chalice`` writes its package to ``./chalice.out``; keep it out of the
    tree. Its files are read (template) and staged (code asset) while the construct is
    built, so the directory can go right after."""
    previous = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="chalice-out-")
    os.chdir(scratch)
    try:
        yield
    finally:
        os.chdir(previous)
        shutil.rmtree(scratch, ignore_errors=True)


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
