"""Model-based test of transfers and household pools: random sequences of earns, redemptions,
transfers (between any two members, of any size, to oneself, past the daily maximum), their
replays and reversals, households formed, joined and left, pooled redemptions (by owners,
redeemers, plain members and outsiders; their replays), program changes (expiry policy,
transfer policy, household policy), clock moves and the expiry job, on the REAL services and
repositories (moto and DynamoDB Local, a clock the machine moves), each outcome compared with a
small reference model of lots.

The reference keeps each member's lots as (points, expiry, origin): an earn adds one (with the
expiry the policy gives); a redemption and a transfer take the unexpired lots FIFO by expiry,
then the never-expiring points; the receiver gets the same points with the same expiries; a
reversal takes back first the lots its transfer gave, then as many never-expiring points as it
gave. A pooled redemption takes the household members' unexpired lots by expiry across the
whole pool (on a tie the redeemer's first, then the members' in joining order), then the
never-expiring points member by member (the redeemer's, then in joining order). Expired lots
are never spendable.

Invariants after every step, for every member: what the member may spend now is the model's,
and so are the unexpired points by expiry date (so lots keep their expiry across transfers);
available + pending = the sum of the ledger; available = earned - redeemed + adjusted -
expired - reversed + transferred; available never negative; and across the members the net
transferred is zero and the total held moved only by earns, redemptions and expiries: **a
transfer changes no member's points but its two members', and the total not at all**; a pooled
redemption takes exactly its points from the pool, never more than a member may spend.
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
    HouseholdNotAllowed,
    HouseholdRedeemerRequired,
    IdempotencyKeyReused,
    InsufficientPoints,
    LoyaltyError,
    MemberInHousehold,
    TransferNotAllowed,
)
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.households import HouseholdRole, PooledRedemptionRequest
from chalicelib.domain.jobs import JobName
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import HouseholdPolicy, Rounding, TransferPolicy
from chalicelib.domain.tenants import NewTenant
from chalicelib.domain.transfers import TransferRequest
from chalicelib.persistence.factory import shared_client
from chalicelib.services import TenantServices, platform, reset_platform
from tests.support.clocks import MovableClock

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
HOUSEHOLD_POLICIES = (
    HouseholdPolicy(enabled=True, max_members=3),
    HouseholdPolicy(enabled=True, max_members=4),
    HouseholdPolicy(enabled=False),
)


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
class ModelHousehold:
    household_id: str
    #: (member index, role) in joining order, the owner who created it first.
    members: list[tuple[int, HouseholdRole]]

    def role(self, who: int) -> HouseholdRole | None:
        return next((role for index, role in self.members if index == who), None)


@dataclass
class Pooled:
    household_id: str
    redeemer: int
    points: int
    key: str
    redemption_id: str


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
        self.clock = MovableClock(T0)
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
        self.households_policy = HOUSEHOLD_POLICIES[0]
        self.households: list[ModelHousehold] = []
        self.pooled: list[Pooled] = []
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
        self.s.program.replace(
            Decimal(1), Rounding.FLOOR, self.expiry, transfers=self.transfers, households=self.households_policy
        )

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
        # A household from the start (the first member owns it, the second may redeem from it)
        household = self.s.households.create(self.members[0], "home", None).household
        self.s.households.add_member(household.household_id, self.members[1], HouseholdRole.REDEEMER)
        self.households.append(
            ModelHousehold(household.household_id, [(0, HouseholdRole.OWNER), (1, HouseholdRole.REDEEMER)])
        )

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

    # --- households: pooled points ------------------------------------------------------------------

    def _household_of(self, who: int) -> ModelHousehold | None:
        return next((h for h in self.households if h.role(who) is not None), None)

    @rule(owner=st.integers(0, 3))
    def create_household(self, owner: int) -> None:
        owner %= len(self.members)
        create = lambda: self.s.households.create(self.members[owner], None, self._key("household"))  # noqa: E731
        if self._household_of(owner) is not None:
            self._refused(create, MemberInHousehold, HouseholdNotAllowed)
            return
        if not self.households_policy.enabled:
            self._refused(create, HouseholdNotAllowed)
            return
        result = create()
        assert not result.replayed and result.household.owner.member_id == self.members[owner]
        self.households.append(ModelHousehold(result.household.household_id, [(owner, HouseholdRole.OWNER)]))

    @precondition(lambda self: bool(self.households))
    @rule(pick=st.integers(0, 9), who=st.integers(0, 3), redeemer=st.booleans())
    def join_household(self, pick: int, who: int, redeemer: bool) -> None:
        household = self.households[pick % len(self.households)]
        who %= len(self.members)
        role = HouseholdRole.REDEEMER if redeemer else HouseholdRole.MEMBER
        join = lambda: self.s.households.add_member(household.household_id, self.members[who], role)  # noqa: E731
        if self._household_of(who) is not None:
            self._refused(join, MemberInHousehold, HouseholdNotAllowed)
            return
        if not self.households_policy.enabled or len(household.members) >= self.households_policy.max_members:
            self._refused(join, HouseholdNotAllowed)
            return
        after = join()
        household.members.append((who, role))
        assert [(m.member_id, m.role) for m in after.members] == [(self.members[i], r) for i, r in household.members]

    @precondition(lambda self: bool(self.households))
    @rule(pick=st.integers(0, 9), who=st.integers(0, 3))
    def leave_household(self, pick: int, who: int) -> None:
        household = self.households[pick % len(self.households)]
        who = household.members[who % len(household.members)][0]
        leave = lambda: self.s.households.remove_member(household.household_id, self.members[who])  # noqa: E731
        if household.role(who) is HouseholdRole.OWNER and len(household.members) > 1:
            self._refused(leave, HouseholdNotAllowed)
            return
        removal = leave()
        household.members = [(i, r) for i, r in household.members if i != who]
        if not household.members:
            assert removal.household is None
            self.households.remove(household)
        else:
            assert removal.household is not None

    def _pools(self) -> list[ModelHousehold]:
        """The households whose pool holds points now."""
        now = self.clock.now
        return [h for h in self.households if any(self.model[i].spendable(now) for i, _ in h.members)]

    @precondition(lambda self: bool(self._pools()))
    @rule(pick=st.integers(0, 9), who=st.integers(0, 9), share=st.sampled_from([0.2, 0.5, 0.9, 1.0, 1.3]))
    def pooled_redeem(self, pick: int, who: int, share: float) -> None:
        pools = self._pools()
        household = pools[pick % len(pools)]
        # Mostly one of the household (any role), sometimes any member of the brand
        who = household.members[who % len(household.members)][0] if who < 7 else who % len(self.members)
        now = self.clock.now
        pool = sum(self.model[i].spendable(now) for i, _ in household.members)
        points = max(1, int(pool * share))
        key = self._key("pooled")
        request = PooledRedemptionRequest(household.household_id, self.members[who], points, key)
        redeem = lambda: self.s.households.redeem(request)  # noqa: E731
        if household.role(who) not in (HouseholdRole.OWNER, HouseholdRole.REDEEMER):
            self._refused(redeem, HouseholdRedeemerRequired)
            return
        if points > pool:
            self._refused(redeem, InsufficientPoints)
            return
        result = redeem()
        assert not result.replayed and result.points == points
        given = self._draw_pool(household, who, points)
        assert {entry.member_id: -entry.points for entry in result.entries} == {
            self.members[i]: part for i, part in given.items() if part
        }, (given, result.entries)
        assert result.entries[0].idempotency_key == key
        self.pooled.append(Pooled(household.household_id, who, points, key, result.redemption_id))

    @precondition(lambda self: bool(self.pooled))
    @rule(pick=st.integers(0, 50), same=st.booleans())
    def replay_pooled_redemption(self, pick: int, same: bool) -> None:
        done = self.pooled[pick % len(self.pooled)]
        request = PooledRedemptionRequest(
            done.household_id, self.members[done.redeemer], done.points if same else done.points + 1, done.key
        )
        if not same:
            self._refused(lambda: self.s.households.redeem(request), IdempotencyKeyReused)
            return
        result = self.s.households.redeem(request)
        assert result.replayed and result.redemption_id == done.redemption_id and result.points == done.points

    def _draw_pool(self, household: ModelHousehold, redeemer: int, points: int) -> dict[int, int]:
        """The model's pooled draw: lots by expiry across the pool (the redeemer's, then joining
        order, on a tie), then never-expiring points member by member. What each member gave."""
        now = self.clock.now
        order = [redeemer] + [i for i, _ in household.members if i != redeemer]
        rank = {index: position for position, index in enumerate(order)}
        expiring = sorted(
            (
                (lot.expires_at, rank[i], i, lot)
                for i in order
                for lot in self.model[i].lots
                if lot.expires_at is not None and not lot.expired(now)
            ),
            key=lambda row: (row[0], row[1]),
        )
        given = dict.fromkeys(order, 0)
        need = points
        for _, _, i, lot in expiring:
            part = min(need, lot.points)
            lot.points -= part
            given[i] += part
            need -= part
        for i in order:
            for lot in self.model[i].lots:
                if lot.expires_at is None:
                    part = min(need, lot.points)
                    lot.points -= part
                    given[i] += part
                    need -= part
        assert need == 0, "the model's pool held fewer points than it counted"
        for i in order:
            self.model[i].lots = [lot for lot in self.model[i].lots if lot.points]
        return given

    @rule(
        expiry=st.sampled_from(EXPIRY_POLICIES),
        transfers=st.sampled_from(TRANSFER_POLICIES),
        households=st.sampled_from(HOUSEHOLD_POLICIES),
    )
    def change_program(self, expiry: ExpiryPolicy, transfers: TransferPolicy, households: HouseholdPolicy) -> None:
        self.expiry, self.transfers, self.households_policy = expiry, transfers, households
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
    def _refused(call: Any, *expected: type[LoyaltyError]) -> None:
        try:
            call()
        except expected:
            return
        raise AssertionError(f"expected {' or '.join(e.__name__ for e in expected)}")


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)
