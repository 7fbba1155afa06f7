"""One stage of the loyalty API: the Chalice app and everything it needs around it, each
concern built by its own module:

* control_table.py: the control-plane table ``<prefix>-control`` (tenant tables are made at
  run time by the provisioning function);
* jobs.py, provisioning.py, webhooks.py: the job fan-out, tenant provisioning and webhook
  queues (each with its dead-letter queue, queues.py), the provisioning function's
  settings, and the KMS key sealing webhook signing secrets;
* event_bus.py: the stage's EventBridge bus; operator_key.py: the SSM parameter holding the
  operator key's SHA-256;
* permissions.py: the two execution roles, statement by statement;
* functions.py: the Chalice app, its functions' names and log groups;
* api.py, waf.py: the REST API's stage settings, usage plan, gateway responses and web ACL;
* alarms.py, dashboard.py (monitoring.py): alarms notifying an SNS topic, and a dashboard.

Every module creates its resources directly in the stack (no intermediate construct), so
each resource's construct path, hence its logical ID, is the stack's own.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Aws, CfnOutput, Stack, Tags, Validations
from constructs import Construct

from .alarms import stage_alarms
from .api import configure_rest_api, usage_plan
from .control_table import control_table
from .dashboard import dashboard
from .event_bus import event_bus
from .functions import ChaliceApp
from .jobs import jobs_queues
from .operator_key import operator_key_parameter
from .permissions import ExecutionRoles, NagAcknowledgment
from .provisioning import configure_provisioning_function, provisioning_queues
from .queues import StageQueues
from .stages import APP_NAME, PROJECT_DIR, StageSettings
from .waf import web_acl
from .webhooks import deliveries_queues, require_webhook_functions, webhook_key


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

        self.control_table = control_table(self, stage)
        self.queues = StageQueues(
            jobs=jobs_queues(self, stage),
            provisioning=provisioning_queues(self, stage),
            deliveries=deliveries_queues(self, stage),
        )
        self.webhook_key = webhook_key(self, stage)
        self.event_bus = event_bus(self, stage)
        self.operator_key = operator_key_parameter(self, stage)
        self.roles = ExecutionRoles(self, stage)

        self.app = ChaliceApp(
            self,
            stage,
            project_dir=project_dir,
            role_arn=self.roles.function_role.role_arn,
            environment_variables={
                "LOYALTY_JOBS_QUEUE_URL": self.queues.jobs.queue.queue_url,
                "LOYALTY_PROVISIONING_QUEUE_URL": self.queues.provisioning.queue.queue_url,
                "LOYALTY_DELIVERIES_QUEUE_URL": self.queues.deliveries.queue.queue_url,
                # Required deployed: without it the code would create a key itself.
                "LOYALTY_WEBHOOK_KMS_KEY_ID": self.webhook_key.key_arn,
                # The source stays the app's default (`loyalty`).
                "LOYALTY_EVENT_BUS_NAME": self.event_bus.event_bus_name,
            },
        )
        log_groups = self.app.add_log_groups(self)
        require_webhook_functions(self.app)
        self.app.point_sqs_events_at(self.queues.by_name())
        configure_provisioning_function(self.app, self.roles.provisioning_role)
        rest_api = configure_rest_api(self.app, stage)
        self.usage_plan = usage_plan(self, stage, rest_api)
        self.web_acl = web_acl(self, stage, rest_api)
        self.roles.grant(
            control_table=self.control_table,
            queues=self.queues,
            webhook_key=self.webhook_key,
            event_bus=self.event_bus,
            operator_key=self.operator_key,
            log_groups=log_groups,
        )
        self.alarm_topic, self.alarms = stage_alarms(self, stage, app=self.app, queues=self.queues)
        self.dashboard = dashboard(
            self,
            stage,
            functions=list(self.app.functions),
            control_table=self.control_table,
            queues=self.queues,
            event_bus=self.event_bus,
            alarms=self.alarms,
        )
        self._acknowledge_nag_findings()
        self._outputs()

    def nag_acknowledgments(self) -> list[NagAcknowledgment]:
        """Every cdk-nag (AwsSolutions) finding this stack keeps: (construct, finding, reason).

        The tests check that each one is still raised without it, so none goes stale.
        cdk-nag checks CloudFormation resource types; the Chalice resources are SAM
        (``AWS::Serverless::*``, expanded at deploy time), which it does not inspect;
        cfn-lint validates those against SAM's schemas instead, and the tests check them."""
        return self.roles.nag_acknowledgments()

    def _acknowledge_nag_findings(self) -> None:
        for construct, finding, reason in self.nag_acknowledgments():
            Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))

    def _outputs(self) -> None:
        CfnOutput(self, "ControlTableName", value=self.control_table.table_name)
        CfnOutput(self, "TenantTablePattern", value=self.stage.tenant_table_pattern)
        for queues in self.queues:
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
