"""The brand console's files, served by the app itself at ``/console/``: no key, a strict
Content-Security-Policy on every answer, every module and style sheet the page names served
from this origin, ETags for revalidation, and nothing but the console's files."""

from __future__ import annotations

import re

import pytest

from chalicelib.api import console
from tests.support.console_assets import ensure_console_assets
from tests.support.http import Api

_URLS = re.compile(r'(?:src|href)="([^"]+)"')
_IMPORTS = re.compile(r'^import .* from "\./([^"]+)";$', re.MULTILINE)


@pytest.fixture(autouse=True)
def _assets() -> None:
    ensure_console_assets()


def test_the_page_and_every_file_it_loads_come_from_this_origin_under_a_strict_policy(api: Api) -> None:
    # When anybody, without a key, opens the console
    page = api.call("GET", "/console/")
    # Then it is HTML with no inline script or style, under a policy that allows neither
    assert page.status == 200, page
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy
    assert "http" not in policy and "connect-src 'self'" in policy
    assert re.search(r"<script(?![^>]*\bsrc=)", page.body) is None and "style=" not in page.body
    # And every file it names, and every module those import, is served with the same policy
    names = [url for url in _URLS.findall(page.body) if url != "data:," and not url.startswith("#")]
    assert names == ["uPlot.min.css", "console.css", "app.js"]
    seen: set[str] = set()
    while names:
        name = names.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = api.call("GET", f"/console/{name}")
        assert reply.status == 200, (name, reply)
        assert reply.headers["content-security-policy"] == policy
        if name.endswith(".js"):
            assert reply.headers["content-type"] == "text/javascript; charset=utf-8"
            if name != "uPlot.esm.js":  # the console's own modules never parse text as markup or code
                assert "innerHTML" not in reply.body and "eval(" not in reply.body, name
            names += _IMPORTS.findall(reply.body)
    assert {"app.js", "api.js", "ui.js", "overview.js", "members.js", "program.js", "integrations.js"} <= seen
    assert "uPlot.esm.js" in seen


def test_files_are_revalidated_by_etag_and_nothing_else_is_served(api: Api) -> None:
    first = api.call("GET", "/console/app.js")
    again = api.call("GET", "/console/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status == 304 and again.body in ("", None)
    assert first.headers["cache-control"] == "no-cache"
    assert api.call("GET", "/console/uPlot.esm.js").headers["cache-control"] == "public, max-age=86400"
    for name in ("LICENSE", "console.py", "..%2Fapi%2Fconsole.py", "nope.js"):
        missing = api.call("GET", f"/console/{name}")
        assert missing.status == 404 and missing.body["error"]["code"] == "not_found", name
    assert set(console.served_names()) >= {"app.js", "console.css", "uPlot.esm.js", "uPlot.min.css"}
