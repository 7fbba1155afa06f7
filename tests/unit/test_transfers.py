"""The pure parts of transfers: what leaves the sender (FIFO by expiry, the lots a reversal
prefers first, the lot limit), what the receiver gets (expiry kept, a debt paid first), the
program's policy, the fingerprint and the keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import (
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidRequest,
    MovementTooLarge,
    NotFound,
    TransferNotAllowed,
)
from chalicelib.domain.expiry import Lot
from chalicelib.domain.movement_requests import MovementType, refuse_minted_key
from chalicelib.domain.program import Rounding, TransferPolicy
from chalicelib.domain.transfers import (
    MAX_LOTS_PER_TRANSFER,
    Portion,
    TransferRequest,
    TransferResult,
    TransferService,
    give,
    received_key,
    take,
)
from tests.support.memory import InMemoryTransferStore
from tests.unit.builders import Ledgerland, build_world, earn, redeem

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(lot_id: str, points: int, expires_in_days: int | None, *, pending: bool = False) -> Lot:
    expires = NOW + expires_in_days * DAY if expires_in_days is not None else None
    return Lot(lot_id, "mem_a", points, points, NOW - DAY, expires, NOW + DAY if pending else None)


def test_points_leave_the_lots_expiring_first_then_the_never_expiring_ones() -> None:
    # Given 300 available: a lot of 100 expiring in 30 days, one of 100 in 10 days, 100 plain;
    # and a pending lot and an expired one that may not move
    lots = [lot("late", 100, 30), lot("soon", 100, 10), lot("pending", 50, 40, pending=True), lot("gone", 20, -1)]

    changes, portions = take(320, lots, 250, NOW)

    assert [(p.points, p.expires_at) for p in portions] == [(100, NOW + 10 * DAY), (100, NOW + 30 * DAY), (50, None)]
    assert {changed.lot_id for changed in changes.deleted} == {"soon", "late"}
    assert changes.updated == ()


def test_a_partly_taken_lot_keeps_the_rest() -> None:
    changes, portions = take(100, [lot("a", 100, 5)], 30, NOW)

    assert [changed.remaining for changed in changes.updated] == [70]
    assert portions == (Portion(30, NOW + 5 * DAY, NOW - DAY),)


def test_the_lots_named_first_go_first_whatever_their_expiry() -> None:
    lots = [lot("mine", 60, 30), lot("theirs", 40, 2)]

    _, portions = take(100, lots, 70, NOW, first=frozenset({"mine"}))

    assert [(p.points, p.expires_at) for p in portions] == [(60, NOW + 30 * DAY), (10, NOW + 2 * DAY)]


def test_a_reversal_takes_the_never_expiring_points_its_transfer_gave_before_other_lots() -> None:
    # Given 40 points of the transfer's own lot, another lot of 50 expiring sooner, 30 plain
    lots = [lot("mine", 40, 30), lot("theirs", 50, 2)]

    _, portions = take(120, lots, 100, NOW, first=frozenset({"mine"}), plain_first=25)

    # Then: its lot, then the 25 plain points it gave, then the lot expiring first
    assert [(p.points, p.expires_at) for p in portions] == [(40, NOW + 30 * DAY), (25, None), (35, NOW + 2 * DAY)]
    # And never more plain points than are held
    _, portions = take(100, lots, 95, NOW, first=frozenset({"mine"}), plain_first=25)
    assert [(p.points, p.expires_at) for p in portions] == [(40, NOW + 30 * DAY), (10, None), (45, NOW + 2 * DAY)]


def test_more_than_is_spendable_is_refused() -> None:
    with pytest.raises(InsufficientPoints) as refusal:
        take(120, [lot("gone", 20, -1), lot("a", 100, 5)], 101, NOW)
    assert refusal.value.details == {"available": 100, "requested": 101}


def test_a_transfer_spanning_too_many_lots_is_refused_with_what_can_move_at_once() -> None:
    lots = [lot(f"l{i:03d}", 1, 10 + i) for i in range(MAX_LOTS_PER_TRANSFER + 5)]

    with pytest.raises(MovementTooLarge) as refusal:
        take(len(lots), lots, MAX_LOTS_PER_TRANSFER + 1, NOW)

    assert refusal.value.details["max_points"] == MAX_LOTS_PER_TRANSFER
    assert take(len(lots), lots, MAX_LOTS_PER_TRANSFER, NOW)[0].count == MAX_LOTS_PER_TRANSFER


def test_the_receiver_gets_one_lot_per_expiring_portion_with_its_expiry() -> None:
    receiver = Balance.opening("mem_b", NOW)
    portions = [Portion(100, NOW + 10 * DAY, NOW - 5 * DAY), Portion(50, None, None)]

    given = give(receiver, portions, "trf_X")

    assert [(g.lot_id, g.member_id, g.remaining, g.expires_at, g.earned_at) for g in given.created] == [
        ("trf_X-00", "mem_b", 100, NOW + 10 * DAY, NOW - 5 * DAY)
    ]


def test_a_receiver_in_debt_pays_it_first_from_the_points_expiring_first() -> None:
    receiver = replace(Balance.opening("mem_b", NOW), available=-120)  # a claw-back's debt
    portions = [Portion(100, NOW + 10 * DAY, NOW), Portion(50, NOW + 20 * DAY, NOW), Portion(30, None, None)]

    given = give(receiver, portions, "trf_X")

    assert [(g.remaining, g.expires_at) for g in given.created] == [(30, NOW + 20 * DAY)]


def test_a_transfer_moves_the_net_transferred_figure_and_no_other_lifetime_total() -> None:
    balance = Balance.opening("mem_a", NOW).apply(MovementType.EARN, 100, NOW)

    after = balance.apply(MovementType.TRANSFER, -40, NOW)

    assert (after.available, after.lifetime_transferred, after.lifetime_earned, after.lifetime_redeemed) == (
        60,
        -40,
        100,
        0,
    )
    assert after.available == after.lifetime_earned + after.lifetime_transferred


def test_the_policy_defaults_to_no_transfers_and_checks_its_limits() -> None:
    assert TransferPolicy() == TransferPolicy(enabled=False, minimum=1, daily_maximum=None)
    with pytest.raises(InvalidRequest):
        TransferPolicy(enabled=True, minimum=0)
    with pytest.raises(InvalidRequest):
        TransferPolicy(enabled=True, minimum=100, daily_maximum=50)


def test_the_fingerprint_says_what_makes_two_requests_the_same() -> None:
    base = TransferRequest("mem_a", "mem_b", 10, idempotency_key="k", description="gift")
    same = TransferRequest("mem_a", "mem_b", 10, idempotency_key="k", description="gift", actor_key_id="key_x")
    assert base.fingerprint() == same.fingerprint()
    for other in (
        TransferRequest("mem_a", "mem_c", 10, idempotency_key="k", description="gift"),
        TransferRequest("mem_a", "mem_b", 11, idempotency_key="k", description="gift"),
        TransferRequest("mem_a", "mem_b", 10, idempotency_key="k", description=None),
    ):
        assert other.fingerprint() != base.fingerprint()


def test_a_client_may_not_use_the_keys_transfers_mint() -> None:
    with pytest.raises(InvalidRequest):
        refuse_minted_key(received_key("trf_01JD0000000000000000000000"))


# --- the service over the in-memory twins ----------------------------------------------------------


@dataclass
class Kin:
    world: Ledgerland
    store: InMemoryTransferStore
    transfers: TransferService
    sender: str
    receiver: str

    def send(self, points: int, key: str, *, to: str | None = None) -> TransferResult:
        request = TransferRequest(self.sender, to or self.receiver, points, idempotency_key=key)
        return self.transfers.transfer(request)


@pytest.fixture
def kin() -> Kin:
    world = build_world()
    world.program.replace(Decimal(1), Rounding.FLOOR, transfers=TransferPolicy(enabled=True, daily_maximum=500))
    store = InMemoryTransferStore(world.ledger)
    transfers = TransferService(
        world.ledger, store, world.program, world.points, clock=world.clock, sleep=world.delays.append
    )
    sender, receiver = world.enrol(), world.enrol()
    world.points.move(earn(sender, "fund", 400))
    return Kin(world, store, transfers, sender, receiver)


def test_a_replay_answers_the_first_result_and_moves_nothing(kin: Kin) -> None:
    first = kin.send(100, "gift")
    again = kin.send(100, "gift")

    assert again.replayed and again.transfer_id == first.transfer_id and again.entry == first.entry
    assert kin.world.available(kin.sender) == 300 and kin.world.available(kin.receiver) == 100
    with pytest.raises(IdempotencyKeyReused):
        kin.send(101, "gift")


def test_a_redemption_slipping_in_before_the_commit_makes_the_transfer_decide_again(kin: Kin) -> None:
    # Given a redemption of 350 lands between the transfer's read and its commit
    kin.store.before_next_commit(lambda: kin.world.points.move(redeem(kin.sender, "spend", 350)))

    # When 100 points are transferred, Then the transfer re-reads and is refused: 50 are left
    with pytest.raises(InsufficientPoints):
        kin.send(100, "gift")

    assert kin.store.commit_calls == 1
    assert kin.world.available(kin.sender) == 50 and kin.world.available(kin.receiver) == 0


def test_the_daily_maximum_counts_in_the_transaction(kin: Kin) -> None:
    kin.world.points.move(earn(kin.sender, "more", 300))
    kin.send(300, "a")
    with pytest.raises(TransferNotAllowed) as refusal:
        kin.send(201, "b")
    assert refusal.value.details == {"reason": "daily_maximum", "daily_maximum": 500, "sent_today": 300}
    kin.world.clock.advance(days=1)
    kin.send(100, "c")
    assert kin.world.available(kin.sender) == 300


def test_a_reversal_applies_once_and_the_total_never_moves(kin: Kin) -> None:
    sent = kin.send(150, "gift")
    total = kin.world.available(kin.sender) + kin.world.available(kin.receiver)

    back = kin.transfers.reverse(kin.sender, sent.transfer_id, reason="mistake", actor_key_id=None)
    again = kin.transfers.reverse(kin.sender, sent.transfer_id, reason=None, actor_key_id=None)

    assert not back.replayed and again.replayed and again.entry == back.entry
    assert (kin.world.available(kin.sender), kin.world.available(kin.receiver)) == (400, 0)
    assert kin.world.available(kin.sender) + kin.world.available(kin.receiver) == total
    with pytest.raises(NotFound):
        kin.transfers.reverse(kin.receiver, sent.transfer_id, reason=None, actor_key_id=None)
