"""What differs between the deployed stages, read from one place (no CDK import: cheap).

The table prefix and the SSM parameter name are the app's own settings
(``LOYALTY_TABLE_PREFIX``, ``LOYALTY_OPERATOR_KEY_SSM_PARAMETER``) in
``.chalice/config.json``; the infrastructure reads them from there rather than repeating
them, so the IAM policy is always scoped to the prefix the code will use. The rest
(retention, alarm thresholds, API throttling) is operations policy and lives here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
APP_NAME = "loyalty"
DEPLOYED_STAGES = ("dev", "prod")

# The same rule as chalicelib.settings (a prefix names tables and scopes IAM).
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
_PARAMETER = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")


@dataclass(frozen=True)
class StageSettings:
    name: str
    table_prefix: str
    operator_key_parameter: str
    api_gateway_stage: str
    #: Days the functions' logs are kept (a value CloudWatch Logs accepts).
    log_retention_days: int
    #: API Gateway stage-wide throttling (requests per second, burst), below the account's
    #: default of 10,000 rps shared by every API in the region.
    throttling_rate_limit: int
    throttling_burst_limit: int
    #: Alarm when more than this fraction of requests end in a 5xx over 5 minutes.
    api_5xx_rate_threshold: float
    #: Alarm when the API's p99 latency (ms, API Gateway's ``Latency``) exceeds this.
    api_p99_latency_ms: int
    termination_protection: bool
    #: The app's largest request body (``LOYALTY_MAX_BODY_BYTES``, else the app's default),
    #: which the stage's web ACL also enforces in front of API Gateway.
    max_body_bytes: int = 16_384
    #: The body limit of ``POST /v1/imports`` (``LOYALTY_MAX_IMPORT_BODY_BYTES``): the web ACL
    #: lets such a request through up to it (by its Content-Length) and refuses it above.
    max_import_body_bytes: int = 5_000_000

    @property
    def stack_name(self) -> str:
        return self.resource_prefix

    @property
    def control_table_name(self) -> str:
        return f"{self.table_prefix}-control"

    @property
    def tenant_table_pattern(self) -> str:
        """Every tenant table of this stage (``Settings.tenant_table_name``) and nothing else."""
        return f"{self.table_prefix}-tenant-*"

    @property
    def resource_prefix(self) -> str:
        """Names of this stage's functions, queues, alarms and dashboard start with it."""
        return f"{APP_NAME}-{self.name}"


_OPERATIONS = {
    "dev": dict(
        log_retention_days=30,
        throttling_rate_limit=50,
        throttling_burst_limit=100,
        api_5xx_rate_threshold=0.05,
        api_p99_latency_ms=3000,
        termination_protection=False,
    ),
    "prod": dict(
        log_retention_days=365,
        throttling_rate_limit=1000,
        throttling_burst_limit=2000,
        api_5xx_rate_threshold=0.01,
        api_p99_latency_ms=1500,
        termination_protection=True,
    ),
}


def load_stage(name: str, config_file: Path = CHALICE_CONFIG) -> StageSettings:
    if name not in _OPERATIONS:
        raise ValueError(f"unknown stage {name!r}: deployable stages are {', '.join(DEPLOYED_STAGES)}")
    config = json.loads(config_file.read_text())
    stage = config.get("stages", {}).get(name)
    if stage is None:
        raise ValueError(f"{config_file} has no stage {name!r}")
    environment = {**config.get("environment_variables", {}), **stage.get("environment_variables", {})}
    prefix = environment.get("LOYALTY_TABLE_PREFIX", "")
    parameter = environment.get("LOYALTY_OPERATOR_KEY_SSM_PARAMETER", "")
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"stage {name!r}: LOYALTY_TABLE_PREFIX {prefix!r} is not a valid table prefix")
    if not _PARAMETER.fullmatch(parameter):
        raise ValueError(f"stage {name!r}: LOYALTY_OPERATOR_KEY_SSM_PARAMETER {parameter!r} is not an SSM path")
    if "log_retention_in_days" in json.dumps(config):
        # chalice package 1.34 names the API handler's log group after "ApiHandler" while the
        # function is "APIHandler", so the template does not resolve: retention is set here.
        raise ValueError("set log retention in infra/loyalty_infra/stages.py, not in .chalice/config.json")
    return StageSettings(
        name=name,
        table_prefix=prefix,
        operator_key_parameter=parameter,
        api_gateway_stage=stage.get("api_gateway_stage", config.get("api_gateway_stage", "api")),
        max_body_bytes=int(environment.get("LOYALTY_MAX_BODY_BYTES", StageSettings.max_body_bytes)),
        max_import_body_bytes=int(
            environment.get("LOYALTY_MAX_IMPORT_BODY_BYTES", StageSettings.max_import_body_bytes)
        ),
        **_OPERATIONS[name],
    )
