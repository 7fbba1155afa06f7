"""The stage's CloudWatch alarms (API 5xx rate and p99 latency, each function's errors and
throttles, dead letters and backlog age of the queues), notifying an SNS topic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from .jobs import JOBS_RECEIVES
from .monitoring import alarm_above, api_metric, function_metric
from .provisioning import PROVISIONING_RECEIVES
from .stages import StageSettings
from .webhooks import DELIVERIES_RECEIVES

if TYPE_CHECKING:
    from .functions import ChaliceApp
    from .queues import StageQueues


def stage_alarms(
    scope: Construct,
    stage: StageSettings,
    *,
    app: ChaliceApp,
    queues: StageQueues,
) -> tuple[sns.Topic, list[cloudwatch.Alarm]]:
    """The alarm topic and every alarm, each notifying it when it fires and when it clears."""
    prefix = stage.resource_prefix
    jobs, provisioning, deliveries = queues
    topic = sns.Topic(scope, "AlarmTopic", topic_name=f"{prefix}-alarms", enforce_ssl=True)
    alarms = [
        alarm_above(
            scope,
            "Api5xxRateAlarm",
            alarm_name=f"{prefix}-api-5xx-rate",
            alarm_description=(
                f"More than {stage.api_5xx_rate_threshold:.0%} of API requests ended in a 5xx "
                "(a 500 is a bug; a 503 retry_later means DynamoDB throttling or contention)."
            ),
            # The Average of 5XXError is the fraction of requests that ended in a 5xx.
            metric=api_metric(stage, "5XXError", "Average", "5xx rate"),
            threshold=stage.api_5xx_rate_threshold,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        ),
        alarm_above(
            scope,
            "ApiLatencyP99Alarm",
            alarm_name=f"{prefix}-api-latency-p99",
            alarm_description=f"API p99 latency above {stage.api_p99_latency_ms} ms.",
            metric=api_metric(stage, "Latency", "p99", "p99 latency"),
            threshold=stage.api_p99_latency_ms,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        ),
        jobs.dead_letters_alarm(
            scope, alarm_description=f"Job units failed {JOBS_RECEIVES} times and wait in the dead-letter queue."
        ),
        provisioning.dead_letters_alarm(
            scope,
            alarm_description=(
                f"A tenant's table could not be provisioned in {PROVISIONING_RECEIVES} attempts (about two hours); "
                "the tenant stays provisioning. Look at its recorded failure, fix (e.g. the table quota), "
                "then redrive the dead-letter queue (README, Deploy to AWS)."
            ),
        ),
        provisioning.backlog_age_alarm(
            scope,
            threshold_seconds=1800,
            alarm_description=(
                "A new tenant has waited over 30 minutes for its table: DynamoDB refuses table operations "
                "(500 in progress, or the account's table quota), or the provisioning function is failing."
            ),
        ),
        deliveries.dead_letters_alarm(
            scope,
            alarm_description=(
                f"Webhook dispatch or drain messages failed {DELIVERIES_RECEIVES} times (storage failing, "
                "not an endpoint: those back off on their own record). The next minute's sweep asks again; "
                "look at the deliver-webhooks logs, then purge or redrive the dead-letter queue."
            ),
        ),
        deliveries.backlog_age_alarm(
            scope,
            threshold_seconds=600,
            alarm_description=(
                "The oldest webhook message has waited over 10 minutes: deliver-webhooks is failing, "
                "throttled or stalled, and webhooks (and bus events) are late."
            ),
        ),
        jobs.backlog_age_alarm(
            scope,
            threshold_seconds=1800,
            alarm_description="The oldest job unit has waited over 30 minutes: the consumer is failing or stalled.",
        ),
    ]
    for logical_id in app.functions:
        for metric_name, what in (("Errors", "errors"), ("Throttles", "throttles")):
            alarms.append(
                alarm_above(
                    scope,
                    f"{logical_id}{metric_name}Alarm",
                    alarm_name=f"{prefix}-{logical_id}-{what}",
                    alarm_description=(
                        f"{app.function_name(logical_id)} {what}"
                        + (" (a job run failed)" if app.is_job(logical_id) and what == "errors" else "")
                        + "."
                    ),
                    metric=function_metric(stage, logical_id, metric_name),
                    threshold=0,
                    evaluation_periods=1,
                )
            )
    action = cloudwatch_actions.SnsAction(topic)
    for alarm in alarms:
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
    return topic, alarms
