"""Creating the control-plane table and each tenant's own table, and the provisioning queue.

A tenant's table is created with the settings a brand's data needs in AWS: on-demand
billing, encryption with the account's AWS-managed KMS key (``aws/dynamodb``), deletion
protection, point-in-time recovery (``UpdateContinuousBackups``: CreateTable cannot set
it), TTL on ``expires_at`` (the webhook delivery log's retention) and tags (tenant, stage)
for cost attribution. Every step checks before it acts, so
the whole is idempotent: a retry, a duplicate message or a table created by an earlier
version of the code ends in the same table.

The calls go to the botocore client PynamoDB's classes share (PynamoDB's ``create_table``
knows neither deletion protection, nor encryption, nor point-in-time recovery); the table's
key schema and indexes still come from the model classes.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import TableError

from chalicelib.domain.errors import RetryLater, TransientStoreError
from chalicelib.persistence.errors import RETRYABLE_CODES, response_code, translate_transient
from chalicelib.persistence.factory import ConnectionConfig, control_models, shared_client, tenant_models
from chalicelib.persistence.models import IndexedItem

#: DynamoDB's answer to a table operation over its limits: 500 table operations in
#: progress per account and region, or the account's table quota (2,500 by default).
LIMIT_EXCEEDED = "LimitExceededException"
#: Point-in-time recovery cannot be enabled in the first moments of a new table.
BACKUPS_UNAVAILABLE = "ContinuousBackupsUnavailableException"
#: The tenant table's TTL attribute (``DeliveryItem.expires_at``).
TTL_ATTRIBUTE = "expires_at"
#: What DynamoDB Local answers for the APIs it lacks (backups, tagging). Tolerated only
#: when an endpoint is configured, i.e. never in AWS.
_EMULATOR_UNSUPPORTED = "UnknownOperationException"


def _ensure_table(schema: type[IndexedItem]) -> None:
    """Create the table unless it exists, and wait until it is ACTIVE. Idempotent."""
    with translate_transient():
        if schema.exists():
            return
        try:
            schema.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        except TableError as error:
            if response_code(error) == LIMIT_EXCEEDED:
                raise RetryLater(
                    "DynamoDB refused a new table for now (table operations or quota)",
                    details={"table": schema.Meta.table_name},
                ) from None
            if response_code(error) != "ResourceInUseException":  # a concurrent creator won
                raise
            schema.create_table(wait=True, billing_mode="PAY_PER_REQUEST")  # returns once it is active


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translated(table: str) -> Iterator[None]:
    """botocore's errors of table operations as domain errors."""
    try:
        yield
    except ClientError as error:
        code = _code(error)
        if code == LIMIT_EXCEEDED:
            raise RetryLater(
                "DynamoDB refuses table operations for now (500 in progress per account, or the "
                "account's table quota is reached); provisioning is retried later",
                details={"table": table, "reason": code},
            ) from None
        if code in RETRYABLE_CODES:
            raise TransientStoreError(f"{code} on table {table}") from error
        raise
    except BotoCoreError as error:  # no answer (timeout, connection): every step is safe to repeat
        raise TransientStoreError(f"{type(error).__name__} on table {table}") from error


