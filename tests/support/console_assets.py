"""The brand console's library files for tests run without make: the Makefile's copy step
(``CONSOLE_UPLOT_FILES``), in Python."""

from __future__ import annotations

import shutil
from pathlib import Path

from chalicelib.api import console

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "uplot"
#: Where each copied file is in the npm package.
SOURCES = {"uPlot.esm.js": "dist/uPlot.esm.js", "uPlot.min.css": "dist/uPlot.min.css", "LICENSE": "LICENSE"}


def ensure_console_assets() -> None:
    """Copy uplot's files into ``chalicelib/static/uplot/`` as ``make run`` does, unless they are there."""
    if all((console.UPLOT_DIR / name).is_file() for name in console.COPIED_FILES):
        return
    assert PACKAGE.is_dir(), f"{PACKAGE} is missing: make install (npm ci) installs it"
    console.UPLOT_DIR.mkdir(parents=True, exist_ok=True)
    for name in console.COPIED_FILES:
        shutil.copyfile(PACKAGE / SOURCES[name], console.UPLOT_DIR / name)
