"""Exports for a brand's analytics: members with their balances, and ledger entries of a period.

Lambda answers one response, so an export is a series of pages, each a cursor away from the
next. Neither reads the table whole:

* members: the members index (one query per page, in member id order, i.e. enrolment
  order), then their balances by key (batched reads of 100);
* ledger entries of [``start``, ``end``): the feed index, whose partitions are UTC days and
  whose sort keys are the entries' ULIDs (time-ordered), so a period is a range of days and,
  on its first and last day, a range of keys. Member profiles and notices share those
  partitions: they are read (and billed) but filtered out. Instants are taken to the
  millisecond (a ULID's precision), and the end is at most 5 s ago, like the feed, so a page
  never passes an entry that is not visible in the index yet.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.entries import Balance, BalanceView
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.events import SETTLE_WINDOW
from chalicelib.domain.ids import ulid, ulid_from_str
from chalicelib.domain.ports import Page
from chalicelib.domain.tiers import decode_buckets, review

if TYPE_CHECKING:
    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.members import Member
    from chalicelib.domain.ports import LedgerStore, MemberStore
    from chalicelib.domain.tiers import TierService

#: Longest period of one ledger export (as many day partitions are walked at most).
MAX_PERIOD_DAYS = 366
#: Entry ids are ULIDs, whose clock starts here: no entry is older.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_FIELD = ("cursor", "not a cursor returned by this endpoint", "cursor_invalid")


@dataclass(frozen=True)
class MemberRow:
    member: Member
    balance: BalanceView
    #: The member's tier now (reviews due applied), or None.
    tier: str | None


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    next_cursor: str | None
    start: datetime
    end: datetime


class ExportStore(Protocol):
    def balances(self, member_ids: list[str]) -> dict[str, Balance]:
        """The members' balances, read by key (eventually consistent)."""

    def ledger_day(self, day: date, *, lower: str, upper: str, after: str | None, limit: int) -> list[LedgerEntry]:
        """Ledger entries of the feed partition of ``day`` whose sort key (the transaction's
        ULID) is in [``lower``, ``upper``) and, if ``after`` is given, above it; at most
        ``limit``, in order."""


def ulid_floor(moment: datetime) -> str:
    """The smallest ULID of ``moment``'s millisecond."""
    return str(ulid(moment))[:10] + "0" * 16


def to_millisecond(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _encode(day: date, after: str) -> str:
    raw = json.dumps({"day": day.isoformat(), "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[date, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        day, after = date.fromisoformat(data["day"]), str(data["after"])
        ulid_from_str(after)
        if set(data) != {"day", "after"}:
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest.for_fields("invalid cursor", _CURSOR_FIELD) from None
    return day, after


class ExportService:
    def __init__(
        self,
        members: MemberStore,
        ledger: LedgerStore,
        store: ExportStore,
        tiers: TierService,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._members = members
        self._ledger = ledger
        self._store = store
        self._tiers = tiers
        self._clock = clock

    def members(self, *, limit: int, cursor: str | None) -> Page[MemberRow]:
        """A page of members (enrolment order) with their balances as they may use them now."""
        page = self._members.list(limit=limit, cursor=cursor)
        balances = self._store.balances([m.member_id for m in page.items]) if page.items else {}
        now = self._clock()
        program = self._tiers.in_force(now)
        rows = []
        for member in page.items:
            stored = balances.get(member.member_id) or Balance.opening(member.member_id, member.created_at)
            lots = self._ledger.get_lots(member.member_id, consistent=False) if stored.needs_lots(now) else None
            tier = None
            if program is not None:
                state = review(
                    self._tiers.state_of(stored),
                    decode_buckets(stored.tier_buckets),
                    program,
                    now,
                    self._tiers.timezone,
                )
                tier = state.tier
            rows.append(MemberRow(member, BalanceView.at(stored, tuple(lots) if lots else None, now), tier))
        return Page(items=rows, next_cursor=page.next_cursor)

    def period(self, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
        """[start, end) to the millisecond; defaults: end now, start the first of end's UTC month."""
        now = self._clock()
        end = to_millisecond(end or now)
        start = to_millisecond(start or end.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        for name, moment in (("to", end), ("from", start)):
            if moment < EARLIEST:
                raise InvalidRequest.for_fields(
                    f"`{name}` is before 1970-01-01T00:00:00Z, where the ledger's ids begin",
                    (name, "on or after 1970-01-01T00:00:00Z", "value_error"),
                )
        if end <= start:
            raise InvalidRequest.for_fields(
                "the period is empty: `to` must be after `from`", ("to", "must be after from", "value_error")
            )
        if end - start > timedelta(days=MAX_PERIOD_DAYS):
            raise InvalidRequest.for_fields(
                f"a ledger export covers at most {MAX_PERIOD_DAYS} days; export longer periods in parts",
                ("to", f"at most {MAX_PERIOD_DAYS} days after from", "value_error"),
            )
        return start, end

    def ledger(self, *, start: datetime | None, end: datetime | None, limit: int, cursor: str | None) -> LedgerPage:
        """A page of the ledger entries recorded in [start, end), in time order."""
        start, end = self.period(start, end)
        visible = min(end, to_millisecond(self._clock() - SETTLE_WINDOW))
        day, after = (start.date(), None) if cursor is None else _decode(cursor)
        if day < start.date():
            raise InvalidRequest.for_fields("invalid cursor", _CURSOR_FIELD)
        entries: list[LedgerEntry] = []
        upper_bound = ulid_floor(visible)
        lower_bound = ulid_floor(start)
        while day <= visible.date() and visible > start and len(entries) <= limit:
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lower = max(lower_bound, ulid_floor(day_start))
            upper = min(upper_bound, ulid_floor(day_start + timedelta(days=1)))
            entries += self._store.ledger_day(
                day, lower=lower, upper=upper, after=after, limit=limit + 1 - len(entries)
            )
            if len(entries) > limit:
                break
            day, after = day + timedelta(days=1), None
        next_cursor = None
        if len(entries) > limit:
            last = entries[limit - 1]
            next_cursor = _encode(last.created_at.astimezone(UTC).date(), last.transaction_id.removeprefix("txn_"))
        return LedgerPage(entries[:limit], next_cursor, start, end)
