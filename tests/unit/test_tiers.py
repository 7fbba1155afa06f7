"""Qualification math of tiers (pure), and the ledger moving it in the earn's own commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ledger import PointsService
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import ProgramService
from chalicelib.domain.steps import movement_steps
from chalicelib.domain.tiers import (
    KEPT_MONTHS,
    NO_TIER,
    Bucket,
    Metric,
    NewTierProgram,
    Tier,
    TierProgram,
    TierService,
    TierState,
    WindowKind,
    add_to_buckets,
    decode_buckets,
    encode_buckets,
    period_end,
    progress,
    qualify,
    qualifying_total,
    review,
)
from tests.support.clocks import MovableClock
from tests.support.memory import (
    InMemoryLedgerStore,
    InMemoryMemberStore,
    InMemoryProgramStore,
    InMemoryTierProgramStore,
)

UTC_ZONE = "UTC"
SILVER, GOLD = Tier("silver", Decimal(500), Decimal("1.5")), Tier("gold", Decimal(2000), Decimal(2))


def tiers(window: WindowKind = WindowKind.ROLLING_MONTHS, months: int | None = 12, grace: int = 1) -> TierProgram:
    return TierProgram(
        version_id="tpv_1",
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
        metric=Metric.POINTS,
        window=window,
        months=months,
        grace_periods=grace,
        tiers=(SILVER, GOLD),
    )


def at(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def earn(buckets: dict, when: datetime, points: int) -> dict:
    return add_to_buckets(buckets, when, when, UTC_ZONE, points=points, spend=0, orders=1)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"tiers": (GOLD, SILVER)}, "tiers.1.threshold"),
        ({"tiers": (SILVER, Tier("silver", Decimal(900)))}, "tiers"),
        ({"tiers": (Tier("zero", Decimal(0)),)}, "tiers.0.threshold"),
        ({"tiers": (Tier("half", Decimal("0.5")),)}, "tiers.0.threshold"),
        ({"tiers": (Tier("Gold", Decimal(5)),)}, "tiers.0.name"),
        ({"tiers": (Tier("x", Decimal(5), Decimal("0.9")),)}, "tiers.0.multiplier"),
        ({"months": None}, "window.months"),
        ({"months": 25}, "window.months"),
        ({"months": 24, "grace_periods": 2}, "grace_periods"),
        ({"window": WindowKind.CALENDAR_YEAR}, "window.months"),
        ({"window": WindowKind.CALENDAR_YEAR, "months": None, "grace_periods": 3}, "grace_periods"),
    ],
)
def test_an_invalid_tier_program_names_the_offending_field(changes: dict, path: str) -> None:
    values = {**vars(tiers()), **changes}
    with pytest.raises(InvalidRequest) as refused:
        TierProgram(**values)
    assert path in [field["path"] for field in refused.value.details["fields"]]


# --- buckets and windows ----------------------------------------------------------------------


months = st.integers(min_value=0, max_value=40)  # months after January 2025
earns = st.lists(st.tuples(months, st.integers(min_value=1, max_value=10_000)), max_size=30)


def month_date(offset: int) -> datetime:
    return at(2025 + offset // 12, offset % 12 + 1)


@settings(max_examples=200, deadline=None)
@given(earns=earns, window=st.integers(min_value=1, max_value=24))
def test_a_rolling_total_is_the_sum_of_the_earns_of_its_months(earns: list[tuple[int, int]], window: int) -> None:
    # Given earns recorded in time order (buckets pruned as time goes by)
    ordered = sorted(earns)
    buckets: dict = {}
    for offset, points in ordered:
        buckets = earn(buckets, month_date(offset), points)
    if not ordered:
        return
    now = ordered[-1][0]
    program = tiers(months=window)
    # Then the window's total at the last earn is the sum of the earns of its months, by brute force
    expected = sum(points for offset, points in ordered if now - window < offset <= now)
    assert qualifying_total(buckets, program, month_date(now), UTC_ZONE) == expected
    # And nothing older than the kept months survives, nor any empty bucket
    assert len(buckets) <= KEPT_MONTHS and all(b != Bucket() for b in buckets.values())
    assert decode_buckets(encode_buckets(buckets)) == buckets


def test_a_calendar_year_counts_only_its_own_months_in_the_tenants_zone() -> None:
    program = tiers(WindowKind.CALENDAR_YEAR, None)
    helsinki = "Europe/Helsinki"
    new_year_local = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 January 2027 in Helsinki
    buckets = add_to_buckets({}, at(2026, 6), at(2026, 6), helsinki, points=400, spend=0, orders=1)
    buckets = add_to_buckets(buckets, new_year_local, new_year_local, helsinki, points=100, spend=0, orders=1)

    assert qualifying_total(buckets, program, new_year_local, helsinki) == 100
    assert qualifying_total(buckets, program, new_year_local - timedelta(hours=1), helsinki) == 400
    assert period_end(program, at(2026, 6), helsinki) == datetime(2026, 12, 31, 22, tzinfo=UTC)


# --- qualify and review -----------------------------------------------------------------------


def test_crossing_a_threshold_upgrades_and_holds_the_tier_to_the_end_of_the_next_period() -> None:
    program = tiers()
    buckets = earn({}, at(2026, 3), 600)

    state = qualify(NO_TIER, buckets, program, at(2026, 3), UTC_ZONE)

    assert state == TierState("silver", at(2026, 3), datetime(2026, 5, 1, tzinfo=UTC))
    assert progress(state, buckets, program, at(2026, 3), UTC_ZONE).remaining == 1400  # type: ignore[union-attr]


def test_requalifying_later_extends_the_tier_and_falling_short_never_lowers_it() -> None:
    program = tiers(months=1)
    state = qualify(NO_TIER, earn({}, at(2026, 3), 600), program, at(2026, 3), UTC_ZONE)

    confirmed = qualify(state, earn({}, at(2026, 4), 700), program, at(2026, 4), UTC_ZONE)
    short = qualify(state, earn({}, at(2026, 4), 10), program, at(2026, 4), UTC_ZONE)

    assert confirmed == TierState("silver", at(2026, 3), datetime(2026, 6, 1, tzinfo=UTC))
    assert short == state


@pytest.mark.parametrize(
    ("last_year_points", "grace", "expected"),
    [
        (0, 1, NO_TIER),  # nothing earned in the grace year: the tier goes
        (600, 1, TierState("silver", datetime(2028, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))),
        (2500, 1, TierState("gold", datetime(2026, 3, 15, 12, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))),
        (0, 2, TierState("gold", datetime(2026, 3, 15, 12, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))),
    ],
)
def test_a_review_gives_the_best_tier_still_covered_by_a_grace_period(
    last_year_points: int, grace: int, expected: TierState
) -> None:
    # Given Gold reached in 2026, held to the end of 2026 + grace years, and 2027's points
    program = tiers(WindowKind.CALENDAR_YEAR, None, grace=grace)
    buckets = earn({}, at(2026, 3), 2500)
    state = qualify(NO_TIER, buckets, program, at(2026, 3), UTC_ZONE)
    if last_year_points:
        buckets = earn(buckets, at(2027, 11), last_year_points)
    due = state.expires_at
    assert due == datetime(2027 + grace, 1, 1, tzinfo=UTC)
    if grace == 1 and last_year_points >= 2000:
        state = qualify(state, buckets, program, at(2027, 11), UTC_ZONE)  # the earn confirmed gold

    # When the review runs on 1 January 2028
    reviewed = review(state, buckets, program, datetime(2028, 1, 1, 1, tzinfo=UTC), UTC_ZONE)

    assert reviewed == expected


def test_with_no_grace_a_calendar_tier_lasts_its_year_only() -> None:
    program = tiers(WindowKind.CALENDAR_YEAR, None, grace=0)
    buckets = earn({}, at(2026, 3), 2500)
    state = qualify(NO_TIER, buckets, program, at(2026, 3), UTC_ZONE)

    assert state.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert review(state, buckets, program, datetime(2027, 1, 1, tzinfo=UTC), UTC_ZONE) == NO_TIER


@settings(max_examples=150, deadline=None)
@given(
    earns=earns,
    first=st.integers(min_value=0, max_value=60),
    second=st.integers(min_value=0, max_value=60),
    window=st.integers(min_value=1, max_value=12),
    grace=st.integers(min_value=0, max_value=6),
)
def test_reviews_are_idempotent_and_compose(
    earns: list[tuple[int, int]], first: int, second: int, window: int, grace: int
) -> None:
    """Reviewing at t1 then at t2 >= t1 is reviewing at t2 once (the job may run late, often,
    or lazily on a read: the outcome is the same), and a review never raises a tier."""
    program = tiers(months=window, grace=grace)
    buckets: dict = {}
    state = NO_TIER
    for offset, points in sorted(earns):
        moment = month_date(offset)
        buckets = earn(buckets, moment, points)
        state = qualify(review(state, buckets, program, moment, UTC_ZONE), buckets, program, moment, UTC_ZONE)
    t1, t2 = sorted((month_date(first) + timedelta(days=20), month_date(second) + timedelta(days=20)))
    once = review(state, buckets, program, t2, UTC_ZONE)

    assert review(review(state, buckets, program, t1, UTC_ZONE), buckets, program, t2, UTC_ZONE) == once
    assert review(once, buckets, program, t2, UTC_ZONE) == once
    assert program.rank(once.tier) <= program.rank(state.tier)
    assert once.tier is None or (once.expires_at is not None and once.expires_at > t2)


# --- the ledger moves it in the earn's own commit ---------------------------------------------


def services(clock: MovableClock, months: int = 12) -> tuple[InMemoryLedgerStore, PointsService, TierService, str]:
    from chalicelib.domain.members import MemberService, NewMember

    ledger = InMemoryLedgerStore()
    program = ProgramService(InMemoryProgramStore(), clock=clock)
    tier_service = TierService(InMemoryTierProgramStore(), ledger, timezone=UTC_ZONE, clock=clock)
    tier_service.configure(NewTierProgram(Metric.POINTS, WindowKind.ROLLING_MONTHS, months, 1, (SILVER, GOLD)))
    points = PointsService(
        ledger,
        program,
        clock=clock,
        sleep=lambda _: None,
        steps=movement_steps(points=lambda: points, counter=ledger.get_counter, tiers=tier_service),
    )
    member = MemberService(InMemoryMemberStore(ledger), clock=clock).enrol(NewMember()).member_id
    return ledger, points, tier_service, member


def test_an_earn_that_loses_a_race_re_reads_the_totals_and_the_upgrade_happens_once() -> None:
    clock = MovableClock(at(2026, 3))
    ledger, points, _, member = services(clock)
    points.move(MovementRequest(member, MovementType.EARN, "a", points=400))

    # Given another earn of 200 commits between this earn's read and its commit
    def rival(*_: object) -> None:
        points.move(MovementRequest(member, MovementType.EARN, "rival", points=200))

    ledger.before_next_commit(rival)
    result = points.move(MovementRequest(member, MovementType.EARN, "b", points=200))

    # Then both count (800), the member is Silver, and exactly one tier.changed was written
    balance = ledger.get_balance(member, consistent=True)
    assert balance is not None and balance.tier == "silver"
    assert decode_buckets(balance.tier_buckets) == {"2026-03": Bucket(800, 0, 0)}
    assert [(e.data["from_tier"], e.data["to_tier"]) for e in ledger.tier_events] == [(None, "silver")]
    assert result.entry.balance_after.tier == "silver"
    assert ledger.tier_reviews == {member: datetime(2026, 5, 1, tzinfo=UTC)}


def test_the_review_job_and_an_earn_racing_on_one_member_do_not_lose_either() -> None:
    clock = MovableClock(at(2026, 3))
    ledger, points, tier_service, member = services(clock, months=1)
    points.move(MovementRequest(member, MovementType.EARN, "a", points=600))
    clock.now = datetime(2026, 5, 1, 1, tzinfo=UTC)  # the review is due: nothing earned in April

    # Given the review job lowers the member between an earn's read and its commit
    ledger.before_next_commit(lambda *_: tier_service.review_member(member, clock.now))
    points.move(MovementRequest(member, MovementType.EARN, "b", points=10))

    # Then the earn re-read: the member has no tier, and both changes are events
    balance = ledger.get_balance(member, consistent=True)
    assert balance is not None and (balance.tier, balance.available) == (None, 610)
    assert [(e.data["from_tier"], e.data["to_tier"]) for e in ledger.tier_events] == [
        (None, "silver"),
        ("silver", None),
    ]
    assert ledger.tier_reviews == {}


def test_status_looks_for_no_version_when_none_is_possible_and_for_one_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from chalicelib.domain.tenants import Tenant, TenantStatus

    # Given a tier program in force and a Silver member
    clock = MovableClock(at(2026, 3))
    ledger, points, tier_service, member = services(clock)
    points.move(MovementRequest(member, MovementType.EARN, "a", points=600))
    balance = ledger.get_balance(member, consistent=True)
    assert balance is not None
    read: list[datetime] = []
    in_force = InMemoryTierProgramStore.in_force

    def counted(store: InMemoryTierProgramStore, moment: datetime) -> TierProgram | None:
        read.append(moment)
        return in_force(store, moment)

    monkeypatch.setattr(InMemoryTierProgramStore, "in_force", counted)

    # When the status is asked as a tenant without tiers (False), then as one with (True or unknown)
    tenant = Tenant("acme", "Acme", "EUR", "UTC", TenantStatus.ACTIVE, clock.now, clock.now, tiers_stored=False)
    none = tier_service.status(balance, possible=tenant.may_have_tiers)
    found = [
        tier_service.status(balance, possible=replace(tenant, tiers_stored=stored).may_have_tiers)
        for stored in (True, None)
    ]

    # Then the first reads nothing and answers no tier; the others read the version in force
    assert none is None
    assert [status.state.tier if status else None for status in found] == ["silver", "silver"]
    assert len(read) == 2
