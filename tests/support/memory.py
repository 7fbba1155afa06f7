"""In-memory twins of the storage ports (chalicelib.domain.ports), for fast unit tests.

They copy the semantics of the DynamoDB repositories in chalicelib.persistence, not just
their signatures:

* ``InMemoryLedgerStore.commit`` writes the entry only if its idempotency key is absent
  (else ``IdempotencyKeyTaken``) and the balance only if it is still at
  ``previous.version`` (else ``BalanceChanged``); both or neither, under one lock.
* ``InMemoryMemberStore.create`` writes profile, opening balance, external-id link and an
  enrolment's Idempotency-Key record together, and raises ``IdempotencyKeyTaken`` on a
  recorded key (before any other refusal), else ``MemberExists`` naming the existing member
  on a duplicate external id.
* Lists are ordered like the GSIs (members, tenants, API keys by id ascending; ledger
  entries newest first) and paginated with opaque ``next_cursor`` strings.
* Everything stored or returned is a deep copy, as a round trip through DynamoDB would be.

``InMemoryLedgerStore`` also has fault-injection hooks (``fail_next_commit``,
``before_next_commit``) to simulate throttling, timeouts after a write landed, and
concurrent writers.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from chalicelib.domain.audit import SYSTEM, Actor, AuditEntry
from chalicelib.domain.consents import Consent, ConsentChange, new_consent_change
from chalicelib.domain.errors import CardCodeTaken, InvalidRequest, MemberExists, NotFound, TenantExists
from chalicelib.domain.expiry import Lot, LotChanges
from chalicelib.domain.ports import (
    BalanceChanged,
    CounterChange,
    CounterLimitReached,
    CouponWrite,
    CouponWriteKind,
    CouponWriteRefused,
    IdempotencyKeyTaken,
    Page,
)
from chalicelib.domain.referrals import ReferralCodeTaken, ReferralQualification, ReferralStatus
from chalicelib.domain.rewards import Coupon, CouponStatus
from chalicelib.domain.tiers import TierWrite

if TYPE_CHECKING:
    from chalicelib.domain.api_keys import ApiKey
    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.members import EnrolmentRecord, Member, MemberChanges
    from chalicelib.domain.notifications import Notice
    from chalicelib.domain.program import Program
    from chalicelib.domain.referrals import Referral, ReferralProgram
    from chalicelib.domain.rewards import Reward
    from chalicelib.domain.tenants import Tenant
    from chalicelib.domain.tiers import TierEvent, TierProgram
    from chalicelib.domain.transfers import TransferCommit

T = TypeVar("T")

_CURSOR_ERROR = {"fields": [{"path": "cursor", "message": "not a cursor returned by this endpoint"}]}


class DuplicateItem(Exception):
    """A put whose 'attribute_not_exists' condition failed where the domain expects none (a bug)."""


# --- pagination -------------------------------------------------------------------------------


def _encode_cursor(scope: str, key: str) -> str:
    raw = json.dumps({"scope": scope, "after": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, scope: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("invalid cursor", details=_CURSOR_ERROR) from None
    if (
        not isinstance(decoded, dict)
        or decoded.get("scope") != scope
        or not isinstance(decoded.get("after"), str)
        or set(decoded) != {"scope", "after"}
    ):
        raise InvalidRequest("invalid cursor", details=_CURSOR_ERROR)
    return decoded["after"]


def _paginate(
    items: Iterable[T],
    *,
    sort_key: Callable[[T], str],
    limit: int,
    cursor: str | None,
    scope: str,
    descending: bool = False,
) -> Page[T]:
    """Like a GSI query with ``limit`` and ``ExclusiveStartKey``: a cursor only when more items exist."""
    ordered = sorted(items, key=sort_key, reverse=descending)
    if cursor is not None:
        after = _decode_cursor(cursor, scope)
        ordered = [item for item in ordered if (sort_key(item) < after if descending else sort_key(item) > after)]
    page = ordered[:limit]
    next_cursor = _encode_cursor(scope, sort_key(page[-1])) if len(ordered) > limit and page else None
    return Page(items=[copy.deepcopy(item) for item in page], next_cursor=next_cursor)


# --- one tenant's table: ledger, balances, members, program ------------------------------------


@dataclass(frozen=True)
class _Fault:
    error: BaseException
    after_commit: bool


class InMemoryLedgerStore:
    """The ledger and balances of one tenant (the LedgerStore port)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._balances: dict[str, Balance] = {}
        self._entries: dict[str, LedgerEntry] = {}  # by idempotency key, like the LEDGER#<key> item
        self._lots: dict[str, Lot] = {}  # by lot id, like the MEMBER#<member>/LOT#<lot> items
        self._counters: dict[str, int] = {}
        self._coupons: dict[str, Coupon] = {}  # by code, like the COUPON#<code> items
        self._faults: deque[_Fault] = deque()
        self._before_commit: deque[Callable[[LedgerEntry, Balance, Balance], None]] = deque()
        #: Every commit() call, in order, whatever its outcome.
        self.commit_calls: list[LedgerEntry] = []
        #: Commits whose writes were applied.
        self.applied: list[LedgerEntry] = []
        #: Tiers: the index of due reviews (member -> review time) and the events written.
        self.tier_reviews: dict[str, datetime] = {}
        self.tier_events: list[TierEvent] = []
        #: Referrals by referee (written at enrolment, qualified by an order earn's commit).
        self.referrals: dict[str, Referral] = {}
        #: Audit entries written with a movement (manual adjustments).
        self.audit: list[AuditEntry] = []

    # -- fault injection -----------------------------------------------------------------

    def fail_next_commit(self, error: BaseException, *, after_commit: bool = False, times: int = 1) -> None:
        """Queue ``error`` for the next ``times`` commit() calls.

        ``after_commit=False``: raised before anything is written (the write never happened).
        ``after_commit=True``: raised once the write has been applied (a timeout or crash after
        DynamoDB committed: the caller sees an error, but the entry and balance are stored).
        A commit that would have been refused (key taken, balance changed) raises that refusal
        instead of an after-commit fault, and the fault is consumed.
        """
        for _ in range(times):
            self._faults.append(_Fault(error, after_commit))

    def before_next_commit(self, action: Callable[[LedgerEntry, Balance, Balance], None]) -> None:
        """Run ``action(entry, previous, new)`` at the start of the next commit(), outside the lock.

        Use it to let a concurrent writer slip in between a read and the conditional write.
        """
        self._before_commit.append(action)

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    # -- the port ------------------------------------------------------------------------

    def get_balance(self, member_id: str, *, consistent: bool) -> Balance | None:
        with self.lock:
            return copy.deepcopy(self._balances.get(member_id))

    def get_counter(self, name: str) -> int:
        with self.lock:
            return self._counters.get(name, 0)

    def get_lots(self, member_id: str, *, consistent: bool) -> list[Lot]:
        with self.lock:
            return [copy.deepcopy(lot) for lot in self._lots.values() if lot.member_id == member_id]

    def commit(
        self,
        entries: Sequence[LedgerEntry],
        previous: Balance,
        new: Balance,
        lots: LotChanges = LotChanges(),  # noqa: B008 - immutable
        *,
        request_entry: bool = True,
        writes: Sequence[object] = (),
    ) -> None:
        counters = [w for w in writes if isinstance(w, CounterChange)]
        coupons = [w for w in writes if isinstance(w, CouponWrite)]
        tier = next((w for w in writes if isinstance(w, TierWrite)), None)
        referral = next((w for w in writes if isinstance(w, ReferralQualification)), None)
        audit = [w for w in writes if isinstance(w, AuditEntry)]
        if unknown := [
            w
            for w in writes
            if not isinstance(w, CounterChange | CouponWrite | TierWrite | ReferralQualification | AuditEntry)
        ]:
            raise TypeError(f"the in-memory ledger writes no {type(unknown[0]).__name__}")
        entry = entries[-1]
        self.commit_calls.append(entry)
        if self._before_commit:
            self._before_commit.popleft()(entry, previous, new)
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and not fault.after_commit:
            raise fault.error
        with self.lock:
            if request_entry and entry.idempotency_key in self._entries:
                raise IdempotencyKeyTaken(entry.idempotency_key)
            if any(e.idempotency_key in self._entries for e in entries):
                raise BalanceChanged(entry.member_id)
            current = self._balances.get(entry.member_id)
            # DynamoDB's update creates a missing item, but `version == previous.version` fails on it.
            if current is None or current.version != previous.version or current.tier_rev != previous.tier_rev:
                raise BalanceChanged(entry.member_id)
            for change in counters:
                if change.at_most is not None and self._counters.get(change.name, 0) + change.by > change.at_most:
                    raise CounterLimitReached(change)
            for write in coupons:
                if not self._coupon_condition_holds(write):
                    raise CouponWriteRefused(write)
            pending = self.referrals.get(referral.referee_id) if referral is not None else None
            if referral is not None and (pending is None or pending.status is not ReferralStatus.PENDING):
                raise BalanceChanged(entry.member_id)
            if referral is not None and pending is not None:
                self.referrals[referral.referee_id] = replace(
                    pending,
                    status=ReferralStatus.QUALIFIED,
                    qualified_at=referral.qualified_at,
                    order_id=referral.order_id,
                    earn_key=referral.earn_key,
                    terms=referral.terms,
                )
            for write in coupons:
                self._coupons[write.coupon.code] = copy.deepcopy(write.coupon)
            for change in counters:
                self._counters[change.name] = self._counters.get(change.name, 0) + change.by
            for written in entries:
                self._entries[written.idempotency_key] = copy.deepcopy(written)
            self._balances[entry.member_id] = copy.deepcopy(new)
            for lot in lots.deleted:
                del self._lots[lot.lot_id]
            for lot in (*lots.updated, *lots.created):
                self._lots[lot.lot_id] = copy.deepcopy(lot)
            if tier is not None:
                self._apply_tier_write(tier)
            self.audit += audit
            self.applied.append(entry)
        if fault is not None:
            raise fault.error

    def _apply_tier_write(self, write: TierWrite) -> None:
        """With ``lock`` held: the review index entry and the event."""
        if write.review_at is None:
            self.tier_reviews.pop(write.member_id, None)
        else:
            self.tier_reviews[write.member_id] = write.review_at
        if write.event is not None:
            self.tier_events.append(copy.deepcopy(write.event))

    def set_tier(self, previous: Balance, new: Balance, tier: TierWrite) -> None:
        with self.lock:
            current = self._balances.get(previous.member_id)
            if current is None or current.version != previous.version or current.tier_rev != previous.tier_rev:
                raise BalanceChanged(previous.member_id)
            self._balances[previous.member_id] = replace(
                current,
                tier=new.tier,
                tier_since=new.tier_since,
                tier_expires_at=new.tier_expires_at,
                tier_rev=new.tier_rev,
                tier_buckets=new.tier_buckets,
            )
            self._apply_tier_write(tier)

    def due_tier_reviews(self, as_of: datetime) -> Iterator[str]:
        with self.lock:
            due = sorted((at, member) for member, at in self.tier_reviews.items() if at <= as_of)
        return iter([member for _, member in due])

    def _coupon_condition_holds(self, write: CouponWrite) -> bool:
        """With ``lock`` held: the condition the DynamoDB update states for each kind."""
        current = self._coupons.get(write.coupon.code)
        if write.kind is CouponWriteKind.ISSUE:
            return current is None
        if write.kind is CouponWriteKind.CLAIM:
            return (
                current is not None
                and current.status is CouponStatus.AVAILABLE
                and current.reward_id == write.coupon.reward_id
            )
        return current is not None and current.status is CouponStatus.ISSUED

    def due_lots(self, as_of: datetime, *, maturity: bool = False) -> Iterator[tuple[str, str]]:
        def due_at(lot: Lot) -> datetime | None:
            return lot.matures_at if maturity else (None if lot.matures_at else lot.expires_at)

        with self.lock:
            due = sorted(
                (lot for lot in self._lots.values() if (moment := due_at(lot)) is not None and moment <= as_of),
                key=lambda lot: (due_at(lot), lot.member_id, lot.lot_id),
            )
            lapsing = [
                (balance.member_id, "LAPSE")
                for balance in self._balances.values()
                if not maturity and balance.inactive_at and balance.available > 0 and balance.inactive_at <= as_of
            ]
        return iter([(lot.member_id, lot.lot_id) for lot in due] + lapsing)

    def entries_for_reference(self, member_id: str, reference: str) -> list[LedgerEntry]:
        with self.lock:
            return [
                copy.deepcopy(e)
                for e in self._entries.values()
                if e.member_id == member_id and e.reference == reference
            ]

    def get_entry(self, idempotency_key: str) -> LedgerEntry | None:
        with self.lock:
            return copy.deepcopy(self._entries.get(idempotency_key))

    def list_entries(self, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]:
        with self.lock:
            entries = [entry for entry in self._entries.values() if entry.member_id == member_id]
        return _paginate(
            entries,
            sort_key=lambda entry: f"{entry.sequence:012d}",
            limit=limit,
            cursor=cursor,
            scope=f"MEMBER#{member_id}#LEDGER",
            descending=True,
        )

    # -- test helpers --------------------------------------------------------------------

    def all_entries(self, member_id: str) -> list[LedgerEntry]:
        """Every entry of the member, oldest first."""
        with self.lock:
            entries = [copy.deepcopy(e) for e in self._entries.values() if e.member_id == member_id]
        return sorted(entries, key=lambda entry: entry.sequence)

    def _open_balance(self, balance: Balance) -> None:
        """Called by InMemoryMemberStore with ``lock`` held."""
        self._balances[balance.member_id] = copy.deepcopy(balance)


