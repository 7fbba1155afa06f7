"""The stage's control-plane table ``<prefix>-control``: the tenant registry and the API
keys (pk/sk and ``gsi1``, on demand, point-in-time recovery, deletion protection, AWS-managed
encryption). Tenant tables are not here: the provisioning function creates each one at run
time (provisioning.py)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Tags
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from .stages import StageSettings

CONTROL_INDEXES = ("gsi1",)


def control_table(scope: Construct, stage: StageSettings) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        "ControlTable",
        table_name=stage.control_table_name,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for index in CONTROL_INDEXES:
        table.add_global_secondary_index(
            index_name=index,
            partition_key=dynamodb.Attribute(name=f"{index}pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=f"{index}sk", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    Tags.of(table).add("component", "control-plane")
    return table
