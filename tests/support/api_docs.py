"""The API reference's assets for tests run without make: the Makefile's copy step, in Python."""

from __future__ import annotations

import shutil
from pathlib import Path

from chalicelib.api import reference

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "swagger-ui-dist"


def ensure_api_docs_assets() -> None:
    """Copy swagger-ui-dist's files into ``chalicelib/static/swagger-ui/`` as ``make run`` does,
    unless they are there."""
    if all((reference.ASSET_DIR / name).is_file() for name in reference.COPIED_FILES):
        return
    assert PACKAGE.is_dir(), f"{PACKAGE} is missing: make install (npm ci) installs it"
    reference.ASSET_DIR.mkdir(parents=True, exist_ok=True)
    for name in reference.COPIED_FILES:
        shutil.copyfile(PACKAGE / name, reference.ASSET_DIR / name)
