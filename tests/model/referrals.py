"""Referrals as the model sees them (docs/guides/referrals.md, "The referral program" to
"Completion: exactly once").

* A member enrolled with another's code is a referee: its balance holds the referrer until
  its first qualifying order earn (the version in force at the earn enabled, the order's total
  at least ``min_order_total``), which clears it and freezes the version's terms on the
  referral (the cap's period from the earn's moment). Orders below the minimum, or while the
  program is off, leave it pending.
* After the commit the referrer's reward (a points earn under ``referral:<referee>:referrer``,
  moving the cap counter ``referral:<referrer>:<period>`` within the limit; at the limit the
  referral is ``capped`` and the referrer gets nothing), then the referee's (under
  ``referral:<referee>:referee``; when capped only if the terms say so), then ``completed`` or
  ``capped``. A completion that failed is finished by a replay of the order or by the
  ``complete-referrals`` job: each reward key applies at most once, whoever completes.
* A refund of the qualifying order takes nothing of the rewards back and qualifies nothing
  again (the referral is no longer pending).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from chalicelib.domain.movement_requests import MovementRequest, MovementType
from tests.model.earning import period

PENDING, QUALIFIED, COMPLETED, CAPPED = "pending", "qualified", "completed", "capped"
DESCRIPTIONS = {
    "referrer": "Referral reward: a member you referred made a qualifying order",
    "referee": "Referral reward: welcome, referred member",
}


@dataclass(frozen=True)
class ModelReferral:
    referee_id: str
    referrer_id: str
    status: str = PENDING
    order_id: str | None = None
    earn_key: str | None = None
    qualified_at: datetime | None = None
    #: The terms frozen at qualification.
    referrer_points: int = 0
    referee_points: int = 0
    referee_when_capped: bool = True
    cap_limit: int | None = None
    cap_counter: str | None = None
    #: The reward keys credited so far (each at most once).
    credited: tuple[str, ...] = ()

    def key(self, role: str) -> str:
        return f"referral:{self.referee_id}:{role}"

    def request(self, role: str, timezone: str) -> MovementRequest:
        """The reward's earn as the completion sends it."""
        return MovementRequest(
            member_id=self.referrer_id if role == "referrer" else self.referee_id,
            movement=MovementType.EARN,
            idempotency_key=self.key(role),
            points=self.referrer_points if role == "referrer" else self.referee_points,
            reference=f"referral:{self.referee_id}",
            description=DESCRIPTIONS[role],
            metadata={"referrer_id": self.referrer_id, "referee_id": self.referee_id},
            timezone=timezone,
            pending_days=0,
            minted_key=True,
        )


@dataclass(frozen=True)
class ModelReferralProgram:
    effective_from: datetime
    enabled: bool
    referrer_points: int
    referee_points: int
    min_order_total: Decimal | None
    #: (limit, per) or None.
    cap: tuple[int, str] | None
    referee_when_capped: bool

    def qualifies(self, order_total: Decimal) -> bool:
        return self.enabled and (self.min_order_total is None or order_total >= self.min_order_total)

    def qualified(
        self, referee_id: str, referrer_id: str, request: MovementRequest, now: datetime, zone: str
    ) -> ModelReferral:
        assert request.order is not None
        counter = None
        if self.cap is not None:
            counter = f"referral:{referrer_id}:{period(self.cap[1], now, zone)}"
        return ModelReferral(
            referee_id,
            referrer_id,
            QUALIFIED,
            request.order.order_id,
            request.idempotency_key,
            now,
            self.referrer_points,
            self.referee_points,
            self.referee_when_capped,
            self.cap[0] if self.cap is not None else None,
            counter,
        )


def referral_in_force(versions: list[ModelReferralProgram], at: datetime) -> ModelReferralProgram | None:
    started = [version for version in versions if version.effective_from <= at]
    return max(started, key=lambda version: version.effective_from) if started else None


def finished(referral: ModelReferral, capped: bool) -> ModelReferral:
    return replace(referral, status=CAPPED if capped else COMPLETED)
