"""Tiers and the effective tier as the model sees them (docs/guides/tiers.md, "Benefits" of
docs/guides/plans.md), written from the guides, naively: month totals as plain dicts.

* A tier program is versioned: the version in force at a moment is the latest whose
  ``effective_from`` has come; a version without tiers ends them (no tier for anyone, and the
  review job takes the stored tier away when it falls due).
* Every earn and reversal moves the member's month buckets (local months): an earn adds its
  points (what it credited), its spend (an order's total or an amount, in thousandths) and one
  order (order earns), in the month of its ``occurred_at``; a reversal takes back what the
  earns of its reference counted, earns in the order they were made, points exactly, spend in
  proportion, the order once the earn is wholly reversed. Months more than 24 before the
  movement's own month are dropped.
* An earn or a reversal first reviews the stored tier at its moment (every review due by then);
  an earn that credited points or counted an order then qualifies: the highest tier the window's
  total reaches is taken at once if higher, confirmed (held longer) if the same; held until the
  end of the current period (local month, or year for calendar-year windows) plus ``grace``.
* A review at ``expires_at``: the best tier qualified for in one of the last ``grace`` periods
  (their windows closing at each period's end), held until that period's end plus ``grace``;
  none: no tier. A tier the version in force does not have is re-qualified from scratch.
* The effective tier is the higher of the (reviewed) earned tier and the tier a paid plan in
  force grants, ranked by the version in force; without tiers, none. An order earn gets the
  effective tier's multiplier (and the plan's own) as an extra share of the order's base.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

#: Month totals: "YYYY-MM" -> (points, spend in thousandths of the currency unit, orders).
Buckets = dict[str, tuple[int, int, int]]
METRICS = ("points", "spend", "orders")
KEPT_MONTHS = 24


@dataclass(frozen=True)
class ModelTier:
    name: str
    threshold: Decimal
    multiplier: Decimal = Decimal(1)


@dataclass(frozen=True)
class ModelTierProgram:
    effective_from: datetime
    metric: str
    #: "rolling_months" or "calendar_year".
    window: str
    months: int | None
    grace: int
    tiers: tuple[ModelTier, ...]

    def rank(self, name: str | None) -> int:
        if name is None:
            return 0
        for index, tier in enumerate(self.tiers):
            if tier.name == name:
                return index + 1
        return -1

    def tier(self, name: str | None) -> ModelTier | None:
        return next((tier for tier in self.tiers if tier.name == name), None)

    def reached(self, total: Fraction) -> ModelTier | None:
        best = None
        for tier in self.tiers:
            if Fraction(tier.threshold) <= total:
                best = tier
        return best


@dataclass(frozen=True)
class Held:
    """The tier a member holds as stored: since when, until its review."""

    tier: str | None = None
    since: datetime | None = None
    expires_at: datetime | None = None


NONE_HELD = Held()


def in_force(versions: list[ModelTierProgram], at: datetime) -> ModelTierProgram | None:
    """The version in force at ``at`` (its tiers may be empty: tiers ended)."""
    started = [version for version in versions if version.effective_from <= at]
    return max(started, key=lambda version: version.effective_from) if started else None


def with_tiers(versions: list[ModelTierProgram], at: datetime) -> ModelTierProgram | None:
    version = in_force(versions, at)
    return version if version is not None and version.tiers else None


# --- months --------------------------------------------------------------------------------------


def _month_number(at: datetime, zone: str) -> int:
    local = at.astimezone(ZoneInfo(zone))
    return local.year * 12 + local.month - 1


def _month_name(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _month_start(number: int, zone: str) -> datetime:
    return datetime(number // 12, number % 12 + 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def counted(buckets: Buckets, at: datetime, now: datetime, zone: str, points: int, spend: int, orders: int) -> Buckets:
    """The buckets after a movement at ``now`` counted (points, spend, orders) in the month of
    ``at``; months older than 24 before ``now``'s are dropped."""
    oldest = _month_number(now, zone) - KEPT_MONTHS + 1
    month = _month_number(at, zone)
    result = dict(buckets)
    if month >= oldest:
        was = result.get(_month_name(month), (0, 0, 0))
        result[_month_name(month)] = (was[0] + points, was[1] + spend, was[2] + orders)
    return {
        name: values
        for name, values in result.items()
        if int(name[:4]) * 12 + int(name[5:]) - 1 >= oldest and values != (0, 0, 0)
    }


