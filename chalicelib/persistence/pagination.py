"""Opaque cursors: the last returned item's key, base64url-encoded and checked on the way back."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ports import Page

T = TypeVar("T")
R = TypeVar("R")

_CURSOR_FIELD = ("cursor", "not a cursor returned by this endpoint", "cursor_invalid")


def encode_cursor(key: dict[str, str]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, fields: tuple[str, ...], partition: tuple[str, str]) -> dict[str, dict[str, str]]:
    """Turn a cursor back into an ExclusiveStartKey, refusing anything we did not issue here."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest.for_fields("invalid cursor", _CURSOR_FIELD) from None
    if (
        not isinstance(key, dict)
        or set(key) != set(fields)
        or not all(isinstance(value, str) and 0 < len(value) <= 1024 for value in key.values())
        or key.get(partition[0]) != partition[1]
    ):
        raise InvalidRequest.for_fields("invalid cursor", _CURSOR_FIELD)
    return {name: {"S": value} for name, value in key.items()}


def paginate(
    rows: Iterable[T],
    *,
    limit: int,
    key_of: Callable[[T], dict[str, str]],
    convert: Callable[[T], R],
) -> Page[R]:
    """``rows`` must have been queried with ``limit + 1`` so we know whether more exist."""
    fetched = list(rows)
    items = fetched[:limit]
    next_cursor = encode_cursor(key_of(items[-1])) if len(fetched) > limit and items else None
    return Page(items=[convert(row) for row in items], next_cursor=next_cursor)
