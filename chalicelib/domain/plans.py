"""Paid membership: the plans a brand sells, and its members' subscriptions to them. Pure.

A **plan** (``premium``: a yearly fee) grants a tier of the tier program and/or its own extra
earning multiplier and perks, and may credit a join bonus. The API never takes a payment:
the brand's billing reports each paid **period** (``period_start`` .. ``period_end``, with its
invoice or charge id as ``reference``), and the member's **subscription** covers the periods
reported, merged: a period that overlaps or touches the subscription's span extends it.

What the earn evaluation needs is kept on the member's balance item, as a ``PlanGrant`` (the
subscription, its plan, the tier and multiplier it grants, its start and end), and is written
in the same transaction as the subscription itself, whatever changes it: a recording, a
cancellation, a lapse. An earn reads the balance strongly anyway, so it sees the plan with no
extra read, and ``active_grant`` checks the end time itself: a plan past its end grants
nothing, whether or not the lapse job has run.

The member's **effective tier** is the higher of the tier they earned and the tier the plan
grants (ranked by the tier program in force); the earned tier, its review and its progress
are kept as they are, so the member finds them again when the plan ends.

Everything here is pure: the service (chalicelib.domain.subscriptions) reads and writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.domain import fingerprints
from chalicelib.domain.clock import isoformat
from chalicelib.domain.errors import (
    InvalidRequest,
    PeriodNotContiguous,
    SubscriptionActive,
)
from chalicelib.domain.ids import ulid

if TYPE_CHECKING:
    from chalicelib.domain.entries import Balance
    from chalicelib.domain.tiers import TierProgram

PLAN_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$")
SUBSCRIPTION_ID_PATTERN = re.compile(r"^sub_[0-9A-HJKMNP-TV-Z]{26}$")
MAX_PLANS = 20
MAX_PERKS = 20
MAX_MULTIPLIER = Decimal(10)
MAX_JOIN_BONUS = 1_000_000
#: One reported period lasts at most this long (five years).
MAX_PERIOD = timedelta(days=1830)
#: How far in the future a *new* subscription may start (clocks of billing and API differ).
#: Later starts are refused: a subscription starts when it is recorded, with its events.
START_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
#: Periods kept on the subscription item (all of them stay findable by reference).
RECENT_PERIODS = 12
#: The ledger key of a plan's join bonus: once per member and plan, ever.
BONUS_KEY_PREFIX = "plan-bonus:"

# Event types (the values of chalicelib.domain.events.EventType; strings here, so this module
# needs nothing of the ledger's at run time).
SUBSCRIPTION_STARTED = "subscription.started"
SUBSCRIPTION_RENEWED = "subscription.renewed"
SUBSCRIPTION_LAPSED = "subscription.lapsed"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
TIER_CHANGED = "tier.changed"


# --- errors --------------------------------------------------------------------------------------


class PlanWriteStale(Exception):
    """The member's plan or tier changed since the write was decided: decide again."""


class PlanWriteRefused(Exception):
    """A condition of a plan write failed (a request key, a reference, a subscription version,
    an event already written): something else got there first; read again and decide again."""


# --- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    #: A tier of the tier program; None: the plan grants no tier.
    tier: str | None = None
    #: Extra earning multiplier of order earns (1: none), a share of its own in the breakdown.
    multiplier: Decimal = Decimal(1)
    perks: tuple[str, ...] = ()
    #: Points credited when a member first subscribes to the plan (once per member and plan).
    join_bonus: int = 0

    def bonus_key(self, member_id: str) -> str:
        return f"{BONUS_KEY_PREFIX}{self.plan_id}:{member_id}"


@dataclass(frozen=True)
class PlanCatalog:
    plans: tuple[Plan, ...] = ()
    updated_at: datetime | None = None

    def get(self, plan_id: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.plan_id == plan_id), None)


def check_catalog(plans: Sequence[Plan], tiers: TierProgram | None) -> None:
    """InvalidRequest naming every offending field; ``tiers`` is the tier program in force."""
    problems: list[tuple[str, str]] = []
    if len(plans) > MAX_PLANS:
        problems.append(("plans", f"at most {MAX_PLANS} plans"))
    ids = [plan.plan_id for plan in plans]
    if repeated := sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(("plans", f"plan ids must be unique: {repeated}"))
    for index, plan in enumerate(plans):
        where = f"plans.{index}"
        if not PLAN_ID_PATTERN.fullmatch(plan.plan_id):
            problems.append((f"{where}.plan_id", "1-32 lowercase letters, digits, '-' and '_'"))
        if plan.tier is not None:
            if tiers is None:
                problems.append((f"{where}.tier", "no tier program is in force: configure tiers first"))
            elif tiers.tier(plan.tier) is None:
                names = [tier.name for tier in tiers.tiers]
                problems.append((f"{where}.tier", f"not a tier of the tier program in force (tiers: {names})"))
        if not Decimal(1) <= plan.multiplier <= MAX_MULTIPLIER:
            problems.append((f"{where}.multiplier", f"between 1 and {MAX_MULTIPLIER}"))
        if len(plan.perks) > MAX_PERKS:
            problems.append((f"{where}.perks", f"at most {MAX_PERKS} perks"))
        if not 0 <= plan.join_bonus <= MAX_JOIN_BONUS:
            problems.append((f"{where}.join_bonus", f"between 0 and {MAX_JOIN_BONUS}"))
        if plan.tier is None and plan.multiplier == 1 and not plan.perks:
            problems.append((where, "a plan grants a tier, a multiplier above 1 or perks"))
    if problems:
        raise InvalidRequest.for_fields("invalid plans", *((p, m, "value_error") for p, m in problems))


