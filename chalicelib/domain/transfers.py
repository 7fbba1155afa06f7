"""Transfers: a member moves points to another member of the same brand, and an admin may
reverse the move once.

Both sides are written in one conditional transaction (``TransferStore.commit``): the
sender's entry and the receiver's, both balances under their version conditions, the
sender's lots taken and the receiver's lots created, and (under a daily maximum) the
sender's counter of the day. So a transfer is all or nothing; a redemption racing it moves
the sender's version, so one of the two decides again and the sender is never overdrawn; and
the points held across members are the same before and after it.

* **The program decides** (``Program.transfers``): whether transfers are enabled, the
  fewest points one may move, the most a member may send per local day. Refused with
  ``transfer_not_allowed`` (``details.reason``) otherwise, and always to oneself.
* **Lots keep their expiry.** Points leave the sender as a redemption takes them: the
  spendable lots expiring first (FIFO by expiry), then the points that never expire; pending
  points never move. The receiver gets one lot per lot taken, with its expiry and the moment
  it was earned, so the receiver never gets fresher points than the sender held. A receiver
  in claw-back debt pays it first, from the points expiring first. A transfer may take from
  at most ``MAX_LOTS_PER_TRANSFER`` lots (so both sides fit in one transaction).
* **Idempotent.** The sender's entry is keyed by the caller's Idempotency-Key, the
  receiver's by ``transfer:<transfer id>:in``; a replay answers the first result.
* **Events.** Each entry is a ``points.transferred`` event in its own member's feed.
* **Reversal** (an admin): the points go back from the receiver to the sender in one
  transaction like a transfer, the lots the transfer gave first (so the sender gets its own
  expiry back), then the receiver's other points FIFO, under ``transfer:<id>:reversed`` and
  ``transfer:<id>:returned``: once per transfer, whatever the retries. Refused with
  ``insufficient_points`` when the receiver holds fewer spendable points than were moved (an
  admin then corrects with adjustments). Neither the program's policy nor the daily maximum
  applies to a reversal, and a reversal gives nothing back to the day's counter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar
from zoneinfo import ZoneInfo

from chalicelib.domain.audit import AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.credits import with_activity
from chalicelib.domain.entries import Balance, LedgerEntry, settle
from chalicelib.domain.errors import (
    BusinessRuleViolation,
    IdempotencyKeyReused,
    InsufficientPoints,
    MovementTooLarge,
    NotFound,
    TransferNotAllowed,
    TransientStoreError,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges, draw
from chalicelib.domain.fingerprints import fingerprint, minted_fingerprint
from chalicelib.domain.ids import MEMBER_ID_PATTERN, TRANSFER_ID_PATTERN, new_transaction_id, new_transfer_id
from chalicelib.domain.ledger import RetryPolicy
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT, MovementType, refuse_minted_key
from chalicelib.domain.ports import CounterChange, CounterLimitReached, IdempotencyKeyTaken

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import LedgerStore
    from chalicelib.domain.program import Program, ProgramService, TransferPolicy

T = TypeVar("T")

#: Lots one transfer may take from the sender (each is an item of the transaction, and so is
#: the lot the receiver gets for it: 2 x 40 + 2 entries + 2 balances + a counter < 100).
MAX_LOTS_PER_TRANSFER = 40
#: The prefix of a transfer's keys the ledger mints (chalicelib.domain.movement_requests).
TRANSFER_KEY_PREFIX = "transfer:"


#: The receiver's entry of a transfer records how many of its points never expire, so that a
#: reversal takes those back (with the transfer's own lots) before the receiver's other points.
PLAIN_POINTS = "points_without_expiry"


def received_key(transfer_id: str) -> str:
    """The key of the receiver's entry."""
    return f"{TRANSFER_KEY_PREFIX}{transfer_id}:in"


def reversed_key(transfer_id: str) -> str:
    """The key of the reversal's entry on the receiver (the points leave again)."""
    return f"{TRANSFER_KEY_PREFIX}{transfer_id}:reversed"


def returned_key(transfer_id: str) -> str:
    """The key of the reversal's entry on the sender (the points come back)."""
    return f"{TRANSFER_KEY_PREFIX}{transfer_id}:returned"


def daily_counter(member_id: str, day: str) -> str:
    """The counter of the points a member sent on a local day (``YYYY-MM-DD``)."""
    return f"transfer:{member_id}:{day}"


