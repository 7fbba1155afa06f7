"""One attempt of a point movement, run through named steps. Pure.

The ledger (chalicelib.domain.ledger) runs every earn, redeem, adjust and reversal the same
way, and the features that ride on movements plug in with one ``MovementStep`` each:

1. **read**: the balance and its lots, with what was due recorded first (the ledger's own);
2. **decide**: each step reads what it needs and decides what the movement gives (the
   member's tier, the earning rules and caps);
3. **apply**: the balance arithmetic over the lots (the ledger's own: credit, debit, reverse);
4. **complete**: each step adds to the balance the movement leaves and to the transaction's
   writes (tier qualification, a referral qualified, a plan's change, the order count);
5. **commit**: one conditional transaction of the entries, the balance, the lot changes and
   the steps' writes; a write refused by its condition says how the movement ends;
6. **after**: each step may act on the committed result (or on the replay of one).

A new feature adds a step (and, if it writes items of its own, a writer in persistence), not
a branch in the ledger or an argument to its commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.domain.expiry import Lot, LotChanges
    from chalicelib.domain.ledger import Balance, MovementRequest, MovementResult, Settlement
    from chalicelib.domain.plans import PlanGrant
    from chalicelib.domain.ports import CounterChange
    from chalicelib.domain.reversals import Removal
    from chalicelib.domain.rules import EarningRule, Share
    from chalicelib.domain.tiers import Tier


@dataclass
class Movement:
    """What the steps of one attempt see and shape."""

    request: MovementRequest
    now: datetime
    #: The balance as read, with what was due recorded (its entries ride in the commit).
    settled: Settlement
    #: The normalised amount the points came from (an earn or refund of an amount), if any.
    amount: str | None
    #: The signed change of points asked so far (decide may change an earn's).
    points: int
    #: Order earns and activities: which rule (or the base rate) gave what.
    breakdown: tuple[Share, ...] = ()
    #: Every earning rule, read once for the movement (order earns and capped earns), else None.
    rules: list[EarningRule] | None = None
    #: A paid plan's grant in force on the balance read (None: none).
    grant: PlanGrant | None = None
    #: decide: the member's effective tier for this movement (rules limited to tiers use it).
    tier: Tier | None = None
    #: decide or apply: the counters the entry moves (earning caps; a reversal gives them back).
    counters: tuple[CounterChange, ...] = ()
    #: apply: what a reversal takes out of the tier qualification of the earns it reverses.
    removals: tuple[Removal, ...] = ()
    #: apply: the points a reversal asked back, and the pending points it took.
    requested: int | None = None
    pending_change: int | None = None
    #: apply: the entry's transaction id.
    transaction_id: str | None = None
    #: apply: the lot the credit formed, and every lot change of the movement (settlement's too).
    lot: Lot | None = None
    changes: LotChanges | None = None
    #: apply, then complete: the balance the movement leaves.
    after: Balance | None = None
    #: complete: the balance as the answer shows it (a paid plan's tier when higher), if not ``after``.
    shown: Balance | None = None
    #: complete: what else the transaction writes, each under its own condition (persistence
    #: knows how to write each kind). A write whose condition fails ends the movement.
    writes: list[object] = field(default_factory=list)


class MovementStep:
    """A feature's part in every movement. Each hook does nothing unless the feature needs it."""

    def decide(self, movement: Movement) -> None:
        """Before the balance arithmetic: read what the feature needs, decide what it gives."""

    def complete(self, movement: Movement) -> None:
        """After it: the balance's other figures (``movement.after``) and the feature's writes."""

    def after(self, request: MovementRequest, result: MovementResult) -> None:
        """Once the movement is committed, or replayed: act on it (never fails the movement)."""
