"""Referrals in a movement: the referee's first qualifying order qualifies the referral in
its own transaction (the balance's version condition makes concurrent orders serialise, so
exactly one of them clears ``referral_from``); once committed, the referral's rewards are
credited (a failure there is left to the complete-referrals job)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.domain.ledger import MovementType
from chalicelib.domain.movement import Movement, MovementStep

if TYPE_CHECKING:
    from chalicelib.domain.ledger import MovementRequest, MovementResult, PointsService
    from chalicelib.domain.referrals import ReferralService


class ReferralStep(MovementStep):
    def __init__(self, referrals: ReferralService, points: Callable[[], PointsService]) -> None:
        self._referrals = referrals
        self._points = points

    def complete(self, movement: Movement) -> None:
        request, balance = movement.request, movement.settled.balance
        if request.order is None or request.movement is not MovementType.EARN or balance.referral_from is None:
            return
        assert movement.after is not None
        qualified = self._referrals.qualification(
            balance, request.order, earn_key=request.idempotency_key, now=movement.now
        )
        if qualified is not None:
            movement.after = replace(movement.after, referral_from=None)
            movement.writes.append(qualified)

    def after(self, request: MovementRequest, result: MovementResult) -> None:
        if request.order is not None and request.movement is MovementType.EARN:
            self._referrals.after_order_earn(result, self._points())
