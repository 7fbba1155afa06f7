"""Request fingerprints: what makes two requests under one Idempotency-Key 'the same
request'. Stored with the first request's answer, so a fingerprint's bytes must never
change: a replay of a stored request would be refused."""

from __future__ import annotations

import hashlib
import json

#: Compact JSON, the separators of every fingerprint but the order event's and the erasure's.
COMPACT = (",", ":")
#: ``json.dumps``'s own separators: those of the order event's and the erasure's fingerprints.
JSON_DEFAULT = (", ", ": ")


def fingerprint(canonical: object, *, separators: tuple[str, str] = COMPACT) -> str:
    """The SHA-256 (hex) of ``canonical`` as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=separators).encode()).hexdigest()


def minted_fingerprint(key: str) -> str:
    """The fingerprint of an entry whose Idempotency-Key the service mints (a settlement's,
    a transfer's): the SHA-256 (hex) of the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()