@dataclass(frozen=True)
class TransferRequest:
    from_member_id: str
    to_member_id: str
    points: int
    idempotency_key: str
    description: str | None = None
    actor_key_id: str | None = None
    #: The tenant's time zone: the daily maximum counts per local day.
    timezone: str = "UTC"

    def fingerprint(self) -> str:
        """What makes two requests under one Idempotency-Key 'the same request'."""
        return fingerprint(
            {
                "movement": str(MovementType.TRANSFER),
                "member_id": self.from_member_id,
                "to_member_id": self.to_member_id,
                "points": self.points,
                "description": self.description,
            }
        )


@dataclass(frozen=True)
class Portion:
    """Points taken from one of the sender's lots (its expiry and when they were earned), or
    from the points that never expire (``expires_at`` None)."""

    points: int
    expires_at: datetime | None
    earned_at: datetime | None


@dataclass(frozen=True)
class Side:
    """One member's part of a transfer's transaction."""

    previous: Balance
    after: Balance
    entry: LedgerEntry
    lots: LotChanges


@dataclass(frozen=True)
class TransferCommit:
    """What one transfer (or reversal) writes: the points leave ``out`` and reach ``into``."""

    out: Side
    into: Side
    #: The sender's counter of the day, under the daily maximum (None: no maximum).
    counter: CounterChange | None = None
    #: The audit entry of an admin's reversal, written in the same transaction.
    audit: AuditEntry | None = None


@dataclass(frozen=True)
class TransferResult:
    transfer_id: str
    #: The caller's side: the sender's entry (a transfer), or the sender's credit (a reversal).
    entry: LedgerEntry
    replayed: bool


class TransferStore(Protocol):
    def commit(self, transfer: TransferCommit) -> None:
        """Write both entries (each only if its key is absent), both balances (each only if
        still at its previous version and tier revision), both sides' lot changes and the
        counter (within its limit) in one transaction. IdempotencyKeyTaken when the key of
        ``out``'s entry exists; CounterLimitReached when the counter would pass its limit;
        BalanceChanged for any other failed condition; TransientStoreError for conflicts and
        throttling."""


def _fifo(lot: Lot) -> tuple[datetime, datetime, str]:
    never = datetime.max.replace(tzinfo=UTC)
    return (lot.expires_at or never, lot.earned_at, lot.lot_id)


def take(
    available: int,
    lots: Sequence[Lot],
    points: int,
    at: datetime,
    *,
    first: frozenset[str] = frozenset(),
    plain_first: int = 0,
) -> tuple[LotChanges, tuple[Portion, ...]]:
    """Take ``points`` as a redemption would: the spendable lots named in ``first`` (FIFO), then
    up to ``plain_first`` of the points that never expire, then the other spendable lots (FIFO
    by expiry), then the rest of the points that never expire. A reversal takes back what its
    transfer gave this way: its lots and its never-expiring points before anything else.
    Returns the lot changes and what was taken, portion by portion, in that order."""
    spendable = LotBook(available, tuple(lots)).spendable(at)
    if points > spendable:
        raise InsufficientPoints(
            f"the member has {spendable} points available; {points} requested",
            details={"available": spendable, "requested": points},
        )
    usable = sorted((lot for lot in lots if not lot.pending and not lot.expired(at)), key=_fifo)
    plain = max(0, spendable - sum(lot.remaining for lot in usable))
    early = [lot for lot in usable if lot.lot_id in first]
    later = [lot for lot in usable if lot.lot_id not in first]
    need = points
    updated: list[Lot] = []
    deleted: list[Lot] = []
    portions: list[Portion] = []

    def from_lots(chosen: list[Lot]) -> None:
        nonlocal need
        for lot, part in draw(chosen, need, updated, deleted):
            need -= part
            portions.append(Portion(part, lot.expires_at, lot.earned_at))

    from_lots(early)
    if plain_taken := min(need, plain_first, plain):
        need -= plain_taken
        portions.append(Portion(plain_taken, None, None))
    from_lots(later)
    if need:  # spendable() guaranteed the never-expiring points cover the rest
        portions.append(Portion(need, None, None))
    changes = LotChanges(updated=tuple(updated), deleted=tuple(deleted))
    if changes.count > MAX_LOTS_PER_TRANSFER:
        at_once = sum(portion.points for portion in portions[:MAX_LOTS_PER_TRANSFER] if portion.expires_at)
        raise MovementTooLarge(
            f"{points} points span {changes.count} lots of points earned at different times; one transfer may "
            f"take from at most {MAX_LOTS_PER_TRANSFER}: move at most {at_once} points now, then the rest",
            details={
                "points": points,
                "lots": changes.count,
                "max_lots": MAX_LOTS_PER_TRANSFER,
                "max_points": at_once,
            },
        )
    return changes, tuple(portions)


