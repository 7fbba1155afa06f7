"""The insights' fold over in-memory fakes: each event counted once, whatever reruns or overlaps."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.events import Event, EventType, FeedPage, cursor_after
from chalicelib.domain.insights import Batch, InsightsFold, InsightsService, MemberMark, MemberState
from chalicelib.domain.members import Member
from chalicelib.domain.movement_requests import MovementType

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def member_event(n: int) -> Event:
    at = T0 + timedelta(minutes=n)
    member = Member(f"mem_{n:026d}", None, None, None, None, False, at, at)
    return Event(f"evt_{n:026d}", EventType.MEMBER_CREATED, member.member_id, at, member=member)


def entry_event(n: int, member: int, movement: MovementType, points: int) -> Event:
    at = T0 + timedelta(minutes=n)
    member_id = f"mem_{member:026d}"
    entry = LedgerEntry(
        transaction_id=f"txn_{n:026d}",
        member_id=member_id,
        movement=movement,
        points=points,
        sequence=1,
        idempotency_key=f"k-{n}",
        request_fingerprint="f",
        occurred_at=at,
        created_at=at,
        balance_after=Balance.opening(member_id, at),
    )
    return Event(f"evt_{n:026d}", EventType.POINTS_EARNED, member_id, at, entry=entry)


class ListFeed:
    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def read(self, *, after: str | None, types: frozenset[EventType], limit: int) -> FeedPage:
        start = 0 if after is None else [cursor_after(e) for e in self.events].index(after) + 1
        page = self.events[start : start + limit]
        return FeedPage(page, cursor_after(page[-1]) if page else (after or ""))


class OpenCheckpoint:
    """A lease always granted, from the cursor it was told (a run that claimed before another committed)."""

    def __init__(self, cursor: str | None) -> None:
        self.cursor = cursor

    def claim(self, *, owner: str, now: datetime, until: datetime) -> tuple[bool, str | None, datetime | None]:
        return True, self.cursor, now

    def advance(self, *, owner: str, cursor: str, now: datetime) -> bool:
        return True

    def release(self, *, owner: str) -> None:
        pass


class MemoryInsights:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        self.marks_by_member: dict[str, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.states: dict[str, MemberState] = {}

    def marks(self, member_ids: list[str]) -> dict[str, MemberMark]:
        return {m: MemberMark.from_dict(m, self.marks_by_member[m]) for m in member_ids if m in self.marks_by_member}

    def member_states(self, member_ids: list[str], timezone: str, tiers: Any, at: datetime) -> dict[str, MemberState]:
        return {m: self.states.get(m, MemberState()) for m in member_ids}

    def commit(self, batch: Batch, *, owner: str, previous: str | None, cursor: str, now: datetime) -> bool:
        if previous != self.cursor:
            return False
        for row, counters in batch.counts.items():
            for name, by in counters.items():
                self.rows[row][name] += by
        if batch.as_of:
            self.rows[("now", "")]["as_of"] = batch.as_of.isoformat()
        for member_id, mark in batch.marks.items():
            self.marks_by_member[member_id] = mark.to_dict()
        self.cursor = cursor
        return True

    def days(self, first: date, last: date) -> dict[str, dict[str, Any]]:
        return {
            k: dict(v)
            for (kind, k), v in self.rows.items()
            if kind == "day" and first.isoformat() <= k <= last.isoformat()
        }

    def now(self) -> dict[str, Any]:
        return dict(self.rows.get(("now", ""), {}))

    def cohorts(self, first: str, last: str) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for (kind, k), v in self.rows.items() if kind == "cohort" and first <= k <= last}

    def earns(self, start: datetime, end: datetime) -> Any:
        return iter(())

    def counters(self, names: list[str]) -> dict[str, int]:
        return {}

    def balances(self, member_ids: list[str]) -> dict[str, Balance]:
        return {}


def fold(store: MemoryInsights, events: list[Event], cursor: str | None) -> dict[str, int]:
    job = InsightsFold(
        store,
        OpenCheckpoint(cursor),
        open_feed=lambda start: ListFeed(events),
        start=T0,
        timezone="UTC",
        clock=lambda: T0 + timedelta(days=1),
    )
    return job.run()


def history() -> list[Event]:
    return [
        member_event(0),
        member_event(1),
        entry_event(2, 0, MovementType.EARN, 100),
        entry_event(3, 1, MovementType.EARN, 40),
        entry_event(4, 0, MovementType.REDEEM, -30),
    ]


def test_each_event_counts_once_and_a_rerun_adds_nothing() -> None:
    store, events = MemoryInsights(), history()
    store.states = {"mem_" + "0" * 26: MemberState(available=70), "mem_" + "0" * 25 + "1": MemberState(available=40)}

    assert fold(store, events, None)["events"] == 5
    assert fold(store, events, store.cursor)["events"] == 0

    service = InsightsService(
        store, timezone="UTC", point_value=lambda: Decimal("0.01"), reward_names=dict.fromkeys, clock=lambda: T0
    )
    summary = service.summary(T0.date(), T0.date(), currency="EUR")
    assert summary["points"] == {"issued": 140, "redeemed": 30, "expired": 0, "reversed": 0, "adjusted": 0}
    assert summary["members"] == {"total": 2, "enrolled": 2, "active_30d": 2, "active_90d": 2}
    assert summary["liability"]["available"] == {"points": 110, "value": "1.10"}
    assert summary["redemption"] == {"rate": "0.214286", "active_redeemer_share": "0.500000"}


def test_an_overlapping_run_from_a_stale_cursor_commits_nothing() -> None:
    store, events = MemoryInsights(), history()
    fold(store, events, None)
    before = {k: dict(v) for k, v in store.rows.items()}

    # a run that claimed the checkpoint before the first committed reads from the start again
    stale = fold(store, events, None)

    assert stale["events"] == 0
    assert {k: dict(v) for k, v in store.rows.items()} == before


def test_a_member_active_again_moves_between_days_of_the_histogram() -> None:
    store = MemoryInsights()
    events = [
        member_event(0),
        entry_event(1, 0, MovementType.EARN, 10),
        entry_event(60 * 24 * 3, 0, MovementType.EARN, 5),
    ]
    fold(store, events, None)
    days = store.days(T0.date(), T0.date() + timedelta(days=5))
    assert days[T0.date().isoformat()]["last_active"] == 0
    assert days[(T0.date() + timedelta(days=3)).isoformat()]["last_active"] == 1
    assert sum(row.get("active", 0) for row in days.values()) == 2


def test_a_draft_moves_a_member_across_the_thresholds_of_the_tier_program_in_force() -> None:
    from chalicelib.domain.insights import draft_tier
    from chalicelib.domain.tiers import Metric, Tier, TierProgram, WindowKind

    program = TierProgram(
        "tpv_1",
        T0,
        T0,
        Metric.POINTS,
        WindowKind.ROLLING_MONTHS,
        12,
        1,
        (Tier("silver", Decimal(100)), Tier("gold", Decimal(1000))),
    )
    # up as an earn would qualify, to the highest tier the changed total reaches
    assert draft_tier(program, None, Decimal(90), Decimal(1200)) == "gold"
    assert draft_tier(program, "silver", Decimal(500), Decimal(1000)) == "gold"
    # down when the member's own total held their tier and the changed one falls below it
    assert draft_tier(program, "gold", Decimal(1100), Decimal(550)) == "silver"
    assert draft_tier(program, "silver", Decimal(150), Decimal(75)) is None
    # a tier held by grace (the current total below it) is not taken away; nothing crossed: kept
    assert draft_tier(program, "gold", Decimal(500), Decimal(250)) == "gold"
    assert draft_tier(program, "silver", Decimal(150), Decimal(900)) == "silver"


def test_an_order_earn_is_earned_again_with_what_its_entry_recorded() -> None:
    from dataclasses import replace

    from chalicelib.domain.insights import OrderEarn
    from chalicelib.domain.orders import Order
    from chalicelib.domain.program import Program
    from chalicelib.domain.rules import EarningRule, RuleKind, Share
    from chalicelib.domain.tiers import Metric, Tier, TierProgram, WindowKind

    tiers = TierProgram(
        "tpv_1", T0, T0, Metric.POINTS, WindowKind.ROLLING_MONTHS, 12, 1, (Tier("silver", Decimal(100), Decimal(2)),)
    )
    vip = EarningRule(
        name="VIP x2",
        kind=RuleKind.ORDER_MULTIPLIER,
        factor=Decimal(2),
        segments=frozenset({"vip"}),
        rule_id="rul_vip",
        created_at=T0,
    )
    staff = replace(vip, name="Staff x3", factor=Decimal(3), segments=frozenset({"staff"}), rule_id="rul_staff")
    order = Order("o-1", Decimal(40), "EUR")
    # Given an order that upgraded its member to silver (earned before it: no tier share), in
    # the vip segment (its campaign's share recorded) and not in staff (none recorded)
    recorded = entry_event(5, 0, MovementType.EARN, 80).entry
    assert recorded is not None
    entry = replace(
        recorded,
        order=order,
        breakdown=(Share("base", "Base rate", 40), Share("rule", "VIP x2", 40, "rul_vip")),
    )
    entry = replace(entry, balance_after=replace(entry.balance_after, tier="silver"))
    program = Program(points_per_currency_unit=Decimal(1))

    earn = OrderEarn.of(entry, [vip, staff], tiers, None, program, "UTC")

    # Then it earns at no tier, with the vip campaign and without the staff one: what it earned,
    # and twice that at 2 points per euro
    assert earn.tier is None
    assert [rule.rule_id for rule in earn.rules] == ["rul_vip"]
    assert earn.earn(program, "UTC", {}).points == 80
    assert earn.earn(Program(points_per_currency_unit=Decimal(2)), "UTC", {}).points == 160
