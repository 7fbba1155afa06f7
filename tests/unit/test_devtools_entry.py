"""The developer tools run by a Python without the project's packages: a hint and exit 2,
not a traceback. ``python -S`` stands in for such a Python (no site-packages at all)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.dependencies import EXIT_MISSING_DEPENDENCIES, exit_for_missing_dependency, is_missing_dependency

ROOT = Path(__file__).resolve().parents[2]


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "arguments", "missing"),
    [
        ("devtools.cli", ["run-local", "--port", "8123"], "typer"),
        ("devtools.devserver", ["--port", "8123"], "chalice"),
    ],
)
def test_without_the_packages_a_tool_says_how_to_run_it(module: str, arguments: list[str], missing: str) -> None:
    result = _run("-S", "-m", module, *arguments)
    assert result.returncode == EXIT_MISSING_DEPENDENCIES, result.stderr
    assert "Traceback" not in result.stderr
    assert f"No module named '{missing}'" in result.stderr
    assert "make install" in result.stderr
    assert f".venv/bin/python -m {module} {' '.join(arguments)}" in result.stderr
    assert result.stdout == ""


def test_a_package_missing_under_a_command_is_reported_the_same_way() -> None:
    """moto is imported by `run-local` only: the entry point reports it too (on a free port:
    a `make run` of the developer's may hold the default one)."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    probe = textwrap.dedent(
        f"""
        import runpy, sys

        class NoMoto:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "moto":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoMoto())
        sys.argv = ["devtools.cli", "run-local", "--port", "{port}"]
        runpy.run_module("devtools.cli", run_name="__main__", alter_sys=True)
        """
    )
    result = _run("-c", probe)
    assert result.returncode == EXIT_MISSING_DEPENDENCIES, result.stderr
    assert "No module named 'moto" in result.stderr
    assert ".venv/bin/python -m devtools.cli run-local" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_tools_run_with_the_project_python() -> None:
    result = _run("-m", "devtools.cli", "--help")
    assert result.returncode == 0, result.stderr
    assert "run-local" in result.stdout


def test_an_import_error_of_the_project_itself_is_not_taken_for_a_missing_install(
    capsys: pytest.CaptureFixture[str],
) -> None:
    own = ModuleNotFoundError("No module named 'chalicelib.nowhere'", name="chalicelib.nowhere")
    assert not is_missing_dependency(own)
    with pytest.raises(ModuleNotFoundError):
        exit_for_missing_dependency(own, "devtools.cli")
    third_party = ImportError("cannot import name 'Typer' from 'typer'", name="typer")
    assert is_missing_dependency(third_party)
    with pytest.raises(SystemExit) as exited:
        exit_for_missing_dependency(third_party, "devtools.cli")
    assert exited.value.code == EXIT_MISSING_DEPENDENCIES
    assert "make install" in capsys.readouterr().err
