"""What earns, as the README states it, for the reference model (tests/model/reference.py):
an order under the program's rate and the earning rules, milestones, activity allowances,
earning caps with their cuts and counters, and what a reversal gives back to the counters.

Written from README ("Earning rules, activities and milestones", "What earns: discounts,
shipping and tax", "Earning caps", "Points lifecycle": reversal and refunds by amount), not
from the product's rule code: nothing of chalicelib.domain.rules, caps, orders, activities or
reversals is imported. Exact fractions, plain lists, no storage.

Where the README leaves a detail open, the model takes one reading:

* shares are listed base rate first, then the discount share, then the order rules in the
  order they were created (the same instant: by rule id), then the milestones; a rule that
  gives 0 points has no share (the base rate always has one);
* a line multiplier's share is its matching lines' paid cost at the rate, times ``factor - 1``,
  rounded once; an order multiplier's is the whole base (goods and the extras that earn);
* the discount share is the rounded base at what was paid less the rounded base at the
  listed prices (so base + discount is exactly the paid base, rounded);
* an order's discount is spread over the lines in proportion to what each cost after its own
  discount, in whole minor units, the largest remainders first (ties: the earlier line);
* weekdays belong to order multipliers and ``min_order_total`` to order bonuses (the README's
  table); the machine draws them only there;
* an overall cut is charged to the campaigns latest rule first (README), "latest" meaning the
  order the shares are listed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

#: One share of a breakdown: (source, points, rule id).
Part = tuple[str, int, str | None]
#: A counter move: (counter, by, the most it may then hold; None: no limit, a give-back).
CounterMove = tuple[str, int, int | None]

ORDER_RULES = ("line_multiplier", "order_multiplier", "order_bonus")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Overall caps apply the shortest period first.
PERIODS = ("day", "week", "month", "year", "ever")
#: ISO 4217 minor units of the currencies the machine uses.
MINOR_UNITS = {"EUR": 2, "JPY": 0, "KWD": 3}


@dataclass
class ModelRule:
    """An earning rule as the brand created it, with the id and moment the service gave it."""

    rule_id: str
    name: str
    kind: str
    created_at: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    factor: Decimal | None = None
    points: int | None = None
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    weekdays: frozenset[str] = frozenset()
    min_order_total: Decimal | None = None
    every: int | None = None
    at: int | None = None
    activity: str | None = None
    limit: int | None = None
    per: str | None = None
    cap: int | None = None

    def in_force(self, at: datetime) -> bool:
        """In force in its window [starts_at, ends_at)."""
        return (self.starts_at is None or self.starts_at <= at) and (self.ends_at is None or at < self.ends_at)

    @property
    def rank(self) -> tuple[datetime, str]:
        return (self.created_at, self.rule_id)

    def end(self, now: datetime) -> None:
        """Ended now: its window closes (a rule that already ended keeps its end)."""
        if self.ends_at is None or self.ends_at > now:
            self.ends_at = now


def ranked(rules: list[ModelRule]) -> list[ModelRule]:
    return sorted(rules, key=lambda rule: rule.rank)


# --- orders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelLine:
    sku: str
    category: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)

    @property
    def listed(self) -> Fraction:
        return Fraction(self.unit_price) * self.quantity

    @property
    def net(self) -> Fraction:
        return self.listed - Fraction(self.discount)


@dataclass(frozen=True)
class ModelOrder:
    order_id: str
    total: Decimal
    currency: str
    lines: tuple[ModelLine, ...] = ()
    discount: Decimal = Decimal(0)
    shipping: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)

    @classmethod
    def of(cls, order: Any) -> ModelOrder:
        """The model's copy of an order object's fields (the product's ``Order`` as sent)."""
        return cls(
            order.order_id,
            order.total,
            order.currency,
            tuple(ModelLine(x.sku, x.category, x.quantity, x.unit_price, x.discount) for x in order.lines),
            order.discount,
            order.shipping,
            order.tax,
        )

    def body(self) -> tuple[Any, ...]:
        """What the client sent, for "the same request"."""
        return (
            self.order_id,
            str(self.total),
            self.currency,
            tuple((x.sku, x.category, x.quantity, str(x.unit_price), str(x.discount)) for x in self.lines),
            str(self.discount),
            str(self.shipping),
            str(self.tax),
        )

    def problems(self) -> list[str]:
        """Why the order cannot be what was paid (README: 400 naming the field); empty: none."""
        problems = []
        if self.total <= 0:
            problems.append("total")
        if any(line.unit_price <= 0 or line.quantity < 1 for line in self.lines):
            problems.append("lines.unit_price")
        if self.shipping + self.tax > self.total:
            problems.append("shipping")
        if any(line.discount > line.unit_price * line.quantity for line in self.lines):
            problems.append("lines.discount")
        if self.lines and Fraction(self.discount) > sum((line.net for line in self.lines), Fraction(0)):
            problems.append("discount")
        return problems


@dataclass(frozen=True)
class Terms:
    """The program's terms an order earns under."""

    per_unit: Decimal
    rounding: str
    earn_on_shipping: bool = False
    earn_on_tax: bool = False


def rounded(value: Fraction, rounding: str) -> int:
    """Whole points with the program's rounding (nearest: halves away from zero)."""
    if rounding == "floor":
        return math.floor(value)
    if rounding == "ceil":
        return math.ceil(value)
    sign = -1 if value < 0 else 1
    return sign * math.floor(abs(value) + Fraction(1, 2))


@dataclass(frozen=True)
class Paid:
    """What the customer paid, as the README's "What earns" reads it."""

    #: What each line was paid, after its own discount and its share of every other discount.
    line_costs: tuple[Fraction, ...]
    goods: Fraction
    #: The goods at their listed prices.
    listed: Fraction
    #: Shipping and tax that earn under the program.
    extras: Fraction


def spread(nets: list[Fraction], reduction: Fraction, currency: str) -> tuple[Fraction, ...]:
    """Each line's net less its share of ``reduction`` (in proportion to the nets), in whole
    minor units, the largest remainders first, ties to the earlier line."""
    if reduction <= 0:
        return tuple(nets)
    unit = Fraction(1, 10 ** MINOR_UNITS[currency])
    units = reduction / unit
    assert units.denominator == 1, f"model: a reduction of {reduction} is not whole minor units"
    whole = sum(nets, Fraction(0))
    assert whole > 0, "model: a reduction of lines that cost nothing"
    exact = [units * net / whole for net in nets]
    shares = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(nets)), key=lambda i: (-(exact[i] - shares[i]), i))
    for index in by_remainder[: int(units) - sum(shares)]:
        shares[index] += 1
    return tuple(net - share * unit for net, share in zip(nets, shares, strict=True))


