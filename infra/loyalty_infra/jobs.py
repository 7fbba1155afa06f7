"""The lifecycle jobs' fan-out queue ``loyalty-<stage>-jobs`` and its dead-letter queue: the
jobs (points expiry and the others) enqueue one message per tenant from their EventBridge
schedule (a SAM ``Schedule`` event of the app's own) and consume them from this queue
(``LOYALTY_JOBS_QUEUE_URL``)."""

from __future__ import annotations

from aws_cdk import Duration
from constructs import Construct

from .queues import QueueWithDeadLetters, queue_with_dead_letters
from .stages import StageSettings

#: The queue's name in the app (``JOBS_QUEUE`` in chalicelib/jobs/lifecycle.py).
APP_JOBS_QUEUE_NAMES = ("loyalty-jobs",)
#: Deliveries of a job unit before it goes to the dead-letter queue.
JOBS_RECEIVES = 5


def jobs_queues(scope: Construct, stage: StageSettings) -> QueueWithDeadLetters:
    return queue_with_dead_letters(
        scope,
        "Jobs",
        queue_name=f"{stage.resource_prefix}-jobs",
        component="jobs",
        # Lambda's SQS poller needs at least the function timeout (29 s); AWS advises 6x.
        visibility_timeout=Duration.minutes(3),
        retention_period=Duration.days(4),
        app_queue_names=APP_JOBS_QUEUE_NAMES,
        max_receive_count=JOBS_RECEIVES,
    )
