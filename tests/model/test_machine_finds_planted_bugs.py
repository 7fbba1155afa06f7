"""The state machine has teeth: with a bug planted in the real code, it fails.

Each case patches one behaviour for the duration of a short, deterministic run (no
shrinking: only finding matters here) and expects the machine to report it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from chalicelib.domain import earning, ledger, rules, tiers
from chalicelib.domain.caps import Capped
from chalicelib.domain.entries import Balance, LedgerEntry, Settlement
from chalicelib.domain.errors import LoyaltyError
from chalicelib.domain.expiry import Lot
from chalicelib.domain.ledger import PointsService
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.plans import PlanGrant
from chalicelib.domain.ports import CounterChange, CouponWriteKind, Page
from chalicelib.domain.referrals import ReferralService
from chalicelib.domain.reversals import GiveBack
from chalicelib.domain.rewards import Coupon, Reward, RewardService
from chalicelib.domain.rules import RuleService
from chalicelib.domain.steps import earning as earning_step
from chalicelib.persistence.ledger import LedgerRepository
from tests.model import test_ledger_state_machine as machine
from tests.model.stats import STATS, report


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB Local (faster per step than moto in-process), or moto when it is opted out of."""
    monkeypatch.setattr(machine.CONTEXT, "backend", "planted-bugs")
    monkeypatch.setattr(machine.CONTEXT, "threads", False)  # a search that does not depend on timing
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    if endpoint is not None:
        monkeypatch.setenv("LOYALTY_DYNAMODB_ENDPOINT", endpoint)
        yield
        return
    from moto import mock_aws

    with mock_aws():
        yield


def _forgets_redemptions(original: Callable[..., Balance]) -> Callable[..., Balance]:
    def apply(self: Balance, movement: MovementType, delta: int, now: object) -> Balance:
        after = original(self, movement, delta, now)
        return replace(after, lifetime_redeemed=self.lifetime_redeemed) if movement is MovementType.REDEEM else after

    return apply


def _fingerprint_ignores_points(self: MovementRequest) -> str:
    return hashlib.sha256(f"{self.member_id}|{self.movement}|{self.amount}".encode()).hexdigest()


