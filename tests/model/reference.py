"""A small in-memory reference model of a tenant's ledger, written from the documented rules
(README: "Point movements and idempotency", "Why a point is never lost or doubled", "Points
lifecycle"), not from the implementation: for any request it says what must
happen, success or which refusal, and what the member's figures, lots and ledger become.

It is deliberately naive (plain dicts, exact fractions, deep copies, no storage, no
retries) so that a disagreement with the real services points at the services.

The points lifecycle, as modelled here:

* A credit made while the program has an expiry policy, or an earn that waits out a return
  window (``pending_days``, else the program's default), forms a *lot*: its points, when it
  was earned, when it matures (pending lots) and when it expires (counted from the maturity
  for pending points). Other credits are plain points that never expire.
* Debits take from the lots that expire first (earliest expiry, then earliest earned, then
  lot id), then from the plain points. Pending points are never spendable.
* What became due is recorded ("settled") before any movement that commits, and by the jobs
  for the members they find: first every matured lot (``mature:<lot>``: 0 points, pending ->
  available, paying back a claw-back's debt out of the lot first), then every expired lot
  (``expire:<lot>``: exactly its unspent remainder). Until then the points are already
  what they will be: an expired point is never spendable, a matured one is, job or not
  (:meth:`MemberState.effective`).
* A movement dated (``occurred_at``) more than 5 minutes after the moment it is recorded, or
  more than 31 days before it, is refused (``invalid_request``) before anything else, unless
  its key was applied: then it answers for itself, as any replay (:func:`dated_acceptably`).
* A reversal (``reference``) is bounded by what was earned for that reference minus what
  was already taken back for it; it takes that reference's pending points first, then
  available points (that reference's lots first, then by expiry, then plain points); what is
  still missing pushes the balance below zero only when the program claws back.

What earns (tests/model/earning.py, from README "Earning rules, activities and milestones",
"What earns" and "Earning caps"):

* An order earns the program's rate on what was paid and the order rules in force at its
  ``occurred_at`` (or now), and the milestones of its order number: a fresh order earn counts
  one more order for the member, whatever it credits. One to which none of these gives a
  point (before the caps) is refused (``amount_too_small``) and counts no order, as its
  preview for the member says.
* An activity earns under the activity rules in force for its type, each while its allowance
  for the period lasts (``activity_not_rewarded``, ``limit_reached``); every use is counted,
  capped or not; a retry with the same key is a replay whatever the allowances say now.
* Every earn (points, an amount, an order, an activity) is then capped: campaign caps on
  their shares, then the overall caps, the counters moving by what was credited. A reversal
  gives back to each counter its share of what the earns it takes back had moved.

Counters are the tenant's (``TenantModel.counters``), by the names the README gives them.

Extending it for a new operation: add its refusals and effects to :meth:`TenantModel.expect`
(working on a copy of the member), the lifetime total it feeds to :data:`LIFETIME_FIELD`,
and the conservation law in :meth:`TenantModel.totals`.
"""

from __future__ import annotations

import calendar
import copy
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.entries import LedgerEntry
from chalicelib.domain.movement_requests import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT, MovementRequest, MovementType
from tests.model.earning import (
    Capped,
    CounterMove,
    EarnCounted,
    ModelOrder,
    ModelRule,
    Part,
    Terms,
    activity_earning,
    apply_caps,
    given_back,
    milestone_shares,
    order_shares,
    share_of_base,
)
from tests.model.referrals import ModelReferral, ModelReferralProgram, referral_in_force
from tests.model.tiers import (
    NONE_HELD,
    Buckets,
    Grant,
    Held,
    ModelTierProgram,
    counted,
    effective,
    qualify,
    removals,
    review,
    taken_back,
    with_tiers,
)

#: ISO 4217 minor units of the currencies the machine uses (README: "at most its minor-unit digits").
MINOR_UNITS = {"EUR": 2, "JPY": 0, "KWD": 3}

#: Which lifetime total a movement of each type feeds, and with which sign (of the entry's points).
LIFETIME_FIELD: dict[MovementType, tuple[str, int]] = {
    MovementType.EARN: ("earned", 1),
    MovementType.REDEEM: ("redeemed", -1),
    MovementType.ADJUST: ("adjusted", 1),
    MovementType.EXPIRE: ("expired", -1),
    MovementType.REVERSE: ("reversed", -1),
}
LIFETIMES = ("earned", "redeemed", "adjusted", "expired", "reversed")

#: Error codes, as the API reports them (chalicelib.domain.errors classes' ``code``).
SUCCESS = "ok"
BUSY = "retry_later"

#: Settlement entries are keyed by what they settle, never by a client's key.
SETTLEMENT_PREFIXES = ("mature:", "expire:")
NEVER = datetime.max.replace(tzinfo=UTC)


#: The dating rule (README, "Dating: occurred_at"): a movement may say it happened at most
#: CLOCK_SKEW after the moment it is recorded and at most MAX_AGE before it, both ends
#: included, that moment taken to the millisecond.
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=31)