def paid(order: ModelOrder, terms: Terms) -> Paid:
    goods_paid = Fraction(order.total) - Fraction(order.shipping) - Fraction(order.tax)
    extras = (Fraction(order.shipping) if terms.earn_on_shipping else Fraction(0)) + (
        Fraction(order.tax) if terms.earn_on_tax else Fraction(0)
    )
    if not order.lines:
        return Paid((), goods_paid, goods_paid, extras)
    nets = [line.net for line in order.lines]
    goods = min(goods_paid, sum(nets, Fraction(0)) - Fraction(order.discount))
    return Paid(
        spread(nets, sum(nets, Fraction(0)) - goods, order.currency),
        goods,
        sum((line.listed for line in order.lines), Fraction(0)),
        extras,
    )


def order_shares(order: ModelOrder, terms: Terms, rules: list[ModelRule], at: datetime, zone: str) -> tuple[Part, ...]:
    """What an order earns at ``at`` under the program's rate and the order rules in force,
    before milestones and caps: the breakdown (it sums to the points)."""
    bought = paid(order, terms)
    rate = Fraction(terms.per_unit)
    base = bought.goods + bought.extras
    listed = rounded((bought.listed + bought.extras) * rate, terms.rounding)
    parts: list[Part] = [("base", listed, None)]
    if discount := rounded(base * rate, terms.rounding) - listed:
        parts.append(("discount", discount, None))
    weekday = WEEKDAYS[at.astimezone(ZoneInfo(zone)).weekday()]
    for rule in ranked(rules):
        if rule.kind not in ORDER_RULES or not rule.in_force(at):
            continue
        if rule.min_order_total is not None and order.total < rule.min_order_total:
            continue
        if rule.weekdays and weekday not in rule.weekdays:
            continue
        if rule.kind == "order_bonus":
            points = rule.points or 0
        else:
            extra = Fraction(rule.factor or 1) - 1
            if rule.kind == "line_multiplier":
                eligible = sum(
                    (
                        cost
                        for line, cost in zip(order.lines, bought.line_costs, strict=True)
                        if line.sku in rule.skus or (line.category is not None and line.category in rule.categories)
                    ),
                    Fraction(0),
                )
            else:
                eligible = base
            points = rounded(eligible * rate * extra, terms.rounding)
        if points:
            parts.append(("rule", points, rule.rule_id))
    return tuple(parts)


