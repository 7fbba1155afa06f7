"""One offline synthesis of every deployed stage per test session, with the CDK CLI from
npm, exactly as `make synth` runs it (cdk-nag's AwsSolutions pack runs inside it and
fails it on any unacknowledged finding), into a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STAGES = ("dev", "prod")
#: No credentials, no profile, no instance metadata: the synthesis cannot reach AWS.
_NO_AWS = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


def offline_environment() -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name not in _NO_AWS}
    environment.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_VERSION_CHECK="1",
    )
    return environment


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    seconds: float
    output: str

    def template_path(self, stage: str) -> Path:
        return self.outdir / f"{stage}.template.json"

    def template(self, stage: str) -> dict[str, Any]:
        return json.loads(self.template_path(stage).read_text())


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesis]:
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: `make install` (npm ci) installs the CDK CLI")
    outdir = tmp_path_factory.mktemp("cdk.out")
    started = time.monotonic()
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(outdir)],
        cwd=INFRA,
        env=offline_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"cdk synth failed ({result.returncode}):\n{output[-6000:]}")
    yield Synthesis(outdir=outdir, seconds=time.monotonic() - started, output=output)


@pytest.fixture(scope="session")
def templates(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    return {stage: synthesis.template(stage) for stage in STAGES}
