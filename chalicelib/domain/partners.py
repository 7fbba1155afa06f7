"""Coalition partners: brands that issue and take the tenant's points, and their settlement.

A partner key (scope ``partner``, bound to one partner) earns and redeems for the tenant's
members through the ledger like any movement. Each movement:

* runs under the partner's own idempotency namespace (``partner:<partner id>:<client key>``),
  so a partner's keys never collide with the tenant's or another partner's;
* carries the partner in the entry (``metadata.partner_id`` and the reference
  ``partner:<partner id>[:<client reference>]``);
* adds its points to the partner's settlement counter of the day (UTC) in the same
  transaction (``CounterChange``), so the settlement of a period is a handful of reads of
  per-day counters, never a scan of the ledger, and a replay changes nothing.

A partner whose customer is refunded reverses what it issued for that reference (only its
own references: the ledger reference is namespaced by the partner). The settlement counts
what the partner asked back (``reversed``), whether or not the member still had it: the
partner's refund is what the brands settle, the member's shortfall is the program's
claw-back or stop-at-zero rule.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Protocol

from chalicelib.domain.audit import SYSTEM, AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import (
    AmountTooSmall,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    PartnerExists,
)
from chalicelib.domain.movement_requests import MovementRequest, MovementResult, MovementType
from chalicelib.domain.ports import CounterChange

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.members import MemberService

PARTNER_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$")
#: The ledger keeps this prefix for partner movements (see ``MINTED_KEY_PREFIXES``).
PARTNER_KEY_PREFIX = "partner:"
#: Longest settlement period, in days.
MAX_SETTLEMENT_DAYS = 366
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    earn_rate: Decimal
    redeem_rate: Decimal
    created_at: datetime


@dataclass(frozen=True)
class MemberRef:
    """Exactly one identifier of the member: its id, the brand's external id, its referral
    code or its card code."""

    member_id: str | None = None
    external_id: str | None = None
    referral_code: str | None = None
    card_code: str | None = None


@dataclass(frozen=True)
class PartnerMovement:
    partner_id: str
    member: MemberRef
    idempotency_key: str
    points: int | None = None
    amount: Decimal | None = None
    reference: str | None = None
    description: str | None = None
    actor_key_id: str | None = None


@dataclass(frozen=True)
class SettlementDay:
    day: date
    issued_points: int
    redeemed_points: int
    reversed_points: int = 0


@dataclass(frozen=True)
class PartnerSettlement:
    partner: Partner
    from_date: date
    to_date: date
    issued_points: int
    redeemed_points: int
    issued_value: Decimal
    redeemed_value: Decimal
    reversed_points: int = 0
    reversed_value: Decimal = Decimal("0.00")
    days: list[SettlementDay] = field(default_factory=list)

    @property
    def net_issued_points(self) -> int:
        return self.issued_points - self.reversed_points


class PartnerStore(Protocol):
    def add(self, partner: Partner, audit: AuditEntry | None = None) -> bool:
        """Store a new partner; False if its id is taken."""

    def get(self, partner_id: str) -> Partner | None: ...

    def list(self) -> list[Partner]: ...

    def counters(self, names: builtins.list[str]) -> dict[str, int]:
        """The values of the named ledger counters (absent: 0)."""


def counter_name(partner_id: str, day: date, side: str) -> str:
    return f"partner:{partner_id}:{day.isoformat()}:{side}"


class PartnerService:
    def __init__(
        self,
        store: PartnerStore,
        points: PointsService,
        members: MemberService,
        *,
        clock: Clock = utc_now,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor or Auditor(SYSTEM, clock)
        self._store = store
        self._points = points
        self._members = members
        self._clock = clock

    def create(self, *, partner_id: str, name: str, earn_rate: Decimal, redeem_rate: Decimal) -> Partner:
        partner = Partner(partner_id, name, earn_rate, redeem_rate, self._clock())
        if not self._store.add(
            partner, self._auditor.entry(AuditAction.PARTNER_CREATED, "partner", partner_id, after=partner)
        ):
            raise PartnerExists(f"partner {partner_id!r} already exists", details={"partner_id": partner_id})
        return partner

    def get(self, partner_id: str) -> Partner:
        found = self._store.get(partner_id) if PARTNER_ID_PATTERN.fullmatch(partner_id) else None
        if found is None:
            raise NotFound(f"partner {partner_id!r} not found")
        return found

    def list(self) -> list[Partner]:
        return self._store.list()

    def earn(self, movement: PartnerMovement) -> MovementResult:
        partner = self.get(movement.partner_id)
        points = movement.points
        metadata = {"partner_id": partner.partner_id}
        if movement.amount is not None:
            points = self._points_for(partner, movement.amount)
            metadata["partner_amount"] = format(movement.amount.normalize(), "f")
        assert points is not None
        return self._move(partner, movement, MovementType.EARN, points, metadata, "issued")

    @staticmethod
    def _points_for(partner: Partner, amount: Decimal) -> int:
        points = int((amount * partner.earn_rate).to_integral_value(rounding=ROUND_FLOOR))
        if points < 1:
            raise AmountTooSmall(
                f"{amount} at the partner's earn rate {partner.earn_rate} is less than one point",
                details={"amount": str(amount), "earn_rate": str(partner.earn_rate)},
            )
        return points

    def reverse(self, movement: PartnerMovement) -> MovementResult:
        """Take back points this partner issued for ``movement.reference``: ``points``, or an
        ``amount`` refunded (at the partner's earn rate, rounded down as the earn was)."""
        partner = self.get(movement.partner_id)
        metadata = {"partner_id": partner.partner_id}
        points = movement.points
        if movement.amount is not None:
            points = self._points_for(partner, movement.amount)
            metadata["partner_amount"] = format(movement.amount.normalize(), "f")
        assert points is not None and movement.reference
        return self._move(partner, movement, MovementType.REVERSE, points, metadata, "reversed")

    def redeem(self, movement: PartnerMovement) -> MovementResult:
        partner = self.get(movement.partner_id)
        assert movement.points is not None
        return self._move(
            partner, movement, MovementType.REDEEM, movement.points, {"partner_id": partner.partner_id}, "redeemed"
        )

    def settlement(self, partner_id: str, from_date: date, to_date: date) -> PartnerSettlement:
        if to_date < from_date or (to_date - from_date).days >= MAX_SETTLEMENT_DAYS:
            raise InvalidRequest.for_fields(
                f"'to' must be on or after 'from', at most {MAX_SETTLEMENT_DAYS} days in all",
                ("to", f"on or after 'from', within {MAX_SETTLEMENT_DAYS} days", "value_error"),
            )
        partner = self.get(partner_id)
        span = [from_date + timedelta(days=n) for n in range((to_date - from_date).days + 1)]
        sides = ("issued", "redeemed", "reversed")
        names = [counter_name(partner_id, day, side) for day in span for side in sides]
        values = self._store.counters(names)
        days = [
            SettlementDay(
                day=day,
                issued_points=values.get(counter_name(partner_id, day, "issued"), 0),
                redeemed_points=values.get(counter_name(partner_id, day, "redeemed"), 0),
                reversed_points=values.get(counter_name(partner_id, day, "reversed"), 0),
            )
            for day in span
        ]
        days = [d for d in days if d.issued_points or d.redeemed_points or d.reversed_points]
        issued = sum(d.issued_points for d in days)
        redeemed = sum(d.redeemed_points for d in days)
        reversed_ = sum(d.reversed_points for d in days)
        return PartnerSettlement(
            partner=partner,
            from_date=from_date,
            to_date=to_date,
            issued_points=issued,
            redeemed_points=redeemed,
            issued_value=(Decimal(issued) / partner.earn_rate).quantize(_CENT, rounding=ROUND_HALF_EVEN),
            redeemed_value=(Decimal(redeemed) * partner.redeem_rate).quantize(_CENT, rounding=ROUND_HALF_EVEN),
            reversed_points=reversed_,
            reversed_value=(Decimal(reversed_) / partner.earn_rate).quantize(_CENT, rounding=ROUND_HALF_EVEN),
            days=days,
        )

    def _move(
        self,
        partner: Partner,
        movement: PartnerMovement,
        kind: MovementType,
        points: int,
        metadata: dict[str, str],
        side: str,
    ) -> MovementResult:
        member_id = self._member_id(movement.member)
        today = self._clock().date()
        reference = f"{PARTNER_KEY_PREFIX}{partner.partner_id}"
        if movement.reference:
            reference = f"{reference}:{movement.reference}"[:128]
        try:
            return self._move_in_ledger(partner, movement, kind, points, metadata, side, member_id, reference, today)
        except IdempotencyKeyReused as reused:
            # Show the partner its own key, not the ledger's namespaced one.
            raise IdempotencyKeyReused(
                reused.message, details={**reused.details, "idempotency_key": movement.idempotency_key}
            ) from None

    def _move_in_ledger(
        self,
        partner: Partner,
        movement: PartnerMovement,
        kind: MovementType,
        points: int,
        metadata: dict[str, str],
        side: str,
        member_id: str,
        reference: str,
        today: date,
    ) -> MovementResult:
        return self._points.move(
            MovementRequest(
                member_id=member_id,
                movement=kind,
                idempotency_key=f"{PARTNER_KEY_PREFIX}{partner.partner_id}:{movement.idempotency_key}",
                points=points,
                reference=reference,
                description=movement.description,
                metadata=metadata,
                actor_key_id=movement.actor_key_id,
                counters=(CounterChange(counter_name(partner.partner_id, today, side), points),),
                minted_key=True,
                capped=False,  # the partner pays for these points: no earning cap cuts them
            )
        )

    def _member_id(self, member: MemberRef) -> str:
        if member.member_id is not None:
            return member.member_id  # the ledger answers 404 for an unknown id
        return self._members.identify(
            external_id=member.external_id, referral_code=member.referral_code, card_code=member.card_code
        ).member_id