class InMemoryMemberStore:
    """Member profiles of one tenant; shares the table (and its lock) with the ledger's balances."""

    def __init__(self, ledger: InMemoryLedgerStore | None = None) -> None:
        self.ledger = ledger if ledger is not None else InMemoryLedgerStore()
        self._members: dict[str, Member] = {}
        self._external_ids: dict[str, str] = {}
        #: Code guards: referral codes and card codes (separate key spaces, like REFCODE# / CARD#).
        self._referral_codes: dict[str, str] = {}
        self._card_codes: dict[str, str] = {}
        #: Enrolments' Idempotency-Key records, by key (like ENROLREQ#<key>).
        self._enrolments: dict[str, EnrolmentRecord] = {}
        self._faults: deque[_Fault] = deque()
        #: Consent changes, in the order written (like MEMBER#<member>/CONSENT#<ulid>).
        self.consent_changes: list[ConsentChange] = []

    def fail_next_create(self, error: BaseException, *, after_create: bool = False) -> None:
        """Raise ``error`` from the next create(): before anything is written, or (``after_create``)
        once everything is (a timeout or crash after DynamoDB committed). A create that is refused
        raises its refusal instead, and the fault is consumed."""
        self._faults.append(_Fault(error, after_create))

    def create(
        self,
        member: Member,
        opening_balance: Balance,
        referral: Referral | None = None,
        *,
        record: EnrolmentRecord | None = None,
        consent: ConsentChange | None = None,
    ) -> None:
        fault = self._faults.popleft() if self._faults else None
        if fault is not None and not fault.after_commit:
            raise fault.error
        self._create(member, opening_balance, referral, record)
        if consent is not None:
            self.consent_changes.append(consent)
        if fault is not None:
            raise fault.error

    def _create(
        self, member: Member, opening_balance: Balance, referral: Referral | None, record: EnrolmentRecord | None
    ) -> None:
        with self.ledger.lock:
            if record is not None and record.idempotency_key in self._enrolments:
                raise IdempotencyKeyTaken(record.idempotency_key)
            existing_id = self._external_ids.get(member.external_id) if member.external_id is not None else None
            if existing_id is not None:
                raise MemberExists(
                    f"a member with external_id {member.external_id!r} already exists",
                    details={"external_id": member.external_id, "member_id": existing_id},
                )
            if member.card_code is not None and member.card_code in self._card_codes:
                holder = self._card_codes[member.card_code]
                raise CardCodeTaken("taken", details={"card_code": member.card_code, "member_id": holder})
            if member.referral_code is not None and member.referral_code in self._referral_codes:
                raise ReferralCodeTaken(member.referral_code)
            if member.member_id in self._members or opening_balance.member_id in self.ledger._balances:
                raise DuplicateItem(member.member_id)
            self._members[member.member_id] = copy.deepcopy(member)
            self.ledger._open_balance(opening_balance)
            if member.external_id is not None:
                self._external_ids[member.external_id] = member.member_id
            if member.referral_code is not None:
                self._referral_codes[member.referral_code] = member.member_id
            if member.card_code is not None:
                self._card_codes[member.card_code] = member.member_id
            if referral is not None:
                self.ledger.referrals[referral.referee_id] = copy.deepcopy(referral)
            if record is not None:
                self._enrolments[record.idempotency_key] = copy.deepcopy(record)

    def get_enrolment(self, idempotency_key: str) -> EnrolmentRecord | None:
        with self.ledger.lock:
            return copy.deepcopy(self._enrolments.get(idempotency_key))

    def get(self, member_id: str) -> Member | None:
        with self.ledger.lock:
            return copy.deepcopy(self._members.get(member_id))

    def find_by_external_id(self, external_id: str) -> Member | None:
        with self.ledger.lock:
            member_id = self._external_ids.get(external_id)
            return copy.deepcopy(self._members.get(member_id)) if member_id is not None else None

    def find_by_referral_code(self, code: str) -> Member | None:
        with self.ledger.lock:
            member_id = self._referral_codes.get(code)
            return copy.deepcopy(self._members.get(member_id)) if member_id is not None else None

    def find_by_card_code(self, code: str) -> Member | None:
        with self.ledger.lock:
            member_id = self._card_codes.get(code)
            return copy.deepcopy(self._members.get(member_id)) if member_id is not None else None

    def assign_referral_code(self, member_id: str, code: str, at: datetime) -> Member | None:
        with self.ledger.lock:
            current = self._members.get(member_id)
            if current is None or current.referral_code is not None:
                return copy.deepcopy(current)
            if code in self._referral_codes:
                raise ReferralCodeTaken(code)
            self._referral_codes[code] = member_id
            self._members[member_id] = replace(current, referral_code=code, updated_at=at)
            return copy.deepcopy(self._members[member_id])

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        with self.ledger.lock:
            members = list(self._members.values())
        return _paginate(members, sort_key=lambda m: m.member_id, limit=limit, cursor=cursor, scope="MEMBERS")

    def enrolled_between(self, start: datetime, end: datetime) -> Iterator[Member]:
        with self.ledger.lock:
            members = sorted(self._members.values(), key=lambda m: m.member_id)
        return iter([copy.deepcopy(m) for m in members if start <= m.created_at <= end])

    def update(
        self, member_id: str, changes: MemberChanges, at: datetime, source: Actor | None = None
    ) -> Member | None:
        with self.ledger.lock:
            current = self._members.get(member_id)
            if current is None:
                return None
            values = {name: getattr(changes, name) for name in sorted(changes.fields_set)}
            if "marketing_consent" in values:  # a removed attribute reads back as False
                values["marketing_consent"] = bool(values["marketing_consent"])
                if values["marketing_consent"] != current.marketing_consent:
                    self.consent_changes.append(
                        new_consent_change(
                            member_id,
                            Consent.MARKETING,
                            values["marketing_consent"],
                            current.marketing_consent,
                            at,
                            source or SYSTEM,
                        )
                    )
            if "card_code" in values and values["card_code"] != current.card_code:
                new = values["card_code"]
                if new is not None and new in self._card_codes:
                    raise CardCodeTaken("taken", details={"card_code": new, "member_id": self._card_codes[new]})
                if current.card_code is not None:
                    del self._card_codes[current.card_code]
                if new is not None:
                    self._card_codes[new] = member_id
            updated = replace(current, updated_at=at, **values)
            self._members[member_id] = updated
            return copy.deepcopy(updated)


