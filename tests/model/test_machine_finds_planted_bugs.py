"""The state machine has teeth: with a bug planted in the real code, it fails.

Each case patches one behaviour for the duration of a short, deterministic run (no
shrinking: only finding matters here) and expects the machine to report it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from chalicelib.domain.ledger import Balance, LedgerEntry, MovementRequest, MovementType, PointsService
from chalicelib.domain.ports import Page
from tests.model import test_ledger_state_machine as machine


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB Local (faster per step than moto in-process), or moto when it is opted out of."""
    monkeypatch.setattr(machine.CONTEXT, "backend", "planted-bugs")
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
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_machine_reports_a_planted_bug(bug: str, backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, name, planted = PLANTED[bug]
    monkeypatch.setattr(owner, name, planted)
    quick = settings(
        max_examples=20,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine.LedgerMachine, settings=quick)
