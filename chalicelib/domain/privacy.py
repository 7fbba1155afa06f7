"""Privacy: a member's data on request (export), erasure that keeps the books, and retention.

**Export.** Everything the tenant's table holds about a member, gathered in one document:
profile, consent and its history, balance and lots, ledger (transfers included), tier
history, coupons, referrals, subscriptions, partner activity, challenges with the member's
progress, badges and the member's events.

**Erasure.** One conditional transaction, through the ledger's own commit (so it is ordered
with every movement by the balance's version):

* the member's outstanding points (available and pending) are forfeited by a recorded
  ``adjust`` entry (reason ``member_erased``) that also removes their lots: the liability drops
  and the books still add up;
* the profile loses every personal attribute (name, email, birthday, external id, card and
  referral codes, segments, consent) and is marked erased; the external id's look-up item and
  the codes' guards are deleted, so the erased identifiers find nobody; a one-way hash of the
  external id is kept so that a bulk import cannot bring the member back silently;
* the ``member.erased`` event (ids, time and points only) is written;
* the balance is marked erased: a movement racing the erasure either commits before it (and
  its points are forfeited with the rest) or reads the erased balance and is refused (410).

Afterwards, the member's history is redacted (``PrivacyStore.redact_history``): the metadata
keys and descriptions the brand marks as personal (program settings), the birthday of past
``member.birthday`` events, the payloads of the member's webhook deliveries. A transfer's
description is on both members' entries: when descriptions are personal, the other member's
entry of each of the erased member's transfers (and its webhook deliveries) loses it too. Feed events are
rendered from the items when read, so no later page of the feed, webhook or EventBridge entry
carries the erased data. The member also leaves their household (chalicelib.domain.households:
alone, it goes; an owner with others hands it on); the erasure itself never waits on it, and
the pool never counts an erased member. Redaction is idempotent: erasing again finishes it.

**Retention.** Under ``erase_inactive_after_years``, the ``erase-inactive`` job erases members
with no earn or redeem for that many years. Members are found through a sparse index of last
activity (``PrivacyStore.activity_due``), fed once per member when it becomes old enough to be
a candidate (a walk of members by enrolment, from a checkpoint): a run costs what is due.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from chalicelib.domain.audit import AuditAction
from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.entries import Balance, LedgerEntry, settle
from chalicelib.domain.errors import (
    IdempotencyKeyReused,
    MemberErased,
    NotFound,
    RetryLater,
    TransientStoreError,
)
from chalicelib.domain.events import Event, EventType
from chalicelib.domain.expiry import Lot, LotChanges
from chalicelib.domain.fingerprints import JSON_DEFAULT, fingerprint
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_notice_id, new_transaction_id
from chalicelib.domain.movement import Movement, MovementStep
from chalicelib.domain.movement_requests import MAX_LOTS_PER_MOVEMENT, MovementType
from chalicelib.domain.notifications import Notice
from chalicelib.domain.ports import BalanceChanged, IdempotencyKeyTaken, WriteRefused

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from chalicelib.domain.audit import Auditor
    from chalicelib.domain.challenges import BadgeAward, Challenge, Progress
    from chalicelib.domain.consents import ConsentChange
    from chalicelib.domain.households import Membership
    from chalicelib.domain.members import Member
    from chalicelib.domain.ports import AuditStore, LedgerStore, MemberStore, Page
    from chalicelib.domain.program import ProgramService
    from chalicelib.domain.referrals import Referral
    from chalicelib.domain.rewards import Coupon
    from chalicelib.domain.subscriptions import Subscription

T = TypeVar("T")

#: The reason on the entry that forfeits an erased member's points.
ERASURE_REASON = "member_erased"
#: The subject of the ``member.erased`` event: one per member.
ERASURE_SUBJECT = "erased"
#: The prefix of the Idempotency-Key the retention job erases a member under.
RETENTION_KEY_PREFIX = "retention:"
#: Attempts at an erasure whose balance or profile moved while it was decided.
MAX_ERASE_ATTEMPTS = 16
#: Items read per page when an export gathers a list.
EXPORT_PAGE = 100


@dataclass(frozen=True)
class PersonalData:
    """What the brand marks as personal beyond the profile (program settings): metadata keys of
    movements, and whether the free-text descriptions of movements are personal."""

    metadata_keys: frozenset[str] = frozenset()
    descriptions: bool = False


def erasure_fingerprint(member_id: str) -> str:
    """What makes two erasures 'the same request' for an Idempotency-Key: the member."""
    return fingerprint({"erase": member_id}, separators=JSON_DEFAULT)


@dataclass(frozen=True)
class ErasureWrite:
    """What the erasure writes besides the ledger's own items: the profile as read (it is
    redacted only if unchanged since), its identifiers, and the ``member.erased`` event."""

    member_id: str
    erased_at: datetime
    profile_updated_at: datetime
    external_id: str | None
    referral_code: str | None
    card_code: str | None
    event: Notice


class ErasureRaced(WriteRefused):
    """The profile changed (or was erased) between the erasure's read and its commit."""

    def refusal(self) -> Exception | None:
        return None  # read again and decide again


