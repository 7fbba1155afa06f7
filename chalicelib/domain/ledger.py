"""The points ledger: every movement is an immutable entry; the balance is their running sum.

A movement is committed with the new balance in one conditional DynamoDB transaction
(see ``LedgerStore.commit``):

* the entry is keyed by the tenant-wide idempotency key and written only if absent, so a
  key can never apply twice, whatever crashes or concurrent duplicates happen;
* the balance is written only if it is still at the version that was read (optimistic
  concurrency), so no update is ever lost and the entry records the exact balance after it.

Replays of a key return the stored entry, which holds everything the first response
showed, so the replayed response is identical however late it comes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.credits import credit_lot, with_activity
from chalicelib.domain.dating import OccurredAtOutOfRange, check_occurred_at
from chalicelib.domain.entries import Balance, BalanceView, LedgerEntry, Settlement, settle
from chalicelib.domain.errors import (
    AmountTooSmall,
    BusinessRuleViolation,
    IdempotencyKeyReused,
    MemberErased,
    MovementTooLarge,
    NotFound,
    RetryLater,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
    TransientStoreError,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges, merge
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_transaction_id
from chalicelib.domain.movement import Movement
from chalicelib.domain.movement_requests import (
    MAX_LOTS_PER_MOVEMENT,
    MAX_POINTS_PER_MOVEMENT,
    MovementRequest,
    MovementResult,
    MovementType,
    refuse_minted_key,
)
from chalicelib.domain.plans import active_grant
from chalicelib.domain.ports import (
    BalanceChanged,
    CounterChange,
    IdempotencyKeyTaken,
    WriteRefused,
)
from chalicelib.domain.program import parse_amount
from chalicelib.domain.reversals import EarnPart, GiveBack, give_back, refund_points
from chalicelib.domain.tiers import SPEND_SCALE

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from chalicelib.domain.movement import MovementStep
    from chalicelib.domain.orders import Order
    from chalicelib.domain.ports import LedgerStore, Page
    from chalicelib.domain.program import ProgramService
    from chalicelib.domain.rules import EarningRule, RuleService, Share


#: Due lots settled per transaction (each lot is up to 3 items: a mature entry, an expire
#: entry, its own write; plus the balance: 97 of DynamoDB's 100 items per transaction).
SETTLE_LOTS_PER_COMMIT = 32
#: Due lots settled inside a movement's own transaction; with more due, the movement first
#: records them in their own transactions, so its own lot changes keep room (~50 items).
SETTLE_LOTS_WITH_MOVEMENT = 16


@dataclass(frozen=True)
class EarnPreview:
    """What an order would earn a member: the same figures its earn would record."""

    points: int
    breakdown: tuple[Share, ...]
    #: The member's tier the earn would apply (None: none).
    tier: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    #: Attempts after the balance moved under us (each lost race means another movement committed).
    max_balance_races: int = 64
    #: Attempts after throttling or transaction conflicts that survived botocore's retries.
    max_transient_failures: int = 6
    backoff_base_seconds: float = 0.005
    backoff_cap_seconds: float = 0.2

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return backoff_seconds(
            min(attempt, 16), base=self.backoff_base_seconds, cap=self.backoff_cap_seconds, jitter="full"
        )

    def run(
        self,
        attempt: Callable[[], T],
        sleep: Callable[[float], None],
        *,
        racing: str,
        races: tuple[type[Exception], ...] = (BalanceChanged,),
    ) -> T:
        """``attempt`` until it returns: again, after a backoff, when it lost a race (``races``:
        what it read moved before it committed) or the store failed transiently; RetryLater
        (``racing``, or that the ledger is busy) when either kind runs out of attempts."""
        lost = transient = 0
        while True:
            try:
                return attempt()
            except races:
                lost += 1
                if lost >= self.max_balance_races:
                    raise RetryLater(racing) from None
                sleep(self.backoff(min(lost, 3)))
            except TransientStoreError:
                transient += 1
                if transient >= self.max_transient_failures:
                    raise RetryLater("the ledger is busy") from None
                sleep(self.backoff(transient))


class PointsService:
    def __init__(
        self,
        ledger: LedgerStore,
        program: ProgramService,
        *,
        clock: Clock = utc_now,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rules: RuleService | None = None,
        steps: Sequence[Callable[[], MovementStep]] = (),
    ) -> None:
        self._ledger = ledger
        self._program = program
        #: Order earns need the earning rules (the base and the rules' shares).
        self._rules = rules
        #: The features riding on every movement, in order (chalicelib.domain.steps): each
        #: attempt makes its own, so a step may keep what it read between its hooks.
        self._steps = tuple(steps)
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def move(self, request: MovementRequest) -> MovementResult:
        self._program.forget()
        if not request.minted_key:
            refuse_minted_key(request.idempotency_key)
        if not MEMBER_ID_PATTERN.fullmatch(request.member_id):
            raise NotFound(f"member {request.member_id!r} not found")
        try:
            # The dating rule, whoever the caller: allowances, caps and rules count in its period.
            check_occurred_at(request.occurred_at, self._clock())
        except OccurredAtOutOfRange as refusal:
            return self._replay_or_raise(request, refusal)  # a replay answers, however late it comes
        rules = None
        if request.movement is MovementType.EARN and self._rules is not None:
            # Once per movement: the order's rules, milestones and caps; a plain earn only when
            # the program's summary of the rules says one has a cap (or it has no summary).
            if request.order is not None or (request.capped and self._with_retries(self._program.get).may_cap):
                rules = self._rules.all()
        try:
            delta, amount, breakdown = self._delta(request, rules)
        except BusinessRuleViolation as refusal:
            # The program may have changed since this key was first applied: replay wins.
            return self._replay_or_raise(request, refusal)
        # The first attempt reads the balance eventually consistently: the transaction's version
        # condition refuses a stale read (BalanceChanged), and every later attempt reads strongly.
        strong = iter((False,))
        result = self._with_retries(
            lambda: self._attempt(request, delta, amount, breakdown, rules, consistent=next(strong, True))
        )
        for make in self._steps:
            make().after(request, result)
        return result

    def preview(self, member_id: str, order: Order, at: datetime | None, timezone: str) -> EarnPreview:
        """What ``order`` would earn this member at ``at`` (now), computed as its earn would
        (the member's tier and segments, the milestone of its next order, the caps and what
        they have left); writes nothing."""
        if self._rules is None:
            raise RuntimeError("previews need the earning rules")
        self._program.forget()
        found = self._ledger.get_balance(member_id, consistent=True) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if found is None:
            raise NotFound(f"member {member_id!r} not found")
        now = self._clock()
        when = (at or now).astimezone(UTC)
        rules = self._rules.all()
        base = self._rules.earning(order, when, timezone, rules=rules)
        # The earn's own decisions (tier, rules for the member, milestones, caps), on the
        # balance as it is now, without the arithmetic or the commit.
        movement = Movement(
            request=MovementRequest(
                member_id=member_id,
                movement=MovementType.EARN,
                idempotency_key="preview",
                order=order,
                occurred_at=when,
                timezone=timezone,
            ),
            now=now,
            settled=Settlement(entries=[], balance=found, lots=(), changes=LotChanges()),
            amount=format(order.total, "f"),
            points=base.points,
            breakdown=base.breakdown,
            rules=rules,
            grant=active_grant(found.plan, now),  # a paid plan past its end grants nothing
        )
        for make in self._steps:
            make().decide(movement)
        return EarnPreview(movement.points, movement.breakdown, movement.tier.name if movement.tier else None)

    def settle_due(self, member_id: str, as_of: datetime) -> list[LedgerEntry]:
        """Record every maturity and expiry of the member's lots due at ``as_of``; return the
        entries this call committed, and only those.

        Idempotent and safe to run concurrently: each lot matures under ``mature:<lot id>``
        and expires under ``expire:<lot id>``, written only if absent, with the balance
        version checked.

        A commit that failed transiently may still have landed (a timeout after DynamoDB
        wrote it): its retry then finds those lots settled and records nothing for them.
        Such entries are looked up by key at the end; a stored entry with the transaction id
        this call minted is this call's commit (another run's or a later attempt's has its own).
        """
        entries: list[LedgerEntry] = []
        unanswered: list[LedgerEntry] = []
        while True:
            chunk, complete = self._with_retries(lambda: self._settle_attempt(member_id, as_of, unanswered))
            entries += chunk
            if complete:
                break
        for attempted in unanswered:
            stored = self._ledger.get_entry(attempted.idempotency_key)
            if stored is not None and stored.transaction_id == attempted.transaction_id:
                entries.append(stored)
        return sorted(entries, key=lambda entry: entry.sequence)

    def view(self, member_id: str) -> BalanceView:
        """The balance as the member may use it now (eventually consistent read); 410 when erased."""
        found = self.balance(member_id)
        if found.erased_at is not None:
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})
        now = self._clock()
        lots = self._ledger.get_lots(member_id, consistent=False) if found.needs_lots(now) else None
        return BalanceView.at(found, lots, now)

    def counter(self, name: str) -> int:
        """A limit counter's value (strongly read)."""
        return self._ledger.get_counter(name)

    def replay(self, idempotency_key: str) -> LedgerEntry | None:
        """The entry an idempotency key already applied, if any."""
        return self._ledger.get_entry(idempotency_key) if idempotency_key else None

    def balance_and_lots(self, member_id: str) -> tuple[Balance, tuple[Lot, ...]]:
        """The stored balance and its lots (eventually consistent), for the jobs."""
        found = self.balance(member_id)
        lots = self._ledger.get_lots(member_id, consistent=False) if found.lot_count else []
        return found, tuple(lots)

    def balance(self, member_id: str) -> Balance:
        """The stored balance (eventually consistent read); 404 for unknown or malformed ids."""
        found = (
            self._ledger.get_balance(member_id, consistent=False) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        )
        if found is None:
            raise NotFound(f"member {member_id!r} not found")
        return found

    def transactions(self, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        if not MEMBER_ID_PATTERN.fullmatch(member_id):
            raise NotFound(f"member {member_id!r} not found")
        page = self._ledger.list_entries(member_id, limit=limit, cursor=cursor)
        if not page.items and self._ledger.get_balance(member_id, consistent=True) is None:
            raise NotFound(f"member {member_id!r} not found")  # rather than an empty page
        return page

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        return self._retry.run(attempt, self._sleep, racing="the member's balance is changing too fast")

    def _delta(
        self, request: MovementRequest, rules: list[EarningRule] | None = None
    ) -> tuple[int, str | None, tuple[Share, ...]]:
        """The signed change of the balance, the normalised amount it came from (if any), and
        for an order the breakdown of its points by rule (before the member's tier, segments,
        milestones and caps, which the attempt adds)."""
        amount, breakdown = None, request.breakdown
        if request.order is not None:
            if self._rules is None:
                raise RuntimeError("order earns need the earning rules")
            order = request.order
            at = request.occurred_at or self._clock()
            earning = self._rules.earning(order, at, request.timezone, rules=rules)
            # An order that earns nothing at the rate and rules may still reach a milestone: it is
            # refused only once the member's own shares are known (see _attempt).
            points, amount, breakdown = earning.points, format(order.total, "f"), earning.breakdown
        elif request.amount is not None and request.movement is MovementType.REVERSE:
            # A refund: what it takes back depends on what the reference earned (see _take_back).
            amount, points = format(parse_amount(request.amount, request.currency or ""), "f"), 0
        elif request.amount is not None:
            value, points = self._program.points_for_amount(request.amount, request.currency or "")
            amount = format(value, "f")
        else:
            points = request.points or 0
        if abs(points) > MAX_POINTS_PER_MOVEMENT:
            raise MovementTooLarge(
                f"a single movement may not exceed {MAX_POINTS_PER_MOVEMENT} points",
                details={"points": points, "maximum": MAX_POINTS_PER_MOVEMENT},
            )
        return (-points if request.movement is MovementType.REDEEM else points), amount, breakdown

    def _read(self, member_id: str, *, consistent: bool = True) -> tuple[Balance | None, tuple[Lot, ...]]:
        """The balance and its lots; an eventual read that finds no balance (a member created
        a moment ago) reads again strongly. Lots are read strongly, as the balance counts them."""
        previous = self._ledger.get_balance(member_id, consistent=consistent)
        if previous is None and not consistent:
            previous = self._ledger.get_balance(member_id, consistent=True)
        lots = self._ledger.get_lots(member_id, consistent=True) if previous and previous.lot_count else ()
        return previous, tuple(lots)

    def _credit_lot(self, request: MovementRequest, lot_id: str, points: int, now: datetime) -> Lot | None:
        return credit_lot(self._program.get(), request, lot_id, points, now)

    def _attempt(
        self,
        request: MovementRequest,
        delta: int,
        amount: str | None,
        breakdown: tuple[Share, ...] = (),
        rules: list[EarningRule] | None = None,
        *,
        consistent: bool = True,
    ) -> MovementResult:
        """One attempt, through the steps of chalicelib.domain.movement."""
        now = self._clock()
        eventual = not consistent
        while True:  # read
            previous, lots = self._read(request.member_id, consistent=consistent)
            consistent = True  # after a settlement's commit, read what it wrote
            if previous is None:
                return self._replay_or_raise(request, NotFound(f"member {request.member_id!r} not found"))
            settled = settle(previous, lots, now, now, max_lots=SETTLE_LOTS_WITH_MOVEMENT)
            if settled.complete:
                break
            self._commit_settlement(previous, settled)  # too much due to record with the movement
        movement = Movement(
            request=request,
            now=now,
            settled=settled,
            amount=amount,
            points=delta,
            breakdown=breakdown,
            rules=rules,
            grant=active_grant(settled.balance.plan, now),  # a plan past its end grants nothing
            tiers_possible=self._program.get().may_have_tiers,
        )
        steps = [make() for make in self._steps]
        try:
            for step in steps:
                step.decide(movement)
            if request.order is not None and sum(s.points for s in movement.breakdown if s.source != "cap") <= 0:
                raise AmountTooSmall(
                    f"order {request.order.order_id!r} earns no points under the program in force",
                    details={"amount": amount, "points": 0},
                )
            self._apply(movement, new_transaction_id(now))
        except (BusinessRuleViolation, MemberErased) as refusal:  # an erased member's earlier movement replays
            if eventual:  # a refusal is decided on a strong read only (a stale one may refuse wrongly)
                return self._attempt(request, delta, amount, breakdown, rules, consistent=True)
            return self._replay_or_raise(request, refusal)
        for step in steps:
            step.complete(movement)
        entry = self._entry(movement)
        assert movement.after is not None  # apply set it
        try:
            self._ledger.commit(
                [*settled.entries, entry],
                previous,
                movement.after,
                movement.changes or LotChanges(),
                writes=(*request.counters, *movement.counters, *request.coupons, *movement.writes),
            )
        except IdempotencyKeyTaken:
            return self._replay_or_raise(request, None)
        except WriteRefused as refused:
            ending = refused.refusal()
            if ending is None:  # what the write was decided on moved since it was read: decide again
                raise BalanceChanged(request.member_id) from None
            return self._replay_or_raise(request, ending)
        return MovementResult(entry=entry, replayed=False, writes=tuple(movement.writes))

    def _apply(self, movement: Movement, transaction_id: str) -> None:
        """The balance arithmetic over the lots: a reversal takes back (pending first), a debit
        consumes lots (FIFO by expiry), a credit forms a lot (or pays back a claw-back's debt)."""
        request, settled, now = movement.request, movement.settled, movement.now
        delta = movement.points
        movement.transaction_id = transaction_id
        if request.movement is MovementType.REVERSE:
            requested, own, after, from_pending, back = self._take_back(request, delta, movement.amount, settled, now)
            movement.requested, movement.pending_change = requested, -from_pending
            movement.points = after.available + after.pending - settled.balance.available - settled.balance.pending
            movement.removals = back.removals
            movement.counters = tuple(CounterChange(name, -points) for name, points in sorted(back.counters.items()))
        elif delta < 0:
            book = LotBook(settled.balance.available, settled.lots)
            own = book.consume(-delta, now)
            self._check_lot_span(book, own, -delta, now)
            after = settled.balance.apply(request.movement, delta, now)
        else:
            own = LotChanges()
            lot = self._credit_lot(request, transaction_id, delta, now) if delta > 0 else None
            debt = max(0, -settled.balance.available)
            if lot is not None and not lot.pending and debt:
                # Points paying back a claw-back's debt never form a lot (nothing left to expire).
                keep = max(0, delta - debt)
                lot = replace(lot, remaining=keep, original=keep) if keep else None
            if lot is not None:
                own = LotChanges(created=(lot,))
            if lot is not None and lot.pending:
                after = settled.balance.credit_pending(delta, now)
            else:
                after = settled.balance.apply(request.movement, delta, now)
            movement.lot = lot
        movement.changes = merge(settled.changes, own)
        if request.order is not None:
            after = replace(after, order_count=after.order_count + 1)
        movement.after = self._with_activity(request.movement, after, now).with_lots(
            LotBook(after.available, settled.lots).after(own)
        )

    def _entry(self, movement: Movement) -> LedgerEntry:
        request, lot, after, now = movement.request, movement.lot, movement.after, movement.now
        assert after is not None and movement.transaction_id is not None
        amount = movement.amount
        pending_change = movement.pending_change
        return LedgerEntry(
            transaction_id=movement.transaction_id,
            member_id=request.member_id,
            movement=request.movement,
            points=movement.points,
            pending_change=pending_change
            if pending_change is not None
            else (movement.points if lot is not None and lot.pending else 0),
            requested=movement.requested,
            sequence=after.version,
            idempotency_key=request.idempotency_key,
            request_fingerprint=request.fingerprint(),
            occurred_at=request.occurred_at or now,
            created_at=now,
            balance_after=movement.shown or after,
            amount=amount,
            currency=request.currency if amount is not None else None,
            reference=request.reference or (request.order.order_id if request.order else None),
            description=request.description,
            reason=request.reason,
            metadata=dict(request.metadata),
            actor_key_id=request.actor_key_id,
            expires_at=lot.expires_at if lot else None,
            matures_at=lot.matures_at if lot else None,
            breakdown=movement.breakdown,
            cap_counters=tuple((change.name, change.by) for change in movement.counters),
            order=request.order,
        )

    @staticmethod
    def _check_lot_span(book: LotBook, changes: LotChanges, points: int, now: datetime) -> None:
        """One transaction holds at most 100 items: a debit may change MAX_LOTS_PER_MOVEMENT lots."""
        if changes.count <= MAX_LOTS_PER_MOVEMENT:
            return
        first_lots = book.consume(book.spendable(now), now).deleted[:MAX_LOTS_PER_MOVEMENT]
        at_once = sum(lot.remaining for lot in first_lots)
        raise MovementTooLarge(
            f"{points} points span {changes.count} lots of points earned at different times; one movement may "
            f"take from at most {MAX_LOTS_PER_MOVEMENT}: take at most {at_once} points now, then the rest",
            details={"points": points, "lots": changes.count, "max_lots": MAX_LOTS_PER_MOVEMENT, "max_points": at_once},
        )

    def _with_activity(self, movement: MovementType, after: Balance, now: datetime) -> Balance:
        return with_activity(self._program.get(), movement, after, now)

    def _take_back(
        self, request: MovementRequest, requested: int, amount: str | None, settled: Settlement, now: datetime
    ) -> tuple[int, LotChanges, Balance, int, GiveBack]:
        """A reversal: what was earned for the reference bounds it; a refund by ``amount`` asks
        back the refunded share of the reference's points (chalicelib.domain.reversals). The
        program decides whether a shortfall pushes the balance below zero (claw-back) or stops
        at zero. What is taken back also comes out of the tier qualification and the cap
        counters of the earns it reverses. Returns the points asked back first."""
        history = self._ledger.entries_for_reference(request.member_id, request.reference or "")
        earned = sum(e.points for e in history if e.movement is MovementType.EARN)
        reversed_before = -sum(e.points for e in history if e.movement is MovementType.REVERSE)
        if amount is not None:
            requested = self._refund_points(request, history, Decimal(amount), earned - reversed_before)
        if requested > earned - reversed_before:
            raise ReversalExceedsEarned(
                f"{requested} points cannot be reversed for {request.reference!r}: "
                f"{earned} were earned and {reversed_before} already reversed",
                details={
                    "reference": request.reference,
                    "earned": earned,
                    "reversed": reversed_before,
                    "requested": requested,
                },
            )
        own_lots = {e.transaction_id for e in history if e.movement is MovementType.EARN}
        book = LotBook(settled.balance.available, settled.lots)
        changes, from_pending, from_available = book.take_back(own_lots, requested, now)
        shortfall = requested - from_pending - from_available
        if shortfall and self._program.get().reversal_clawback:
            from_available += shortfall  # the balance goes below zero; later earns pay it back
        earns = sorted((e for e in history if e.movement is MovementType.EARN), key=lambda e: e.sequence)
        back = give_back(
            [_earn_part(e) for e in earns], reversed_before, reversed_before + from_pending + from_available
        )
        return requested, changes, settled.balance.reverse(from_pending, from_available, now), from_pending, back

    @staticmethod
    def _refund_points(request: MovementRequest, history: list[LedgerEntry], refund: Decimal, left: int) -> int:
        """What a refund of ``refund`` asks back of the reference's points (``left``: what is
        still to reverse): its share of what was paid for them, counted with earlier refunds."""
        earns = [e for e in history if e.movement is MovementType.EARN]
        reversals = [e for e in history if e.movement is MovementType.REVERSE]
        paid = sum((Decimal(e.amount) for e in earns if e.amount is not None), Decimal(0))
        if paid <= 0:
            raise ReversalNeedsPoints(
                f"nothing was paid for {request.reference!r} as far as the ledger knows (its earns were of "
                "points): reverse it by points",
                details={"reference": request.reference, "earned": sum(e.points for e in earns)},
            )
        if left <= 0:
            raise ReversalExceedsEarned(
                f"every point earned for {request.reference!r} is already reversed",
                details={"reference": request.reference, "earned": sum(e.points for e in earns), "left": 0},
            )
        return refund_points(
            earned=sum(e.points for e in earns),
            paid=paid,
            refunded_before=sum((Decimal(e.amount) for e in reversals if e.amount is not None), Decimal(0)),
            refund=refund,
            asked_before=sum(e.requested if e.requested is not None else -e.points for e in reversals),
        )

    def _settle_attempt(
        self, member_id: str, as_of: datetime, unanswered: list[LedgerEntry]
    ) -> tuple[list[LedgerEntry], bool]:
        """One transaction's worth of what is due: its entries, and whether that was all. The
        entries of a commit that failed transiently (it may have landed) go to ``unanswered``."""
        previous, lots = self._read(member_id)
        if previous is None:
            return [], True
        settled = settle(previous, lots, self._clock(), as_of, max_lots=SETTLE_LOTS_PER_COMMIT)
        if settled.entries:
            try:
                self._commit_settlement(previous, settled)
            except TransientStoreError:
                unanswered.extend(settled.entries)
                raise
        return settled.entries, settled.complete

    def _commit_settlement(self, previous: Balance, settled: Settlement) -> None:
        after = settled.balance.with_lots(settled.lots)
        try:
            self._ledger.commit(settled.entries, previous, after, settled.changes, request_entry=False)
        except IdempotencyKeyTaken:
            raise BalanceChanged(previous.member_id) from None  # a concurrent run got there first: re-read

    def _replay_or_raise(self, request: MovementRequest, refusal: Exception | None) -> MovementResult:
        """A refused or colliding request may be the replay of one that already succeeded."""
        existing = self._ledger.get_entry(request.idempotency_key)
        if existing is None:
            if refusal is None:  # the key vanished between the collision and the read: impossible
                raise TransientStoreError("idempotency entry not readable yet")
            raise refusal
        if existing.request_fingerprint != request.fingerprint():
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": request.idempotency_key, "transaction_id": existing.transaction_id},
            )
        return MovementResult(entry=existing, replayed=True)


def _earn_part(entry: LedgerEntry) -> EarnPart:
    """What an earn counted for tiers (as ``after_movement`` counted it) and for the caps."""
    return EarnPart(
        points=entry.points,
        occurred_at=entry.occurred_at,
        spend=int(Decimal(entry.amount) * SPEND_SCALE) if entry.amount is not None else 0,
        orders=1 if entry.is_order_earn else 0,
        counters=entry.cap_counters,
    )
