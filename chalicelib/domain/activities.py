"""Engagement activities (a review, a follow, a signup...) earn points under the activity
rules in force, each held to its allowance by a counter in the earn's own transaction. The
allowance is the one of the period holding the activity's ``occurred_at``, which the dating
rule keeps to the last 31 days and at most 5 minutes ahead (chalicelib.domain.dating)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.dating import OccurredAtOutOfRange, check_occurred_at
from chalicelib.domain.errors import BusinessRuleViolation, IdempotencyKeyReused
from chalicelib.domain.ledger import MovementRequest, MovementResult, MovementType

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.rules import RuleService


@dataclass(frozen=True)
class Activity:
    member_id: str
    type: str
    idempotency_key: str
    reference: str | None = None
    description: str | None = None
    occurred_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    actor_key_id: str | None = None
    timezone: str = "UTC"


class ActivityService:
    def __init__(self, rules: RuleService, points: PointsService, clock: Clock = utc_now) -> None:
        self._rules = rules
        self._points = points
        self._clock = clock

    def record(self, activity: Activity) -> MovementResult:
        self._points.balance(activity.member_id)  # 404 for an unknown member before any rule is read
        now = self._clock()
        at = activity.occurred_at or now
        try:
            # The allowance counts in the period of ``at``: only a date the dating rule accepts.
            check_occurred_at(activity.occurred_at, now)
            earning = self._rules.activity(
                activity.member_id, activity.type, at, activity.timezone, self._points.counter
            )
            points: int | None = earning.points
        except (BusinessRuleViolation, OccurredAtOutOfRange):
            # The retry of an activity that used the last allowance is a replay, not a refusal.
            first = self._points.replay(activity.idempotency_key)
            if first is None:
                raise
            earning, points = None, first.uncapped_points
        request = MovementRequest(
            member_id=activity.member_id,
            movement=MovementType.EARN,
            idempotency_key=activity.idempotency_key,
            # A replay asks what the first asked (before any earning cap cut it): same fingerprint.
            points=points,
            reference=activity.reference,
            description=activity.description or f"activity: {activity.type}",
            occurred_at=activity.occurred_at,
            metadata={**activity.metadata, "activity": activity.type},
            actor_key_id=activity.actor_key_id,
            timezone=activity.timezone,
            pending_days=0,
            counters=earning.counters if earning else (),
            breakdown=earning.breakdown if earning else (),
        )
        try:
            return self._points.move(request)
        except IdempotencyKeyReused:
            # The retry of an activity already recorded, which the rules now reward otherwise
            # (its first attempt used an allowance up, a rule started or ended since): the same
            # request if it asks what the first asked, as a retry the rules refuse does above.
            first = self._points.replay(activity.idempotency_key)
            if first is None or first.uncapped_points == request.points:
                raise
            return self._points.move(replace(request, points=first.uncapped_points, counters=(), breakdown=()))
