"""An erasure racing earns, over real HTTP: the erasure is a conditional transaction on the
balance's version, like every movement, so each earn either commits before it (and its points
are settled with the rest) or reads the erased balance and is refused with 410; never both,
never neither, and the books add up to zero."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.concurrency.conftest import LiveServer

pytestmark = pytest.mark.concurrency

EARNS = 12


def test_an_erasure_racing_earns_ends_in_one_consistent_state(live_server: LiveServer) -> None:
    key = live_server.create_tenant(f"t{uuid.uuid4().hex[:10]}")
    member = live_server.call("POST", "/v1/members", key=key, body={"external_id": "racer-1"}).json()["id"]
    assert live_server.call("POST", f"/v1/members/{member}/earn", key=key, body={"points": 7}, idempotency_key="e0")

    # When earns and an erasure arrive at once
    def earn(i: int):
        path = f"/v1/members/{member}/earn"
        return live_server.call("POST", path, key=key, body={"points": 10}, idempotency_key=f"race-{i}")

    def erase():
        return live_server.call("POST", f"/v1/members/{member}/erase", key=key, idempotency_key="erase-race")

    with ThreadPoolExecutor(max_workers=EARNS + 1) as pool:
        earns = [pool.submit(earn, i) for i in range(EARNS)]
        erasure = pool.submit(erase)
        earned = [f.result() for f in earns]
        erased = erasure.result()

    # Then the erasure succeeded, and each earn either committed (201) or was refused (410)
    assert erased.status_code == 200, erased.text
    statuses = [r.status_code for r in earned]
    assert set(statuses) <= {201, 410}, [r.text for r in earned if r.status_code not in (201, 410)]
    committed = [r.json()["transaction"] for r in earned if r.status_code == 201]
    # And the erasure settled exactly what was there when it committed: the first earn and every
    # earn committed before it; none committed after it
    ledger = live_server.call("GET", f"/v1/members/{member}/transactions?limit=100", key=key).json()["data"]
    last = ledger[0]
    assert last["id"] == erased.json()["transaction_id"] and last["balance_after"] == 0
    assert erased.json()["points_forfeited"] == 7 + 10 * len(committed)
    assert sorted(e["id"] for e in ledger[1:]) == sorted([*(t["id"] for t in committed), ledger[-1]["id"]])
    assert sum(e["points"] for e in ledger) == 0
    # And an earn replayed with its key afterwards answers as it did (committed ones replay, refused ones stay refused)
    for i, reply in enumerate(earned):
        again = earn(i)
        assert again.status_code == (201 if reply.status_code == 201 else 410), (i, again.text)
