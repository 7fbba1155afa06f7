"""What the domain needs from storage. The DynamoDB adapters live in chalicelib.persistence."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from chalicelib.domain.errors import LimitReached

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from chalicelib.domain.api_keys import ApiKey
    from chalicelib.domain.audit import Actor, AuditEntry, AuditQuery
    from chalicelib.domain.consents import ConsentChange
    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.errors import LoyaltyError
    from chalicelib.domain.events import Event
    from chalicelib.domain.expiry import Lot, LotChanges
    from chalicelib.domain.jobs import JobRun
    from chalicelib.domain.members import EnrolmentRecord, Member, MemberChanges
    from chalicelib.domain.notifications import Notice
    from chalicelib.domain.program import Program
    from chalicelib.domain.referrals import Referral
    from chalicelib.domain.rewards import Coupon, Reward
    from chalicelib.domain.rules import EarningRule
    from chalicelib.domain.tenants import Tenant
    from chalicelib.domain.tiers import TierProgram, TierWrite

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class TenantStore(Protocol):
    def get(self, tenant_id: str, *, consistent: bool = True) -> Tenant | None: ...
    def create_with_key(self, tenant: Tenant, admin_key: ApiKey, audit: AuditEntry | None = None) -> None: ...
    def set_status(self, tenant: Tenant, audit: AuditEntry | None = None) -> None: ...
    def list(self, *, limit: int, cursor: str | None) -> Page[Tenant]: ...
    def advance_clock(self, tenant_id: str, offset_seconds: int, *, at: datetime) -> Tenant | None: ...
    def finish_provisioning(self, tenant_id: str, *, at: datetime) -> Tenant | None:
        """``provisioning`` -> ``active`` (clearing the recorded failure), only if the tenant
        is still provisioning: the updated tenant, or None when it was not."""

    def record_provisioning_failure(self, tenant_id: str, error: str, *, at: datetime) -> Tenant:
        """Count one more failed attempt and keep its text; the updated tenant. NotFound if none."""


class ApiKeyStore(Protocol):
    def get(self, key_id: str) -> ApiKey | None: ...
    def add(self, key: ApiKey, audit: AuditEntry | None = None) -> None: ...
    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]: ...
    def revoke(self, key: ApiKey, at: datetime, audit: AuditEntry | None = None) -> ApiKey: ...


class TableProvisioner(Protocol):
    def ensure_tenant_tables(self, tenant_id: str) -> None:
        """Create the tenant's table unless it exists, and return once it is usable, with its
        settings (billing, encryption, deletion protection, backups, tags). Idempotent.
        RetryLater when DynamoDB refuses a table for now or the table is not ready in time."""


class ProvisioningQueue(Protocol):
    def enqueue(self, tenant_id: str) -> None:
        """Ask for the tenant's table to be provisioned, asynchronously (at least once)."""


class MemberStore(Protocol):
    def create(
        self,
        member: Member,
        opening_balance: Balance,
        referral: Referral | None = None,
        *,
        record: EnrolmentRecord | None = None,
        consent: ConsentChange | None = None,
    ) -> None:
        """Write the profile, the opening balance, the consent given (``consent``), the guards of
        the member's external id, referral code and card code (each only if absent), the pending referral, and the
        enrolment's Idempotency-Key record (only if absent), in one transaction.
        IdempotencyKeyTaken when the record exists (checked first: whatever else is refused),
        else MemberExists, CardCodeTaken, or ReferralCodeTaken (draw another code)."""

    def get_enrolment(self, idempotency_key: str) -> EnrolmentRecord | None:
        """The record of an enrolment's Idempotency-Key (strongly consistent), or None."""

    def get(self, member_id: str) -> Member | None: ...
    def find_by_external_id(self, external_id: str) -> Member | None: ...
    def find_by_referral_code(self, code: str) -> Member | None: ...
    def find_by_card_code(self, code: str) -> Member | None: ...
    def list(self, *, limit: int, cursor: str | None) -> Page[Member]: ...
    def enrolled_between(self, start: datetime, end: datetime) -> Iterator[Member]:
        """Members enrolled in [start, end], oldest first (a range of the members index)."""

    def update(
        self, member_id: str, changes: MemberChanges, at: datetime, source: Actor | None = None
    ) -> Member | None:
        """Change the fields of ``changes``; a card code moves its guard in the same transaction
        (CardCodeTaken if another member holds it), a consent that changes is recorded in it as a
        change made by ``source``. None for an unknown member."""

    def assign_referral_code(self, member_id: str, code: str, at: datetime) -> Member | None:
        """Give a member without a referral code this one (its guard written only if absent:
        ReferralCodeTaken); a member who has one keeps it. The member as stored, None if unknown."""


