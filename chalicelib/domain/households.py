"""Households: members of a brand pool their points, and the household's owner or a redeemer
spends from the pool.

* **A virtual pool.** Each member keeps their own balance and lots: the tier stays per member,
  every lot keeps its expiry, and earning is unchanged (a member earns into the pool simply by
  earning). A household's pool is the sum of its members' available points (a member in
  claw-back debt adds nothing), with their pending points shown apart; pending points are
  never spent from it.
* **The program decides** (``Program.households``): whether households may be formed and how
  many members one may hold, its owner included. Creating one or joining one is refused with
  ``household_not_allowed`` (``details.reason``: ``disabled``, ``full``) otherwise. Households
  formed earlier keep working while the program refuses new ones: their members may still
  leave, change roles and redeem.
* **Roles.** One ``owner`` (manages the members, redeems from the pool), ``redeemer``\\ s (redeem
  from the pool) and ``member``\\ s (contribute; spend only their own points, through the
  ordinary redemption route). The owner role is never given away nor taken (``owner_role``);
  the owner may leave only when alone (``owner_not_alone``), which dissolves the household.
  A member is in at most one household at a time: joining writes the member's membership item
  only if it is absent (``member_in_household``), in the transaction that adds them, so two
  households racing for one member cannot both win.
* **Every change is conditional** on the household item's version, so concurrent joins,
  leaves and role changes decide again on what the others wrote (and a household never
  exceeds its size).
* **A pooled redemption** (``HouseholdService.redeem``) is ONE transaction: one ``redeem``
  ledger entry per contributing member, each member's balance under its version condition,
  the lots it takes, and a condition check of the household's version (a concurrent join,
  leave or role change makes the attempt decide again). Points come from the lots expiring
  first across the whole pool (the redeemer's own first on ties), then the points that never
  expire (the redeemer's first, then the other members in joining order); never from pending
  points, never from lots whose expiry has passed. A redemption may take from at most
  ``MAX_LOTS_PER_POOLED_REDEMPTION`` lots (``movement_too_large`` otherwise), and at most the
  pool's spendable points (``insufficient_points``). Each entry is an ordinary
  ``points.redeemed`` event in its member's feed, with the household, the redemption and the
  redeemer in its metadata.
* **Idempotent.** The first contributor's entry (the redeemer's when they give points) is
  keyed by the caller's Idempotency-Key and lists the contributors; the others are keyed
  ``household:<redemption id>:<member id>``. A replay answers the first result; the same key
  with another request is ``idempotency_key_reused``. Creating a household records its key
  (``HOUSEHOLDREQ#<key>``) in the creating transaction.
* **Erasure.** An erased member leaves their household (``HouseholdService.remove_erased``,
  called by the erasure's redaction): alone, the household goes; an owner with others hands
  the household to the longest-standing redeemer, else the longest-standing member.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypeVar

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.credits import with_activity
from chalicelib.domain.entries import Balance, BalanceView, LedgerEntry, settle
from chalicelib.domain.errors import (
    BusinessRuleViolation,
    HouseholdNotAllowed,
    HouseholdRedeemerRequired,
    IdempotencyKeyReused,
    InsufficientPoints,
    MemberErased,
    MemberInHousehold,
    MovementTooLarge,
    NotFound,
    RetryLater,
)
from chalicelib.domain.expiry import Lot, LotBook, LotChanges, draw
from chalicelib.domain.fingerprints import fingerprint, minted_fingerprint
from chalicelib.domain.ids import (
    HOUSEHOLD_ID_PATTERN,
    MEMBER_ID_PATTERN,
    new_household_id,
    new_household_redemption_id,
    new_transaction_id,
)
from chalicelib.domain.ledger import RetryPolicy
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT, MovementType, refuse_minted_key
from chalicelib.domain.ports import BalanceChanged, IdempotencyKeyTaken

if TYPE_CHECKING:
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import LedgerStore
    from chalicelib.domain.program import HouseholdPolicy, ProgramService

T = TypeVar("T")

#: Lots one pooled redemption may take from, across its members (each is an item of its
#: transaction: 60 lots + 10 entries + 10 balances + the household's check < 100).
MAX_LOTS_PER_POOLED_REDEMPTION = 60
#: The prefix of the keys a pooled redemption mints for its other contributors' entries.
HOUSEHOLD_KEY_PREFIX = "household:"
#: The lead entry's metadata key listing the contributors (member ids, in the answer's order).
CONTRIBUTORS = "contributors"
_NEVER = datetime.max.replace(tzinfo=UTC)


def contribution_key(redemption_id: str, member_id: str) -> str:
    """The key of a contributor's entry other than the lead's."""
    return f"{HOUSEHOLD_KEY_PREFIX}{redemption_id}:{member_id}"


class HouseholdRole(StrEnum):
    OWNER = "owner"
    REDEEMER = "redeemer"
    MEMBER = "member"


#: The roles that may redeem from the pool.
POOL_ROLES = frozenset({HouseholdRole.OWNER, HouseholdRole.REDEEMER})


@dataclass(frozen=True)
class Membership:
    member_id: str
    role: HouseholdRole
    joined_at: datetime


@dataclass(frozen=True)
class Household:
    household_id: str
    name: str | None
    #: In joining order (the owner who created it first).
    members: tuple[Membership, ...]
    created_at: datetime
    #: Moves with every change: the condition of the next change and of a pooled redemption.
    version: int = 1

    @property
    def owner(self) -> Membership:
        return next(m for m in self.members if m.role is HouseholdRole.OWNER)

    def member(self, member_id: str) -> Membership | None:
        return next((m for m in self.members if m.member_id == member_id), None)

    def joined(self, membership: Membership) -> Household:
        return replace(self, members=(*self.members, membership), version=self.version + 1)

    def left(self, member_id: str) -> Household:
        return replace(
            self, members=tuple(m for m in self.members if m.member_id != member_id), version=self.version + 1
        )

    def with_role(self, member_id: str, role: HouseholdRole) -> Household:
        members = tuple(replace(m, role=role) if m.member_id == member_id else m for m in self.members)
        return replace(self, members=members, version=self.version + 1)

    def successor(self, leaving: str) -> Membership | None:
        """Who becomes owner when ``leaving`` (the owner) goes: the longest-standing redeemer,
        else the longest-standing member (None: nobody is left)."""
        others = sorted((m for m in self.members if m.member_id != leaving), key=lambda m: m.joined_at)
        redeemers = [m for m in others if m.role is HouseholdRole.REDEEMER]
        chosen = redeemers or others
        return chosen[0] if chosen else None


@dataclass(frozen=True)
class CreationKey:
    """A creation's Idempotency-Key and the fingerprint of its request."""

    idempotency_key: str
    fingerprint: str


