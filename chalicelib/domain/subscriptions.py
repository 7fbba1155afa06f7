"""Paid membership, the service: the plan catalog, recording paid periods, cancelling, lapsing.

Every change of a member's plan is decided on a strongly consistent read of the balance (its
grant and tier_rev) and of the subscription, then written in one conditional transaction
(``PlanWrite``): the balance's grant (only if its tier_rev is still the one read), the
subscriptions (each only over the version read), the period (only if its reference is new),
the Idempotency-Key's first result (only if the key is new) and the events (once per
subject). A condition that fails means something else changed first: the service reads
again and decides again, so nothing is applied twice and nothing is lost. A join bonus is a
ledger movement that carries the same write in its own transaction.

The pure rules are in chalicelib.domain.plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from chalicelib.domain.audit import SYSTEM, AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import IdempotencyKeyReused, MemberErased, NotFound, ReferenceRecorded, RetryLater
from chalicelib.domain.ids import MEMBER_ID_PATTERN
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.plans import (
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_ID_PATTERN,
    SUBSCRIPTION_LAPSED,
    SUBSCRIPTION_RENEWED,
    SUBSCRIPTION_STARTED,
    EventClock,
    Outcome,
    Period,
    PeriodRecord,
    PeriodRequest,
    Plan,
    PlanCatalog,
    PlanEvent,
    PlanGrant,
    PlanWrite,
    PlanWriteRefused,
    PlanWriteStale,
    Recording,
    RequestRecord,
    Subscription,
    SubscriptionStatus,
    active_grant,
    check_catalog,
    check_period,
    decide,
    effective_tier,
    new_subscription_id,
    recorded_tier,
    subscription_event,
    tier_change_event,
)
from chalicelib.domain.ports import BalanceChanged
from chalicelib.domain.rules import Share

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chalicelib.domain.entries import Balance
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import LedgerStore, Page
    from chalicelib.domain.tiers import TierProgram, TierService, TierStatus

#: Decisions made again after a lost race, before the caller is told to retry (503).
MAX_ATTEMPTS = 16


class PlanCatalogStore(Protocol):
    def get(self) -> PlanCatalog | None: ...
    def put(self, catalog: PlanCatalog, audit: AuditEntry | None = None) -> None: ...


class SubscriptionStore(Protocol):
    def get(self, member_id: str, subscription_id: str) -> Subscription | None:
        """The subscription, read strongly."""

    def list(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Subscription]:
        """The member's subscriptions, newest first."""

    def latest_lapsed(self, member_id: str, plan_id: str) -> Subscription | None:
        """The member's latest subscription of the plan that the job lapsed (strongly read)."""

    def get_period(self, reference: str) -> PeriodRecord | None: ...
    def get_request(self, idempotency_key: str) -> RequestRecord | None: ...
    def apply(self, previous: Balance, write: PlanWrite) -> None:
        """The write and the balance's grant in one transaction, only if the balance's tier_rev
        is still ``previous.tier_rev``: else BalanceChanged; PlanWriteRefused when another of
        its conditions fails."""

    def due(self, as_of: datetime) -> Iterator[tuple[str, str]]:
        """(member id, subscription id) of active subscriptions ending at or before ``as_of``,
        through a sparse index (never a scan)."""


@dataclass(frozen=True)
class PlanStatus:
    """The plan in force for the member view."""

    grant: PlanGrant
    #: The catalog's plan (its name and perks now); None if it was removed since.
    plan: Plan | None
    effective_tier: str | None


