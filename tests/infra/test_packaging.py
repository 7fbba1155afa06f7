"""The offline stand-in for Chalice's pip step and the stage settings: no synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.loyalty_infra import packaging
from infra.loyalty_infra.sam import sqs_queue_name
from infra.loyalty_infra.stages import load_stage

GLIBC_311 = (2, 26)


@pytest.mark.parametrize(
    ("tag", "fits"),
    [
        ("py3-none-any", True),
        ("py2-none-any", False),
        ("cp311-cp311-manylinux2014_x86_64", True),
        ("cp311-cp311-manylinux_2_17_x86_64", True),
        ("cp311-abi3-manylinux_2_17_x86_64", True),
        ("cp311-cp311-manylinux_2_28_x86_64", False),  # newer glibc than Lambda's python3.11
        ("cp311-cp311-manylinux2014_aarch64", False),
        ("cp312-cp312-manylinux2014_x86_64", False),
        ("cp311-cp311-macosx_11_0_arm64", False),
        ("cp311-cp311-win_amd64", False),
        ("cp311-cp311-linux_x86_64", False),  # built here: no promise it loads on Amazon Linux
    ],
)
def test_wheel_tags_that_load_on_lambda_python311(tag: str, fits: bool) -> None:
    assert packaging._fits_lambda(tag, "cp311", "x86_64", GLIBC_311) is fits


def test_runtime_closure_is_the_pinned_requirements_and_their_dependencies() -> None:
    root = Path(__file__).resolve().parents[2]
    closure = packaging._closure(packaging._pinned_requirements(root / "requirements.txt"))
    names = {d.metadata["Name"].lower().replace("_", "-") for d in closure}
    assert {"pydantic", "pydantic-core", "pynamodb", "botocore", "aws-lambda-powertools", "jmespath"} <= names
    assert not names & {"chalice", "pytest", "moto", "aws-cdk-lib", "pip", "setuptools"}


def test_requirements_with_options_are_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--index-url https://example.invalid/simple\npydantic==2.14.3\n")
    with pytest.raises(packaging.NotPackageable):
        packaging._pinned_requirements(requirements)


def test_a_version_other_than_the_pin_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==1.0.0\n")
    with pytest.raises(packaging.NotPackageable, match="pydantic"):
        packaging._closure(packaging._pinned_requirements(requirements))


def test_queue_name_from_chalice_event_source() -> None:
    sub = {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:loyalty-jobs"}
    assert sqs_queue_name(sub) == "loyalty-jobs"
    with pytest.raises(ValueError):
        sqs_queue_name({"Fn::GetAtt": ["Queue", "Arn"]})


def test_stage_settings_come_from_the_chalice_config(tmp_path: Path) -> None:
    prod = load_stage("prod")
    assert (prod.table_prefix, prod.control_table_name, prod.tenant_table_pattern) == (
        "loyalty-prod",
        "loyalty-prod-control",
        "loyalty-prod-tenant-*",
    )
    assert prod.operator_key_parameter == "/loyalty/prod/operator-key-sha256"
    with pytest.raises(ValueError, match="unknown stage"):
        load_stage("local")
    config = {"stages": {"dev": {"environment_variables": {"LOYALTY_TABLE_PREFIX": "Loyalty*"}}}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="LOYALTY_TABLE_PREFIX"):
        load_stage("dev", path)
