"""A stage's SQS queue with its dead-letter queue, the two alarms each such pair has (a
message in the dead-letter queue; the oldest message waiting too long), its dashboard
graph and its outputs.

Plain functions and a dataclass, not a construct: every resource is created directly in
the scope it is given, so its construct path, hence its logical ID, is the same as if
the stack had created it itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: How long a dead letter is kept: SQS's maximum, time to look at it and redrive it.
DEAD_LETTER_RETENTION = Duration.days(14)
#: The period of the alarms' and the dashboard's queue metrics.
METRIC_PERIOD = Duration.minutes(5)


@dataclass(frozen=True)
class QueueWithDeadLetters:
    #: The construct ids' stem: ``<name>Queue``, ``<name>DeadLetterQueue``, ``<name>...Alarm``.
    name: str
    #: The queue's name (``queue.queue_name`` is a token); the alarms are named after it.
    queue_name: str
    queue: sqs.Queue
    dead_letters: sqs.Queue

    def dead_letters_alarm(self, scope: Construct, *, alarm_description: str) -> cloudwatch.Alarm:
        """Alarms as soon as one message waits in the dead-letter queue."""
        return cloudwatch.Alarm(
            scope,
            f"{self.name}DeadLettersAlarm",
            alarm_name=f"{self.queue_name}-dead-letters",
            alarm_description=alarm_description,
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=METRIC_PERIOD, statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def backlog_age_alarm(
        self, scope: Construct, *, threshold_seconds: int, alarm_description: str
    ) -> cloudwatch.Alarm:
        """Alarms when the oldest message has waited over ``threshold_seconds`` for two periods."""
        return cloudwatch.Alarm(
            scope,
            f"{self.name}BacklogAgeAlarm",
            alarm_name=f"{self.queue_name}-backlog-age",
            alarm_description=alarm_description,
            metric=self.queue.metric_approximate_age_of_oldest_message(period=METRIC_PERIOD, statistic="Maximum"),
            threshold=threshold_seconds,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def graph_widget(self, title: str) -> cloudwatch.GraphWidget:
        """Messages waiting and dead letters on the left, the oldest message's age on the right."""
        return cloudwatch.GraphWidget(
            title=title,
            left=[
                self.queue.metric_approximate_number_of_messages_visible(period=METRIC_PERIOD),
                self.dead_letters.metric_approximate_number_of_messages_visible(
                    period=METRIC_PERIOD, label="dead letters"
                ),
            ],
            right=[self.queue.metric_approximate_age_of_oldest_message(period=METRIC_PERIOD)],
            width=12,
        )

    def outputs(self, scope: Construct) -> None:
        CfnOutput(scope, f"{self.name}QueueUrl", value=self.queue.queue_url)
        CfnOutput(scope, f"{self.name}DeadLetterQueueUrl", value=self.dead_letters.queue_url)


def queue_with_dead_letters(
    scope: Construct,
    name: str,
    *,
    queue_name: str,
    component: str,
    visibility_timeout: Duration,
    retention_period: Duration,
    max_receive_count: int,
) -> QueueWithDeadLetters:
    """The queue ``queue_name`` (construct id ``<name>Queue``) and its dead-letter queue
    ``<queue_name>-dlq`` (``<name>DeadLetterQueue``), both in ``scope``, encrypted with
    SQS-managed keys, refusing plain HTTP and tagged with ``component``. A message goes
    to the dead-letter queue after ``max_receive_count`` receives."""
    dead_letters = sqs.Queue(
        scope,
        f"{name}DeadLetterQueue",
        queue_name=f"{queue_name}-dlq",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    queue = sqs.Queue(
        scope,
        f"{name}Queue",
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention_period,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=max_receive_count),
    )
    Tags.of(queue).add("component", component)
    Tags.of(dead_letters).add("component", component)
    return QueueWithDeadLetters(name=name, queue_name=queue_name, queue=queue, dead_letters=dead_letters)