class SubscriptionService:
    def __init__(
        self,
        store: SubscriptionStore,
        catalog: PlanCatalogStore,
        ledger: LedgerStore,
        points: PointsService,
        tiers: TierService,
        *,
        timezone: str,
        clock: Clock = utc_now,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor or Auditor(SYSTEM, clock)
        self._store = store
        self._catalog = catalog
        self._ledger = ledger
        self._points = points
        self._tiers = tiers
        self._timezone = timezone
        self._clock = clock

    # --- the catalog ----------------------------------------------------------------------------

    def configure(self, plans: list[Plan]) -> PlanCatalog:
        """Replace the plans. Subscriptions keep what their recorded periods granted."""
        now = self._clock()
        check_catalog(plans, self._tiers.in_force(now))
        catalog = PlanCatalog(tuple(plans), now)
        before = self._catalog.get()
        self._catalog.put(
            catalog,
            self._auditor.entry(AuditAction.PLANS_UPDATED, "plans", "plans", before=before, after=catalog, at=now),
        )
        return catalog

    def catalog(self) -> PlanCatalog:
        return self._catalog.get() or PlanCatalog()

    # --- the member view ------------------------------------------------------------------------

    def status(self, balance: Balance, tiers: TierStatus | None, at: datetime | None = None) -> PlanStatus | None:
        """The plan in force at ``at`` (now), if any, and the member's effective tier."""
        moment = at or self._clock()
        grant = active_grant(balance.plan, moment)
        if grant is None:
            return None
        earned = tiers.state.tier if tiers is not None else balance.tier
        program = tiers.program if tiers is not None else None
        return PlanStatus(grant, self.catalog().get(grant.plan_id), effective_tier(program, earned, grant, moment))

    # --- subscriptions ----------------------------------------------------------------------------

    def list(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Subscription]:
        self._balance(member_id)  # 404 for an unknown member
        return self._store.list(member_id, limit=limit, cursor=cursor)

    def record(self, member_id: str, request: PeriodRequest, idempotency_key: str) -> Recording:
        """Record a paid period (see ``plans.decide``), exactly once per Idempotency-Key."""
        fingerprint = request.fingerprint(member_id)
        for _ in range(MAX_ATTEMPTS):
            stored = self._store.get_request(idempotency_key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was already used with a different request",
                        details={
                            "idempotency_key": idempotency_key,
                            "subscription_id": stored.recording.subscription.subscription_id,
                        },
                    )
                return replace(stored.recording, replayed=True)
            balance = self._balance(member_id, consistent=True)
            known = self._store.get_period(request.reference)
            if known is not None:
                if self._store.get_request(idempotency_key) is not None:
                    continue  # this key's first attempt landed since the first look: answer its result
                return self._known_reference(known, member_id, request)
            plan = self.catalog().get(request.plan_id)
            if plan is None:
                raise NotFound(f"plan {request.plan_id!r} not found", details={"plan_id": request.plan_id})
            now = self._clock()
            check_period(request, now)
            try:
                return self._record(balance, plan, request, idempotency_key, fingerprint, now)
            except (BalanceChanged, PlanWriteStale, PlanWriteRefused):
                continue  # something changed first: read again, decide again
        raise RetryLater("the member's subscription is changing too fast")

    def _known_reference(self, known: PeriodRecord, member_id: str, request: PeriodRequest) -> Recording:
        if not known.same_request(member_id, request):
            raise ReferenceRecorded(
                f"billing reference {request.reference!r} was recorded for another period",
                details={"reference": request.reference},
            )
        subscription = self._store.get(member_id, known.subscription_id)
        if subscription is None:  # written in the same transaction as the reference: impossible
            raise RetryLater("the subscription is not readable yet")
        return Recording(Outcome.ALREADY_RECORDED, subscription, self._clock())

    def _record(
        self, balance: Balance, plan: Plan, request: PeriodRequest, key: str, fingerprint: str, now: datetime
    ) -> Recording:
        member_id = balance.member_id
        current = self._store.get(member_id, balance.plan.subscription_id) if balance.plan else None
        if current is not None and current.status is not SubscriptionStatus.ACTIVE:
            current = None  # the balance and its subscription are written together: impossible
        lapsed = None if current is not None else self._store.latest_lapsed(member_id, plan.plan_id)
        period = Period(request.reference, request.period_start, request.period_end, now)
        decision = decide(
            member_id=member_id,
            plan=plan,
            period=period,
            current=current,
            lapsed=lapsed,
            new_id=new_subscription_id(now),
            now=now,
        )
        subscription = decision.subscription
        bonus = 0
        if decision.outcome is Outcome.STARTED and plan.join_bonus:
            if self._ledger.get_entry(plan.bonus_key(member_id)) is None:
                bonus = plan.join_bonus
                subscription = replace(subscription, join_bonus=bonus)
        program, earned = self._earned(balance, now)
        before = recorded_tier(program, earned, balance.plan, now)
        after = recorded_tier(program, earned, subscription.grant(), now)
        clock = EventClock(now)
        events: list[PlanEvent | None] = []
        if decision.lapsing is not None:  # the previous subscription's lapse, recorded now
            events.append(subscription_event(clock, SUBSCRIPTION_LAPSED, decision.lapsing, now))
            lapse = tier_change_event(clock, program, decision.lapsing, before, earned, reason="plan_lapsed", now=now)
            events.append(lapse)
            before = earned
        if decision.outcome is Outcome.STARTED:
            events.append(
                subscription_event(
                    clock, SUBSCRIPTION_STARTED, subscription, now, reference=request.reference, join_bonus=bonus
                )
            )
        elif decision.outcome is Outcome.RENEWED:
            events.append(
                subscription_event(
                    clock,
                    SUBSCRIPTION_RENEWED,
                    subscription,
                    now,
                    reference=request.reference,
                    period_start=isoformat(request.period_start),
                    period_end=isoformat(request.period_end),
                    resumed=decision.resumed,
                )
            )
        reason = "plan_started" if decision.outcome is Outcome.STARTED else "plan_renewed"
        events.append(tier_change_event(clock, program, subscription, before, after, reason=reason, now=now))
        recording = Recording(decision.outcome, subscription, now, bonus_points=bonus)
        write = PlanWrite(
            member_id=member_id,
            read_tier_rev=balance.tier_rev,
            read_grant=balance.plan,
            grant=subscription.grant(),
            subscriptions=(subscription,) + ((decision.lapsing,) if decision.lapsing else ()),
            period=PeriodRecord(
                request.reference,
                member_id,
                subscription.subscription_id,
                plan.plan_id,
                request.period_start,
                request.period_end,
                now,
            ),
            request=RequestRecord(key, fingerprint, member_id, recording),
            events=tuple(event for event in events if event is not None),
        )
        if not bonus:
            self._store.apply(balance, write)
            return recording
        try:
            result = self._points.move(
                MovementRequest(
                    member_id=member_id,
                    movement=MovementType.EARN,
                    idempotency_key=plan.bonus_key(member_id),
                    points=bonus,
                    reference=f"subscription:{subscription.subscription_id}",
                    description=f"Join bonus: {plan.name}",
                    metadata={"plan_id": plan.plan_id, "subscription_id": subscription.subscription_id},
                    timezone=self._timezone,
                    pending_days=0,
                    breakdown=(Share("plan", f"{plan.plan_id} join bonus", bonus, f"plan:{plan.plan_id}"),),
                    minted_key=True,
                    plan=write,
                )
            )
        except IdempotencyKeyReused:  # another recording credited this plan's bonus first
            raise PlanWriteStale(member_id) from None
        if result.replayed:  # the member got this plan's bonus meanwhile; the write did not happen
            raise PlanWriteStale(member_id)
        return replace(recording, bonus_transaction_id=result.entry.transaction_id)

    def cancel(self, member_id: str, subscription_id: str) -> Subscription:
        """End the subscription now: its benefits stop at once (its join bonus stays). A
        subscription that has ended already is answered as it is."""
        for _ in range(MAX_ATTEMPTS):
            balance = self._balance(member_id, consistent=True)
            subscription = self._subscription(member_id, subscription_id)
            now = self._clock()
            if subscription.status is not SubscriptionStatus.ACTIVE:
                return subscription
            if subscription.ends_at <= now:  # ended before the job saw it: it lapsed
                ended, kind, reason = subscription.lapsed(now), SUBSCRIPTION_LAPSED, "plan_lapsed"
            else:
                ended, kind, reason = subscription.cancelled(now), SUBSCRIPTION_CANCELLED, "plan_cancelled"
            try:
                self._end(balance, subscription, ended, kind, reason, at=now, now=now)
            except (BalanceChanged, PlanWriteStale, PlanWriteRefused):
                continue
            return ended
        raise RetryLater("the member's subscription is changing too fast")

    def lapse(self, member_id: str, subscription_id: str, as_of: datetime) -> str:
        """The job's unit: lapse one subscription that ended by ``as_of``: 'lapsed' or 'skipped'."""
        for _ in range(MAX_ATTEMPTS):
            known = MEMBER_ID_PATTERN.fullmatch(member_id)
            balance = self._ledger.get_balance(member_id, consistent=True) if known else None
            subscription = self._store.get(member_id, subscription_id) if balance is not None else None
            if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
                return "skipped"
            if subscription.ends_at > as_of:
                return "skipped"
            now = self._clock()
            lapsed = subscription.lapsed(now)
            try:
                self._end(balance, subscription, lapsed, SUBSCRIPTION_LAPSED, "plan_lapsed", at=as_of, now=now)
            except (BalanceChanged, PlanWriteStale, PlanWriteRefused):
                continue
            return "lapsed"
        raise RetryLater(f"subscription {subscription_id!r} is changing too fast to lapse")

    def _end(
        self,
        balance: Balance | None,
        subscription: Subscription,
        ended: Subscription,
        kind: str,
        reason: str,
        *,
        at: datetime,
        now: datetime,
    ) -> None:
        assert balance is not None
        holds = balance.plan is not None and balance.plan.subscription_id == subscription.subscription_id
        grant = None if holds else balance.plan
        program, earned = self._earned(balance, at)
        # What the plan granted while it was in force, against what the member keeps after it.
        before = recorded_tier(program, earned, subscription.grant(), at)
        after = recorded_tier(program, earned, grant, at)
        clock = EventClock(now)
        events = [
            subscription_event(clock, kind, ended, now),
            tier_change_event(clock, program, ended, before, after, reason=reason, now=now) if holds else None,
        ]
        write = PlanWrite(
            member_id=balance.member_id,
            read_tier_rev=balance.tier_rev,
            read_grant=balance.plan,
            grant=grant,
            subscriptions=(ended,),
            events=tuple(event for event in events if event is not None),
        )
        self._store.apply(balance, write)

    # --- helpers ----------------------------------------------------------------------------------

    def _earned(self, balance: Balance, at: datetime) -> tuple[TierProgram | None, str | None]:
        """The tier program in force and the member's earned tier at ``at`` (due reviews applied)."""
        program, state = self._tiers.before_earn(balance, at)
        return program, state.tier

    def _balance(self, member_id: str, *, consistent: bool = False) -> Balance:
        found = None
        if MEMBER_ID_PATTERN.fullmatch(member_id):
            found = self._ledger.get_balance(member_id, consistent=consistent)
        if found is None:
            raise NotFound(f"member {member_id!r} not found")
        if found.erased_at is not None:
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})
        return found

    def _subscription(self, member_id: str, subscription_id: str) -> Subscription:
        found = None
        if SUBSCRIPTION_ID_PATTERN.fullmatch(subscription_id):
            found = self._store.get(member_id, subscription_id)
        if found is None:
            raise NotFound(f"subscription {subscription_id!r} not found")
        return found


class SubscriptionLapseJob:
    """Lapses every subscription that ended by ``as_of``, found through the sparse index of
    active subscriptions by end time (never a scan of members): cost follows the due work.
    Idempotent: a lapse removes the subscription from the index in its own transaction, and
    a second run (or an overlapping one) finds it gone or no longer active."""

    def __init__(self, store: SubscriptionStore, service: SubscriptionService) -> None:
        self._store = store
        self._service = service

    def run(self, as_of: datetime) -> dict[str, int]:
        counts = {"subscriptions": 0, "lapsed": 0, "skipped": 0}
        seen: set[str] = set()
        for member_id, subscription_id in self._store.due(as_of):
            if subscription_id in seen:
                continue
            seen.add(subscription_id)
            counts["subscriptions"] += 1
            counts[self._service.lapse(member_id, subscription_id, as_of)] += 1
        return counts
