"""The Lambda entry module must not build AWS clients or read settings when imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_builds_no_aws_client_and_reads_no_settings() -> None:
    probe = textwrap.dedent(
        """
        import botocore.session
        def refuse(*args, **kwargs):
            raise SystemExit("an AWS client was created at import time")
        botocore.session.Session.create_client = refuse

        import app
        from chalicelib.settings import get_settings
        from chalicelib.services import platform
        assert get_settings.cache_info().currsize == 0, "settings were read at import"
        assert platform.cache_info().currsize == 0, "services were built at import"
        assert len(app.app.routes) >= 10
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1"},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith("clean")


def test_cli_tools_are_not_imported_by_the_app() -> None:
    probe = "import sys, app; print(sorted(m for m in ('typer', 'rich', 'moto', 'chalicelib.cli') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