def dated_acceptably(occurred_at: datetime, now: datetime) -> bool:
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return now - MAX_AGE <= occurred_at <= now + CLOCK_SKEW


def body_of(request: MovementRequest) -> tuple[Any, ...]:
    """What makes two requests "the same request" for an idempotency key: the body the client
    sent and the member it names. Not the caller's API key, not the tenant's currency."""
    return (
        request.member_id,
        str(request.movement),
        request.points,
        request.amount,
        request.reference,
        request.description,
        request.reason,
        request.occurred_at,
        tuple(sorted(request.metadata.items())),
        request.pending_days,
        ModelOrder.of(request.order).body() if request.order is not None else None,
    )


def activity_body(
    member_id: str,
    activity: str,
    reference: str | None,
    description: str | None,
    occurred_at: datetime | None,
    metadata: dict[str, str],
) -> tuple[Any, ...]:
    """What makes two activities "the same request": what the client sent for it."""
    return ("activity", member_id, activity, reference, description, occurred_at, tuple(sorted(metadata.items())))


def is_settlement_key(key: str) -> bool:
    return key.startswith(SETTLEMENT_PREFIXES)


# --- time, in the tenant's time zone ------------------------------------------------------------


def _months_later(year: int, month: int, months: int) -> tuple[int, int]:
    index = month - 1 + months
    return year + index // 12, index % 12 + 1