class LedgerStore(Protocol):
    def get_balance(self, member_id: str, *, consistent: bool) -> Balance | None: ...
    def get_lots(self, member_id: str, *, consistent: bool) -> list[Lot]: ...
    def commit(
        self,
        entries: Sequence[LedgerEntry],
        previous: Balance,
        new: Balance,
        lots: LotChanges,
        *,
        request_entry: bool = True,
        writes: Sequence[object] = (),
    ) -> None:
        """Write the entries, the new balance, the lot changes and the movement's other
        ``writes`` in one conditional transaction.

        Each entry is written only if its idempotency key is absent, the balance only if it is
        still at ``previous.version`` and ``previous.tier_rev``, each write under its own
        condition. The writes a store knows: ``CounterChange`` (within its limit),
        ``CouponWrite`` (under its condition), ``TierWrite`` (the member's entry in the index of
        due tier reviews and its ``tier.changed`` event), ``ReferralQualification`` (the
        referee's referral becomes qualified, only if still pending) and ``PlanWrite`` (a
        plan's change, with its grant on the balance). Raises IdempotencyKeyTaken when the last
        entry's key exists and it is a request's entry (``request_entry``); the write's
        WriteRefused (CounterLimitReached, CouponWriteRefused) or PlanWriteRefused when a
        write's own condition fails; BalanceChanged for any other failed condition;
        TransientStoreError for conflicts and throttling.
        """

    def set_tier(self, previous: Balance, new: Balance, tier: TierWrite) -> None:
        """Write the tier fields of ``new`` (no ledger entry), with ``tier``'s index entry and
        event, only if the balance is still at ``previous.version`` and ``previous.tier_rev``:
        else BalanceChanged."""

    def due_tier_reviews(self, as_of: datetime) -> Iterator[str]:
        """Ids of members whose tier review is due at ``as_of``, through a sparse index."""

    def get_counter(self, name: str) -> int:
        """A counter's value (0 if it was never changed), read strongly."""

    def due_lots(self, as_of: datetime, *, maturity: bool = False) -> Iterator[tuple[str, str]]:
        """(member id, lot id) of every lot whose expiry (or maturity) is at or before
        ``as_of``, found through an index of due lots, never a scan of members."""

    def get_entry(self, idempotency_key: str) -> LedgerEntry | None: ...
    def entries_for_reference(self, member_id: str, reference: str) -> list[LedgerEntry]:
        """The member's entries carrying ``reference`` (earns and reversals of an order)."""

    def list_entries(self, member_id: str, *, limit: int, cursor: str | None) -> Page[LedgerEntry]: ...


class JobRunStore(Protocol):
    def put(self, run: JobRun, audit: AuditEntry | None = None) -> None: ...
    def list(self, *, limit: int, cursor: str | None) -> Page[JobRun]: ...


class EventStore(Protocol):
    def read_day(self, day: date, *, after: str, upper: str, limit: int) -> list[Event]:
        """Events of a UTC day with ``after`` < sort key <= ``upper``, in order."""


class NoticeStore(Protocol):
    def add_once(self, notice: Notice) -> int:
        """Write the notice (an event of the feed) unless one of its type, member and subject
        exists: 1 when written, 0 when it already was."""

    def members_born_on(self, days: list[str]) -> Iterator[str]:
        """Ids of members whose birthday (``MM-DD``) is one of ``days``, through an index."""

    def exists(self, notice_type: str, member_id: str, subject: str) -> bool:
        """Whether the notice of this type, member and subject is written (one key read)."""


class RuleStore(Protocol):
    def list(self) -> list[EarningRule]: ...
    def get(self, rule_id: str) -> EarningRule | None: ...
    def put(self, rule: EarningRule, audit: AuditEntry | None = None) -> None: ...


