"""Files served beside the operations (the console's, the API reference's): each with an ETag
of its content, and a conditional GET (``If-None-Match``, weak or strong) answered 304."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from chalice import Response


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str

    @functools.cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body.encode()).hexdigest()[:32] + '"'

    def answer(self, if_none_match: str | None, headers: Mapping[str, str]) -> Response:
        """The file (200) with its ETag and ``headers``; only those (304) when ``if_none_match``
        names its ETag."""
        sent: dict[str, str | list[str]] = {"ETag": self.etag, **headers}
        if self.etag in _etags(if_none_match):
            return Response(body="", status_code=304, headers=sent)
        return Response(body=self.body, status_code=200, headers={"Content-Type": self.content_type, **sent})


def _etags(header: str | None) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in (header or "").split(",") if tag.strip()}
