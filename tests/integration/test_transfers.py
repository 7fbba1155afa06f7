"""Transfers between members through the HTTP API and the real services, on both emulators:
the program's policy and limits, both sides in one transaction, lots keeping their expiry,
idempotency, the events on both sides, and an admin's reversal."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.errors import InsufficientPoints, NotFound, TransferNotAllowed
from chalicelib.domain.events import EventType
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import Rounding, TransferPolicy
from chalicelib.domain.transfers import TransferRequest
from chalicelib.services import TenantServices, platform
from tests.support.checks import assert_error
from tests.support.clocks import MovableClock
from tests.support.http import Api

ALLOWED = {"enabled": True, "minimum": 10, "daily_maximum": 1000}
PROGRAM = {"points_per_currency_unit": "1", "rounding": "floor", "transfers": ALLOWED}


def _transfer(api: Api, key: str, member: str, idempotency_key: str, **body: Any) -> Any:
    return api.call("POST", f"/v1/members/{member}/transfers", key=key, body=body, idempotency_key=idempotency_key)


@pytest.fixture
def funded(api: Api, admin_key: str) -> tuple[str, str]:
    """Two members of tenant A, the first with 500 points, the second known by external id "kin-1"."""
    assert api.call("PUT", "/v1/program", key=admin_key, body=PROGRAM).status == 200
    sender = api.enrol(admin_key, name="Sender")
    receiver = api.enrol(admin_key, name="Receiver", external_id="kin-1")
    assert api.earn(admin_key, sender, "fund", points=500).status == 201
    return sender, receiver


def test_transfers_are_refused_unless_the_program_allows_them(api: Api, admin_key: str) -> None:
    # Given a program that says nothing of transfers, and a funded member
    sender, receiver = api.enrol(admin_key), api.enrol(admin_key)
    assert api.earn(admin_key, sender, "fund", points=500).status == 201
    program = api.call("GET", "/v1/program", key=admin_key)
    assert program.body["transfers"] == {"enabled": False, "minimum": 1, "daily_maximum": None}

    # When the member transfers points, Then it is refused and nothing moves
    refused = _transfer(api, admin_key, sender, "t-1", to={"member_id": receiver}, points=100)
    assert assert_error(refused, 422, "transfer_not_allowed")["reason"] == "disabled"
    assert api.balance(admin_key, sender)["available"] == 500
    assert api.balance(admin_key, receiver)["available"] == 0
    # And an unknown sender is not found, whatever the program says
    ghost = _transfer(api, admin_key, "mem_01JD0000000000000000000000", "t-2", to={"member_id": receiver}, points=100)
    assert_error(ghost, 404, "not_found")


def test_a_transfer_moves_points_between_two_members_in_one_go(
    api: Api, admin_key: str, funded: tuple[str, str]
) -> None:
    sender, receiver = funded
    # Given the program allows transfers
    assert api.call("GET", "/v1/program", key=admin_key).body["transfers"] == ALLOWED

    # When the sender transfers 300 points to the receiver, named by external id
    sent = _transfer(api, admin_key, sender, "gift-1", to={"external_id": "kin-1"}, points=300, description="For Mum")

    # Then the answer names the transfer, the sender's entry and balance
    assert sent.status == 201, sent
    transfer_id = sent.body["id"]
    assert transfer_id.startswith("trf_")
    assert (sent.body["from_member_id"], sent.body["to_member_id"], sent.body["points"]) == (sender, receiver, 300)
    assert sent.body["transaction"]["type"] == "transfer" and sent.body["transaction"]["points"] == -300
    assert sent.body["transaction"]["reference"] == transfer_id
    assert sent.body["balance"]["available"] == 200 and sent.body["balance"]["lifetime_transferred"] == -300

    # And both balances and both ledgers moved
    assert api.balance(admin_key, sender)["available"] == 200
    received = api.balance(admin_key, receiver)
    assert (received["available"], received["lifetime_transferred"]) == (300, 300)
    (entry,) = api.ledger(admin_key, receiver)
    assert (entry["type"], entry["points"], entry["reference"]) == ("transfer", 300, transfer_id)
    assert entry["metadata"] == {"transfer_id": transfer_id, "from_member_id": sender, "points_without_expiry": "300"}
    assert entry["idempotency_key"] == f"transfer:{transfer_id}:in"
    assert api.ledger(admin_key, sender)[0]["metadata"] == {"transfer_id": transfer_id, "to_member_id": receiver}

    # And each member's feed has a points.transferred event
    now = datetime.now(UTC)
    later = platform().for_tenant_id("acme", clock=lambda: now + timedelta(seconds=10), created_at=now - DAY)
    events = later.feed.read(after=None, types=frozenset({EventType.POINTS_TRANSFERRED}), limit=10).events
    assert sorted((event.member_id, event.entry.points) for event in events if event.entry) == sorted(
        [(sender, -300), (receiver, 300)]
    )

    # When the same request is sent again with its key, Then it answers the first result
    again = _transfer(api, admin_key, sender, "gift-1", to={"external_id": "kin-1"}, points=300, description="For Mum")
    assert again.status == 201 and again.body == sent.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert api.balance(admin_key, sender)["available"] == 200

    # When the key is sent with another body, Then it is refused
    reused = _transfer(api, admin_key, sender, "gift-1", to={"external_id": "kin-1"}, points=301)
    assert_error(reused, 422, "idempotency_key_reused")


def test_the_program_limits_are_kept(api: Api, admin_key: str, funded: tuple[str, str]) -> None:
    sender, receiver = funded
    to = {"member_id": receiver}

    below = _transfer(api, admin_key, sender, "small", to=to, points=9)
    assert assert_error(below, 422, "transfer_not_allowed") == {"reason": "below_minimum", "minimum": 10}
    itself = _transfer(api, admin_key, sender, "self", to={"member_id": sender}, points=10)
    assert assert_error(itself, 422, "transfer_not_allowed")["reason"] == "same_member"
    short = _transfer(api, admin_key, sender, "short", to=to, points=501)
    assert assert_error(short, 422, "insufficient_points") == {"available": 500, "requested": 501}
    unknown = _transfer(api, admin_key, sender, "nobody", to={"external_id": "nobody"}, points=10)
    assert_error(unknown, 404, "not_found")

    # The daily maximum counts what the member sent today, whoever received it
    assert api.earn(admin_key, sender, "more", points=1000).status == 201
    assert _transfer(api, admin_key, sender, "day-1", to=to, points=600).status == 201
    over = _transfer(api, admin_key, sender, "day-2", to=to, points=401)
    details = assert_error(over, 422, "transfer_not_allowed")
    assert details == {"reason": "daily_maximum", "daily_maximum": 1000, "sent_today": 600}
    assert _transfer(api, admin_key, sender, "day-3", to=to, points=400).status == 201
    assert api.balance(admin_key, sender)["available"] == 500
    assert api.balance(admin_key, receiver)["available"] == 1000


def test_an_admin_reverses_a_transfer_once(api: Api, admin_key: str, funded: tuple[str, str]) -> None:
    sender, receiver = funded
    sent = _transfer(api, admin_key, sender, "gift", to={"member_id": receiver}, points=300)
    transfer_id = sent.body["id"]
    path = f"/v1/members/{sender}/transfers/{transfer_id}/reverse"

    # A write key may not reverse, nor may the receiver's path or an unknown transfer
    write_key = api.create_key(admin_key, "write")
    assert_error(api.call("POST", path, key=write_key, body={}), 403, "forbidden")
    wrong_member = f"/v1/members/{receiver}/transfers/{transfer_id}/reverse"
    assert_error(api.call("POST", wrong_member, key=admin_key, body={}), 404, "not_found")
    unknown = f"/v1/members/{sender}/transfers/trf_01JD0000000000000000000000/reverse"
    assert_error(api.call("POST", unknown, key=admin_key, body={}), 404, "not_found")

    # When the admin reverses it
    reversed_ = api.call("POST", path, key=admin_key, body={"reason": "Wrong member"})

    # Then the points are back with the sender, and the receiver's are gone
    assert reversed_.status == 201, reversed_
    assert (reversed_.body["transfer_id"], reversed_.body["points"]) == (transfer_id, 300)
    assert reversed_.body["transaction"]["reason"] == "Wrong member"
    assert reversed_.body["balance"]["available"] == 500 and reversed_.body["balance"]["lifetime_transferred"] == 0
    assert api.balance(admin_key, receiver)["available"] == 0
    assert [e["points"] for e in api.ledger(admin_key, receiver)] == [-300, 300]

    # And reversing again answers the same reversal, moving nothing
    again = api.call("POST", path, key=admin_key, body={"reason": "Again"})
    assert again.status == 201 and again.body == reversed_.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert api.balance(admin_key, sender)["available"] == 500


def test_a_reversal_is_refused_when_the_receiver_spent_the_points(
    api: Api, admin_key: str, funded: tuple[str, str]
) -> None:
    sender, receiver = funded
    transfer_id = _transfer(api, admin_key, sender, "gift", to={"member_id": receiver}, points=300).body["id"]
    assert api.redeem(admin_key, receiver, "spent", points=250).status == 201

    refused = api.call("POST", f"/v1/members/{sender}/transfers/{transfer_id}/reverse", key=admin_key, body={})

    assert assert_error(refused, 422, "insufficient_points") == {"available": 50, "requested": 300}
    assert api.balance(admin_key, sender)["available"] == 200
    assert api.balance(admin_key, receiver)["available"] == 50


# --- lots keep their expiry (services, with a clock the test moves) ------------------------------

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TZ = "Europe/Helsinki"
POLICY = ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30)


@dataclass
class Brand:
    services: TenantServices
    clock: MovableClock
    keys: Counter[str]

    def enrol(self) -> str:
        return self.services.members.enrol(NewMember()).member_id

    def move(self, member: str, movement: MovementType, points: int) -> None:
        self.keys[movement] += 1
        self.services.points.move(
            MovementRequest(
                member_id=member,
                movement=movement,
                points=points,
                idempotency_key=f"{movement}-{self.keys[movement]}-{member}",
                timezone=TZ,
            )
        )

    def transfer(self, sender: str, receiver: str, points: int, key: str) -> str:
        result = self.services.transfers.transfer(
            TransferRequest(sender, receiver, points, idempotency_key=key, timezone=TZ)
        )
        return result.transfer_id

    def program(self, expiry: ExpiryPolicy, transfers: TransferPolicy) -> None:
        self.services.program.replace(Decimal(1), Rounding.FLOOR, expiry, transfers=transfers)

    def lots(self, member: str) -> list[tuple[int, datetime | None]]:
        lots = self.services.points.balance_and_lots(member)[1]
        return sorted((lot.remaining, lot.expires_at) for lot in lots)

    def available(self, member: str) -> int:
        return self.services.points.view(member).available


@pytest.fixture
def brand(api: Api) -> Brand:
    api.create_tenant("acme")
    clock = MovableClock(T0)
    return Brand(platform().for_tenant_id("acme", clock=clock), clock, Counter())


def test_the_receiver_gets_the_senders_expiry_dates_in_fifo_order(brand: Brand) -> None:
    allowed = TransferPolicy(enabled=True)
    # Given a sender with 50 points that never expire, then 100 expiring at T0+30d and 100 at T0+35d
    sender, receiver = brand.enrol(), brand.enrol()
    brand.program(ExpiryPolicy(), allowed)
    brand.move(sender, MovementType.EARN, 50)
    brand.program(POLICY, allowed)
    brand.move(sender, MovementType.EARN, 100)
    first_expiry = POLICY.expires_at(T0, TZ)
    brand.clock.now = T0 + 5 * DAY
    brand.move(sender, MovementType.EARN, 100)
    second_expiry = POLICY.expires_at(T0 + 5 * DAY, TZ)

    # When 150 points are transferred
    brand.clock.now = T0 + 10 * DAY
    brand.transfer(sender, receiver, 150, "fifo-1")

    # Then they leave as a redemption takes them (the lot expiring first), and keep their expiry
    assert brand.lots(receiver) == [(50, second_expiry), (100, first_expiry)]
    assert brand.lots(sender) == [(50, second_expiry)]
    received = brand.services.points.transactions(receiver, limit=10, cursor=None).items[0]
    assert received.expires_at == first_expiry  # the earliest of the lots received

    # When the first expiry passes, Then the receiver's points from that lot expire with it
    brand.clock.now = first_expiry
    assert brand.available(receiver) == 50
    assert brand.available(sender) == 100

    # And points that never expire arrive as points that never expire
    brand.transfer(sender, receiver, 100, "fifo-2")  # 50 expiring at the second date, then 50 plain
    assert brand.available(receiver) == 150
    brand.clock.now = second_expiry
    assert brand.available(receiver) == 50
    assert brand.available(sender) == 0


def test_a_reversal_gives_the_sender_its_own_expiry_back(brand: Brand) -> None:
    allowed = TransferPolicy(enabled=True)
    brand.program(POLICY, allowed)
    sender, receiver = brand.enrol(), brand.enrol()
    brand.move(sender, MovementType.EARN, 100)
    first_expiry = POLICY.expires_at(T0, TZ)
    # Given the receiver holds points of its own expiring sooner than the transferred ones
    brand.clock.now = T0 - 2 * DAY
    brand.move(receiver, MovementType.EARN, 40)
    sooner = POLICY.expires_at(T0 - 2 * DAY, TZ)
    brand.clock.now = T0 + DAY
    transfer_id = brand.transfer(sender, receiver, 60, "gift")

    # When the admin reverses the transfer
    result = brand.services.transfers.reverse(sender, transfer_id, reason=None, actor_key_id=None)

    # Then the lots the transfer gave go back, not the receiver's own
    assert result.entry.points == 60 and not result.replayed
    assert brand.lots(sender) == [(40, first_expiry), (60, first_expiry)]
    assert brand.lots(receiver) == [(40, sooner)]

    # And a second reversal answers the first
    again = brand.services.transfers.reverse(sender, transfer_id, reason="again", actor_key_id=None)
    assert again.replayed and again.entry.transaction_id == result.entry.transaction_id


def test_a_reversal_gives_back_points_that_never_expire_as_points_that_never_expire(brand: Brand) -> None:
    allowed = TransferPolicy(enabled=True)
    # Given a sender whose 120 points never expire, sent to a receiver who then earns points
    # that expire (a program that changed its expiry policy in between)
    sender, receiver = brand.enrol(), brand.enrol()
    brand.program(ExpiryPolicy(), allowed)
    brand.move(sender, MovementType.EARN, 150)
    transfer_id = brand.transfer(sender, receiver, 120, "plain-gift")
    received = brand.services.points.transactions(receiver, limit=1, cursor=None).items[0]
    assert (received.expires_at, received.metadata["points_without_expiry"]) == (None, "120")
    brand.program(POLICY, allowed)
    brand.move(receiver, MovementType.EARN, 90)
    expiry = POLICY.expires_at(T0, TZ)

    # When the admin reverses the transfer
    brand.services.transfers.reverse(sender, transfer_id, reason=None, actor_key_id=None)

    # Then the sender's 150 points never expire again, and the receiver keeps its own lot
    assert (brand.available(sender), brand.lots(sender)) == (150, [])
    assert (brand.available(receiver), brand.lots(receiver)) == (90, [(90, expiry)])
    brand.clock.now = expiry
    assert (brand.available(sender), brand.available(receiver)) == (150, 0)


def test_a_reversal_takes_what_the_transfer_gave_of_both_kinds_first(brand: Brand) -> None:
    allowed = TransferPolicy(enabled=True)
    # Given a transfer of 30 expiring points and 20 that never expire
    sender, receiver = brand.enrol(), brand.enrol()
    brand.program(ExpiryPolicy(), allowed)
    brand.move(sender, MovementType.EARN, 20)
    brand.program(POLICY, allowed)
    brand.move(sender, MovementType.EARN, 30)
    expiry = POLICY.expires_at(T0, TZ)
    transfer_id = brand.transfer(sender, receiver, 50, "mixed-gift")
    # And the receiver's own points: some expiring sooner, some never
    brand.clock.now = T0 + DAY
    brand.move(receiver, MovementType.EARN, 10)
    later = POLICY.expires_at(T0 + DAY, TZ)
    brand.program(ExpiryPolicy(), allowed)
    brand.move(receiver, MovementType.EARN, 8)

    # When the receiver spends 15 (from the transferred lot, which expires first) and the
    # transfer is reversed
    brand.move(receiver, MovementType.REDEEM, 15)
    brand.services.transfers.reverse(sender, transfer_id, reason=None, actor_key_id=None)

    # Then the reversal took the 15 left of the transferred lot, then the 20 points that never
    # expire, then 10 from the receiver's own lot (the first to expire), then 5 that never expire
    assert (brand.available(sender), brand.lots(sender)) == (50, [(10, later), (15, expiry)])
    assert (brand.available(receiver), brand.lots(receiver)) == (3, [])


def test_refusals_of_the_service(brand: Brand) -> None:
    sender, receiver = brand.enrol(), brand.enrol()
    brand.program(ExpiryPolicy(), TransferPolicy(enabled=True, minimum=1, daily_maximum=100))
    brand.move(sender, MovementType.EARN, 300)
    with pytest.raises(NotFound):
        brand.transfer(sender, "mem_01JD0000000000000000000000", 10, "ghost")
    with pytest.raises(TransferNotAllowed):
        brand.transfer(sender, receiver, 101, "too-much")
    brand.transfer(sender, receiver, 100, "day-1")
    with pytest.raises(TransferNotAllowed):
        brand.transfer(sender, receiver, 1, "day-2")
    # The next local day starts a new allowance
    brand.clock.now = T0 + DAY
    brand.transfer(sender, receiver, 100, "day-3")
    brand.move(receiver, MovementType.REDEEM, 150)
    with pytest.raises(InsufficientPoints):
        brand.transfer(receiver, sender, 51, "back")
    assert brand.available(sender) == 100 and brand.available(receiver) == 50
