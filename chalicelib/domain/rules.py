"""Earning rules: how an order becomes points, with a breakdown of which rule gave what. Pure.

The base rate (the program's points per currency unit) applies to what the customer paid
for the order's goods, line by line after discounts, plus shipping and tax when the program
lets them earn (chalicelib.domain.orders). Rules then add to it:

* ``line_multiplier``: lines matching SKUs or categories earn ``factor`` times their base
  (the extra ``factor - 1`` times is the rule's share);
* ``order_multiplier``: a campaign: the whole order's base earns ``factor`` times, optionally
  on some weekdays only (in the tenant's time zone);
* ``order_bonus``: a fixed number of points for an order of at least ``min_order_total``;
* ``milestone``: ``points`` on the member's Nth order (``at``), or on every Nth (``every``),
  counted on the balance in the earn's own transaction, so no order counts twice;
* ``activity``: ``points`` for an engagement activity (a review, a follow, ...), at most
  ``limit`` times ``per`` day, week, month, year or ever, enforced by a counter in the earn's
  transaction (see ``RuleService.activity``);
* ``earning_cap``: at most ``cap`` points earned by a member ``per`` day, week, month, year or
  ever (chalicelib.domain.caps). An order rule may carry its own ``cap`` and ``per`` too: at
  most that many points from that campaign per member and period.

Order rules may be limited to some ``tiers`` and to members of some ``segments``.

Every rule may require a minimum order total and is in force in its window
[``starts_at``, ``ends_at``): a rule set is versioned by these windows, so an earn is
explained by the rules in force when the order happened. Multipliers stack by adding their
extras (2x and 3x on the same line: 1 + 1 + 2 = 4 times the base). Each share is rounded
with the program's rounding on its own, so the breakdown always sums to the total.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from chalicelib.domain.audit import SYSTEM, AuditAction, Auditor
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import ActivityNotRewarded, InvalidRequest, LimitReached, NotFound
from chalicelib.domain.ids import MAX_SEGMENTS, RULE_ID_PATTERN, SEGMENT_PATTERN, new_rule_id
from chalicelib.domain.orders import Order, OrderLine
from chalicelib.domain.ports import CounterChange
from chalicelib.domain.program import Program

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.domain.plans import PlanGrant
    from chalicelib.domain.ports import RuleStore
    from chalicelib.domain.program import ProgramService
    from chalicelib.domain.tiers import Tier

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Rules in force at once; evaluation reads them all on every order earn.
MAX_RULES = 50


class RuleKind(StrEnum):
    LINE_MULTIPLIER = "line_multiplier"
    ORDER_MULTIPLIER = "order_multiplier"
    ORDER_BONUS = "order_bonus"
    MILESTONE = "milestone"
    ACTIVITY = "activity"
    EARNING_CAP = "earning_cap"


ORDER_KINDS = (RuleKind.LINE_MULTIPLIER, RuleKind.ORDER_MULTIPLIER, RuleKind.ORDER_BONUS)
#: Built-in activity types; brands add their own as ``custom:<name>``.
ACTIVITY_TYPES = (
    "review",
    "social_follow",
    "social_share",
    "profile_completed",
    "signup",
    "newsletter_signup",
)
ACTIVITY_TYPE = re.compile(
    r"^(review|social_follow|social_share|profile_completed|signup|newsletter_signup|custom:[a-z0-9_-]{1,40})$"
)


class Per(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


def segment_problems(segments: frozenset[str], path: str = "segments") -> list[tuple[str, str]]:
    """What is wrong with a set of segment names (empty: nothing)."""
    problems = []
    if bad := sorted(s for s in segments if not SEGMENT_PATTERN.fullmatch(s)):
        problems.append((path, f"segment names are 1-32 lowercase letters, digits, '_' or '-': {bad}"))
    if len(segments) > MAX_SEGMENTS:
        problems.append((path, f"at most {MAX_SEGMENTS} segments"))
    return problems


@dataclass(frozen=True)
class NewRule:
    """What a rule says, before it is added: what ``RuleService.add`` takes. Checked when it
    becomes an ``EarningRule``."""

    name: str
    kind: RuleKind
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    factor: Decimal | None = None
    points: int | None = None
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    weekdays: frozenset[str] = frozenset()
    min_order_total: Decimal | None = None
    every: int | None = None
    at: int | None = None
    activity: str | None = None
    limit: int | None = None
    per: Per | None = None
    #: Order rules only: the member's tier must be one of these (empty: every member).
    tiers: frozenset[str] = frozenset()
    #: Order rules: at most this many points from the rule per member and ``per``;
    #: ``earning_cap``: at most this many points earned per member and ``per``.
    cap: int | None = None
    #: Order rules only: the member must be in one of these segments (empty: every member).
    segments: frozenset[str] = frozenset()

    def problems(self) -> list[tuple[str, str]]:
        """What makes the rule inconsistent (field path, message), its window aside: a stored
        rule's window may be empty (``RuleService.end`` of a rule that has not started)."""
        problems: list[tuple[str, str]] = []
        problems += self._milestone_and_activity_problems()
        problems += self._cap_and_segment_problems()
        if self.tiers and self.kind not in ORDER_KINDS:
            problems.append(("tiers", "only order rules (multipliers and bonuses) may be limited to tiers"))
        multiplier = self.kind in (RuleKind.LINE_MULTIPLIER, RuleKind.ORDER_MULTIPLIER)
        if multiplier and (self.factor is None or self.factor <= 1):
            problems.append(("factor", "a multiplier needs a factor greater than 1"))
        if not multiplier and self.factor is not None:
            problems.append(("factor", "only multipliers take a factor"))
        gives_points = self.kind in (RuleKind.ORDER_BONUS, RuleKind.MILESTONE, RuleKind.ACTIVITY)
        if gives_points and (self.points is None or self.points <= 0):
            problems.append(("points", f"a {self.kind} rule needs points greater than 0"))
        if not gives_points and self.points is not None:
            problems.append(("points", "only order bonuses, milestones and activities take points"))
        if self.kind is RuleKind.LINE_MULTIPLIER and not (self.skus or self.categories):
            problems.append(("skus", "a line multiplier needs skus or categories to match"))
        if self.kind is not RuleKind.LINE_MULTIPLIER and (self.skus or self.categories):
            problems.append(("skus", "only a line multiplier matches skus or categories"))
        if unknown := self.weekdays - set(WEEKDAYS):
            problems.append(("weekdays", f"unknown weekdays {sorted(unknown)}; use {', '.join(WEEKDAYS)}"))
        return problems

    def window_problems(self) -> list[tuple[str, str]]:
        """A window the caller gives must end after it starts."""
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            return [("ends_at", "must be after starts_at")]
        return []

    def _milestone_and_activity_problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.kind is RuleKind.MILESTONE and (self.every is None) == (self.at is None):
            problems.append(("every", "a milestone needs exactly one of every (each Nth order) or at (the Nth order)"))
        if self.kind is not RuleKind.MILESTONE and (self.every is not None or self.at is not None):
            problems.append(("every", "only a milestone takes every or at"))
        if (self.every is not None and self.every < 2) or (self.at is not None and self.at < 1):
            problems.append(("every", "every must be at least 2 and at at least 1"))
        if self.kind is RuleKind.ACTIVITY and not (self.activity and ACTIVITY_TYPE.fullmatch(self.activity)):
            problems.append(("activity", f"one of {', '.join(ACTIVITY_TYPES)} or custom:<name>"))
        if self.kind is not RuleKind.ACTIVITY and (self.activity or self.limit is not None):
            problems.append(("activity", "only an activity rule takes activity and limit"))
        if self.kind is RuleKind.ACTIVITY and (
            (self.limit is None) != (self.per is None) or (self.limit is not None and self.limit < 1)
        ):
            problems.append(("limit", "limit (at least 1) and per (day, week, month, year or ever) go together"))
        if self.kind in (RuleKind.MILESTONE, RuleKind.ACTIVITY, RuleKind.EARNING_CAP) and (
            self.weekdays or self.min_order_total
        ):
            problems.append(("weekdays", f"a {self.kind} rule takes no weekdays or min_order_total"))
        return problems

    def _cap_and_segment_problems(self) -> list[tuple[str, str]]:
        problems = []
        takes_cap = self.kind in (*ORDER_KINDS, RuleKind.EARNING_CAP)
        if self.cap is not None and not takes_cap:
            problems.append(("cap", "only order rules and earning caps take a cap"))
        if self.kind is RuleKind.EARNING_CAP and self.cap is None:
            problems.append(("cap", "an earning cap needs cap (the most points per member and period)"))
        if takes_cap and ((self.cap is None) != (self.per is None) or (self.cap is not None and self.cap < 1)):
            problems.append(("cap", "cap (at least 1) and per (day, week, month, year or ever) go together"))
        if self.kind not in (RuleKind.ACTIVITY, *ORDER_KINDS, RuleKind.EARNING_CAP) and self.per is not None:
            problems.append(("per", f"a {self.kind} rule takes no per"))
        if self.segments and self.kind not in ORDER_KINDS:
            problems.append(("segments", "only order rules (multipliers and bonuses) may be limited to segments"))
        problems += segment_problems(self.segments)
        return problems


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise InvalidRequest.for_fields("invalid earning rule", *((p, m, "value_error") for p, m in problems))