def wall_clock_later(moment: datetime, zone: str, *, days: int = 0, months: int = 0) -> datetime:
    """``days`` or ``months`` later on the tenant's wall clock (a month after 31 January is the
    last day of February), as a UTC instant."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    naive = local.replace(tzinfo=None)
    fold = 0
    if months:
        year, month = _months_later(naive.year, naive.month, months)
        naive = naive.replace(year=year, month=month, day=min(naive.day, calendar.monthrange(year, month)[1]))
        fold = local.fold
    naive += timedelta(days=days)
    return naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)


@dataclass(frozen=True)
class ExpiryRule:
    """The program's expiry policy: ``none``; ``days`` or ``months`` after earning; or the end of
    the calendar ``period`` (year, quarter, month) ``count`` periods after the one of earning."""

    kind: str = "none"
    count: int = 0
    period: str | None = None

    def expires_at(self, earned_at: datetime, zone: str) -> datetime | None:
        if self.kind == "none":
            return None
        if self.kind == "days":
            return wall_clock_later(earned_at, zone, days=self.count)
        if self.kind == "months":
            return wall_clock_later(earned_at, zone, months=self.count)
        assert self.kind == "end_of_period" and self.period is not None
        size = {"year": 12, "quarter": 3, "month": 1}[self.period]
        local = earned_at.astimezone(ZoneInfo(zone))
        first_month = (local.month - 1) // size * size + 1
        year, month = _months_later(local.year, first_month, size * (self.count + 1))
        return datetime(year, month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    def __str__(self) -> str:
        return (
            self.kind if self.kind == "none" else f"{self.kind}:{self.count}{':' + self.period if self.period else ''}"
        )


# --- a member ------------------------------------------------------------------------------------


@dataclass
class ModelLot:
    lot_id: str
    remaining: int
    original: int
    earned_at: datetime
    expires_at: datetime | None
    #: Set while the lot is recorded as pending; None once its maturity is recorded (or never pending).
    matures_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.matures_at is not None

    def fifo(self) -> tuple[datetime, datetime, str]:
        return (self.expires_at or NEVER, self.earned_at, self.lot_id)


@dataclass
class ModelEntry:
    """One ledger entry as the model predicts it."""

    key: str
    movement: MovementType
    points: int
    pending_change: int
    after_available: int
    after_pending: int
    #: Known for entries of requests once applied; settlement entries' ids are the service's.
    transaction_id: str | None = None
    reference: str | None = None
    #: Settlement entries: the lot they settle and the moment it became due.
    lot_id: str | None = None
    occurred_at: datetime | None = None
    #: A reversal that left the balance below zero, under a program that claws back.
    clawback: bool = False
    #: Earns and refunds of an amount: the amount (what was paid; what was refunded).
    amount: Decimal | None = None
    #: Reversals: the points asked back.
    requested: int | None = None
    #: Earns: which rule (or the base rate) gave what and what the caps cut; sums to ``points``.
    breakdown: tuple[Part, ...] = ()
    #: The cap counters the entry moved (an earn up, a reversal down), as the entry records them.
    cap_counters: tuple[tuple[str, int], ...] = ()
    #: Earns: what they counted towards tiers (``occurred_at``, spend in thousandths, orders).
    counted_at: datetime | None = None
    spend: int = 0
    orders: int = 0

    def row(self) -> tuple[Any, ...]:
        return (
            self.key,
            str(self.movement),
            self.points,
            self.pending_change,
            self.after_available,
            self.after_pending,
            self.breakdown,
            self.cap_counters,
        )


@dataclass
class MemberState:
    member_id: str
    available: int = 0
    pending: int = 0
    earned: int = 0
    redeemed: int = 0
    adjusted: int = 0
    expired: int = 0
    reversed: int = 0
    #: Number of ledger entries (the last one's sequence).
    version: int = 0
    #: Orders earned on (milestones number them); a refused order does not count.
    order_count: int = 0
    lots: dict[str, ModelLot] = field(default_factory=dict)
    ledger: list[ModelEntry] = field(default_factory=list)
    #: Tiers (tests/model/tiers.py): the month totals and the tier as stored on the balance.
    buckets: Buckets = field(default_factory=dict)
    held: Held = NONE_HELD
    #: The paid plan the balance holds (tests/model/plans.py), in force or not.
    grant: Grant | None = None
    #: The referrer while the member's referral waits for its qualifying order.
    referral_from: str | None = None

    def copy(self) -> MemberState:
        return copy.deepcopy(self)

    # --- figures -------------------------------------------------------------------------------

    @property
    def lotted(self) -> int:
        return sum(lot.remaining for lot in self.lots.values() if not lot.pending)

    @property
    def plain(self) -> int:
        """Available points outside any lot: they never expire and are spent last."""
        return self.available - self.lotted

    @property
    def lot_count(self) -> int:
        return sum(1 for lot in self.lots.values() if lot.remaining > 0)

    @property
    def transactions(self) -> list[str | None]:
        return [entry.transaction_id for entry in self.ledger]

    def lifetime(self, name: str) -> int:
        return int(getattr(self, name))

    def next_expiry(self, after: datetime | None = None) -> tuple[datetime | None, int]:
        """The earliest expiry among lots with points left (pending ones too), and its points."""
        dates = [
            lot.expires_at
            for lot in self.lots.values()
            if lot.expires_at is not None and lot.remaining > 0 and (after is None or lot.expires_at > after)
        ]
        if not dates:
            return None, 0
        first = min(dates)
        return first, sum(lot.remaining for lot in self.lots.values() if lot.expires_at == first)

    def next_maturity(self) -> datetime | None:
        dates = [lot.matures_at for lot in self.lots.values() if lot.matures_at is not None and lot.remaining > 0]
        return min(dates) if dates else None

    def due_moments(self) -> list[datetime]:
        return [m for lot in self.lots.values() for m in (lot.matures_at, lot.expires_at) if m is not None]

    # --- changes -------------------------------------------------------------------------------

    def _entry(self, key: str, movement: MovementType, points: int, pending_change: int, **more: Any) -> ModelEntry:
        self.version += 1
        entry = ModelEntry(key, movement, points, pending_change, self.available, self.pending, **more)
        self.ledger.append(entry)
        return entry

    def settle(self, as_of: datetime) -> list[ModelEntry]:
        """Record what is due at ``as_of``: maturities (in order of maturity), then expiries."""
        recorded = []
        maturing = [lot for lot in self.lots.values() if lot.matures_at is not None and lot.matures_at <= as_of]
        for lot in sorted(maturing, key=lambda lot: (lot.matures_at, lot.lot_id)):
            debt = max(0, -self.available)
            self.pending -= lot.remaining
            self.available += lot.remaining
            recorded.append(
                self._entry(
                    f"mature:{lot.lot_id}",
                    MovementType.MATURE,
                    0,
                    -lot.remaining,
                    lot_id=lot.lot_id,
                    occurred_at=lot.matures_at,
                )
            )
            lot.remaining -= min(lot.remaining, debt)
            lot.matures_at = None
            if not lot.remaining:
                del self.lots[lot.lot_id]
        expiring = [
            lot
            for lot in self.lots.values()
            if lot.matures_at is None and lot.expires_at is not None and lot.expires_at <= as_of
        ]
        for lot in sorted(expiring, key=lambda lot: (lot.expires_at, lot.lot_id)):
            assert self.available >= lot.remaining, f"model: lots exceed the balance of {self.member_id}"
            self.available -= lot.remaining
            self.expired += lot.remaining
            recorded.append(
                self._entry(
                    f"expire:{lot.lot_id}",
                    MovementType.EXPIRE,
                    -lot.remaining,
                    0,
                    lot_id=lot.lot_id,
                    occurred_at=lot.expires_at,
                )
            )
            del self.lots[lot.lot_id]
        return recorded

    def effective(self, at: datetime) -> MemberState:
        """The member as they may use their points at ``at``, whatever the jobs have recorded."""
        view = self.copy()
        view.settle(at)
        return view

    def take(self, lots: list[ModelLot], points: int) -> int:
        """Take up to ``points`` from ``lots`` in that order; returns what was taken."""
        taken = 0
        for lot in lots:
            amount = min(lot.remaining, points - taken)
            taken += amount
            lot.remaining -= amount
            if not lot.remaining:
                del self.lots[lot.lot_id]
        return taken


@dataclass(frozen=True)
class Applied:
    """A key that moved points: the body it was applied with and the entry it produced."""

    body: tuple[Any, ...]
    entry: LedgerEntry


@dataclass(frozen=True)
class Expected:
    code: str
    #: The entry's points (signed change of available + pending).
    delta: int = 0
    #: The member after a success (settlement and the movement's own entry, in its ledger).
    after: MemberState | None = None
    #: For a replay of an applied key: what it was applied with.
    replay_of: Applied | None = None
    amount: str | None = None
    #: What became due and is recorded in the same transaction, before the movement.
    settlement: tuple[ModelEntry, ...] = ()
    pending_change: int = 0
    requested: int | None = None
    expires_at: datetime | None = None
    matures_at: datetime | None = None
    #: Lot the movement creates (its id is the entry's transaction id, known once applied).
    creates_lot: bool = False
    #: Earns: the breakdown the entry carries (empty for plain points and amounts not cut).
    breakdown: tuple[Part, ...] = ()
    #: Counters the movement moves in its transaction (cap counters and allowances).
    counters: tuple[CounterMove, ...] = ()
    #: The cap counters the entry records as moved.
    cap_counters: tuple[tuple[str, int], ...] = ()
    #: The body a fresh success is applied with (activities; else ``body_of`` the request).
    body: tuple[Any, ...] | None = None
    #: The referral a referee's order earn qualifies (its rewards follow the commit).
    referral: ModelReferral | None = None

    @property
    def succeeds(self) -> bool:
        return self.code == SUCCESS


@dataclass(frozen=True)
class JobExpectation:
    counts: dict[str, int]
    #: Members the job settles, as they are afterwards, and what it counts for each.
    after: dict[str, MemberState]
    by_member: dict[str, dict[str, int]]


def points_for_amount(amount: str, currency: str, per_unit: Decimal, rounding: str) -> int | str:
    """Points for ``amount``, or the error code refusing it."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return "invalid_request"
    if not value.is_finite() or value <= 0:
        return "invalid_request"
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MINOR_UNITS[currency]:
        return "invalid_request"
    raw = Fraction(value) * Fraction(per_unit)
    if rounding == "floor":
        points = math.floor(raw)
    elif rounding == "ceil":
        points = math.ceil(raw)
    else:  # nearest, halves away from zero (amounts are positive)
        points = math.floor(raw + Fraction(1, 2))
    return points if points > 0 else "amount_too_small"