# --- what the balance holds, and the effective tier ------------------------------------------------


@dataclass(frozen=True)
class PlanGrant:
    """The member's subscription in force as the balance item holds it: what an earn needs."""

    subscription_id: str
    plan_id: str
    tier: str | None
    multiplier: Decimal
    starts_at: datetime
    ends_at: datetime

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def active_grant(grant: PlanGrant | None, at: datetime) -> PlanGrant | None:
    """The grant if it is in force at ``at``: past its end it grants nothing, job or not."""
    return grant if grant is not None and grant.active_at(at) else None


def effective_tier(
    program: TierProgram | None, earned: str | None, grant: PlanGrant | None, at: datetime
) -> str | None:
    """The higher of the earned tier and the tier the plan in force at ``at`` grants, ranked by
    ``program``. A granted tier the program does not have (tiers changed since) grants nothing."""
    grant = active_grant(grant, at)
    if program is None or grant is None or grant.tier is None:
        return earned
    granted = program.rank(grant.tier)
    if granted <= 0:
        return earned
    return grant.tier if granted > program.rank(earned) else earned


def recorded_tier(program: TierProgram | None, earned: str | None, grant: PlanGrant | None, at: datetime) -> str | None:
    """The effective tier as the *recorded* grant has it: as if in force at ``at`` (clamped into
    its span). Events describe changes of this one, so that the feed tells a consistent story:
    a plan that ended is reported lapsed when its lapse is recorded, not before."""
    if grant is None:
        return earned
    moment = max(grant.starts_at, min(at, grant.ends_at - _TICK))
    return effective_tier(program, earned, grant, moment)


# --- periods and subscriptions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A paid period as the billing reported it."""

    reference: str
    start: datetime
    end: datetime
    recorded_at: datetime


