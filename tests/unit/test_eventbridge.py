"""The EventBridge adapter without AWS: batches of at most 10 entries and 256 KB, and only the
entries PutEvents reports as failed are sent again, a few times, before giving up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.bus import BusEntry, EventBusUnavailable
from chalicelib.integrations.eventbridge import EventBridgeBus

NOW = datetime(2027, 1, 1, tzinfo=UTC)


class FakeEvents:
    """PutEvents that fails the entries whose event id is in ``failing`` (each a number of times)."""

    def __init__(self, failing: dict[str, int] | None = None) -> None:
        self.failing = dict(failing or {})
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert 1 <= len(Entries) <= 10
        assert sum(len(e["Detail"]) + len(e["Source"]) + len(e["DetailType"]) + 14 for e in Entries) <= 256 * 1024
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            event_id = json.loads(entry["Detail"])["id"]
            if self.failing.get(event_id, 0) > 0:
                self.failing[event_id] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"eb-{event_id}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def entries(n: int, *, size: int = 10) -> list[BusEntry]:
    return [
        BusEntry(f"evt_{i}", "points.earned", NOW, json.dumps({"id": f"evt_{i}", "pad": "x" * size})) for i in range(n)
    ]


def bus(client: FakeEvents, sleeps: list[float]) -> EventBridgeBus:
    return EventBridgeBus(client, bus_name="partners", source="loyalty", sleep=sleeps.append, rand=lambda: 1.0)


def test_entries_go_in_batches_of_ten_in_order_with_source_bus_and_time() -> None:
    client, sleeps = FakeEvents(), []
    bus(client, sleeps).put(entries(25))
    assert [len(c) for c in client.calls] == [10, 10, 5]
    sent = [json.loads(e["Detail"])["id"] for call in client.calls for e in call]
    assert sent == [f"evt_{i}" for i in range(25)]
    first = client.calls[0][0]
    assert (first["Source"], first["EventBusName"], first["DetailType"], first["Time"]) == (
        "loyalty",
        "partners",
        "points.earned",
        NOW,
    )
    assert sleeps == []


def test_batches_also_stay_under_256_kb() -> None:
    client = FakeEvents()
    bus(client, []).put(entries(10, size=60_000))  # ~60 KB each: four fit in one request
    assert [len(c) for c in client.calls] == [4, 4, 2]


def test_only_failed_entries_are_retried_with_growing_pauses() -> None:
    # Given a bus that throttles two entries of the batch, one of them twice
    client, sleeps = FakeEvents({"evt_3": 1, "evt_7": 2}), []
    bus(client, sleeps).put(entries(10))
    # Then the retries carried only the failed entries, after growing pauses
    assert [[json.loads(e["Detail"])["id"] for e in call] for call in client.calls[1:]] == [
        ["evt_3", "evt_7"],
        ["evt_7"],
    ]
    assert sleeps == [0.1, 0.2]


def test_entries_failing_every_attempt_raise_naming_the_error() -> None:
    client = FakeEvents({"evt_1": 99})
    with pytest.raises(EventBusUnavailable, match=r"1 of 10 events .* 4 attempts .*ThrottlingException"):
        bus(client, []).put(entries(10))
    assert len(client.calls) == 4
