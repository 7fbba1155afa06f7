"""Pieces of the index keys that several item kinds share: the time in a sort key, and the
shard of a member's entry in a due-at-a-time index (``gsi2``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

#: Entries due at a time spread over this many index partitions, so no single one runs hot.
DUE_SHARDS = 8


def sortable(moment: datetime) -> str:
    """Fixed-width UTC timestamp: string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def due_shard(member_id: str) -> int:
    """The index partition (0 to ``DUE_SHARDS`` - 1) of a member's due entries."""
    return int(hashlib.sha256(member_id.encode()).hexdigest()[:8], 16) % DUE_SHARDS