class InMemoryRewardStore:
    """Rewards of one tenant; coupons and counters live with the ledger (the same table)."""

    def __init__(self, ledger: InMemoryLedgerStore) -> None:
        self.ledger = ledger
        self._rewards: dict[str, Reward] = {}
        #: ``coupon.used`` events, as the use's transaction writes them.
        self.use_events: list[Notice] = []

    def get(self, reward_id: str) -> Reward | None:
        with self.ledger.lock:
            return copy.deepcopy(self._rewards.get(reward_id))

    def add(self, reward: Reward, audit: AuditEntry | None = None) -> None:
        with self.ledger.lock:
            if reward.reward_id in self._rewards:
                raise DuplicateItem(reward.reward_id)
            self._rewards[reward.reward_id] = copy.deepcopy(reward)

    def replace(self, reward: Reward, *, previous_version: int, audit: AuditEntry | None = None) -> bool:
        with self.ledger.lock:
            current = self._rewards.get(reward.reward_id)
            if current is None or current.version != previous_version:
                return False
            self._rewards[reward.reward_id] = copy.deepcopy(reward)
            return True

    def list(self, *, limit: int, cursor: str | None) -> Page[Reward]:
        with self.ledger.lock:
            rewards = list(self._rewards.values())
        return _paginate(rewards, sort_key=lambda r: r.reward_id, limit=limit, cursor=cursor, scope="REWARDS")

    def counters(self, names: Sequence[str]) -> dict[str, int]:
        with self.ledger.lock:
            return {name: self.ledger._counters.get(name, 0) for name in names}

    def get_coupon(self, code: str) -> Coupon | None:
        with self.ledger.lock:
            return copy.deepcopy(self.ledger._coupons.get(code))

    def member_coupons(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Coupon]:
        with self.ledger.lock:
            coupons = [c for c in self.ledger._coupons.values() if c.member_id == member_id]
        return _paginate(
            coupons,
            sort_key=lambda c: f"{c.issued_at.isoformat() if c.issued_at else ''}#{c.code}",
            limit=limit,
            cursor=cursor,
            scope=f"MEMBER#{member_id}#COUPONS",
            descending=True,
        )

    def pool_codes(self, reward_id: str, *, limit: int) -> list[str]:
        with self.ledger.lock:
            codes = sorted(
                c.code
                for c in self.ledger._coupons.values()
                if c.reward_id == reward_id and c.status is CouponStatus.AVAILABLE
            )
        return codes[:limit]

    def existing_codes(self, codes: Sequence[str]) -> list[str]:
        with self.ledger.lock:
            return [code for code in codes if code in self.ledger._coupons]

    def add_pool_codes(self, coupons: Sequence[Coupon], audit: AuditEntry | None = None) -> None:
        with self.ledger.lock:
            for coupon in coupons:
                self.ledger._coupons[coupon.code] = copy.deepcopy(coupon)

    def mark_used(self, coupon: Coupon, *, now: datetime, event: Notice) -> bool:
        with self.ledger.lock:
            current = self.ledger._coupons.get(coupon.code)
            if current is None or current.status_at(now) is not CouponStatus.ISSUED:
                return False
            self.ledger._coupons[coupon.code] = copy.deepcopy(coupon)
            self.use_events.append(event)
            return True


