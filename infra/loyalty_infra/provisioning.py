"""Tenant provisioning: the queue ``loyalty-<stage>-provisioning`` and its dead-letter
queue, and the ``provision-tenant`` function consuming it. The API enqueues one message per
new tenant (``LOYALTY_PROVISIONING_QUEUE_URL``); the function creates the tenant's table
``<prefix>-tenant-<id>``, a few at a time, under its own role (permissions.py), the only
one that may create tables."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from .functions import ChaliceApp
from .queues import QueueWithDeadLetters, queue_with_dead_letters
from .stages import StageSettings

#: The function consuming the queue (``provision-tenant`` in the app), the only one with the
#: provisioning role. Its timeout is in .chalice/config.json (``lambda_functions``).
PROVISIONING_FUNCTION = "ProvisionTenant"
#: The queue's name in the app (``PROVISIONING_QUEUE`` in chalicelib/jobs/provisioning.py).
APP_PROVISIONING_QUEUE_NAMES = ("loyalty-provisioning",)
#: At most this many tables are being provisioned at once (the SQS event source's maximum
#: concurrency): far below DynamoDB's 500 table operations in progress per account.
PROVISIONING_CONCURRENCY = 5
#: Deliveries of a provisioning message before it goes to the dead-letter queue: with a
#: 12-minute visibility timeout, about two hours of retries (DynamoDB's table limits).
PROVISIONING_RECEIVES = 10


def provisioning_queues(scope: Construct, stage: StageSettings) -> QueueWithDeadLetters:
    return queue_with_dead_letters(
        scope,
        "Provisioning",
        queue_name=f"{stage.resource_prefix}-provisioning",
        component="provisioning",
        # 6x the provisioning function's timeout (120 s, .chalice/config.json), as AWS
        # advises; it is also the pause before a failed attempt is retried.
        visibility_timeout=Duration.minutes(12),
        retention_period=Duration.days(14),
        app_queue_names=APP_PROVISIONING_QUEUE_NAMES,
        max_receive_count=PROVISIONING_RECEIVES,
    )


def configure_provisioning_function(app: ChaliceApp, role: iam.Role) -> None:
    """Gives the provisioning function its own role and caps its SQS event source's concurrency."""
    app.require({PROVISIONING_FUNCTION}, "chalicelib/jobs/provisioning.py")
    function = app.resource(PROVISIONING_FUNCTION)
    # Chalice reads a per-function role only from .chalice/config.json, where this
    # stack's role (a token until deploy) cannot be written.
    function.add_property_override("Role", role.role_arn)
    for event_name, _event in app.sqs_events(PROVISIONING_FUNCTION):
        function.add_property_override(
            f"Events.{event_name}.Properties.ScalingConfig", {"MaximumConcurrency": PROVISIONING_CONCURRENCY}
        )