@dataclass(frozen=True)
class Erasure:
    member_id: str
    erased_at: datetime
    #: Available points forfeited, and pending points forfeited, by the erasure's entry.
    points_forfeited: int
    pending_forfeited: int
    #: The erasure's ledger entry (its Idempotency-Key is the request's).
    transaction_id: str | None
    #: This answer repeats an earlier erasure's (the member was already erased).
    replayed: bool = False

    @classmethod
    def of_event(cls, event: Notice, *, replayed: bool) -> Erasure:
        data = event.data
        return cls(
            member_id=event.member_id,
            erased_at=event.created_at,
            points_forfeited=int(data.get("points_forfeited") or 0),
            pending_forfeited=int(data.get("pending_forfeited") or 0),
            transaction_id=str(data["transaction_id"]) if data.get("transaction_id") else None,
            replayed=replayed,
        )


@dataclass(frozen=True)
class MemberDataset:
    """Everything held about a member (``PrivacyService.export``)."""

    member: Member
    #: Every change of the member's consents, oldest first.
    consent_changes: tuple[ConsentChange, ...]
    balance: Balance
    lots: tuple[Lot, ...]
    entries: tuple[LedgerEntry, ...]
    coupons: tuple[Coupon, ...]
    #: The member's own referral (as referee), and those of the members they referred.
    referred_by: Referral | None
    referrals: tuple[Referral, ...]
    subscriptions: tuple[Subscription, ...]
    #: The member's notices (tier changes, referral rewards, subscriptions, marketing notices).
    notices: tuple[Notice, ...]
    #: The challenges open to the member and those they made progress in, with their progress.
    challenges: tuple[tuple[Challenge, Progress], ...]
    #: The badges the member holds, oldest first.
    badges: tuple[BadgeAward, ...]
    exported_at: datetime
    #: The household the member is in (its id) and their membership in it, if any.
    household: tuple[str, Membership] | None = None

    @property
    def partner_entries(self) -> tuple[LedgerEntry, ...]:
        """Movements made by coalition partners (their keys are ``partner:<id>:<key>``)."""
        return tuple(entry for entry in self.entries if entry.idempotency_key.startswith("partner:"))

    @property
    def tier_changes(self) -> tuple[Notice, ...]:
        return tuple(notice for notice in self.notices if notice.type is EventType.TIER_CHANGED)

    @property
    def events(self) -> tuple[Event, ...]:
        """The member's events of the feed, oldest first: enrolment, movements, notices."""
        events = [Event.of_member(self.member), *map(Event.of_entry, self.entries), *map(Event.of_notice, self.notices)]
        return tuple(sorted(events, key=lambda event: event.sort_key))