def merge(span: tuple[datetime, datetime], start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The span covering both, when [start, end) overlaps or touches ``span``; None for a gap."""
    if start > span[1] or end < span[0]:
        return None
    return min(span[0], start), max(span[1], end)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    member_id: str
    plan_id: str
    #: What the plan granted when its latest period was recorded (a renewal takes the plan's
    #: definition then; a plan changed or removed later does not change a paid period).
    tier: str | None
    multiplier: Decimal
    status: SubscriptionStatus
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime
    #: Optimistic concurrency: every write puts ``version`` only over ``version - 1``.
    version: int = 1
    periods: tuple[Period, ...] = ()
    period_count: int = 0
    cancelled_at: datetime | None = None
    lapsed_at: datetime | None = None
    #: The join bonus credited when it started (0: none).
    join_bonus: int = 0

    @property
    def span(self) -> tuple[datetime, datetime]:
        return self.starts_at, self.ends_at

    def grant(self) -> PlanGrant:
        return PlanGrant(self.subscription_id, self.plan_id, self.tier, self.multiplier, self.starts_at, self.ends_at)

    def status_at(self, at: datetime) -> SubscriptionStatus:
        """Past its end a subscription has lapsed, even before the job records it."""
        if self.status is SubscriptionStatus.ACTIVE and self.ends_at <= at:
            return SubscriptionStatus.LAPSED
        return self.status

    @classmethod
    def start(cls, subscription_id: str, member_id: str, plan: Plan, period: Period, now: datetime) -> Subscription:
        return cls(
            subscription_id=subscription_id,
            member_id=member_id,
            plan_id=plan.plan_id,
            tier=plan.tier,
            multiplier=plan.multiplier,
            status=SubscriptionStatus.ACTIVE,
            starts_at=period.start,
            ends_at=period.end,
            created_at=now,
            updated_at=now,
            periods=(period,),
            period_count=1,
        )

    def extended(self, plan: Plan, period: Period, span: tuple[datetime, datetime], now: datetime) -> Subscription:
        """With ``period`` recorded and the span merged; active again (a renewal)."""
        return replace(
            self,
            tier=plan.tier,
            multiplier=plan.multiplier,
            status=SubscriptionStatus.ACTIVE,
            starts_at=span[0],
            ends_at=span[1],
            updated_at=now,
            version=self.version + 1,
            periods=(*self.periods, period)[-RECENT_PERIODS:],
            period_count=self.period_count + 1,
            lapsed_at=None,
        )

    def lapsed(self, now: datetime) -> Subscription:
        return replace(
            self, status=SubscriptionStatus.LAPSED, lapsed_at=self.ends_at, updated_at=now, version=self.version + 1
        )

    def cancelled(self, now: datetime) -> Subscription:
        return replace(
            self, status=SubscriptionStatus.CANCELLED, cancelled_at=now, updated_at=now, version=self.version + 1
        )


def new_subscription_id(at: datetime) -> str:
    return f"sub_{ulid(at)}"


# --- recording a period: the decision --------------------------------------------------------------


class Outcome(StrEnum):
    #: A new subscription (its join bonus, if any, credited in the same transaction).
    STARTED = "started"
    #: The member's subscription was extended (or, having lapsed, resumed) by the period.
    RENEWED = "renewed"
    #: The period lies within what the subscription covers already: recorded, nothing extended.
    RECORDED = "recorded"
    #: The reference was recorded before, with the same member, plan and period: nothing written.
    ALREADY_RECORDED = "already_recorded"


@dataclass(frozen=True)
class PeriodRequest:
    plan_id: str
    period_start: datetime
    period_end: datetime
    reference: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "period_start", self.period_start.astimezone(UTC))
        object.__setattr__(self, "period_end", self.period_end.astimezone(UTC))

    def fingerprint(self, member_id: str) -> str:
        canonical = {
            "member_id": member_id,
            "plan_id": self.plan_id,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "reference": self.reference,
        }
        return fingerprints.fingerprint(canonical)


def check_period(request: PeriodRequest, now: datetime) -> None:
    """400s that need no storage: the period's order, length and end."""
    problems: list[tuple[str, str]] = []
    if request.period_start < EARLIEST:
        problems.append(("period_start", "must be after 2000-01-01"))
    if request.period_end <= request.period_start:
        problems.append(("period_end", "must be after period_start"))
    elif request.period_end - request.period_start > MAX_PERIOD:
        problems.append(("period_end", f"a period lasts at most {MAX_PERIOD.days} days"))
    if request.period_end <= now:
        problems.append(("period_end", "must be in the future: a period that has ended grants nothing"))
    if problems:
        raise InvalidRequest.for_fields("invalid period", *((p, m, "value_error") for p, m in problems))


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    subscription: Subscription
    #: The member's previous subscription, past its end but not lapsed yet: lapsed by this write.
    lapsing: Subscription | None = None
    #: A renewal of a subscription the job had lapsed already (it is active again).
    resumed: bool = False


def decide(
    *,
    member_id: str,
    plan: Plan,
    period: Period,
    current: Subscription | None,
    lapsed: Subscription | None,
    new_id: str,
    now: datetime,
) -> Decision:
    """What recording ``period`` of ``plan`` does.

    ``current`` is the member's active subscription (the one the balance holds), ``lapsed`` the
    latest subscription of ``plan`` the job has lapsed. A period that overlaps or touches the
    span of the member's subscription to the same plan extends it, even one that has just
    ended (a late renewal resumes it); a cancelled subscription never comes back. A period of
    another plan, or after a gap, while the subscription has not ended is a conflict.
    """
    if current is not None and current.ends_at > now:
        if current.plan_id != plan.plan_id:
            raise SubscriptionActive(
                f"the member's subscription {current.subscription_id} to plan {current.plan_id!r} runs until "
                f"{isoformat(current.ends_at)}; cancel it before recording another plan",
                details={
                    "subscription_id": current.subscription_id,
                    "plan_id": current.plan_id,
                    "ends_at": isoformat(current.ends_at),
                },
            )
        span = merge(current.span, period.start, period.end)
        if span is None:
            raise PeriodNotContiguous(
                f"the period starts after subscription {current.subscription_id} ends "
                f"({isoformat(current.ends_at)}): record it once that has ended, or close the gap",
                details={"subscription_id": current.subscription_id, "ends_at": isoformat(current.ends_at)},
            )
        outcome = Outcome.RENEWED if span != current.span else Outcome.RECORDED
        return Decision(outcome, current.extended(plan, period, span, now))
    lapsing = None
    if current is not None:  # ended, the job has not lapsed it yet
        span = merge(current.span, period.start, period.end)
        if current.plan_id == plan.plan_id and span is not None:
            return Decision(Outcome.RENEWED, current.extended(plan, period, span, now), resumed=True)
        lapsing = current.lapsed(now)
    elif lapsed is not None and (span := merge(lapsed.span, period.start, period.end)) is not None:
        return Decision(Outcome.RENEWED, lapsed.extended(plan, period, span, now), resumed=True)
    if period.start > now + START_SKEW:
        raise InvalidRequest.for_fields(
            "a new subscription starts when it is recorded: record this period once it has started",
            ("period_start", "at most 5 minutes in the future for a new subscription", "value_error"),
        )
    return Decision(Outcome.STARTED, Subscription.start(new_id, member_id, plan, period, now), lapsing=lapsing)


# --- what a change writes --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEvent:
    """An event of the feed (a notice item), once per type, member and subject."""

    event_id: str
    type: str
    member_id: str
    subject: str
    created_at: datetime
    data: dict[str, str | int | bool | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PeriodRecord:
    """A reported period under its billing reference (unique in the tenant)."""

    reference: str
    member_id: str
    subscription_id: str
    plan_id: str
    period_start: datetime
    period_end: datetime
    recorded_at: datetime

    def same_request(self, member_id: str, request: PeriodRequest) -> bool:
        return (self.member_id, self.plan_id, self.period_start, self.period_end) == (
            member_id,
            request.plan_id,
            request.period_start,
            request.period_end,
        )


@dataclass(frozen=True)
class Recording:
    """The answer to a recording: what it did, the subscription right after it."""

    outcome: Outcome
    subscription: Subscription
    recorded_at: datetime
    bonus_points: int = 0
    bonus_transaction_id: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class RequestRecord:
    """An Idempotency-Key's first result (the key's own namespace: ``SUBREQ#<key>``)."""

    idempotency_key: str
    fingerprint: str
    member_id: str
    recording: Recording


@dataclass(frozen=True)
class PlanWrite:
    """Everything one change of a member's plan writes, in one transaction with the balance's
    grant: the subscriptions (each over its previous version), the period under its reference,
    the request's first result, the events. A join bonus carries it in its ledger transaction."""

    member_id: str
    #: What the decision was based on: the balance's tier_rev and grant when it was read.
    read_tier_rev: int
    read_grant: PlanGrant | None
    #: The balance's grant after the write (None: no plan).
    grant: PlanGrant | None
    subscriptions: tuple[Subscription, ...]
    period: PeriodRecord | None = None
    request: RequestRecord | None = None
    events: tuple[PlanEvent, ...] = ()

    def apply(self, read: Balance, after: Balance) -> Balance:
        """``after`` with the new grant (and a new tier_rev: movements racing it re-read).
        PlanWriteStale if ``read`` is not the balance the write was decided on."""
        if read.tier_rev != self.read_tier_rev or read.plan != self.read_grant:
            raise PlanWriteStale(self.member_id)
        return replace(after, plan=self.grant, tier_rev=read.tier_rev + 1)


class EventClock:
    """Event ids for one write, one millisecond apart so that the feed keeps their order."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._count = 0

    def next_id(self) -> str:
        at = self._now + timedelta(milliseconds=self._count)
        self._count += 1
        return f"ntc_{ulid(at)}"


def subscription_event(
    clock: EventClock, kind: str, subscription: Subscription, now: datetime, **extra: str | int | bool | None
) -> PlanEvent:
    subject = subscription.subscription_id
    if kind == SUBSCRIPTION_RENEWED:
        subject += f"#{extra.get('reference')}"
    elif kind == SUBSCRIPTION_LAPSED:
        subject += f"#{isoformat(subscription.ends_at)}"
    data: dict[str, str | int | bool | None] = {
        "member_id": subscription.member_id,
        "subscription_id": subscription.subscription_id,
        "plan_id": subscription.plan_id,
        "tier": subscription.tier,
        "multiplier": format(subscription.multiplier, "f"),
        "starts_at": isoformat(subscription.starts_at),
        "ends_at": isoformat(subscription.ends_at),
        **extra,
    }
    return PlanEvent(clock.next_id(), kind, subscription.member_id, subject, now, data)


def tier_change_event(
    clock: EventClock,
    program: TierProgram | None,
    subscription: Subscription,
    before: str | None,
    after: str | None,
    *,
    reason: str,
    now: datetime,
) -> PlanEvent | None:
    """``tier.changed`` when the plan changes the member's effective tier (None when it does not)."""
    if before == after or program is None:
        return None
    direction = "upgrade" if program.rank(after) > program.rank(before) else "downgrade"
    event_id = clock.next_id()
    return PlanEvent(
        event_id,
        TIER_CHANGED,
        subscription.member_id,
        event_id,
        now,
        {
            "member_id": subscription.member_id,
            "from_tier": before,
            "to_tier": after,
            "direction": direction,
            "reason": reason,
            "expires_at": isoformat(subscription.ends_at) if reason in ("plan_started", "plan_renewed") else None,
            "metric": None,
            "qualifying": None,
            "plan_id": subscription.plan_id,
            "subscription_id": subscription.subscription_id,
        },
    )
