"""The stage's EventBridge bus ``loyalty-<stage>`` (``LOYALTY_EVENT_BUS_NAME``)."""

from __future__ import annotations

from aws_cdk import Tags
from aws_cdk import aws_events as events
from constructs import Construct

from .stages import StageSettings


def event_bus(scope: Construct, stage: StageSettings) -> events.EventBus:
    """The stage's own bus: every feed event is put on it (chalicelib/domain/bus.py);
    partners' rules and targets are added to it outside this stack."""
    bus = events.EventBus(scope, "EventBus", event_bus_name=stage.resource_prefix)
    Tags.of(bus).add("component", "integrations")
    return bus