class PrivacyStore(Protocol):
    def erasure_event(self, member_id: str) -> Notice | None:
        """The member's ``member.erased`` event, if the member was erased (read strongly)."""

    def redact_history(self, member_id: str, personal: PersonalData, *, since: datetime, until: datetime) -> int:
        """Remove the erased member's personal data from what outlives the erasure (ledger
        metadata and descriptions marked personal, birthday events, webhook deliveries) and
        delete any lot left over; returns the items changed. Idempotent."""

    def erased_external_ids(self, external_ids: Iterable[str]) -> set[str]:
        """Those of ``external_ids`` that belonged to an erased member."""

    def member_notices(self, member_id: str) -> list[Notice]:
        """The member's notices (events other than enrolment and movements), oldest first."""

    def activity_due(self, before: datetime) -> Iterator[str]:
        """Members whose last activity, as indexed, is before ``before`` (a sparse index)."""

    def index_activity(self, member_id: str, last_activity: datetime) -> None:
        """Put the member in the last-activity index at ``last_activity``."""

    def unindex_activity(self, member_id: str) -> None: ...

    def enrolled_before(self, before: datetime, *, after: str | None, limit: int) -> list[str]:
        """Ids of members enrolled before ``before``, in enrolment order, after the id ``after``."""

    def retention_checkpoint(self) -> str | None:
        """The last member id the retention walk indexed (None: none yet)."""

    def save_retention_checkpoint(self, member_id: str) -> None: ...


class PrivacyStep(MovementStep):
    """No movement for an erased member: the erasure marks the balance in its transaction, so a
    movement that read the balance before is refused by the version condition and, reading it
    again, ends here."""

    def decide(self, movement: Movement) -> None:
        if movement.settled.balance.erased_at is not None:
            member_id = movement.request.member_id
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})


