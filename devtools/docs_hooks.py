"""mkdocs hooks (``hooks:`` in mkdocs.yml): the reference pages are generated from the code on
every build (``devtools/reference.py``), added to the site as files that exist nowhere on disk."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    if str(ROOT) not in sys.path:  # mkdocs loads this file by path: make the project importable
        sys.path.insert(0, str(ROOT))
    from devtools.reference import pages

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files