@dataclass(frozen=True)
class HouseholdResult:
    household: Household
    replayed: bool


@dataclass(frozen=True)
class MemberPoints:
    membership: Membership
    available: int
    pending: int


@dataclass(frozen=True)
class HouseholdView:
    """A household with each member's points as they may use them now, and the pool."""

    household: Household
    members: tuple[MemberPoints, ...]

    @property
    def available(self) -> int:
        """What the pool may spend: each member's available points (a debt adds nothing)."""
        return sum(max(0, m.available) for m in self.members)

    @property
    def pending(self) -> int:
        return sum(max(0, m.pending) for m in self.members)


@dataclass(frozen=True)
class Removal:
    """What leaving did: the household after (None: it was dissolved)."""

    household_id: str
    member_id: str
    household: Household | None


# --- the draw across members -------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """A member's balance and lots, settled at the moment of the draw."""

    balance: Balance
    lots: tuple[Lot, ...] = ()

    @property
    def member_id(self) -> str:
        return self.balance.member_id


@dataclass(frozen=True)
class Contribution:
    member_id: str
    points: int
    lots: LotChanges = field(default_factory=LotChanges)


def draw_pool(holdings: Sequence[Holding], points: int, at: datetime, *, redeemer_id: str) -> tuple[Contribution, ...]:
    """Take ``points`` from the members' spendable points: the lots expiring first across all
    members (the redeemer's first on ties, then the members in the order given), then the
    points that never expire (the redeemer's, then the others' in order). Pending points and
    lots past their expiry are never taken; a member gives at most their spendable points (none
    when in claw-back debt). Returns one contribution per member who gives points, the
    redeemer first, then in the order given. Pure."""
    order = {holding.member_id: index for index, holding in enumerate(holdings)}

    def rank(member_id: str) -> tuple[bool, int]:
        return (member_id != redeemer_id, order[member_id])

    room = {h.member_id: max(0, LotBook(h.balance.available, h.lots).spendable(at)) for h in holdings}
    pool = sum(room.values())
    if points > pool:
        raise InsufficientPoints(
            f"the household's pool has {pool} points available; {points} requested",
            details={"available": pool, "requested": points},
        )
    usable = [(h.member_id, lot) for h in holdings for lot in h.lots if not lot.pending and not lot.expired(at)]
    expiring = sorted(
        ((m, lot) for m, lot in usable if lot.expires_at is not None),
        key=lambda pair: (pair[1].expires_at or _NEVER, *rank(pair[0]), pair[1].earned_at, pair[1].lot_id),
    )
    lasting = sorted(
        ((m, lot) for m, lot in usable if lot.expires_at is None),
        key=lambda pair: (*rank(pair[0]), pair[1].earned_at, pair[1].lot_id),
    )
    plain = {
        h.member_id: room[h.member_id] - sum(lot.remaining for m, lot in usable if m == h.member_id) for h in holdings
    }
    taken = dict.fromkeys(order, 0)
    updated: dict[str, list[Lot]] = {member_id: [] for member_id in order}
    deleted: dict[str, list[Lot]] = {member_id: [] for member_id in order}
    lot_parts: list[int] = []
    need = points

    def from_lot(member_id: str, lot: Lot) -> None:
        nonlocal need
        for _, part in draw(
            [lot], min(need, room[member_id] - taken[member_id]), updated[member_id], deleted[member_id]
        ):
            taken[member_id] += part
            need -= part
            lot_parts.append(part)

    def from_plain(member_id: str) -> None:
        nonlocal need
        part = max(0, min(need, plain[member_id], room[member_id] - taken[member_id]))
        taken[member_id] += part
        need -= part

    for member_id, lot in expiring:
        if need and room[member_id] > taken[member_id]:
            from_lot(member_id, lot)
    for member_id in sorted(order, key=rank):
        for owner, lot in lasting:
            if owner == member_id and need and room[member_id] > taken[member_id]:
                from_lot(member_id, lot)
        if need:
            from_plain(member_id)
    assert need == 0, "the pool's spendable points cover the request"  # room sums each member's spendable
    lots = sum(len(updated[m]) + len(deleted[m]) for m in order)
    if lots > MAX_LOTS_PER_POOLED_REDEMPTION:
        at_once = sum(lot_parts[:MAX_LOTS_PER_POOLED_REDEMPTION])
        raise MovementTooLarge(
            f"{points} points span {lots} lots of points earned at different times; one pooled redemption may "
            f"take from at most {MAX_LOTS_PER_POOLED_REDEMPTION}: redeem at most {at_once} points now, then the rest",
            details={
                "points": points,
                "lots": lots,
                "max_lots": MAX_LOTS_PER_POOLED_REDEMPTION,
                "max_points": at_once,
            },
        )
    return tuple(
        Contribution(m, taken[m], LotChanges(updated=tuple(updated[m]), deleted=tuple(deleted[m])))
        for m in sorted(order, key=rank)
        if taken[m]
    )


