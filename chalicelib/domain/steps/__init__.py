"""The features that ride on every movement, one step each (chalicelib.domain.movement).

``movement_steps`` puts them in the order their hooks must run: a paid plan's change and a
referral's qualification complete before the tier (which shows the member's effective tier
on the balance they leave); the tier decides before the earning rules (which apply to it); challenges come last (a
completion's points are added to what the rules and caps decided).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.domain.steps.challenges import ChallengeStep
from chalicelib.domain.steps.earning import EarningStep
from chalicelib.domain.steps.plans import PlanStep
from chalicelib.domain.steps.referrals import ReferralStep
from chalicelib.domain.steps.tiers import TierStep

if TYPE_CHECKING:
    from chalicelib.domain.challenges import ChallengeService
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.movement import MovementStep
    from chalicelib.domain.referrals import ReferralService
    from chalicelib.domain.rules import RuleService
    from chalicelib.domain.tiers import TierService


def movement_steps(
    *,
    points: Callable[[], PointsService],
    counter: Callable[[str], int],
    rules: RuleService | None = None,
    tiers: TierService | None = None,
    referrals: ReferralService | None = None,
    segments_of: Callable[[str], frozenset[str]] | None = None,
    challenges: ChallengeService | None = None,
) -> tuple[Callable[[], MovementStep], ...]:
    """The steps of the features the tenant's services have, each made afresh per attempt.
    ``points``: the service the steps ride on (a referral's rewards are credited through it);
    ``counter`` reads a limit counter strongly (the caps)."""
    steps: list[Callable[[], MovementStep]] = [PlanStep]
    if referrals is not None:
        steps.append(lambda: ReferralStep(referrals, points))
    if tiers is not None:
        steps.append(lambda: TierStep(tiers))
    if rules is not None:
        steps.append(lambda: EarningStep(rules, counter, segments_of))
    if challenges is not None:
        steps.append(lambda: ChallengeStep(challenges))
    return tuple(steps)
