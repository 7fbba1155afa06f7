"""Tiers: named levels a member reaches by what they earn, spend or order within a window.

A tenant's tier program is versioned: each version applies from ``effective_from`` and none
is ever deleted, so every past change of tier stays explained by the version in force then.

Qualification is tracked on the member's balance item as month buckets (local months of the
tenant's time zone: points earned, amount spent in thousandths of the currency unit, orders).
The buckets move in the earn's own ledger transaction, under the balance's version condition,
so two concurrent earns can never both read the same total: one of them re-reads and sees the
other. A rolling window of N months is the current month and the N-1 before it; a calendar
year is the months of the current year.

The rules, all pure functions below (the earn, the member view and the review job share them):

* **qualify** (every earn): the highest tier whose threshold the window's total reaches. If it
  is above the member's tier, the member is upgraded at once; if it is the member's tier, the
  tier is confirmed. Either way it is then held until the end of the current period plus
  ``grace_periods`` periods (a period is a calendar month for rolling windows, a calendar year
  for calendar-year windows): that moment is its ``expires_at``.
* **review** (the job, or lazily when the member is read or earns after ``expires_at``): at
  ``expires_at`` the member gets the best tier they qualified for in one of the last
  ``grace_periods`` periods (the windows ending at the end of each), held until the end of
  that period plus ``grace_periods``; with none, no tier.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import BusinessRuleViolation, InvalidRequest, RetryLater
from chalicelib.domain.ids import ulid
from chalicelib.domain.plans import effective_tier
from chalicelib.domain.ports import BalanceChanged

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from chalicelib.domain.entries import Balance
    from chalicelib.domain.ports import LedgerStore, TierProgramStore
    from chalicelib.domain.reversals import Removal

TIER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TIERS = 10
MAX_PERKS = 20
#: Month buckets kept on a balance: every window (and its grace) must fit inside.
KEPT_MONTHS = 24
MAX_ROLLING_MONTHS = 24
MAX_MULTIPLIER = Decimal(10)
#: Spend is counted in thousandths of the currency unit (every ISO currency has at most 3 places).
SPEND_SCALE = 1000
_EPSILON = timedelta(microseconds=1)


class UnknownTier(BusinessRuleViolation):
    """A tier named that the tier program in force does not have."""

    code = "unknown_tier"


class Metric(StrEnum):
    POINTS = "points"
    SPEND = "spend"
    ORDERS = "orders"


class WindowKind(StrEnum):
    ROLLING_MONTHS = "rolling_months"
    CALENDAR_YEAR = "calendar_year"


@dataclass(frozen=True)
class Tier:
    name: str
    #: In the metric's unit: points, orders, or an amount of the tenant's currency.
    threshold: Decimal
    multiplier: Decimal = Decimal(1)
    perks: tuple[str, ...] = ()


@dataclass(frozen=True)
class TierProgram:
    """One version of the tenant's tiers (``tiers`` empty: no tiers from ``effective_from``)."""

    version_id: str
    effective_from: datetime
    created_at: datetime
    metric: Metric
    window: WindowKind
    months: int | None
    grace_periods: int
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        if self.window is WindowKind.ROLLING_MONTHS:
            if self.months is None or not 1 <= self.months <= MAX_ROLLING_MONTHS:
                problems.append(("window.months", f"a rolling window needs months between 1 and {MAX_ROLLING_MONTHS}"))
            elif self.months + self.grace_periods - 1 > KEPT_MONTHS:
                problems.append(
                    ("grace_periods", f"months + grace_periods may not exceed {KEPT_MONTHS + 1} (history kept)")
                )
        elif self.months is not None:
            problems.append(("window.months", "only a rolling window takes months"))
        elif self.grace_periods > KEPT_MONTHS // 12:
            problems.append(("grace_periods", f"a calendar-year window takes at most {KEPT_MONTHS // 12} grace years"))
        if self.grace_periods < 0:
            problems.append(("grace_periods", "must be 0 or more"))
        if len(self.tiers) > MAX_TIERS:
            problems.append(("tiers", f"at most {MAX_TIERS} tiers"))
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            problems.append(("tiers", f"tier names must be unique: {sorted({n for n in names if names.count(n) > 1})}"))
        previous = Decimal(0)
        for index, tier in enumerate(self.tiers):
            where = f"tiers.{index}"
            if not TIER_NAME_PATTERN.fullmatch(tier.name):
                problems.append((f"{where}.name", "lowercase letters, digits, '-' and '_', at most 32"))
            if tier.threshold <= previous:
                problems.append(
                    (f"{where}.threshold", "thresholds must be greater than 0 and ascending, lowest tier first")
                )
            if self.metric is not Metric.SPEND and tier.threshold != tier.threshold.to_integral_value():
                problems.append((f"{where}.threshold", f"a {self.metric} threshold is a whole number"))
            exponent = tier.threshold.as_tuple().exponent  # an int for a finite threshold
            if self.metric is Metric.SPEND and isinstance(exponent, int) and -exponent > 3:
                problems.append((f"{where}.threshold", "at most 3 decimal places"))
            if not Decimal(1) <= tier.multiplier <= MAX_MULTIPLIER:
                problems.append((f"{where}.multiplier", f"between 1 and {MAX_MULTIPLIER}"))
            if len(tier.perks) > MAX_PERKS:
                problems.append((f"{where}.perks", f"at most {MAX_PERKS} perks"))
            previous = max(previous, tier.threshold)
        if problems:
            raise InvalidRequest.for_fields("invalid tiers", *((p, m, "value_error") for p, m in problems))

    def tier(self, name: str | None) -> Tier | None:
        return next((tier for tier in self.tiers if tier.name == name), None)

    def rank(self, name: str | None) -> int:
        """0 for no tier, 1 for the lowest tier...; -1 for a name this version does not have."""
        if name is None:
            return 0
        return next((index + 1 for index, tier in enumerate(self.tiers) if tier.name == name), -1)

    def qualified(self, total: Decimal) -> Tier | None:
        reached = [tier for tier in self.tiers if tier.threshold <= total]
        return reached[-1] if reached else None


