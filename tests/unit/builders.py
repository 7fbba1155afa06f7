"""Builders for unit tests: the domain services wired to the in-memory stores, a settable clock and a
``sleep`` that records the delays it is asked for instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chalicelib.domain.ledger import PointsService, RetryPolicy
from chalicelib.domain.members import MemberService, NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import ProgramService
from tests.support.memory import InMemoryLedgerStore, InMemoryMemberStore, InMemoryProgramStore

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Ledgerland:
    """One tenant's services over in-memory stores."""

    clock: FakeClock
    ledger: InMemoryLedgerStore
    member_store: InMemoryMemberStore
    program_store: InMemoryProgramStore
    members: MemberService
    program: ProgramService
    points: PointsService
    delays: list[float] = field(default_factory=list)

    def enrol(self, external_id: str | None = None) -> str:
        return self.members.enrol(NewMember(external_id=external_id)).member_id

    def service(self, retry: RetryPolicy) -> PointsService:
        """Another PointsService over the same stores, with its own retry policy (same delays list)."""
        return PointsService(self.ledger, self.program, clock=self.clock, retry=retry, sleep=self.delays.append)

    def available(self, member_id: str) -> int:
        return self.points.balance(member_id).available


def earn(member_id: str, key: str, points: int, **extra: object) -> MovementRequest:
    return MovementRequest(member_id=member_id, movement=MovementType.EARN, idempotency_key=key, points=points, **extra)


def redeem(member_id: str, key: str, points: int, **extra: object) -> MovementRequest:
    return MovementRequest(
        member_id=member_id, movement=MovementType.REDEEM, idempotency_key=key, points=points, **extra
    )


def adjust(member_id: str, key: str, points: int, reason: str = "correction", **extra: object) -> MovementRequest:
    return MovementRequest(
        member_id=member_id, movement=MovementType.ADJUST, idempotency_key=key, points=points, reason=reason, **extra
    )


def earn_amount(member_id: str, key: str, amount: str, currency: str = "EUR") -> MovementRequest:
    return MovementRequest(
        member_id=member_id, movement=MovementType.EARN, idempotency_key=key, amount=amount, currency=currency
    )


def build_world() -> Ledgerland:
    clock = FakeClock()
    ledger = InMemoryLedgerStore()
    member_store = InMemoryMemberStore(ledger)
    program_store = InMemoryProgramStore()
    program = ProgramService(program_store, clock=clock)
    delays: list[float] = []
    points = PointsService(ledger, program, clock=clock, sleep=delays.append)
    return Ledgerland(
        clock=clock,
        ledger=ledger,
        member_store=member_store,
        program_store=program_store,
        members=MemberService(member_store, clock=clock),
        program=program,
        points=points,
        delays=delays,
    )
