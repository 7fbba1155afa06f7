"""Commerce order intake: a shop's paid, refunded and cancelled order events, turned into
ledger movements (an order earn on paid, the reverse movement on refund and cancel).

Idempotency is by (source, order id, event id). Each handled event is recorded with its
outcome; a replay of the same event answers the first result and changes nothing. A paid
event under another event id for an order that already earned changes nothing either: its
outcome is ``already_earned``, pointing at the original transaction. The
ledger itself guards each movement under a key minted from the event
(``intake:<source>:<order>:paid`` — one earn per order, whichever event says it was paid —
``...:refund:<event>`` and ``...:cancel``), so a crash between the movement and the record
is healed by the retry: the movement replays, then the record is written.

A refund is a reversal by amount: the ledger takes back the share of the order's points
its amount is of what was paid, cumulatively (chalicelib.domain.reversals), so refunds that
add up to the whole order reverse exactly every point, whatever multipliers gave them; a
refund too small for a whole point is still recorded and counts towards the next one. A
cancellation reverses what is left. Refunds and cancellations need the paid event first
(409 ``order_not_paid`` until it has arrived, so a shop's retry lands once it has).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from chalicelib.domain import fingerprints
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.entries import LedgerEntry
from chalicelib.domain.errors import IdempotencyKeyReused, MemberExists, NotFound, OrderNotPaid
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.members import MemberService
    from chalicelib.domain.orders import Order
    from chalicelib.domain.ports import LedgerStore

#: The prefix of every ledger key the intake mints (reserved: clients may not send it).
INTAKE_KEY_PREFIX = "intake:"


class OrderEventType(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    EARNED = "earned"
    #: A paid event under another event id for an order that had already earned: nothing new.
    ALREADY_EARNED = "already_earned"
    REVERSED = "reversed"
    NOTHING_TO_REVERSE = "nothing_to_reverse"


@dataclass(frozen=True)
class Customer:
    """Who the order belongs to. Tried in order: the member id, each external id; when
    nothing matches and ``enrol_external_id`` is set, a member is enrolled under it."""

    member_id: str | None = None
    external_ids: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None
    enrol_external_id: str | None = None


@dataclass(frozen=True)
class OrderEvent:
    #: Where the events come from: ``orders`` (the generic intake) or ``shopify:<integration>``.
    source: str
    event_id: str
    type: OrderEventType
    order_id: str
    currency: str
    timezone: str = "UTC"
    #: Paid: the order (its lines go through the earning rules).
    order: Order | None = None
    #: Refunded: the amount refunded; None refunds what is left of the order.
    refund_amount: Decimal | None = None
    customer: Customer = field(default_factory=Customer)
    occurred_at: datetime | None = None
    actor_key_id: str | None = None

    def fingerprint(self) -> str:
        order = None if self.order is None else self.order.canonical()
        canonical = {
            "type": str(self.type),
            "order_id": self.order_id,
            "order": None
            if order is None
            else [
                order.pop("total"),
                order.pop("currency"),
                order.pop("lines"),
                *([order] if order else []),  # discount, shipping, tax: only when sent
            ],
            "refund_amount": None if self.refund_amount is None else str(self.refund_amount),
            "customer": [self.customer.member_id, list(self.customer.external_ids), self.customer.email],
        }
        return fingerprints.fingerprint(canonical, separators=fingerprints.JSON_DEFAULT)

    def ledger_key(self, suffix: str) -> str:
        return f"{INTAKE_KEY_PREFIX}{self.source}:{self.order_id}:{suffix}"


@dataclass(frozen=True)
class OrderEventRecord:
    """A handled event and its outcome (what a replay answers)."""

    source: str
    order_id: str
    event_id: str
    type: OrderEventType
    fingerprint: str
    member_id: str
    outcome: Outcome
    created_at: datetime
    #: The ledger entry's key (None when nothing moved).
    ledger_key: str | None = None
    #: Refunds: the amount this event refunded (counts towards later refunds' share).
    refund_amount: Decimal | None = None
    #: Points this event asked the ledger to reverse (refunds and cancellations).
    points: int = 0


@dataclass(frozen=True)
class OrderEventResult:
    record: OrderEventRecord
    entry: LedgerEntry | None
    replayed: bool


class OrderEventStore(Protocol):
    def get(self, source: str, order_id: str, event_id: str) -> OrderEventRecord | None: ...
    def for_order(self, source: str, order_id: str) -> list[OrderEventRecord]: ...
    def add(self, record: OrderEventRecord) -> OrderEventRecord:
        """Write the record if its event is new; returns the stored record either way."""
        ...


class OrderIntakeService:
    def __init__(
        self,
        store: OrderEventStore,
        points: PointsService,
        ledger: LedgerStore,
        members: MemberService,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._points = points
        self._ledger = ledger
        self._members = members
        self._clock = clock

    def handle(self, event: OrderEvent) -> OrderEventResult:
        fingerprint = event.fingerprint()
        existing = self._store.get(event.source, event.order_id, event.event_id)
        if existing is not None:
            return self._replay(existing, fingerprint)
        entry: LedgerEntry | None
        if event.type is OrderEventType.PAID:
            record, entry = self._paid(event, fingerprint)
        else:
            record, entry = self._reverse(event, fingerprint)
        stored = self._store.add(record)
        if stored != record:  # a concurrent delivery of the same event recorded first
            return self._replay(stored, fingerprint)
        return OrderEventResult(record, entry, replayed=False)

    # --- paid ------------------------------------------------------------------------------

    def _paid(self, event: OrderEvent, fingerprint: str) -> tuple[OrderEventRecord, LedgerEntry]:
        if event.order is None:
            raise ValueError("a paid event carries its order")
        member_id = self._member_for(event.customer)
        key = event.ledger_key("paid")
        entry, fresh = self._move(
            key,
            MovementRequest(
                member_id=member_id,
                movement=MovementType.EARN,
                idempotency_key=key,
                currency=event.currency,
                reference=event.order_id,
                occurred_at=event.occurred_at,
                metadata={"source": event.source, "order_event": event.event_id},
                actor_key_id=event.actor_key_id,
                timezone=event.timezone,
                order=event.order,
                minted_key=True,
            ),
        )
        earned_before = not fresh and self._earned_by_another(event, entry)
        record = OrderEventRecord(
            source=event.source,
            order_id=event.order_id,
            event_id=event.event_id,
            type=event.type,
            fingerprint=fingerprint,
            member_id=entry.member_id,
            outcome=Outcome.ALREADY_EARNED if earned_before else Outcome.EARNED,
            created_at=self._clock(),
            ledger_key=key,
        )
        return record, entry

    def _earned_by_another(self, event: OrderEvent, entry: LedgerEntry) -> bool:
        """Whether the order's earn, found already made, came from another paid event (rather
        than from this one's earlier attempt, whose answer was lost before its record)."""
        made_by = entry.metadata.get("order_event")
        if made_by is not None:
            return made_by != event.event_id
        history = self._store.for_order(event.source, event.order_id)
        return any(r.type is OrderEventType.PAID and r.event_id != event.event_id for r in history)

    def _member_for(self, customer: Customer) -> str:
        if customer.member_id is not None:
            return self._members.get(customer.member_id).member_id
        for external_id in customer.external_ids:
            found = self._members.find_by_external_id(external_id)
            if found is not None:
                return found.member_id
        if customer.enrol_external_id is None:
            raise NotFound(
                "no member matches the order's customer",
                details={"external_ids": list(customer.external_ids)},
            )
        try:
            enrolled = self._members.enrol(
                NewMember(external_id=customer.enrol_external_id, email=customer.email, name=customer.name)
            )
        except MemberExists as exists:  # a concurrent event for the same new customer enrolled first
            return str(exists.details["member_id"])
        return enrolled.member_id

    # --- refunded, cancelled ---------------------------------------------------------------------

    def _reverse(self, event: OrderEvent, fingerprint: str) -> tuple[OrderEventRecord, LedgerEntry | None]:
        history = self._store.for_order(event.source, event.order_id)
        paid = next((r for r in history if r.type is OrderEventType.PAID and r.ledger_key), None)
        earn = self._ledger.get_entry(paid.ledger_key) if paid and paid.ledger_key else None
        if paid is None or earn is None:
            raise OrderNotPaid(
                f"order {event.order_id!r} has no paid event yet; send it first (or retry this one later)",
                details={"order_id": event.order_id},
            )
        entries = self._ledger.entries_for_reference(earn.member_id, earn.reference or event.order_id)
        earned = sum(e.points for e in entries if e.movement is MovementType.EARN)
        reversed_ = -sum(e.points for e in entries if e.movement is MovementType.REVERSE)
        left = max(0, earned - reversed_)
        refund_amount = None
        points: int | None = left
        amount: str | None = None
        suffix = "cancel"
        if event.type is OrderEventType.REFUNDED:
            refunds = [r for r in history if r.type is OrderEventType.REFUNDED]
            before = sum((r.refund_amount or Decimal(0) for r in refunds), Decimal(0))
            total = Decimal(earn.amount or "0")
            refund_amount = event.refund_amount if event.refund_amount is not None else max(Decimal(0), total - before)
            # The ledger turns the amount into points by the refunded share (chalicelib.domain.reversals).
            points, amount = (None, format(refund_amount, "f")) if refund_amount > 0 else (0, None)
            suffix = f"refund:{event.event_id}"
        record = OrderEventRecord(
            source=event.source,
            order_id=event.order_id,
            event_id=event.event_id,
            type=event.type,
            fingerprint=fingerprint,
            member_id=earn.member_id,
            outcome=Outcome.NOTHING_TO_REVERSE,
            created_at=self._clock(),
            refund_amount=refund_amount,
        )
        if left <= 0 or points == 0:
            return record, None
        key = event.ledger_key(suffix)
        entry, _ = self._move(
            key,
            MovementRequest(
                member_id=earn.member_id,
                movement=MovementType.REVERSE,
                idempotency_key=key,
                currency=event.currency,
                reference=earn.reference,
                occurred_at=event.occurred_at,
                metadata={"source": event.source, "order_event": event.event_id},
                actor_key_id=event.actor_key_id,
                timezone=event.timezone,
                minted_key=True,
                points=points,
                amount=amount,
            ),
        )
        asked = entry.requested if entry.requested is not None else -entry.points
        outcome = Outcome.REVERSED if asked else Outcome.NOTHING_TO_REVERSE
        return (
            OrderEventRecord(**{**record.__dict__, "outcome": outcome, "ledger_key": key, "points": asked}),
            entry,
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _move(self, key: str, request: MovementRequest) -> tuple[LedgerEntry, bool]:
        """The movement and True, or the entry an earlier attempt already recorded and False (a
        crash before the event's record, or a paid order told twice under two event ids)."""
        earlier = self._ledger.get_entry(key)
        if earlier is not None:
            return earlier, False
        try:
            result = self._points.move(request)
        except IdempotencyKeyReused:
            earlier = self._ledger.get_entry(key)
            if earlier is None:
                raise
            return earlier, False
        return result.entry, not result.replayed

    def _replay(self, record: OrderEventRecord, fingerprint: str) -> OrderEventResult:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"event {record.event_id!r} of order {record.order_id!r} was already received with other content",
                details={"order_id": record.order_id, "event_id": record.event_id},
            )
        entry = self._ledger.get_entry(record.ledger_key) if record.ledger_key else None
        return OrderEventResult(record, entry, replayed=True)