class InMemoryProgramStore:
    def __init__(self, program: Program | None = None) -> None:
        self._lock = threading.Lock()
        self._program = program
        self.puts = 0

    def get(self) -> Program | None:
        with self._lock:
            return copy.deepcopy(self._program)

    def put(self, program: Program, audit: AuditEntry | None = None) -> None:
        with self._lock:
            self._program = copy.deepcopy(program)
            self.puts += 1

    def forget(self) -> None:
        """Nothing is kept between reads here."""


class InMemoryTierProgramStore:
    """The versions of a tenant's tier program (the TierProgramStore port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: list[TierProgram] = []

    def add(self, program: TierProgram, audit: AuditEntry | None = None) -> None:
        with self._lock:
            self._versions.append(program)

    def list(self) -> list[TierProgram]:
        with self._lock:
            return sorted(self._versions, key=lambda v: (v.effective_from, v.version_id))

    def in_force(self, at: datetime) -> TierProgram | None:
        started = [version for version in self.list() if version.effective_from <= at]
        return started[-1] if started else None


# --- the control plane: tenants and API keys ---------------------------------------------------


class InMemoryApiKeyStore:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}

    def get(self, key_id: str) -> ApiKey | None:
        with self.lock:
            return copy.deepcopy(self._keys.get(key_id))

    def add(self, key: ApiKey, audit: AuditEntry | None = None) -> None:
        with self.lock:
            self._put_new(key)

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        with self.lock:
            keys = [copy.deepcopy(k) for k in self._keys.values() if k.tenant_id == tenant_id]
        return sorted(keys, key=lambda k: k.key_id)

    def revoke(self, key: ApiKey, at: datetime, audit: AuditEntry | None = None) -> ApiKey:
        with self.lock:
            stored = self._keys.get(key.key_id)
            if stored is None or stored.tenant_id != key.tenant_id:
                raise NotFound(f"API key {key.key_id!r} not found")
            self._keys[key.key_id] = replace(stored, revoked_at=at)
        return replace(key, revoked_at=at)

    def _put_new(self, key: ApiKey) -> None:
        """With ``lock`` held."""
        if key.key_id in self._keys:
            raise DuplicateItem(key.key_id)
        self._keys[key.key_id] = copy.deepcopy(key)


class InMemoryTenantStore:
    """The tenant registry; ``create_with_key`` also writes into ``api_keys`` (same control table)."""

    def __init__(self, api_keys: InMemoryApiKeyStore | None = None) -> None:
        self.api_keys = api_keys if api_keys is not None else InMemoryApiKeyStore()
        self._tenants: dict[str, Tenant] = {}

    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None:
        with self.api_keys.lock:
            return copy.deepcopy(self._tenants.get(tenant_id))

    def create_with_key(self, tenant: Tenant, admin_key: ApiKey, audit: AuditEntry | None = None) -> None:
        with self.api_keys.lock:
            if tenant.tenant_id in self._tenants:
                raise TenantExists(
                    f"tenant {tenant.tenant_id!r} already exists", details={"tenant_id": tenant.tenant_id}
                )
            if admin_key.key_id in self.api_keys._keys:
                raise DuplicateItem(admin_key.key_id)
            self._tenants[tenant.tenant_id] = copy.deepcopy(tenant)
            self.api_keys._put_new(admin_key)

    def set_status(self, tenant: Tenant, audit: AuditEntry | None = None) -> None:
        with self.api_keys.lock:
            stored = self._tenants.get(tenant.tenant_id)
            if stored is None:
                raise NotFound(f"tenant {tenant.tenant_id!r} not found")
            # Only status and updated_at are written, like the DynamoDB update.
            self._tenants[tenant.tenant_id] = replace(stored, status=tenant.status, updated_at=tenant.updated_at)

    def list(self, *, limit: int, cursor: str | None) -> Page[Tenant]:
        with self.api_keys.lock:
            tenants = list(self._tenants.values())
        return _paginate(tenants, sort_key=lambda t: t.tenant_id, limit=limit, cursor=cursor, scope="TENANTS")


class InMemoryProvisioner:
    """Records which tenants' tables exist. Idempotent, like ``TableProvisioner``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tables: set[str] = set()
        #: Every call, in order (including repeats and failures).
        self.calls: list[str] = []
        self._faults: deque[BaseException] = deque()

    def fail_next(self, error: BaseException, *, times: int = 1) -> None:
        """Raise ``error`` on the next ``times`` calls, before any table is created."""
        self._faults.extend([error] * times)

    def ensure_tenant_tables(self, tenant_id: str) -> None:
        with self._lock:
            self.calls.append(tenant_id)
            if self._faults:
                raise self._faults.popleft()
            self.tables.add(tenant_id)


