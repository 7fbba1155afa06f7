"""What the alarms (alarms.py, queues.py) and the dashboard (dashboard.py) are made of: the
metrics they watch, and the one kind of alarm the stage has."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .api import api_name
from .functions import function_name
from .stages import StageSettings

#: The period of every alarm's and graph's metric.
METRIC_PERIOD = Duration.minutes(5)


def alarm_above(
    scope: Construct,
    construct_id: str,
    *,
    alarm_name: str,
    alarm_description: str,
    metric: cloudwatch.IMetric,
    threshold: float,
    evaluation_periods: int,
    datapoints_to_alarm: int | None = None,
) -> cloudwatch.Alarm:
    """Alarms when ``metric`` is over ``threshold``; no data is not a breach."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=alarm_name,
        alarm_description=alarm_description,
        metric=metric,
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


def api_metric(stage: StageSettings, metric_name: str, statistic: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=metric_name,
        dimensions_map={"ApiName": api_name(stage), "Stage": stage.api_gateway_stage},
        statistic=statistic,
        period=METRIC_PERIOD,
        label=label,
    )


def function_metric(
    stage: StageSettings, logical_id: str, metric_name: str, statistic: str = "Sum"
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name=metric_name,
        dimensions_map={"FunctionName": function_name(stage, logical_id)},
        statistic=statistic,
        period=METRIC_PERIOD,
        label=f"{logical_id} {metric_name}",
    )
