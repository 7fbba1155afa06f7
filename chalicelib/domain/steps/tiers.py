"""Tiers in a movement: the member's tier decides what an order earns (rules limited to
tiers, the tier's multiplier); earns and reversals move the qualifying totals in the same
transaction, and a threshold crossed upgrades the member in it too."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from chalicelib.domain.ledger import MovementType
from chalicelib.domain.movement import Movement, MovementStep
from chalicelib.domain.plans import active_grant, effective_tier
from chalicelib.domain.tiers import SPEND_SCALE

if TYPE_CHECKING:
    from chalicelib.domain.tiers import TierProgram, TierService, TierState


class TierStep(MovementStep):
    def __init__(self, tiers: TierService) -> None:
        self._tiers = tiers
        self._program: TierProgram | None = None
        self._state: TierState | None = None
        self._read = False

    def decide(self, movement: Movement) -> None:
        if movement.request.movement not in (MovementType.EARN, MovementType.REVERSE):
            return
        # The member's tier at this moment (a review already due is applied first; a paid
        # plan's tier if higher): its multiplier and the rules limited to it decide what the
        # order earns, with the plan's own multiplier.
        self._program, self._state = self._tiers.before_earn(movement.settled.balance, movement.now)
        self._read = True
        if self._program is not None:
            name = effective_tier(self._program, self._state.tier, movement.grant, movement.now)
            movement.tier = self._program.tier(name)

    def complete(self, movement: Movement) -> None:
        assert movement.after is not None
        request, now = movement.request, movement.now
        if self._read and self._state is not None:
            earned = request.movement is MovementType.EARN
            spend = int(Decimal(movement.amount) * SPEND_SCALE) if earned and movement.amount is not None else 0
            movement.after, write = self._tiers.after_movement(
                self._program,
                self._state,
                movement.settled.balance,
                movement.after,
                occurred_at=request.occurred_at or now,
                now=now,
                points=movement.points if earned else 0,
                spend=spend,
                orders=1 if earned and request.order is not None else 0,
                removals=movement.removals,
            )
            if write is not None:
                movement.writes.append(write)
        # The answer shows the member's effective tier: a paid plan's when higher (the tier
        # program is read here only if the movement did not read it).
        grant = active_grant(movement.after.plan, now)
        if grant is not None and grant.tier is not None:
            program = self._program if self._read else self._tiers.in_force(now)
            movement.shown = replace(movement.after, tier=effective_tier(program, movement.after.tier, grant, now))