@dataclass
class TenantModel:
    tenant_id: str
    currency: str
    timezone: str = "UTC"
    per_unit: Decimal = Decimal(1)
    rounding: str = "floor"
    expiry: ExpiryRule = field(default_factory=ExpiryRule)
    pending_days: int = 0
    clawback: bool = False
    members: dict[str, MemberState] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    applied: dict[str, Applied] = field(default_factory=dict)
    #: Tenant-wide sums of every recorded movement, kept apart from the members' figures.
    moved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LIFETIMES, 0))
    earn_on_shipping: bool = False
    earn_on_tax: bool = False
    #: Every earning rule created, past, present and scheduled.
    rules: list[ModelRule] = field(default_factory=list)
    #: Cap counters and allowances by name, as the earns and reversals moved them.
    counters: dict[str, int] = field(default_factory=dict)
    #: The cap or limit each counter was held to when it last went up: it never holds more.
    ceilings: dict[str, int] = field(default_factory=dict)
    #: Tier program versions, plans, referral program versions and referrals, as configured.
    tier_versions: list[ModelTierProgram] = field(default_factory=list)
    referral_versions: list[ModelReferralProgram] = field(default_factory=list)
    #: Referrals by referee.
    referrals: dict[str, ModelReferral] = field(default_factory=dict)

    @property
    def terms(self) -> Terms:
        return Terms(self.per_unit, self.rounding, self.earn_on_shipping, self.earn_on_tax)

    def enrol(self, member_id: str, external_id: str | None) -> None:
        self.members[member_id] = MemberState(member_id)
        if external_id is not None:
            self.external_ids[external_id] = member_id

    # --- movements -----------------------------------------------------------------------------

    def expect(self, request: MovementRequest, now: datetime) -> Expected:
        if request.occurred_at is not None and not dated_acceptably(request.occurred_at, now):
            return self._answered(request) or Expected("invalid_request")  # an applied key still answers
        amount = None
        refusal: str | None = None
        shares: tuple[Part, ...] = ()
        if request.order is not None:  # the program's rate and the order rules, before the member's part
            order = ModelOrder.of(request.order)
            shares = order_shares(order, self.terms, self.rules, request.occurred_at or now, self.timezone)
            points = sum(share for _, share, _ in shares)
            amount = format(order.total, "f")  # refused for no points once the member's milestone is known
        elif request.amount is not None:
            converted = points_for_amount(request.amount, self.currency, self.per_unit, self.rounding)
            if converted == "invalid_request":
                return Expected("invalid_request")  # malformed input is refused before anything else
            amount = format(Decimal(request.amount), "f")
            points = converted if isinstance(converted, int) else 0
            refusal = converted if isinstance(converted, str) else None
            if request.movement is MovementType.REVERSE:  # a refund: its points depend on the order
                points, refusal = 0, None
        else:
            points = request.points or 0
        if refusal is None and abs(points) > MAX_POINTS_PER_MOVEMENT:
            refusal = "movement_too_large"
        answered = self._answered(request)
        if answered is not None:
            return answered
        if refusal is not None:
            return Expected(refusal)
        member = self.members.get(request.member_id)
        if member is None:
            return Expected("not_found")
        if request.order is not None and request.movement is not MovementType.EARN and points <= 0:
            return Expected("amount_too_small")  # only an earn counts the order for a milestone
        after = member.copy()
        settlement = tuple(after.settle(now))
        if request.movement is MovementType.REVERSE:
            return self._reverse(after, settlement, request, points, amount, now)
        if request.movement is MovementType.EARN:
            return self._earn(after, settlement, request, points, amount, shares, now)
        delta = -points if request.movement is MovementType.REDEEM else points
        if delta < 0:
            return self._debit(after, settlement, request, -delta, amount)
        return self._credit(after, settlement, request, delta, amount, now)

    def expect_credit(self, request: MovementRequest, parts: tuple[Part, ...], now: datetime) -> Expected:
        """A credit the platform mints (a plan's join bonus): an earn of its points with the
        breakdown it is given, under the caps."""
        answered = self._answered(request)
        if answered is not None:
            return answered
        after = self.members[request.member_id].copy()
        settlement = tuple(after.settle(now))
        return self._earn(after, settlement, request, request.points or 0, None, parts, now)

    def expect_activity(
        self,
        member_id: str,
        activity: str,
        key: str,
        now: datetime,
        *,
        reference: str | None = None,
        description: str | None = None,
        occurred_at: datetime | None = None,
        metadata: dict[str, str] | None = None,
        actor_key_id: str | None = None,
    ) -> tuple[Expected, MovementRequest | None]:
        """An activity: refused, replayed, or a fresh earn (and the movement it records)."""
        metadata = dict(metadata or {})
        member = self.members.get(member_id)
        if member is None:
            return Expected("not_found"), None
        at = occurred_at or now
        earning = activity_earning(self.rules, member_id, activity, at, self.timezone, self.counters)
        body = activity_body(member_id, activity, reference, description, occurred_at, metadata)
        applied = self.applied.get(key)
        if applied is not None:  # a retry replays, whatever the allowances say now
            if applied.body == body:
                return Expected(SUCCESS, delta=applied.entry.points, replay_of=applied), None
            return Expected("idempotency_key_reused"), None
        if occurred_at is not None and not dated_acceptably(occurred_at, now):
            return Expected("invalid_request"), None  # the allowance's period is only known for a date it accepts
        if earning.refusal is not None:
            return Expected(earning.refusal), None
        request = MovementRequest(
            member_id=member_id,
            movement=MovementType.EARN,
            idempotency_key=key,
            points=earning.points,
            reference=reference,
            description=description or f"activity: {activity}",
            occurred_at=occurred_at,
            metadata={**metadata, "activity": activity},
            actor_key_id=actor_key_id,
            timezone=self.timezone,
            pending_days=0,  # activity points are available at once
        )
        after = member.copy()
        settlement = tuple(after.settle(now))
        expected = self._earn(after, settlement, request, earning.points, None, earning.parts, now, uses=earning.uses)
        return replace(expected, body=body), request

    def preview(self, member_id: str, order: ModelOrder, at: datetime, now: datetime) -> Capped:
        """What ``order`` earns this member at ``at``: the order rules, their tier and plan
        shares (at ``now``), the milestone of their next order and the caps with what their
        counters have left (no refusal: the points)."""
        shares = order_shares(order, self.terms, self.rules, at, self.timezone)
        shares = (*shares, *self.member_shares(self.members[member_id], order, now))
        milestones = milestone_shares(self.rules, self.members[member_id].order_count + 1, at)
        shares = (*shares, *milestones)
        points = sum(share for _, share, _ in shares)
        return apply_caps(points, shares, self.rules, member_id, at, self.timezone, self.counters)

    def _earn(
        self,
        after: MemberState,
        settlement: tuple[ModelEntry, ...],
        request: MovementRequest,
        points: int,
        amount: Any,
        shares: tuple[Part, ...],
        now: datetime,
        *,
        uses: tuple[CounterMove, ...] = (),
    ) -> Expected:
        """An earn for this member: its tier reviewed, an order's tier and plan shares and its
        milestone, then the caps, then the credit; then what it counts towards tiers (and the
        tier it reaches) and the referral an order qualifies."""
        at = request.occurred_at or now
        program = with_tiers(self.tier_versions, now)
        if program is not None:
            after.held = review(after.held, after.buckets, program, now, self.timezone)
        if request.order is not None:
            extras = self.member_shares(after, ModelOrder.of(request.order), now)
            points += sum(share for _, share, _ in extras)
            shares = (*shares, *extras)
            after.order_count += 1  # the order happened, whatever it credits
            milestones = milestone_shares(self.rules, after.order_count, at)
            points += sum(share for _, share, _ in milestones)
            shares = (*shares, *milestones)
            if points <= 0:
                return Expected("amount_too_small")  # neither the rate, the rules nor a milestone give
        capped = apply_caps(points, shares, self.rules, after.member_id, at, self.timezone, self.counters)
        cap_counters = tuple((name, by) for name, by, _ in capped.moves)
        expected = self._credit(
            after,
            settlement,
            request,
            capped.points,
            amount,
            now,
            breakdown=capped.breakdown,
            cap_counters=cap_counters,
        )
        if not expected.succeeds:
            return expected
        spend = int(Decimal(amount) * 1000) if amount is not None else 0
        orders = 1 if request.order is not None else 0
        entry = after.ledger[-1]
        entry.counted_at, entry.spend, entry.orders = at, spend, orders
        after.buckets = counted(after.buckets, at, now, self.timezone, capped.points, spend, orders)
        if program is not None and (capped.points > 0 or orders):
            after.held = qualify(after.held, after.buckets, program, now, self.timezone)
        referral = None
        if request.order is not None and after.referral_from is not None:
            version = referral_in_force(self.referral_versions, now)
            if version is not None and version.qualifies(request.order.total):
                referral = version.qualified(after.member_id, after.referral_from, request, now, self.timezone)
                after.referral_from = None
        return replace(
            expected,
            breakdown=capped.breakdown,
            counters=(*uses, *capped.moves),
            cap_counters=cap_counters,
            referral=referral,
        )

    def member_shares(self, member: MemberState, order: ModelOrder, now: datetime) -> tuple[Part, ...]:
        """An order's extra shares for this member at ``now``: the effective tier's multiplier
        (its tier reviewed first), then the plan's own, each of the order's base."""
        program = with_tiers(self.tier_versions, now)
        held = review(member.held, member.buckets, program, now, self.timezone) if program else member.held
        grant = member.grant if member.grant is not None and member.grant.active_at(now) else None
        tier = program.tier(effective(program, held.tier, grant, now)) if program is not None else None
        extras: list[Part] = []
        if tier is not None and tier.multiplier > 1 and (share := share_of_base(order, self.terms, tier.multiplier)):
            extras.append(("tier", share, f"tier:{tier.name}"))
        if grant is not None and grant.multiplier > 1 and (share := share_of_base(order, self.terms, grant.multiplier)):
            extras.append(("plan", share, f"plan:{grant.plan_id}"))
        return tuple(extras)

    def tier_now(self, member: MemberState, at: datetime) -> tuple[Held, str | None]:
        """The member's earned tier as reads show it at ``at`` (due reviews applied; none
        without tiers in force), and the effective tier (a plan's if higher)."""
        program = with_tiers(self.tier_versions, at)
        if program is None:
            return NONE_HELD, None
        held = review(member.held, member.buckets, program, at, self.timezone)
        return held, effective(program, held.tier, member.grant, at)

    def _answered(self, request: MovementRequest) -> Expected | None:
        """A key that moved points answers for itself, whatever else changed."""
        applied = self.applied.get(request.idempotency_key)
        if applied is None:
            return None
        if applied.body == body_of(request):
            return Expected(SUCCESS, delta=applied.entry.points, replay_of=applied)
        return Expected("idempotency_key_reused")

    def _debit(
        self, after: MemberState, settlement: tuple[ModelEntry, ...], request: MovementRequest, points: int, amount: Any
    ) -> Expected:
        if points > after.available:  # expired points were settled above: never spendable
            return Expected("insufficient_points")
        from_lots = after.take(
            sorted((lot for lot in after.lots.values() if not lot.pending), key=ModelLot.fifo), points
        )
        assert points - from_lots <= after.plain, "model: a debit found too few plain points"
        after.available -= points
        if request.movement is MovementType.REDEEM:
            after.redeemed += points
        else:
            after.adjusted -= points
        after._entry(request.idempotency_key, request.movement, -points, 0, reference=request.reference)
        return Expected(SUCCESS, delta=-points, after=after, amount=amount, settlement=settlement)

    def _credit(
        self,
        after: MemberState,
        settlement: tuple[ModelEntry, ...],
        request: MovementRequest,
        points: int,
        amount: Any,
        now: datetime,
        *,
        breakdown: tuple[Part, ...] = (),
        cap_counters: tuple[tuple[str, int], ...] = (),
    ) -> Expected:
        days = request.pending_days if request.pending_days is not None else self.pending_days
        matures_at = None
        if request.movement is MovementType.EARN and days:
            matures_at = wall_clock_later(now, self.timezone, days=days)
        expires_at = self.expiry.expires_at(matures_at or now, self.timezone)
        lot = None
        if points and (matures_at is not None or expires_at is not None):  # an earn capped to 0 makes no lot
            lot = ModelLot("(new)", points, points, now, expires_at, matures_at)
        debt = max(0, -after.available)
        if lot is not None and not lot.pending and debt:
            # Points that pay back a claw-back's debt are gone at once: only the rest forms a lot.
            keep = max(0, points - debt)
            lot = ModelLot("(new)", keep, keep, now, expires_at, None) if keep else None
        if lot is not None and lot.pending:
            if after.available + after.pending + points > MAX_BALANCE:
                return Expected("balance_limit_exceeded")
            after.pending += points
        else:
            if after.available + points > MAX_BALANCE:
                return Expected("balance_limit_exceeded")
            after.available += points
        if request.movement is MovementType.EARN:
            after.earned += points
        else:
            after.adjusted += points
        if lot is not None:
            after.lots[lot.lot_id] = lot
        pending_change = points if lot is not None and lot.pending else 0
        after._entry(
            request.idempotency_key,
            request.movement,
            points,
            pending_change,
            reference=request.reference or (request.order.order_id if request.order is not None else None),
            amount=Decimal(amount) if amount is not None else None,
            breakdown=breakdown,
            cap_counters=cap_counters,
        )
        return Expected(
            SUCCESS,
            delta=points,
            after=after,
            amount=amount,
            settlement=settlement,
            pending_change=pending_change,
            expires_at=lot.expires_at if lot else None,
            matures_at=lot.matures_at if lot else None,
            creates_lot=lot is not None,
        )

    def reversible(self, member: MemberState, reference: str) -> tuple[int, int, set[str]]:
        """What was earned for ``reference``, what was taken back for it, and its lots."""
        earns = [e for e in member.ledger if e.movement is MovementType.EARN and e.reference == reference]
        taken = -sum(e.points for e in member.ledger if e.movement is MovementType.REVERSE and e.reference == reference)
        return sum(e.points for e in earns), taken, {e.transaction_id for e in earns if e.transaction_id}

    def refund_points(self, member: MemberState, reference: str, refund: Decimal) -> int | str:
        """A refund of ``refund`` for ``reference``: the refunded share of what was paid, counted
        with the earlier refunds, as points asked back beyond what earlier reversals asked (or
        the error code refusing it)."""
        mine = [e for e in member.ledger if e.reference == reference]
        earns = [e for e in mine if e.movement is MovementType.EARN]
        reversals = [e for e in mine if e.movement is MovementType.REVERSE]
        paid = sum((Fraction(e.amount) for e in earns if e.amount is not None), Fraction(0))
        if paid == 0:
            return "reversal_needs_points"
        earned, taken, _ = self.reversible(member, reference)
        if earned - taken <= 0:
            return "reversal_exceeds_earned"
        refunded = sum((Fraction(e.amount) for e in reversals if e.amount is not None), Fraction(0)) + Fraction(refund)
        asked = sum(e.requested if e.requested is not None else -e.points for e in reversals)
        return max(0, math.floor(earned * min(refunded, paid) / paid) - asked)

    def _reverse(
        self,
        after: MemberState,
        settlement: tuple[ModelEntry, ...],
        request: MovementRequest,
        points: int,
        amount: Any,
        now: datetime,
    ) -> Expected:
        earned, taken, own = self.reversible(after, request.reference or "")
        if amount is not None:
            refunded = self.refund_points(after, request.reference or "", Decimal(amount))
            if isinstance(refunded, str):
                return Expected(refunded)
            points = refunded
        if points > earned - taken:
            return Expected("reversal_exceeds_earned")
        plain = after.plain
        from_pending = after.take(
            sorted((lot for lot in after.lots.values() if lot.pending and lot.lot_id in own), key=ModelLot.fifo),
            points,
        )
        spendable = sorted(
            (lot for lot in after.lots.values() if not lot.pending), key=lambda lot: (lot.lot_id not in own, lot.fifo())
        )
        from_available = after.take(spendable, points - from_pending)
        from_available += min(points - from_pending - from_available, max(plain, 0))
        short = points - from_pending - from_available
        if short and self.clawback:
            from_available += short  # below zero: later credits pay it back first
        after.pending -= from_pending
        after.available -= from_available
        after.reversed += from_pending + from_available
        change = -(from_pending + from_available)
        earns = [
            EarnCounted(e.points, e.cap_counters)
            for e in after.ledger
            if e.movement is MovementType.EARN and e.reference == request.reference
        ]
        back = given_back(earns, taken, taken - change)
        program = with_tiers(self.tier_versions, now)
        if program is not None:
            after.held = review(after.held, after.buckets, program, now, self.timezone)
        counted_earns = [
            (e.points, e.counted_at or now, e.spend, e.orders)
            for e in after.ledger
            if e.movement is MovementType.EARN and e.reference == request.reference
        ]
        after.buckets = counted(
            taken_back(after.buckets, removals(counted_earns, taken, taken - change), self.timezone),
            request.occurred_at or now,
            now,
            self.timezone,
            0,
            0,
            0,
        )
        cap_counters = tuple((name, -by) for name, by in sorted(back.items()))
        after._entry(
            request.idempotency_key,
            MovementType.REVERSE,
            change,
            -from_pending,
            reference=request.reference,
            clawback=after.available < 0 and self.clawback,
            amount=Decimal(amount) if amount is not None else None,
            requested=points,
            cap_counters=cap_counters,
        )
        return Expected(
            SUCCESS,
            delta=change,
            after=after,
            amount=amount,
            settlement=settlement,
            pending_change=-from_pending,
            requested=points,
            counters=tuple((name, by, None) for name, by in cap_counters),
            cap_counters=cap_counters,
        )

    def record(self, request: MovementRequest, expected: Expected, entry: LedgerEntry) -> None:
        """A fresh key was applied (``expected`` from :meth:`expect`, ``entry`` from the service)."""
        assert expected.after is not None
        after = expected.after
        after.ledger[-1].transaction_id = entry.transaction_id
        if expected.creates_lot:
            lot = after.lots.pop("(new)")
            lot.lot_id = entry.transaction_id
            after.lots[lot.lot_id] = lot
        self._install(after)
        for name, by, ceiling in expected.counters:
            self.counters[name] = self.counters.get(name, 0) + by
            if by > 0 and ceiling is not None:
                self.ceilings[name] = ceiling
        self.applied[request.idempotency_key] = Applied(expected.body or body_of(request), entry)
        if expected.referral is not None:
            self.referrals[expected.referral.referee_id] = expected.referral

    def _install(self, after: MemberState) -> None:
        before = self.members[after.member_id]
        for name in LIFETIMES:
            self.moved[name] += after.lifetime(name) - before.lifetime(name)
        self.members[after.member_id] = after

    # --- jobs ----------------------------------------------------------------------------------

    def expect_job(self, job: str, as_of: datetime) -> JobExpectation:
        """Each job (``expire-points``, ``mature-pending``) settles everything due at ``as_of``:
        it finds the members with a pending lot past its maturity or a lot past its expiry,
        and settles each whole (maturities, then expiries), so the end state does not depend
        on which job runs."""
        counts = dict.fromkeys(("members", "lots_matured", "points_matured", "lots_expired", "points_expired"), 0)
        after: dict[str, MemberState] = {}
        by_member: dict[str, dict[str, int]] = {}
        for member_id, member in self.members.items():
            found = any(
                (lot.matures_at or lot.expires_at or NEVER) <= as_of for lot in member.lots.values()
            )  # a pending lot is due first to mature, and never expires before it matures
            if not found:
                continue
            settled = member.copy()
            recorded = settled.settle(as_of)
            after[member_id] = settled
            own = by_member[member_id] = dict.fromkeys(counts, 0) | {"members": 1}
            for entry in recorded:
                if entry.movement is MovementType.EXPIRE:
                    own["lots_expired"] += 1
                    own["points_expired"] -= entry.points
                else:
                    own["lots_matured"] += 1
                    own["points_matured"] -= entry.pending_change
            for name, count in own.items():
                counts[name] += count
        return JobExpectation(counts, after, by_member)

    def apply_job(self, expectation: JobExpectation) -> None:
        for settled in expectation.after.values():
            self._install(settled)

    # --- reading -------------------------------------------------------------------------------

    def totals(self) -> int:
        """Conservation: what the movements put in minus what they took out."""
        moved = self.moved
        return moved["earned"] - moved["redeemed"] + moved["adjusted"] - moved["expired"] - moved["reversed"]

    def describe(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "timezone": self.timezone,
            "program": (str(self.per_unit), self.rounding, str(self.expiry), self.pending_days, self.clawback),
            "members": {
                m: (s.available, s.pending, s.version, {lot.lot_id[-6:]: lot.remaining for lot in s.lots.values()})
                for m, s in self.members.items()
            },
            "applied_keys": len(self.applied),
            "rules": [(r.rule_id[-6:], r.kind, r.per, r.cap or r.limit, r.starts_at, r.ends_at) for r in self.rules],
            "counters": {name: count for name, count in self.counters.items() if count},
            "orders": {m: s.order_count for m, s in self.members.items() if s.order_count},
        }


