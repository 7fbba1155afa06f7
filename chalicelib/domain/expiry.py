"""Expiry: the program's policy, the lots that credits create, and what may be spent when.

Every credit made while the program has an expiry policy becomes a *lot* with its own
expiry. Debits consume the lots that expire first (FIFO by expiry), then the points that
never expire (credited while the policy was "none": the balance minus all lots). A point
whose expiry has passed is never spendable, whether or not the expiry job has run yet;
the job later records an ``expire`` entry for exactly the unspent remainder.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from chalicelib.domain.errors import InsufficientPoints, InvalidRequest


class ExpiryKind(StrEnum):
    NONE = "none"
    #: A fixed number of days or months after the points were earned.
    FIXED_PERIOD = "fixed_period"
    #: The end of a calendar period (year, quarter, month) N periods after earning, in
    #: the tenant's time zone: e.g. 31 December of the year after earning.
    END_OF_PERIOD = "end_of_period"
    #: All of a member's available points lapse ``days`` after their last earn or redeem.
    INACTIVITY = "inactivity"


class Period(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"


_MONTHS_IN = {Period.YEAR: 12, Period.QUARTER: 3, Period.MONTH: 1}


@dataclass(frozen=True)
class ExpiryPolicy:
    kind: ExpiryKind = ExpiryKind.NONE
    days: int | None = None
    months: int | None = None
    period: Period | None = None
    periods_after: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.kind is ExpiryKind.FIXED_PERIOD and (self.days is None) == (self.months is None):
            problems.append(("expiry.days", "a fixed period needs exactly one of days or months"))
        if self.kind is ExpiryKind.INACTIVITY and (self.days is None or self.months is not None):
            problems.append(("expiry.days", "an inactivity policy needs days (and no months)"))
        if self.kind is ExpiryKind.END_OF_PERIOD and self.period is None:
            problems.append(("expiry.period", "end_of_period needs a period: year, quarter or month"))
        if problems:
            raise InvalidRequest.for_fields("invalid expiry policy", *((p, m, "value_error") for p, m in problems))

    def inactive_at(self, last_activity_at: datetime) -> datetime | None:
        """Under an inactivity policy, when the points lapse if the member stays inactive."""
        if self.kind is not ExpiryKind.INACTIVITY or self.days is None:
            return None
        return last_activity_at + timedelta(days=self.days)

    def expires_at(self, earned_at: datetime, timezone: str) -> datetime | None:
        """When points earned at ``earned_at`` stop being spendable (None: never, or not by
        themselves: under an inactivity policy the member's last activity decides)."""
        if self.kind in (ExpiryKind.NONE, ExpiryKind.INACTIVITY):
            return None
        local = earned_at.astimezone(ZoneInfo(timezone))
        if self.kind is ExpiryKind.FIXED_PERIOD:
            if self.days is not None:
                return (local + timedelta(days=self.days)).astimezone(UTC)
            return _add_months(local, self.months or 0).astimezone(UTC)
        assert self.period is not None
        size = _MONTHS_IN[self.period]
        start_month = (local.month - 1) // size * size  # 0-based month where the period starts
        first_of_period = local.replace(month=start_month + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
        # The instant the period N periods after this one ends = the start of the one after it.
        return _add_months(first_of_period, size * (self.periods_after + 1)).astimezone(UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    # Re-attach the zone so the wall-clock time is kept across a daylight-saving change.
    return moment.replace(year=year, month=month, day=day)


NO_EXPIRY = ExpiryPolicy()


@dataclass(frozen=True)
class Lot:
    lot_id: str
    member_id: str
    remaining: int
    original: int
    earned_at: datetime
    expires_at: datetime | None
    #: Pending points (a return window): not spendable before this moment.
    matures_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """Still recorded as pending (its maturity has not been written yet)."""
        return self.matures_at is not None

    def matured(self, at: datetime) -> bool:
        """Pending, but due: its points count as available from ``matures_at`` on."""
        return self.matures_at is not None and self.matures_at <= at

    def expired(self, at: datetime) -> bool:
        """Past its expiry (a lot still pending at ``at`` never is)."""
        if self.matures_at is not None and self.matures_at > at:
            return False
        return self.expires_at is not None and self.expires_at <= at


def _fifo_key(lot: Lot) -> tuple[datetime, datetime, str]:
    never = datetime.max.replace(tzinfo=UTC)
    return (lot.expires_at or never, lot.earned_at, lot.lot_id)


@dataclass(frozen=True)
class LotChanges:
    """Lots to create, to set to a new remainder, and to delete (fully spent or expired)."""

    created: tuple[Lot, ...] = ()
    updated: tuple[Lot, ...] = ()
    deleted: tuple[Lot, ...] = ()

    @property
    def count(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


@dataclass(frozen=True)
class NextExpiry:
    at: datetime | None
    points: int


def draw(lots: Iterable[Lot], points: int, updated: list[Lot], deleted: list[Lot]) -> list[tuple[Lot, int]]:
    """Take up to ``points`` from ``lots`` in their order: a lot emptied goes to ``deleted``, a
    lot left with points to ``updated``. Returns each lot drawn on with the points taken."""
    taken: list[tuple[Lot, int]] = []
    for lot in lots:
        if points == 0:
            break
        part = min(lot.remaining, points)
        points -= part
        if part == lot.remaining:
            deleted.append(lot)
        else:
            updated.append(replace(lot, remaining=lot.remaining - part))
        taken.append((lot, part))
    return taken


@dataclass(frozen=True)
class LotBook:
    """A member's lots and stored balance, and what they allow at a given moment. Pure."""

    available: int
    lots: tuple[Lot, ...] = field(default_factory=tuple)

    @property
    def lotted(self) -> int:
        """Available points held in lots (pending lots are not in ``available``)."""
        return sum(lot.remaining for lot in self.lots if not lot.pending)

    @property
    def never_expiring(self) -> int:
        return self.available - self.lotted

    def expired_unprocessed(self, at: datetime) -> int:
        """Points still in the stored balance whose expiry has passed (the job has not run)."""
        return sum(lot.remaining for lot in self.lots if lot.expired(at))

    def matured_unprocessed(self, at: datetime) -> int:
        """Points still stored as pending whose maturity has passed (the job has not run)."""
        return sum(lot.remaining for lot in self.lots if lot.matured(at))

    def spendable(self, at: datetime) -> int:
        return self.available - self.expired_unprocessed(at)

    def consume(self, points: int, at: datetime) -> LotChanges:
        """Take ``points`` from the lots expiring first, then from the never-expiring rest."""
        spendable = self.spendable(at)
        if points > spendable:
            raise InsufficientPoints(
                f"the member has {spendable} points available; {points} requested",
                details={"available": spendable, "requested": points},
            )
        usable = sorted((lot for lot in self.lots if not lot.pending and not lot.expired(at)), key=_fifo_key)
        updated: list[Lot] = []
        deleted: list[Lot] = []
        draw(usable, points, updated, deleted)
        # Whatever is left comes from never-expiring points; spendable() guaranteed enough.
        return LotChanges(updated=tuple(updated), deleted=tuple(deleted))

    def take_back(self, own: set[str], points: int, at: datetime) -> tuple[LotChanges, int, int]:
        """Take back up to ``points`` earned under the lots ``own``: their pending points first,
        then their available points, then other available points (FIFO by expiry, then the
        never-expiring ones). Returns (changes, from pending, from available lots or points);
        the two may sum to less than ``points`` when the member holds less."""
        need = points
        changed: dict[str, Lot] = {}
        deleted: list[Lot] = []

        def take(lot: Lot) -> int:
            nonlocal need
            amount = min(lot.remaining, need)
            need -= amount
            if amount == lot.remaining:
                deleted.append(lot)
                changed.pop(lot.lot_id, None)
            elif amount:
                changed[lot.lot_id] = replace(lot, remaining=lot.remaining - amount)
            return amount

        from_pending = sum(take(lot) for lot in sorted(self.lots, key=_fifo_key) if lot.lot_id in own and lot.pending)
        available_lots = [lot for lot in self.lots if not lot.pending and not lot.expired(at)]
        own_first = sorted(available_lots, key=lambda lot: (lot.lot_id not in own, *_fifo_key(lot)))
        from_lots = sum(take(lot) for lot in own_first if need)
        from_plain = min(need, max(self.never_expiring, 0))
        need -= from_plain
        changes = LotChanges(updated=tuple(changed.values()), deleted=tuple(deleted))
        return changes, from_pending, from_lots + from_plain

    def after(self, changes: LotChanges) -> tuple[Lot, ...]:
        gone = {lot.lot_id for lot in changes.deleted} | {lot.lot_id for lot in changes.updated}
        return tuple(lot for lot in self.lots if lot.lot_id not in gone) + changes.updated + changes.created

    @staticmethod
    def next_maturity(lots: tuple[Lot, ...]) -> datetime | None:
        dates = [lot.matures_at for lot in lots if lot.matures_at is not None and lot.remaining > 0]
        return min(dates) if dates else None

    @staticmethod
    def next_expiry(lots: tuple[Lot, ...], *, after: datetime | None = None) -> NextExpiry:
        """The earliest expiry among lots with points left (strictly after ``after`` if given)."""
        dates = [
            lot.expires_at
            for lot in lots
            if lot.expires_at is not None and lot.remaining > 0 and (after is None or lot.expires_at > after)
        ]
        if not dates:
            return NextExpiry(at=None, points=0)
        first = min(dates)
        return NextExpiry(at=first, points=sum(lot.remaining for lot in lots if lot.expires_at == first))


def merge(first: LotChanges, then: LotChanges) -> LotChanges:
    """``first`` followed by ``then`` as one set of changes (``then`` wins on the same lot)."""
    deleted = {lot.lot_id: lot for lot in (*first.deleted, *then.deleted)}
    updated = {lot.lot_id: lot for lot in (*first.updated, *then.updated) if lot.lot_id not in deleted}
    created = {lot.lot_id: lot for lot in (*first.created, *then.created) if lot.lot_id not in deleted}
    for lot_id in created:
        updated.pop(lot_id, None)
    return LotChanges(created=tuple(created.values()), updated=tuple(updated.values()), deleted=tuple(deleted.values()))
