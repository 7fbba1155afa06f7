"""Members: the brand's customers enrolled in its program."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from chalicelib.domain import fingerprints
from chalicelib.domain.audit import SYSTEM, Actor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.consents import Consent, new_consent_change
from chalicelib.domain.entries import Balance
from chalicelib.domain.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    LoyaltyError,
    MemberErased,
    NotFound,
    RetryLater,
    TransientStoreError,
    UnknownReferralCode,
)
from chalicelib.domain.ids import MEMBER_ID_PATTERN, new_member_id
from chalicelib.domain.ports import IdempotencyKeyTaken
from chalicelib.domain.referrals import (
    MAX_CODE_ATTEMPTS,
    Referral,
    ReferralCodeTaken,
    ReferralStatus,
    check_not_self_referral,
    new_referral_code,
    normalize_card_code,
    normalize_referral_code,
)
from chalicelib.domain.rules import segment_problems

if TYPE_CHECKING:
    from chalicelib.domain.ports import MemberStore, Page


@dataclass(frozen=True)
class Member:
    member_id: str
    external_id: str | None
    email: str | None
    name: str | None
    birthday: date | None
    marketing_consent: bool
    created_at: datetime
    updated_at: datetime
    #: The member's own code to refer others (None for members enrolled before codes existed).
    referral_code: str | None = None
    #: The brand's physical card number, if it gave one (unique in the tenant).
    card_code: str | None = None
    #: The member whose referral code this member enrolled with.
    referred_by: str | None = None
    #: Segments the brand puts the member in (``vip``, ``staff``): campaigns may target them.
    segments: frozenset[str] = frozenset()
    #: When the member was erased (chalicelib.domain.privacy); the personal fields are then empty.
    erased_at: datetime | None = None
    #: Enrolled by a bulk import (the welcome skips them unless the program says otherwise).
    imported: bool = False


@dataclass(frozen=True)
class NewMember:
    external_id: str | None = None
    email: str | None = None
    name: str | None = None
    birthday: date | None = None
    marketing_consent: bool = False
    card_code: str | None = None
    #: The referrer's referral code.
    referral_code: str | None = None
    segments: frozenset[str] = frozenset()

    def fingerprint(self) -> str:
        """What makes two enrolments 'the same request' for an Idempotency-Key: every field,
        so that a replay can answer the member its first request created."""
        canonical = {
            "external_id": self.external_id,
            "email": self.email,
            "name": self.name,
            "birthday": self.birthday.isoformat() if self.birthday else None,
            "marketing_consent": self.marketing_consent,
            "card_code": self.card_code,
            "referral_code": self.referral_code,
            "segments": sorted(self.segments),
        }
        return fingerprints.fingerprint(canonical)


@dataclass(frozen=True)
class EnrolmentRecord:
    """An enrolment's Idempotency-Key, written in the member's own transaction (only if the
    key is new). With the request (same fingerprint: same content) it rebuilds the first
    answer exactly, so it keeps only what the request does not say: no personal data."""

    idempotency_key: str
    fingerprint: str
    member_id: str
    created_at: datetime
    referral_code: str | None
    referred_by: str | None


@dataclass(frozen=True)
class Enrolment:
    member: Member
    #: The answer of an earlier request with the same Idempotency-Key (nothing was written now).
    replayed: bool = False


@dataclass(frozen=True)
class MemberChanges:
    """Only the fields present in ``fields_set`` change; the others keep their value."""

    fields_set: frozenset[str]
    email: str | None = None
    name: str | None = None
    birthday: date | None = None
    marketing_consent: bool | None = None
    card_code: str | None = None
    #: The member's segments from now on (replaces them; empty: none).
    segments: frozenset[str] | None = None


def _check_segments(segments: frozenset[str] | None) -> None:
    if problems := segment_problems(segments or frozenset()):
        raise InvalidRequest.for_fields("invalid segments", *((p, m, "value_error") for p, m in problems))


def _new_member(
    request: NewMember, *, member_id: str, now: datetime, referral_code: str | None, referred_by: str | None
) -> Member:
    """The member a request enrols (and, from its record, the one a replay answers)."""
    return Member(
        member_id=member_id,
        external_id=request.external_id,
        email=request.email,
        name=request.name,
        birthday=request.birthday,
        marketing_consent=request.marketing_consent,
        created_at=now,
        updated_at=now,
        referral_code=referral_code,
        card_code=normalize_card_code(request.card_code) if request.card_code is not None else None,
        referred_by=referred_by,
        segments=request.segments,
    )


class MemberService:
    def __init__(
        self,
        store: MemberStore,
        clock: Clock = utc_now,
        new_code: Callable[[], str] | None = None,
        *,
        actor: Actor = SYSTEM,
        welcome: Callable[[str], object] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._draw = new_code
        #: The source of the consent changes made through this service.
        self._actor = actor
        #: Called with the member's id once it is enrolled (or its enrolment replayed): the
        #: welcome (chalicelib.domain.welcome), at most once per member, whatever the path.
        self._welcome = welcome

    def _new_code(self) -> str:
        return (self._draw or new_referral_code)()

    def enrol(self, request: NewMember) -> Member:
        """A new member (MemberExists when the external id is taken)."""
        return self._welcomed(self._enrol(request, None))

    def _welcomed(self, member: Member) -> Member:
        if self._welcome is not None:
            self._welcome(member.member_id)
        return member

    def enrol_once(self, request: NewMember, idempotency_key: str | None) -> Enrolment:
        """``enrol``, at most once per Idempotency-Key: a request whose key was used before
        answers the member the first one created (``replayed``), or IdempotencyKeyReused when
        its content differs. The key is written in the member's transaction, so a retry after
        any failure, even one after the commit, finds it. Without a key: ``enrol``."""
        if idempotency_key is None:
            return Enrolment(self._welcomed(self._enrol(request, None)))
        fingerprint = request.fingerprint()
        try:
            enrolment = Enrolment(self._enrol(request, (idempotency_key, fingerprint)))
        except IdempotencyKeyTaken:
            enrolment = self._replay_or_raise(request, idempotency_key, fingerprint, None)
        except LoyaltyError as refusal:  # a refusal may answer the replay of a request that succeeded
            enrolment = self._replay_or_raise(request, idempotency_key, fingerprint, refusal)
        # A replay welcomes again: it completes a welcome the first attempt could not finish.
        self._welcomed(enrolment.member)
        return enrolment

    def _replay_or_raise(
        self, request: NewMember, idempotency_key: str, fingerprint: str, refusal: LoyaltyError | None
    ) -> Enrolment:
        record = self._store.get_enrolment(idempotency_key)
        if record is None:
            if refusal is None:  # the key was taken a moment ago: its transaction is committed
                raise TransientStoreError("the enrolment's Idempotency-Key is not readable yet")
            raise refusal
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                details={"idempotency_key": idempotency_key, "member_id": record.member_id},
            )
        member = _new_member(
            request,
            member_id=record.member_id,
            now=record.created_at,
            referral_code=record.referral_code,
            referred_by=record.referred_by,
        )
        return Enrolment(member, replayed=True)

    def _enrol(self, request: NewMember, keyed: tuple[str, str] | None) -> Member:
        _check_segments(request.segments)
        referrer = self._referrer(request) if request.referral_code is not None else None
        now = self._clock()
        member_id = new_member_id(now)
        opening = Balance.opening(member_id, now)
        referral = None
        if referrer is not None:
            opening = replace(opening, referral_from=referrer.member_id)
            referral = Referral(member_id, referrer.member_id, ReferralStatus.PENDING, created_at=now)
        for _ in range(MAX_CODE_ATTEMPTS):
            member = _new_member(
                request,
                member_id=member_id,
                now=now,
                referral_code=self._new_code(),
                referred_by=referrer.member_id if referrer is not None else None,
            )
            record = (
                EnrolmentRecord(
                    idempotency_key=keyed[0],
                    fingerprint=keyed[1],
                    member_id=member_id,
                    created_at=now,
                    referral_code=member.referral_code,
                    referred_by=member.referred_by,
                )
                if keyed is not None
                else None
            )
            consent = (
                new_consent_change(member_id, Consent.MARKETING, True, None, now, self._actor)
                if member.marketing_consent
                else None
            )
            try:
                # IdempotencyKeyTaken when the enrolment's key is (whatever else is refused),
                # MemberExists (naming the existing id) when the external id is taken,
                # CardCodeTaken when the card code is; nothing is written then.
                self._store.create(member, opening, referral, record=record, consent=consent)
            except ReferralCodeTaken:
                continue  # the code drawn is another member's: draw again
            return member
        raise RetryLater("could not draw a free referral code")

    def _referrer(self, request: NewMember) -> Member:
        """The owner of the referral code the new member enrolled with; the same person is refused."""
        code = normalize_referral_code(request.referral_code or "")
        referrer = self._store.find_by_referral_code(code) if code else None
        if referrer is None:
            raise UnknownReferralCode(
                f"no member has the referral code {request.referral_code!r}",
                details={"referral_code": request.referral_code},
            )
        check_not_self_referral(
            email=request.email,
            external_id=request.external_id,
            referrer_email=referrer.email,
            referrer_external_id=referrer.external_id,
        )
        return referrer

    def assign_referral_code(self, member_id: str) -> Member:
        """The member's referral code, drawn now for a member enrolled before codes existed.
        Idempotent: a member who has one keeps it, and concurrent calls agree on one code."""
        member = self.get(member_id)
        for _ in range(MAX_CODE_ATTEMPTS):
            if member.referral_code is not None:
                return member
            try:
                assigned = self._store.assign_referral_code(member_id, self._new_code(), self._clock())
            except ReferralCodeTaken:
                continue
            if assigned is None:
                raise NotFound(f"member {member_id!r} not found")
            member = assigned
        if member.referral_code is not None:
            return member
        raise RetryLater("could not draw a free referral code")

    def find_by_referral_code(self, code: str) -> Member | None:
        normalized = normalize_referral_code(code)
        return self._store.find_by_referral_code(normalized) if normalized else None

    def find_by_card_code(self, code: str) -> Member | None:
        return self._store.find_by_card_code(normalize_card_code(code))

    def find(
        self, *, external_id: str | None = None, referral_code: str | None = None, card_code: str | None = None
    ) -> Member | None:
        """The member matching every identifier given (a look-up), or None."""
        given = [
            (finder, value)
            for finder, value in (
                (self.find_by_external_id, external_id),
                (self.find_by_referral_code, referral_code),
                (self.find_by_card_code, card_code),
            )
            if value is not None
        ]
        if not given:
            return None
        finder, value = given[0]
        found = finder(value)
        if found is None:
            return None
        matches = (
            (external_id is None or found.external_id == external_id)
            and (referral_code is None or found.referral_code == normalize_referral_code(referral_code))
            and (card_code is None or found.card_code == normalize_card_code(card_code))
        )
        return found if matches else None

    def identify(
        self,
        *,
        member_id: str | None = None,
        external_id: str | None = None,
        referral_code: str | None = None,
        card_code: str | None = None,
    ) -> Member:
        """The member named by one identifier (partners, tills): 404 when none matches."""
        if member_id is not None:
            return self.get(member_id)
        if external_id is not None:
            found, what = self.find_by_external_id(external_id), ("external_id", external_id)
        elif referral_code is not None:
            found, what = self.find_by_referral_code(referral_code), ("referral_code", referral_code)
        elif card_code is not None:
            found, what = self.find_by_card_code(card_code), ("card_code", card_code)
        else:
            raise ValueError("identify needs one identifier")
        if found is None:
            raise NotFound(f"no member has {what[0]} {what[1]!r}")
        return found

    def get(self, member_id: str) -> Member:
        """The member; 404 when unknown, 410 ``member_erased`` when erased."""
        member = self._store.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        if member is None:
            raise NotFound(f"member {member_id!r} not found")
        if member.erased_at is not None:
            raise MemberErased(f"member {member_id!r} was erased", details={"member_id": member_id})
        return member

    def find_by_external_id(self, external_id: str) -> Member | None:
        return self._store.find_by_external_id(external_id)

    def list(self, *, limit: int, cursor: str | None) -> Page[Member]:
        return self._store.list(limit=limit, cursor=cursor)

    def enrolled_between(self, start: datetime, end: datetime) -> Iterator[Member]:
        """Members enrolled in [start, end] (their ids are time-ordered: an index range, not a scan)."""
        return self._store.enrolled_between(start, end)

    def segments_of(self, member_id: str) -> frozenset[str]:
        """The member's segments (none for an unknown member: the caller decides on 404s)."""
        member = self._store.get(member_id) if MEMBER_ID_PATTERN.fullmatch(member_id) else None
        return member.segments if member is not None else frozenset()

    def update(self, member_id: str, changes: MemberChanges) -> Member:
        if "card_code" in changes.fields_set and changes.card_code is not None:
            changes = replace(changes, card_code=normalize_card_code(changes.card_code))
        if "segments" in changes.fields_set:
            _check_segments(changes.segments)
        updated = (
            self._store.update(member_id, changes, self._clock(), self._actor)
            if MEMBER_ID_PATTERN.fullmatch(member_id)
            else None
        )
        if updated is None:
            self.get(member_id)  # 410 when erased
            raise NotFound(f"member {member_id!r} not found")
        return updated
