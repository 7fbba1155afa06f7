"""Referrals and the codes that identify a member.

**Codes.** Every member gets a *referral code* at enrolment: 8 characters of an alphabet
without look-alikes (no 0/O, 1/I/L), unique in the tenant. Uniqueness is a guard item
(``REFCODE#<code>``) written only if absent, in the same transaction as the member; a
collision cancels the whole transaction and the enrolment retries with a new code. Members
enrolled before codes existed get one on demand (``assign_referral_code``), under the same
guard and a condition that the profile has none yet, so concurrent calls agree on one code.
A brand may also give a member its own *card code* (a physical card number), unique under a
``CARD#<code>`` guard that moves atomically with the profile when it changes.

**Referrals.** A new member enrolled with another member's referral code is the *referee*;
the code's owner the *referrer*. The referral is recorded pending in the enrolment's own
transaction, and the referee's balance carries ``referral_from`` while it is pending.

* **Qualification** happens inside the referee's order earn (``PointsService``): the earn
  that finds ``referral_from`` on the balance it read and an order meeting the program in
  force (enabled, total >= ``min_order_total``) clears ``referral_from`` and marks the
  referral ``qualified`` (with the program's terms frozen on it) in its own transaction.
  Concurrent earns serialise on the balance's version, so exactly one order qualifies.
* **Completion** follows the committed earn (in the same request, on a replay of its
  Idempotency-Key, or by the ``complete-referrals`` job, which finds qualified referrals
  through a sparse index): the referrer's reward and then the referee's are ledger earns
  under keys the ledger reserves (``referral:<referee>:referrer|referee``), so each applies
  at most once however often completion runs. The referrer's reward carries the cap counter
  (``referral:<referrer>:<period>``, refused past the cap inside the reward's transaction):
  refused means ``capped``. Then the referral becomes ``completed`` or ``capped`` together
  with its ``referral.completed`` event, once (a conditional write).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from chalicelib.domain.audit import SYSTEM, AuditAction, AuditEntry, Auditor
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import (
    InvalidRequest,
    LimitReached,
    LoyaltyError,
    NotFound,
    SelfReferral,
    TransientStoreError,
)
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_notice_id, ulid
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.notifications import Notice
from chalicelib.domain.ports import CounterChange

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chalicelib.domain.entries import Balance
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.movement_requests import MovementResult
    from chalicelib.domain.orders import Order
    from chalicelib.domain.ports import Page

#: No 0/O, 1/I/L: a code read aloud or off a screen is not mistaken for another.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERRAL_CODE_LENGTH = 8
REFERRAL_CODE_PATTERN = re.compile(rf"^[{CODE_ALPHABET}]{{{REFERRAL_CODE_LENGTH}}}$")
#: A brand's card number: letters, digits and hyphens, compared upper-cased.
CARD_CODE_PATTERN = re.compile(r"^[A-Z0-9-]{4,40}$")
#: The ledger keeps this prefix for referral rewards (see ``MINTED_KEY_PREFIXES``).
REFERRAL_KEY_PREFIX = "referral:"
#: Attempts at a fresh referral code when the one drawn is taken (31^8 codes: a retry is rare).
MAX_CODE_ATTEMPTS = 5
MAX_REFERRAL_POINTS = 100_000_000
MAX_CAP = 100_000


def new_referral_code(choice: Callable[[str], str] = secrets.choice) -> str:
    return "".join(choice(CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def normalize_referral_code(code: str) -> str | None:
    """The code as stored (upper case), or None if it cannot be a referral code."""
    upper = code.strip().upper()
    return upper if REFERRAL_CODE_PATTERN.fullmatch(upper) else None


def normalize_card_code(code: str) -> str:
    return code.strip().upper()


# --- errors ------------------------------------------------------------------------------------


class ReferralCodeTaken(Exception):
    """A generated referral code collided with an existing one (retried with a new code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- the program: versions ---------------------------------------------------------------------


class CapPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


def cap_period_key(per: CapPeriod, at: datetime, timezone: str) -> str:
    """The calendar period of ``at`` in the tenant's zone: a day, an ISO week, a month, a year."""
    local = at.astimezone(ZoneInfo(timezone))
    if per is CapPeriod.DAY:
        return f"{local:%Y-%m-%d}"
    if per is CapPeriod.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if per is CapPeriod.MONTH:
        return f"{local:%Y-%m}"
    if per is CapPeriod.YEAR:
        return f"{local:%Y}"
    return "ever"


def cap_counter_name(referrer_id: str, period: str) -> str:
    return f"{REFERRAL_KEY_PREFIX}{referrer_id}:{period}"


@dataclass(frozen=True)
class ReferralCap:
    limit: int
    per: CapPeriod


@dataclass(frozen=True)
class ReferralProgram:
    """One version of the tenant's referral program, in force from ``effective_from``."""

    version_id: str
    effective_from: datetime
    created_at: datetime
    enabled: bool
    referrer_points: int
    referee_points: int
    #: The qualifying order's minimum total (None: any order earn qualifies).
    min_order_total: Decimal | None = None
    #: Referrals rewarded per referrer and period; past it a referral is ``capped``.
    cap: ReferralCap | None = None
    #: Whether the referee still gets its reward when the referrer's is capped.
    referee_rewarded_when_capped: bool = True

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if not 1 <= self.referrer_points <= MAX_REFERRAL_POINTS:
            problems.append(("referrer_points", f"between 1 and {MAX_REFERRAL_POINTS}"))
        if not 0 <= self.referee_points <= MAX_REFERRAL_POINTS:
            problems.append(("referee_points", f"between 0 and {MAX_REFERRAL_POINTS}"))
        if self.min_order_total is not None and self.min_order_total <= 0:
            problems.append(("min_order_total", "a positive amount"))
        if self.cap is not None and not 1 <= self.cap.limit <= MAX_CAP:
            problems.append(("cap.limit", f"between 1 and {MAX_CAP}"))
        if problems:
            raise InvalidRequest.for_fields("invalid referral program", *((p, m, "value_error") for p, m in problems))

    def qualifies(self, order: Order) -> bool:
        return self.enabled and (self.min_order_total is None or order.total >= self.min_order_total)


@dataclass(frozen=True)
class NewReferralProgram:
    enabled: bool
    referrer_points: int
    referee_points: int
    min_order_total: Decimal | None = None
    cap: ReferralCap | None = None
    referee_rewarded_when_capped: bool = True
    effective_from: datetime | None = None


def new_referral_program_id(at: datetime) -> str:
    return f"rpv_{ulid(at)}"


# --- referrals ---------------------------------------------------------------------------------


class ReferralStatus(StrEnum):
    #: The referee enrolled with the code; no qualifying order yet.
    PENDING = "pending"
    #: The qualifying order is recorded; the rewards are being credited.
    QUALIFIED = "qualified"
    #: Both rewarded (each as the terms say).
    COMPLETED = "completed"
    #: The referrer had reached the cap for the period: no referrer reward.
    CAPPED = "capped"


@dataclass(frozen=True)
class ReferralTerms:
    """The program's terms as they were when the referral qualified: completion follows them,
    whatever version is in force when it runs (or reruns)."""

    version_id: str
    referrer_points: int
    referee_points: int
    referee_rewarded_when_capped: bool
    cap_limit: int | None = None
    #: The cap's counter period (``2026-03``...), from the qualification time in the tenant's zone.
    cap_period: str | None = None


@dataclass(frozen=True)
class Referral:
    referee_id: str
    referrer_id: str
    status: ReferralStatus
    created_at: datetime
    qualified_at: datetime | None = None
    completed_at: datetime | None = None
    order_id: str | None = None
    #: The idempotency key of the order earn that qualified it.
    earn_key: str | None = None
    terms: ReferralTerms | None = None
    #: Points actually credited to each (0 for a capped referrer).
    referrer_points: int = 0
    referee_points: int = 0


@dataclass(frozen=True)
class ReferralQualification:
    """Written by the referee's qualifying order earn, in that earn's own transaction."""

    referee_id: str
    referrer_id: str
    order_id: str
    earn_key: str
    qualified_at: datetime
    terms: ReferralTerms


class ReferralStore(Protocol):
    def get(self, referee_id: str) -> Referral | None:
        """The referral of a referee (read strongly), if it was referred."""

    def list_for(self, referrer_id: str, *, limit: int, cursor: str | None) -> Page[Referral]:
        """A referrer's referrals, newest first."""

    def finish(self, referral: Referral, event: Notice) -> bool:
        """Write the referral's final status and its event, only if it is still ``qualified``:
        False when another completion got there first."""

    def due(self, as_of: datetime) -> Iterator[str]:
        """Referees whose referral qualified by ``as_of`` and is not finished (a sparse index)."""


class ReferralProgramStore(Protocol):
    def add(self, program: ReferralProgram, audit: AuditEntry | None = None) -> None: ...
    def list(self) -> list[ReferralProgram]:
        """Every version, oldest effective_from first."""

    def in_force(self, at: datetime) -> ReferralProgram | None:
        """The version with the latest effective_from at or before ``at``."""


def check_not_self_referral(
    *, email: str | None, external_id: str | None, referrer_email: str | None, referrer_external_id: str | None
) -> None:
    """The referrer cannot be the new member: its code's owner is another member by construction,
    and the same email (case-insensitive) or external id is refused as the same person."""
    same = []
    if email and referrer_email and email.lower() == referrer_email.lower():
        same.append("email")
    if external_id and referrer_external_id and external_id == referrer_external_id:
        same.append("external_id")
    if same:
        raise SelfReferral("a member cannot be referred by their own referral code", details={"same": same})


def reward_key(referee_id: str, role: str) -> str:
    return f"{REFERRAL_KEY_PREFIX}{referee_id}:{role}"


REWARD_DESCRIPTIONS = {
    "referrer": "Referral reward: a member you referred made a qualifying order",
    "referee": "Referral reward: welcome, referred member",
}


class ReferralService:
    """The referral program's versions, the ledger's hook for qualifying orders, completion
    (the rewards) and a referrer's list of referrals."""

    def __init__(
        self,
        store: ReferralStore,
        programs: ReferralProgramStore,
        *,
        timezone: str,
        clock: Clock = utc_now,
        on_deferred: Callable[[str, Exception], None] | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor or Auditor(SYSTEM, clock)
        self._store = store
        self._programs = programs
        self._timezone = timezone
        self._clock = clock
        self._on_deferred = on_deferred

    # --- the program ------------------------------------------------------------------------

    def configure(self, new: NewReferralProgram) -> ReferralProgram:
        now = self._clock()
        start = new.effective_from or now
        if start < now - timedelta(seconds=1):
            raise InvalidRequest.for_fields(
                "effective_from may not be in the past: past referrals stay explained by the version then in force",
                ("effective_from", "must be now or later", "value_error"),
            )
        program = ReferralProgram(
            version_id=new_referral_program_id(now),
            effective_from=start.astimezone(UTC),
            created_at=now,
            enabled=new.enabled,
            referrer_points=new.referrer_points,
            referee_points=new.referee_points,
            min_order_total=new.min_order_total,
            cap=new.cap,
            referee_rewarded_when_capped=new.referee_rewarded_when_capped,
        )
        before = self._programs.in_force(program.effective_from)
        audit = self._auditor.entry(
            AuditAction.REFERRALS_CONFIGURED, "referrals", program.version_id, before=before, after=program, at=now
        )
        self._programs.add(program, audit)
        return program

    def versions(self) -> list[ReferralProgram]:
        return self._programs.list()

    def in_force(self, at: datetime | None = None) -> ReferralProgram | None:
        return self._programs.in_force(at or self._clock())

    # --- a referrer's referrals -----------------------------------------------------------------

    def list(
        self, referrer_id: str, *, limit: int, cursor: str | None, exists: Callable[[str], bool]
    ) -> Page[Referral]:
        if not MEMBER_ID_PATTERN.fullmatch(referrer_id):
            raise NotFound(f"member {referrer_id!r} not found")
        page = self._store.list_for(referrer_id, limit=limit, cursor=cursor)
        if not page.items and not exists(referrer_id):
            raise NotFound(f"member {referrer_id!r} not found")
        return page

    # --- used by the ledger, inside the referee's order earn ------------------------------------

    def qualification(
        self, balance: Balance, order: Order, *, earn_key: str, now: datetime
    ) -> ReferralQualification | None:
        """Whether this order qualifies the referee's pending referral (the balance read by the
        earn says it is pending), under the version in force now, and the terms it freezes."""
        if balance.referral_from is None:
            return None
        program = self._programs.in_force(now)
        if program is None or not program.qualifies(order):
            return None
        cap = program.cap
        terms = ReferralTerms(
            version_id=program.version_id,
            referrer_points=program.referrer_points,
            referee_points=program.referee_points,
            referee_rewarded_when_capped=program.referee_rewarded_when_capped,
            cap_limit=cap.limit if cap else None,
            cap_period=cap_period_key(cap.per, now, self._timezone) if cap else None,
        )
        return ReferralQualification(
            referee_id=balance.member_id,
            referrer_id=balance.referral_from,
            order_id=order.order_id,
            earn_key=earn_key,
            qualified_at=now,
            terms=terms,
        )

    def after_order_earn(self, result: MovementResult, points: PointsService) -> None:
        """After an order earn (first result or replay): complete the referral it qualified.
        A failure here does not fail the earn, which is committed: the job completes it later."""
        qualified = next((w for w in result.writes if isinstance(w, ReferralQualification)), None)
        if qualified is not None:
            referee = qualified.referee_id
        elif result.replayed:
            found = self._store.get(result.entry.member_id)
            if found is None or found.status is not ReferralStatus.QUALIFIED:
                return
            if found.earn_key != result.entry.idempotency_key:
                return
            referee = found.referee_id
        else:
            return
        try:
            self.complete(referee, points)
        except (TransientStoreError, LoyaltyError) as error:
            if self._on_deferred is not None:
                self._on_deferred(referee, error)

    # --- completion -------------------------------------------------------------------------

    def complete(self, referee_id: str, points: PointsService) -> Referral | None:
        """Credit the rewards of a qualified referral and finish it; idempotent and safe to run
        concurrently (each reward has its own minted key; finishing is conditional)."""
        referral = self._store.get(referee_id)
        if referral is None or referral.status is not ReferralStatus.QUALIFIED or referral.terms is None:
            return referral
        terms = referral.terms
        counters: tuple[CounterChange, ...] = ()
        if terms.cap_limit is not None and terms.cap_period is not None:
            name = cap_counter_name(referral.referrer_id, terms.cap_period)
            counters = (CounterChange(name, 1, at_most=terms.cap_limit),)
        capped = False
        try:
            points.move(self._reward(referral, "referrer", terms.referrer_points, counters))
        except LimitReached:
            capped = True  # the counter only grows within its period: a rerun decides the same
        referee_points = 0
        if terms.referee_points and (not capped or terms.referee_rewarded_when_capped):
            points.move(self._reward(referral, "referee", terms.referee_points))
            referee_points = terms.referee_points
        now = self._clock()
        finished = replace(
            referral,
            status=ReferralStatus.CAPPED if capped else ReferralStatus.COMPLETED,
            completed_at=now,
            referrer_points=0 if capped else terms.referrer_points,
            referee_points=referee_points,
        )
        if self._store.finish(finished, completion_event(finished, now)):
            return finished
        return self._store.get(referee_id)  # another completion finished it first

    def _reward(
        self, referral: Referral, role: str, points: int, counters: tuple[CounterChange, ...] = ()
    ) -> MovementRequest:
        """A reward: an earn under the key the ledger reserves for it. Everything in it follows
        from the referral, so a rerun is the same request (a replay), never another."""
        return MovementRequest(
            member_id=referral.referrer_id if role == "referrer" else referral.referee_id,
            movement=MovementType.EARN,
            idempotency_key=reward_key(referral.referee_id, role),
            points=points,
            reference=f"{REFERRAL_KEY_PREFIX}{referral.referee_id}",
            description=REWARD_DESCRIPTIONS[role],
            metadata={"referrer_id": referral.referrer_id, "referee_id": referral.referee_id},
            timezone=self._timezone,
            pending_days=0,
            counters=counters,
            minted_key=True,
        )

    def complete_due(self, points: PointsService, as_of: datetime) -> dict[str, int]:
        counts = {"referrals": 0, "completed": 0, "capped": 0}
        seen: set[str] = set()
        for referee_id in self._store.due(as_of):
            if referee_id in seen:
                continue
            seen.add(referee_id)
            counts["referrals"] += 1
            done = self.complete(referee_id, points)
            if done is not None and done.status is ReferralStatus.COMPLETED:
                counts["completed"] += 1
            elif done is not None and done.status is ReferralStatus.CAPPED:
                counts["capped"] += 1
        return counts


def completion_event(referral: Referral, now: datetime) -> Notice:
    return Notice(
        notice_id=new_notice_id(now),
        type=EventType.REFERRAL_COMPLETED,
        member_id=referral.referrer_id,
        subject=referral.referee_id,
        created_at=now,
        data={
            "referrer_id": referral.referrer_id,
            "referee_id": referral.referee_id,
            "status": str(referral.status),
            "referrer_points": referral.referrer_points,
            "referee_points": referral.referee_points,
            "order_id": referral.order_id,
            "qualified_at": isoformat(referral.qualified_at) if referral.qualified_at else None,
        },
    )


class ReferralCompletionJob:
    """``complete-referrals``: finishes referrals whose qualifying order committed but whose
    completion did not (a crash, a timeout, a throttled reward), found through a sparse index."""

    def __init__(self, referrals: ReferralService, points: PointsService) -> None:
        self._referrals = referrals
        self._points = points

    def run(self, as_of: datetime) -> dict[str, int]:
        return self._referrals.complete_due(self._points, as_of)