def share_of_base(order: ModelOrder, terms: Terms, multiplier: Decimal) -> int:
    """A tier's or a plan's multiplier: its extra share of the order's base (what was paid for
    the goods and the extras that earn), rounded once."""
    bought = paid(order, terms)
    return rounded(
        (bought.goods + bought.extras) * Fraction(terms.per_unit) * (Fraction(multiplier) - 1), terms.rounding
    )


def milestone_shares(rules: list[ModelRule], number: int, at: datetime) -> tuple[Part, ...]:
    """What the member's ``number``-th order gives under the milestones in force."""
    return tuple(
        ("rule", rule.points or 0, rule.rule_id)
        for rule in ranked(rules)
        if rule.kind == "milestone"
        and rule.in_force(at)
        and ((rule.every is not None and number % rule.every == 0) or rule.at == number)
    )


# --- periods and counters ------------------------------------------------------------------------


def period(per: str, at: datetime, zone: str) -> str:
    """The tenant-local period holding ``at``, as counter names spell it (weeks: ISO weeks)."""
    local = at.astimezone(ZoneInfo(zone))
    if per == "day":
        return f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
    if per == "week":
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if per == "month":
        return f"{local.year:04d}-{local.month:02d}"
    if per == "year":
        return f"{local.year:04d}"
    assert per == "ever", per
    return "ever"


def overall_counter(member_id: str, per: str, at: datetime, zone: str) -> str:
    """README: ``COUNTER#cap:<member>:<period>`` (counters are per period, not per rule)."""
    return f"cap:{member_id}:{period(per, at, zone)}"


def campaign_counter(rule_id: str, member_id: str, per: str, at: datetime, zone: str) -> str:
    return f"cap:{rule_id}:{member_id}:{period(per, at, zone)}"


def activity_counter(rule_id: str, member_id: str, per: str, at: datetime, zone: str) -> str:
    return f"activity:{rule_id}:{member_id}:{period(per, at, zone)}"


# --- activities ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityEarning:
    """What an activity earns, or why it is refused (``refusal``)."""

    refusal: str | None = None
    parts: tuple[Part, ...] = ()
    #: One use of each allowance that gave a share.
    uses: tuple[CounterMove, ...] = ()

    @property
    def points(self) -> int:
        return sum(points for _, points, _ in self.parts)


def activity_earning(
    rules: list[ModelRule], member_id: str, activity: str, at: datetime, zone: str, counters: dict[str, int]
) -> ActivityEarning:
    """The activity rules in force for ``activity``, each giving its points while its allowance
    lasts; none: ``activity_not_rewarded``; every allowance used: ``limit_reached``."""
    matching = [rule for rule in ranked(rules) if rule.kind == "activity" and rule.activity == activity]
    matching = [rule for rule in matching if rule.in_force(at)]
    if not matching:
        return ActivityEarning("activity_not_rewarded")
    parts: list[Part] = []
    uses: list[CounterMove] = []
    for rule in matching:
        if rule.limit is not None and rule.per is not None:
            name = activity_counter(rule.rule_id, member_id, rule.per, at, zone)
            if counters.get(name, 0) >= rule.limit:
                continue
            uses.append((name, 1, rule.limit))
        parts.append(("rule", rule.points or 0, rule.rule_id))
    if not parts:
        return ActivityEarning("limit_reached")
    return ActivityEarning(None, tuple(parts), tuple(uses))


