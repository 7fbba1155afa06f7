"""Earning caps (chalicelib.domain.caps) and what a reversal gives back
(chalicelib.domain.reversals): table tests, and properties over sequences of earns and
reversals (never above a cap; what is credited adds up to min(asked, cap); reversing
everything gives back exactly what was counted)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.caps import CapLimit, apply_caps, limits_for
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.ledger import PointsService
from chalicelib.domain.ports import CounterChange
from chalicelib.domain.reversals import EarnPart, give_back
from chalicelib.domain.rules import EarningRule, Per, RuleKind, RuleService, Share, period_key
from chalicelib.domain.steps import movement_steps
from tests.unit.builders import Ledgerland, build_world, earn

AT = datetime(2027, 5, 8, 12, tzinfo=UTC)  # a Saturday
CREATED = datetime(2027, 1, 1, tzinfo=UTC)
MONTHLY = CapLimit("cap:m:2027-05", 5000, "rul_cap", "Monthly cap: capped at 5000 per month")
DAILY = CapLimit("cap:m:2027-05-08", 500, "rul_day", "Daily cap: capped at 500 per day")
CAMPAIGN = CapLimit("cap:rul_x2:m:2027-05", 1000, "rul_x2", "Double: capped at 1000 per month")


def rule(kind: RuleKind, rule_id: str, **fields: object) -> EarningRule:
    return EarningRule(rule_id=rule_id, name=rule_id, kind=kind, created_at=CREATED, **fields)  # type: ignore[arg-type]


# --- one earn ----------------------------------------------------------------------------------


def test_points_over_the_monthly_cap_are_cut_and_the_breakdown_says_so() -> None:
    capped = apply_caps(600, (), {}, [MONTHLY], {MONTHLY.counter: 4700})

    assert capped.points == 300
    assert capped.breakdown == (
        Share("requested", "Requested", 600),
        Share("cap", "Monthly cap: capped at 5000 per month", -300, "rul_cap"),
    )
    assert capped.counters == (CounterChange(MONTHLY.counter, 300, at_most=5000, retry_on_limit=True),)


def test_an_earn_within_the_cap_keeps_its_breakdown_and_still_moves_the_counter() -> None:
    order = (Share("base", "Base rate", 250), Share("rule", "Double", 250, "rul_x2"))

    capped = apply_caps(500, order, {}, [MONTHLY], {})

    assert (capped.points, capped.breakdown) == (500, order)
    assert capped.counters == (CounterChange(MONTHLY.counter, 500, at_most=5000, retry_on_limit=True),)


def test_an_earn_past_the_cap_records_zero_points() -> None:
    capped = apply_caps(120, (), {}, [MONTHLY], {MONTHLY.counter: 5000})

    assert capped.points == 0 and sum(s.points for s in capped.breakdown) == 0
    assert capped.counters == ()


def test_a_campaign_cap_cuts_only_its_campaigns_share() -> None:
    order = (Share("base", "Base rate", 250), Share("rule", "Double", 250, "rul_x2"))

    capped = apply_caps(500, order, {"rul_x2": CAMPAIGN}, [], {CAMPAIGN.counter: 900})

    assert capped.points == 350
    assert capped.breakdown[-1] == Share("cap", CAMPAIGN.label, -150, "rul_x2")
    assert capped.counters == (CounterChange(CAMPAIGN.counter, 100, at_most=1000, retry_on_limit=True),)


def test_an_overall_cut_comes_out_of_the_campaign_first() -> None:
    # 250 base + 250 campaign, 300 left this month: the campaign's allowance counts only what it gave
    order = (Share("base", "Base rate", 250), Share("rule", "Double", 250, "rul_x2"))

    capped = apply_caps(500, order, {"rul_x2": CAMPAIGN}, [MONTHLY], {MONTHLY.counter: 4700})

    assert capped.points == 300
    assert {c.name: c.by for c in capped.counters} == {MONTHLY.counter: 300, CAMPAIGN.counter: 50}


def test_the_shortest_period_bites_first_and_each_cut_is_its_own_share() -> None:
    capped = apply_caps(800, (), {}, [DAILY, MONTHLY], {DAILY.counter: 100, MONTHLY.counter: 4800})

    assert capped.points == 200
    assert [s.points for s in capped.breakdown] == [800, -400, -200]
    assert {c.name: c.by for c in capped.counters} == {DAILY.counter: 200, MONTHLY.counter: 200}


def test_the_caps_in_force_smallest_per_period_campaigns_by_rule() -> None:
    rules = [
        rule(RuleKind.EARNING_CAP, "rul_a", cap=5000, per=Per.MONTH),
        rule(RuleKind.EARNING_CAP, "rul_b", cap=4000, per=Per.MONTH),
        rule(RuleKind.EARNING_CAP, "rul_c", cap=100, per=Per.DAY, ends_at=AT),  # ended
        rule(RuleKind.EARNING_CAP, "rul_d", cap=900, per=Per.WEEK),
        rule(RuleKind.ORDER_MULTIPLIER, "rul_e", factor=Decimal(2), cap=300, per=Per.YEAR),
        rule(RuleKind.ORDER_MULTIPLIER, "rul_f", factor=Decimal(2)),  # no cap
    ]

    campaign, overall = limits_for(rules, "mem_1", AT, "Europe/Helsinki")

    assert [(c.counter, c.at_most, c.rule_id) for c in overall] == [
        ("cap:mem_1:2027-W18", 900, "rul_d"),
        ("cap:mem_1:2027-05", 4000, "rul_b"),
    ]
    assert {k: (v.counter, v.at_most) for k, v in campaign.items()} == {"rul_e": ("cap:rul_e:mem_1:2027", 300)}


@pytest.mark.parametrize(
    ("per", "moment", "key"),
    [
        (Per.DAY, datetime(2027, 5, 7, 22, 30, tzinfo=UTC), "2027-05-08"),  # already Saturday in Helsinki
        (Per.WEEK, datetime(2027, 1, 1, 12, tzinfo=UTC), "2026-W53"),  # ISO week of the previous year
        (Per.WEEK, datetime(2027, 5, 9, 21, 30, tzinfo=UTC), "2027-W19"),  # Monday 00:30 local
        (Per.MONTH, datetime(2027, 4, 30, 21, 30, tzinfo=UTC), "2027-05"),
        (Per.YEAR, datetime(2026, 12, 31, 22, 30, tzinfo=UTC), "2027"),
        (Per.EVER, AT, "ever"),
    ],
)
def test_periods_are_the_tenants_local_ones(per: Per, moment: datetime, key: str) -> None:
    assert period_key(per, moment, "Europe/Helsinki") == key


@pytest.mark.parametrize(
    ("kind", "fields", "path"),
    [
        (RuleKind.EARNING_CAP, {"per": Per.MONTH}, "cap"),
        (RuleKind.EARNING_CAP, {"cap": 100}, "cap"),
        (RuleKind.EARNING_CAP, {"cap": 0, "per": Per.MONTH}, "cap"),
        (RuleKind.EARNING_CAP, {"cap": 100, "per": Per.MONTH, "points": 5}, "points"),
        (RuleKind.EARNING_CAP, {"cap": 100, "per": Per.MONTH, "tiers": frozenset({"gold"})}, "tiers"),
        (RuleKind.EARNING_CAP, {"cap": 100, "per": Per.MONTH, "weekdays": frozenset({"sat"})}, "weekdays"),
        (RuleKind.ORDER_BONUS, {"points": 5, "cap": 100}, "cap"),
        (RuleKind.MILESTONE, {"points": 5, "every": 2, "cap": 100, "per": Per.MONTH}, "cap"),
        (RuleKind.ACTIVITY, {"points": 5, "activity": "review", "segments": frozenset({"vip"})}, "segments"),
        (RuleKind.ORDER_BONUS, {"points": 5, "segments": frozenset({"VIP"})}, "segments"),
    ],
)
def test_inconsistent_caps_and_segments_are_refused(kind: RuleKind, fields: dict[str, object], path: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        rule(kind, "rul_1", **fields)
    assert path in [problem["path"] for problem in refused.value.details["fields"]]


# --- sequences of earns: the properties ----------------------------------------------------------

earn_amounts = st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=40)


def _run(
    earns: list[tuple[int, int]],
    campaign: dict[str, CapLimit],
    overall: list[CapLimit],
) -> tuple[dict[str, int], list[int]]:
    """Each earn (base, campaign share) capped against the counters so far; the counters after
    each commit (as the ledger's transaction would leave them) and what each earn credited."""
    used: dict[str, int] = {}
    credited = []
    for base, extra in earns:
        breakdown = (Share("base", "Base rate", base), *([Share("rule", "Double", extra, "rul_x2")] if extra else []))
        capped = apply_caps(base + extra, breakdown, campaign, overall, used)
        assert capped.points == sum(share.points for share in capped.breakdown)
        assert 0 <= capped.points <= base + extra
        for change in capped.counters:
            used[change.name] = used.get(change.name, 0) + change.by
            assert change.at_most is not None and used[change.name] <= change.at_most  # the transaction's condition
        credited.append(capped.points)
    return used, credited


@settings(max_examples=300, deadline=None)
@given(amounts=earn_amounts, cap=st.integers(min_value=1, max_value=20_000))
def test_a_cap_is_never_passed_and_the_earns_add_up_to_min_of_total_and_cap(amounts: list[int], cap: int) -> None:
    limit = CapLimit("cap:m:2027-05", cap, "rul_cap", "cap")

    used, credited = _run([(a, 0) for a in amounts], {}, [limit])

    assert sum(credited) == min(sum(amounts), cap)
    assert used.get(limit.counter, 0) == sum(credited)


@settings(max_examples=300, deadline=None)
@given(
    earns=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000)), min_size=1, max_size=30),
    overall_cap=st.integers(min_value=1, max_value=20_000),
    campaign_cap=st.integers(min_value=1, max_value=5_000),
)
def test_campaign_and_overall_caps_together_are_never_passed(
    earns: list[tuple[int, int]], overall_cap: int, campaign_cap: int
) -> None:
    overall = CapLimit("cap:m:2027-05", overall_cap, "rul_cap", "cap")
    campaign = CapLimit("cap:rul_x2:m:2027-05", campaign_cap, "rul_x2", "campaign cap")

    used, credited = _run(earns, {"rul_x2": campaign}, [overall])

    assert used.get(overall.counter, 0) == sum(credited) <= overall_cap
    assert used.get(campaign.counter, 0) <= min(campaign_cap, sum(extra for _, extra in earns))
    # Without the overall cap, the campaign alone: its shares add up to min(their total, its cap)
    alone_used, alone_credited = _run(earns, {"rul_x2": campaign}, [])
    assert alone_used.get(campaign.counter, 0) == min(campaign_cap, sum(extra for _, extra in earns))
    assert sum(alone_credited) == sum(base for base, _ in earns) + alone_used.get(campaign.counter, 0)


