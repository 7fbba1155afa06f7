"""What a reversal takes back: the points a refund by amount is worth, and what a reversal
gives back besides points (the tier qualification and the earning-cap counters the reversed
earns had moved). Pure.

A refund by amount takes back the reference's points in proportion to the refunded share of
what was paid for them, cumulatively: after refunds totalling R of the P paid, floor(E * R / P)
of the E points earned have been asked back in all, so refunds adding up to what was paid
take back every point (whatever multipliers, rules or tiers gave them) and never more. The
ledger's reversals by amount and the commerce intake's refunds both use ``refund_points``.

A reference (an order id) may have several earns and several reversals. Reversals take the
reference's earned points back in the order the earns were made (oldest first): after ``n``
points were reversed in all, the first earn is covered up to ``n``, the next from where the
first ends, and so on. For each earn, what is covered of its points decides what comes back:

* its points, exactly, from the tier month bucket it was counted in (its ``occurred_at``);
* its spend in proportion, cumulatively floored, so that all of it comes back once the earn
  is wholly reversed and never more;
* its order, once the earn is wholly reversed;
* each cap counter it moved, in proportion like the spend (an overall cap counter moved by
  the earn's own points, so exactly the points reversed come back).

Earns that credited no points (capped to 0) have nothing to reverse, so their order and
spend stay counted (documented in the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


def refund_points(earned: int, paid: Decimal, refunded_before: Decimal, refund: Decimal, asked_before: int) -> int:
    """The points a refund of ``refund`` asks back, for a reference that earned ``earned``
    points on ``paid`` (> 0), after earlier refunds of ``refunded_before`` and reversals that
    asked ``asked_before`` points back. Exact: integer division of exact decimals."""
    if paid <= 0:
        raise ValueError("a refund by amount needs what was paid")
    refunded = min(refunded_before + refund, paid)
    due = int((Decimal(earned) * refunded) // paid)
    return max(0, due - asked_before)


@dataclass(frozen=True)
class EarnPart:
    """What one earn of the reference contributed."""

    points: int
    occurred_at: datetime
    #: Thousandths of the currency unit (tiers.SPEND_SCALE); 0 for earns of plain points.
    spend: int = 0
    orders: int = 0
    #: The cap counters the earn moved, and by how much.
    counters: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Removal:
    """What to take out of the tier month bucket holding ``occurred_at``."""

    occurred_at: datetime
    points: int
    spend: int
    orders: int


@dataclass(frozen=True)
class GiveBack:
    removals: tuple[Removal, ...] = ()
    #: Counter name -> how much to take off it (positive).
    counters: dict[str, int] = field(default_factory=dict)


def give_back(earns: Sequence[EarnPart], before: int, after: int) -> GiveBack:
    """What reversing the points from ``before`` to ``after`` (cumulative, over the reference's
    ``earns`` in the order they were made) gives back."""
    removals: list[Removal] = []
    counters: dict[str, int] = {}
    start = 0
    for earn in earns:
        total = earn.points
        if total <= 0:
            continue
        low = min(max(before - start, 0), total)
        high = min(max(after - start, 0), total)
        start += total
        if high <= low:
            continue
        spend = earn.spend * high // total - earn.spend * low // total
        orders = earn.orders if high == total else 0
        removals.append(Removal(earn.occurred_at, high - low, spend, orders))
        for name, by in earn.counters:
            back = by * high // total - by * low // total
            if back:
                counters[name] = counters.get(name, 0) + back
    return GiveBack(tuple(removals), counters)
