"""cdk-nag's AwsSolutions pack on the stacks as built in-process: every acknowledgment the
stack makes is justified, and each one is still needed (the finding it answers is raised
without it), so none goes stale. `cdk synth` (conftest) runs the same pack as a validation
plugin and fails on any unacknowledged finding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra.loyalty_infra.stages import load_stage
from tests.infra.conftest import STAGES

if TYPE_CHECKING:
    from infra.loyalty_infra.stack import LoyaltyStack

# aws_cdk (a jsii runtime in Node) is imported by the tests that use it, not at collection:
# every pytest-xdist worker collects every module.


def _findings(stack: Any) -> set[str]:
    from cdk_nag import AwsSolutionsChecks

    report = AwsSolutionsChecks(stack.node.scope).validate_scope(stack)
    return {violation.rule_name for violation in report.violations}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[LoyaltyStack, LoyaltyStack]]:
    from aws_cdk import App

    from infra.loyalty_infra.stack import LoyaltyStack

    class _Unacknowledged(LoyaltyStack):
        def _acknowledge_nag_findings(self) -> None:
            return None

    built = {}
    for stage in STAGES:
        outdir: Path = tmp_path_factory.mktemp(f"nag-{stage}")
        acknowledged = LoyaltyStack(App(outdir=str(outdir / "a")), load_stage(stage))
        bare = _Unacknowledged(App(outdir=str(outdir / "b")), load_stage(stage))
        built[stage] = (acknowledged, bare)
    return built


@pytest.mark.parametrize("stage", STAGES)
def test_aws_solutions_pack_passes(stage: str, stacks: dict[str, tuple[LoyaltyStack, LoyaltyStack]]) -> None:
    acknowledged, _ = stacks[stage]
    assert _findings(acknowledged) == set()


@pytest.mark.parametrize("stage", STAGES)
def test_every_acknowledgment_is_justified_and_still_needed(
    stage: str, stacks: dict[str, tuple[LoyaltyStack, LoyaltyStack]]
) -> None:
    acknowledged, bare = stacks[stage]
    acknowledgments = acknowledged.nag_acknowledgments()
    for _construct, finding, reason in acknowledgments:
        assert finding.startswith("AwsSolutions-") and len(reason) > 40, finding
    assert _findings(bare) == {finding for _construct, finding, _reason in acknowledgments}
    # Only IAM wildcards are acknowledged, and only the tenant-table prefix and X-Ray's "*".
    tenant = f"table/loyalty-{stage}-tenant-*"
    assert {finding for _c, finding, _r in acknowledgments} == {
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:{tenant}]",
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:{tenant}/index/*]",
        "AwsSolutions-IAM5[Resource::*]",
    }
    # Each role acknowledges only what it holds: the provisioning role the tenant tables
    # (no index: it never reads items) and X-Ray; the functions' role also the indexes.
    held = {(construct.node.id, finding) for construct, finding, _r in acknowledgments}
    table_prefix = f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:{tenant}"
    assert held == {
        ("FunctionRole", f"{table_prefix}]"),
        ("FunctionRole", f"{table_prefix}/index/*]"),
        ("FunctionRole", "AwsSolutions-IAM5[Resource::*]"),
        ("ProvisioningRole", f"{table_prefix}]"),
        ("ProvisioningRole", "AwsSolutions-IAM5[Resource::*]"),
    }


def test_building_a_stack_in_process_leaves_the_environment_alone(tmp_path: Path) -> None:
    """``chalice package`` writes the stage's variables into os.environ; a test process that
    builds a stack must not carry, say, a provisioning queue URL into the tests after it."""
    import os

    from aws_cdk import App

    from infra.loyalty_infra.stack import LoyaltyStack

    before = dict(os.environ)
    LoyaltyStack(App(outdir=str(tmp_path)), load_stage("dev"))
    assert dict(os.environ) == before
