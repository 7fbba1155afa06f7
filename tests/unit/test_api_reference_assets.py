"""The API reference's build step: the Makefile copies exactly the files the app serves from
``chalicelib/static/swagger-ui/``, from the swagger-ui-dist that package.json pins."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chalicelib.api import reference

ROOT = Path(__file__).resolve().parents[2]


def _make_variable(name: str) -> str:
    match = re.search(rf"^{name} := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"Makefile: {name} is not set"
    return match.group(1).strip()


def test_the_makefile_copies_the_files_the_app_reads_where_it_reads_them() -> None:
    assert tuple(_make_variable("API_DOCS_FILES").split()) == reference.COPIED_FILES
    assert ROOT / _make_variable("API_DOCS_DIR") == reference.ASSET_DIR
    # Every file served from the copy is copied (start.js is the app's own)
    assert set(reference.SERVED) - {"start.js"} <= set(reference.COPIED_FILES)


def test_swagger_ui_dist_is_a_pinned_runtime_dependency() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    version = package["dependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pinned exactly: the assets are part of the release"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == version
