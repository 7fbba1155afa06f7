"""The one typed settings object. The only module that reads the environment.

Settings are built lazily on first use (never at import time), because
``chalice.test.Client`` applies a stage's environment only while a request runs
and because moto must be active before any client is built.

A plain pydantic model read from ``LOYALTY_*`` variables, not pydantic-settings: that
package imports asyncio, dotenv and argparse, ~33 ms of every cold start (measured with
``python -X importtime -c 'import app'``), for a job these few lines do.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,40}$")


ENV_PREFIX = "LOYALTY_"


class Settings(BaseModel):
    # Local tools share the prefix (LOYALTY_MOTO_PORT, LOYALTY_LOCAL_JOBS_EVERY): ignore what is not ours.
    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: str = "dev"
    #: Every table name starts with this; the IAM policy of a stage is scoped to it.
    table_prefix: str = "loyalty-dev"
    #: From AWS_DEFAULT_REGION (set by Lambda), else AWS_REGION.
    aws_region: str = "eu-west-1"
    #: Point PynamoDB at moto's server, DynamoDB Local or any other endpoint.
    dynamodb_endpoint: str | None = None
    dynamodb_connect_timeout_seconds: float = 1.0
    dynamodb_read_timeout_seconds: float = 2.0
    #: botocore-level retries of throttling/5xx (standard mode) per request.
    dynamodb_max_retry_attempts: int = 3
    #: Plain operator key, for local use only.
    operator_key: SecretStr | None = None
    #: SHA-256 hex digest of the operator key (how a deployed stage is configured).
    operator_key_sha256: str | None = None
    #: SSM parameter holding the SHA-256 digest, read lazily once per container.
    operator_key_ssm_parameter: str | None = None
    #: False when POWERTOOLS_TRACE_DISABLED is set: then no tracer is built at all (building
    #: one imports the X-Ray SDK and creates its client, ~190 ms of a cold start, even
    #: when powertools would then leave it disabled).
    tracing: bool = True
    #: SQS queue for per-tenant job units (deployed); unset: schedules run the units in-process.
    jobs_queue_url: str | None = None
    #: SQS queue of tenant provisioning (deployed): creating a tenant registers it as
    #: `provisioning` and enqueues its table's creation. Unset: the table is created inline.
    provisioning_queue_url: str | None = None
    #: Force the asynchronous path without a queue URL (tests): messages wait in process
    #: until delivered to the `provision-tenant` handler.
    provisioning_async: bool = False
    #: How long one provisioning attempt waits for a new table to become ACTIVE before it
    #: gives up (RetryLater; the queue redelivers), and how often it looks.
    provisioning_wait_seconds: float = 60.0
    provisioning_poll_seconds: float = 2.0
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = 16_384
    #: Largest body of ``POST /v1/imports`` (a CSV file), in bytes: under Lambda's 6 MB
    #: request payload (API Gateway would take 10 MB; the WAF refuses more at the edge).
    max_import_body_bytes: int = 5_000_000
    #: Rows of an import in flight at once (each row is one DynamoDB transaction).
    import_row_workers: int = 8
    #: A job unit starts no new chunk of an import after this long (the function's timeout is
    #: 29 s); the import continues in the next message, from its checkpoint.
    import_time_budget_seconds: float = 15.0
    #: Retries of transaction conflicts / throttling that survived botocore's own retries.
    conflict_retry_attempts: int = 64
    conflict_backoff_base_seconds: float = 0.005
    conflict_backoff_cap_seconds: float = 0.2
    #: SQS queue of webhook work (deployed): dispatch units and endpoint drains. Unset: the
    #: `dispatch-webhooks` schedule dispatches and drains in-process.
    deliveries_queue_url: str | None = None
    #: KMS key (id, ARN or alias) sealing webhook signing secrets (deployed: set by infra/).
    #: Unset: `alias/<table_prefix>-webhooks`, created on first use (moto locally).
    webhook_kms_key_id: str | None = None
    #: KMS endpoint (moto's server locally). Unset under `make run` (stage local): the
    #: DynamoDB endpoint, which is the embedded moto server that also speaks KMS.
    kms_endpoint: str | None = None
    #: Webhook URLs may be plain http to loopback (and loopback at all). Unset: only in stage local.
    webhooks_local_mode: bool | None = None
    webhook_connect_timeout_seconds: float = 2.0
    webhook_read_timeout_seconds: float = 5.0
    webhook_max_response_bytes: int = 65_536
    #: The whole exchange with an endpoint, connection to last byte read (a watchdog cuts it).
    webhook_deadline_seconds: float = 10.0
    #: A delivery is retried (exponential backoff with jitter) until it is this old.
    webhook_retry_window_seconds: float = 86_400.0
    webhook_backoff_base_seconds: float = 30.0
    webhook_backoff_cap_seconds: float = 3_600.0
    #: An endpoint failing without a success for this long is disabled (5 days).
    webhook_disable_after_seconds: float = 432_000.0
    #: How long a rotated-out signing secret keeps signing alongside the new one.
    webhook_secret_overlap_seconds: float = 86_400.0
    #: EventBridge bus (name or ARN) every feed event is also put on, with the tenant in its
    #: detail; unset: no bus. ``source`` of those events.
    event_bus_name: str | None = None
    event_bus_source: str = "loyalty"
    #: EventBridge endpoint (tests, local emulators); unset: AWS's.
    events_endpoint: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Every field from its ``LOYALTY_<NAME>`` variable."""
        values: dict[str, str] = {
            name.removeprefix(ENV_PREFIX).lower(): value
            for name, value in environ.items()
            if name.startswith(ENV_PREFIX)
        }
        region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")
        if region:
            values["aws_region"] = region
        if environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true", "yes", "on"}:
            values["tracing"] = "false"
        return cls.model_validate(values)

    @field_validator("table_prefix")
    @classmethod
    def _prefix_is_safe(cls, value: str) -> str:
        if not _PREFIX_PATTERN.fullmatch(value):
            raise ValueError("table_prefix must be lowercase letters, digits and '-'")
        return value

    @property
    def control_table_name(self) -> str:
        return f"{self.table_prefix}-control"

    def tenant_table_name(self, tenant_id: str) -> str:
        return f"{self.table_prefix}-tenant-{tenant_id}"

    @property
    def webhooks_local(self) -> bool:
        return self.webhooks_local_mode if self.webhooks_local_mode is not None else self.stage == "local"

    @property
    def kms_endpoint_url(self) -> str | None:
        if self.kms_endpoint:
            return self.kms_endpoint
        return self.dynamodb_endpoint if self.stage == "local" else None

    @property
    def webhook_local_kms_alias(self) -> str:
        return f"alias/{self.table_prefix}-webhooks"

    def local_operator_key_sha256(self) -> str | None:
        if self.operator_key_sha256:
            return self.operator_key_sha256.lower()
        if self.operator_key is not None:
            return hashlib.sha256(self.operator_key.get_secret_value().encode()).hexdigest()
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment(os.environ)


def reset_settings() -> None:
    """Forget the cached settings (tests, and `make run` after changing the environment)."""
    get_settings.cache_clear()
