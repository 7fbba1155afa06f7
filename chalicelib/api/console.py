"""The brand console: a static web app at ``/console/`` that works through the public API alone.

The console's own files (HTML, CSS, plain ES modules) live in ``chalicelib/console/``; the
charting library (npm's ``uplot``, pinned in package.json) is copied at build time into
``chalicelib/static/uplot/`` (gitignored; the Makefile's asset step, part of ``make run`` and
``make install``). Both sit inside ``chalicelib/``, which Chalice packages into the Lambda
bundle: the deployed API serves the console itself, on the same origin as ``/v1`` (no CORS,
no second deployment, and the key never leaves that origin).

The console is not an operation of the API: these routes need no key, and every answer carries
a Content-Security-Policy that allows scripts, styles and requests to this origin only, with
no inline script or style.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.api.errors import error_response
from chalicelib.api.static_files import StaticFile
from chalicelib.domain.errors import NotFound
from chalicelib.observability import logger

bp = Blueprint(__name__)

#: The console's own files (in the repository).
SOURCE_DIR = Path(__file__).resolve().parents[1] / "console"
#: Where the build step copies uPlot's files (the Makefile's CONSOLE_UPLOT_FILES).
UPLOT_DIR = Path(__file__).resolve().parents[1] / "static" / "uplot"
#: The files of uplot the build step copies; the licence ships with them but is not served.
COPIED_FILES = ("uPlot.esm.js", "uPlot.min.css", "LICENSE")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: The page and its modules are revalidated on every load (a deployment changes them together);
#: the library only changes with its pinned version.
APP_CACHE_CONTROL = "no-cache"
LIBRARY_CACHE_CONTROL = "public, max-age=86400"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset(StaticFile):
    cache_control: str


def served_names() -> dict[str, Path]:
    """Every file the console serves, by the name in its URL (``/console/<name>``)."""
    names = {p.name: p for p in sorted(SOURCE_DIR.iterdir()) if p.suffix in _TYPES and p.name != "index.html"}
    names.update({name: UPLOT_DIR / name for name in COPIED_FILES if Path(name).suffix in _TYPES})
    return names


@functools.cache
def _names() -> dict[str, Path]:
    return served_names()


#: The files read so far (once per process: a warm Lambda serves them from memory).
_READ: dict[str, Asset] = {}


def _asset(name: str) -> Asset | None:
    if name in _READ:
        return _READ[name]
    path = _names().get(name) if name != "index.html" else SOURCE_DIR / name
    if path is None:
        return None
    if not path.is_file():
        logger.warning("console file missing from the build", extra={"asset": name})
        return None
    cache = LIBRARY_CACHE_CONTROL if path.parent == UPLOT_DIR else APP_CACHE_CONTROL
    asset = Asset(path.read_text(encoding="utf-8"), _TYPES[path.suffix], cache)
    _READ[name] = asset
    return asset


def _answer(name: str) -> Response:
    found = _asset(name)
    if found is None:
        response = error_response(NotFound("no such file of the console"))
        response.headers.update(SECURITY_HEADERS)
        return response
    headers = {"Cache-Control": found.cache_control, **SECURITY_HEADERS}
    return found.answer(bp.current_request.headers.get("if-none-match"), headers)


@bp.route("/console", methods=["GET"])
def console_page() -> Response:
    """The console's page. Its files are named relative to ``.../console/``: a request for
    ``.../console`` (no trailing slash) is sent there first."""
    path = str((bp.current_request.context or {}).get("path") or "")
    if path and not path.endswith("/"):
        location = path.rsplit("/", 1)[-1] + "/"
        return Response(body="", status_code=301, headers={"Location": location, **SECURITY_HEADERS})
    return _answer("index.html")


@bp.route("/console/{asset}", methods=["GET"])
def console_asset(asset: str) -> Response:
    """A module, style sheet or library file of the console, with its ETag (``If-None-Match``
    answers 304)."""
    return _answer(asset)
