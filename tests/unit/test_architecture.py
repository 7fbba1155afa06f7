"""The import contracts of pyproject.toml ([tool.importlinter]): the domain stays plain Python,
persistence and the HTTP layer stay below the handlers that use them, and no package has an
import cycle. `make test` runs `lint-imports` too; this test lets pytest alone check them."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exit_code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capfd.readouterr().out
    assert exit_code == 0, report
