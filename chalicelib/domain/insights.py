"""Program insights: the figures a brand runs its program by, kept in proportion to the changes.

The *fold* (job ``fold-insights``) reads the tenant's event feed from its own checkpoint and
adds each event to a few aggregate rows of the tenant's table:

* one row per local day (the tenant's time zone, the day the change was recorded): counters
  that sum over any period (points issued, orders, enrolments...), and the two histograms of
  members by their last active day and last redeeming day (``last_active``, ``last_redeem``:
  a member counts on exactly one day of each, so the members active in the last N days are a
  sum over N rows);
* one row per enrolment month (cohorts): its size and its members active in each month;
* one ``now`` row: running totals, and the sum over members of their balance as the fold last
  read it (available and pending points by expiry and maturity month, tier, paid plan);
* one mark per member: what the fold remembers of them (last active day, week and month, the
  snapshot added to ``now``), so a member's next event moves the totals by the difference.

A batch of events, every row it moves and the checkpoint's advance commit in one transaction
conditioned on the checkpoint still being where the batch started: a rerun or an overlapping
run either commits nothing or starts after it, so no event is counted twice. Cost follows the
events: a batch reads its members' marks and (for members whose points moved) their balance
and lots, never a scan.

Reads (``InsightsService``) are a query of the day rows of a period plus the ``now`` row.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from ulid import ULID

from chalicelib.domain.caps import limits_for
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.earning import with_caps
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.events import EventType, cursor_after
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.plans import PlanGrant, recorded_tier
from chalicelib.domain.program import minor_units
from chalicelib.domain.rules import ORDER_KINDS, evaluate
from chalicelib.domain.tiers import Metric, Tier, decode_buckets, qualifying_total, window_months

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from chalicelib.domain.bus import Checkpoint
    from chalicelib.domain.caps import Capped
    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.events import Event
    from chalicelib.domain.plans import PlanCatalog
    from chalicelib.domain.program import Program
    from chalicelib.domain.rules import Earning, EarningRule, Share
    from chalicelib.domain.tiers import TierProgram
    from chalicelib.domain.webhooks import Feed

#: The checkpoint's name (its partition key in the tenant's table).
CHECKPOINT = "INSIGHTS"
#: Items of one transaction, at most (DynamoDB's limit is 100; the checkpoint and ``now`` too).
MAX_ROWS_PER_COMMIT = 90
#: The most rows one event may move (its day, the member's previous last active and redeeming
#: days, the day its points expire, its cohort, the member's mark).
ROWS_PER_EVENT = 6
#: The longest look-back of a what-if, in days.
MAX_WHAT_IF_DAYS = 90
#: Decimal places of a rate.
RATE_PLACES = Decimal("0.000001")

#: Row kinds.
DAY, COHORT, NOW = "day", "cohort", "now"

Number = int | Decimal
Row = tuple[str, str]


# --- what the fold remembers ------------------------------------------------------------------


@dataclass(frozen=True)
class MemberState:
    """A member's points and status as their balance and lots hold them now."""

    available: int = 0
    pending: int = 0
    #: Available points in lots with an expiry, by local month of expiry (``YYYY-MM``).
    expiring: dict[str, int] = field(default_factory=dict)
    #: Pending points by local month of maturity.
    maturing: dict[str, int] = field(default_factory=dict)
    tier: str | None = None
    plan: bool = False


@dataclass
class MemberMark:
    """The fold's memory of one member."""

    member_id: str
    enrolled: str | None = None
    last_day: str | None = None
    last_week: str | None = None
    last_month: str | None = None
    last_redeem: str | None = None
    state: MemberState = field(default_factory=MemberState)
    #: Orders the member earned on (an order after the first is a repeat purchase).
    orders: int = 0

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "e": self.enrolled,
            "d": self.last_day,
            "w": self.last_week,
            "m": self.last_month,
            "r": self.last_redeem,
            "s": [s.available, s.pending, s.expiring, s.maturing, s.tier, s.plan],
            "o": self.orders,
        }

    @classmethod
    def from_dict(cls, member_id: str, data: dict[str, Any]) -> MemberMark:
        available, pending, expiring, maturing, tier, plan = data["s"]
        return cls(
            member_id,
            data.get("e"),
            data.get("d"),
            data.get("w"),
            data.get("m"),
            data.get("r"),
            MemberState(int(available), int(pending), dict(expiring), dict(maturing), tier, bool(plan)),
            int(data.get("o", 0)),
        )


