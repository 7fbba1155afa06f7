"""The one place that builds the logger, metrics and tracer (powertools).

Tenant ids go to log keys and trace annotations, never to metric dimensions (one
dimension value per brand would multiply the CloudWatch bill by the number of brands).

The tracer is built on the first invocation, not at import: importing the X-Ray SDK
instantiates its global recorder, which creates a botocore client, and nothing may
build an AWS client at import time (it also keeps that cost out of cold starts when
tracing is disabled).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from chalice import ConvertToMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Tracer

SERVICE = "loyalty"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Loyalty", service=SERVICE)

# Read-only requests publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def tracing_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware: powertools' capture_lambda_handler around every invocation."""
    from chalicelib.settings import get_settings

    if not get_settings().tracing:
        return get_response(event)
    return ConvertToMiddleware(tracer().capture_lambda_handler)(event, get_response)


def annotate(**annotations: str) -> None:
    """Trace annotations (searchable in X-Ray) for the current invocation."""
    from chalicelib.settings import get_settings

    if not get_settings().tracing:
        return
    current = tracer()
    for key, value in annotations.items():
        current.put_annotation(key=key, value=value)
