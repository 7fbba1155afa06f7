"""The files served beside the operations: their ETag, and the conditional GET."""

from __future__ import annotations

import pytest

from chalicelib.api.static_files import StaticFile

CSS = StaticFile("body{}", "text/css; charset=utf-8")
ETAG = '"7c98040a541657584690ae2a1cc3b42a"'
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def test_the_etag_is_a_quoted_prefix_of_the_content_hash() -> None:
    assert CSS.etag == ETAG


@pytest.mark.parametrize("asked", [None, "", '"other"', "*"])
def test_without_its_etag_asked_the_file_is_sent(asked: str | None) -> None:
    reply = CSS.answer(asked, HEADERS)

    assert reply.status_code == 200 and reply.body == "body{}"
    assert reply.headers == {"Content-Type": "text/css; charset=utf-8", "ETag": ETAG, **HEADERS}


@pytest.mark.parametrize("asked", [ETAG, f"W/{ETAG}", f'"other", {ETAG}', f' "other" ,W/{ETAG} '])
def test_its_etag_asked_weak_or_strong_among_others_answers_304_without_a_body(asked: str) -> None:
    reply = CSS.answer(asked, HEADERS)

    assert reply.status_code == 304 and reply.body == ""
    assert reply.headers == {"ETag": ETAG, **HEADERS}
