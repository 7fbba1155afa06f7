"""The import contracts of pyproject.toml ([tool.importlinter]): the domain stays plain Python,
persistence and the HTTP layer stay below the handlers that use them, and no package has an
import cycle. `make test` runs `lint-imports` too; this test lets pytest alone check them.

import-linter runs in its own process: in this one it would reconfigure logging for every
later test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_the_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 4 kept, 0 broken." in run.stdout, run.stdout
