"""A movement of points as a caller asks for it and as the ledger answers it: its type, the
limits every movement keeps, the idempotency keys the ledger keeps for its own entries, the
request and its result. The ledger (chalicelib.domain.ledger) records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import (
    InvalidRequest,
)
from chalicelib.domain.fingerprints import fingerprint

if TYPE_CHECKING:
    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.orders import Order
    from chalicelib.domain.plans import PlanWrite
    from chalicelib.domain.ports import CounterChange, CouponWrite
    from chalicelib.domain.rules import Share


#: Largest number of points a single movement may carry.
MAX_POINTS_PER_MOVEMENT = 100_000_000
#: Largest balance a member may hold (far inside DynamoDB's 38 significant digits).
MAX_BALANCE = 10**12


#: The shapes of the keys the ledger mints for its own entries: a lot's maturity and expiry
#: (``mature:<lot id>``, ``expire:<lot id>``), an inactivity lapse, a birthday bonus. A
#: client's Idempotency-Key may not take them: one that did would claim the ledger's own
#: entry (a lot that could then never be settled, a bonus never paid).
#: ``intake:`` is the order intake's (chalicelib.domain.commerce): one earn per order, one reversal per refund.
#: ``partner:`` is a coalition partner's namespace (chalicelib.domain.partners): ``partner:<id>:<its key>``.
#: ``referral:`` is a referral's rewards (chalicelib.domain.referrals): ``referral:<referee>:referrer|referee``.
#: ``plan-bonus:`` is a paid plan's join bonus (chalicelib.domain.plans): once per member and plan.
#: ``import:`` is a bulk import's opening balance (chalicelib.domain.imports): ``import:<external id>``.
#: ``transfer:`` is a transfer's other entries (chalicelib.domain.transfers): ``transfer:<transfer id>:<side>``.
#: ``retention:`` is an erasure by the retention job (chalicelib.domain.privacy): ``retention:<member id>``.
#: ``signup:`` is a member's sign-up bonus (chalicelib.domain.welcome): ``signup:<member id>``.
#: ``household:`` is a pooled redemption's other entries (chalicelib.domain.households):
#: ``household:<redemption id>:<member id>``.
MINTED_KEY_PREFIXES = (
    "expire:",
    "mature:",
    "lapse:",
    "birthday:",
    "intake:",
    "partner:",
    "referral:",
    "plan-bonus:",
    "import:",
    "transfer:",
    "retention:",
    "signup:",
    "household:",
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
    #: Points moved between two members of the brand (chalicelib.domain.transfers): one entry
    #: on each side, in one transaction; the receiver's lots keep the sender's expiry.
    TRANSFER = "transfer"


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
class MovementResult:
    entry: LedgerEntry
    #: True when the idempotency key had already been applied and this is its first result.
    replayed: bool
    #: What the movement's steps wrote in its transaction besides the entry, the balance and
    #: the lots (first result only; chalicelib.domain.movement).
    writes: tuple[object, ...] = ()