def expected_entry_fields(request: MovementRequest, expected: Expected, currency: str) -> dict[str, Any]:
    """What the entry of a fresh success must carry (compared field by field)."""
    after = expected.after
    assert after is not None
    next_expiry_at, next_expiry_points = after.next_expiry()
    return {
        "member_id": request.member_id,
        "movement": request.movement,
        "points": expected.delta,
        "pending_change": expected.pending_change,
        "requested": expected.requested,
        "expires_at": expected.expires_at,
        "matures_at": expected.matures_at,
        "sequence": after.version,
        "idempotency_key": request.idempotency_key,
        "amount": expected.amount,
        "currency": currency if expected.amount is not None else None,
        "reference": request.reference or (request.order.order_id if request.order is not None else None),
        "description": request.description,
        "reason": request.reason,
        "metadata": dict(request.metadata),
        "actor_key_id": request.actor_key_id,
        "balance_after.available": after.available,
        "balance_after.pending": after.pending,
        "balance_after.lifetime_earned": after.earned,
        "balance_after.lifetime_redeemed": after.redeemed,
        "balance_after.lifetime_adjusted": after.adjusted,
        "balance_after.lifetime_expired": after.expired,
        "balance_after.lifetime_reversed": after.reversed,
        "balance_after.version": after.version,
        "balance_after.lot_count": after.lot_count,
        "balance_after.next_expiry_at": next_expiry_at,
        "balance_after.next_expiry_points": next_expiry_points,
        "balance_after.next_maturity_at": after.next_maturity(),
        "balance_after.order_count": after.order_count,
        "breakdown": expected.breakdown,
        "cap_counters": expected.cap_counters,
    }
