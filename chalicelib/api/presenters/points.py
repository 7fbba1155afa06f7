"""Balances and point movements -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from chalicelib.api.presenters.plans import plan_status
from chalicelib.api.presenters.rules import shares
from chalicelib.api.presenters.tiers import tier_status

if TYPE_CHECKING:
    from chalicelib.api.schemas.points import BalanceOut, MovementOut, ReversalOut, TransactionOut
    from chalicelib.domain.entries import BalanceView, LedgerEntry
    from chalicelib.domain.subscriptions import PlanStatus
    from chalicelib.domain.tiers import TierStatus


def balance(view: BalanceView, tiers: TierStatus | None = None, plan: PlanStatus | None = None) -> BalanceOut:
    """``plan``: the paid plan in force (GET balance); the member's tier is then the effective one."""
    from chalicelib.api.schemas.points import BalanceOut, ExpiringSoon

    stored = view.balance
    expiring = ExpiringSoon(points=view.expiring_points, at=view.expiring_at) if view.expiring_at else None
    return BalanceOut(
        member_id=stored.member_id,
        available=view.available,
        pending=view.pending,
        expiring_soon=expiring,
        lifetime_earned=stored.lifetime_earned,
        lifetime_redeemed=stored.lifetime_redeemed,
        lifetime_adjusted=stored.lifetime_adjusted,
        lifetime_expired=stored.lifetime_expired,
        lifetime_reversed=stored.lifetime_reversed,
        updated_at=stored.updated_at,
        tier=plan.effective_tier if plan is not None else tiers.state.tier if tiers is not None else stored.tier,
        tier_status=tier_status(tiers) if tiers is not None else None,
        plan=plan_status(plan) if plan is not None else None,
        lifetime_transferred=stored.lifetime_transferred,
    )


def transaction(entry: LedgerEntry) -> TransactionOut:
    from chalicelib.api.schemas.points import TransactionOut

    return TransactionOut(
        id=entry.transaction_id,
        member_id=entry.member_id,
        type=entry.movement,
        points=entry.points,
        sequence=entry.sequence,
        balance_after=entry.balance_after.available,
        amount=entry.amount,
        currency=entry.currency,
        reference=entry.reference,
        description=entry.description,
        reason=entry.reason,
        metadata=entry.metadata,
        occurred_at=entry.occurred_at,
        created_at=entry.created_at,
        idempotency_key=entry.idempotency_key,
        expires_at=entry.expires_at,
        pending_change=entry.pending_change,
        matures_at=entry.matures_at,
        breakdown=shares(entry.breakdown),
    )


def movement(entry: LedgerEntry) -> MovementOut:
    """The response of a point movement, rebuilt identically from the stored entry on replay."""
    from chalicelib.api.schemas.points import MovementOut

    return MovementOut(transaction=transaction(entry), balance=balance(entry.view_after))


def reversal(entry: LedgerEntry) -> ReversalOut:
    from chalicelib.api.schemas.points import ReversalOut, ReversalSummary

    requested = entry.requested or 0
    taken = -entry.points
    outcome: Literal["stopped_at_zero", "clawed_back", "full"] = (
        "stopped_at_zero" if taken < requested else "clawed_back" if entry.balance_after.available < 0 else "full"
    )
    return ReversalOut(
        transaction=transaction(entry),
        balance=balance(entry.view_after),
        reversal=ReversalSummary(
            requested=requested,
            reversed=taken,
            from_pending=-entry.pending_change,
            from_available=taken + entry.pending_change,
            outcome=outcome,
        ),
    )
