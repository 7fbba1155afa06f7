"""The interactive API reference: ``GET /v1/docs`` and its assets, served by the app itself.

The page and its assets need no key, load nothing from another host (a Content-Security-Policy
of 'self' says so to the browser), and the assets are the files of npm's swagger-ui-dist that
the build copies into ``chalicelib/static/`` (``ensure_api_docs_assets``: the Makefile's step).
"""

from __future__ import annotations

import re

import pytest

from chalicelib.api import reference
from tests.support.api_docs import ensure_api_docs_assets
from tests.support.http import Api

#: Every URL the page names: relative, under the page's own ``docs/`` (so ``/v1/docs/...``).
_URLS = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(autouse=True)
def _assets() -> None:
    ensure_api_docs_assets()


def test_the_page_needs_no_key_and_loads_only_its_own_assets(api: Api) -> None:
    # When anybody, without a key, opens the reference page
    page = api.call("GET", "/v1/docs")

    # Then it is HTML under a policy that allows only this origin
    assert page.status == 200, page
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"
    # And every URL it names is one of its assets, reached relative to the page: /v1/docs/<asset>
    urls = _URLS.findall(page.body)
    assert urls == ["data:,", "docs/swagger-ui.css", "docs/swagger-ui-bundle.js", "docs/start.js"]
    for url in urls[1:]:
        asset = api.call("GET", "/v1/" + url)
        assert asset.status == 200, (url, asset.status)
        assert asset.headers["content-security-policy"] == policy


@pytest.mark.parametrize(
    ("asset", "media"),
    [("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"), ("start.js", "text/javascript")],
)
def test_each_asset_has_its_content_type_and_is_cached_by_its_etag(api: Api, asset: str, media: str) -> None:
    # When the browser fetches an asset
    reply = api.call("GET", f"/v1/docs/{asset}")

    # Then it is that file, of its type, cacheable for a day and revalidated by its ETag
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == f"{media}; charset=utf-8"
    assert reply.headers["cache-control"] == "public, max-age=86400"
    etag = reply.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    if asset != "start.js":
        assert reply.body == (reference.ASSET_DIR / asset).read_text(encoding="utf-8")
    # And asking again with that ETag answers 304 without a body
    again = api.call("GET", f"/v1/docs/{asset}", headers={"If-None-Match": etag})
    assert again.status == 304 and not again.body, again
    assert again.headers["etag"] == etag


def test_the_starter_script_reads_the_document_beside_the_page_and_calls_no_validator(api: Api) -> None:
    script = api.call("GET", "/v1/docs/start.js").body
    assert 'new URL("openapi.json", document.baseURI)' in script
    assert "validatorUrl: null" in script
    assert "http" not in script


@pytest.mark.parametrize("name", ["index.html", "swagger-ui.js.map", "LICENSE", "..%2F..%2Fapp.py", "package.json"])
def test_an_unknown_asset_is_a_404_in_the_api_error_shape(api: Api, name: str) -> None:
    # When something else under /v1/docs/ is asked for (the licence ships, but is not served)
    reply = api.call("GET", f"/v1/docs/{name}")

    # Then it is 404 not_found, as every error of the API
    assert reply.status == 404, reply
    assert reply.body["error"]["code"] == "not_found"
    assert set(reply.body["error"]) == {"code", "message", "details"}
    assert reply.headers["content-security-policy"] == reference.CONTENT_SECURITY_POLICY
