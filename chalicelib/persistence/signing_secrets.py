"""How an item stores its signing secrets (a webhook endpoint's, a Shopify integration's):
one compact JSON list of ``{"s": sealed, "c": created_at, "e": expires_at or null}``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from chalicelib.domain.clock import isoformat
from chalicelib.domain.webhooks import SigningSecret


def encode_secrets(secrets: Iterable[SigningSecret]) -> str:
    return json.dumps(
        [
            {"s": s.sealed, "c": isoformat(s.created_at), "e": isoformat(s.expires_at) if s.expires_at else None}
            for s in secrets
        ],
        separators=(",", ":"),
    )


def decode_secrets(stored: str) -> tuple[SigningSecret, ...]:
    return tuple(
        SigningSecret(
            sealed=s["s"],
            created_at=datetime.fromisoformat(s["c"]),
            expires_at=datetime.fromisoformat(s["e"]) if s["e"] else None,
        )
        for s in json.loads(stored)
    )