# --- qualifying totals: month buckets ---------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    points: int = 0
    spend: int = 0  # thousandths of the currency unit
    orders: int = 0

    def value(self, metric: Metric) -> int:
        return {Metric.POINTS: self.points, Metric.SPEND: self.spend, Metric.ORDERS: self.orders}[metric]


#: Local month ("YYYY-MM") -> totals of that month.
Buckets = dict[str, Bucket]


def month_of(at: datetime, timezone: str) -> str:
    return f"{at.astimezone(ZoneInfo(timezone)):%Y-%m}"


def _month_index(month: str) -> int:
    year, number = month.split("-")
    return int(year) * 12 + int(number) - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_to_buckets(
    buckets: Buckets, occurred_at: datetime, now: datetime, timezone: str, *, points: int, spend: int, orders: int
) -> Buckets:
    """The buckets after a movement of ``occurred_at``; months older than KEPT_MONTHS before
    ``now`` are dropped (no window can reach them any more)."""
    month = month_of(occurred_at, timezone)
    oldest = _month_index(month_of(now, timezone)) - KEPT_MONTHS + 1
    current = buckets.get(month, Bucket())
    updated = {**buckets}
    if _month_index(month) >= oldest:
        updated[month] = Bucket(current.points + points, current.spend + spend, current.orders + orders)
    return {m: b for m, b in updated.items() if _month_index(m) >= oldest and b != Bucket()}