# --- the pooled redemption's request, commit and result ------------------------------------------


@dataclass(frozen=True)
class PooledRedemptionRequest:
    household_id: str
    #: The redeemer: the household's owner or one of its redeemers.
    member_id: str
    points: int
    idempotency_key: str
    description: str | None = None
    actor_key_id: str | None = None

    def fingerprint(self) -> str:
        """What makes two requests under one Idempotency-Key 'the same request'."""
        return fingerprint(
            {
                "movement": "household_redeem",
                "household_id": self.household_id,
                "member_id": self.member_id,
                "points": self.points,
                "description": self.description,
            }
        )


@dataclass(frozen=True)
class PooledSide:
    """One contributor's part of a pooled redemption's transaction."""

    previous: Balance
    after: Balance
    entry: LedgerEntry
    lots: LotChanges


@dataclass(frozen=True)
class PooledCommit:
    """What one pooled redemption writes; the first side's entry holds the caller's key."""

    household: Household
    sides: tuple[PooledSide, ...]


@dataclass(frozen=True)
class PooledRedemptionResult:
    redemption_id: str
    household_id: str
    redeemer_id: str
    #: Each contributor's entry, the lead's (the caller's key) first.
    entries: tuple[LedgerEntry, ...]
    replayed: bool

    @property
    def points(self) -> int:
        return -sum(entry.points for entry in self.entries)


