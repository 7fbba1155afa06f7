"""Paid membership, the pure pieces: the effective tier, period merging, what recording a period
decides, the plan's share of an order, the catalog's checks, and a write decided on a stale read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import plans
from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import InvalidRequest, PeriodNotContiguous, SubscriptionActive
from chalicelib.domain.events import EventType
from chalicelib.domain.plans import (
    START_SKEW,
    EventClock,
    Outcome,
    Plan,
    PlanGrant,
    PlanWrite,
    PlanWriteStale,
    Subscription,
    SubscriptionStatus,
    active_grant,
    check_catalog,
    decide,
    effective_tier,
    merge,
    recorded_tier,
)
from chalicelib.domain.program import Program
from chalicelib.domain.rules import Order, evaluate
from chalicelib.domain.tiers import Metric, Tier, TierProgram, WindowKind

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
DAY = timedelta(days=1)
SILVER, GOLD = Tier("silver", Decimal(500), Decimal("1.5")), Tier("gold", Decimal(2000), Decimal(2))
PROGRAM = TierProgram(
    version_id="tpv_1",
    effective_from=datetime(2020, 1, 1, tzinfo=UTC),
    created_at=datetime(2020, 1, 1, tzinfo=UTC),
    metric=Metric.POINTS,
    window=WindowKind.ROLLING_MONTHS,
    months=12,
    grace_periods=1,
    tiers=(SILVER, GOLD),
)
PREMIUM = Plan("premium", "Premium", tier="gold", multiplier=Decimal("1.5"), join_bonus=100)
SILVER_PLAN = Plan("lite", "Lite", tier="silver")


def grant(tier: str | None = "gold", *, start: datetime = NOW - DAY, end: datetime = NOW + DAY) -> PlanGrant:
    return PlanGrant("sub_1", "premium", tier, Decimal("1.5"), start, end)


def period(reference: str, start: datetime, end: datetime) -> plans.Period:
    return plans.Period(reference, start, end, NOW)


def subscription(start: datetime, end: datetime, *, plan: Plan = PREMIUM, status: str = "active") -> Subscription:
    first = Subscription.start("sub_1", "mem_1", plan, period("inv-0", start, end), start)
    return replace(first, status=SubscriptionStatus(status))


# --- the effective tier ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned", "granted", "expected"),
    [
        (None, "gold", "gold"),
        ("silver", "gold", "gold"),
        ("gold", "silver", "gold"),  # the earned tier is higher: it stays
        ("gold", "gold", "gold"),
        (None, None, None),  # a plan without a tier
        ("silver", "platinum", "silver"),  # a tier the program no longer has grants nothing
    ],
)
def test_the_effective_tier_is_the_higher_of_the_earned_and_the_granted(
    earned: str | None, granted: str | None, expected: str | None
) -> None:
    assert effective_tier(PROGRAM, earned, grant(granted), NOW) == expected


def test_a_plan_grants_nothing_outside_its_period_or_without_a_tier_program() -> None:
    ended = grant(end=NOW)  # the end is exclusive
    future = grant(start=NOW + timedelta(seconds=1))

    assert effective_tier(PROGRAM, "silver", ended, NOW) == "silver"
    assert effective_tier(PROGRAM, None, future, NOW) is None
    assert effective_tier(None, None, grant(), NOW) is None
    assert active_grant(ended, NOW) is None and active_grant(grant(), NOW) == grant()
    assert effective_tier(PROGRAM, None, ended, NOW - timedelta(microseconds=1)) == "gold"


def test_events_follow_the_recorded_grant_whether_or_not_its_end_has_passed() -> None:
    ended = grant(start=NOW - 30 * DAY, end=NOW - DAY)  # ended yesterday, its lapse not recorded yet
    upcoming = grant(start=NOW + timedelta(minutes=2))  # starts within the skew

    assert recorded_tier(PROGRAM, None, ended, NOW) == "gold"  # what the feed said last
    assert recorded_tier(PROGRAM, None, upcoming, NOW) == "gold"
    assert recorded_tier(PROGRAM, "silver", None, NOW) == "silver"
    assert effective_tier(PROGRAM, None, ended, NOW) is None  # what the member gets: nothing


# --- merging periods --------------------------------------------------------------------------------


def test_merge_extends_overlapping_and_consecutive_periods_only() -> None:
    span = (NOW, NOW + 30 * DAY)

    assert merge(span, NOW + 30 * DAY, NOW + 60 * DAY) == (NOW, NOW + 60 * DAY)  # consecutive
    assert merge(span, NOW + 10 * DAY, NOW + 40 * DAY) == (NOW, NOW + 40 * DAY)  # overlapping
    assert merge(span, NOW + DAY, NOW + 2 * DAY) == span  # inside
    assert merge(span, NOW - 5 * DAY, NOW) == (NOW - 5 * DAY, NOW + 30 * DAY)  # just before
    assert merge(span, NOW + 31 * DAY, NOW + 60 * DAY) is None  # a gap after
    assert merge(span, NOW - 9 * DAY, NOW - DAY) is None  # a gap before


moments = st.integers(min_value=0, max_value=10_000).map(lambda hours: NOW + timedelta(hours=hours))
spans = st.tuples(moments, moments).map(sorted).filter(lambda pair: pair[0] < pair[1]).map(tuple)


@given(spans, spans)
def test_a_merge_covers_exactly_both_periods_when_they_touch(first: tuple, second: tuple) -> None:
    merged = merge(first, *second)
    touching = second[0] <= first[1] and second[1] >= first[0]
    assert (merged is not None) == touching
    if merged is not None:
        assert merged == (min(first[0], second[0]), max(first[1], second[1]))
        assert merge(second, *first) == merged  # order does not matter


# --- recording a period ----------------------------------------------------------------------------


def test_a_first_period_starts_a_subscription() -> None:
    decision = decide(
        member_id="mem_1",
        plan=PREMIUM,
        period=period("inv-1", NOW - DAY, NOW + 30 * DAY),
        current=None,
        lapsed=None,
        new_id="sub_2",
        now=NOW,
    )

    assert decision.outcome is Outcome.STARTED and decision.lapsing is None
    started = decision.subscription
    assert (started.subscription_id, started.status, started.span) == ("sub_2", "active", (NOW - DAY, NOW + 30 * DAY))
    assert (started.tier, started.multiplier, started.period_count, started.version) == ("gold", Decimal("1.5"), 1, 1)


def test_renewals_extend_the_running_subscription_and_keep_its_last_periods() -> None:
    current = subscription(NOW - DAY, NOW + 29 * DAY)
    for index in range(14):
        start = current.ends_at - (DAY if index % 2 else timedelta(0))  # consecutive, then overlapping
        decision = decide(
            member_id="mem_1",
            plan=PREMIUM,
            period=period(f"inv-{index + 1}", start, start + 30 * DAY),
            current=current,
            lapsed=None,
            new_id="unused",
            now=NOW,
        )
        assert decision.outcome is Outcome.RENEWED and decision.subscription.ends_at == start + 30 * DAY
        current = decision.subscription

    assert current.subscription_id == "sub_1" and current.period_count == 15 and current.version == 15
    assert [p.reference for p in current.periods] == [f"inv-{i}" for i in range(3, 15)]  # the last 12


def test_a_period_within_the_span_is_recorded_without_extending() -> None:
    current = subscription(NOW - DAY, NOW + 30 * DAY)

    decision = decide(
        member_id="mem_1",
        plan=PREMIUM,
        period=period("inv-2", NOW, NOW + DAY),
        current=current,
        lapsed=None,
        new_id="unused",
        now=NOW,
    )

    assert decision.outcome is Outcome.RECORDED and decision.subscription.span == current.span


def test_a_gap_or_another_plan_while_the_subscription_runs_is_a_conflict() -> None:
    current = subscription(NOW - DAY, NOW + 30 * DAY)
    kwargs = {"member_id": "mem_1", "current": current, "lapsed": None, "new_id": "x", "now": NOW}

    with pytest.raises(PeriodNotContiguous):
        decide(plan=PREMIUM, period=period("inv-2", NOW + 31 * DAY, NOW + 60 * DAY), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SubscriptionActive) as refused:
        decide(plan=SILVER_PLAN, period=period("inv-3", NOW, NOW + 30 * DAY), **kwargs)  # type: ignore[arg-type]
    assert refused.value.details["plan_id"] == "premium"


def test_a_subscription_past_its_end_is_renewed_if_the_period_touches_it_else_lapsed_and_replaced() -> None:
    ended = subscription(NOW - 31 * DAY, NOW - DAY)  # the job has not lapsed it yet

    late = decide(
        member_id="mem_1",
        plan=PREMIUM,
        period=period("inv-2", NOW - DAY, NOW + 29 * DAY),
        current=ended,
        lapsed=None,
        new_id="unused",
        now=NOW,
    )
    other = decide(
        member_id="mem_1",
        plan=SILVER_PLAN,
        period=period("inv-3", NOW, NOW + 30 * DAY),
        current=ended,
        lapsed=None,
        new_id="sub_2",
        now=NOW,
    )

    assert (late.outcome, late.resumed, late.subscription.subscription_id) == (Outcome.RENEWED, True, "sub_1")
    assert other.outcome is Outcome.STARTED and other.subscription.plan_id == "lite"
    assert other.lapsing is not None and other.lapsing.status is SubscriptionStatus.LAPSED
    assert other.lapsing.lapsed_at == ended.ends_at and other.lapsing.version == ended.version + 1


def test_a_lapsed_subscription_resumes_with_a_touching_period_and_a_new_one_starts_after_a_gap() -> None:
    lapsed = subscription(NOW - 31 * DAY, NOW - DAY, status="lapsed")
    kwargs = {"member_id": "mem_1", "plan": PREMIUM, "current": None, "lapsed": lapsed, "now": NOW}

    resumed = decide(period=period("inv-2", NOW - DAY, NOW + 29 * DAY), new_id="x", **kwargs)  # type: ignore[arg-type]
    fresh = decide(period=period("inv-3", NOW, NOW + 30 * DAY), new_id="sub_2", **kwargs)  # type: ignore[arg-type]

    assert resumed.outcome is Outcome.RENEWED and resumed.subscription.status is SubscriptionStatus.ACTIVE
    assert resumed.subscription.lapsed_at is None and resumed.subscription.subscription_id == "sub_1"
    assert fresh.outcome is Outcome.STARTED and fresh.subscription.subscription_id == "sub_2"


def test_a_new_subscription_may_not_start_in_the_future() -> None:
    start = NOW + START_SKEW + timedelta(seconds=1)
    with pytest.raises(InvalidRequest) as refused:
        decide(
            member_id="mem_1",
            plan=PREMIUM,
            period=period("inv-1", start, start + 30 * DAY),
            current=None,
            lapsed=None,
            new_id="x",
            now=NOW,
        )
    assert refused.value.details["fields"][0]["path"] == "period_start"


def test_a_subscription_reads_as_lapsed_from_its_end_on() -> None:
    running = subscription(NOW - DAY, NOW + DAY)

    assert running.status_at(NOW) is SubscriptionStatus.ACTIVE
    assert running.status_at(NOW + DAY) is SubscriptionStatus.LAPSED
    assert running.cancelled(NOW).status_at(NOW + 2 * DAY) is SubscriptionStatus.CANCELLED


# --- the plan's share of an order ------------------------------------------------------------------


def test_the_plan_multiplier_is_its_own_line_of_the_breakdown() -> None:
    program = Program(points_per_currency_unit=Decimal(10))
    order = Order("o-1", Decimal("20.00"), "EUR")

    with_plan = evaluate(order, program, [], NOW, "UTC", GOLD, plan=grant())
    neutral = evaluate(order, program, [], NOW, "UTC", None, plan=replace(grant(None), multiplier=Decimal(1)))

    assert [(s.source, s.name, s.points, s.rule_id) for s in with_plan.breakdown] == [
        ("base", "Base rate", 200, None),
        ("tier", "gold tier", 200, "tier:gold"),
        ("plan", "premium plan", 100, "plan:premium"),
    ]
    assert with_plan.points == 500
    assert [s.source for s in neutral.breakdown] == ["base"] and neutral.points == 200


# --- the catalog -----------------------------------------------------------------------------------


def test_the_catalog_names_every_problem() -> None:
    bad = [
        Plan("premium", "Premium", tier="platinum"),
        Plan("premium", "Again", multiplier=Decimal(11)),
        Plan("empty", "Nothing"),
    ]
    with pytest.raises(InvalidRequest) as refused:
        check_catalog(bad, PROGRAM)
    paths = [field["path"] for field in refused.value.details["fields"]]
    assert paths == ["plans", "plans.0.tier", "plans.1.multiplier", "plans.2"]

    with pytest.raises(InvalidRequest):
        check_catalog([PREMIUM], None)  # a tier without a tier program
    check_catalog([PREMIUM, SILVER_PLAN, Plan("boost", "Boost", multiplier=Decimal(2))], PROGRAM)


# --- writes ------------------------------------------------------------------------------------------


def test_a_write_decided_on_another_balance_is_stale() -> None:
    balance = replace(Balance.opening("mem_1", NOW), tier_rev=3, plan=grant())
    write = PlanWrite("mem_1", read_tier_rev=3, read_grant=grant(), grant=None, subscriptions=())

    after = write.apply(balance, balance)

    assert (after.plan, after.tier_rev) == (None, 4)
    with pytest.raises(PlanWriteStale):
        write.apply(replace(balance, tier_rev=4), balance)  # the tier or plan moved meanwhile
    with pytest.raises(PlanWriteStale):
        write.apply(replace(balance, plan=grant(end=NOW + 9 * DAY)), balance)


def test_events_of_one_write_keep_their_order_and_name_known_types() -> None:
    clock = EventClock(NOW)
    ids = [clock.next_id() for _ in range(5)]

    assert ids == sorted(ids) and len(set(ids)) == 5
    for name in ("SUBSCRIPTION_STARTED", "SUBSCRIPTION_RENEWED", "SUBSCRIPTION_LAPSED", "SUBSCRIPTION_CANCELLED"):
        assert getattr(plans, name) == str(EventType[name])
    assert plans.TIER_CHANGED == str(EventType.TIER_CHANGED)
