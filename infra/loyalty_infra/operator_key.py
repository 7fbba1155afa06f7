"""The SSM parameter holding the SHA-256 of the stage's operator key (README, "Deploy to AWS")."""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .stages import StageSettings


def operator_key_parameter(scope: Construct, stage: StageSettings) -> ssm.StringParameter:
    # CloudFormation cannot create a SecureString, and this is not a secret: it is the
    # SHA-256 of a 256-bit random key, which cannot be inverted. The placeholder is not
    # a digest, so no operator key is accepted until an operator sets the real one;
    # CloudFormation leaves the value alone on later deploys while this text is unchanged.
    return ssm.StringParameter(
        scope,
        "OperatorKeyDigest",
        parameter_name=stage.operator_key_parameter,
        string_value="unset: put the operator key's SHA-256 here (README, Deploy to AWS)",
        description=f"SHA-256 (hex) of the {stage.name} operator key",
        tier=ssm.ParameterTier.STANDARD,
    )
