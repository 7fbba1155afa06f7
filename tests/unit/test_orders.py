"""What of an order earns: discounts spread over the lines, shipping and tax by the program."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.orders import Order
from chalicelib.domain.program import Program
from chalicelib.domain.rules import EarningRule, RuleKind, evaluate

AT = datetime(2027, 5, 8, 12, tzinfo=UTC)
TEN = Program(points_per_currency_unit=Decimal(10))
DOUBLE_COFFEE = EarningRule(
    rule_id="rul_coffee",
    name="Double coffee",
    kind=RuleKind.LINE_MULTIPLIER,
    created_at=datetime(2027, 1, 1, tzinfo=UTC),
    factor=Decimal(2),
    categories=frozenset({"coffee"}),
)


def parse(total: str, *lines: tuple, **parts: str) -> Order:
    return Order.parse("o-1", total, "EUR", list(lines), "EUR", **parts)


def test_an_order_paid_less_than_its_lines_earns_on_what_was_paid() -> None:
    # Given lines listing 50.00 and a paid total of 10.00 (a discount the shop did not itemise)
    order = parse("10.00", ("tee", None, 1, "50.00"))

    # When it is evaluated
    earning = evaluate(order, TEN, [], AT, "UTC")

    # Then it earns on 10.00, and the breakdown shows the discount
    assert earning.points == 100
    assert [(s.source, s.points) for s in earning.breakdown] == [("base", 500), ("discount", -400)]


def test_an_order_discount_is_spread_over_the_lines_so_multipliers_apply_to_what_each_cost() -> None:
    # Coffee 30.00 and cake 10.00, 20% off the order (8.00): coffee cost 24.00, cake 8.00
    order = parse("32.00", ("latte", "coffee", 1, "30.00"), ("cake", "bakery", 1, "10.00"), discount="8.00")

    paid = order.paid(TEN)
    earning = evaluate(order, TEN, [DOUBLE_COFFEE], AT, "UTC")

    assert paid.lines == (Decimal("24.00"), Decimal("8.00"))
    assert earning.points == 320 + 240  # base on 32.00, the coffee's extra on 24.00
    assert [s.source for s in earning.breakdown] == ["base", "discount", "rule"]


def test_a_line_discount_stays_on_its_line() -> None:
    order = parse("35.00", ("latte", "coffee", 1, "30.00", "5.00"), ("cake", "bakery", 1, "10.00"))

    assert order.paid(TEN).lines == (Decimal("25.00"), Decimal("10.00"))
    assert evaluate(order, TEN, [DOUBLE_COFFEE], AT, "UTC").points == 350 + 250


def test_shipping_and_tax_earn_only_when_the_program_says_so() -> None:
    order = parse("65.00", ("tee", None, 1, "50.00"), shipping="5.00", tax="10.00")

    assert evaluate(order, TEN, [], AT, "UTC").points == 500
    with_shipping = Program(points_per_currency_unit=Decimal(10), earn_on_shipping=True)
    assert evaluate(order, with_shipping, [], AT, "UTC").points == 550
    with_both = Program(points_per_currency_unit=Decimal(10), earn_on_shipping=True, earn_on_tax=True)
    assert evaluate(order, with_both, [], AT, "UTC").points == 650


def test_tax_included_in_the_prices_does_not_earn_unless_the_program_says_so() -> None:
    # Prices include 20.00 of tax: the total is the lines; the goods were paid 100.00 - 20.00
    order = parse("100.00", ("tee", None, 2, "50.00"), tax="20.00")

    assert evaluate(order, TEN, [], AT, "UTC").points == 800
    assert (
        evaluate(order, Program(points_per_currency_unit=Decimal(10), earn_on_tax=True), [], AT, "UTC").points == 1000
    )


def test_without_lines_the_goods_are_the_total_less_shipping_and_tax() -> None:
    order = parse("25.00", shipping="4.00", tax="1.00")

    assert evaluate(order, TEN, [], AT, "UTC").points == 200
    assert [s.source for s in evaluate(order, TEN, [], AT, "UTC").breakdown] == ["base"]


def test_a_discount_is_spread_to_the_cent_by_largest_remainder() -> None:
    # 10.00 off three equal lines: 3.34, 3.33, 3.33 (the first line takes the odd cent)
    order = parse("20.00", ("a", None, 1, "10.00"), ("b", None, 1, "10.00"), ("c", None, 1, "10.00"), discount="10.00")

    assert order.paid(TEN).lines == (Decimal("6.66"), Decimal("6.67"), Decimal("6.67"))
    assert sum(order.paid(TEN).lines) == Decimal("20.00")


@pytest.mark.parametrize(
    ("order", "field"),
    [
        pytest.param(lambda: parse("10.00", shipping="8.00", tax="3.00"), "order.shipping", id="shipping+tax > total"),
        pytest.param(lambda: parse("10.00", ("a", None, 1, "5.00", "6.00")), "order.lines.0.discount", id="line"),
        pytest.param(lambda: parse("10.00", ("a", None, 2, "5.00"), discount="10.01"), "order.discount", id="order"),
        pytest.param(lambda: parse("10.00", discount="1.001"), "order.discount", id="too many decimals"),
    ],
)
def test_parts_that_cannot_be_what_was_paid_are_refused_naming_the_field(order, field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        order()

    assert refused.value.details["fields"][0]["path"] == field


def test_an_order_without_the_new_parts_fingerprints_as_before() -> None:
    order = parse("10.00", ("a", "cat", 1, "10.00"))

    assert order.canonical() == {"total": "10.00", "currency": "EUR", "lines": [["a", "cat", 1, "10.00"]]}
    assert parse("10.00", ("a", "cat", 1, "10.00"), discount="1.00").canonical()["discount"] == "1.00"


prices = st.integers(1, 100_000).map(lambda cents: Decimal(cents).scaleb(-2))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(prices, st.integers(1, 5)), min_size=1, max_size=8),
    paid_share=st.fractions(0, 1),
    shipping=st.integers(0, 2_000).map(lambda cents: Decimal(cents).scaleb(-2)),
)
def test_the_lines_always_add_up_to_what_the_goods_were_paid_and_points_never_exceed_it(
    lines: list[tuple[Decimal, int]], paid_share, shipping: Decimal
) -> None:
    listed = sum(price * quantity for price, quantity in lines)
    goods = (listed * paid_share.numerator / paid_share.denominator).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    if goods <= 0:
        goods = Decimal("0.01")
    order = parse(
        str(goods + shipping),
        *((f"s{i}", "coffee", q, str(p)) for i, (p, q) in enumerate(lines)),
        shipping=str(shipping),
    )

    paid = order.paid(TEN)
    earning = evaluate(order, TEN, [DOUBLE_COFFEE], AT, "UTC")

    assert sum(paid.lines) == paid.goods == min(goods, listed)
    assert all(line >= 0 for line in paid.lines)
    assert earning.points == sum(s.points for s in earning.breakdown)
    assert earning.points <= int(paid.goods * 10 * 2)  # base + the double, on what was paid only
