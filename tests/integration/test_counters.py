"""Counters changed inside a movement's transaction: the primitive behind per-member limits
(activity allowances, caps) and stock. A counter never passes its limit, a refused movement
writes nothing, and a replay is answered from the ledger, not refused by the counter."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import LimitReached
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.ports import CounterChange
from chalicelib.services import platform
from tests.support.http import Api


def test_a_counter_never_passes_its_limit_and_a_refusal_writes_nothing(api: Api, admin_key: str) -> None:
    services = platform().for_tenant_id("acme")
    member = services.members.enrol(NewMember()).member_id
    review = (CounterChange(f"review:{member}:2027-05", 1, at_most=2),)

    def earn(key: str) -> MovementRequest:
        return MovementRequest(member, MovementType.EARN, key, points=50, counters=review)

    services.points.move(earn("review-1"))
    services.points.move(earn("review-2"))
    with pytest.raises(LimitReached) as refused:
        services.points.move(earn("review-3"))
    replayed = services.points.move(earn("review-2"))

    assert refused.value.details == {"counter": f"review:{member}:2027-05", "limit": 2}
    assert replayed.replayed and replayed.entry.idempotency_key == "review-2"
    assert services.points.balance(member).available == 100
    assert services.points._ledger.get_counter(f"review:{member}:2027-05") == 2
    assert services.points._ledger.get_entry("review-3") is None
    assert services.points._ledger.get_counter("never-touched") == 0
