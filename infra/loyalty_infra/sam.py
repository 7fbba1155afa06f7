"""Reading what ``chalice package`` wrote (its SAM template)."""

from __future__ import annotations

import re
from typing import Any


def sqs_queue_name(queue: Any) -> str:
    """The queue name in Chalice's ARN of an SQS event source (a ``Fn::Sub`` string)."""
    text = str(queue.get("Fn::Sub") if isinstance(queue, dict) else queue)
    match = re.fullmatch(r"arn:\S+:sqs:\S+:([A-Za-z0-9_-]{1,80}(?:\.fifo)?)", text)
    if match is None:
        raise ValueError(f"unexpected SQS event source queue {queue!r}")
    return match.group(1)
