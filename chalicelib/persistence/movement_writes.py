"""What a movement's steps add to the ledger's transaction (chalicelib.domain.movement), and
how each is written: one writer per kind of write, so a feature that writes items of its own
adds a writer here, not an argument to the ledger's commit.

A writer may add actions to the balance's update, adds its items to the transaction (each
under its own condition, labelled with the write so a refusal is recognised) and names the
error its own refused condition raises. Writers run in ``RANK`` order, the order the
transaction has always been built in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.domain.challenges import ChallengeWrite
from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.plans import PlanWrite, PlanWriteRefused
from chalicelib.domain.ports import CounterChange, CounterLimitReached, CouponWrite, CouponWriteRefused
from chalicelib.domain.referrals import ReferralQualification
from chalicelib.domain.tiers import TierWrite
from chalicelib.persistence.challenges import add_challenge_write
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import COUNTER_PREFIX, COUNTER_SK
from chalicelib.persistence.models import BalanceItem
from chalicelib.persistence.plans import add_plan_write, plan_actions, refused_plan_items
from chalicelib.persistence.quotas import GuardedTransactWrite
from chalicelib.persistence.referrals import add_referral_qualification
from chalicelib.persistence.rewards import add_coupon_write
from chalicelib.persistence.tiers import add_tier_write


class Writer(Protocol):
    def balance_actions(self, balance: type[BalanceItem], write: Any, new: Balance) -> list[Any]: ...
    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: Any, entries: Sequence[LedgerEntry]
    ) -> None: ...
    def refused(self, write: Any, labels: Sequence[object]) -> Exception | None: ...


class _Writer:
    """Defaults: nothing on the balance; a refused condition is the balance's (BalanceChanged)."""

    def balance_actions(self, balance: type[BalanceItem], write: Any, new: Balance) -> list[Any]:
        return []

    def refused(self, write: Any, labels: Sequence[object]) -> Exception | None:
        return None


class _Tier(_Writer):
    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: TierWrite, entries: Sequence[LedgerEntry]
    ) -> None:
        add_tier_write(models, tx, write)


class _Referral(_Writer):
    def add(
        self,
        models: TenantModels,
        tx: GuardedTransactWrite,
        write: ReferralQualification,
        entries: Sequence[LedgerEntry],
    ) -> None:
        add_referral_qualification(models, tx, write)


class _Counter(_Writer):
    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: CounterChange, entries: Sequence[LedgerEntry]
    ) -> None:
        counter = models.counter
        limit = None
        if write.at_most is not None:
            limit = counter.value.does_not_exist() | (counter.value <= write.at_most - write.by)
        tx.update(
            counter(pk=f"{COUNTER_PREFIX}{write.name}", sk=COUNTER_SK),
            actions=[counter.value.add(write.by)],
            condition=limit,
            label=write,
        )

    def refused(self, write: CounterChange, labels: Sequence[object]) -> Exception | None:
        return CounterLimitReached(write) if any(label is write for label in labels) else None


class _Coupon(_Writer):
    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: CouponWrite, entries: Sequence[LedgerEntry]
    ) -> None:
        add_coupon_write(models, tx, write)

    def refused(self, write: CouponWrite, labels: Sequence[object]) -> Exception | None:
        return CouponWriteRefused(write) if any(label is write for label in labels) else None


class _Plan(_Writer):
    """A join bonus: the plan change rides in its ledger transaction."""

    def balance_actions(self, balance: type[BalanceItem], write: PlanWrite, new: Balance) -> list[Any]:
        return plan_actions(balance, new)

    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: PlanWrite, entries: Sequence[LedgerEntry]
    ) -> None:
        add_plan_write(models, tx, write, bonus_transaction_id=entries[-1].transaction_id)

    def refused(self, write: PlanWrite, labels: Sequence[object]) -> Exception | None:
        return PlanWriteRefused(write.member_id) if refused_plan_items(write, list(labels)) else None


class _Challenge(_Writer):
    """A member's progress in a challenge (refused: another movement moved it; decide again)."""

    def add(
        self, models: TenantModels, tx: GuardedTransactWrite, write: ChallengeWrite, entries: Sequence[LedgerEntry]
    ) -> None:
        add_challenge_write(models, tx, write)


#: Each kind of write, its writer, and its place: before the lot changes (``RANK`` < 0) or after.
WRITERS: dict[type, tuple[int, Writer]] = {
    TierWrite: (-2, _Tier()),
    ReferralQualification: (-1, _Referral()),
    CounterChange: (1, _Counter()),
    CouponWrite: (2, _Coupon()),
    PlanWrite: (3, _Plan()),
    ChallengeWrite: (4, _Challenge()),
}


def writer_of(write: object) -> tuple[int, Writer]:
    try:
        return WRITERS[type(write)]
    except KeyError:
        raise TypeError(f"the ledger's commit has no writer for {type(write).__name__}") from None


def in_order(writes: Sequence[object]) -> list[tuple[object, Writer]]:
    """The writes with their writers, in transaction order (stable within a kind)."""
    ranked = sorted(enumerate(writes), key=lambda pair: (writer_of(pair[1])[0], pair[0]))
    return [(write, writer_of(write)[1]) for _, write in ranked]
