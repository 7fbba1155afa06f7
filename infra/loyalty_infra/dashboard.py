"""The stage's CloudWatch dashboard ``loyalty-<stage>``: the API, the functions, the control
table, the queues, the webhook functions, the event bus, and the alarms' states."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .monitoring import METRIC_PERIOD, api_metric, function_metric
from .stages import StageSettings
from .webhooks import DELIVERIES_FUNCTION, DISPATCH_FUNCTION

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_events as events

    from .queues import StageQueues


def _graph(
    title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None
) -> cloudwatch.GraphWidget:
    """A half-width graph."""
    return cloudwatch.GraphWidget(title=title, left=left, right=right, width=12)


def dashboard(
    scope: Construct,
    stage: StageSettings,
    *,
    functions: list[str],
    control_table: dynamodb.Table,
    queues: StageQueues,
    event_bus: events.EventBus,
    alarms: list[cloudwatch.Alarm],
) -> cloudwatch.Dashboard:
    """``functions``: the app's functions by logical id."""
    board = cloudwatch.Dashboard(
        scope, "Dashboard", dashboard_name=stage.resource_prefix, default_interval=Duration.hours(6)
    )

    def function(logical_id: str, metric_name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        return function_metric(stage, logical_id, metric_name, statistic)

    board.add_widgets(
        _graph(
            title="API requests and errors",
            left=[
                api_metric(stage, "Count", "Sum", "requests"),
                api_metric(stage, "4XXError", "Sum", "4xx"),
                api_metric(stage, "5XXError", "Sum", "5xx"),
            ],
        ),
        _graph(
            title="API latency (ms)",
            left=[
                api_metric(stage, "Latency", "p50", "p50"),
                api_metric(stage, "Latency", "p99", "p99"),
                api_metric(stage, "IntegrationLatency", "p99", "integration p99"),
            ],
        ),
    )
    board.add_widgets(
        _graph(
            title="Lambda errors and throttles",
            left=[function(f, m) for f in functions for m in ("Errors", "Throttles")],
        ),
        _graph(
            title="Lambda duration p99 (ms) and concurrency",
            left=[function(f, "Duration", "p99") for f in functions],
            right=[function(f, "ConcurrentExecutions", "Maximum") for f in functions],
        ),
    )
    board.add_widgets(
        _graph(
            title="Control table",
            left=[
                control_table.metric_consumed_read_capacity_units(period=METRIC_PERIOD),
                control_table.metric_consumed_write_capacity_units(period=METRIC_PERIOD),
            ],
        ),
        queues.jobs.graph_widget("Job queue"),
    )
    board.add_widgets(
        queues.provisioning.graph_widget("Tenant provisioning queue"),
        queues.deliveries.graph_widget("Webhook queue"),
    )
    board.add_widgets(
        _graph(
            title="Webhook functions",
            left=[function(f, m) for f in (DISPATCH_FUNCTION, DELIVERIES_FUNCTION) for m in ("Invocations", "Errors")],
            right=[function(DELIVERIES_FUNCTION, "Duration", "p99")],
        ),
        _graph(
            title="Event bus: events matched by rules",
            left=[
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="MatchedEvents",
                    dimensions_map={"EventBusName": event_bus.event_bus_name},
                    statistic="Sum",
                    period=METRIC_PERIOD,
                    label="matched events",
                )
            ],
        ),
    )
    board.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24))
    return board