class TableProvisioner:
    def __init__(
        self,
        *,
        control_table: str,
        tenant_table_name: Callable[[str], str],
        config: ConnectionConfig,
        stage: str = "local",
        wait_seconds: float = 60.0,
        poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._control_table = control_table
        self._tenant_table_name = tenant_table_name
        self._config = config
        self._stage = stage
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._sleep = sleep

    def ensure_control_table(self) -> None:
        """Local tooling and tests only: deployed stages get theirs from the CDK stack."""
        _ensure_table(control_models(self._control_table, self._config).schema)

    def tags(self, tenant_id: str) -> list[dict[str, str]]:
        return [
            {"Key": "app", "Value": "loyalty"},
            {"Key": "stage", "Value": self._stage},
            {"Key": "component", "Value": "tenant-data"},
            {"Key": "tenant", "Value": tenant_id},
        ]

    def ensure_tenant_tables(self, tenant_id: str) -> None:
        name = self._tenant_table_name(tenant_id)
        schema = tenant_models(tenant_id, name, self._config).schema
        client = shared_client(self._config)
        # One bound for the waits of the whole attempt (well within the function's timeout).
        deadline = time.monotonic() + self._wait_seconds
        with _translated(name):
            table = _describe(client, name)
            created = table is None
            if table is None:
                table = self._create(client, schema, name, tenant_id)
            table = self._wait_until_active(client, name, table, deadline)
            if not table.get("DeletionProtectionEnabled"):  # a table made before it was set at creation
                client.update_table(TableName=name, DeletionProtectionEnabled=True)
            self._enable_point_in_time_recovery(client, name, deadline)
            _enable_time_to_live(client, name)
            if not created:
                self._ensure_tags(client, str(table["TableArn"]), tenant_id)

    # --- the steps ----------------------------------------------------------------------

    def _create(self, client: Any, schema: type[IndexedItem], name: str, tenant_id: str) -> dict[str, Any]:
        definition = schema._get_schema()
        try:
            response = client.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                    for a in definition["attribute_definitions"]
                ],
                KeySchema=definition["key_schema"],
                GlobalSecondaryIndexes=[
                    {"IndexName": i["index_name"], "KeySchema": i["key_schema"], "Projection": i["projection"]}
                    for i in definition["global_secondary_indexes"]
                ],
                SSESpecification={"Enabled": True, "SSEType": "KMS"},  # the AWS-managed key, aws/dynamodb
                DeletionProtectionEnabled=True,
                Tags=self.tags(tenant_id),
            )
        except ClientError as error:
            if _code(error) != "ResourceInUseException":
                raise
            # A concurrent attempt (a duplicate message) created it first: carry on with it.
            table = _describe(client, name)
            if table is None:
                raise
            return table
        return dict(response["TableDescription"])

    def _wait_until_active(self, client: Any, name: str, table: dict[str, Any], deadline: float) -> dict[str, Any]:
        while not _usable(table):
            if time.monotonic() >= deadline:
                raise RetryLater(
                    f"table {name} is still {table.get('TableStatus')}; provisioning is retried later",
                    details={"table": name, "status": str(table.get("TableStatus"))},
                )
            self._sleep(self._poll_seconds)
            described = _describe(client, name)
            if described is None:
                raise RetryLater(f"table {name} disappeared while provisioning", details={"table": name})
            table = described
        return table

    def _enable_point_in_time_recovery(self, client: Any, name: str, deadline: float) -> None:
        while True:
            try:
                client.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
                )
                return
            except ClientError as error:
                if self._emulator_lacks(error):
                    return
                if _code(error) != BACKUPS_UNAVAILABLE:
                    raise
                if time.monotonic() >= deadline:
                    raise RetryLater(
                        f"point-in-time recovery cannot be enabled on {name} yet; provisioning is retried later",
                        details={"table": name, "reason": BACKUPS_UNAVAILABLE},
                    ) from None
                self._sleep(self._poll_seconds)

    def _ensure_tags(self, client: Any, arn: str, tenant_id: str) -> None:
        """Tags of a table that already existed (a retry after the creation, or an older table)."""
        try:
            present = {tag["Key"]: tag["Value"] for tag in client.list_tags_of_resource(ResourceArn=arn)["Tags"]}
            missing = [tag for tag in self.tags(tenant_id) if present.get(tag["Key"]) != tag["Value"]]
            if missing:
                client.tag_resource(ResourceArn=arn, Tags=missing)
        except ClientError as error:
            if not self._emulator_lacks(error):
                raise

    def _emulator_lacks(self, error: ClientError) -> bool:
        return self._config.endpoint is not None and _code(error) == _EMULATOR_UNSUPPORTED


def _enable_time_to_live(client: Any, name: str) -> None:
    """TTL on ``expires_at`` (settled webhook deliveries leave the log by it). Checked first:
    enabling it again is a ValidationException, and a retried attempt finds it on."""
    described = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if described.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        return
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_table(TableName=name)["Table"])
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return None
        raise


def _usable(table: dict[str, Any]) -> bool:
    indexes = table.get("GlobalSecondaryIndexes") or []
    return table.get("TableStatus") == "ACTIVE" and all(i.get("IndexStatus") == "ACTIVE" for i in indexes)


# --- the provisioning queue -------------------------------------------------------------------


def provisioning_message(tenant_id: str) -> str:
    return json.dumps({"tenant_id": tenant_id}, separators=(",", ":"))


class SqsProvisioningQueue:
    """The deployed queue (``LOYALTY_PROVISIONING_QUEUE_URL``), consumed by the
    ``provision-tenant`` function (chalicelib/jobs/provisioning.py)."""

    #: The message is sent before the tenant is registered: a short delay lets the
    #: registration land before the consumer looks for the tenant.
    DELAY_SECONDS = 2

    def __init__(self, queue_url: str, client: Callable[[], Any]) -> None:
        self._queue_url = queue_url
        self._client = client

    def enqueue(self, tenant_id: str) -> None:
        try:
            self._client().send_message(
                QueueUrl=self._queue_url, MessageBody=provisioning_message(tenant_id), DelaySeconds=self.DELAY_SECONDS
            )
        except (ClientError, BotoCoreError) as error:
            raise RetryLater(
                "the provisioning queue is unavailable; nothing was created",
                details={"reason": type(error).__name__},
            ) from error


class InProcessProvisioningQueue:
    """``LOYALTY_PROVISIONING_ASYNC`` without a queue URL (tests): the messages wait here
    until someone delivers them to the ``provision-tenant`` handler (``drain``)."""

    def __init__(self) -> None:
        self._messages: deque[str] = deque()

    def enqueue(self, tenant_id: str) -> None:
        self._messages.append(provisioning_message(tenant_id))

    def drain(self) -> list[str]:
        """The waiting message bodies, oldest first; the queue is left empty."""
        messages = list(self._messages)
        self._messages.clear()
        return messages
