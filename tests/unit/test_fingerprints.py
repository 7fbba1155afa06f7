"""Request fingerprints are stored with the first request's answer: their bytes never change.
The values below are pinned; a change to any of them would refuse the replay of a stored
request (or let a different request replay it)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chalicelib.domain.entries import Balance, settle
from chalicelib.domain.expiry import Lot
from chalicelib.domain.fingerprints import minted_fingerprint
from chalicelib.domain.privacy import erasure_fingerprint
from chalicelib.domain.program import Rounding, TransferPolicy
from chalicelib.domain.transfers import TransferRequest, TransferService, received_key, returned_key, reversed_key
from tests.support.memory import InMemoryTransferStore
from tests.unit.builders import build_world, earn

MEMBER = "mem_01JD0000000000000000000000"
NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_a_minted_key_fingerprints_as_the_sha256_of_its_utf8_bytes() -> None:
    assert (
        minted_fingerprint("transfer-received:tr_01")
        == "8ef48ad21ff8c24ebb2e64450e907faea1c4665ba28ac22d82d3951434634972"
    )
    assert minted_fingerprint("mature:lot_01") == "b0e89b59d03219ce548963dce9bb1481db4bd019f1141741cb2d327b76baa5f4"
    assert minted_fingerprint("expire:lot_é") == "b2179e2d54764e312594f620fa142146258521a6772b7cbfb15f814adbe553d1"


def test_an_erasure_fingerprints_its_member_as_ever() -> None:
    assert erasure_fingerprint("mem_01HZX") == "17cc4f13cb570651efc82a09a1f63aaedbe4c215e4d17a4ed938d453e7a0dfb3"
    assert erasure_fingerprint("mémbre-é") == "fc7fff265d1df8b6cfbfd9336e976f69da003353d19194716a06c3bae509235a"


def test_the_entries_a_settlement_mints_fingerprint_their_keys_as_ever() -> None:
    # Given a matured pending lot, an expired lot, and a member inactive since yesterday
    lots = [
        Lot("lot_pending", MEMBER, 50, 50, NOW - 10 * DAY, None, NOW - DAY),
        Lot("lot_old", MEMBER, 30, 30, NOW - 400 * DAY, NOW - DAY, None),
    ]
    balance = Balance(
        MEMBER,
        130,
        180,
        0,
        0,
        4,
        NOW - DAY,
        pending=50,
        lot_count=2,
        inactive_at=NOW - DAY / 2,
        last_activity_at=NOW - 500 * DAY,
    )

    # When it is settled
    settled = settle(balance, lots, NOW, NOW, max_lots=10)

    # Then each entry's fingerprint is the pinned hash of its minted key
    assert [(entry.idempotency_key, entry.request_fingerprint) for entry in settled.entries] == [
        ("mature:lot_pending", "a89957583a92494134804c0f2ce36cdfe440eb04a3cc7ffe341f64052eefee55"),
        ("expire:lot_old", "49843de45dc9a0ce1ee333e12f5d4c480ad3e5a3db69b469bc8a660c447d88a8"),
        ("expire:lot_pending", "b94895ed0ad6eee7f84e64eb2afa7cdd2aa8411975c5e5599cc6f4ab66734b20"),
        (f"lapse:{MEMBER}:7", "ace674122268370397f5fa7e2668309e11915eeb8d1802c916233b1bc22d2898"),
    ]


def test_the_entries_a_transfer_mints_fingerprint_their_keys_as_ever() -> None:
    # Given two members, one with 400 points, in a program that allows transfers
    world = build_world()
    world.program.replace(Decimal(1), Rounding.FLOOR, transfers=TransferPolicy(enabled=True))
    transfers = TransferService(
        world.ledger, InMemoryTransferStore(world.ledger), world.program, world.points, clock=world.clock
    )
    sender, receiver = world.enrol(), world.enrol()
    world.points.move(earn(sender, "fund", 400))

    # When 100 points are transferred, then the transfer is reversed
    sent = transfers.transfer(TransferRequest(sender, receiver, 100, idempotency_key="gift"))
    transfers.reverse(sender, sent.transfer_id, reason=None, actor_key_id=None)

    # Then the entries of minted keys carry the SHA-256 (hex) of the key's UTF-8 bytes
    minted = {received_key(sent.transfer_id), reversed_key(sent.transfer_id), returned_key(sent.transfer_id)}
    entries = [
        entry
        for member in (sender, receiver)
        for entry in world.points.transactions(member, limit=50, cursor=None).items
        if entry.idempotency_key in minted
    ]
    assert {entry.idempotency_key for entry in entries} == minted
    for entry in entries:
        assert entry.request_fingerprint == hashlib.sha256(entry.idempotency_key.encode()).hexdigest()