@dataclass
class Batch:
    """What one commit adds: counters by row, the members' marks, the freshest event."""

    counts: dict[Row, dict[str, Number]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    marks: dict[str, MemberMark] = field(default_factory=dict)
    events: int = 0
    as_of: datetime | None = None

    def add(self, row: Row, name: str, by: Number) -> None:
        if by:
            self.counts[row][name] += by

    @property
    def size(self) -> int:
        return len(self.counts) + len(self.marks)


class InsightStore(Protocol):
    def marks(self, member_ids: list[str]) -> dict[str, MemberMark]: ...
    def member_states(
        self, member_ids: list[str], timezone: str, tiers: Callable[[], TierProgram | None], at: datetime
    ) -> dict[str, MemberState]:
        """Each member's state now (a member without a balance, or erased: the empty state); the
        tier is the one the member holds as the tier events tell it (a paid plan's when higher,
        ranked by ``tiers()``, the tier program in force, read only when a plan grants a tier)."""

    def commit(self, batch: Batch, *, owner: str, previous: str | None, cursor: str, now: datetime) -> bool:
        """Add the batch and move the checkpoint from ``previous`` to ``cursor``, in one
        transaction; False when the checkpoint moved or the lease was lost (nothing written)."""

    def days(self, first: date, last: date) -> dict[str, dict[str, Number]]: ...
    def now(self) -> dict[str, Number | str]: ...
    def cohorts(self, first: str, last: str) -> dict[str, dict[str, Number]]: ...
    def earns(self, start: datetime, end: datetime) -> Iterator[LedgerEntry]:
        """The order earns recorded from ``start`` to ``end``, and every other entry that moved
        an earning cap's counter then, in the order they were committed (read from the feed's
        days)."""

    def counters(self, names: list[str]) -> dict[str, int]:
        """The limit counters' values now (strongly read; absent: 0)."""

    def balances(self, member_ids: list[str]) -> dict[str, Balance]:
        """The members' stored balances (absent: no balance)."""


# --- the fold ---------------------------------------------------------------------------------


def _month(day: str) -> str:
    return day[:7]


def _week(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


class Folder:
    """Adds events to a batch (pure but for the marks it is handed)."""

    def __init__(self, timezone: str) -> None:
        self._zone = ZoneInfo(timezone)

    def local_day(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).date().isoformat()

    def fold(self, event: Event, mark: MemberMark, batch: Batch) -> None:
        day = self.local_day(event.created_at)
        row = (DAY, day)
        batch.events += 1
        batch.add((NOW, ""), "events", 1)
        if batch.as_of is None or event.created_at > batch.as_of:
            batch.as_of = event.created_at
        if event.type is EventType.MEMBER_CREATED:
            batch.add(row, "enrolled", 1)
            batch.add((NOW, ""), "members", 1)
            batch.add((COHORT, _month(day)), "size", 1)
            mark.enrolled = mark.enrolled or day
            if event.member is not None and event.member.referred_by:
                batch.add(row, "codes_used", 1)
        elif event.entry is not None:
            self._entry(event, day, mark, batch)
        elif event.notice is not None:
            data = event.notice.data
            if event.type is EventType.TIER_CHANGED:
                batch.add(row, "upgrades" if data.get("direction") == "upgrade" else "downgrades", 1)
            elif event.type is EventType.REFERRAL_COMPLETED and data.get("status") == "completed":
                batch.add(row, "referrals_completed", 1)
            elif event.type is EventType.SUBSCRIPTION_STARTED:
                batch.add(row, "plans_started", 1)
            elif event.type in (EventType.SUBSCRIPTION_LAPSED, EventType.SUBSCRIPTION_CANCELLED):
                batch.add(row, "plans_lapsed", 1)
            elif event.type is EventType.COUPON_USED:
                batch.add(row, "coupons_used", 1)
        batch.marks[mark.member_id] = mark

    def _entry(self, event: Event, day: str, mark: MemberMark, batch: Batch) -> None:
        entry = event.entry
        assert entry is not None
        row = (DAY, day)
        available_change = entry.points - entry.pending_change
        for target in (row, (NOW, "")):
            batch.add(target, "ledger_available", available_change)
            batch.add(target, "ledger_pending", entry.pending_change)
        movement = entry.movement
        if movement is MovementType.EARN:
            batch.add(row, "issued", entry.points)
            if entry.expires_at is not None:
                batch.add((DAY, self.local_day(entry.expires_at)), "issued_expiring", entry.points)
            if entry.is_order_earn:
                revenue = Decimal(entry.amount or "0")
                for target in (row, (NOW, "")):
                    batch.add(target, "orders", 1)
                    batch.add(target, "revenue", revenue)
                if mark.orders:
                    batch.add(row, "repeat_orders", 1)
                mark.orders += 1
            activity = entry.metadata.get("activity")
            if activity:
                batch.add(row, f"activity#{activity}", 1)
        elif movement is MovementType.REDEEM:
            batch.add(row, "redeemed", -entry.points)
            reward = entry.metadata.get("reward_id")
            if reward:
                batch.add(row, f"reward#{reward}", 1)
                batch.add(row, "coupons_issued", 1)
            if mark.last_redeem is None or mark.last_redeem < day:
                batch.add(row, "last_redeem", 1)
                if mark.last_redeem is not None:
                    batch.add((DAY, mark.last_redeem), "last_redeem", -1)
                mark.last_redeem = day
        elif movement is MovementType.EXPIRE:
            batch.add(row, "expired", -entry.points)
        elif movement is MovementType.REVERSE:
            batch.add(row, "reversed", -entry.points)
        elif movement is MovementType.ADJUST:
            batch.add(row, "adjusted", entry.points)
            if entry.metadata.get("reward_id") and entry.points > 0:
                batch.add(row, "coupons_cancelled", 1)
        if movement in (MovementType.EARN, MovementType.REDEEM):
            self._active(day, mark, batch)

    @staticmethod
    def _active(day: str, mark: MemberMark, batch: Batch) -> None:
        row = (DAY, day)
        if mark.last_day is not None and mark.last_day >= day:
            return
        batch.add(row, "active", 1)
        batch.add(row, "last_active", 1)
        if mark.last_day is not None:
            batch.add((DAY, mark.last_day), "last_active", -1)
        mark.last_day = day
        if mark.last_week != _week(day):
            batch.add(row, "active_week", 1)
            mark.last_week = _week(day)
        if mark.last_month != _month(day):
            batch.add(row, "active_month", 1)
            mark.last_month = _month(day)
            batch.add((COHORT, _month(mark.enrolled or day)), f"active#{_month(day)}", 1)

    @staticmethod
    def restate(mark: MemberMark, state: MemberState, batch: Batch) -> None:
        """Move ``now`` by the difference between the member's state and the one last added."""
        old, now = mark.state, (NOW, "")
        batch.add(now, "available", state.available - old.available)
        batch.add(now, "pending", state.pending - old.pending)
        for month in set(old.expiring) | set(state.expiring):
            batch.add(now, f"expiring#{month}", state.expiring.get(month, 0) - old.expiring.get(month, 0))
        for month in set(old.maturing) | set(state.maturing):
            batch.add(now, f"maturing#{month}", state.maturing.get(month, 0) - old.maturing.get(month, 0))
        if old.tier != state.tier:
            if old.tier is not None:
                batch.add(now, f"tier#{old.tier}", -1)
            if state.tier is not None:
                batch.add(now, f"tier#{state.tier}", 1)
        batch.add(now, "plans", int(state.plan) - int(old.plan))
        mark.state = state
        batch.marks[mark.member_id] = mark


class InsightsFold:
    """The ``fold-insights`` job for one tenant: the feed since the checkpoint, folded, for at
    most ``budget`` (the jobs' Lambda times out at 29 s; the next run goes on from the checkpoint)."""

    def __init__(
        self,
        store: InsightStore,
        checkpoint: Checkpoint,
        *,
        open_feed: Callable[[datetime], Feed],
        start: datetime,
        timezone: str,
        clock: Clock = utc_now,
        tiers: Callable[[datetime], TierProgram | None] | None = None,
        pages: int = 200,
        budget: timedelta = timedelta(seconds=20),
        lease: timedelta = timedelta(seconds=90),
    ) -> None:
        self._store = store
        #: The tier program in force at a moment (ranks a paid plan's tier against the earned one).
        self._tiers = tiers
        self._checkpoint = checkpoint
        self._open_feed = open_feed
        self._start = start
        self._timezone = timezone
        self._folder = Folder(timezone)
        self._clock = clock
        self._pages = pages
        self._budget = budget.total_seconds()
        self._lease = lease

    def run(self, as_of: datetime | None = None) -> dict[str, int]:
        counts = {"events": 0, "commits": 0, "skipped": 0}
        now = self._clock()
        owner = str(ULID())
        taken, cursor, _since = self._checkpoint.claim(owner=owner, now=now, until=now + self._lease)
        if not taken:
            counts["skipped"] = 1
            return counts
        deadline = time.monotonic() + self._budget
        try:
            feed = self._open_feed(self._start)
            for _ in range(self._pages):
                if time.monotonic() > deadline:
                    break  # the next run goes on from the checkpoint (a Lambda must end well in time)
                page = feed.read(after=cursor, types=frozenset(), limit=100)
                if not page.events:
                    if page.next_cursor != cursor and not self._commit(Batch(), owner, cursor, page.next_cursor):
                        break
                    if page.next_cursor == cursor:
                        break
                    cursor = page.next_cursor
                    counts["commits"] += 1
                    continue
                moved = self._fold_page(page.events, page.next_cursor, owner, cursor, counts)
                if moved is None:
                    break
                cursor = moved
        finally:
            self._checkpoint.release(owner=owner)
        return counts

    def _fold_page(
        self, events: list[Event], end: str, owner: str, cursor: str | None, counts: dict[str, int]
    ) -> str | None:
        marks = self._store.marks(sorted({event.member_id for event in events}))
        batch, touched = Batch(), set[str]()
        for index, event in enumerate(events):
            mark = marks.get(event.member_id) or MemberMark(event.member_id)
            marks[event.member_id] = mark
            self._folder.fold(event, mark, batch)
            if event.type is not EventType.MEMBER_CREATED:
                touched.add(event.member_id)
            last = index == len(events) - 1
            if last or batch.size + len(touched) + 2 + ROWS_PER_EVENT > MAX_ROWS_PER_COMMIT:
                now = self._clock()
                states = self._store.member_states(sorted(touched), self._timezone, self._tier_program(now), now)
                for member_id in sorted(touched):
                    self._folder.restate(marks[member_id], states[member_id], batch)
                target = end if last else cursor_after(event)
                if not self._commit(batch, owner, cursor, target):
                    return None
                counts["events"] += batch.events
                counts["commits"] += 1
                cursor = target
                batch, touched = Batch(), set()
        return cursor

    def _tier_program(self, now: datetime) -> Callable[[], TierProgram | None]:
        read: list[TierProgram | None] = []

        def program() -> TierProgram | None:
            if not read:
                read.append(self._tiers(now) if self._tiers is not None else None)
            return read[0]

        return program

    def _commit(self, batch: Batch, owner: str, previous: str | None, cursor: str) -> bool:
        return self._store.commit(batch, owner=owner, previous=previous, cursor=cursor, now=self._clock())


# --- the figures ------------------------------------------------------------------------------


def rate(numerator: Number, denominator: Number) -> str | None:
    """A ratio as a decimal string of 6 places; None when the denominator is 0."""
    if not denominator:
        return None
    return format((Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, ROUND_HALF_EVEN), "f")


def money(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN), "f")


def parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest.for_fields(
            f"{name} must be a day YYYY-MM-DD", (name, "not a day", "date_parsing")
        ) from None


def parse_month(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(f"{value}-01").isoformat()[:7] if len(value) == 7 else _bad_month(name)
    except ValueError:
        return _bad_month(name)


def _bad_month(name: str) -> str:
    raise InvalidRequest.for_fields(f"{name} must be a month YYYY-MM", (name, "not a month", "date_parsing"))


def _total(days: dict[str, dict[str, Number]], first: date, last: date, name: str) -> Number:
    low, high = first.isoformat(), last.isoformat()
    return sum((row.get(name, 0) for day, row in days.items() if low <= day <= high), start=0)


def _names(rows: list[dict[str, Number]], prefix: str) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for row in rows:
        for name, value in row.items():
            if name.startswith(prefix):
                found[name.removeprefix(prefix)] += int(value)
    return {key: value for key, value in sorted(found.items()) if value}


@dataclass(frozen=True)
class Money:
    point_value: Decimal
    currency: str
    places: int

    def of(self, points: Number) -> str:
        return money(Decimal(points) * self.point_value, self.places)


METRICS = (
    "enrolments",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "points_reversed",
    "points_adjusted",
    "liability",
    "orders",
    "revenue",
    "active_members",
)
_DAY_FIELD = {
    "enrolments": "enrolled",
    "points_issued": "issued",
    "points_redeemed": "redeemed",
    "points_expired": "expired",
    "points_reversed": "reversed",
    "points_adjusted": "adjusted",
    "orders": "orders",
    "revenue": "revenue",
}
INTERVALS = ("day", "week", "month")


def period_of(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _period_end(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=6)
    if interval == "month":
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)
    return start


class InsightsService:
    """The figures, read from the aggregate rows (a query of days and the ``now`` row)."""

    def __init__(
        self,
        store: InsightStore,
        *,
        timezone: str,
        point_value: Callable[[], Decimal],
        reward_names: Callable[[list[str]], dict[str, str]],
        program: Callable[[], Program] | None = None,
        rules: Callable[[], list[EarningRule]] | None = None,
        tiers: Callable[[], list[TierProgram]] | None = None,
        plans: Callable[[], PlanCatalog] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._zone = ZoneInfo(timezone)
        self._point_value = point_value
        self._reward_names = reward_names
        self._program = program
        self._rules = rules
        #: Every version of the tier program, and the paid plans' catalog (the what-if's).
        self._tiers = tiers
        self._plans = plans
        self._clock = clock

    def today(self) -> date:
        return self._clock().astimezone(self._zone).date()

    def _period(self, first: date | None, last: date | None, *, default_days: int = 30) -> tuple[date, date]:
        last = last or self.today()
        first = first or last - timedelta(days=default_days - 1)
        if first > last:
            raise InvalidRequest.for_fields("from must not be after to", ("from", "after to", "value_error"))
        if (last - first).days > 3660:
            raise InvalidRequest.for_fields("a period spans at most 10 years", ("from", "too early", "value_error"))
        return first, last

    @staticmethod
    def _as_of(now: dict[str, Number | str]) -> str | None:
        value = now.get("as_of")
        return str(value) if value else None

    def _money(self, currency: str) -> Money:
        return Money(self._point_value(), currency, minor_units(currency))

    def summary(self, first: date | None, last: date | None, *, currency: str) -> dict[str, Any]:
        first, last = self._period(first, last)
        today = self.today()
        low = min(first, today - timedelta(days=89))
        days = self._store.days(low, max(last, today))
        now = self._store.now()
        worth = self._money(currency)

        def total(name: str, a: date = first, b: date = last) -> Number:
            return _total(days, a, b, name)

        in_period = [row for day, row in days.items() if first.isoformat() <= day <= last.isoformat()]
        issued, redeemed, expired = total("issued"), total("redeemed"), total("expired")
        members = int(now.get("members", 0) or 0)
        active_30 = int(total("last_active", today - timedelta(days=29), today))
        active_90 = int(total("last_active", today - timedelta(days=89), today))
        redeemers_90 = int(total("last_redeem", today - timedelta(days=89), today))
        orders, revenue = int(total("orders")), Decimal(total("revenue"))
        available, pending = int(now.get("available", 0) or 0), int(now.get("pending", 0) or 0)
        lifetime_revenue = Decimal(now.get("revenue", 0) or 0)
        rewards = _names(in_period, "reward#")
        names = self._reward_names(list(rewards)) if rewards else {}
        issued_matured = total("issued_expiring")
        codes_used, completed = total("codes_used"), total("referrals_completed")
        return {
            "as_of": self._as_of(now),
            "from": first.isoformat(),
            "to": last.isoformat(),
            "point_value": format(worth.point_value.normalize(), "f") if worth.point_value else "0",
            "currency": worth.currency,
            "members": {
                "total": members,
                "enrolled": int(total("enrolled")),
                "active_30d": active_30,
                "active_90d": active_90,
            },
            "points": {
                "issued": int(issued),
                "redeemed": int(redeemed),
                "expired": int(expired),
                "reversed": int(total("reversed")),
                "adjusted": int(total("adjusted")),
            },
            "redemption": {"rate": rate(redeemed, issued), "active_redeemer_share": rate(redeemers_90, active_90)},
            "breakage": {
                "rate": rate(expired, issued_matured),
                "expired": int(expired),
                "issued_matured": int(issued_matured),
            },
            "liability": {
                "available": {"points": available, "value": worth.of(available)},
                "pending": {"points": pending, "value": worth.of(pending)},
            },
            "orders": {
                "count": orders,
                "revenue": money(revenue, worth.places),
                "aov": money(revenue / orders, worth.places) if orders else None,
                "per_member": rate(orders, members),
                "repeat_rate": rate(total("repeat_orders"), orders),
            },
            "clv": money(lifetime_revenue / members, worth.places) if members else None,
            "tiers": {
                "mix": _names([{k: v for k, v in now.items() if not isinstance(v, str)}], "tier#"),
                "upgrades": int(total("upgrades")),
                "downgrades": int(total("downgrades")),
            },
            "rewards": {
                "redemptions": [
                    {"reward_id": reward_id, "name": names.get(reward_id), "count": count}
                    for reward_id, count in sorted(rewards.items(), key=lambda item: (-item[1], item[0]))
                ],
                "coupons": {
                    "issued": int(total("coupons_issued")),
                    "cancelled": int(total("coupons_cancelled")),
                    "used": int(total("coupons_used")),
                },
            },
            "referrals": {
                "codes_used": int(codes_used),
                "completed": int(completed),
                "conversion": rate(completed, codes_used),
            },
            "plans": {
                "active": int(now.get("plans", 0) or 0),
                "started": int(total("plans_started")),
                "lapsed": int(total("plans_lapsed")),
            },
            "activities": _names(in_period, "activity#"),
        }

    def timeseries(
        self, metric: str, interval: str, first: date | None, last: date | None, *, currency: str
    ) -> dict[str, Any]:
        if metric not in METRICS:
            raise InvalidRequest.for_fields(
                f"unknown metric {metric!r}", ("metric", f"one of {', '.join(METRICS)}", "enum")
            )
        if interval not in INTERVALS:
            raise InvalidRequest.for_fields(
                f"unknown interval {interval!r}", ("interval", "one of day, week, month", "enum")
            )
        first, last = self._period(first, last, default_days=30 if interval == "day" else 365)
        start = period_of(first, interval)
        today = self.today()
        days = self._store.days(start, max(last, today) if metric == "liability" else last)
        now = self._store.now()
        worth = self._money(currency)
        points: list[dict[str, Any]] = []
        period = start
        while period <= last:
            end = _period_end(period, interval)
            if metric == "liability":
                later = _total(days, end + timedelta(days=1), max(last, today), "ledger_available") + _total(
                    days, end + timedelta(days=1), max(last, today), "ledger_pending"
                )
                current = Decimal(now.get("ledger_available", 0) or 0) + Decimal(now.get("ledger_pending", 0) or 0)
                value: Any = int(current - later)
            elif metric == "active_members":
                name = {"day": "active", "week": "active_week", "month": "active_month"}[interval]
                value = int(_total(days, period, end, name))
            elif metric == "revenue":
                value = money(Decimal(_total(days, period, end, "revenue")), worth.places)
            else:
                value = int(_total(days, period, end, _DAY_FIELD[metric]))
            points.append({"period": period.isoformat(), "value": value})
            period = end + timedelta(days=1)
        return {"as_of": self._as_of(now), "metric": metric, "interval": interval, "points": points}

    def liability(self, as_of: date | None, *, currency: str) -> dict[str, Any]:
        now = self._store.now()
        worth = self._money(currency)
        available, pending = int(now.get("available", 0) or 0), int(now.get("pending", 0) or 0)
        expiring = {k: int(v) for k, v in _names([_numbers(now)], "expiring#").items()}
        maturing = {k: int(v) for k, v in _names([_numbers(now)], "maturing#").items()}
        if as_of is not None:  # what is still outstanding after that day: expiries from its month on
            month = as_of.isoformat()[:7]
            expiring = {k: v for k, v in expiring.items() if k >= month}
        without = available - sum(_names([_numbers(now)], "expiring#").values())

        def figure(points: int) -> dict[str, Any]:
            return {"points": points, "value": worth.of(points)}

        return {
            "as_of": self._as_of(now),
            "point_value": format(worth.point_value.normalize(), "f") if worth.point_value else "0",
            "currency": worth.currency,
            "available": {
                **figure(available),
                "by_expiry_month": [{"month": m, **figure(p)} for m, p in sorted(expiring.items())],
                "without_expiry": figure(without),
            },
            "pending": {
                **figure(pending),
                "by_maturity_month": [{"month": m, **figure(p)} for m, p in sorted(maturing.items())],
            },
        }

    def cohorts(self, first: str | None, last: str | None) -> dict[str, Any]:
        last = last or self.today().isoformat()[:7]
        first = first or (date.fromisoformat(f"{last}-01") - timedelta(days=334)).isoformat()[:7]
        if first > last:
            raise InvalidRequest.for_fields("from must not be after to", ("from", "after to", "value_error"))
        rows = self._store.cohorts(first, last)
        now = self._store.now()
        current = self.today().isoformat()[:7]
        cohorts = []
        for month, row in sorted(rows.items()):
            size = int(row.get("size", 0) or 0)
            active = []
            later = month
            while later <= current:
                members = int(row.get(f"active#{later}", 0) or 0)
                active.append({"month": later, "members": members, "share": rate(members, size)})
                later = (date.fromisoformat(f"{later}-28") + timedelta(days=4)).isoformat()[:7]
            cohorts.append({"month": month, "size": size, "active": active})
        return {"as_of": self._as_of(now), "cohorts": cohorts}

    def what_if(self, draft: Program, days: int) -> dict[str, Any]:
        """The orders earned on in the last ``days`` days, earned again under the program in
        force and under ``draft`` as each order's earn did (see ``OrderEarn``: the member's
        tier, segments and paid plan as its entry recorded them, milestones, challenge rewards,
        and the earning caps replayed in commit order from their counters), and what the
        difference would do to the liability (were the extra points still outstanding) and
        to the tier mix (``draft_tier``)."""
        if not 1 <= days <= MAX_WHAT_IF_DAYS:
            raise InvalidRequest.for_fields(
                f"days must be from 1 to {MAX_WHAT_IF_DAYS}", ("days", f"1 to {MAX_WHAT_IF_DAYS}", "value_error")
            )
        assert self._program is not None and self._rules is not None
        current, rules = self._program(), self._rules()
        versions = self._tiers() if self._tiers is not None else []
        catalog = self._plans() if self._plans is not None else None
        end = self._clock()
        zone = str(self._zone)
        entries = list(self._store.earns(end - timedelta(days=days), end))
        earns = {
            entry.transaction_id: OrderEarn.of(
                entry, rules, tier_version(versions, entry.created_at), catalog, current, zone
            )
            for entry in entries
            if entry.order is not None and entry.is_order_earn
        }
        used = self._counters_before(entries, earns.values(), zone)
        current_points = replay(entries, earns, current, zone, used)
        draft_points = replay(entries, earns, draft, zone, used)
        issued_current, issued_draft = sum(current_points.values()), sum(draft_points.values())
        now = self._store.now()
        liability = int(now.get("available", 0) or 0) + int(now.get("pending", 0) or 0)
        mix = _names([_numbers(now)], "tier#")
        changes: dict[str, int] = defaultdict(int)
        in_force = tier_version(versions, end)
        if in_force is not None:
            months = set(window_months(in_force, end, zone))
            for key, earn in earns.items():
                if self._month(earn.entry.occurred_at) in months:
                    changes[earn.entry.member_id] += draft_points[key] - current_points[key]
        moves = self._tier_moves(in_force, {m: by for m, by in changes.items() if by}, end, zone)
        draft_mix = dict(mix)
        for before, after in moves:
            if before is not None:
                draft_mix[before] = draft_mix.get(before, 0) - 1
            if after is not None:
                draft_mix[after] = draft_mix.get(after, 0) + 1
        difference = issued_draft - issued_current
        return {
            "as_of": self._as_of(now),
            "days": days,
            "orders": len(earns),
            "points_issued": {"current": issued_current, "draft": issued_draft, "difference": difference},
            "liability": {"current": liability, "draft": liability + difference, "difference": difference},
            "tier_mix": {
                "current": mix,
                "draft": {tier: count for tier, count in sorted(draft_mix.items()) if count > 0},
                "moved": len(moves),
            },
        }

    def _month(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%Y-%m")

    def _counters_before(self, entries: list[LedgerEntry], earns: Iterable[OrderEarn], zone: str) -> dict[str, int]:
        """The earning caps' counters as they stood before the first of ``entries``: their value
        now less what the entries since moved them."""
        names: set[str] = set()
        for earn in earns:
            campaign, overall = limits_for(earn.rules, earn.entry.member_id, earn.entry.occurred_at, zone)
            names.update(limit.counter for limit in (*campaign.values(), *overall))
        if not names:
            return {}
        used = self._store.counters(sorted(names))
        for entry in entries:
            for name, by in entry.cap_counters:
                if name in names:
                    used[name] = used.get(name, 0) - by
        return used

    def _tier_moves(
        self, program: TierProgram | None, changes: dict[str, int], at: datetime, zone: str
    ) -> list[tuple[str | None, str | None]]:
        """``(tier now, tier under the draft)`` of each member the draft moves: their
        qualifying points changed by ``changes`` in the tier program in force (``draft_tier``)."""
        if program is None or program.metric is not Metric.POINTS or not changes:
            return []
        moves = []
        for member_id, balance in sorted(self._store.balances(sorted(changes)).items()):
            if balance.erased_at is not None:
                continue  # in no tier
            total = qualifying_total(decode_buckets(balance.tier_buckets), program, at, zone)
            earned = draft_tier(program, balance.tier, total, total + changes[member_id])
            # The mix counts the tier a member holds: a paid plan's when higher than the earned one.
            before = recorded_tier(program, balance.tier, balance.plan, at)
            after = recorded_tier(program, earned, balance.plan, at)
            if after != before:
                moves.append((before, after))
        return moves


def draft_tier(program: TierProgram, tier: str | None, total: Decimal, draft_total: Decimal) -> str | None:
    """The tier of a member holding ``tier`` whose qualifying total ``total`` a draft program
    would make ``draft_total``: the tier that total reaches when it is higher than theirs (an
    upgrade, as an earn qualifies), or lower while the current total holds theirs (their tier
    was held by the total the draft takes below its threshold); else theirs."""
    rank = program.rank(tier)
    if rank < 0:
        return tier
    reached, held = program.qualified(draft_total), program.qualified(total)
    reached_name = reached.name if reached is not None else None
    if program.rank(reached_name) > rank:
        return reached_name
    if program.rank(reached_name) < rank <= program.rank(held.name if held is not None else None):
        return reached_name
    return tier


def tier_version(versions: list[TierProgram], at: datetime) -> TierProgram | None:
    """The tier program in force at ``at`` (as the tier store answers it), None without tiers."""
    started = [v for v in versions if v.effective_from <= at]
    if not started:
        return None
    found = max(started, key=lambda v: (v.effective_from, v.version_id))
    return found if found.tiers else None


#: Shares a program's settings do not decide (added to what the rules give, before the caps).
_RECORDED = ("base", "discount", "rule", "tier", "plan")


@dataclass(frozen=True)
class OrderEarn:
    """An order earn, with what it was decided on as its entry recorded it, to be earned again
    under another program:

    * the earning rules in force at the order's time; a rule limited to segments applies when
      the breakdown shows a share of it (segments are not recorded: one whose share rounded to
      0 is taken as not applying);
    * the member's tier: the one the breakdown's tier share names; else the highest tier, from
      the one the entry recorded after the movement down, under which the program in force
      gives the order the shares it recorded (an order that upgraded the member earned at the
      tier before); the tier program is the version in force when the entry was recorded;
    * a paid plan: the one the breakdown's plan share names, at the multiplier of the plan's
      catalog now (one gone from the catalog keeps its recorded share);
    * milestones and challenge rewards as recorded (no program setting changes them).
    """

    entry: LedgerEntry
    #: The rules in force at the order (segment-limited ones resolved: kept unlimited or left out).
    rules: list[EarningRule]
    tier: Tier | None
    plan: PlanGrant | None
    #: Recorded shares added as they are before the caps (milestones; a share whose tier or plan is gone).
    kept: tuple[Share, ...]
    #: Challenge rewards (added after the caps, as the movement adds them).
    challenges: int

    @classmethod
    def of(
        cls,
        entry: LedgerEntry,
        rules: list[EarningRule],
        version: TierProgram | None,
        catalog: PlanCatalog | None,
        current: Program,
        timezone: str,
    ) -> OrderEarn:
        at, recorded = entry.occurred_at, entry.breakdown
        given = {share.rule_id for share in recorded if share.source == "rule"}
        in_force = [
            replace(rule, segments=frozenset()) if rule.segments else rule
            for rule in rules
            if rule.in_force(at) and (not rule.segments or rule.rule_id in given)
        ]
        order_rules = {rule.rule_id for rule in in_force if rule.kind in ORDER_KINDS}
        kept = [share for share in recorded if share.source == "rule" and share.rule_id not in order_rules]
        plan = None
        if (plan_share := next((s for s in recorded if s.source == "plan"), None)) is not None:
            found = catalog.get((plan_share.rule_id or "").removeprefix("plan:")) if catalog is not None else None
            if found is not None and found.multiplier > 1:
                plan = PlanGrant("", found.plan_id, None, found.multiplier, at, at + timedelta(microseconds=1))
            else:
                kept.append(plan_share)
        challenges = sum(share.points for share in recorded if share.source == "challenge")
        earn = cls(entry, in_force, None, plan, tuple(kept), challenges)
        if (tier_share := next((s for s in recorded if s.source == "tier"), None)) is not None:
            name = (tier_share.rule_id or "").removeprefix("tier:")
            tier = version.tier(name) if version is not None else None
            if tier is None:  # a tier gone from its version: its name for the rules, its share as recorded
                return replace(earn, tier=Tier(name, Decimal(1)), kept=(*earn.kept, tier_share))
            return replace(earn, tier=tier)
        if version is None:
            return earn
        shown = {(s.source, s.rule_id) for s in recorded if s.source in _RECORDED and s not in kept}
        rank = version.rank(entry.balance_after.tier)
        top = rank if rank >= 0 else len(version.tiers)
        candidates: list[Tier | None] = [*reversed(version.tiers[:top]), None]
        for tier in candidates:
            shares = replace(earn, tier=tier).earning(current, timezone).breakdown
            if {(s.source, s.rule_id) for s in shares} == shown:
                return replace(earn, tier=tier)
        return replace(earn, tier=version.tier(entry.balance_after.tier))

    def earning(self, program: Program, timezone: str) -> Earning:
        """What the order's rules, tier and plan give under ``program`` (before milestones and caps)."""
        assert self.entry.order is not None
        return evaluate(
            self.entry.order, program, self.rules, self.entry.occurred_at, timezone, self.tier, plan=self.plan
        )

    def earn(self, program: Program, timezone: str, used: dict[str, int]) -> Capped:
        """What the order earns under ``program``, capped by the caps given what their
        counters have ``used`` (challenge rewards added after, as the movement adds them)."""
        earning = self.earning(program, timezone)
        points = earning.points + sum(share.points for share in self.kept)
        entry = self.entry
        capped = with_caps(
            entry.member_id,
            points,
            (*earning.breakdown, *self.kept),
            entry.occurred_at,
            timezone,
            self.rules,
            lambda name: used.get(name, 0),
        )
        return replace(capped, points=capped.points + self.challenges)


def replay(
    entries: list[LedgerEntry], earns: dict[str, OrderEarn], program: Program, timezone: str, before: dict[str, int]
) -> dict[str, int]:
    """Each order earn's points under ``program``, in commit order: the caps' counters start as
    they stood ``before`` the first entry, and move by what each order earn gives under it and by
    what every other entry recorded."""
    used = dict(before)
    points: dict[str, int] = {}
    for entry in entries:
        earn = earns.get(entry.transaction_id)
        moves: Iterable[tuple[str, int]] = entry.cap_counters
        if earn is not None:
            capped = earn.earn(program, timezone, used)
            points[entry.transaction_id] = capped.points
            moves = [(change.name, change.by) for change in capped.counters]
        for name, by in moves:
            used[name] = used.get(name, 0) + by
    return points


def _numbers(row: dict[str, Number | str]) -> dict[str, Number]:
    return {k: v for k, v in row.items() if not isinstance(v, str)}


def as_of_text(moment: datetime | None) -> str | None:
    return isoformat(moment.astimezone(UTC)) if moment else None