@settings(max_examples=200, deadline=None)
@given(amounts=earn_amounts, day_cap=st.integers(1, 2000), month_cap=st.integers(1, 20_000), days=st.data())
def test_day_and_month_caps_each_hold_and_an_earn_is_cut_only_by_a_full_cap(
    amounts: list[int], day_cap: int, month_cap: int, days: st.DataObject
) -> None:
    used: dict[str, int] = {}
    for amount in amounts:
        day = days.draw(st.integers(1, 3))
        limits = [CapLimit(f"cap:m:2027-05-0{day}", day_cap, "d", "d"), CapLimit("cap:m:2027-05", month_cap, "m", "m")]
        capped = apply_caps(amount, (), {}, limits, used)
        for change in capped.counters:
            used[change.name] = used.get(change.name, 0) + change.by
        assert all(used.get(limit.counter, 0) <= limit.at_most for limit in limits)
        if capped.points < amount:  # cut: some cap is now exactly full
            assert any(used.get(limit.counter, 0) == limit.at_most for limit in limits)


# --- reversals ---------------------------------------------------------------------------------

earn_parts = st.lists(
    st.builds(
        EarnPart,
        points=st.integers(0, 5000),
        occurred_at=st.just(AT),
        spend=st.integers(0, 10**7),
        orders=st.integers(0, 1),
        counters=st.just(()),
    ),
    min_size=1,
    max_size=5,
).map(
    lambda parts: [
        EarnPart(
            p.points,
            AT - timedelta(days=40 * i),
            p.spend,
            p.orders,
            (("cap:m:month", p.points), ("cap:x", p.points // 3)),
        )
        for i, p in enumerate(parts)
    ]
)


@settings(max_examples=300, deadline=None)
@given(earns=earn_parts, cuts=st.lists(st.floats(0, 1), max_size=6))
def test_reversals_in_any_chunks_give_back_exactly_what_the_earns_counted(
    earns: list[EarnPart], cuts: list[float]
) -> None:
    total = sum(e.points for e in earns)
    marks = sorted({0, total, *(int(total * c) for c in cuts)})
    points = spend = orders = 0
    counters: dict[str, int] = {}
    for before, after in itertools.pairwise(marks):
        back = give_back(earns, before, after)
        assert sum(r.points for r in back.removals) == after - before
        points += sum(r.points for r in back.removals)
        spend += sum(r.spend for r in back.removals)
        orders += sum(r.orders for r in back.removals)
        for name, amount in back.counters.items():
            counters[name] = counters.get(name, 0) + amount
    counted = [e for e in earns if e.points > 0]
    assert points == total
    assert spend == sum(e.spend for e in counted) and orders == sum(e.orders for e in counted)
    assert counters == {
        name: total_by
        for name in ("cap:m:month", "cap:x")
        if (total_by := sum(dict(e.counters)[name] for e in counted))
    }


def test_a_partial_reversal_gives_back_from_the_earns_own_month_oldest_first() -> None:
    may = EarnPart(300, datetime(2027, 5, 20, tzinfo=UTC), spend=30_000, orders=1, counters=(("cap:m:2027-05", 300),))
    june = EarnPart(200, datetime(2027, 6, 2, tzinfo=UTC), spend=20_000, orders=1, counters=(("cap:m:2027-06", 200),))

    first = give_back([may, june], 0, 100)
    rest = give_back([may, june], 100, 500)

    assert [(r.occurred_at.month, r.points, r.spend, r.orders) for r in first.removals] == [(5, 100, 10_000, 0)]
    assert first.counters == {"cap:m:2027-05": 100}
    assert [(r.occurred_at.month, r.points, r.spend, r.orders) for r in rest.removals] == [
        (5, 200, 20_000, 1),
        (6, 200, 20_000, 1),
    ]
    assert rest.counters == {"cap:m:2027-05": 200, "cap:m:2027-06": 200}


# --- the ledger applying caps -------------------------------------------------------------------


class ListRuleStore:
    """The RuleStore port over a list (the rules under test)."""

    def __init__(self, rules: list[EarningRule]) -> None:
        self.rules = rules

    def list(self) -> list[EarningRule]:
        return list(self.rules)

    def get(self, rule_id: str) -> EarningRule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)

    def put(self, rule: EarningRule, audit: object = None) -> None:
        self.rules.append(rule)


def capped_world(cap: int) -> tuple[Ledgerland, PointsService, str]:
    world = build_world()
    rules = RuleService(ListRuleStore([rule(RuleKind.EARNING_CAP, "rul_cap", cap=cap, per=Per.MONTH)]), world.program)
    points = PointsService(
        world.ledger,
        world.program,
        clock=world.clock,
        sleep=world.delays.append,
        rules=rules,
        steps=movement_steps(points=lambda: points, counter=world.ledger.get_counter, rules=rules),
    )
    return world, points, world.enrol()


def test_a_counter_read_stale_is_read_again_and_the_earn_capped_again_never_refused() -> None:
    world, points, member = capped_world(1000)
    counter = f"cap:{member}:{world.clock.now:%Y-%m}"
    points.move(earn(member, "e-1", 700))

    # When another writer moves the counter between this earn's read and its commit
    def another_writer(*_: object) -> None:
        world.ledger._counters[counter] += 200

    world.ledger.before_next_commit(another_writer)
    result = points.move(earn(member, "e-2", 250))

    # Then the commit is cancelled by the counter's condition, the earn re-reads and gets the 100 left
    assert result.entry.points == 100 and [s.points for s in result.entry.breakdown] == [250, -150]
    assert world.ledger._counters[counter] == 1000
    assert len(world.delays) == 1  # one race lost, retried
    assert result.entry.cap_counters == ((counter, 100),)


def test_partner_style_uncapped_earns_move_no_cap_counter() -> None:
    world, points, member = capped_world(100)

    result = points.move(earn(member, "gift", 500, capped=False))

    assert result.entry.points == 500 and result.entry.cap_counters == ()
    assert world.ledger._counters == {}
