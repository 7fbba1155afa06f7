"""The one place that builds the logger, metrics and tracer (powertools).

Tenant ids go to log keys and trace annotations, never to metric dimensions (one
dimension value per brand would multiply the CloudWatch bill by the number of brands).
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "loyalty"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Loyalty", service=SERVICE)
tracer = Tracer(service=SERVICE)

# Read-only requests publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