def _last_page_loses_the_oldest_entry(original: Callable[..., Page[LedgerEntry]]) -> Callable[..., Page[LedgerEntry]]:
    def transactions(self: PointsService, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        page = original(self, member_id, limit=limit, cursor=cursor)
        return page if page.next_cursor else Page(page.items[:-1], None)

    return transactions


def _spendable_at_its_expiry_instant(self: Lot, at: object) -> bool:
    """Off by one: a lot counts as expired only strictly after its expiry."""
    if self.matures_at is not None and self.matures_at > at:  # type: ignore[operator]
        return False
    return self.expires_at is not None and self.expires_at < at  # type: ignore[operator]


def _expires_lots_twice(original: Callable[..., Settlement]) -> Callable[..., Settlement]:
    """A settlement that records an expiry under a key of the balance version and leaves the
    lot in the book: the next settlement expires it again."""

    def settle(*args: object, **kwargs: object) -> Settlement:
        settled = original(*args, **kwargs)
        expired = {e.metadata["lot_id"] for e in settled.entries if e.movement is MovementType.EXPIRE}
        if not expired:
            return settled
        kept = tuple(lot for lot in settled.changes.deleted if lot.lot_id in expired)
        return replace(
            settled,
            entries=[
                replace(e, idempotency_key=f"{e.idempotency_key}@{e.sequence}")
                if e.movement is MovementType.EXPIRE
                else e
                for e in settled.entries
            ],
            lots=(*settled.lots, *kept),
            changes=replace(
                settled.changes, deleted=tuple(lot for lot in settled.changes.deleted if lot.lot_id not in expired)
            ),
        )

    return settle


def _reversals_forget_earlier_reversals(original: Callable[..., list[LedgerEntry]]) -> Callable[..., list[LedgerEntry]]:
    def entries_for_reference(self: LedgerRepository, member_id: str, reference: str) -> list[LedgerEntry]:
        return [e for e in original(self, member_id, reference) if e.movement is not MovementType.REVERSE]

    return entries_for_reference


def _caps_count_only_cut_earns(original: Callable[..., Capped]) -> Callable[..., Capped]:
    """An earn the caps did not cut leaves their counters where they were."""

    def apply_caps(points: int, *args: object, **kwargs: object) -> Capped:
        capped = original(points, *args, **kwargs)
        return capped if capped.points < points else replace(capped, counters=())

    return apply_caps


def _allowances_in_utc_periods(original: Callable[..., str]) -> Callable[..., str]:
    """Activity allowances counted by UTC day, week and month instead of the tenant's."""

    def period_key(per: object, at: object, timezone: str) -> str:
        return original(per, at, "UTC")

    return period_key


def _allowances_of_the_recording_moment(original: Callable[..., object]) -> Callable[..., object]:
    """An activity's rules and allowance taken at the moment it is recorded, not when it happened."""

    def activity(self: RuleService, member_id: str, kind: str, at: object, timezone: str, used: object) -> object:
        return original(self, member_id, kind, self._clock(), timezone, used)

    return activity


def _preview_leaves_caps_out(original: Callable[..., object]) -> Callable[..., object]:
    """The preview for a member computes their order, tier and milestone, but not the caps."""

    def preview(self: PointsService, *args: object, **kwargs: object) -> object:
        for_member = earning_step.for_member
        earning_step.for_member = lambda *a, **k: for_member(*a, **{**k, "capped": False})
        try:
            return original(self, *args, **kwargs)
        finally:
            earning_step.for_member = for_member

    return preview


def _reversals_keep_cap_counters(original: Callable[..., GiveBack]) -> Callable[..., GiveBack]:
    """A reversal takes its points back but gives the caps nothing back."""

    def give_back(*args: object, **kwargs: object) -> GiveBack:
        return replace(original(*args, **kwargs), counters={})

    return give_back


def _milestones_numbered_from_the_last_order(original: Callable[..., object]) -> Callable[..., object]:
    """An order earn gives the milestone of the member's previous order, not of this one."""

    def milestone_shares(earning_rules: object, number: int, at: object) -> object:
        return original(earning_rules, number - 1, at)

    return milestone_shares


def _stock_not_held(original: Callable[..., tuple[CounterChange, ...]]) -> Any:
    """A redemption moves the reward's stock counter without holding it to the stock: oversold."""

    def counters(reward: Reward, coupon: Coupon, sign: int) -> tuple[CounterChange, ...]:
        changes = original(reward, coupon, sign)
        return tuple(replace(c, at_most=None) if c.name == reward.stock_counter else c for c in changes)

    return staticmethod(counters)


def _limit_not_held(original: Callable[..., tuple[CounterChange, ...]]) -> Any:
    """A redemption counts the member's coupons of the reward without holding them to the limit."""

    def counters(reward: Reward, coupon: Coupon, sign: int) -> tuple[CounterChange, ...]:
        changes = original(reward, coupon, sign)
        return tuple(replace(c, at_most=None) if c.name == coupon.limit_counter else c for c in changes)

    return staticmethod(counters)


def _cancel_keeps_the_limit(
    original: Callable[..., tuple[CounterChange, ...]],
) -> Callable[..., tuple[CounterChange, ...]]:
    """A cancellation gives the reward's stock back but not the member's limit."""

    def counters(reward: Reward, coupon: Coupon, sign: int) -> tuple[CounterChange, ...]:
        changes = original(reward, coupon, sign)
        return changes if sign > 0 else tuple(c for c in changes if c.name != coupon.limit_counter)

    return staticmethod(counters)


def _cancel_leaves_the_coupon_issued(original: Callable[..., object]) -> Callable[..., object]:
    """A cancellation credits the points but leaves its coupon write out of the transaction:
    the coupon stays issued, and can be cancelled (and refunded) again."""

    def move(self: PointsService, request: MovementRequest) -> object:
        if any(write.kind is CouponWriteKind.CANCEL for write in request.coupons):
            request = replace(request, coupons=())
        return original(self, request)

    return move


def _grace_forgotten(original: Callable[..., object]) -> Callable[..., object]:
    """A tier reached or confirmed is held only until the end of its own period: the grace
    periods are forgotten."""

    def period_end(program: object, at: object, timezone: str, *, after: int = 0) -> object:
        return original(program, at, timezone, after=0)

    return period_end


def _plan_grants_past_its_end(self: PlanGrant, at: object) -> bool:
    """A paid plan keeps granting its tier and multiplier after its end, until the job lapses it."""
    return self.starts_at <= at  # type: ignore[operator]


def _join_bonus_paid_again(
    get_entry: Callable[..., LedgerEntry | None], move: Callable[..., object]
) -> tuple[Callable[..., LedgerEntry | None], Callable[..., object]]:
    """The join bonus's once-per-member-and-plan check is lost: a member subscribing to the
    plan again is credited its bonus again, under a key of the new subscription."""

    def unchecked(self: LedgerRepository, idempotency_key: str) -> LedgerEntry | None:
        return None if idempotency_key.startswith("plan-bonus:") else get_entry(self, idempotency_key)

    def rekeyed(self: PointsService, request: MovementRequest) -> object:
        key = request.idempotency_key
        if key.startswith("plan-bonus:") and get_entry(self._ledger, key) is not None:
            request = replace(request, idempotency_key=f"{key}:{request.reference}")
        return move(self, request)

    return unchecked, rekeyed


def _referral_rewards_rekeyed_on_rerun(original: Callable[..., object]) -> Callable[..., object]:
    """A completion that runs again (the job, a replay) keys a reward already credited afresh,
    so the referral rewards that side twice."""

    def complete(self: ReferralService, referee_id: str, points: PointsService) -> object:
        minted = ReferralService._reward

        def reward(referral: object, role: str, amount: int, *args: object) -> MovementRequest:
            request = minted(self, referral, role, amount, *args)
            if points._ledger.get_entry(request.idempotency_key) is not None:
                request = replace(request, idempotency_key=f"{request.idempotency_key}:again")
            return request

        self._reward = reward  # type: ignore[method-assign]
        try:
            return original(self, referee_id, points)
        finally:
            del self._reward

    return complete


PLANTED = {
    "a redeem that does not count in lifetime_redeemed": (Balance, "apply", _forgets_redemptions(Balance.apply)),
    "a key replayed with other points treated as the same request": (
        MovementRequest,
        "fingerprint",
        _fingerprint_ignores_points,
    ),
    "a ledger listing that loses the oldest entry": (
        PointsService,
        "transactions",
        _last_page_loses_the_oldest_entry(PointsService.transactions),
    ),
    "a lot still spendable at the instant it expires": (Lot, "expired", _spendable_at_its_expiry_instant),
    "an expiry that leaves the lot in the book, so it expires twice": (
        ledger,
        "settle",
        _expires_lots_twice(ledger.settle),
    ),
    "a reversal bound that forgets earlier reversals of the order": (
        LedgerRepository,
        "entries_for_reference",
        _reversals_forget_earlier_reversals(LedgerRepository.entries_for_reference),
    ),
    "an earn the caps did not cut that does not count against them": (
        earning,
        "apply_caps",
        _caps_count_only_cut_earns(earning.apply_caps),
    ),
    "activity allowances counted in UTC periods, not the tenant's": (
        rules,
        "period_key",
        _allowances_in_utc_periods(rules.period_key),
    ),
    "activity allowances counted when recorded, not when the activity happened": (
        RuleService,
        "activity",
        _allowances_of_the_recording_moment(RuleService.activity),
    ),
    "a preview for a member that leaves the caps out": (
        PointsService,
        "preview",
        _preview_leaves_caps_out(PointsService.preview),
    ),
    "a reversal that gives the cap counters nothing back": (
        ledger,
        "give_back",
        _reversals_keep_cap_counters(ledger.give_back),
    ),
    "a reward's stock not held at the redemption's commit (oversold)": (
        RewardService,
        "_counters",
        _stock_not_held(RewardService._counters),
    ),
    "a member's limit of a reward not held at the redemption's commit": (
        RewardService,
        "_counters",
        _limit_not_held(RewardService._counters),
    ),
    "a cancelled coupon that gives the stock back but not the member's limit": (
        RewardService,
        "_counters",
        _cancel_keeps_the_limit(RewardService._counters),
    ),
    "a cancellation that leaves the coupon issued (refundable again)": (
        PointsService,
        "move",
        _cancel_leaves_the_coupon_issued(PointsService.move),
    ),
    "milestones numbered from the member's previous order": (
        earning,
        "milestone_shares",
        _milestones_numbered_from_the_last_order(earning.milestone_shares),
    ),
    "a tier held without its grace periods": (tiers, "period_end", _grace_forgotten(tiers.period_end)),
    "a paid plan that grants its tier after its end": (PlanGrant, "active_at", _plan_grants_past_its_end),
    "a join bonus paid again when the member subscribes to the plan again": (
        LedgerRepository,
        "get_entry",
        _join_bonus_paid_again(LedgerRepository.get_entry, PointsService.move)[0],
    ),
    "a referral completion rerun that rewards a side again": (
        ReferralService,
        "complete",
        _referral_rewards_rekeyed_on_rerun(ReferralService.complete),
    ),
}
#: Planted bugs that patch a second behaviour: (owner, name, replacement).
ALSO = {
    "a join bonus paid again when the member subscribes to the plan again": (
        PointsService,
        "move",
        _join_bonus_paid_again(LedgerRepository.get_entry, PointsService.move)[1],
    ),
}


#: Bugs that take a longer search than ``make test`` affords (derandomized, 60 examples missed
#: it, 120 found it, 2-3 minutes on 2 CPUs), so ``make soak`` (LOYALTY_SOAK_STEPS set) gives
#: them DEEP_EXAMPLES. Allowances in UTC periods show only for a tenant east of UTC with a
#: daily allowance, at a moment whose local and UTC dates differ: with random seeds the
#: machine needed 4 to 100 examples, and once missed it in 150.
#: A member's limit not held shows only when the member redeems a limited reward again while
#: its stock is not the first to refuse: not found in a 10-minute derandomized search; its soak
#: search is not measured yet. The two cancellation bugs are found in examples 11 and 12 when
#: their test runs alone, but inside the whole suite (other ids, other ties) 20 and 80
#: examples missed them: they are searched by make soak.
#: The plan and referral bugs need three steps in order: a plan granting a tier started, then
#: the clock past its end before the lapse job; a plan with a join bonus started, cancelled
#: (or lapsed) and started again; a referee's qualifying order whose request dies after the
#: referrer's reward, then the job or the retry. 20 derandomized examples missed each of them;
#: with DEEP_EXAMPLES the referral rerun was found in example 64 (1 645 steps, 6 minutes on a
#: shared machine); the two plan bugs' soak search is not measured yet. A tier held without
#: its grace is found in example 4 or 7 (74 and 166 steps), within make test's budget.
DEEP = {
    "a member's limit of a reward not held at the redemption's commit",
    "a cancellation that leaves the coupon issued (refundable again)",
    "a cancelled coupon that gives the stock back but not the member's limit",
    "a lot still spendable at the instant it expires",
    "a reversal bound that forgets earlier reversals of the order",
    "activity allowances counted in UTC periods, not the tenant's",
    "a paid plan that grants its tier after its end",
    "a join bonus paid again when the member subscribes to the plan again",
    "a referral completion rerun that rewards a side again",
    "a reward's stock not held at the redemption's commit (oversold)",
}
QUICK_EXAMPLES, DEEP_EXAMPLES = 20, 400
#: Bugs found within make test's time but past QUICK_EXAMPLES in some runs (the machine's rules
#: grew with the lifecycle): a replay with changed points needs an applied key drawn again,
#: and on a loaded machine (another speed, other ties) 60 examples missed it.
#: The reversal bound was missed at 400 examples by a 10 000-step soak until the machine got
#: its refund_again rule (a second refund of a refunded order); now found in about 70 s.
#: The twice-expired lot is found within 20 examples alone, but missed at 20 inside the whole
#: suite (members' ULIDs order ties differently at another speed), so it gets 60. A reversal
#: that gives the caps nothing back needs an order earn cut by a cap, then its refund: found
#: in examples 6 to 37 as the machine's rules changed. An oversold reward needs a reward with a
#: stock redeemed twice: found in example 34 alone and 54 after this file's other bugs, but missed
#: at 60 inside the whole suite twice (the search depends on what ran before it in the process),
#: so make soak searches it (the stock held under racing redemptions is proven in make test by
#: tests/concurrency/test_reward_stock.py);
#: allowances counted when recorded were found in example 7 or 8, and missed at 20 once.
EXAMPLES = {
    "a key replayed with other points treated as the same request": 150,
    "an expiry that leaves the lot in the book, so it expires twice": 60,
    "a reversal that gives the cap counters nothing back": 60,
    "activity allowances counted when recorded, not when the activity happened": 80,
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_machine_reports_a_planted_bug(bug: str, backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    if bug in DEEP and not os.environ.get("LOYALTY_SOAK_STEPS"):
        pytest.skip("a deep planted bug: found by `make soak` (120+ examples), not in make test's budget")
    owner, name, planted = PLANTED[bug]
    monkeypatch.setattr(owner, name, planted)
    if bug in ALSO:
        monkeypatch.setattr(*ALSO[bug])
    quick = settings(
        max_examples=DEEP_EXAMPLES if bug in DEEP else EXAMPLES.get(bug, QUICK_EXAMPLES),
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    # Reported as a broken invariant, or as a refusal the model did not expect (a lot expired
    # twice leaves a later debit short: InsufficientPoints out of an interleaved operation).
    steps, examples = STATS.steps["planted-bugs"], STATS.examples["planted-bugs"]
    with pytest.raises((AssertionError, LoyaltyError)) as found:
        run_state_machine_as_test(machine.LedgerMachine, settings=quick)
    where = str(found.value).split("\n", 1)[0][:160]
    report(
        f"planted bug {bug!r}: found in example {STATS.examples['planted-bugs'] - examples} at its step "
        f"{machine.CONTEXT.steps} ({STATS.steps['planted-bugs'] - steps} steps in all): {where}"
    )