def years_before(moment: datetime, years: int) -> datetime:
    """``moment`` ``years`` calendar years earlier (29 February falls on 28 February)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


class PrivacyService:
    def __init__(
        self,
        store: PrivacyStore,
        members: MemberStore,
        ledger: LedgerStore,
        program: ProgramService,
        *,
        consent_history: Callable[[str, int, str | None], Page[ConsentChange]],
        coupons: Callable[[str, int, str | None], Page[Coupon]],
        referral_of: Callable[[str], Referral | None],
        referrals: Callable[[str, int, str | None], Page[Referral]],
        subscriptions: Callable[[str, int, str | None], Page[Subscription]],
        challenges: Callable[[str], Iterable[tuple[Challenge, Progress]]],
        badges: Callable[[str], Iterable[BadgeAward]],
        settle_due: Callable[[str, datetime], object],
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        auditor: Auditor | None = None,
        audit: AuditStore | None = None,
        leave_household: Callable[[str], object] | None = None,
        household_of: Callable[[str], tuple[str, Membership] | None] | None = None,
    ) -> None:
        #: Takes an erased member out of their household (chalicelib.domain.households), idempotently.
        self._leave_household = leave_household
        self._household_of = household_of
        self._auditor = auditor
        self._audit = audit
        self._sleep = sleep
        self._store = store
        self._members = members
        self._ledger = ledger
        self._program = program
        self._consent_history = consent_history
        self._coupons = coupons
        self._referral_of = referral_of
        self._referrals = referrals
        self._subscriptions = subscriptions
        self._challenges = challenges
        self._badges = badges
        self._settle_due = settle_due
        self._clock = clock

    # --- export ------------------------------------------------------------------------------------

    def export(self, member_id: str, *, actor_key_id: str | None = None) -> MemberDataset:
        """Everything held about the member (404 unknown, 410 erased)."""
        member = self._member(member_id)
        if self._auditor is not None and self._audit is not None:
            self._audit.record(self._auditor.entry(AuditAction.MEMBER_EXPORTED, "member", member_id))
        balance = self._ledger.get_balance(member_id, consistent=True)
        if balance is None:
            raise NotFound(f"member {member_id!r} not found")
        return MemberDataset(
            member=member,
            consent_changes=tuple(_all(lambda cursor: self._consent_history(member_id, EXPORT_PAGE, cursor))),
            balance=balance,
            lots=tuple(self._ledger.get_lots(member_id, consistent=True)),
            entries=tuple(sorted(_all(self._entries(member_id)), key=lambda entry: entry.sequence)),
            coupons=tuple(_all(lambda cursor: self._coupons(member_id, EXPORT_PAGE, cursor))),
            referred_by=self._referral_of(member_id),
            referrals=tuple(_all(lambda cursor: self._referrals(member_id, EXPORT_PAGE, cursor))),
            subscriptions=tuple(_all(lambda cursor: self._subscriptions(member_id, EXPORT_PAGE, cursor))),
            notices=tuple(self._store.member_notices(member_id)),
            challenges=tuple(self._challenges(member_id)),
            badges=tuple(self._badges(member_id)),
            exported_at=self._clock(),
            household=self._household_of(member_id) if self._household_of is not None else None,
        )

    def _entries(self, member_id: str) -> Callable[[str | None], Page[LedgerEntry]]:
        return lambda cursor: self._ledger.list_entries(member_id, limit=EXPORT_PAGE, cursor=cursor)

    def _member(self, member_id: str) -> Member:
        member = self._members.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if member is None:
            raise NotFound(f"member {member_id!r} not found")
        if member.erased_at is not None:
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})
        return member

    # --- erasure -----------------------------------------------------------------------------------

    def erase(self, member_id: str, idempotency_key: str, *, actor_key_id: str | None = None) -> Erasure:
        """Erase the member (see the module's docstring). Idempotent: a member already erased
        answers its erasure (``replayed``), whatever the key; a key already used for another
        request is refused (``idempotency_key_reused``)."""
        attempt = 0
        for _ in range(MAX_ERASE_ATTEMPTS):
            member = self._members.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
            if member is None:
                raise NotFound(f"member {member_id!r} not found")
            if member.erased_at is not None:
                self._check_key(member_id, idempotency_key)
                return self._erased(member)
            try:
                erasure = self._attempt(member, idempotency_key, actor_key_id)
            except (BalanceChanged, ErasureRaced, TransientStoreError):
                attempt += 1
                self._sleep(backoff_seconds(attempt, base=0.005, cap=0.2, jitter="full"))
                continue  # something moved since it was read: read again
            except IdempotencyKeyTaken:
                if self._ledger.get_entry(idempotency_key) is None:
                    raise RetryLater("the Idempotency-Key's entry is not readable yet") from None
                self._check_key(member_id, idempotency_key)
                return self._erased(member)
            self.finish(member_id, since=member.created_at)
            return erasure
        raise RetryLater("the member's balance is changing too fast to erase")

    def _check_key(self, member_id: str, idempotency_key: str) -> None:
        """IdempotencyKeyReused when the key applied another request than this erasure."""
        stored = self._ledger.get_entry(idempotency_key)
        if stored is not None and stored.request_fingerprint != erasure_fingerprint(member_id):
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": idempotency_key, "transaction_id": stored.transaction_id},
            )

    def finish(self, member_id: str, *, since: datetime) -> int:
        """Redact what outlives an erasure, and take the member out of their household
        (idempotent; the erasure calls it)."""
        if self._leave_household is not None:
            self._leave_household(member_id)
        self._program.forget()  # the personal keys as the brand marks them now
        program = self._program.get()
        personal = PersonalData(frozenset(program.personal_metadata_keys), program.personal_descriptions)
        return self._store.redact_history(member_id, personal, since=since, until=self._clock())

    def _erased(self, member: Member) -> Erasure:
        """The answer of an erasure already committed (finishing its redaction, if a crash
        interrupted it)."""
        event = self._store.erasure_event(member.member_id)
        if event is None:
            raise RetryLater("the member's erasure is not readable yet")
        self.finish(member.member_id, since=member.created_at)
        return Erasure.of_event(event, replayed=True)

    def _attempt(self, member: Member, idempotency_key: str, actor_key_id: str | None) -> Erasure:
        member_id, now = member.member_id, self._clock()
        previous = self._ledger.get_balance(member_id, consistent=True)
        if previous is None:
            raise NotFound(f"member {member_id!r} not found")
        lots = tuple(self._ledger.get_lots(member_id, consistent=True)) if previous.lot_count else ()
        settled = settle(previous, lots, now, now, max_lots=MAX_LOTS_PER_MOVEMENT)
        if settled.entries:  # what fell due is recorded first, in its own transactions
            self._settle_due(member_id, now)
            raise BalanceChanged(member_id)
        before = settled.balance
        available, pending = max(0, before.available), before.pending
        forfeited = available + pending
        after = replace(
            before,
            available=before.available - available,
            pending=0,
            lifetime_adjusted=before.lifetime_adjusted - forfeited,
            version=before.version + 1,
            updated_at=now,
            lot_count=0,
            next_expiry_at=None,
            next_expiry_points=0,
            next_maturity_at=None,
            inactive_at=None,
            referral_from=None,
            erased_at=now,
        )
        # Lots beyond one transaction's room are deleted by ``finish`` (the balance counts none).
        gone = LotChanges(deleted=settled.lots[:MAX_LOTS_PER_MOVEMENT])
        transaction_id = new_transaction_id(now)
        entry = LedgerEntry(
            transaction_id=transaction_id,
            member_id=member_id,
            movement=MovementType.ADJUST,
            points=-forfeited,
            pending_change=-pending,
            sequence=after.version,
            idempotency_key=idempotency_key,
            request_fingerprint=erasure_fingerprint(member_id),
            occurred_at=now,
            created_at=now,
            balance_after=after,
            reason=ERASURE_REASON,
            actor_key_id=actor_key_id,
        )
        event = Notice(
            notice_id=new_notice_id(now),
            type=EventType.MEMBER_ERASED,
            member_id=member_id,
            subject=ERASURE_SUBJECT,
            created_at=now,
            data={
                "member_id": member_id,
                "erased_at": _iso(now),
                "points_forfeited": available,
                "pending_forfeited": pending,
                "transaction_id": transaction_id,
            },
        )
        write = ErasureWrite(
            member_id=member_id,
            erased_at=now,
            profile_updated_at=member.updated_at,
            external_id=member.external_id,
            referral_code=member.referral_code,
            card_code=member.card_code,
            event=event,
        )
        # The audit entry rides in the erasure's own transaction (no personal data: ids and points).
        audit = (
            (self._auditor.entry(AuditAction.MEMBER_ERASED, "member", member_id, after=event.data, at=now),)
            if self._auditor is not None
            else ()
        )
        self._ledger.commit([entry], previous, after, gone, writes=(write, *audit))
        return Erasure(member_id, now, available, pending, transaction_id)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _all(read: Callable[[str | None], Page[T]]) -> list[T]:
    """Every item of a paged list."""
    items: list[T] = []
    cursor: str | None = None
    while True:
        page = read(cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return items


class RetentionJob:
    """``erase-inactive``: erases the members with no earn or redeem for the program's
    ``erase_inactive_after_years`` (nothing when it is not set)."""

    #: Members indexed per run by the walk of enrolments (the rest on the next runs).
    WALK_LIMIT = 1000

    def __init__(
        self,
        store: PrivacyStore,
        ledger: LedgerStore,
        members: MemberStore,
        privacy: PrivacyService,
        program: ProgramService,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._members = members
        self._privacy = privacy
        self._program = program

    def _last_activity(self, member_id: str) -> tuple[datetime | None, bool]:
        """The member's last earn or redeem (or enrolment), and whether they are erased."""
        member = self._members.get(member_id)
        balance = self._ledger.get_balance(member_id, consistent=True)
        if member is None or balance is None:
            return None, False
        if member.erased_at is not None or balance.erased_at is not None:
            return None, True
        return max(member.created_at, balance.last_activity_at or member.created_at), False

    def run(self, as_of: datetime) -> dict[str, int]:
        counts = {"members_indexed": 0, "members_checked": 0, "members_erased": 0}
        self._program.forget()
        years = self._program.get().erase_inactive_after_years
        if not years:
            return counts
        threshold = years_before(as_of, years)
        # 1. members old enough to be candidates join the index once, at their last activity
        checkpoint = self._store.retention_checkpoint()
        walked = self._store.enrolled_before(threshold, after=checkpoint, limit=self.WALK_LIMIT)
        for member_id in walked:
            last, erased = self._last_activity(member_id)
            if last is not None and not erased:
                self._store.index_activity(member_id, last)
                counts["members_indexed"] += 1
        if walked:
            self._store.save_retention_checkpoint(walked[-1])
        # 2. those whose indexed activity is older than the threshold: erased, or moved on
        for member_id in list(self._store.activity_due(threshold)):
            counts["members_checked"] += 1
            last, erased = self._last_activity(member_id)
            if erased or last is None:
                self._store.unindex_activity(member_id)
            elif last > threshold:
                self._store.index_activity(member_id, last)
            else:
                self._privacy.erase(member_id, f"{RETENTION_KEY_PREFIX}{member_id}")
                self._store.unindex_activity(member_id)
                counts["members_erased"] += 1
        return counts


#: Fields of an event's ``data`` that are personal whatever the brand says (``member.created``
#: carries the external id, ``member.birthday`` the birthday).
PERSONAL_EVENT_FIELDS = ("external_id", "birthday", "email", "name", "card_code", "referral_code")


def redact_event_payload(payload: dict[str, object], personal: PersonalData) -> dict[str, object]:
    """An event as published (``event_payloads.event_payload``) without the erased member's
    personal data: the personal fields emptied, the marked metadata keys and descriptions removed."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return payload
    redacted = dict(data)
    for name in PERSONAL_EVENT_FIELDS:
        if name in redacted:
            redacted[name] = None
    if personal.descriptions and "description" in redacted:
        redacted["description"] = None
    metadata = redacted.get("metadata")
    if isinstance(metadata, dict):
        redacted["metadata"] = {k: v for k, v in metadata.items() if k not in personal.metadata_keys}
    return {**payload, "data": redacted}


#: The metadata of a transfer's entries: the transfer, the other member, and whether it is a reversal.
TRANSFER_ID_KEY = "transfer_id"
TRANSFER_COUNTERPARTS = ("to_member_id", "from_member_id")
TRANSFER_REVERSAL_KEY = "reversal"


def transfer_counterpart(metadata: dict[str, str]) -> tuple[str, str] | None:
    """The other member and the transfer of a transfer's entry (by its metadata), or None for
    another entry or a reversal's (whose description is the platform's, not the members')."""
    transfer_id = metadata.get(TRANSFER_ID_KEY)
    other = next((metadata[name] for name in TRANSFER_COUNTERPARTS if metadata.get(name)), None)
    if not transfer_id or not other or metadata.get(TRANSFER_REVERSAL_KEY) == "true":
        return None
    return other, transfer_id


def redact_transfer_delivery(body: dict[str, object], transfer_ids: frozenset[str]) -> dict[str, object]:
    """A webhook delivery of the other member's side of the erased member's transfers (a
    ``points.transferred`` event whose ``reference`` is one of ``transfer_ids``), without the
    transfer's description; any other delivery unchanged."""
    event = body.get("data")
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(data, dict) or data.get("description") is None:
        return body
    metadata = data.get("metadata")
    if event.get("type") != str(EventType.POINTS_TRANSFERRED) or data.get("reference") not in transfer_ids:
        return body
    if isinstance(metadata, dict) and metadata.get(TRANSFER_REVERSAL_KEY) == "true":
        return body
    return {**body, "data": {**event, "data": {**data, "description": None}}}


def redact_delivery_body(body: dict[str, object], personal: PersonalData) -> dict[str, object]:
    """A webhook delivery's body (``{"type", "timestamp", "data": <the event>}``), its event redacted."""
    event = body.get("data")
    return {**body, "data": redact_event_payload(event, personal)} if isinstance(event, dict) else body
