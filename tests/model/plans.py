"""Paid plans as the model sees them (docs/guides/plans.md): the catalog, recording paid
periods, cancelling, the lapse job.

* Recording a period (``Idempotency-Key``): a key used before answers its first result (the
  same member and body) or ``idempotency_key_reused``; a reference recorded before answers
  ``already_recorded`` (same member, plan and period) or ``subscription_reference_exists``;
  an unknown plan ``not_found``; a period ending at or before now ``invalid_request``.
* Then, against the subscription the balance holds: one of another plan that has not ended
  ``subscription_active``; of the same plan, a period after a gap ``period_not_contiguous``, one
  that overlaps or touches it ``renewed`` (its span the union; ``recorded`` when nothing
  grows). One that has ended (the job has not lapsed it yet) is renewed (resumed) by a period
  of its plan touching it, else lapsed by this recording; with none held, the newest
  subscription of the plan, if the job lapsed it, is resumed by a period touching it. Else a
  new subscription ``started`` (``invalid_request`` if it starts more than 5 minutes ahead),
  with the plan's join bonus when the member never had that plan's bonus: an earn under
  ``plan-bonus:<plan>:<member>`` (a ``plan`` share, never pending) in the same transaction.
* The balance holds the subscription's grant (its plan's tier and multiplier when its latest
  period was recorded, its span); cancel ends it now (the grant goes; one past its end lapses
  instead), the job lapses the ones past their end. A grant past its end grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from tests.model.tiers import Grant

ACTIVE, CANCELLED, LAPSED = "active", "cancelled", "lapsed"
STARTED, RENEWED, RECORDED, ALREADY_RECORDED = "started", "renewed", "recorded", "already_recorded"
START_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ModelPlan:
    plan_id: str
    name: str
    tier: str | None
    multiplier: Decimal
    join_bonus: int

    def bonus_key(self, member_id: str) -> str:
        return f"plan-bonus:{self.plan_id}:{member_id}"


@dataclass
class ModelSubscription:
    subscription_id: str
    member_id: str
    plan_id: str
    tier: str | None
    multiplier: Decimal
    status: str
    starts_at: datetime
    ends_at: datetime
    join_bonus: int = 0
    #: The order subscriptions were started in (the newest is the member's latest).
    number: int = 0

    def grant(self) -> Grant:
        return Grant(self.subscription_id, self.plan_id, self.tier, self.multiplier, self.starts_at, self.ends_at)

    def status_at(self, at: datetime) -> str:
        return LAPSED if self.status == ACTIVE and self.ends_at <= at else self.status

    def shown(self) -> tuple[object, ...]:
        return (
            self.subscription_id,
            self.member_id,
            self.plan_id,
            self.tier,
            self.multiplier,
            self.status,
            self.starts_at,
            self.ends_at,
            self.join_bonus,
        )


@dataclass(frozen=True)
class PeriodAsked:
    member_id: str
    plan_id: str
    start: datetime
    end: datetime
    reference: str


@dataclass(frozen=True)
class Recorded:
    """What a recording answers: a refusal, or its outcome and the subscription it wrote."""

    code: str
    outcome: str | None = None
    subscription: ModelSubscription | None = None
    lapsing: ModelSubscription | None = None
    bonus: int = 0
    #: A key used before with the same request: its first answer (outcome, subscription id).
    replay_of: tuple[str, str] | None = None


@dataclass
class PlanBook:
    """A tenant's plan catalog and subscriptions, beside its ledger model."""

    plans: dict[str, ModelPlan] = field(default_factory=dict)
    subscriptions: dict[str, ModelSubscription] = field(default_factory=dict)
    #: Billing references recorded: the period asked, and the subscription it went to.
    references: dict[str, tuple[PeriodAsked, str]] = field(default_factory=dict)
    #: Idempotency keys of recordings: the period asked, the outcome, the subscription id.
    keys: dict[str, tuple[PeriodAsked, str, str]] = field(default_factory=dict)
    started: int = 0

    def of(self, member_id: str) -> list[ModelSubscription]:
        return sorted(
            (s for s in self.subscriptions.values() if s.member_id == member_id), key=lambda s: s.number, reverse=True
        )

    def record(self, asked: PeriodAsked, key: str, grant: Grant | None, bonus_paid: bool, now: datetime) -> Recorded:
        """What recording ``asked`` under ``key`` answers for a member whose balance holds
        ``grant`` (``bonus_paid``: the plan's join bonus was credited to them before). A
        ``started`` subscription's id is ``"(new)"`` until the service names it."""
        if key in self.keys:
            first, outcome, subscription_id = self.keys[key]
            return (
                Recorded("ok", replay_of=(outcome, subscription_id))
                if first == asked
                else Recorded("idempotency_key_reused")
            )
        if asked.reference in self.references:
            first, subscription_id = self.references[asked.reference]
            if first != asked:
                return Recorded("subscription_reference_exists")
            return Recorded("ok", ALREADY_RECORDED, self.subscriptions[subscription_id])
        plan = self.plans.get(asked.plan_id)
        if plan is None:
            return Recorded("not_found")
        if asked.end <= asked.start or asked.end <= now:
            return Recorded("invalid_request")
        current = self.subscriptions[grant.subscription_id] if grant is not None else None
        if current is not None and current.status != ACTIVE:
            current = None
        if current is not None and current.ends_at > now:
            if current.plan_id != plan.plan_id:
                return Recorded("subscription_active")
            span = _merge(current, asked)
            if span is None:
                return Recorded("period_not_contiguous")
            grown = span != (current.starts_at, current.ends_at)
            return Recorded("ok", RENEWED if grown else RECORDED, _extended(current, plan, span))
        lapsing = None
        if current is not None:  # ended, not lapsed yet
            span = _merge(current, asked)
            if current.plan_id == plan.plan_id and span is not None:
                return Recorded("ok", RENEWED, _extended(current, plan, span))
            lapsing = replace(current, status=LAPSED)
        else:
            mine = [s for s in self.of(asked.member_id) if s.plan_id == plan.plan_id]
            if mine and mine[0].status == LAPSED and (span := _merge(mine[0], asked)) is not None:
                return Recorded("ok", RENEWED, _extended(mine[0], plan, span))
        if asked.start > now + START_SKEW:
            return Recorded("invalid_request")
        bonus = plan.join_bonus if plan.join_bonus and not bonus_paid else 0
        started = ModelSubscription(
            "(new)", asked.member_id, plan.plan_id, plan.tier, plan.multiplier, ACTIVE, asked.start, asked.end, bonus
        )
        return Recorded("ok", STARTED, started, lapsing, bonus)

    def apply(self, asked: PeriodAsked, key: str, recorded: Recorded) -> None:
        assert recorded.subscription is not None and recorded.outcome is not None
        subscription = recorded.subscription
        if recorded.outcome == STARTED:
            self.started += 1
            subscription.number = self.started
        self.subscriptions[subscription.subscription_id] = subscription
        if recorded.lapsing is not None:
            self.subscriptions[recorded.lapsing.subscription_id] = recorded.lapsing
        if recorded.outcome != ALREADY_RECORDED:
            self.references[asked.reference] = (asked, subscription.subscription_id)
            self.keys[key] = (asked, recorded.outcome, subscription.subscription_id)


def _merge(subscription: ModelSubscription, asked: PeriodAsked) -> tuple[datetime, datetime] | None:
    if asked.start > subscription.ends_at or asked.end < subscription.starts_at:
        return None
    return min(subscription.starts_at, asked.start), max(subscription.ends_at, asked.end)


def _extended(subscription: ModelSubscription, plan: ModelPlan, span: tuple[datetime, datetime]) -> ModelSubscription:
    return replace(
        subscription, tier=plan.tier, multiplier=plan.multiplier, status=ACTIVE, starts_at=span[0], ends_at=span[1]
    )
