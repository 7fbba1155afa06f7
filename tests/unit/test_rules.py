"""The earning rules engine (chalicelib.domain.rules): table tests per rule kind, and
properties that hold for any order, rate and rule set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.program import Program, ProgramService, Rounding
from chalicelib.domain.rules import EarningRule, NewRule, Order, OrderLine, RuleKind, RuleService, evaluate
from tests.support.memory import InMemoryProgramStore

AT = datetime(2027, 5, 8, 12, tzinfo=UTC)  # a Saturday
CREATED = datetime(2027, 1, 1, tzinfo=UTC)


def rule(kind: RuleKind, rule_id: str = "rul_1", **fields: object) -> EarningRule:
    return EarningRule(rule_id=rule_id, name=rule_id, kind=kind, created_at=CREATED, **fields)  # type: ignore[arg-type]


def order(*lines: tuple[str, str | None, int, str], total: str | None = None) -> Order:
    parsed = tuple(OrderLine(sku, qty, Decimal(price), category) for sku, category, qty, price in lines)
    amount = Decimal(total) if total else sum((line.amount for line in parsed), Decimal(0))
    return Order("o-1", amount, "EUR", parsed)


TEN_PER_EURO = Program(points_per_currency_unit=Decimal(10))
LATTE = ("latte", "coffee", 2, "3.50")
CAKE = ("cake", "bakery", 1, "18.00")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([], [250], id="base rate only"),
        pytest.param(
            [rule(RuleKind.LINE_MULTIPLIER, factor=Decimal(2), categories=frozenset({"coffee"}))],
            [250, 70],
            id="category multiplier: the extra on matching lines",
        ),
        pytest.param(
            [rule(RuleKind.LINE_MULTIPLIER, factor=Decimal(3), skus=frozenset({"cake"}))],
            [250, 360],
            id="sku multiplier",
        ),
        pytest.param(
            [
                rule(RuleKind.LINE_MULTIPLIER, "rul_a", factor=Decimal(2), categories=frozenset({"coffee"})),
                rule(RuleKind.LINE_MULTIPLIER, "rul_b", factor=Decimal(3), skus=frozenset({"latte"})),
            ],
            [250, 70, 140],
            id="stacked multipliers add their extras (1 + 1 + 2 = 4x)",
        ),
        pytest.param([rule(RuleKind.ORDER_MULTIPLIER, factor=Decimal("1.5"))], [250, 125], id="order multiplier"),
        pytest.param(
            [rule(RuleKind.ORDER_BONUS, points=50, min_order_total=Decimal(25))], [250, 50], id="bonus at minimum"
        ),
        pytest.param(
            [rule(RuleKind.ORDER_BONUS, points=50, min_order_total=Decimal("25.01"))], [250], id="bonus below minimum"
        ),
        pytest.param(
            [rule(RuleKind.ORDER_MULTIPLIER, factor=Decimal(2), weekdays=frozenset({"sat"}))],
            [250, 250],
            id="weekday campaign on its day",
        ),
        pytest.param(
            [rule(RuleKind.ORDER_MULTIPLIER, factor=Decimal(2), weekdays=frozenset({"mon"}))],
            [250],
            id="weekday campaign on another day",
        ),
        pytest.param(
            [rule(RuleKind.ORDER_BONUS, points=5, starts_at=AT + timedelta(seconds=1))], [250], id="not started yet"
        ),
        pytest.param([rule(RuleKind.ORDER_BONUS, points=5, ends_at=AT)], [250], id="ended at that instant"),
    ],
)
def test_each_rule_kind(rules: list[EarningRule], expected: list[int]) -> None:
    earning = evaluate(order(LATTE, CAKE), TEN_PER_EURO, rules, AT, "Europe/Helsinki")

    assert [share.points for share in earning.breakdown] == expected
    assert earning.points == sum(expected)


def test_an_order_without_lines_earns_on_its_total_and_line_rules_do_not_apply() -> None:
    coffee = rule(RuleKind.LINE_MULTIPLIER, factor=Decimal(2), categories=frozenset({"coffee"}))

    earning = evaluate(order(total="12.34"), TEN_PER_EURO, [coffee], AT, "UTC")

    assert [share.points for share in earning.breakdown] == [123]


def test_weekdays_are_the_tenants() -> None:
    saturday_in_helsinki = datetime(2027, 5, 7, 22, 30, tzinfo=UTC)  # Friday 22:30 UTC, Saturday 01:30 local
    campaign = rule(RuleKind.ORDER_MULTIPLIER, factor=Decimal(2), weekdays=frozenset({"sat"}))

    local = evaluate(order(total="10.00"), TEN_PER_EURO, [campaign], saturday_in_helsinki, "Europe/Helsinki")
    utc = evaluate(order(total="10.00"), TEN_PER_EURO, [campaign], saturday_in_helsinki, "UTC")

    assert (local.points, utc.points) == (200, 100)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"kind": RuleKind.LINE_MULTIPLIER, "factor": Decimal(2)}, "skus"),
        ({"kind": RuleKind.ORDER_MULTIPLIER, "factor": Decimal(1)}, "factor"),
        ({"kind": RuleKind.ORDER_BONUS}, "points"),
        ({"kind": RuleKind.ORDER_BONUS, "points": 5, "factor": Decimal(2)}, "factor"),
        ({"kind": RuleKind.ORDER_MULTIPLIER, "factor": Decimal(2), "points": 5}, "points"),
        ({"kind": RuleKind.ORDER_BONUS, "points": 5, "skus": frozenset({"x"})}, "skus"),
        ({"kind": RuleKind.ORDER_BONUS, "points": 5, "weekdays": frozenset({"caturday"})}, "weekdays"),
    ],
)
def test_inconsistent_rules_are_refused(fields: dict[str, object], path: str) -> None:
    kind = fields.pop("kind")
    with pytest.raises(InvalidRequest) as refused:
        rule(kind, **fields)  # type: ignore[arg-type]
    assert path in [problem["path"] for problem in refused.value.details["fields"]]


class DictRuleStore:
    def __init__(self) -> None:
        self.rules: dict[str, EarningRule] = {}

    def list(self) -> list[EarningRule]:
        return list(self.rules.values())

    def get(self, rule_id: str) -> EarningRule | None:
        return self.rules.get(rule_id)

    def put(self, rule: EarningRule, audit: object = None) -> None:
        self.rules[rule.rule_id] = rule


def rule_service(now: datetime) -> RuleService:
    return RuleService(DictRuleStore(), ProgramService(InMemoryProgramStore(), clock=lambda: now), clock=lambda: now)


def test_a_window_that_does_not_end_after_it_starts_is_refused_with_the_rules_other_problems() -> None:
    rules = rule_service(CREATED)
    new = NewRule("x", RuleKind.ORDER_BONUS, starts_at=AT, ends_at=AT, factor=Decimal(2))

    with pytest.raises(InvalidRequest) as refused:
        rules.add(new)

    assert {problem["path"] for problem in refused.value.details["fields"]} == {"ends_at", "factor", "points"}
    assert rules.list() == []


def test_a_rule_ended_before_it_starts_keeps_an_empty_window_and_never_applies() -> None:
    rules = rule_service(CREATED)
    scheduled = rules.add(NewRule("later", RuleKind.ORDER_BONUS, points=5, starts_at=AT))

    ended = rules.end(scheduled.rule_id)

    assert ended.starts_at == AT and ended.ends_at == CREATED
    assert rules.get(scheduled.rule_id) == ended  # stored, and read back without refusal
    assert not any(ended.in_force(at) for at in (CREATED, AT, AT + timedelta(days=365)))
    assert rules.end(scheduled.rule_id) == ended  # ending it again keeps its end


def test_an_order_in_another_currency_is_refused() -> None:
    with pytest.raises(InvalidRequest) as refused:
        Order.parse("o", "10.00", "USD", [], "EUR")
    assert refused.value.details["fields"][0]["path"] == "order.currency"


# --- properties ---------------------------------------------------------------------------------

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2)
lines = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", None]), st.integers(1, 20), prices),
    min_size=1,
    max_size=8,
)
rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=4)
factors = st.decimals(min_value=Decimal("1.01"), max_value=Decimal("10"), places=2)
rule_sets = st.lists(
    st.one_of(
        st.builds(
            lambda f, cats: rule(RuleKind.LINE_MULTIPLIER, f"rul_l{f}", factor=f, categories=frozenset(cats)),
            factors,
            st.sets(st.sampled_from(["x", "y"]), min_size=1),
        ),
        st.builds(lambda f: rule(RuleKind.ORDER_MULTIPLIER, f"rul_o{f}", factor=f), factors),
        st.builds(lambda p: rule(RuleKind.ORDER_BONUS, f"rul_b{p}", points=p), st.integers(1, 1000)),
    ),
    max_size=6,
)


def _order(raw: list[tuple[str, str | None, int, Decimal]]) -> Order:
    return order(*((sku, cat, qty, str(price)) for sku, cat, qty, price in raw))


@settings(max_examples=200, deadline=None)
@given(raw=lines, rate=rates, rules=rule_sets, rounding=st.sampled_from(list(Rounding)))
def test_the_breakdown_always_sums_to_the_points_and_no_share_is_negative(
    raw: list, rate: Decimal, rules: list[EarningRule], rounding: Rounding
) -> None:
    program = Program(points_per_currency_unit=rate, rounding=rounding)

    earning = evaluate(_order(raw), program, rules, AT, "UTC")

    assert earning.points == sum(share.points for share in earning.breakdown)
    assert all(share.points >= 0 for share in earning.breakdown)
    assert earning.breakdown[0].source == "base"
    assert all(share.points > 0 for share in earning.breakdown[1:])  # rules that gave nothing are not listed


@settings(max_examples=200, deadline=None)
@given(raw=lines, rate=rates, rules=rule_sets)
def test_rules_only_add_and_floor_never_gives_more_than_the_exact_figure(
    raw: list, rate: Decimal, rules: list[EarningRule]
) -> None:
    program = Program(points_per_currency_unit=rate, rounding=Rounding.FLOOR)
    the_order = _order(raw)

    with_rules = evaluate(the_order, program, rules, AT, "UTC")
    without = evaluate(the_order, program, [], AT, "UTC")

    assert with_rules.points >= without.points == int(the_order.paid(program).base * rate)
    exact = the_order.paid(program).base * rate
    for r in rules:
        if r.kind is RuleKind.ORDER_MULTIPLIER:
            exact += the_order.paid(program).base * rate * (r.factor - 1)  # type: ignore[operator]
        elif r.kind is RuleKind.LINE_MULTIPLIER:
            eligible = sum((line.amount for line in the_order.lines if r.matches(line)), Decimal(0))
            exact += eligible * rate * (r.factor - 1)  # type: ignore[operator]
        else:
            exact += r.points  # type: ignore[operator]
    assert exact - len(rules) - 1 < with_rules.points <= exact


@settings(max_examples=100, deadline=None)
@given(raw=lines, rate=rates, rules=rule_sets)
def test_a_bigger_order_never_earns_less(raw: list, rate: Decimal, rules: list[EarningRule]) -> None:
    program = Program(points_per_currency_unit=rate, rounding=Rounding.FLOOR)
    bigger = [(sku, cat, qty + 1, price) for sku, cat, qty, price in raw]

    assert (
        evaluate(_order(bigger), program, rules, AT, "UTC").points
        >= evaluate(_order(raw), program, rules, AT, "UTC").points
    )
