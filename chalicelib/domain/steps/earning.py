"""Earning rules and caps in a movement: what an earn gives this member (tier, segments,
milestones, caps; chalicelib.domain.earning) and the cap counters it moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.domain.earning import for_member
from chalicelib.domain.ledger import MovementType
from chalicelib.domain.movement import Movement, MovementStep

if TYPE_CHECKING:
    from chalicelib.domain.rules import RuleService


class EarningStep(MovementStep):
    def __init__(
        self,
        rules: RuleService,
        counter: Callable[[str], int],
        segments_of: Callable[[str], frozenset[str]] | None = None,
    ) -> None:
        self._rules = rules
        self._counter = counter
        self._segments_of = segments_of

    def decide(self, movement: Movement) -> None:
        request = movement.request
        if request.movement is not MovementType.EARN or movement.rules is None:
            return
        plain = movement.amount is not None and request.order is None
        capped = for_member(
            request.member_id,
            movement.settled.balance,
            request.order,
            movement.points,
            movement.breakdown,
            request.occurred_at or movement.now,
            request.timezone,
            movement.rules,
            movement.tier,
            movement.grant,
            earning_rules=self._rules,
            segments_of=self._segments_of,
            counter=self._counter,
            capped=request.capped,
            requested_name="Base rate" if plain else "Requested",
        )
        movement.points, movement.breakdown, movement.counters = capped.points, capped.breakdown, capped.counters