@dataclass(frozen=True, kw_only=True)
class EarningRule(NewRule):
    """A rule of the tenant's: a ``NewRule`` with its id and the time it was added."""

    rule_id: str
    created_at: datetime

    def __post_init__(self) -> None:
        _refuse(self.problems())

    def in_force(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (self.ends_at is None or at < self.ends_at)

    def applies_to(
        self,
        order: Order,
        at: datetime,
        timezone: str,
        tier: str | None = None,
        segments: frozenset[str] = frozenset(),
    ) -> bool:
        if not self.in_force(at):
            return False
        if self.tiers and tier not in self.tiers:
            return False
        if self.segments and not self.segments & segments:
            return False
        if self.min_order_total is not None and order.total < self.min_order_total:  # what was paid, in all
            return False
        return not self.weekdays or WEEKDAYS[at.astimezone(ZoneInfo(timezone)).weekday()] in self.weekdays

    def matches(self, line: OrderLine) -> bool:
        return line.sku in self.skus or (line.category is not None and line.category in self.categories)


#: Where a share of the breakdown comes from (see the API's ShareOut for each one's meaning).
ShareSource = Literal["base", "discount", "rule", "tier", "plan", "cap", "requested", "challenge"]


@dataclass(frozen=True)
class Share:
    """One line of the breakdown: what a rule (or the base rate) gave."""

    source: ShareSource
    name: str
    points: int
    rule_id: str | None = None


@dataclass(frozen=True)
class Earning:
    points: int
    breakdown: tuple[Share, ...] = field(default_factory=tuple)


def evaluate(
    order: Order,
    program: Program,
    rules: list[EarningRule],
    at: datetime,
    timezone: str,
    tier: Tier | None = None,
    segments: frozenset[str] = frozenset(),
    *,
    plan: PlanGrant | None = None,
) -> Earning:
    """The points ``order`` earns at ``at`` under ``program`` and the rules in force then, for
    a member of ``tier`` and ``segments``: rules limited to tiers or segments apply only to
    theirs, the tier's multiplier adds its extra share of the base (``tier:<name>``), and a
    paid ``plan`` in force adds its own multiplier's extra share (``plan:<plan id>``).

    Everything applies to what the customer paid (chalicelib.domain.orders): the base rate's
    share is shown at the listed prices and a ``discount`` share takes off what discounts (and
    amounts that do not earn, such as tax included in prices) removed, so the breakdown
    always sums to the points."""
    per_unit = program.points_per_currency_unit
    paid = order.paid(program)
    listed = program.round(paid.listed_base * per_unit)
    shares = [Share("base", "Base rate", listed)]
    if discounted := program.round(paid.base * per_unit) - listed:
        shares.append(Share("discount", "Discounts", discounted))
    name = tier.name if tier is not None else None
    for rule in sorted(rules, key=lambda r: (r.created_at, r.rule_id)):
        if rule.kind not in ORDER_KINDS or not rule.applies_to(order, at, timezone, name, segments):
            continue
        if rule.kind is RuleKind.ORDER_BONUS:
            points = rule.points or 0
        else:
            extra = (rule.factor or Decimal(1)) - 1
            if rule.kind is RuleKind.LINE_MULTIPLIER:
                eligible = sum(
                    (cost for line, cost in zip(order.lines, paid.lines, strict=True) if rule.matches(line)),
                    Decimal(0),
                )
            else:
                eligible = paid.base
            points = program.round(eligible * per_unit * extra)
        if points:
            shares.append(Share("rule", rule.name, points, rule.rule_id))
    if tier is not None and tier.multiplier > 1:
        points = program.round(paid.base * per_unit * (tier.multiplier - 1))
        if points:
            shares.append(Share("tier", f"{tier.name} tier", points, f"tier:{tier.name}"))
    if plan is not None and plan.multiplier > 1:
        points = program.round(paid.base * per_unit * (plan.multiplier - 1))
        if points:
            shares.append(Share("plan", f"{plan.plan_id} plan", points, f"plan:{plan.plan_id}"))
    return Earning(points=sum(share.points for share in shares), breakdown=tuple(shares))


def milestone_shares(rules: list[EarningRule], order_number: int, at: datetime) -> tuple[Share, ...]:
    """What the member's ``order_number``-th order gives under the milestone rules in force."""
    shares = []
    for rule in sorted(rules, key=lambda r: (r.created_at, r.rule_id)):
        if rule.kind is not RuleKind.MILESTONE or not rule.in_force(at):
            continue
        if (rule.every and order_number % rule.every == 0) or rule.at == order_number:
            shares.append(Share("rule", rule.name, rule.points or 0, rule.rule_id))
    return tuple(shares)


def period_key(per: Per, at: datetime, timezone: str) -> str:
    """The tenant-local period holding ``at``: ``2027-05-08``, ``2027-W18`` (ISO weeks, from
    Monday), ``2027-05``, ``2027``, ``ever``. The shapes differ, so a counter name holding one
    says which period it counts."""
    local = at.astimezone(ZoneInfo(timezone))
    return {
        Per.DAY: f"{local:%Y-%m-%d}",
        Per.WEEK: f"{local:%G-W%V}",
        Per.MONTH: f"{local:%Y-%m}",
        Per.YEAR: f"{local:%Y}",
        Per.EVER: "ever",
    }[per]


@dataclass(frozen=True)
class ActivityEarning:
    points: int
    breakdown: tuple[Share, ...]
    counters: tuple[CounterChange, ...]


class RuleService:
    """The tenant's earning rules. A rule is never edited or deleted, only ended (its window
    closes), so every past earn stays explained by the rules in force when it happened."""

    def __init__(
        self, store: RuleStore, program: ProgramService, clock: Clock = utc_now, *, auditor: Auditor | None = None
    ) -> None:
        self._store = store
        self._program = program
        self._clock = clock
        self._auditor = auditor or Auditor(SYSTEM, clock)

    def add(self, new: NewRule) -> EarningRule:
        now = self._clock()
        _refuse([*new.problems(), *new.window_problems()])
        rule = EarningRule(**vars(new), rule_id=new_rule_id(now), created_at=now)
        if sum(1 for r in self._store.list() if r.ends_at is None or r.ends_at > now) >= MAX_RULES:
            raise InvalidRequest.for_fields(
                f"at most {MAX_RULES} rules may be in force or scheduled; end one first",
                ("rules", f"at most {MAX_RULES}", "too_many_rules"),
            )
        self._store.put(rule, self._auditor.entry(AuditAction.RULE_ADDED, "rule", rule.rule_id, after=rule, at=now))
        return rule

    def list(self) -> list[EarningRule]:
        return sorted(self._store.list(), key=lambda r: (r.created_at, r.rule_id))

    def get(self, rule_id: str) -> EarningRule:
        found = self._store.get(rule_id) if RULE_ID_PATTERN.fullmatch(rule_id) else None
        if found is None:
            raise NotFound(f"rule {rule_id!r} not found")
        return found

    def end(self, rule_id: str) -> EarningRule:
        """Close the rule's window now (a rule that already ended keeps its end). A rule that
        has not started ends with an empty window (``ends_at`` before ``starts_at``): it never
        applies."""
        rule = self.get(rule_id)
        now = self._clock()
        if rule.ends_at is not None and rule.ends_at <= now:
            return rule
        ended = replace(rule, ends_at=now)
        audit = self._auditor.entry(AuditAction.RULE_ENDED, "rule", rule_id, before=rule, after=ended, at=now)
        self._store.put(ended, audit)
        return ended

    def activity(
        self, member_id: str, activity: str, at: datetime, timezone: str, used: Callable[[str], int]
    ) -> ActivityEarning:
        """The points an activity earns under the activity rules in force, and the counters
        that hold each rule to its limit (``used`` reads a counter). Rules whose allowance is
        used up are skipped; with none left the activity is refused."""
        matching = [
            rule
            for rule in self._store.list()
            if rule.kind is RuleKind.ACTIVITY and rule.activity == activity and rule.in_force(at)
        ]
        if not matching:
            raise ActivityNotRewarded(f"no activity rule in force rewards {activity!r}", details={"activity": activity})
        shares, counters, exhausted = [], [], []
        for rule in sorted(matching, key=lambda r: (r.created_at, r.rule_id)):
            if rule.limit is not None and rule.per is not None:
                name = f"activity:{rule.rule_id}:{member_id}:{period_key(rule.per, at, timezone)}"
                if used(name) >= rule.limit:
                    exhausted.append({"rule_id": rule.rule_id, "limit": rule.limit, "per": str(rule.per)})
                    continue
                counters.append(CounterChange(name, 1, at_most=rule.limit))
            shares.append(Share("rule", rule.name, rule.points or 0, rule.rule_id))
        if not shares:
            raise LimitReached(
                f"the member has used every allowance for {activity!r}",
                details={"activity": activity, "limits": exhausted},
            )
        return ActivityEarning(sum(share.points for share in shares), tuple(shares), tuple(counters))

    def all(self) -> builtins.list[EarningRule]:
        """Every rule, past, present and scheduled (one read; callers filter by ``in_force``)."""
        return self._store.list()

    def earning(
        self,
        order: Order,
        at: datetime,
        timezone: str,
        tier: Tier | None = None,
        segments: frozenset[str] = frozenset(),
        *,
        rules: builtins.list[EarningRule] | None = None,
        plan: PlanGrant | None = None,
    ) -> Earning:
        """What ``order`` earns at ``at``: the program's rate and the rules in force then
        (``rules``: every rule, already read; else they are read now)."""
        in_force = [rule for rule in (self._store.list() if rules is None else rules) if rule.in_force(at)]
        return evaluate(order, self._program.get(), in_force, at, timezone, tier, segments, plan=plan)