class RewardStore(Protocol):
    def get(self, reward_id: str) -> Reward | None: ...
    def add(self, reward: Reward, audit: AuditEntry | None = None) -> None: ...
    def replace(self, reward: Reward, *, previous_version: int, audit: AuditEntry | None = None) -> bool:
        """Write the reward only if it is still at ``previous_version``: False when it moved."""

    def list(self, *, limit: int, cursor: str | None) -> Page[Reward]: ...
    def counters(self, names: Sequence[str]) -> dict[str, int]:
        """Several counters at once (0 for those never changed), read strongly."""

    def get_coupon(self, code: str) -> Coupon | None:
        """The coupon (or pool code) under ``code``, read strongly."""

    def member_coupons(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Coupon]:
        """The member's coupons, newest first."""

    def pool_codes(self, reward_id: str, *, limit: int) -> builtins.list[str]:
        """Some codes of the reward's pool that are still available (eventually consistent)."""

    def existing_codes(self, codes: Sequence[str]) -> builtins.list[str]:
        """Those of ``codes`` that are taken already (in a pool or issued), in any reward."""

    def add_pool_codes(self, coupons: Sequence[Coupon], audit: AuditEntry | None = None) -> None:
        """Store available pool codes (in batches of at most 25), then ``audit``."""

    def mark_used(self, coupon: Coupon, *, now: datetime, event: Notice) -> bool:
        """Write the coupon as used only if it is still issued and not past its validity at
        ``now``, and its ``event`` (once), in one transaction: False when it was not."""


class TierProgramStore(Protocol):
    def add(self, program: TierProgram, audit: AuditEntry | None = None) -> None: ...
    def list(self) -> list[TierProgram]:
        """Every version, oldest effective_from first."""

    def in_force(self, at: datetime) -> TierProgram | None:
        """The version with the latest effective_from at or before ``at``."""


class ProgramStore(Protocol):
    def get(self) -> Program | None: ...
    def put(self, program: Program, audit: AuditEntry | None = None) -> None: ...
    def forget(self) -> None:
        """Drop what was read, so the next ``get`` reads the store again."""


@dataclass(frozen=True)
class CounterChange:
    """Add ``by`` to the counter ``name`` in a movement's transaction, refused if the counter
    would then exceed ``at_most`` (limits per member and period: activities, caps, stock)."""

    name: str
    by: int
    at_most: int | None = None
    #: The limit failing means the counter moved since it was read (earning caps: the earn is
    #: capped again after a re-read), not a refusal: the movement retries instead.
    retry_on_limit: bool = False


class WriteRefused(Exception):
    """A write of a movement's transaction failed its own condition: nothing was written."""

    def refusal(self) -> Exception | None:
        """How the movement ends: this refusal, or None when what the write was decided on
        moved since it was read (the movement decides again)."""
        raise NotImplementedError


class CounterLimitReached(WriteRefused):
    """A counter of the transaction would have passed its limit."""

    def __init__(self, change: CounterChange) -> None:
        super().__init__(change.name)
        self.change = change

    def refusal(self) -> Exception | None:
        if self.change.retry_on_limit:  # a cap's counter moved since it was read: cap again
            return None
        limit = self.change.at_most
        return LimitReached(
            f"the limit of {limit} for {self.change.name!r} is reached",
            details={"counter": self.change.name, "limit": limit},
        )


class CouponWriteKind(StrEnum):
    #: Put a new coupon, only if its code is absent (generated codes).
    ISSUE = "issue"
    #: Take a code of the brand's pool, only if it is still available.
    CLAIM = "claim"
    #: Mark an issued coupon cancelled, only if it is still issued.
    CANCEL = "cancel"


@dataclass(frozen=True)
class CouponWrite:
    """A coupon written in a movement's transaction under a condition on its state (like a
    counter): if the condition fails, nothing of the movement is written and the movement is
    refused with ``refusal`` (unless it is the replay of a key already applied)."""

    kind: CouponWriteKind
    #: The coupon as the write leaves it.
    coupon: Coupon
    refusal: LoyaltyError


class CouponWriteRefused(WriteRefused):
    """The condition of a coupon write of the transaction failed."""

    def __init__(self, write: CouponWrite) -> None:
        super().__init__(write.coupon.code)
        self.write = write

    def refusal(self) -> Exception | None:
        return self.write.refusal


class IdempotencyKeyTaken(Exception):
    """The idempotency key is already recorded: the ledger holds an entry under it, or an
    enrolment's record (member stores) exists."""


class BalanceChanged(Exception):
    """The balance moved since it was read (optimistic concurrency); re-read and retry."""


class AuditStore(Protocol):
    """A trail of audit entries (chalicelib.domain.audit): read here; each is written by the store
    of the change it records, in that change's transaction."""

    def list(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]: ...

    def record(self, entry: AuditEntry) -> None:
        """An entry of an action that changes nothing else (a member's export), written alone."""
        ...


class ConsentStore(Protocol):
    """A member's consent history (chalicelib.domain.consents): each change is written by the
    member store, in the profile's transaction."""

    def history(self, member_id: str, *, limit: int, cursor: str | None) -> Page[ConsentChange]: ...
    def in_force(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None: ...
    def first_after(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None: ...
