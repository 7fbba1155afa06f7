"""The ``loyalty`` command's failures without an API to talk to: one line on stderr, no
traceback, a non-zero exit code; and help that reads well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from devtools.bulk_client import ApiError, HttpReply
from devtools.cli import cli
from devtools.commands.common import one_line as error_line
from tests.support.emulators import free_port


@pytest.fixture
def loyalty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALTY_PROFILES_FILE", str(tmp_path / "profiles.toml"))
    for name in ("LOYALTY_API_URL", "LOYALTY_API_KEY", "LOYALTY_PROFILE", "LOYALTY_DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


def one_line(result: Any, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    line = result.stderr.rstrip("\n")
    assert "\n" not in line and line.startswith("error: "), result.stderr
    return str(line)


def test_jobs_run_refuses_aws_unless_a_stage_is_named(loyalty: Any) -> None:
    line = one_line(loyalty("jobs", "run", "expire-points"))
    assert "needs LOYALTY_DYNAMODB_ENDPOINT" in line and "--stage NAME" in line
    assert "unknown stage 'local': deployed stages are dev, prod" in one_line(
        loyalty("jobs", "run", "expire-points", "--stage", "local")
    )


def test_an_api_that_is_down(loyalty: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    line = one_line(loyalty("points", "balance", "mem_1", "--api", down, "--key", "lk_x"))
    assert line == f"error: cannot reach the API at {down} (connection refused)"


def test_a_bad_profile_or_profiles_file(loyalty: Any, tmp_path: Path) -> None:
    assert "no profile 'prod'" in one_line(loyalty("members", "list", "--profile", "prod"))
    (tmp_path / "profiles.toml").write_text("[profiles.prod\n")
    assert "cannot read the profiles in" in one_line(loyalty("members", "list"))


def test_no_key_anywhere(loyalty: Any) -> None:
    assert "no API key for http://127.0.0.1:8000: pass --key" in one_line(loyalty("members", "list"))


def test_wrong_arguments_are_usage_errors(loyalty: Any) -> None:
    assert "No such option: --point" in one_line(loyalty("points", "earn", "m", "--point", "1"), exit_code=2)
    assert "Missing argument 'MEMBER_ID'" in one_line(loyalty("points", "balance"), exit_code=2)
    assert "Invalid value for '--points'" in one_line(loyalty("points", "redeem", "m", "--points", "x"), exit_code=2)
    assert "No such command 'nope'" in one_line(loyalty("nope"), exit_code=2)


def test_help_reads_well(loyalty: Any) -> None:
    """The root, every group, and commands with flags: plain help, no value shown for a flag."""
    root = typer.main.get_command(cli)
    assert isinstance(root, TyperGroup)
    groups = [(name,) for name in root.commands]
    assert {("program",), ("points",), ("jobs",), ("profile",)} <= set(groups)
    leaves = [("program", "apply"), ("members", "create"), ("points", "earn"), ("jobs", "run"), ("import", "members")]
    for path in [(), *groups, *leaves]:
        result = loyalty(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout and "--help" in result.stdout, (path, result.stdout)
    assert "--diff          Show what would change; write nothing." in loyalty("program", "apply", "--help").stdout


def test_an_invalid_request_names_the_refused_fields() -> None:
    fields = [{"path": f"field{n}", "message": "is wrong", "type": "value_error"} for n in range(5)]
    body = {
        "error": {"code": "invalid_request", "message": "the request body is invalid", "details": {"fields": fields}}
    }
    line = error_line(ApiError(HttpReply(400, {}, json.dumps(body))))
    assert line == (
        "error: 400 invalid_request: the request body is invalid "
        "(field0: is wrong; field1: is wrong; field2: is wrong; 2 more)"
    )
    assert error_line(ApiError(HttpReply(502, {}, "<html>\nBad gateway\n</html>"))) == "error: 502: <html>"