__all__ = [
    "DuplicateItem",
    "InMemoryApiKeyStore",
    "InMemoryLedgerStore",
    "InMemoryMemberStore",
    "InMemoryProgramStore",
    "InMemoryProvisioner",
    "InMemoryRewardStore",
    "InMemoryTenantStore",
]


# --- referrals -----------------------------------------------------------------------------------


class InMemoryReferralStore:
    """Referrals of one tenant (the ReferralStore port), kept on the ledger's table like the
    DynamoDB items: written by enrolment and by an order earn's commit, under its lock."""

    def __init__(self, ledger: InMemoryLedgerStore) -> None:
        self.ledger = ledger
        #: The referral.completed events written (one per referral at most).
        self.events: list[Notice] = []

    def get(self, referee_id: str) -> Referral | None:
        with self.ledger.lock:
            return copy.deepcopy(self.ledger.referrals.get(referee_id))

    def list_for(self, referrer_id: str, *, limit: int, cursor: str | None) -> Page[Referral]:
        with self.ledger.lock:
            mine = [r for r in self.ledger.referrals.values() if r.referrer_id == referrer_id]
        return _paginate(
            mine,
            sort_key=lambda r: r.referee_id,
            limit=limit,
            cursor=cursor,
            scope=f"MEMBER#{referrer_id}#REFERRALS",
            descending=True,
        )

    def finish(self, referral: Referral, event: Notice) -> bool:
        with self.ledger.lock:
            current = self.ledger.referrals.get(referral.referee_id)
            if current is None or current.status is not ReferralStatus.QUALIFIED:
                return False
            self.ledger.referrals[referral.referee_id] = copy.deepcopy(referral)
            self.events.append(copy.deepcopy(event))
            return True

    def due(self, as_of: datetime) -> Iterator[str]:
        with self.ledger.lock:
            due = sorted(
                (r.qualified_at, r.referee_id)
                for r in self.ledger.referrals.values()
                if r.status is ReferralStatus.QUALIFIED and r.qualified_at is not None and r.qualified_at <= as_of
            )
        return iter([referee for _, referee in due])