def remove_from_buckets(buckets: Buckets, removals: Sequence[Removal], timezone: str) -> Buckets:
    """The buckets after a reversal took back what its earns had counted, each from the month
    that earn was counted in (never below zero: earns older than the buckets, or made before
    tiers were tracked, have nothing to take back)."""
    updated = {**buckets}
    for removal in removals:
        month = month_of(removal.occurred_at, timezone)
        current = updated.get(month)
        if current is None:
            continue
        updated[month] = Bucket(
            max(0, current.points - removal.points),
            max(0, current.spend - removal.spend),
            max(0, current.orders - removal.orders),
        )
    return {m: b for m, b in updated.items() if b != Bucket()}


def window_months(program: TierProgram, at: datetime, timezone: str) -> list[str]:
    """The local months whose totals count at ``at``."""
    current = _month_index(month_of(at, timezone))
    if program.window is WindowKind.ROLLING_MONTHS:
        first = current - (program.months or 1) + 1
    else:
        first = current - current % 12
    return [_month_name(index) for index in range(first, current + 1)]


def qualifying_total(buckets: Buckets, program: TierProgram, at: datetime, timezone: str) -> Decimal:
    raw = sum(buckets[m].value(program.metric) for m in window_months(program, at, timezone) if m in buckets)
    return Decimal(raw) / SPEND_SCALE if program.metric is Metric.SPEND else Decimal(raw)


def period_end(program: TierProgram, at: datetime, timezone: str, *, after: int = 0) -> datetime:
    """The end of the period holding ``at`` (a local month or year), plus ``after`` periods."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    if program.window is WindowKind.ROLLING_MONTHS:
        index = local.year * 12 + local.month - 1 + 1 + after
        start = datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)
    else:
        start = datetime(local.year + 1 + after, 1, 1, tzinfo=zone)
    return start.astimezone(UTC)


def _periods_before(program: TierProgram, moment: datetime, timezone: str, count: int) -> datetime:
    """The period boundary ``count`` periods before the boundary ``moment``."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    if program.window is WindowKind.ROLLING_MONTHS:
        index = local.year * 12 + local.month - 1 - count
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=zone).astimezone(UTC)
    return datetime(local.year - count, 1, 1, tzinfo=zone).astimezone(UTC)


# --- the member's tier ------------------------------------------------------------------------


@dataclass(frozen=True)
class TierState:
    tier: str | None = None
    since: datetime | None = None
    #: When the tier is reviewed (kept, lowered or lost); None without a tier.
    expires_at: datetime | None = None


NO_TIER = TierState()


def qualify(state: TierState, buckets: Buckets, program: TierProgram, at: datetime, timezone: str) -> TierState:
    """After an earn at ``at``: upgrade at once, or confirm (and extend) the current tier."""
    reached = program.qualified(qualifying_total(buckets, program, at, timezone))
    if reached is None:
        return state
    holds_until = period_end(program, at, timezone, after=program.grace_periods)
    current = program.rank(state.tier)
    if program.rank(reached.name) > current:
        return TierState(reached.name, at, holds_until)
    if reached.name == state.tier:
        return replace(state, expires_at=max(state.expires_at or holds_until, holds_until))
    return state


def review(state: TierState, buckets: Buckets, program: TierProgram, at: datetime, timezone: str) -> TierState:
    """The tier at ``at``: every review due by then applied, in order (pure; the job and the
    lazy reads use it alike). A tier this version does not have is re-qualified now."""
    if state.tier is not None and program.rank(state.tier) < 0:
        return qualify(NO_TIER, buckets, program, at, timezone)
    while state.tier is not None and state.expires_at is not None and state.expires_at <= at:
        boundary = state.expires_at
        best: tuple[int, Tier, datetime] | None = None
        for k in range(program.grace_periods):  # the periods whose grace still covers ``boundary``
            period_close = _periods_before(program, boundary, timezone, k)
            reached = program.qualified(qualifying_total(buckets, program, period_close - _EPSILON, timezone))
            if reached is not None and (best is None or program.rank(reached.name) > best[0]):
                until = period_end(program, period_close - _EPSILON, timezone, after=program.grace_periods)
                best = (program.rank(reached.name), reached, until)
        if best is None:
            return NO_TIER
        _, tier, until = best
        state = TierState(tier.name, state.since if tier.name == state.tier else boundary, until)
    return state


