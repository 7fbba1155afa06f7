"""The interactive API reference: ``GET /v1/docs``, a Swagger UI page over ``GET /v1/openapi.json``.

No key is needed, and the page loads nothing from another host: its script and style sheet
are npm's ``swagger-ui-dist`` (pinned in package.json), copied at build time into
``chalicelib/static/swagger-ui/`` (gitignored; the Makefile's asset step, part of ``make run``,
``make install`` and so of ``make test``, ``make synth`` and ``make deploy``), which Chalice
packages with the rest of ``chalicelib/``. The page's own starter script is served from here.

Like the document, these routes are not declared operations: they describe the API, not
belong to it. Every answer carries a Content-Security-Policy that allows only this origin
(plus ``data:`` images, which the style sheet inlines).
"""

from __future__ import annotations

from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.api.errors import error_response
from chalicelib.api.static_files import StaticFile
from chalicelib.domain.errors import NotFound
from chalicelib.observability import logger

bp = Blueprint(__name__)

#: Where the build step copies swagger-ui-dist's files (inside chalicelib/: in the Lambda bundle).
ASSET_DIR = Path(__file__).resolve().parents[1] / "static" / "swagger-ui"
#: The files of swagger-ui-dist the build step copies (the Makefile's API_DOCS_FILES); the
#: licence files ship with them but are not served.
COPIED_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: The assets change with a deployment only: a day's caching, revalidated by their ETag.
ASSET_CACHE_CONTROL = "public, max-age=86400"
#: The page itself is always revalidated (it names the assets).
PAGE_CACHE_CONTROL = "no-cache"

#: Relative links: the page is ``.../v1/docs``, so ``docs/x`` is ``.../v1/docs/x`` whatever
#: prefix (an API Gateway stage, a custom domain's path) stands before ``/v1``.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Loyalty API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/start.js"></script>
</body>
</html>
"""

#: Swagger UI over the document beside the page; no validator badge (it would call another host).
START_SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0
  });
});
"""


#: What ``/v1/docs/{asset}`` serves, by name: a copied file's name, or the starter script.
SERVED = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "start.js": "text/javascript; charset=utf-8",
}


#: The assets read so far (once per process: a warm Lambda serves them from memory).
_READ: dict[str, StaticFile] = {}


def _asset(name: str) -> StaticFile | None:
    if name in _READ:
        return _READ[name]
    content_type = SERVED[name]
    if name == "start.js":
        asset = StaticFile(START_SCRIPT, content_type)
    else:
        path = ASSET_DIR / name
        if not path.is_file():
            logger.warning("API reference asset missing from the build", extra={"asset": name})
            return None
        asset = StaticFile(path.read_text(encoding="utf-8"), content_type)
    _READ[name] = asset
    return asset


@bp.route("/docs", methods=["GET"])
def api_docs_page() -> Response:
    """The interactive reference page (Swagger UI), for people; machines read /v1/openapi.json."""
    return Response(
        body=PAGE,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": PAGE_CACHE_CONTROL, **_SECURITY_HEADERS},
    )


@bp.route("/docs/{asset}", methods=["GET"])
def api_docs_asset(asset: str) -> Response:
    """A script or style sheet of the page, with its ETag (``If-None-Match`` answers 304)."""
    found = _asset(asset) if asset in SERVED else None
    if found is None:
        response = error_response(NotFound("no such file of the API reference"))
        response.headers.update(_SECURITY_HEADERS)
        return response
    headers = {"Cache-Control": ASSET_CACHE_CONTROL, **_SECURITY_HEADERS}
    return found.answer(bp.current_request.headers.get("if-none-match"), headers)
