"""A small in-memory reference model of a tenant's ledger, written from the documented rules
(README: "Point movements and idempotency", "Why a point is never lost or doubled"), not
from the implementation: for any request it says what must happen, success or which
refusal, and what the member's figures become.

It is deliberately naive (plain dicts, exact fractions, no storage, no retries) so that a
disagreement with the real services points at the services.

Extending it for a new operation (reverse, pending points, expiry): add the movement to
``Outcome``-producing logic in :meth:`TenantModel.expect` (its delta and refusals), the
figures it moves in :class:`MemberState.apply` and :data:`LIFETIME_FIELD`, and the
conservation law in :meth:`TenantModel.totals`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from chalicelib.domain.ledger import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT, LedgerEntry, MovementRequest, MovementType

#: ISO 4217 minor units of the currencies the machine uses (README: "at most its minor-unit digits").
MINOR_UNITS = {"EUR": 2, "JPY": 0, "KWD": 3}

#: Which lifetime total a movement of each type feeds, and with which sign.
LIFETIME_FIELD: dict[MovementType, tuple[str, int]] = {
    MovementType.EARN: ("earned", 1),
    MovementType.REDEEM: ("redeemed", -1),
    MovementType.ADJUST: ("adjusted", 1),
}

#: Error codes, as the API reports them (chalicelib.domain.errors classes' ``code``).
SUCCESS = "ok"
BUSY = "retry_later"


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
    )


@dataclass
class MemberState:
    member_id: str
    available: int = 0
    earned: int = 0
    redeemed: int = 0
    adjusted: int = 0
    #: Number of ledger entries (the last one's sequence).
    version: int = 0
    #: Transaction ids in sequence order.
    transactions: list[str] = field(default_factory=list)

    def apply(self, movement: MovementType, delta: int) -> MemberState:
        name, sign = LIFETIME_FIELD[movement]
        return replace(
            self,
            available=self.available + delta,
            version=self.version + 1,
            transactions=list(self.transactions),
            **{name: getattr(self, name) + sign * delta},
        )


@dataclass(frozen=True)
class Applied:
    """A key that moved points: the body it was applied with and the entry it produced."""

    body: tuple[Any, ...]
    entry: LedgerEntry


@dataclass(frozen=True)
class Expected:
    code: str
    delta: int = 0
    #: The member after a success.
    after: MemberState | None = None
    #: For a replay of an applied key: what it was applied with.
    replay_of: Applied | None = None
    amount: str | None = None

    @property
    def succeeds(self) -> bool:
        return self.code == SUCCESS


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
    per_unit: Decimal = Decimal(1)
    rounding: str = "floor"
    members: dict[str, MemberState] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    applied: dict[str, Applied] = field(default_factory=dict)
    #: Tenant-wide sums of every applied movement, kept apart from the members' figures.
    moved: dict[str, int] = field(default_factory=lambda: {"earned": 0, "redeemed": 0, "adjusted": 0})

    def enrol(self, member_id: str, external_id: str | None) -> None:
        self.members[member_id] = MemberState(member_id)
        if external_id is not None:
            self.external_ids[external_id] = member_id

    def expect(self, request: MovementRequest) -> Expected:
        amount = None
        refusal: str | None = None
        if request.amount is not None:
            converted = points_for_amount(request.amount, self.currency, self.per_unit, self.rounding)
            if converted == "invalid_request":
                return Expected("invalid_request")  # malformed input is refused before anything else
            amount = format(Decimal(request.amount), "f")
            points = converted if isinstance(converted, int) else 0
            refusal = converted if isinstance(converted, str) else None
        else:
            points = request.points or 0
        if refusal is None and abs(points) > MAX_POINTS_PER_MOVEMENT:
            refusal = "movement_too_large"
        applied = self.applied.get(request.idempotency_key)
        if applied is not None:  # a key that moved points answers for itself, whatever else changed
            if applied.body == body_of(request):
                return Expected(SUCCESS, delta=applied.entry.points, replay_of=applied)
            return Expected("idempotency_key_reused")
        if refusal is not None:
            return Expected(refusal)
        member = self.members.get(request.member_id)
        if member is None:
            return Expected("not_found")
        delta = -points if request.movement is MovementType.REDEEM else points
        if member.available + delta < 0:
            return Expected("insufficient_points")
        if member.available + delta > MAX_BALANCE:
            return Expected("balance_limit_exceeded")
        return Expected(SUCCESS, delta=delta, after=member.apply(request.movement, delta), amount=amount)

    def record(self, request: MovementRequest, expected: Expected, entry: LedgerEntry) -> None:
        """A fresh key was applied (``expected`` from :meth:`expect`, ``entry`` from the service)."""
        assert expected.after is not None
        after = expected.after
        after.transactions.append(entry.transaction_id)
        self.members[request.member_id] = after
        self.applied[request.idempotency_key] = Applied(body_of(request), entry)
        name, sign = LIFETIME_FIELD[request.movement]
        self.moved[name] += sign * expected.delta

    def totals(self) -> int:
        """Conservation: what the movements put in minus what they took out."""
        return self.moved["earned"] - self.moved["redeemed"] + self.moved["adjusted"]

    def describe(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "program": (str(self.per_unit), self.rounding),
            "members": {m: (s.available, s.version) for m, s in self.members.items()},
            "applied_keys": len(self.applied),
        }


def expected_entry_fields(request: MovementRequest, expected: Expected, currency: str) -> dict[str, Any]:
    """What the entry of a fresh success must carry (compared field by field)."""
    after = expected.after
    assert after is not None
    return {
        "member_id": request.member_id,
        "movement": request.movement,
        "points": expected.delta,
        "sequence": after.version,
        "idempotency_key": request.idempotency_key,
        "amount": expected.amount,
        "currency": currency if expected.amount is not None else None,
        "reference": request.reference,
        "description": request.description,
        "reason": request.reason,
        "metadata": dict(request.metadata),
        "actor_key_id": request.actor_key_id,
        "balance_after.available": after.available,
        "balance_after.lifetime_earned": after.earned,
        "balance_after.lifetime_redeemed": after.redeemed,
        "balance_after.lifetime_adjusted": after.adjusted,
        "balance_after.version": after.version,
    }