# --- caps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capped:
    points: int
    breakdown: tuple[Part, ...]
    #: The cap counters the earn moves (overall ones first, then the campaigns).
    moves: tuple[CounterMove, ...] = ()

    @property
    def cut(self) -> int:
        return -sum(points for source, points, _ in self.breakdown if source == "cap")


def apply_caps(
    points: int,
    breakdown: tuple[Part, ...],
    rules: list[ModelRule],
    member_id: str,
    at: datetime,
    zone: str,
    counters: dict[str, int],
) -> Capped:
    """``points`` (with its ``breakdown``; empty for plain points and amounts) under the caps
    in force at ``at``: each campaign share cut to what its campaign has left, then the total
    cut to what each overall cap has left (the shortest period first; of several caps of one
    period the smallest). Each cut is a negative ``cap`` share; a cut earn of plain points or
    an amount first gets a ``requested`` share. The overall counters move by the points
    credited, each campaign's by the points it gave once the overall cut was charged to the
    campaigns, latest first."""
    in_force = [rule for rule in ranked(rules) if rule.in_force(at) and rule.cap is not None and rule.per is not None]
    campaign = {
        rule.rule_id: (campaign_counter(rule.rule_id, member_id, rule.per or "", at, zone), rule.cap or 0)
        for rule in in_force
        if rule.kind in ORDER_RULES
    }
    smallest: dict[str, ModelRule] = {}
    for rule in in_force:
        if rule.kind == "earning_cap" and (rule.per not in smallest or (rule.cap or 0) < (smallest[rule.per].cap or 0)):
            smallest[rule.per or ""] = rule
    overall = [
        (overall_counter(member_id, per, at, zone), smallest[per].cap or 0, smallest[per].rule_id)
        for per in PERIODS
        if per in smallest
    ]
    shared = {rule_id for source, _, rule_id in breakdown if source == "rule"}
    if not overall and not shared & set(campaign):
        return Capped(points, breakdown)
    parts: list[Part] = list(breakdown) or ([("requested", points, None)] if points else [])
    result: list[Part] = []
    given: dict[str, int] = {}
    for part in parts:
        result.append(part)
        source, share, rule_id = part
        if source != "rule" or rule_id not in campaign or share <= 0:
            continue
        counter, cap = campaign[rule_id]
        room = max(0, cap - counters.get(counter, 0) - given.get(rule_id, 0))
        allowed = min(share, room)
        given[rule_id] = given.get(rule_id, 0) + allowed
        if allowed < share:
            result.append(("cap", allowed - share, rule_id))
    after_campaigns = total = sum(share for _, share, _ in result)
    for counter, cap, rule_id in overall:
        room = max(0, cap - counters.get(counter, 0))
        if total > room:
            result.append(("cap", room - total, rule_id))
            total = room
    to_charge = after_campaigns - total
    for rule_id in reversed(list(given)):
        charged = min(to_charge, given[rule_id])
        given[rule_id] -= charged
        to_charge -= charged
    moves: list[CounterMove] = [(counter, total, cap) for counter, cap, _ in overall if total > 0]
    moves += [(campaign[rule_id][0], by, campaign[rule_id][1]) for rule_id, by in given.items() if by > 0]
    return Capped(total, breakdown if total == points else tuple(result), tuple(moves))


# --- reversals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarnCounted:
    """An earn of a reference as a reversal sees it: its points and the cap counters it moved."""

    points: int
    counters: tuple[tuple[str, int], ...] = field(default_factory=tuple)


def given_back(earns: list[EarnCounted], before: int, after: int) -> dict[str, int]:
    """What reversing the reference's points from ``before`` to ``after`` (cumulative, taken
    from its earns in the order they were made) gives back to each cap counter: the covered
    share of what each earn moved, cumulatively floored (all of it once the earn is wholly
    reversed; an overall counter, moved by the earn's own points, gets exactly the points)."""
    back: dict[str, int] = {}
    start = 0
    for earn in earns:
        if earn.points <= 0:
            continue
        low = min(max(before - start, 0), earn.points)
        high = min(max(after - start, 0), earn.points)
        start += earn.points
        for name, by in earn.counters:
            if amount := by * high // earn.points - by * low // earn.points:
                back[name] = back.get(name, 0) + amount
    return back
