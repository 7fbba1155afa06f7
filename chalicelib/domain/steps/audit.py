"""A manual adjustment's audit entry, written in the adjustment's own ledger transaction."""

from __future__ import annotations

from chalicelib.domain.audit import SYSTEM, Actor, AuditAction, Auditor
from chalicelib.domain.movement import Movement, MovementStep
from chalicelib.domain.movement_requests import MovementType


class AuditStep(MovementStep):
    def complete(self, movement: Movement) -> None:
        request = movement.request
        if request.movement is not MovementType.ADJUST:
            return
        assert movement.after is not None
        actor = Actor(request.actor_key_id) if request.actor_key_id is not None else SYSTEM
        entry = Auditor(actor).entry(
            AuditAction.POINTS_ADJUSTED,
            "member",
            request.member_id,
            before={"available": movement.settled.balance.available},
            after={
                "available": movement.after.available,
                "points": movement.points,
                "reason": request.reason,
                "transaction_id": movement.transaction_id,
            },
            at=movement.now,
        )
        movement.writes.append(entry)