class HouseholdChanged(Exception):
    """The household moved since it was read (its version): read again and decide again."""


class MemberUnavailable(Exception):
    """A member the change names has no balance, or was erased: read again to say which."""


class HouseholdStore(Protocol):
    def get(self, household_id: str) -> Household | None:
        """The household (a strong read), or None."""

    def household_of(self, member_id: str) -> str | None:
        """The id of the household the member is in (a strong read), or None."""

    def creation(self, idempotency_key: str) -> tuple[str, str] | None:
        """The household a creation's key created and the fingerprint of its request, or None."""

    def create(self, household: Household, key: CreationKey | None) -> None:
        """Write the household, its owner's membership and the key's record, each only if absent,
        with the owner's balance present and not erased, in one transaction.
        MemberInHousehold when the owner is in a household; IdempotencyKeyTaken when the key is
        recorded; MemberUnavailable when the owner's balance check fails."""

    def join(self, previous: Household, after: Household, member_id: str) -> None:
        """Write the member's membership (only if absent) and the household (only if still at
        ``previous.version``), with the member's balance present and not erased.
        MemberInHousehold, HouseholdChanged, MemberUnavailable."""

    def update(self, previous: Household, after: Household) -> None:
        """Replace the household, only if still at ``previous.version``. HouseholdChanged."""

    def leave(self, previous: Household, after: Household | None, member_id: str) -> None:
        """Delete the member's membership (only if it names this household) and write
        ``after``, or delete the household when ``after`` is None, only if still at
        ``previous.version``. HouseholdChanged."""

    def redeem(self, commit: PooledCommit) -> None:
        """Every side's entry (only if its key is absent), balance (only if still at its version
        and tier revision) and lot changes, and a check of the household's version, in one
        transaction. IdempotencyKeyTaken when the first side's key exists; BalanceChanged for
        any other failed condition; TransientStoreError for conflicts and throttling."""


