"""The ledger's entries and the balance that is their running sum.

A member's ``Balance`` moves entry by entry (``LedgerEntry``); ``settle`` records what fell
due (maturities, expiries, inactivity lapses) as entries of their own. ``BalanceView`` reads a
balance as settling it at a moment would leave it, and every entry shows the view right after
it: so the four live together.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.clock import isoformat
from chalicelib.domain.errors import (
    BalanceLimitExceeded,
    InsufficientPoints,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges
from chalicelib.domain.fingerprints import minted_fingerprint
from chalicelib.domain.ids import new_transaction_id
from chalicelib.domain.movement_requests import (
    MAX_BALANCE,
    MovementType,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chalicelib.domain.orders import Order
    from chalicelib.domain.plans import PlanGrant
    from chalicelib.domain.rules import Share


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
    #: Net points transferred (chalicelib.domain.transfers): received minus sent.
    lifetime_transferred: int = 0
    #: When the member was erased (chalicelib.domain.privacy): no movement is accepted after it.
    erased_at: datetime | None = None

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
            lifetime_transferred=self.lifetime_transferred + (delta if movement is MovementType.TRANSFER else 0),
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
    #: Order earns: the order as sent (lines, paid total, discount, shipping, tax), so what it
    #: would earn under another program can be computed again (the insights' what-if).
    order: Order | None = None

    @property
    def uncapped_points(self) -> int:
        """What the movement asked before earning caps cut it (its points when nothing was cut),
        without the points of a challenge it completed (the movement added those itself)."""
        added = ("cap", "challenge")
        if not any(share.source in added for share in self.breakdown):
            return self.points
        return sum(share.points for share in self.breakdown if share.source not in added)

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
                request_fingerprint=minted_fingerprint(key),
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
                    request_fingerprint=minted_fingerprint(key),
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


def log_fields(entry: LedgerEntry) -> dict[str, Any]:
    """A log-friendly summary (no personal data)."""
    return {
        "transaction_id": entry.transaction_id,
        "member_id": entry.member_id,
        "movement": str(entry.movement),
        "points": entry.points,
        "sequence": entry.sequence,
    }