def taken_back(buckets: Buckets, removals: list[tuple[datetime, int, int, int]], zone: str) -> Buckets:
    """What a reversal takes out of the months its earns counted in (never below zero)."""
    result = dict(buckets)
    for at, points, spend, orders in removals:
        name = _month_name(_month_number(at, zone))
        if name not in result:
            continue
        was = result[name]
        result[name] = (max(0, was[0] - points), max(0, was[1] - spend), max(0, was[2] - orders))
    return {name: values for name, values in result.items() if values != (0, 0, 0)}


def total(buckets: Buckets, program: ModelTierProgram, at: datetime, zone: str) -> Fraction:
    """The window's total at ``at`` in the program's metric (spend in currency units)."""
    current = _month_number(at, zone)
    first = current - (program.months or 1) + 1 if program.window == "rolling_months" else current - current % 12
    index = METRICS.index(program.metric)
    raw = sum(buckets.get(_month_name(month), (0, 0, 0))[index] for month in range(first, current + 1))
    return Fraction(raw, 1000) if program.metric == "spend" else Fraction(raw)


def period_end(program: ModelTierProgram, at: datetime, zone: str, after: int) -> datetime:
    """The end of the period (local month, or year) holding ``at``, ``after`` periods later."""
    month = _month_number(at, zone)
    if program.window == "rolling_months":
        return _month_start(month + 1 + after, zone)
    return _month_start((month // 12 + 1 + after) * 12, zone)


def _period_boundary_before(program: ModelTierProgram, boundary: datetime, zone: str, count: int) -> datetime:
    month = _month_number(boundary, zone)
    if program.window == "rolling_months":
        return _month_start(month - count, zone)
    return _month_start((month // 12 - count) * 12, zone)


# --- the rules -----------------------------------------------------------------------------------


def qualify(held: Held, buckets: Buckets, program: ModelTierProgram, at: datetime, zone: str) -> Held:
    reached = program.reached(total(buckets, program, at, zone))
    if reached is None:
        return held
    until = period_end(program, at, zone, program.grace)
    if program.rank(reached.name) > program.rank(held.tier):
        return Held(reached.name, at, until)
    if reached.name == held.tier:
        return Held(held.tier, held.since, max(held.expires_at or until, until))
    return held


def review(held: Held, buckets: Buckets, program: ModelTierProgram, at: datetime, zone: str) -> Held:
    if held.tier is not None and program.rank(held.tier) < 0:
        return qualify(NONE_HELD, buckets, program, at, zone)
    while held.tier is not None and held.expires_at is not None and held.expires_at <= at:
        boundary = held.expires_at
        best: Held | None = None
        for k in range(program.grace):
            close = _period_boundary_before(program, boundary, zone, k)
            last_moment = close - timedelta(microseconds=1)
            reached = program.reached(total(buckets, program, last_moment, zone))
            if reached is not None and (best is None or program.rank(reached.name) > program.rank(best.tier)):
                best = Held(reached.name, None, period_end(program, last_moment, zone, program.grace))
        if best is None:
            return NONE_HELD
        held = Held(best.tier, held.since if best.tier == held.tier else boundary, best.expires_at)
    return held


@dataclass(frozen=True)
class Grant:
    """The paid plan the balance holds (docs/guides/plans.md)."""

    subscription_id: str
    plan_id: str
    tier: str | None
    multiplier: Decimal
    starts_at: datetime
    ends_at: datetime

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def effective(program: ModelTierProgram | None, earned: str | None, grant: Grant | None, at: datetime) -> str | None:
    """The higher of the earned tier and the tier of the plan in force; none without tiers."""
    if program is None:
        return None
    if grant is None or not grant.active_at(at) or grant.tier is None or program.rank(grant.tier) <= 0:
        return earned
    return grant.tier if program.rank(grant.tier) > program.rank(earned) else earned


def removals(
    earns: list[tuple[int, datetime, int, int]], before: int, after: int
) -> list[tuple[datetime, int, int, int]]:
    """What reversing the reference's points from ``before`` to ``after`` (cumulative over its
    ``earns``: points, occurred_at, spend, orders, in the order they were made) takes out of
    the month buckets: the covered points, the covered share of the spend (cumulatively
    floored), the order once the earn is wholly covered."""
    result = []
    start = 0
    for points, at, spend, orders in earns:
        if points <= 0:
            continue
        low = min(max(before - start, 0), points)
        high = min(max(after - start, 0), points)
        start += points
        if high <= low:
            continue
        result.append((at, high - low, spend * high // points - spend * low // points, orders if high == points else 0))
    return result
