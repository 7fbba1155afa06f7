"""Putting feed events on an EventBridge bus: batched, failed entries retried.

PutEvents takes at most 10 entries and 256 KB per call; each answer says, entry by entry,
which ones failed (throttling, an internal error): those, and only those, are sent again
with exponential backoff and jitter, a few times, before the whole page is given back to the
publisher (EventBusUnavailable), which keeps its checkpoint and replays the page next run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.bus import BusEntry, EventBusUnavailable

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024


class EventBridgeBus:
    def __init__(
        self,
        client: Any,
        *,
        bus_name: str,
        source: str,
        attempts: int = 4,
        backoff_base_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._attempts = attempts
        self._backoff_base = backoff_base_seconds
        self._sleep = sleep
        self._rand = rand
        #: PutEvents calls made (the bench and tests read it).
        self.calls = 0

    def put(self, entries: list[BusEntry]) -> None:
        for batch in self._batches([self._request_entry(e) for e in entries]):
            self._put_batch(batch)

    def _put_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        errors: set[str] = set()
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(backoff_seconds(attempt - 1, base=self._backoff_base, jitter="equal", rand=self._rand))
            self.calls += 1
            answer = self._client.put_events(Entries=pending)
            if not answer.get("FailedEntryCount"):
                return
            results = answer["Entries"]  # one per entry sent, in order
            errors = {str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")}
            pending = [entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
        raise EventBusUnavailable(
            f"{len(pending)} of {len(batch)} events not accepted by the bus after {self._attempts} attempts "
            f"({', '.join(sorted(errors))})"
        )

    def _request_entry(self, entry: BusEntry) -> dict[str, Any]:
        return {
            "Source": self._source,
            "DetailType": entry.detail_type,
            "Detail": entry.detail,
            "EventBusName": self._bus_name,
            "Time": entry.created_at,
            "Resources": [],
        }

    @staticmethod
    def _batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """At most 10 entries and 256 KB (EventBridge's entry size: source, type, detail + 14 B)."""
        batches: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            entry_size = len(entry["Source"]) + len(entry["DetailType"]) + len(entry["Detail"].encode()) + 14
            if current and (len(current) == MAX_ENTRIES or size + entry_size > MAX_REQUEST_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            batches.append(current)
        return batches
