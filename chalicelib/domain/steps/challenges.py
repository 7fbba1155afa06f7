"""Challenges in a movement: an order earned, an activity or a reversal moves the member's
progress in the challenges it counts for, in the movement's own transaction (each progress
item written only if still at the version read, so racing orders serialise and a challenge
completes once). A completion's points ride in the movement as a ``challenge`` share; its
badge and events are written with it. Nothing is read while the program says no challenge
was ever stored."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalicelib.domain.challenges import Advance, ChallengeWrite, plan, with_transaction
from chalicelib.domain.movement import Movement, MovementStep
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.rules import Share
from chalicelib.domain.tiers import SPEND_SCALE

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.domain.challenges import ChallengeService
    from chalicelib.domain.movement_requests import MovementRequest


class ChallengeStep(MovementStep):
    def __init__(self, challenges: ChallengeService) -> None:
        self._challenges = challenges
        self._writes: list[ChallengeWrite] = []

    def decide(self, movement: Movement) -> None:
        request = movement.request
        move = advance_of(request, movement.amount, movement.now)
        if move is None:
            return
        board = self._challenges.board(request.member_id, move)
        if board is None:
            return
        self._writes = plan(
            board,
            request.member_id,
            move,
            movement.now,
            tier=movement.tier.name if movement.tier is not None else None,
            segments=lambda: self._challenges.segments_of(request.member_id),
        )
        for write in self._writes:
            challenge = write.challenge
            if write.completed and challenge is not None and challenge.reward_points > 0:
                movement.points += challenge.reward_points
                movement.breakdown = (
                    *movement.breakdown,
                    Share("challenge", challenge.name, challenge.reward_points, rule_id=challenge.challenge_id),
                )

    def complete(self, movement: Movement) -> None:
        movement.writes.extend(with_transaction(write, movement.transaction_id) for write in self._writes)


def advance_of(request: MovementRequest, amount: str | None, now: datetime) -> Advance | None:
    """What the movement brings to challenges: an order earned, an activity recorded, or the
    reversal of a reference (None: nothing)."""
    at = request.occurred_at or now
    if request.movement is MovementType.EARN and request.order is not None:
        return Advance(
            at=at,
            timezone=request.timezone,
            order=request.reference or request.order.order_id,
            spend=int(request.order.total * SPEND_SCALE),
        )
    if request.movement is MovementType.EARN and request.metadata.get("activity"):
        return Advance(at=at, timezone=request.timezone, activity=request.metadata["activity"])
    if request.movement is MovementType.REVERSE and request.reference:
        refund = int(Decimal(amount) * SPEND_SCALE) if amount is not None else None
        return Advance(at=at, timezone=request.timezone, reversal_of=request.reference, refund=refund)
    return None
