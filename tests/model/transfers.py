"""Model-based test of transfers: random sequences of earns, redemptions, transfers (between
any two members, of any size, to oneself, past the daily maximum), their replays and
reversals, program changes (expiry policy, transfer policy), clock moves and the expiry job,
on the REAL services and repositories (moto and DynamoDB Local, a clock the machine moves),
each outcome compared with a small reference model of lots.

The reference keeps each member's lots as (points, expiry, origin): an earn adds one (with the
expiry the policy gives); a redemption and a transfer take the unexpired lots FIFO by expiry,
then the never-expiring points; the receiver gets the same points with the same expiries; a
reversal takes back first the lots its transfer gave, then as many never-expiring points as it
gave. Expired lots are never spendable.

Invariants after every step, for every member: what the member may spend now is the model's,
and so are the unexpired points by expiry date (so lots keep their expiry across transfers);
available + pending = the sum of the ledger; available = earned - redeemed + adjusted -
expired - reversed + transferred; available never negative; and across the members the net
transferred is zero and the total held moved only by earns, redemptions and expiries: **a
transfer changes no member's points but its two members', and the total not at all**.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.domain.errors import (
    IdempotencyKeyReused,
    InsufficientPoints,
    LoyaltyError,
    TransferNotAllowed,
)
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import Rounding, TransferPolicy
from chalicelib.domain.tenants import NewTenant
from chalicelib.domain.transfers import TransferRequest
from chalicelib.persistence.factory import shared_client
from chalicelib.services import TenantServices, platform, reset_platform

T0 = datetime(2027, 3, 25, 21, 45, tzinfo=UTC)
TENANT = "kin"
#: The tenant's zone: the daily maximum counts per local day (Helsinki moves its clocks at T0 + 4 days).
TIMEZONE = "Europe/Helsinki"
NEVER = datetime.max.replace(tzinfo=UTC)
EXPIRY_POLICIES = (
    ExpiryPolicy(),
    ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=10),
    ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30),
)
TRANSFER_POLICIES = (
    TransferPolicy(enabled=True),
    TransferPolicy(enabled=True, minimum=5, daily_maximum=300),
    TransferPolicy(enabled=False),
)


class MachineClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ModelLot:
    points: int
    expires_at: datetime | None
    #: The transfer that gave it (a reversal takes these first), if any.
    origin: str | None = None

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at


@dataclass
class ModelMember:
    lots: list[ModelLot] = field(default_factory=list)

    def spendable(self, at: datetime) -> int:
        return sum(lot.points for lot in self.lots if not lot.expired(at))

    def by_expiry(self, at: datetime) -> dict[datetime | None, int]:
        found: dict[datetime | None, int] = defaultdict(int)
        for lot in self.lots:
            if not lot.expired(at) and lot.points:
                found[lot.expires_at] += lot.points
        return dict(found)

    def take(self, points: int, at: datetime, first: str | None = None, plain_first: int = 0) -> list[ModelLot]:
        """FIFO by expiry (never-expiring last); for a reversal (``first``: its transfer), the
        lots the transfer gave that expire, then up to ``plain_first`` never-expiring points,
        before any other."""
        usable = sorted((lot for lot in self.lots if not lot.expired(at)), key=lambda lot: lot.expires_at or NEVER)
        mine = [lot for lot in usable if first and lot.origin == first and lot.expires_at is not None]
        plain = [lot for lot in usable if lot.expires_at is None]
        taken: list[ModelLot] = []
        need = points

        def take_from(lots: list[ModelLot], most: int) -> None:
            nonlocal need
            for lot in lots:
                part = min(need, lot.points, most)
                if part:
                    lot.points -= part
                    need -= part
                    most -= part
                    taken.append(ModelLot(part, lot.expires_at))

        take_from(mine, points)
        take_from(plain, plain_first)
        take_from(usable, points)
        assert need == 0, "the model took more than was spendable"
        self.lots = [lot for lot in self.lots if lot.points]
        return taken


@dataclass
class Sent:
    transfer_id: str
    sender: int
    receiver: int
    points: int
    key: str
    #: Of the points, those that never expire (a reversal takes them back first, after its lots).
    plain: int = 0
    reversed: bool = False


class TransferMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = MachineClock(T0)
        os.environ["LOYALTY_TABLE_PREFIX"] = f"x{uuid.uuid4().hex[:12]}"
        reset_platform()
        services = platform()
        services.provisioner.ensure_control_table()
        self._client = shared_client(services.connection)
        self._tables = [services.settings.control_table_name]
        self.members: list[str] = []
        self.model: list[ModelMember] = []
        self.sent: list[Sent] = []
        #: Points each member sent per local day (the daily maximum).
        self.sent_on: dict[tuple[int, str], int] = defaultdict(int)
        self.expiry = EXPIRY_POLICIES[0]
        self.transfers = TRANSFER_POLICIES[0]
        self.keys = 0
        self.s: TenantServices

    def teardown(self) -> None:
        for table in self._tables:
            try:
                self._client.delete_table(TableName=table)
            except Exception:  # noqa: S110  best effort: the emulator dies with the session anyway
                pass

    def _key(self, what: str) -> str:
        self.keys += 1
        return f"{what}-{self.keys}"

    def _program(self) -> None:
        self.s.program.replace(Decimal(1), Rounding.FLOOR, self.expiry, transfers=self.transfers)

    @initialize(count=st.integers(2, 4), expiry=st.sampled_from(EXPIRY_POLICIES))
    def brand(self, count: int, expiry: ExpiryPolicy) -> None:
        platform().tenants.create(NewTenant(tenant_id=TENANT, name=TENANT, currency="EUR", timezone=TIMEZONE))
        self._tables.append(platform().settings.tenant_table_name(TENANT))
        self.s = platform().for_tenant_id(TENANT, clock=self.clock, timezone=TIMEZONE)
        self.expiry = expiry
        self._program()
        for _ in range(count):
            self.members.append(self.s.members.enrol(NewMember()).member_id)
            self.model.append(ModelMember())

    # --- movements ----------------------------------------------------------------------------------

    @rule(who=st.integers(0, 3), points=st.sampled_from([1, 7, 50, 120, 400]))
    def earn(self, who: int, points: int) -> None:
        who %= len(self.members)
        entry = self.s.points.move(
            MovementRequest(self.members[who], MovementType.EARN, self._key("earn"), points=points, timezone=TIMEZONE)
        ).entry
        self.model[who].lots.append(ModelLot(points, entry.expires_at))
        assert entry.expires_at == self.expiry.expires_at(self.clock.now, TIMEZONE)

    @rule(who=st.integers(0, 3), share=st.sampled_from([0.1, 0.5, 1.0, 1.2]))
    def redeem(self, who: int, share: float) -> None:
        who %= len(self.members)
        spendable = self.model[who].spendable(self.clock.now)
        points = max(1, int(spendable * share))
        request = MovementRequest(self.members[who], MovementType.REDEEM, self._key("redeem"), points=points)
        if points > spendable:
            self._refused(lambda: self.s.points.move(request), InsufficientPoints)
            return
        self.s.points.move(request)
        self.model[who].take(points, self.clock.now)

    @rule(
        sender=st.integers(0, 3),
        receiver=st.integers(0, 3),
        share=st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.5]),
    )
    def transfer(self, sender: int, receiver: int, share: float) -> None:
        sender %= len(self.members)
        receiver %= len(self.members)
        now = self.clock.now
        spendable = self.model[sender].spendable(now)
        points = max(1, int(spendable * share))
        key = self._key("transfer")
        request = TransferRequest(
            self.members[sender], self.members[receiver], points, idempotency_key=key, timezone=TIMEZONE
        )
        policy = self.transfers
        day = now.astimezone(_zone()).date().isoformat()
        if (
            not policy.enabled
            or sender == receiver
            or points < policy.minimum
            or (policy.daily_maximum is not None and self.sent_on[(sender, day)] + points > policy.daily_maximum)
        ):
            self._refused(lambda: self.s.transfers.transfer(request), TransferNotAllowed)
            return
        if points > spendable:
            self._refused(lambda: self.s.transfers.transfer(request), InsufficientPoints)
            return
        result = self.s.transfers.transfer(request)
        assert not result.replayed and result.entry.points == -points
        taken = self.model[sender].take(points, now)
        for lot in taken:
            self.model[receiver].lots.append(ModelLot(lot.points, lot.expires_at, origin=result.transfer_id))
        self.sent_on[(sender, day)] += points
        plain = sum(lot.points for lot in taken if lot.expires_at is None)
        self.sent.append(Sent(result.transfer_id, sender, receiver, points, key, plain))

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(0, 50), same=st.booleans())
    def replay_transfer(self, pick: int, same: bool) -> None:
        sent = self.sent[pick % len(self.sent)]
        request = TransferRequest(
            self.members[sent.sender],
            self.members[sent.receiver],
            sent.points if same else sent.points + 1,
            idempotency_key=sent.key,
            timezone=TIMEZONE,
        )
        if not same:
            self._refused(lambda: self.s.transfers.transfer(request), IdempotencyKeyReused)
            return
        result = self.s.transfers.transfer(request)
        assert result.replayed and result.transfer_id == sent.transfer_id and result.entry.points == -sent.points

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(0, 50))
    def reverse_transfer(self, pick: int) -> None:
        sent = self.sent[pick % len(self.sent)]
        sender = self.members[sent.sender]
        if sent.reversed:
            result = self.s.transfers.reverse(sender, sent.transfer_id, reason=None, actor_key_id=None)
            assert result.replayed and result.entry.points == sent.points
            return
        holder = self.model[sent.receiver]
        if holder.spendable(self.clock.now) < sent.points:
            self._refused(
                lambda: self.s.transfers.reverse(sender, sent.transfer_id, reason=None, actor_key_id=None),
                InsufficientPoints,
            )
            return
        result = self.s.transfers.reverse(sender, sent.transfer_id, reason="model", actor_key_id=None)
        assert not result.replayed and result.entry.points == sent.points
        for lot in holder.take(sent.points, self.clock.now, first=sent.transfer_id, plain_first=sent.plain):
            self.model[sent.sender].lots.append(ModelLot(lot.points, lot.expires_at))
        sent.reversed = True

    # --- the program, the clock and the jobs ----------------------------------------------------------

    @rule(expiry=st.sampled_from(EXPIRY_POLICIES), transfers=st.sampled_from(TRANSFER_POLICIES))
    def change_program(self, expiry: ExpiryPolicy, transfers: TransferPolicy) -> None:
        self.expiry, self.transfers = expiry, transfers
        self._program()

    @rule(hours=st.sampled_from([1, 13, 24, 24 * 6, 24 * 11]))
    def advance(self, hours: int) -> None:
        self.clock.now += timedelta(hours=hours)

    @rule()
    def expire_points(self) -> None:
        self.s.jobs.run(JobName.EXPIRE_POINTS, self.clock.now)
        for member in self.model:
            member.lots = [lot for lot in member.lots if not lot.expired(self.clock.now)]

    # --- invariants --------------------------------------------------------------------------------

    @invariant()
    def ledger_agrees_with_the_model(self) -> None:
        if not self.members:
            return
        now = self.clock.now
        total_held = total_net = 0
        total_identity = 0
        for index, member in enumerate(self.members):
            stored = self.s.points.balance(member)
            view = self.s.points.view(member)
            expected = self.model[index]
            assert view.available == expected.spendable(now), (index, view.available, expected.lots)
            lots = self.s.points.balance_and_lots(member)[1]
            by_expiry: dict[datetime | None, int] = defaultdict(int)
            for lot in lots:
                if not lot.expired(now):
                    by_expiry[lot.expires_at] += lot.remaining
            plain = view.available - sum(by_expiry.values())
            if plain:
                by_expiry[None] += plain
            assert dict(by_expiry) == expected.by_expiry(now), (index, dict(by_expiry), expected.lots)
            entries = self.s.points.transactions(member, limit=100, cursor=None)
            assert entries.next_cursor is None
            assert stored.available + stored.pending == sum(entry.points for entry in entries.items)
            assert stored.available >= 0
            identity = (
                stored.lifetime_earned
                - stored.lifetime_redeemed
                + stored.lifetime_adjusted
                - stored.lifetime_expired
                - stored.lifetime_reversed
            )
            assert stored.available + stored.pending == identity + stored.lifetime_transferred
            transferred = sum(e.points for e in entries.items if e.movement is MovementType.TRANSFER)
            assert stored.lifetime_transferred == transferred
            total_held += stored.available + stored.pending
            total_net += stored.lifetime_transferred
            total_identity += identity
        # Transfers move points between members and never create or destroy any
        assert total_net == 0
        assert total_held == total_identity

    # --- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _refused(call: Any, expected: type[LoyaltyError]) -> None:
        try:
            call()
        except expected:
            return
        raise AssertionError(f"expected {expected.__name__}")


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)
