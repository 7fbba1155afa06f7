"""Every feed event also put on an EventBridge bus (when one is configured), so AWS-native
partners subscribe with rules instead of webhooks.

A per-tenant feed consumer like webhook dispatch: under a lease, it reads the feed from its
own checkpoint, puts the page's events on the bus, and only then advances the checkpoint. A
crash or a bus failure in between replays the page: at least once, never lost; consumers
deduplicate by ``detail.id`` (the event id). Events older than the consumer itself (the
moment the bus was first configured for the tenant) are not published.

Nothing here talks to AWS: the bus is a port, the adapter (batching, retries of failed
entries) is :mod:`chalicelib.integrations.eventbridge`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.ids import ulid

if TYPE_CHECKING:
    from chalicelib.domain.events import Event
    from chalicelib.domain.webhooks import Feed

#: The checkpoint's name (its partition key in the tenant's table).
CHECKPOINT = "EVENTBRIDGE"


class EventBusUnavailable(Exception):
    """Some entries could not be put on the bus, even after retries (the page is replayed)."""


@dataclass(frozen=True)
class BusEntry:
    event_id: str
    detail_type: str
    created_at: datetime
    #: JSON: ``{"tenant_id", "id", "type", "member_id", "created_at", "data"}``.
    detail: str


class EventBus(Protocol):
    def put(self, entries: list[BusEntry]) -> None:
        """Put every entry on the bus, or raise EventBusUnavailable."""


class Checkpoint(Protocol):
    def claim(self, *, owner: str, now: datetime, until: datetime) -> tuple[bool, str | None, datetime | None]:
        """Take the lease if free: (taken, cursor, since). ``since`` is set on the first claim."""

    def advance(self, *, owner: str, cursor: str, now: datetime) -> bool: ...
    def release(self, *, owner: str) -> None: ...


@dataclass
class PublishCounts:
    events: int = 0
    published: int = 0
    pages: int = 0
    skipped: bool = False


class BusPublisher:
    def __init__(
        self,
        tenant_id: str,
        checkpoint: Checkpoint,
        bus: EventBus,
        *,
        open_feed: Callable[[datetime], Feed],
        render: Callable[[Event], dict[str, Any]],
        clock: Clock = utc_now,
        pages: int = 10,
        lease: timedelta = timedelta(seconds=90),
    ) -> None:
        self.tenant_id = tenant_id
        self._checkpoint = checkpoint
        self._bus = bus
        self._open_feed = open_feed
        self._render = render
        self._clock = clock
        self._pages = pages
        self._lease = lease

    def publish(self) -> PublishCounts:
        counts = PublishCounts()
        now = self._clock()
        owner = str(ulid())
        taken, cursor, since = self._checkpoint.claim(owner=owner, now=now, until=now + self._lease)
        if not taken:
            counts.skipped = True
            return counts
        since = since or now
        try:
            feed = self._open_feed(since)
            for _ in range(self._pages):
                page = feed.read(after=cursor, types=frozenset(), limit=100)
                counts.pages += 1
                entries = [self._entry(event) for event in page.events if event.created_at >= since]
                if entries:
                    self._bus.put(entries)  # all on the bus before the checkpoint moves
                counts.events += len(page.events)
                counts.published += len(entries)
                if page.next_cursor == cursor:
                    break
                if not self._checkpoint.advance(owner=owner, cursor=page.next_cursor, now=self._clock()):
                    break  # the lease was lost: another run goes on from the recorded cursor
                cursor = page.next_cursor
        finally:
            self._checkpoint.release(owner=owner)
        return counts

    def _entry(self, event: Event) -> BusEntry:
        rendered = self._render(event)
        detail = {
            "tenant_id": self.tenant_id,
            "id": event.event_id,
            "type": str(event.type),
            "member_id": event.member_id,
            "created_at": isoformat(event.created_at),
            "data": rendered.get("data", rendered),
        }
        return BusEntry(
            event_id=event.event_id,
            detail_type=str(event.type),
            created_at=event.created_at,
            detail=json.dumps(detail, separators=(",", ":"), sort_keys=True),
        )