@dataclass(frozen=True)
class Progress:
    next_tier: str
    #: Whole points or orders, or an amount of the tenant's currency, still to reach it.
    remaining: Decimal
    metric: Metric


def progress(state: TierState, buckets: Buckets, program: TierProgram, at: datetime, timezone: str) -> Progress | None:
    rank = max(program.rank(state.tier), 0)
    if rank >= len(program.tiers):
        return None
    following = program.tiers[rank]
    remaining = max(Decimal(0), following.threshold - qualifying_total(buckets, program, at, timezone))
    return Progress(following.name, remaining, program.metric)


# --- changes: events, writes ------------------------------------------------------------------


class Direction(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


def direction(program: TierProgram, before: str | None, after: str | None) -> Direction:
    return Direction.UPGRADE if program.rank(after) > program.rank(before) else Direction.DOWNGRADE


@dataclass(frozen=True)
class TierWrite:
    """What a tier change writes besides the balance, in the same transaction: the member's
    entry in the index of due reviews (moved, or removed when ``review_at`` is None) and the
    ``tier.changed`` event (when the tier itself changed)."""

    member_id: str
    review_at: datetime | None
    event: TierEvent | None = None


@dataclass(frozen=True)
class TierEvent:
    event_id: str  # "ntc_<ulid>": an event of the feed, like the notices
    member_id: str
    created_at: datetime
    data: dict[str, str | int | None] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.event_id


def tier_event(
    program: TierProgram,
    member_id: str,
    before: TierState,
    after: TierState,
    *,
    reason: str,
    total: Decimal,
    now: datetime,
) -> TierEvent:
    return TierEvent(
        event_id=f"ntc_{ulid(now)}",
        member_id=member_id,
        created_at=now,
        data={
            "member_id": member_id,
            "from_tier": before.tier,
            "to_tier": after.tier,
            "direction": str(direction(program, before.tier, after.tier)),
            "reason": reason,
            "expires_at": isoformat(after.expires_at) if after.expires_at else None,
            "metric": str(program.metric),
            "qualifying": format(total, "f"),
        },
    )


def encode_buckets(buckets: Buckets) -> str | None:
    if not buckets:
        return None
    return json.dumps({m: [b.points, b.spend, b.orders] for m, b in sorted(buckets.items())}, separators=(",", ":"))


def decode_buckets(raw: str | None) -> Buckets:
    if not raw:
        return {}
    return {m: Bucket(*values) for m, values in json.loads(raw).items()}


# --- the service ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTierProgram:
    metric: Metric
    window: WindowKind
    months: int | None
    grace_periods: int
    tiers: tuple[Tier, ...]
    effective_from: datetime | None = None


@dataclass(frozen=True)
class TierStatus:
    program: TierProgram
    state: TierState
    total: Decimal
    progress: Progress | None

    @property
    def tier(self) -> Tier | None:
        return self.program.tier(self.state.tier)


def new_tier_program_id(at: datetime) -> str:
    return f"tpv_{ulid(at)}"


class TierService:
    def __init__(self, store: TierProgramStore, ledger: LedgerStore, *, timezone: str, clock: Clock = utc_now) -> None:
        self._store = store
        self._ledger = ledger
        self._timezone = timezone
        self._clock = clock

    @property
    def timezone(self) -> str:
        return self._timezone

    def configure(self, new: NewTierProgram) -> TierProgram:
        now = self._clock()
        start = new.effective_from or now
        if start < now - timedelta(seconds=1):
            raise InvalidRequest.for_fields(
                "effective_from may not be in the past: past tier changes stay explained by the version then in force",
                ("effective_from", "must be now or later", "value_error"),
            )
        program = TierProgram(
            version_id=new_tier_program_id(now),
            effective_from=start.astimezone(UTC),
            created_at=now,
            metric=new.metric,
            window=new.window,
            months=new.months,
            grace_periods=new.grace_periods,
            tiers=new.tiers,
        )
        self._store.add(program)
        return program

    def versions(self) -> list[TierProgram]:
        return self._store.list()

    def in_force(self, at: datetime | None = None) -> TierProgram | None:
        """The version in force at ``at`` (now); None when tiers were never configured or the
        version in force has no tiers."""
        program = self._store.in_force(at or self._clock())
        return program if program is not None and program.tiers else None

    def versions_in_force(self, at: datetime) -> TierProgram | None:
        """The version in force at ``at``, even one that has no tiers (it ended them)."""
        return self._store.in_force(at)

    def state_of(self, balance: Balance) -> TierState:
        return TierState(balance.tier, balance.tier_since, balance.tier_expires_at)

    def status(self, balance: Balance, at: datetime | None = None, *, possible: bool = True) -> TierStatus | None:
        """The member's tier as it stands at ``at``: reviews due by then applied (as the job will).
        ``possible=False`` (the tenant never stored a tier version) answers None without a read."""
        program = self.in_force(at) if possible else None
        if program is None:
            return None
        moment = at or self._clock()
        buckets = decode_buckets(balance.tier_buckets)
        state = review(self.state_of(balance), buckets, program, moment, self._timezone)
        total = qualifying_total(buckets, program, moment, self._timezone)
        return TierStatus(program, state, total, progress(state, buckets, program, moment, self._timezone))

    def tier_of(self, member_id: str) -> str | None:
        """The member's tier now (for tier-only rewards): the earned tier, or a paid plan's if higher."""
        balance = self._ledger.get_balance(member_id, consistent=True)
        if balance is None:
            return None
        status = self.status(balance)
        return effective_tier(status.program, status.state.tier, balance.plan, self._clock()) if status else None

    # --- used by the ledger, inside a movement's attempt ------------------------------------

    def before_earn(self, balance: Balance, now: datetime) -> tuple[TierProgram | None, TierState]:
        """The version in force and the member's tier at ``now`` (due reviews applied)."""
        program = self.in_force(now)
        if program is None:
            return None, self.state_of(balance)
        buckets = decode_buckets(balance.tier_buckets)
        return program, review(self.state_of(balance), buckets, program, now, self._timezone)

    def after_movement(
        self,
        program: TierProgram | None,
        reviewed: TierState,
        before: Balance,
        after: Balance,
        *,
        occurred_at: datetime,
        now: datetime,
        points: int,
        spend: int,
        orders: int,
        removals: Sequence[Removal] = (),
    ) -> tuple[Balance, TierWrite | None]:
        """The balance with the movement counted in its buckets and its tier (upgraded or
        confirmed), and what else the transaction must write for the tier. A reversal gives
        ``removals``: what its earns had counted comes out of their own months (a downgrade,
        if any, is the review job's, after the grace)."""
        buckets = add_to_buckets(
            remove_from_buckets(decode_buckets(before.tier_buckets), removals, self._timezone),
            occurred_at,
            now,
            self._timezone,
            points=points,
            spend=spend,
            orders=orders,
        )
        after = replace(after, tier_buckets=encode_buckets(buckets))
        if program is None:
            return after, None
        state = qualify(reviewed, buckets, program, now, self._timezone) if points > 0 or orders else reviewed
        return self._apply(program, before, after, state, buckets, reason="qualified", now=now)

    def imported(
        self, program: TierProgram | None, balance: Balance, tier_name: str, now: datetime
    ) -> tuple[Balance, TierWrite | None]:
        """A migrated member's tier, granted as of ``now`` (a bulk import): held as if reached
        now, until the end of the current period plus the program's grace periods; after that
        the member keeps it only by qualifying. UnknownTier when ``program`` (the version in
        force) has no tier of that name."""
        tier = program.tier(tier_name) if program is not None else None
        if program is None or tier is None:
            names = [t.name for t in program.tiers] if program is not None else []
            raise UnknownTier(
                f"no tier named {tier_name!r} in the tier program in force",
                details={"tier": tier_name, "tiers": names},
            )
        held = TierState(tier.name, now, period_end(program, now, self._timezone, after=program.grace_periods))
        return self._apply(program, balance, balance, held, {}, reason="imported", now=now)

    def _apply(
        self,
        program: TierProgram,
        before: Balance,
        after: Balance,
        state: TierState,
        buckets: Buckets,
        *,
        reason: str,
        now: datetime,
    ) -> tuple[Balance, TierWrite | None]:
        stored = self.state_of(before)
        if state == stored:
            return after, None
        after = replace(
            after,
            tier=state.tier,
            tier_since=state.since,
            tier_expires_at=state.expires_at,
            tier_rev=before.tier_rev + 1,
        )
        event = None
        if state.tier != stored.tier:
            total = qualifying_total(buckets, program, now, self._timezone)
            event = tier_event(program, before.member_id, stored, state, reason=reason, total=total, now=now)
        review_at = state.expires_at if state.tier is not None else None
        return after, TierWrite(before.member_id, review_at, event)

    # --- the review job ---------------------------------------------------------------------

    def review_member(self, member_id: str, as_of: datetime) -> str:
        """Apply the reviews due by ``as_of`` to one member: 'downgraded', 'kept' or 'skipped'."""
        for _ in range(16):
            balance = self._ledger.get_balance(member_id, consistent=True)
            program = self.in_force(as_of)
            if balance is None:
                return "skipped"
            stored = self.state_of(balance)
            if program is None:
                # Tiers switched off: members keep nothing; the review entry goes.
                state = NO_TIER
                buckets: Buckets = {}
            else:
                buckets = decode_buckets(balance.tier_buckets)
                state = review(stored, buckets, program, as_of, self._timezone)
            if state == stored:
                return "skipped"
            write: TierWrite | None
            if program is None:
                after = replace(
                    balance, tier=None, tier_since=None, tier_expires_at=None, tier_rev=balance.tier_rev + 1
                )
                now = self._clock()
                event = TierEvent(
                    event_id=f"ntc_{ulid(now)}",
                    member_id=member_id,
                    created_at=now,
                    data={
                        "member_id": member_id,
                        "from_tier": stored.tier,
                        "to_tier": None,
                        "direction": str(Direction.DOWNGRADE),
                        "reason": "tiers_ended",
                        "expires_at": None,
                        "metric": None,
                        "qualifying": None,
                    },
                )
                write = TierWrite(member_id, None, event)
            else:
                after, write = self._apply(
                    program, balance, balance, state, buckets, reason="review", now=self._clock()
                )
            assert write is not None, "the state changed, so _apply writes it"
            try:
                self._ledger.set_tier(balance, after, write)
            except BalanceChanged:
                continue
            return "downgraded" if state.tier != stored.tier else "kept"
        raise RetryLater(f"member {member_id!r} is changing too fast to review")


class TierReviewJob:
    """Reviews every member whose tier is due for review by ``as_of``, found through the
    sparse index of due reviews (never a scan of members)."""

    def __init__(self, ledger: LedgerStore, tiers: TierService) -> None:
        self._ledger = ledger
        self._tiers = tiers

    def run(self, as_of: datetime) -> dict[str, int]:
        counts = {"members": 0, "downgraded": 0, "kept": 0}
        seen: set[str] = set()
        members: Iterator[str] = self._ledger.due_tier_reviews(as_of)
        for member_id in members:
            if member_id in seen:
                continue
            seen.add(member_id)
            counts["members"] += 1
            outcome = self._tiers.review_member(member_id, as_of)
            if outcome in counts:
                counts[outcome] += 1
        return counts
