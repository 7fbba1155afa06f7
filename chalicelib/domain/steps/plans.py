"""A paid plan's change riding in a movement (a join bonus): the plan's grant moves on the
balance and its items are written in the movement's transaction."""

from __future__ import annotations

from chalicelib.domain.movement import Movement, MovementStep


class PlanStep(MovementStep):
    def complete(self, movement: Movement) -> None:
        plan = movement.request.plan
        if plan is None:
            return
        assert movement.after is not None
        movement.after = plan.apply(movement.settled.balance, movement.after)  # PlanWriteStale if decided on another
        movement.writes.append(plan)
