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

import hashlib
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.dating import OccurredAtOutOfRange, check_occurred_at
from chalicelib.domain.errors import (
    AmountTooSmall,
    BalanceLimitExceeded,
    BusinessRuleViolation,
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidRequest,
    MovementTooLarge,
    NotFound,
    RetryLater,
    ReversalExceedsEarned,
    ReversalNeedsPoints,
    TransientStoreError,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges, merge
from chalicelib.domain.fingerprints import fingerprint
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_transaction_id
from chalicelib.domain.movement import Movement
from chalicelib.domain.plans import BONUS_KEY_PREFIX, active_grant
from chalicelib.domain.ports import (
    BalanceChanged,
    CounterChange,
    CouponWrite,
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
    from chalicelib.domain.plans import PlanGrant, PlanWrite
    from chalicelib.domain.ports import LedgerStore, Page
    from chalicelib.domain.program import Program, ProgramService
    from chalicelib.domain.rules import EarningRule, RuleService, Share

#: Largest number of points a single movement may carry.
MAX_POINTS_PER_MOVEMENT = 100_000_000
#: Largest balance a member may hold (far inside DynamoDB's 38 significant digits).
MAX_BALANCE = 10**12
#: Due lots settled per transaction (each lot is up to 3 items: a mature entry, an expire
#: entry, its own write; plus the balance: 97 of DynamoDB's 100 items per transaction).
SETTLE_LOTS_PER_COMMIT = 32
#: Due lots settled inside a movement's own transaction; with more due, the movement first
#: records them in their own transactions, so its own lot changes keep room (~50 items).
SETTLE_LOTS_WITH_MOVEMENT = 16
#: The shapes of the keys the ledger mints for its own entries: a lot's maturity and expiry
#: (``mature:<lot id>``, ``expire:<lot id>``), an inactivity lapse, a birthday bonus. A
#: client's Idempotency-Key may not take them: one that did would claim the ledger's own
#: entry (a lot that could then never be settled, a bonus never paid).
#: ``intake:`` is the order intake's (chalicelib.domain.commerce): one earn per order, one reversal per refund.
#: ``partner:`` is a coalition partner's namespace (chalicelib.domain.partners): ``partner:<id>:<its key>``.
#: ``referral:`` is a referral's rewards (chalicelib.domain.referrals): ``referral:<referee>:referrer|referee``.
#: ``plan-bonus:`` is a paid plan's join bonus (chalicelib.domain.plans): once per member and plan.
#: ``import:`` is a bulk import's opening balance (chalicelib.domain.imports): ``import:<external id>``.
MINTED_KEY_PREFIXES = (
    "expire:",
    "mature:",
    "lapse:",
    "birthday:",
    "intake:",
    "partner:",
    "referral:",
    BONUS_KEY_PREFIX,
    "import:",
)


def refuse_minted_key(idempotency_key: str) -> None:
    """InvalidRequest if a client's key has the shape of a key the ledger mints."""
    if idempotency_key.startswith(MINTED_KEY_PREFIXES):
        prefix = idempotency_key.split(":", 1)[0] + ":"
        raise InvalidRequest.for_fields(
            f"Idempotency-Key may not start with {prefix!r}: the ledger keeps that prefix for its own entries",
            ("Idempotency-Key", f"reserved prefix {prefix!r}", "reserved_prefix"),
        )


#: Lots one movement may change (a debit consumes lots FIFO; each changed lot is an item of
#: its transaction). A redemption spanning more is refused with the points it could take.
MAX_LOTS_PER_MOVEMENT = 40


class MovementType(StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    ADJUST = "adjust"
    #: Recorded for the unspent remainder of a lot past its expiry.
    EXPIRE = "expire"
    #: Recorded when pending points become available (0 net points: pending -> available).
    MATURE = "mature"
    #: Points taken back for a refunded order (its reference): pending first, then available.
    REVERSE = "reverse"


@dataclass(frozen=True)
class Balance:
    member_id: str
    available: int
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_adjusted: int
    #: How many ledger entries the balance includes; the entry that moves it to N has sequence N.
    version: int
    updated_at: datetime
    lifetime_expired: int = 0
    #: Lots with points left, and the earliest expiry among them (expired or not).
    lot_count: int = 0
    next_expiry_at: datetime | None = None
    next_expiry_points: int = 0
    #: Points earned but not spendable yet (in lots with a maturity), and the earliest maturity.
    pending: int = 0
    next_maturity_at: datetime | None = None
    lifetime_reversed: int = 0
    #: The member's last earn or redeem, and (under an inactivity policy) when every
    #: available point lapses unless the member is active again before then.
    last_activity_at: datetime | None = None
    inactive_at: datetime | None = None
    #: Orders earned on (milestones count them; each order earn moves it in its transaction).
    order_count: int = 0
    #: The member's tier (chalicelib.domain.tiers), since when, and when it is reviewed;
    #: ``tier_rev`` moves with every change of them (the review job writes them without an
    #: entry, so movements check it as well as ``version``).
    tier: str | None = None
    tier_since: datetime | None = None
    tier_expires_at: datetime | None = None
    tier_rev: int = 0
    #: Qualifying totals by local month, encoded (``tiers.encode_buckets``).
    tier_buckets: str | None = None
    #: Referrals (chalicelib.domain.referrals): the referrer, while the member's referral is
    #: pending; the order earn that qualifies it clears this in its transaction.
    referral_from: str | None = None
    #: The paid plan the member subscribes to (chalicelib.domain.plans); it moves ``tier_rev``.
    plan: PlanGrant | None = None

    @classmethod
    def opening(cls, member_id: str, now: datetime) -> Balance:
        return cls(member_id, 0, 0, 0, 0, 0, now)

    def with_lots(self, lots: tuple[Lot, ...]) -> Balance:
        following = LotBook.next_expiry(lots)
        return replace(
            self,
            lot_count=sum(1 for lot in lots if lot.remaining > 0),
            next_expiry_at=following.at,
            next_expiry_points=following.points,
            next_maturity_at=LotBook.next_maturity(lots),
        )

    def needs_lots(self, at: datetime) -> bool:
        """Whether the stored figures may include points that expired or matured by ``at``."""
        return any(
            moment is not None and moment <= at
            for moment in (self.next_expiry_at, self.next_maturity_at, self.lapse_due_at)
        )

    @property
    def lapse_due_at(self) -> datetime | None:
        """When the inactivity deadline would take points (None: no deadline, or nothing to take)."""
        return self.inactive_at if self.inactive_at is not None and self.available + self.pending > 0 else None

    def credit_pending(self, points: int, now: datetime) -> Balance:
        """Earned points that wait out a return window: counted, not spendable."""
        if self.available + self.pending + points > MAX_BALANCE:
            raise BalanceLimitExceeded(
                f"a balance may not exceed {MAX_BALANCE} points",
                details={"available": self.available, "points": points},
            )
        return replace(
            self,
            pending=self.pending + points,
            lifetime_earned=self.lifetime_earned + points,
            version=self.version + 1,
            updated_at=now,
        )

    def reverse(self, from_pending: int, from_available: int, now: datetime) -> Balance:
        """Take back points; ``available`` may go below zero when the program claws back."""
        return replace(
            self,
            pending=self.pending - from_pending,
            available=self.available - from_available,
            lifetime_reversed=self.lifetime_reversed + from_pending + from_available,
            version=self.version + 1,
            updated_at=now,
        )

    def mature(self, points: int, now: datetime) -> Balance:
        return replace(
            self,
            pending=self.pending - points,
            available=self.available + points,
            version=self.version + 1,
            updated_at=now,
        )

    def apply(self, movement: MovementType, delta: int, now: datetime) -> Balance:
        """The balance after a movement of ``delta`` points, or a refusal. Pure."""
        available = self.available + delta
        if available < 0 and delta < 0:  # a credit to a balance in claw-back debt pays it back
            raise InsufficientPoints(
                f"the member has {self.available} points available; {-delta} requested",
                details={"available": self.available, "requested": -delta},
            )
        if available > MAX_BALANCE:
            raise BalanceLimitExceeded(
                f"a balance may not exceed {MAX_BALANCE} points", details={"available": self.available, "points": delta}
            )
        return replace(
            self,
            available=available,
            lifetime_earned=self.lifetime_earned + (delta if movement is MovementType.EARN else 0),
            lifetime_redeemed=self.lifetime_redeemed + (-delta if movement is MovementType.REDEEM else 0),
            lifetime_adjusted=self.lifetime_adjusted + (delta if movement is MovementType.ADJUST else 0),
            lifetime_expired=self.lifetime_expired + (-delta if movement is MovementType.EXPIRE else 0),
            version=self.version + 1,
            updated_at=now,
        )


@dataclass(frozen=True)
class BalanceView:
    """What a member may do now: the stored balance minus points whose expiry has passed."""

    balance: Balance
    #: Points of the stored balance past their expiry, not yet recorded by the job.
    unavailable: int = 0
    expiring_at: datetime | None = None
    expiring_points: int = 0

    #: Points stored as pending whose maturity has passed (the job has not run).
    matured: int = 0

    @property
    def available(self) -> int:
        return self.balance.available + self.matured - self.unavailable

    @property
    def pending(self) -> int:
        return self.balance.pending - self.matured

    @classmethod
    def at(cls, balance: Balance, lots: Sequence[Lot] | None, moment: datetime) -> BalanceView:
        """The view at ``moment``; ``lots`` are needed only when ``balance.needs_lots(moment)``."""
        if not balance.needs_lots(moment):
            view = cls(balance, 0, balance.next_expiry_at, balance.next_expiry_points)
        else:
            # Exactly what recording everything due would leave: the jobs' own code path, so a
            # maturity paying back a claw-back's debt, then expiring, reads as it will be recorded.
            settled = settle(balance, lots or (), moment, moment, max_lots=sys.maxsize)
            following = LotBook.next_expiry(settled.lots, after=moment)
            matured = balance.pending - settled.balance.pending
            view = cls(
                balance,
                unavailable=balance.available + matured - settled.balance.available,
                expiring_at=following.at,
                expiring_points=following.points,
                matured=matured,
            )
        lapse = balance.inactive_at
        if lapse is None:
            return view
        if lapse <= moment:  # inactive: nothing is spendable (settle lapsed it all)
            return replace(view, expiring_at=None, expiring_points=0)
        if view.available > 0 and (view.expiring_at is None or lapse <= view.expiring_at):
            return replace(view, expiring_at=lapse, expiring_points=view.available)
        return view


@dataclass(frozen=True)
class MovementRequest:
    member_id: str
    movement: MovementType
    idempotency_key: str
    #: Positive for earn and redeem; signed for adjust. None when ``amount`` is given.
    points: int | None = None
    amount: str | None = None
    currency: str | None = None
    reference: str | None = None
    description: str | None = None
    reason: str | None = None
    occurred_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    actor_key_id: str | None = None
    #: The tenant's time zone: calendar expiry policies end periods in it.
    timezone: str = "UTC"
    #: Earn only: days the points stay pending (a return window); None: the program's default.
    pending_days: int | None = None
    #: Earn only: an order whose points the program's rate and earning rules decide.
    order: Order | None = None
    #: Counters changed in the movement's transaction (limits per member and period). They
    #: follow from the request's content, so they are not part of its fingerprint.
    counters: tuple[CounterChange, ...] = ()
    #: Coupons written in the movement's transaction under their own condition (a reward's
    #: coupon issued, a cancelled coupon's refund). Not part of the fingerprint either.
    coupons: tuple[CouponWrite, ...] = ()
    #: A breakdown decided by the caller (an activity's rules); order earns compute their own.
    breakdown: tuple[Share, ...] = ()
    #: The platform minted ``idempotency_key`` (a birthday bonus): it may have a reserved shape.
    minted_key: bool = False
    #: A plan change written in the movement's transaction (a join bonus); not in the fingerprint.
    plan: PlanWrite | None = None
    #: Earn only: the earning caps in force apply (chalicelib.domain.caps). Partner earns and
    #: birthday bonuses are not capped.
    capped: bool = True

    def __post_init__(self) -> None:
        # One instant, one spelling: the entry stores and every response shows it in UTC.
        if self.occurred_at is not None:
            object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))

    def fingerprint(self) -> str:
        """What makes two requests 'the same request' for an idempotency key."""
        canonical = {
            "member_id": self.member_id,
            "movement": str(self.movement),
            "points": self.points,
            "amount": self.amount,
            "reference": self.reference,
            "description": self.description,
            "reason": self.reason,
            # Full precision: two instants a microsecond apart are two different requests.
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "metadata": self.metadata,
            "pending_days": self.pending_days,
            **({"order": _canonical_order(self.order)} if self.order is not None else {}),
        }
        return fingerprint(canonical)


def _canonical_order(order: Order) -> dict[str, Any]:
    return {"id": order.order_id, **order.canonical()}


@dataclass(frozen=True)
class LedgerEntry:
    transaction_id: str
    member_id: str
    movement: MovementType
    #: Signed change of the member's points (available + pending).
    points: int
    sequence: int
    idempotency_key: str
    request_fingerprint: str
    occurred_at: datetime
    created_at: datetime
    balance_after: Balance
    amount: str | None = None
    currency: str | None = None
    reference: str | None = None
    description: str | None = None
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    actor_key_id: str | None = None
    #: For a credit that made a lot: when its points expire.
    expires_at: datetime | None = None
    #: Signed change of the pending points (the available change is ``points - pending_change``).
    pending_change: int = 0
    #: For pending points: when they become available.
    matures_at: datetime | None = None
    #: Reversals: the points asked for (``-points`` is what was taken back).
    requested: int | None = None
    #: Order earns, activities and capped earns: which rule (or the base rate) gave what, and
    #: what a cap cut (negative ``cap`` shares); the shares sum to ``points``.
    breakdown: tuple[Share, ...] = ()
    #: Earning-cap counters this entry moved (an earn: up; a reversal: given back, down).
    cap_counters: tuple[tuple[str, int], ...] = ()

    @property
    def uncapped_points(self) -> int:
        """What the movement asked before earning caps cut it (its points when nothing was cut)."""
        if not any(share.source == "cap" for share in self.breakdown):
            return self.points
        return sum(share.points for share in self.breakdown if share.source != "cap")

    @property
    def is_order_earn(self) -> bool:
        """An earn for an order: the rules' breakdown always opens with the base rate."""
        return self.movement is MovementType.EARN and bool(self.breakdown) and self.breakdown[0].source == "base"

    @property
    def view_after(self) -> BalanceView:
        """The balance right after this entry. Every commit first records the expiry of the
        lots already past due, so nothing in ``balance_after`` had expired at that moment."""
        after = self.balance_after
        return BalanceView.at(after, None, after.updated_at)


@dataclass(frozen=True)
class Settlement:
    """What became due (maturities, expiries) before a movement, or for the jobs."""

    entries: list[LedgerEntry]
    balance: Balance
    lots: tuple[Lot, ...]
    changes: LotChanges
    #: False when more was due than one transaction may record (see ``_settle``).
    complete: bool = True


@dataclass(frozen=True)
class EarnPreview:
    """What an order would earn a member: the same figures its earn would record."""

    points: int
    breakdown: tuple[Share, ...]
    #: The member's tier the earn would apply (None: none).
    tier: str | None = None


@dataclass(frozen=True)
class MovementResult:
    entry: LedgerEntry
    #: True when the idempotency key had already been applied and this is its first result.
    replayed: bool
    #: What the movement's steps wrote in its transaction besides the entry, the balance and
    #: the lots (first result only; chalicelib.domain.movement).
    writes: tuple[object, ...] = ()


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


def settle(balance: Balance, lots: Sequence[Lot], now: datetime, as_of: datetime, *, max_lots: int) -> Settlement:
    """Maturities, then expiries, due at ``as_of``: their entries, the balance and lots after.

    At most ``max_lots`` lots are settled (each costs up to three transaction items), so a
    member with many due lots is settled over several transactions; ``complete`` says
    whether anything due was left over."""
    entries: list[LedgerEntry] = []
    current = {lot.lot_id: lot for lot in lots}
    updated: dict[str, Lot] = {}
    deleted: list[Lot] = []

    def record(movement: MovementType, lot: Lot, points: int, pending_change: int, occurred: datetime) -> None:
        key = f"{movement}:{lot.lot_id}"
        entries.append(
            LedgerEntry(
                transaction_id=new_transaction_id(now),
                member_id=balance.member_id,
                movement=movement,
                points=points,
                pending_change=pending_change,
                sequence=balance.version,
                idempotency_key=key,
                request_fingerprint=hashlib.sha256(key.encode()).hexdigest(),
                occurred_at=occurred,
                created_at=now,
                balance_after=balance,
                description=f"{lot.remaining} of {lot.original} points earned {isoformat(lot.earned_at)}",
                metadata={"lot_id": lot.lot_id},
            )
        )

    maturing = sorted((lot for lot in lots if lot.matured(as_of)), key=lambda lot: (lot.matures_at, lot.lot_id))
    for lot in maturing[:max_lots]:
        debt = max(0, -balance.available)  # a claw-back's debt is paid first
        balance = balance.mature(lot.remaining, now)
        record(MovementType.MATURE, lot, 0, -lot.remaining, lot.matures_at or now)
        kept = lot.remaining - min(lot.remaining, debt)
        if kept:
            current[lot.lot_id] = updated[lot.lot_id] = replace(lot, matures_at=None, remaining=kept)
        else:
            del current[lot.lot_id]
            deleted.append(lot)
    room = max_lots - min(len(maturing), max_lots)
    due = sorted((lot for lot in current.values() if lot.expired(as_of)), key=lambda lot: (lot.expires_at, lot.lot_id))
    if len(maturing) > max_lots:
        due = [lot for lot in due if lot.lot_id in updated]  # expire nothing that is still stored as pending
    for lot in due[:room]:
        balance = balance.apply(MovementType.EXPIRE, -lot.remaining, now)
        record(MovementType.EXPIRE, lot, -lot.remaining, 0, lot.expires_at or now)
        del current[lot.lot_id]
        updated.pop(lot.lot_id, None)
        deleted.append(lot)
    complete = len(maturing) <= max_lots and len(due) <= room
    lapse = balance.inactive_at
    if complete and lapse is not None and lapse <= as_of and balance.available > 0:
        # Inactive: every available point lapses, lot by lot (each lot expires once, under
        # its own key), then the never-expiring rest under a key of this balance version.
        room -= min(len(due), room)
        rest = sorted((lot for lot in current.values() if not lot.pending), key=lambda lot: lot.lot_id)
        for lot in rest[:room]:
            balance = balance.apply(MovementType.EXPIRE, -lot.remaining, now)
            record(MovementType.EXPIRE, lot, -lot.remaining, 0, lapse)
            del current[lot.lot_id]
            updated.pop(lot.lot_id, None)
            deleted.append(lot)
        complete = len(rest) <= room
        if complete and balance.available > 0:
            key = f"lapse:{balance.member_id}:{balance.version}"
            points = balance.available
            balance = balance.apply(MovementType.EXPIRE, -points, now)
            entries.append(
                LedgerEntry(
                    transaction_id=new_transaction_id(now),
                    member_id=balance.member_id,
                    movement=MovementType.EXPIRE,
                    points=-points,
                    sequence=balance.version,
                    idempotency_key=key,
                    request_fingerprint=hashlib.sha256(key.encode()).hexdigest(),
                    occurred_at=lapse,
                    created_at=now,
                    balance_after=balance,
                    description=f"{points} points lapsed after no earn or redeem since "
                    f"{isoformat(balance.last_activity_at) if balance.last_activity_at else 'enrolment'}",
                    metadata={"reason": "inactivity"},
                )
            )
    changes = LotChanges(updated=tuple(updated.values()), deleted=tuple(deleted))
    return Settlement(entries, balance, tuple(current.values()), changes, complete)


def credit_lot(program: Program, request: MovementRequest, lot_id: str, points: int, now: datetime) -> Lot | None:
    """The lot a credit creates, if it is pending or will expire; None for plain points."""
    days = request.pending_days if request.pending_days is not None else program.pending_days
    matures_at = None
    if request.movement is MovementType.EARN and days:
        matures_at = (now.astimezone(ZoneInfo(request.timezone)) + timedelta(days=days)).astimezone(UTC)
    expires_at = program.expiry.expires_at(matures_at or now, request.timezone)
    if matures_at is None and expires_at is None:
        return None
    return Lot(lot_id, request.member_id, points, points, now, expires_at, matures_at)


def with_activity(program: Program, movement: MovementType, after: Balance, now: datetime) -> Balance:
    """An earn or redeem is activity: under an inactivity policy it moves the deadline.
    Other movements keep it, unless it has passed (points credited after a lapse get a
    full period). The policy in force at the movement sets the deadline."""
    active = movement in (MovementType.EARN, MovementType.REDEEM)
    last = now if active else after.last_activity_at
    policy = program.expiry
    deadline = policy.inactive_at(last or now)
    if deadline is not None and deadline <= now:
        deadline = policy.inactive_at(now)
    return replace(after, last_activity_at=last, inactive_at=deadline)


@dataclass(frozen=True)
class Opening:
    """A new member's balance with an opening credit, computed but not committed: the store
    writes it, its entry and its lot together with the member (one transaction)."""

    balance: Balance
    #: None for an opening balance of zero (no movement, no entry).
    entry: LedgerEntry | None
    lots: LotChanges


def opening_credit(
    program: Program,
    member_id: str,
    points: int,
    *,
    idempotency_key: str,
    now: datetime,
    reason: str,
    reference: str | None = None,
    metadata: dict[str, str] | None = None,
    actor_key_id: str | None = None,
    timezone: str = "UTC",
) -> Opening:
    """The opening balance of a member who does not exist yet: an ``adjust`` of ``points``
    (sequence 1) under a key the platform mints, exactly as ``PointsService.move`` would
    record it on an empty balance (a lot under an expiry policy, the inactivity deadline)."""
    opening = Balance.opening(member_id, now)
    if points == 0:
        return Opening(opening, None, LotChanges())
    if not 0 < points <= MAX_POINTS_PER_MOVEMENT:
        raise MovementTooLarge(
            f"a single movement may not exceed {MAX_POINTS_PER_MOVEMENT} points",
            details={"points": points, "maximum": MAX_POINTS_PER_MOVEMENT},
        )
    request = MovementRequest(
        member_id=member_id,
        movement=MovementType.ADJUST,
        idempotency_key=idempotency_key,
        points=points,
        reference=reference,
        reason=reason,
        metadata=dict(metadata or {}),
        actor_key_id=actor_key_id,
        timezone=timezone,
        minted_key=True,
    )
    transaction_id = new_transaction_id(now)
    lot = credit_lot(program, request, transaction_id, points, now)
    own = LotChanges(created=(lot,)) if lot is not None else LotChanges()
    after = opening.apply(MovementType.ADJUST, points, now)
    after = with_activity(program, MovementType.ADJUST, after, now).with_lots(LotBook(after.available, ()).after(own))
    entry = LedgerEntry(
        transaction_id=transaction_id,
        member_id=member_id,
        movement=MovementType.ADJUST,
        points=points,
        sequence=after.version,
        idempotency_key=idempotency_key,
        request_fingerprint=request.fingerprint(),
        occurred_at=now,
        created_at=now,
        balance_after=after,
        reference=reference,
        reason=reason,
        metadata=dict(request.metadata),
        actor_key_id=actor_key_id,
        expires_at=lot.expires_at if lot else None,
    )
    return Opening(after, entry, own)


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
            if request.order is not None or request.capped:
                rules = self._rules.all()  # once per movement: the order's rules, milestones, caps
        try:
            delta, amount, breakdown = self._delta(request, rules)
        except BusinessRuleViolation as refusal:
            # The program may have changed since this key was first applied: replay wins.
            return self._replay_or_raise(request, refusal)
        result = self._with_retries(lambda: self._attempt(request, delta, amount, breakdown, rules))
        for make in self._steps:
            make().after(request, result)
        return result

    def preview(self, member_id: str, order: Order, at: datetime | None, timezone: str) -> EarnPreview:
        """What ``order`` would earn this member at ``at`` (now), computed as its earn would
        (the member's tier and segments, the milestone of its next order, the caps and what
        they have left); writes nothing."""
        if self._rules is None:
            raise RuntimeError("previews need the earning rules")
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
        """The balance as the member may use it now (eventually consistent read)."""
        found = self.balance(member_id)
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
        races = transient = 0
        while True:
            try:
                return attempt()
            except BalanceChanged:
                races += 1
                if races >= self._retry.max_balance_races:
                    raise RetryLater("the member's balance is changing too fast") from None
                self._sleep(self._retry.backoff(min(races, 3)))
            except TransientStoreError:
                transient += 1
                if transient >= self._retry.max_transient_failures:
                    raise RetryLater("the ledger is busy") from None
                self._sleep(self._retry.backoff(transient))

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

    def _read(self, member_id: str) -> tuple[Balance | None, tuple[Lot, ...]]:
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
    ) -> MovementResult:
        """One attempt, through the steps of chalicelib.domain.movement."""
        now = self._clock()
        while True:  # read
            previous, lots = self._read(request.member_id)
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
        except BusinessRuleViolation as refusal:
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


def describe(entry: LedgerEntry) -> dict[str, Any]:
    """A log-friendly summary (no personal data)."""
    return {
        "transaction_id": entry.transaction_id,
        "member_id": entry.member_id,
        "movement": str(entry.movement),
        "points": entry.points,
        "sequence": entry.sequence,
    }