class InMemoryReferralProgramStore:
    def __init__(self) -> None:
        self._versions: list[ReferralProgram] = []

    def add(self, program: ReferralProgram, audit: AuditEntry | None = None) -> None:
        self._versions.append(copy.deepcopy(program))

    def list(self) -> list[ReferralProgram]:
        return sorted(self._versions, key=lambda v: (v.effective_from, v.version_id))

    def in_force(self, at: datetime) -> ReferralProgram | None:
        started = [v for v in self.list() if v.effective_from <= at]
        return copy.deepcopy(started[-1]) if started else None


class InMemoryTransferStore:
    """Both sides of a transfer written on an ``InMemoryLedgerStore`` in one step (the
    TransferStore port, chalicelib.domain.transfers): both entries only if their keys are
    absent (the first one's taken: ``IdempotencyKeyTaken``), both balances only if still at
    their versions, the counter within its limit; all or nothing, under the ledger's lock."""

    def __init__(self, ledger: InMemoryLedgerStore) -> None:
        self._ledger = ledger
        self._before_commit: deque[Callable[[], None]] = deque()
        #: Every commit() call, in order, whatever its outcome.
        self.commit_calls = 0

    def before_next_commit(self, action: Callable[[], None]) -> None:
        """Run ``action()`` at the start of the next commit(), outside the lock (a concurrent writer)."""
        self._before_commit.append(action)

    def commit(self, transfer: TransferCommit) -> None:
        ledger = self._ledger
        self.commit_calls += 1
        if self._before_commit:
            self._before_commit.popleft()()
        sides = (transfer.out, transfer.into)
        with ledger.lock:
            if transfer.out.entry.idempotency_key in ledger._entries:
                raise IdempotencyKeyTaken(transfer.out.entry.idempotency_key)
            for side in sides:
                current = ledger._balances.get(side.previous.member_id)
                stale = current is None or (current.version, current.tier_rev) != (
                    side.previous.version,
                    side.previous.tier_rev,
                )
                if side.entry.idempotency_key in ledger._entries or stale:
                    raise BalanceChanged(side.previous.member_id)
            change = transfer.counter
            if change is not None and change.at_most is not None:
                if ledger._counters.get(change.name, 0) + change.by > change.at_most:
                    raise CounterLimitReached(change)
            if change is not None:
                ledger._counters[change.name] = ledger._counters.get(change.name, 0) + change.by
            for side in sides:
                ledger._entries[side.entry.idempotency_key] = copy.deepcopy(side.entry)
                ledger._balances[side.previous.member_id] = copy.deepcopy(side.after)
                for lot in side.lots.deleted:
                    del ledger._lots[lot.lot_id]
                for lot in (*side.lots.updated, *side.lots.created):
                    ledger._lots[lot.lot_id] = copy.deepcopy(lot)
                ledger.applied.append(side.entry)
