"""The API reference over real HTTP, as `make run` serves it: `chalice local` answers the page
and its ~2 MB of assets; where Chromium is installed, the page renders every operation with
every host but the API's own unreachable, and the browser reports no Content-Security-Policy
violation."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.api_docs import ensure_api_docs_assets
from tests.support.live_server import chalice_local

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def base_url(moto_server_endpoint: str) -> Iterator[str]:
    ensure_api_docs_assets()
    with chalice_local(moto_server_endpoint, prefix_letter="r") as url:
        yield url


def test_the_page_and_its_assets_over_http(base_url: str) -> None:
    # When a browser-like client fetches the page, then every asset it names
    page = requests.get(f"{base_url}/v1/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    assets = re.findall(r'(?:src|href)="(docs/[^"]+)"', page.text)
    assert len(assets) == 3
    for asset in assets:
        reply = requests.get(f"{base_url}/v1/{asset}", timeout=30)
        # Then each answers whole, with its type and validator
        assert reply.status_code == 200, asset
        assert int(reply.headers["content-length"]) == len(reply.content) > 0
        assert reply.headers["etag"] and reply.headers["content-security-policy"].startswith("default-src 'self'")
        again = requests.get(f"{base_url}/v1/{asset}", headers={"If-None-Match": reply.headers["etag"]}, timeout=10)
        assert again.status_code == 304 and not again.content


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
def test_a_headless_browser_renders_every_operation_from_this_origin_alone(base_url: str) -> None:
    assert CHROMIUM is not None
    browser = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # no other host answers
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{base_url}/v1/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    document = requests.get(f"{base_url}/v1/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    # Then Swagger UI drew one block per operation of the document
    assert browser.stdout.count('class="opblock ') == operations, browser.stderr[-2000:]
    # And the browser refused nothing under the policy
    refused = [line for line in browser.stderr.splitlines() if "Content Security Policy" in line or "Refused" in line]
    assert not refused, refused
