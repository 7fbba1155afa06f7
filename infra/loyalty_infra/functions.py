"""The Chalice app (``chalice.cdk.Chalice``) and its Lambda functions: each named after the
stage, with its own log group (retention, kept on delete), and its SQS event sources
pointed at the stage's queues.

``chalice package`` runs while the construct is built: offline, in a scratch directory,
with the process environment restored after it (see the context managers below)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from .packaging import prebuild_from_environment
from .sam import sqs_queue_name
from .stages import StageSettings

_RETENTION = {
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


def function_name(stage: StageSettings, logical_id: str) -> str:
    """The deployed name of the app's function ``logical_id`` in ``stage``."""
    name = f"{stage.resource_prefix}-{logical_id}"
    if len(name) > 64:
        raise ValueError(f"Lambda function name {name!r} is over 64 characters: shorten the handler's name")
    return name


class ChaliceApp:
    """The app's construct (``app``), its functions by logical id with their SAM properties
    (``functions``), and their log groups once :meth:`add_log_groups` has made them."""

    def __init__(
        self,
        scope: Construct,
        stage: StageSettings,
        *,
        project_dir: Path,
        role_arn: str,
        environment_variables: Mapping[str, str],
    ) -> None:
        self.stage = stage
        # Offline: put the deployment package Chalice would build in its cache first (see
        # packaging.py). Where this environment cannot stand in for Lambda's, nothing is
        # built and Chalice downloads the wheels itself (that needs the network).
        prebuild_from_environment(project_dir)
        with _preserved_environment(), _scratch_working_directory(), _packaging_region():
            self.app = Chalice(
                scope,
                "App",
                source_dir=str(project_dir),
                stage_config={
                    # The role is the stack's: no policy generation, no policy file.
                    "manage_iam_role": False,
                    "iam_role_arn": role_arn,
                    "environment_variables": dict(environment_variables),
                },
            )
            # The functions `chalice package` produced, by logical id, with their properties,
            # from the package's SAM template: the typed accessors of the included
            # AWS::Serverless::Function L1s cannot deserialise its event-source union.
            template = json.loads((Path(self.app._sam_package_dir) / "sam.json").read_text())
        self.functions: dict[str, dict[str, Any]] = {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        self.log_groups: dict[str, logs.LogGroup] = {}

    def resource(self, logical_id: str) -> CfnResource:
        return self.app.get_resource(logical_id)

    def function_name(self, logical_id: str) -> str:
        return function_name(self.stage, logical_id)

    def is_job(self, logical_id: str) -> bool:
        """Whether the function runs from a queue or a schedule (not from the API)."""
        events = (self.functions[logical_id].get("Events") or {}).values()
        return any(event.get("Type") in {"SQS", "Schedule"} for event in events)

    def sqs_events(self, logical_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The function's SQS event sources: (event name, event)."""
        for event_name, event in (self.functions[logical_id].get("Events") or {}).items():
            if event.get("Type") == "SQS":
                yield event_name, event

    def require(self, names: set[str], source: str) -> None:
        """Refuses to synthesise when the app lacks one of the functions ``names`` (defined in ``source``)."""
        missing = names - set(self.functions)
        if missing:
            raise ValueError(f"the app has no {', '.join(sorted(missing))} function ({source})")

    def add_log_groups(self, scope: Construct) -> dict[str, logs.LogGroup]:
        for logical_id in self.functions:
            name = self.function_name(logical_id)
            function = self.resource(logical_id)
            # Explicit names: log groups, the logs policy and the alarms can name them.
            function.add_property_override("FunctionName", name)
            log_group = logs.LogGroup(
                scope,
                f"{logical_id}LogGroup",
                log_group_name=f"/aws/lambda/{name}",
                retention=_RETENTION[self.stage.log_retention_days],
                removal_policy=RemovalPolicy.RETAIN,
            )
            # The group exists (with its retention) before Lambda could create one without.
            function.add_resource_dependency(cast(CfnResource, log_group.node.default_child))
            self.log_groups[logical_id] = log_group
        return self.log_groups

    def point_sqs_events_at(self, queues: Mapping[str, sqs.Queue]) -> None:
        """Points every SQS event source at the stage's queue of that name (``queues``:
        queue name, as the app or the stage names it -> queue); refuses a queue the stage
        does not define, and one whose visibility timeout is under 6x its consumer's timeout."""
        for logical_id, properties in self.functions.items():
            for event_name, event in self.sqs_events(logical_id):
                queue_name = sqs_queue_name(event["Properties"]["Queue"])
                if queue_name not in queues:
                    raise ValueError(
                        f"{logical_id} consumes SQS queue {queue_name!r}, which infra/ does not define: "
                        "add it to the stack (with its dead-letter queue, alarm and IAM statement)"
                    )
                queue = queues[queue_name]
                # AWS advises a visibility timeout of 6x the consumer's timeout (a retry
                # must not overlap a run still going).
                visibility = cast(sqs.CfnQueue, queue.node.default_child).visibility_timeout
                timeout = properties.get("Timeout")
                if not isinstance(visibility, int) or not isinstance(timeout, int) or visibility < 6 * timeout:
                    raise ValueError(
                        f"{queue_name}: visibility timeout {visibility!r} s is under 6x the timeout of "
                        f"{logical_id} ({timeout!r} s)"
                    )
                self.resource(logical_id).add_property_override(
                    f"Events.{event_name}.Properties.Queue", queue.queue_arn
                )


@contextmanager
def _preserved_environment() -> Iterator[None]:
    """``chalice package`` imports the app with the stage's environment variables written
    into ``os.environ``, and leaves them there (queue URLs as unresolved CDK tokens, the
    stage's table prefix...). Restore it, so that building a stack in-process (the tests
    do) changes nothing around it."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _packaging_region() -> Iterator[None]:
    """``chalice package`` builds a botocore client to learn the region's DNS suffix (for
    service principals such as apigateway.amazonaws.com) and fails without a region. The
    template itself uses ``${AWS::Region}``, and every region of the commercial partition
    has the same suffix, so offline (no AWS configuration) any of them will do."""
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        yield
        return
    os.environ["AWS_DEFAULT_REGION"] = os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    try:
        yield
    finally:
        del os.environ["AWS_DEFAULT_REGION"]


@contextmanager
def _scratch_working_directory() -> Iterator[None]:
    """``chalice.cdk.Chalice`` writes its package to ``./chalice.out``; keep it out of the
    tree. Its files are read (template) and staged (code asset) while the construct is
    built, so the directory can go right after."""
    previous = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="chalice-out-")
    os.chdir(scratch)
    try:
        yield
    finally:
        os.chdir(previous)
        shutil.rmtree(scratch, ignore_errors=True)
