"""What the program's policies add to a movement's arithmetic: the lot a credit forms (its
maturity and expiry) and the inactivity deadline an earn or redeem moves; and the opening
credit of a member created with points, recorded exactly as a movement on an empty balance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.errors import (
    MovementTooLarge,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges
from chalicelib.domain.ids import new_transaction_id
from chalicelib.domain.movement_requests import (
    MAX_POINTS_PER_MOVEMENT,
    MovementRequest,
    MovementType,
)

if TYPE_CHECKING:
    from chalicelib.domain.program import Program


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