def give(receiver: Balance, portions: Sequence[Portion], lot_prefix: str) -> LotChanges:
    """The lots the receiver gets for ``portions``: one per portion that expires, with its
    expiry, after a claw-back debt is paid from the portions in order (expiring first)."""
    debt = max(0, -receiver.available)
    created = []
    for index, portion in enumerate(portions):
        paid = min(debt, portion.points)
        debt -= paid
        keep = portion.points - paid
        if keep and portion.expires_at is not None:
            earned_at = portion.earned_at or portion.expires_at
            lot_id = f"{lot_prefix}-{index:02d}"
            created.append(Lot(lot_id, receiver.member_id, keep, keep, earned_at, portion.expires_at))
    return LotChanges(created=tuple(created))


@dataclass(frozen=True)
class _Leg:
    """How one side's entry is recorded."""

    key: str
    fingerprint: str
    metadata: dict[str, str]


class TransferService:
    def __init__(
        self,
        ledger: LedgerStore,
        store: TransferStore,
        program: ProgramService,
        points: PointsService,
        *,
        clock: Clock = utc_now,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor
        self._ledger = ledger
        self._store = store
        self._program = program
        #: Settles what is due on either side before a transfer (its own transactions).
        self._points = points
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def transfer(self, request: TransferRequest) -> TransferResult:
        """Move ``request.points`` from one member to the other, or refuse; a replay of the
        Idempotency-Key answers the first result."""
        self._program.forget()
        refuse_minted_key(request.idempotency_key)
        if not MEMBER_ID_PATTERN.fullmatch(request.from_member_id):
            raise NotFound(f"member {request.from_member_id!r} not found")
        existing = self._ledger.get_entry(request.idempotency_key)
        if existing is not None:
            return self._replay(request, existing)
        try:
            policy = self._program.get().transfers
            try:
                self._check(request, policy)
            except TransferNotAllowed:
                if self._ledger.get_balance(request.from_member_id, consistent=True) is None:  # 404 first
                    raise NotFound(f"member {request.from_member_id!r} not found") from None
                raise
            return self._with_retries(lambda: self._transfer_attempt(request, policy))
        except BusinessRuleViolation as refusal:
            return self._replay_or_raise(request, refusal)

    def reverse(
        self, member_id: str, transfer_id: str, *, reason: str | None, actor_key_id: str | None
    ) -> TransferResult:
        """Move a transfer's points back to ``member_id``, its sender, once: a repeat answers
        the reversal already recorded."""
        self._program.forget()
        received = (
            self._ledger.get_entry(received_key(transfer_id)) if TRANSFER_ID_PATTERN.fullmatch(transfer_id) else None
        )
        if received is None or received.metadata.get("from_member_id") != member_id:
            raise NotFound(f"transfer {transfer_id!r} of member {member_id!r} not found")
        returned = self._ledger.get_entry(returned_key(transfer_id))
        if returned is not None:
            return TransferResult(transfer_id, returned, replayed=True)
        try:
            return self._with_retries(lambda: self._reverse_attempt(received, reason, actor_key_id))
        except IdempotencyKeyTaken:
            returned = self._ledger.get_entry(returned_key(transfer_id))
            if returned is None:
                raise TransientStoreError("the reversal's entry is not readable yet") from None
            return TransferResult(transfer_id, returned, replayed=True)

    # --- one attempt ------------------------------------------------------------------------------

    @staticmethod
    def _check(request: TransferRequest, policy: TransferPolicy) -> None:
        def refuse(message: str, reason: str, **details: object) -> TransferNotAllowed:
            return TransferNotAllowed(message, details={"reason": reason, **details})

        if not policy.enabled:
            raise refuse("the program does not allow transfers between members", "disabled")
        if request.to_member_id == request.from_member_id:
            raise refuse("a member cannot transfer points to themselves", "same_member")
        if request.points < policy.minimum:
            raise refuse(f"a transfer moves at least {policy.minimum} points", "below_minimum", minimum=policy.minimum)
        if policy.daily_maximum is not None and request.points > policy.daily_maximum:
            raise refuse(
                f"a member may send at most {policy.daily_maximum} points a day",
                "daily_maximum",
                daily_maximum=policy.daily_maximum,
            )
        if request.points > MAX_POINTS_PER_MOVEMENT:
            raise MovementTooLarge(
                f"a single movement may not exceed {MAX_POINTS_PER_MOVEMENT} points",
                details={"points": request.points, "maximum": MAX_POINTS_PER_MOVEMENT},
            )

    def _transfer_attempt(self, request: TransferRequest, policy: TransferPolicy) -> TransferResult:
        now = self._clock()
        sender, sender_lots = self._settled(request.from_member_id, now)
        receiver, receiver_lots = self._settled(request.to_member_id, now)
        transfer_id = new_transfer_id(now)
        counter = None
        if policy.daily_maximum is not None:
            day = now.astimezone(ZoneInfo(request.timezone)).date().isoformat()
            counter = CounterChange(
                daily_counter(request.from_member_id, day), request.points, at_most=policy.daily_maximum
            )
        commit = self._plan(
            transfer_id,
            (sender, sender_lots),
            (receiver, receiver_lots),
            request.points,
            now,
            out=_Leg(
                request.idempotency_key,
                request.fingerprint(),
                {"transfer_id": transfer_id, "to_member_id": request.to_member_id},
            ),
            into=_Leg(
                received_key(transfer_id),
                minted_fingerprint(received_key(transfer_id)),
                {"transfer_id": transfer_id, "from_member_id": request.from_member_id},
            ),
            description=request.description,
            reason=None,
            actor_key_id=request.actor_key_id,
            counter=counter,
        )
        try:
            self._store.commit(commit)
        except IdempotencyKeyTaken:
            return self._replay_or_raise(request, None)
        except CounterLimitReached:
            assert counter is not None
            sent = self._ledger.get_counter(counter.name)
            raise TransferNotAllowed(
                f"a member may send at most {policy.daily_maximum} points a day; {sent} were sent today",
                details={"reason": "daily_maximum", "daily_maximum": policy.daily_maximum, "sent_today": sent},
            ) from None
        return TransferResult(transfer_id, commit.out.entry, replayed=False)

    def _reverse_attempt(self, received: LedgerEntry, reason: str | None, actor_key_id: str | None) -> TransferResult:
        now = self._clock()
        transfer_id = received.metadata["transfer_id"]
        sender_id = received.metadata["from_member_id"]
        holder, holder_lots = self._settled(received.member_id, now)
        sender, sender_lots = self._settled(sender_id, now)
        given = frozenset(lot.lot_id for lot in holder_lots if lot.lot_id.startswith(f"{transfer_id}-"))
        commit = self._plan(
            transfer_id,
            (holder, holder_lots),
            (sender, sender_lots),
            received.points,
            now,
            out=_Leg(
                reversed_key(transfer_id),
                minted_fingerprint(reversed_key(transfer_id)),
                {"transfer_id": transfer_id, "to_member_id": sender_id, "reversal": "true"},
            ),
            into=_Leg(
                returned_key(transfer_id),
                minted_fingerprint(returned_key(transfer_id)),
                {"transfer_id": transfer_id, "from_member_id": received.member_id, "reversal": "true"},
            ),
            description=f"reversal of transfer {transfer_id}",
            reason=reason,
            actor_key_id=actor_key_id,
            first=given,
            plain_first=int(received.metadata.get(PLAIN_POINTS, "0")),
            lot_prefix=f"{transfer_id}-r",
        )
        if self._auditor is not None:
            audit = self._auditor.entry(
                AuditAction.TRANSFER_REVERSED,
                "transfer",
                transfer_id,
                after={"points": received.points, "to_member_id": sender_id, "reason": reason},
                at=now,
            )
            commit = replace(commit, audit=audit)
        self._store.commit(commit)
        return TransferResult(transfer_id, commit.into.entry, replayed=False)

    def _plan(
        self,
        transfer_id: str,
        source: tuple[Balance, tuple[Lot, ...]],
        target: tuple[Balance, tuple[Lot, ...]],
        points: int,
        now: datetime,
        *,
        out: _Leg,
        into: _Leg,
        description: str | None,
        reason: str | None,
        actor_key_id: str | None,
        counter: CounterChange | None = None,
        first: frozenset[str] = frozenset(),
        plain_first: int = 0,
        lot_prefix: str | None = None,
    ) -> TransferCommit:
        """Both sides of a move of ``points`` from ``source`` to ``target``. Pure. A transfer
        (``lot_prefix`` None) records on ``into``'s entry how many of the points the receiver
        keeps never expire; a reversal takes its transfer's lots (``first``) and those points
        (``plain_first``) back first."""
        program = self._program.get()
        (sender, sender_lots), (receiver, receiver_lots) = source, target
        taken, portions = take(sender.available, sender_lots, points, now, first=first, plain_first=plain_first)
        given = give(receiver, portions, lot_prefix or transfer_id)
        if lot_prefix is None:
            # What the receiver keeps apart from its new lots and a claw-back debt the points paid
            plain = points - sum(lot.original for lot in given.created) - min(points, max(0, -receiver.available))
            into = replace(into, metadata={**into.metadata, PLAIN_POINTS: str(plain)})
        sender_after = self._after(program, sender, sender_lots, taken, -points, now)
        receiver_after = self._after(program, receiver, receiver_lots, given, points, now)

        def entry(leg: _Leg, after: Balance, moved: int, expires_at: datetime | None) -> LedgerEntry:
            return LedgerEntry(
                transaction_id=new_transaction_id(now),
                member_id=after.member_id,
                movement=MovementType.TRANSFER,
                points=moved,
                sequence=after.version,
                idempotency_key=leg.key,
                request_fingerprint=leg.fingerprint,
                occurred_at=now,
                created_at=now,
                balance_after=after,
                reference=transfer_id,
                description=description,
                reason=reason,
                metadata=leg.metadata,
                actor_key_id=actor_key_id,
                expires_at=expires_at,
            )

        earliest = min((lot.expires_at for lot in given.created if lot.expires_at is not None), default=None)
        return TransferCommit(
            out=Side(sender, sender_after, entry(out, sender_after, -points, None), taken),
            into=Side(receiver, receiver_after, entry(into, receiver_after, points, earliest), given),
            counter=counter,
        )

    @staticmethod
    def _after(
        program: Program, previous: Balance, lots: tuple[Lot, ...], changes: LotChanges, delta: int, now: datetime
    ) -> Balance:
        after = previous.apply(MovementType.TRANSFER, delta, now)
        after = with_activity(program, MovementType.TRANSFER, after, now)
        return after.with_lots(LotBook(after.available, lots).after(changes))

    def _settled(self, member_id: str, now: datetime) -> tuple[Balance, tuple[Lot, ...]]:
        """The member's balance and lots with nothing due at ``now``: what is due is recorded
        first, in its own transactions (so the transfer's own keeps its room)."""
        while True:
            found = (
                self._ledger.get_balance(member_id, consistent=True) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
            )
            if found is None:
                raise NotFound(f"member {member_id!r} not found")
            lots = tuple(self._ledger.get_lots(member_id, consistent=True)) if found.lot_count else ()
            if not settle(found, lots, now, now, max_lots=sys.maxsize).entries:
                return found, lots
            self._points.settle_due(member_id, now)

    # --- replays and retries ------------------------------------------------------------------------

    def _replay(self, request: TransferRequest, existing: LedgerEntry) -> TransferResult:
        if existing.request_fingerprint != request.fingerprint():
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": request.idempotency_key, "transaction_id": existing.transaction_id},
            )
        return TransferResult(existing.reference or "", existing, replayed=True)

    def _replay_or_raise(self, request: TransferRequest, refusal: Exception | None) -> TransferResult:
        """A refused or colliding request may be the replay of one that already succeeded."""
        existing = self._ledger.get_entry(request.idempotency_key)
        if existing is None:
            if refusal is None:
                raise TransientStoreError("idempotency entry not readable yet")
            raise refusal
        return self._replay(request, existing)

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        return self._retry.run(attempt, self._sleep, racing="the members' balances are changing too fast")