class HouseholdService:
    def __init__(
        self,
        store: HouseholdStore,
        ledger: LedgerStore,
        program: ProgramService,
        points: PointsService,
        *,
        clock: Clock = utc_now,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._program = program
        #: Settles what is due on each contributor before a pooled redemption (its own transactions).
        self._points = points
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    # --- the household and its members ----------------------------------------------------------

    def create(self, owner_member_id: str, name: str | None, idempotency_key: str | None) -> HouseholdResult:
        """A household whose owner is ``owner_member_id``; with a key, a replay answers the first result."""
        self._program.forget()
        key = None
        if idempotency_key:
            key = CreationKey(idempotency_key, fingerprint({"owner_member_id": owner_member_id, "name": name}))
            if (recorded := self._store.creation(idempotency_key)) is not None:
                return self._created(key, recorded)
        self._allowed(self._program.get().households)
        self._eligible(owner_member_id)
        now = self._clock()
        household = Household(
            new_household_id(now), name, (Membership(owner_member_id, HouseholdRole.OWNER, now),), now
        )
        try:
            self._with_retries(lambda: self._store.create(household, key))
        except IdempotencyKeyTaken:
            assert key is not None
            recorded = self._store.creation(key.idempotency_key)
            if recorded is None:
                raise RetryLater("the household's creation is not readable yet") from None
            return self._created(key, recorded)
        except MemberUnavailable:
            self._eligible(owner_member_id)
            raise RetryLater("the member is changing; try again") from None
        return HouseholdResult(household, replayed=False)

    def get(self, household_id: str) -> Household:
        found = self._store.get(household_id) if HOUSEHOLD_ID_PATTERN.fullmatch(household_id) else None
        if found is None:
            raise NotFound(f"household {household_id!r} not found")
        return found

    def household_of(self, member_id: str) -> str | None:
        """The id of the household the member is in, or None."""
        return self._store.household_of(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None

    def membership_of(self, member_id: str) -> tuple[str, Membership] | None:
        """The household the member is in and their place in it (role, since when), or None."""
        household_id = self.household_of(member_id)
        household = self._store.get(household_id) if household_id else None
        membership = household.member(member_id) if household else None
        return (household_id, membership) if household_id and membership else None

    def view(self, household: Household) -> HouseholdView:
        """Each member's points as they may use them now (eventually consistent reads)."""
        now = self._clock()
        members = []
        for membership in household.members:
            balance = self._ledger.get_balance(membership.member_id, consistent=False)
            if balance is None or balance.erased_at is not None:
                members.append(MemberPoints(membership, 0, 0))
                continue
            lots = self._ledger.get_lots(membership.member_id, consistent=False) if balance.needs_lots(now) else None
            view = BalanceView.at(balance, lots, now)
            members.append(MemberPoints(membership, view.available, view.pending))
        return HouseholdView(household, tuple(members))

    def add_member(self, household_id: str, member_id: str, role: HouseholdRole) -> Household:
        """``member_id`` joins the household with ``role`` (redeemer or member)."""
        self._program.forget()
        if role is HouseholdRole.OWNER:
            raise _owner_role("a household has one owner: a member joins as a redeemer or a member")

        def attempt() -> Household:
            household = self.get(household_id)
            policy = self._program.get().households
            self._allowed(policy)
            if household.member(member_id) is not None:
                raise _in_household(member_id, household_id)
            if len(household.members) >= policy.max_members:
                raise HouseholdNotAllowed(
                    f"a household holds at most {policy.max_members} members",
                    details={"reason": "full", "max_members": policy.max_members},
                )
            self._eligible(member_id)
            after = household.joined(Membership(member_id, role, self._clock()))
            try:
                self._store.join(household, after, member_id)
            except MemberUnavailable:
                self._eligible(member_id)
                raise HouseholdChanged(household_id) from None
            return after

        return self._with_retries(attempt)

    def change_role(self, household_id: str, member_id: str, role: HouseholdRole) -> Household:
        """A member other than the owner becomes a redeemer or a member."""
        if role is HouseholdRole.OWNER:
            raise _owner_role("the owner role is never given: the owner stays owner until they leave alone")

        def attempt() -> Household:
            household = self.get(household_id)
            membership = self._membership(household, member_id)
            if membership.role is HouseholdRole.OWNER:
                raise _owner_role("the household's owner keeps the owner role")
            if membership.role is role:
                return household
            after = household.with_role(member_id, role)
            self._store.update(household, after)
            return after

        return self._with_retries(attempt)

    def remove_member(self, household_id: str, member_id: str) -> Removal:
        """The member leaves; their points stay theirs. The owner leaves only when alone, which
        dissolves the household."""

        def attempt() -> Removal:
            household = self.get(household_id)
            membership = self._membership(household, member_id)
            if membership.role is HouseholdRole.OWNER and len(household.members) > 1:
                raise HouseholdNotAllowed(
                    "the owner may leave only when alone in the household (the others leave first)",
                    details={"reason": "owner_not_alone", "members": len(household.members)},
                )
            after = None if len(household.members) == 1 else household.left(member_id)
            self._store.leave(household, after, member_id)
            return Removal(household_id, member_id, after)

        return self._with_retries(attempt)

    def remove_erased(self, member_id: str) -> None:
        """An erased member leaves their household, if any (idempotent): alone, the household
        goes; an owner with others hands it to the longest-standing redeemer, else member."""

        def attempt() -> None:
            household_id = self._store.household_of(member_id)
            household = self._store.get(household_id) if household_id is not None else None
            if household is None or household.member(member_id) is None:
                return
            successor = household.successor(member_id)
            after = None
            if successor is not None:
                after = household.left(member_id)
                if household.owner.member_id == member_id:
                    after = after.with_role(successor.member_id, HouseholdRole.OWNER)
            self._store.leave(household, after, member_id)

        self._with_retries(attempt)

    # --- the pooled redemption ----------------------------------------------------------------

    def redeem(self, request: PooledRedemptionRequest) -> PooledRedemptionResult:
        """Take ``request.points`` from the household's pool in one transaction, or refuse; a
        replay of the Idempotency-Key answers the first result."""
        self._program.forget()
        refuse_minted_key(request.idempotency_key)
        existing = self._ledger.get_entry(request.idempotency_key)
        if existing is not None:
            return self._replay(request, existing)
        try:
            if request.points > MAX_POINTS_PER_MOVEMENT:
                raise MovementTooLarge(
                    f"a single movement may not exceed {MAX_POINTS_PER_MOVEMENT} points",
                    details={"points": request.points, "maximum": MAX_POINTS_PER_MOVEMENT},
                )
            return self._with_retries(lambda: self._redeem_attempt(request))
        except (BusinessRuleViolation, NotFound) as refusal:
            return self._replay_or_raise(request, refusal)

    def _redeem_attempt(self, request: PooledRedemptionRequest) -> PooledRedemptionResult:
        now = self._clock()
        household = self.get(request.household_id)
        membership = household.member(request.member_id)
        if membership is None or membership.role not in POOL_ROLES:
            raise HouseholdRedeemerRequired(
                "only the household's owner or a redeemer may redeem from its pool",
                details={"member_id": request.member_id, "role": str(membership.role) if membership else None},
            )
        holdings = [h for m in household.members if (h := self._settled(m.member_id, now)) is not None]
        contributions = draw_pool(holdings, request.points, now, redeemer_id=request.member_id)
        held = {h.member_id: h for h in holdings}
        program = self._program.get()
        redemption_id = new_household_redemption_id(now)
        contributors = ",".join(c.member_id for c in contributions)
        sides = []
        for index, contribution in enumerate(contributions):
            holding = held[contribution.member_id]
            after = holding.balance.apply(MovementType.REDEEM, -contribution.points, now)
            after = with_activity(program, MovementType.REDEEM, after, now)
            after = after.with_lots(LotBook(after.available, holding.lots).after(contribution.lots))
            metadata = {
                "household_id": household.household_id,
                "redemption_id": redemption_id,
                "redeemer_id": request.member_id,
            }
            if index == 0:
                key, fingerprinted = request.idempotency_key, request.fingerprint()
                metadata[CONTRIBUTORS] = contributors
            else:
                key = contribution_key(redemption_id, contribution.member_id)
                fingerprinted = minted_fingerprint(key)
            entry = LedgerEntry(
                transaction_id=new_transaction_id(now),
                member_id=contribution.member_id,
                movement=MovementType.REDEEM,
                points=-contribution.points,
                sequence=after.version,
                idempotency_key=key,
                request_fingerprint=fingerprinted,
                occurred_at=now,
                created_at=now,
                balance_after=after,
                reference=redemption_id,
                description=request.description,
                metadata=metadata,
                actor_key_id=request.actor_key_id,
            )
            sides.append(PooledSide(holding.balance, after, entry, contribution.lots))
        try:
            self._store.redeem(PooledCommit(household, tuple(sides)))
        except IdempotencyKeyTaken:
            return self._replay_or_raise(request, None)
        entries = tuple(side.entry for side in sides)
        return PooledRedemptionResult(redemption_id, household.household_id, request.member_id, entries, False)

    def _settled(self, member_id: str, now: datetime) -> Holding | None:
        """The member's balance and lots with nothing due at ``now`` (what is due is recorded
        first, in its own transactions); None for a member gone or erased (they hold nothing)."""
        while True:
            found = self._ledger.get_balance(member_id, consistent=True)
            if found is None or found.erased_at is not None:
                return None
            lots = tuple(self._ledger.get_lots(member_id, consistent=True)) if found.lot_count else ()
            if not settle(found, lots, now, now, max_lots=sys.maxsize).entries:
                return Holding(found, lots)
            self._points.settle_due(member_id, now)

    # --- replays, checks and retries ---------------------------------------------------------------

    def _replay(self, request: PooledRedemptionRequest, existing: LedgerEntry) -> PooledRedemptionResult:
        if existing.request_fingerprint != request.fingerprint():
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": request.idempotency_key, "transaction_id": existing.transaction_id},
            )
        redemption_id = existing.metadata.get("redemption_id", "")
        entries = [existing]
        for member_id in existing.metadata.get(CONTRIBUTORS, "").split(",")[1:]:
            entry = self._ledger.get_entry(contribution_key(redemption_id, member_id))
            if entry is None:
                raise RetryLater("the pooled redemption's entries are not readable yet")
            entries.append(entry)
        return PooledRedemptionResult(
            redemption_id, request.household_id, request.member_id, tuple(entries), replayed=True
        )

    def _replay_or_raise(self, request: PooledRedemptionRequest, refusal: Exception | None) -> PooledRedemptionResult:
        """A refused or colliding request may be the replay of one that already succeeded."""
        existing = self._ledger.get_entry(request.idempotency_key)
        if existing is None:
            if refusal is None:
                raise RetryLater("the redemption's entry is not readable yet")
            raise refusal
        return self._replay(request, existing)

    def _created(self, key: CreationKey, recorded: tuple[str, str]) -> HouseholdResult:
        household_id, first = recorded
        if first != key.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": key.idempotency_key, "household_id": household_id},
            )
        return HouseholdResult(self.get(household_id), replayed=True)

    @staticmethod
    def _allowed(policy: HouseholdPolicy) -> None:
        if not policy.enabled:
            raise HouseholdNotAllowed("the program does not allow households", details={"reason": "disabled"})

    def _eligible(self, member_id: str) -> None:
        """NotFound for an unknown member, MemberErased for an erased one."""
        found = self._ledger.get_balance(member_id, consistent=True) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if found is None:
            raise NotFound(f"member {member_id!r} not found")
        if found.erased_at is not None:
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})

    @staticmethod
    def _membership(household: Household, member_id: str) -> Membership:
        membership = household.member(member_id)
        if membership is None:
            raise NotFound(f"member {member_id!r} is not in household {household.household_id!r}")
        return membership

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        return self._retry.run(
            attempt, self._sleep, racing="the household is changing too fast", races=(BalanceChanged, HouseholdChanged)
        )


def _owner_role(message: str) -> HouseholdNotAllowed:
    return HouseholdNotAllowed(message, details={"reason": "owner_role"})


def _in_household(member_id: str, household_id: str) -> MemberInHousehold:
    return MemberInHousehold(
        f"member {member_id!r} is already in a household",
        details={"member_id": member_id, "household_id": household_id},
    )
