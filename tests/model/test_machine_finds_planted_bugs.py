"""The state machine has teeth: with a bug planted in the real code, it fails.

Each case patches one behaviour for the duration of a short, deterministic run (no
shrinking: only finding matters here) and expects the machine to report it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from chalicelib.domain import ledger
from chalicelib.domain.errors import LoyaltyError
from chalicelib.domain.expiry import Lot
from chalicelib.domain.ledger import Balance, LedgerEntry, MovementRequest, MovementType, PointsService, Settlement
from chalicelib.domain.ports import Page
from chalicelib.persistence.ledger import LedgerRepository
from tests.model import test_ledger_state_machine as machine


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
}


#: Bugs that take a longer search than ``make test`` affords (derandomized, 60 examples missed
#: it, 120 found it, 2-3 minutes on 2 CPUs), so ``make soak`` (LOYALTY_SOAK_STEPS set) gives
#: them DEEP_EXAMPLES.
DEEP = {
    "a lot still spendable at the instant it expires",
    "a reversal bound that forgets earlier reversals of the order",
}
QUICK_EXAMPLES, DEEP_EXAMPLES = 20, 400
#: Bugs found within make test's time but past QUICK_EXAMPLES in some runs (the machine's rules
#: grew with the lifecycle): a replay with changed points needs an applied key drawn again,
#: and on a loaded machine (another speed, other ties) 60 examples missed it.
#: The reversal bound was missed at 400 examples by a 10 000-step soak until the machine got
#: its refund_again rule (a second refund of a refunded order); now found in about 70 s.
#: The twice-expired lot is found within 20 examples alone, but missed at 20 inside the whole
#: suite (members' ULIDs order ties differently at another speed), so it gets 60.
EXAMPLES = {
    "a key replayed with other points treated as the same request": 150,
    "an expiry that leaves the lot in the book, so it expires twice": 60,
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_machine_reports_a_planted_bug(bug: str, backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    if bug in DEEP and not os.environ.get("LOYALTY_SOAK_STEPS"):
        pytest.skip("a deep planted bug: found by `make soak` (120+ examples), not in make test's budget")
    owner, name, planted = PLANTED[bug]
    monkeypatch.setattr(owner, name, planted)
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
    with pytest.raises((AssertionError, LoyaltyError)):
        run_state_machine_as_test(machine.LedgerMachine, settings=quick)
