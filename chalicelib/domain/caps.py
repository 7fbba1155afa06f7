"""Earning caps: at most so many points per member and period. Pure.

Two kinds, both earning rules (chalicelib.domain.rules), so they have windows and are never
edited, only ended:

* an **overall cap** (``earning_cap`` rule): at most ``cap`` points earned by a member per
  day, week, month, year or ever, whatever earned them (orders, amounts, points, activities);
* a **campaign cap** (``cap`` and ``per`` on an order rule): at most ``cap`` points from that
  rule per member and period.

Periods are the tenant's local ones holding the earn's ``occurred_at`` (weeks are ISO weeks,
from Monday), like activity allowances and tier month buckets. Each cap is a counter
(``CounterChange``) moved in the earn's own ledger transaction under the condition that it
stays within the cap, so parallel earns can never pass it: one that read a stale counter has
its transaction cancelled, re-reads and is capped again (never refused).

How an earn is capped (``apply_caps``), given the counters as read:

1. each campaign share is cut to what its campaign cap has left (``campaign`` caps);
2. the total is cut to what every overall cap has left, the day's first, then the week's,
   month's, year's and ever's (several overall cap rules of the same period: the smallest);
3. each cut is a negative share of the breakdown (source ``cap``), so the breakdown still
   sums to the points; a capped earn of plain points or an amount first gets a
   ``requested`` share holding what was asked;
4. the overall counters move by the points credited, each campaign counter by the points its
   campaign actually gave: an overall cut is taken from the campaign shares first (the
   latest rule first), then from the rest, so a campaign's allowance is used only by points
   the member really got.

An earn cut to 0 points is still recorded (0 points, its breakdown says why): the order
happened, it counts for milestones and tier orders and spend, and a replay answers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.ports import CounterChange
from chalicelib.domain.rules import ORDER_KINDS, EarningRule, Per, RuleKind, Share, period_key

#: The order overall caps are applied in (the shortest period bites first).
PERIOD_ORDER = (Per.DAY, Per.WEEK, Per.MONTH, Per.YEAR, Per.EVER)
_PERIOD_WORDS = {Per.DAY: "day", Per.WEEK: "week", Per.MONTH: "month", Per.YEAR: "year", Per.EVER: "ever"}


@dataclass(frozen=True)
class CapLimit:
    """One cap as it applies to one earn: its counter (for this member and period) and room."""

    #: The counter's name: ``cap:<member>:<period>`` (overall) or ``cap:<rule>:<member>:<period>``.
    counter: str
    at_most: int
    #: The cap rule (overall) or the campaign rule (campaign cap).
    rule_id: str
    label: str


@dataclass(frozen=True)
class Capped:
    points: int
    breakdown: tuple[Share, ...]
    counters: tuple[CounterChange, ...]

    @property
    def cut(self) -> int:
        return -sum(share.points for share in self.breakdown if share.source == "cap")


def overall_counter(member_id: str, per: Per, at: datetime, timezone: str) -> str:
    return f"cap:{member_id}:{period_key(per, at, timezone)}"


def campaign_counter(rule_id: str, member_id: str, per: Per, at: datetime, timezone: str) -> str:
    return f"cap:{rule_id}:{member_id}:{period_key(per, at, timezone)}"


def _label(rule: EarningRule) -> str:
    if rule.per is None or rule.per is Per.EVER:
        return f"{rule.name}: capped at {rule.cap}"
    return f"{rule.name}: capped at {rule.cap} per {_PERIOD_WORDS[rule.per]}"


def limits_for(
    rules: Sequence[EarningRule], member_id: str, at: datetime, timezone: str
) -> tuple[dict[str, CapLimit], list[CapLimit]]:
    """The caps in force at ``at`` for one member: campaign caps by their rule id, and the
    overall caps (one per period: the smallest cap of that period), shortest period first."""
    campaign: dict[str, CapLimit] = {}
    overall: dict[Per, CapLimit] = {}
    for rule in sorted(rules, key=lambda r: (r.created_at, r.rule_id)):
        if rule.cap is None or rule.per is None or not rule.in_force(at):
            continue
        if rule.kind in ORDER_KINDS:
            counter = campaign_counter(rule.rule_id, member_id, rule.per, at, timezone)
            campaign[rule.rule_id] = CapLimit(counter, rule.cap, rule.rule_id, _label(rule))
        elif rule.kind is RuleKind.EARNING_CAP:
            known = overall.get(rule.per)
            if known is None or rule.cap < known.at_most:
                counter = overall_counter(member_id, rule.per, at, timezone)
                overall[rule.per] = CapLimit(counter, rule.cap, rule.rule_id, _label(rule))
    return campaign, [overall[per] for per in PERIOD_ORDER if per in overall]


def apply_caps(
    points: int,
    breakdown: Sequence[Share],
    campaign: Mapping[str, CapLimit],
    overall: Sequence[CapLimit],
    used: Mapping[str, int],
    *,
    requested_name: str = "Requested",
) -> Capped:
    """``points`` (whose ``breakdown``, if any, sums to it) capped by the campaign and overall
    caps, given what each counter has ``used``. Never gives more than asked, nor more than
    any cap's room; the breakdown of the result sums to its points."""
    if not campaign and not overall:
        return Capped(points, tuple(breakdown), ())
    shares: list[Share] = list(breakdown) or ([Share("requested", requested_name, points)] if points else [])
    result: list[Share] = []
    given: dict[str, int] = {}  # campaign rule id -> points it gives after its own cap
    for share in shares:
        result.append(share)
        limit = campaign.get(share.rule_id or "") if share.source == "rule" else None
        if limit is None or share.points <= 0:
            continue
        room = max(0, limit.at_most - used.get(limit.counter, 0) - given.get(limit.rule_id, 0))
        allowed = min(share.points, room)
        given[limit.rule_id] = given.get(limit.rule_id, 0) + allowed
        if allowed < share.points:
            result.append(Share("cap", limit.label, allowed - share.points, limit.rule_id))
    after_campaigns = total = sum(share.points for share in result)
    for limit in overall:
        room = max(0, limit.at_most - used.get(limit.counter, 0))
        if total > room:
            result.append(Share("cap", limit.label, room - total, limit.rule_id))
            total = room
    # An overall cut comes out of the campaign shares first (the latest first), then the rest.
    to_take = after_campaigns - total
    for rule_id in reversed(list(given)):
        taken = min(to_take, given[rule_id])
        given[rule_id] -= taken
        to_take -= taken
    counters = [
        CounterChange(limit.counter, total, at_most=limit.at_most, retry_on_limit=True)
        for limit in overall
        if total > 0
    ]
    counters += [
        CounterChange(campaign[rule_id].counter, points_given, at_most=campaign[rule_id].at_most, retry_on_limit=True)
        for rule_id, points_given in given.items()
        if points_given > 0
    ]
    return Capped(total, tuple(breakdown) if total == points else tuple(result), tuple(counters))
