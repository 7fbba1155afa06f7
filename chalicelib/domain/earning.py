"""What an earn gives a member: the earn and the preview share it. Pure over its readers.

An order earns under the rules for the member's tier and segments (and a paid plan's
multiplier), plus the milestone of its next order; then the earning caps in force cut it,
given what their counters have used (each read strongly, only the ones that apply).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.domain.caps import Capped, apply_caps, limits_for
from chalicelib.domain.rules import ORDER_KINDS, milestone_shares

if TYPE_CHECKING:
    from chalicelib.domain.entries import Balance
    from chalicelib.domain.orders import Order
    from chalicelib.domain.plans import PlanGrant
    from chalicelib.domain.rules import EarningRule, RuleService, Share
    from chalicelib.domain.tiers import Tier


def for_member(
    member_id: str,
    balance: Balance,
    order: Order | None,
    points: int,
    breakdown: tuple[Share, ...],
    at: datetime,
    timezone: str,
    rules: list[EarningRule],
    tier: Tier | None,
    grant: PlanGrant | None,
    *,
    earning_rules: RuleService,
    segments_of: Callable[[str], frozenset[str]] | None,
    counter: Callable[[str], int],
    capped: bool,
    requested_name: str = "Requested",
) -> Capped:
    """What an earn of ``points`` (an order's, or plain points or an amount's) gives this
    member at ``at``: ``segments_of`` reads the member's segments only when a rule in force is
    limited to segments; ``counter`` reads a cap's counter."""
    if order is not None:
        in_force = [rule for rule in rules if rule.in_force(at)]
        segments: frozenset[str] = frozenset()
        if segments_of is not None and any(r.segments for r in in_force if r.kind in ORDER_KINDS):
            segments = segments_of(member_id)
        if tier is not None or segments or grant is not None:
            earning = earning_rules.earning(order, at, timezone, tier, segments, rules=rules, plan=grant)
            points, breakdown = earning.points, earning.breakdown
        # Milestones follow the member's order count, read with the balance: a concurrent
        # order moves the version, so each order number is given once.
        milestones = milestone_shares(rules, balance.order_count + 1, at)
        points += sum(share.points for share in milestones)
        breakdown = (*breakdown, *milestones)
    if not capped:
        return Capped(points, breakdown, ())
    return with_caps(member_id, points, breakdown, at, timezone, rules, counter, requested_name=requested_name)


def with_caps(
    member_id: str,
    points: int,
    breakdown: tuple[Share, ...],
    at: datetime,
    timezone: str,
    rules: list[EarningRule],
    counter: Callable[[str], int],
    *,
    requested_name: str = "Requested",
) -> Capped:
    """``points`` cut by the earning caps in force at ``at`` for the member, given what their
    counters have used (``counter`` reads one; the earn reads them strongly, the insights'
    what-if replays them)."""
    campaign, overall = limits_for(rules, member_id, at, timezone)
    # Only the campaigns that gave a share need their counter (one strong read each).
    shared = {share.rule_id for share in breakdown if share.source == "rule"}
    campaign = {rule_id: limit for rule_id, limit in campaign.items() if rule_id in shared}
    used = {limit.counter: counter(limit.counter) for limit in (*campaign.values(), *overall)}
    return apply_caps(points, breakdown, campaign, overall, used, requested_name=requested_name)
