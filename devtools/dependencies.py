"""What a developer tool says when the Python running it lacks the project's dependencies.

The tools need the packages of ``requirements-dev.txt`` (typer, rich, requests, moto,
chalice) and the app's own (pydantic, PynamoDB, boto3...), which ``make install`` puts in
``.venv``. Run with another Python (``python3 -m devtools.cli`` without ``.venv``
activated), the first import of one of them fails: instead of a traceback, the tool prints
how to run it and exits with :data:`EXIT_MISSING_DEPENDENCIES`.

Standard library only: this module is imported before any of those packages.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

EXIT_MISSING_DEPENDENCIES = 2
ROOT = Path(__file__).resolve().parents[1]
#: Import errors inside these are the project's own bugs: shown as they are, never as a missing install.
PROJECT_PACKAGES = frozenset({"app", "chalicelib", "devtools", "tests", "bench", "infra"})


def is_missing_dependency(error: ImportError) -> bool:
    """Whether ``error`` is a third-party package that failed to import (absent, or a version
    without the name asked for), as opposed to an import error in the project's own code."""
    root = (error.name or "").split(".")[0]
    return bool(root) and root not in PROJECT_PACKAGES


def _venv_python() -> str:
    python = ROOT / ".venv" / "bin" / "python"
    try:
        return str(python.relative_to(Path.cwd()))
    except ValueError:
        return str(python)


def hint(error: ImportError, module: str, arguments: list[str]) -> str:
    command = shlex.join([_venv_python(), "-m", module, *arguments])
    return "\n".join(
        [
            f"{module}: {error}.",
            f"This Python ({sys.executable}) does not have the project's development dependencies.",
            "Install them into .venv once with `make install`, then run the tool with the .venv's Python:",
            f"  {command}",
            "(or activate it first: `source .venv/bin/activate`).",
        ]
    )


def exit_for_missing_dependency(error: ImportError, module: str) -> NoReturn:
    """Print :func:`hint` on stderr and exit 2 when ``error`` is a missing dependency;
    re-raise it otherwise."""
    if not is_missing_dependency(error):
        raise error
    print(hint(error, module, sys.argv[1:]), file=sys.stderr)
    raise SystemExit(EXIT_MISSING_DEPENDENCIES) from None


@contextmanager
def missing_dependencies_reported(module: str) -> Iterator[None]:
    """Around a tool's entry point: a dependency that its commands import late (moto,
    chalice, the app's packages) is reported like one imported at the top."""
    try:
        yield
    except ImportError as error:
        exit_for_missing_dependency(error, module)
