"""Model-based test of the ledger: random sequences of operations on the REAL services and
repositories (``PlatformServices.for_tenant_id`` on DynamoDB Local, and on moto, with a clock
the machine moves), each outcome compared with a small reference model
(tests/model/reference.py), and the ledger's invariants checked after every step.

Operations: enrol a member (with a new, reused or no external id), earn (points or an
amount converted by the program; with or without ``pending_days``; for an order reference),
redeem, adjust up or down, reverse an order (in full, in part, by amount, more than was
earned), replay an earlier request with its key (same body: the same entry, replayed;
changed body: idempotency_key_reused; a request that was refused: evaluated afresh), the
same key in the other tenant, an unknown member, a program change (conversion; expiry
policy, default return window, claw-back), advance the clock (by fixed steps, and to just
before, exactly at and just after the next maturity or expiry), run the jobs
(``expire-points``, ``mature-pending``; once, twice in a row, two runs in two threads on
DynamoDB Local, a run that crashes midway and its rerun), two operations interleaved (the
second runs to completion inside the first one's commit: a job or a movement against a job
or a movement), spend exactly everything spendable and one point more, and (optionally) a
movement under an injected DynamoDB fault (transaction conflicts, throttling, timeouts
before and after the commit, a crash after the commit) followed by the client's retry.

Earning rules (tests/model/earning.py models them from the README): each tenant starts with
none, or with some line and order multipliers and order bonuses (some with a campaign cap,
some on weekdays or from a minimum total), a milestone, activity rules (some with an
allowance) and overall earning caps, each in force always, from or until a moment, or for a
while; rules are added and ended mid-run. Order earns (lines with their own discounts, an
order discount, shipping and tax; what the parts add up to, less or more; now, backdated a
day, a week, a month, or to the first or last moment of the tenant's local day), each right
after ``PointsService.preview`` for the member at the same moment (which must say what the
earn records), some refunded in part or in full right away; activities (rewarded or not, the
client's retry with the same key, an allowance used up and one more); the clock moved to
just before, at and just after the tenant's next local day, ISO week and month; order earns
and activities under injected faults.

Rewards and coupons (tests/model/rewards.py): each tenant starts with a reward (a cost, a
stock or none, a per-member limit or none, ever or per local month, coupons valid for some
days or for ever) and gets more mid-run; members redeem them (the client's retry, the same key
for another reward), coupons are cancelled (retried; the key for another coupon) and used at
the till (retried, with another reference), expired or not.

Tiers, paid plans and referrals (tests/model/tiers.py, plans.py, referrals.py): each tenant
starts with a tier program (points, spend or orders; rolling months or calendar years; 0 to 2
grace periods; tier multipliers) or none, and gets new versions mid-run (from now or from
tomorrow; one ends tiers); order earns get the effective tier's and the plan's multiplier
shares; the clock moves to the next tier review and plan end; the ``review-tiers``,
``lapse-subscriptions`` and ``complete-referrals`` jobs run. Plans (one granting gold, one
silver with its own multiplier, one a multiplier; two with a join bonus): paid periods are
recorded (new, renewals, within, after a gap, in the future, ended, a key or a reference
again, the subscription cancelled then the plan anew), subscriptions cancelled and lapsed.
Referrals: members enrol with another's code (or an unknown one), the referee orders (over
the minimum or not; then a refund, or another order), sometimes in a request that dies after
the order's, the referrer's or the referee's write, finished by the job or the client's
retry. Not modelled yet: rules limited to tiers, segments, tier-only rewards, partner earns,
birthday bonuses, pool codes, the commerce order intake.

Invariants read from storage for every member of each tenant touched since its last scan
(every few steps, both tenants every few more, and both at the end of every example): available
+ pending = sum of the ledger, pending = sum of its pending changes, and every entry's
running figures; pending never negative, available never negative unless a claw-back
reversal took it there; available + pending = earned - redeemed + adjusted - expired -
reversed, each lifetime total = the sum of its entries; the ledger entry by entry as the
model predicts it (settlement entries included: each ``mature:<lot>`` and ``expire:<lot>``
at most once, for exactly the points the model says); the stored lots (remaining, expiry,
maturity, which due-index they sit in) and the balance's lot summary; sequences 1..n with n
the balance version; every idempotency key applied at most once and exactly the keys the
model applied; the tenant's totals conserved (sum of balances = what the model moved); each
entry's breakdown sums to its points and is the model's, as are the cap counters it records
moving and the member's order count; no cap and no allowance is ever exceeded in its period:
every counter item is what the ledger says moved it (cap counters: the sum of what the
entries record; allowances: the activity earns rewarded by the rule in that period of their
``occurred_at``), what the model says, never negative, at most the cap it was held to when it
last went up, and an allowance at most its rule's limit. Every coupon stored is the model's
and was paid for by exactly one ``redeem`` of its points; a cancelled one was given back
exactly once (one ``adjust`` of its points), any other never; a reward's stock counter is its
coupons not cancelled, never more than its stock, and a member's limit counter theirs, never
more than the limit. A referral rewards each side at most once and a plan's join bonus is
paid once per member and plan: the ledger's reward and bonus entries are exactly the model's.
Through the services' read path for each member the step touched (all of them after the
clock moves, and at the end of every example): the stored balance, the balance as the member may use it
now (expired points never count, matured ones always do, job or not), and every page of
transactions, every entry exactly as its first response showed it; the member's tier months,
tier held (since, until), plan grant and pending referrer as stored, and the effective tier:
the earned tier as reads show it now (due reviews applied) and the higher of it and a plan's
in force are what the qualifying history and the plans say; the subscriptions listed.

The machine keeps each member under ``LOT_CAP`` lots, so whatever falls due settles in one
transaction with the movement (``SETTLE_LOTS_WITH_MOVEMENT``); settling more lots than that
in chunks is covered by tests/integration/test_quotas.py. Lot-creating requests over the cap
are skipped (counted as ``skipped_lot_cap``).

Extending it: add a rule that builds the request and calls ``self._send`` (or the job),
teach ``TenantModel.expect``/``record`` the new movement, and add its figures to
``_check_storage``'s per-member identities.

Scale: CI runs a fixed number of examples (below); ``LOYALTY_SOAK_STEPS=N`` (``make soak``)
runs batches until at least N steps have run on each backend.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pynamodb.attributes import UTCDateTimeAttribute

from chalicelib.api.presenters import points as presenters
from chalicelib.domain.activities import Activity
from chalicelib.domain.entries import Balance, LedgerEntry
from chalicelib.domain.errors import InvalidRequest, LoyaltyError, MemberExists, TransientStoreError
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy, Period
from chalicelib.domain.jobs import JobName, JobRun, RunStatus
from chalicelib.domain.ledger import SETTLE_LOTS_WITH_MOVEMENT
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementResult, MovementType
from chalicelib.domain.orders import Order
from chalicelib.domain.plans import PeriodRequest, Plan, PlanGrant
from chalicelib.domain.program import Rounding
from chalicelib.domain.referrals import CapPeriod, NewReferralProgram, ReferralCap
from chalicelib.domain.rewards import LimitPeriod, RewardType
from chalicelib.domain.rules import NewRule, Per, RuleKind
from chalicelib.domain.tenants import NewTenant
from chalicelib.domain.tiers import Metric, NewTierProgram, Tier, WindowKind, decode_buckets
from chalicelib.persistence.factory import shared_client
from chalicelib.services import TenantServices, platform, reset_platform
from tests.model.earning import MINOR_UNITS, ORDER_RULES, ModelLine, ModelOrder, ModelRule, Part, activity_counter
from tests.model.plans import (
    ACTIVE,
    ALREADY_RECORDED,
    LAPSED,
    STARTED,
    ModelPlan,
    ModelSubscription,
    PeriodAsked,
    PlanBook,
    Recorded,
)
from tests.model.plans import CANCELLED as SUBSCRIPTION_CANCELLED
from tests.model.reference import (
    BUSY,
    SUCCESS,
    Expected,
    ExpiryRule,
    JobExpectation,
    MemberState,
    TenantModel,
    body_of,
    expected_entry_fields,
    is_settlement_key,
)
from tests.model.referrals import CAPPED, COMPLETED, QUALIFIED, ModelReferral, ModelReferralProgram, finished
from tests.model.rewards import (
    CANCELLED,
    USED,
    Judged,
    ModelCoupon,
    ModelReward,
    RewardBook,
    expect_cancel,
    expect_redeem,
    expect_use,
    issue,
)
from tests.model.stats import STATS, report
from tests.model.tiers import NONE_HELD, Held, ModelTier, ModelTierProgram, review, with_tiers
from tests.support.clocks import MovableClock
from tests.support.faults import Crash, FaultPlan, crash, read_timeout, throttled, transaction_conflict

# --- what the machine draws -------------------------------------------------------------------

#: A reward: its cost (cheap ones are redeemed often, dear ones refused for the balance), its
#: stock, its per-member limit (ever, or per local month) and its coupons' validity in days.
reward_specs = st.tuples(  # the first choices are drawn most in short searches: the tight ones
    st.sampled_from([1, 5, 5, 40, 300]),
    st.sampled_from([1, None, 2, 3]),
    st.sampled_from([1, None, 2]),
    st.booleans(),
    st.sampled_from([1, None, 30]),
)

TENANT_IDS = ("alpha", "beta")
CURRENCIES = ("EUR", "JPY", "KWD")
#: Time zones decide wall-clock expiry and maturity (Helsinki and Lord Howe change the clock).
TIMEZONES = ("UTC", "Europe/Helsinki", "Australia/Lord_Howe")
PER_UNIT = ("1", "2.5", "0.1", "0.0001", "10", "999999.9999")
ROUNDINGS = tuple(str(r) for r in Rounding)
VISIBLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
#: When a movement says it happened, as (how long before the machine's clock, in which zone),
#: at millisecond precision: inside the dating rule's window (31 days back, 5 minutes ahead)
#: and at both of its ends (drawn twice as often), or just beyond them, or long ago. The
#: request keeps the moment, so its replays come later, when it may have left the window.
ACCEPTED_MOMENTS = (
    (timedelta(days=1, milliseconds=1), UTC),
    (timedelta(days=31), timezone(timedelta(hours=2))),
    (-timedelta(minutes=5), timezone(timedelta(hours=-3))),
)
REFUSED_MOMENTS = (
    (timedelta(days=31, milliseconds=1), UTC),
    (-timedelta(minutes=5, milliseconds=1), UTC),
    (timedelta(days=365 * 27), UTC),
)
moments = st.one_of(
    st.sampled_from(ACCEPTED_MOMENTS), st.sampled_from(ACCEPTED_MOMENTS), st.sampled_from(REFUSED_MOMENTS)
)
ACTORS = (None, "key_01JD0000000000000000000001", "key_01JD0000000000000000000002")
#: Where the machine's clock starts: days before Helsinki moves its clocks on, and the end
#: of a month and a quarter.
T0 = datetime(2027, 3, 25, 21, 45, tzinfo=UTC)
#: Lots a member may hold (each due lot may need a maturity and an expiry entry).
LOT_CAP = SETTLE_LOTS_WITH_MOVEMENT // 2

small_points = st.integers(1, 400)
points = st.one_of(small_points, small_points, st.sampled_from([1, 5_000, 99_999_999, 100_000_000]))
amounts = st.builds(
    lambda whole, fraction: f"{whole}{fraction}",
    st.one_of(st.integers(0, 300), st.sampled_from([999_999, 10**11, 999_999_999_999])),
    st.sampled_from(["", "", ".0", ".5", ".05", ".49", ".005", ".125", ".99"]),
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
extras = st.fixed_dictionaries(
    {},
    optional={
        "reference": texts,
        "description": texts,
        "occurred_at": moments,
        "metadata": st.dictionaries(
            st.text(st.sampled_from("abcXYZ09_.:-"), min_size=1, max_size=6), texts, min_size=1, max_size=3
        ),
        "actor_key_id": st.sampled_from(ACTORS),
    },
)
key_suffixes = st.one_of(st.text(VISIBLE_ASCII, max_size=8), st.just("#ENTRY"), st.just("~" * 240))
#: How a debit is sized: as drawn, exactly what the member may spend now, or one more than it.
debit_sizes = st.sampled_from(["drawn", "drawn", "all", "all+1"])
#: What a replay with a changed body changes.
CHANGES = ("points", "reference", "movement", "member", "metadata", "amount", "pending_days")

#: Expiry policies: none, a fixed period in days or months, the end of a calendar period.
EXPIRY_RULES = (
    ExpiryRule(),
    ExpiryRule("days", 1),
    ExpiryRule("days", 3),
    ExpiryRule("days", 10),
    ExpiryRule("months", 1),
    ExpiryRule("end_of_period", 0, "month"),
    ExpiryRule("end_of_period", 0, "quarter"),
    ExpiryRule("end_of_period", 1, "year"),
)
#: (expiry policy, default return window in days, claw-back)
lifecycles = st.tuples(st.sampled_from(EXPIRY_RULES), st.sampled_from([0, 0, 1, 3]), st.booleans())
#: An earn's own return window: None takes the program's default.
pending_choices = st.sampled_from([None, None, 0, 1, 2, 5])
ORDERS = ("order-1", "order-2", "order-3")
CLOCK_STEPS = {
    "1us": timedelta(microseconds=1),
    "1s": timedelta(seconds=1),
    "1h": timedelta(hours=1),
    "23h": timedelta(hours=23),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "10d": timedelta(days=10),
    "45d": timedelta(days=45),
    "400d": timedelta(days=400),
}
#: Moves to the next maturity or expiry of any lot: just before it, exactly at it, just after.
DUE_STEPS = {
    "before next due": -timedelta(microseconds=1),
    "at next due": timedelta(0),
    "after next due": timedelta(seconds=1),
}
ADVANCES = (*CLOCK_STEPS, *DUE_STEPS, "at next due")
JOBS = (str(JobName.EXPIRE_POINTS), str(JobName.MATURE_PENDING))
#: What two interleaved operations may be: a job run now, or a movement of the member.
OVERLAPPING = (*JOBS, "redeem", "earn")

# --- earning rules, orders, activities --------------------------------------------------------

PERS = ("day", "week", "month", "year", "ever")
#: Each SKU's category (a mug has none).
CATALOGUE = {"latte": "coffee", "cake": "bakery", "mug": None}
#: Two rewarded by the rules the machine draws more often than not; one never rewarded.
ACTIVITIES = ("review", "custom:quiz", "social_follow")
#: Rule windows relative to the moment the rule is created: (starts in, ends in).
WINDOWS = (
    (None, None),
    (None, None),
    (None, None),
    (timedelta(days=-1), None),
    (None, timedelta(days=2)),
    (timedelta(days=1), timedelta(days=8)),
    (timedelta(hours=-3), timedelta(hours=20)),
)


@dataclass(frozen=True)
class RuleSpec:
    """An earning rule as the machine creates it (``NewRule``'s fields, windows relative)."""

    kind: str
    window: tuple[timedelta | None, timedelta | None] = (None, None)
    factor: str | None = None
    points: int | None = None
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    weekdays: tuple[str, ...] = ()
    min_order_total: int | None = None
    every: int | None = None
    at: int | None = None
    activity: str | None = None
    limit: int | None = None
    per: str | None = None
    cap: int | None = None


@st.composite
def order_rule_specs(draw: st.DrawFn) -> RuleSpec:
    """A line or order multiplier or an order bonus, sometimes with a campaign cap."""
    kind = draw(st.sampled_from(ORDER_RULES))
    window = draw(st.sampled_from(WINDOWS))
    campaign = draw(st.sampled_from([None, None, (25, "day"), (150, "week"), (2_000, "month"), (40, "ever")]))
    cap, per = campaign if campaign else (None, None)
    if kind == "line_multiplier":
        skus, categories = draw(st.sampled_from([(("latte",), ()), ((), ("coffee",)), (("mug",), ("bakery",))]))
        factor = draw(st.sampled_from(["2", "1.5", "3"]))
        return RuleSpec(kind, window, factor=factor, skus=skus, categories=categories, cap=cap, per=per)
    if kind == "order_multiplier":
        days = draw(st.sampled_from([(), (), ("sat", "sun"), ("mon", "tue", "wed", "thu", "fri")]))
        return RuleSpec(kind, window, factor=draw(st.sampled_from(["2", "1.25"])), weekdays=days, cap=cap, per=per)
    minimum = draw(st.sampled_from([None, 10, 100]))
    bonus = draw(st.sampled_from([5, 50, 500]))
    return RuleSpec(kind, window, points=bonus, min_order_total=minimum, cap=cap, per=per)


@st.composite
def milestone_specs(draw: st.DrawFn) -> RuleSpec:
    which, number = draw(st.sampled_from([("at", 1), ("at", 2), ("every", 2), ("every", 3)]))
    bonus = draw(st.sampled_from([10, 100]))
    window = draw(st.sampled_from(WINDOWS))
    if which == "at":
        return RuleSpec("milestone", window, points=bonus, at=number)
    return RuleSpec("milestone", window, points=bonus, every=number)


@st.composite
def activity_specs(draw: st.DrawFn) -> RuleSpec:
    allowance = draw(st.sampled_from([(1, "day"), None, (2, "day"), (1, "week"), (3, "month"), (2, "ever")]))
    limit, per = allowance if allowance else (None, None)
    activity = draw(st.sampled_from(ACTIVITIES[:2]))
    window = draw(st.sampled_from(WINDOWS))
    return RuleSpec("activity", window, points=draw(st.sampled_from([5, 25])), activity=activity, limit=limit, per=per)


@st.composite
def cap_specs(draw: st.DrawFn) -> RuleSpec:
    window = draw(st.sampled_from(WINDOWS))
    cap = draw(st.sampled_from([30, 200, 1_000, 50_000]))
    return RuleSpec("earning_cap", window, cap=cap, per=draw(st.sampled_from(PERS)))


rule_specs = st.one_of(order_rule_specs(), milestone_specs(), activity_specs(), cap_specs())


def _joined(*groups: list[RuleSpec]) -> tuple[RuleSpec, ...]:
    return tuple(spec for group in groups for spec in group)


_some_rules = st.builds(
    _joined,
    st.lists(order_rule_specs(), max_size=3),
    st.lists(milestone_specs(), max_size=1),
    st.lists(activity_specs(), min_size=1, max_size=2),
    st.lists(cap_specs(), max_size=2),
)
_every_kind = st.builds(
    _joined,
    st.lists(order_rule_specs(), min_size=1, max_size=3),
    st.lists(milestone_specs(), min_size=1, max_size=2),
    st.lists(activity_specs(), min_size=1, max_size=2),
    st.lists(cap_specs(), min_size=1, max_size=2),
)
#: A tenant's rules at set-up, each a third of the time: rules of every kind (first: the
#: simplest examples Hypothesis draws have them), some order rules, a milestone, activity rules
#: and caps, or none (the core movements alone).
rule_sets = st.one_of(_every_kind, _some_rules, st.just(()))


@dataclass(frozen=True)
class LineSpec:
    sku: str
    quantity: int
    #: Minor units of the tenant's currency.
    price: int
    #: Minor units (at most the line), or "all" (the whole line).
    discount: int | str = 0


@dataclass(frozen=True)
class OrderSpec:
    """An order in minor units, made concrete in the tenant's currency when it is sent."""

    order_id: str
    lines: tuple[LineSpec, ...]
    #: The order's own discount: minor units (at most what the lines cost), or "all".
    discount: int | str = 0
    shipping: int = 0
    tax: int = 0
    #: The total: what the parts add up to ("exact"), less (a discount the shop did not
    #: itemise), more, or the shipping and tax and one minor unit of goods ("tiny").
    total: str = "exact"
    #: A part that cannot be what was paid (400): a line's discount over the line, the
    #: order's over the lines, shipping and tax over the total.
    broken: str | None = None


order_specs = st.builds(
    OrderSpec,
    order_id=st.sampled_from([*ORDERS, "order-9"]),
    lines=st.lists(
        st.builds(
            LineSpec,
            sku=st.sampled_from(sorted(CATALOGUE)),
            quantity=st.integers(1, 3),
            price=st.sampled_from([1, 99, 350, 1_800, 12_000]),
            discount=st.sampled_from([0, 0, 0, 50, "all"]),
        ),
        max_size=3,
    ).map(tuple),
    discount=st.sampled_from([0, 0, 0, 100, "all"]),
    shipping=st.sampled_from([0, 0, 490]),
    tax=st.sampled_from([0, 0, 100]),
    total=st.sampled_from(["exact", "exact", "exact", "less", "more", "tiny"]),
    broken=st.sampled_from([None] * 9 + ["line discount", "order discount", "shipping"]),
)
#: When an earn or activity happened: now, or backdated into another day, week or month, or
#: to the first or last moment of the tenant's local day (where its day, week, month and year
#: part from UTC's).
OCCURRED = ("now", "now", "1 day ago", "8 days ago", "30 days ago", "local midnight", "just before local midnight")
#: Where the clock may move: a period's local boundary, just before it, at it or just after.
BOUNDARY_SIDES = {"before": -timedelta(microseconds=1), "at": timedelta(0), "after": timedelta(seconds=1)}


def _half(amount: Decimal, currency: str) -> str:
    """Half of ``amount``, rounded down to the currency's minor unit (at least one)."""
    unit = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return format(max((amount / 2).quantize(unit, rounding=ROUND_FLOOR), unit), "f")


def _money(units: int, currency: str) -> str:
    return format(Decimal(units).scaleb(-MINOR_UNITS[currency]), "f")


def _concrete_order(
    spec: OrderSpec, currency: str
) -> tuple[str, list[tuple[str, str | None, int, str, str | None]], dict[str, str | None]]:
    """The order's total, lines and other parts as the API's decimal strings."""
    lines = []
    nets = 0
    for index, line in enumerate(spec.lines):
        amount = line.price * line.quantity
        off = amount if line.discount == "all" else min(int(line.discount), amount)
        if spec.broken == "line discount" and index == 0:
            off = amount + 1
        nets += max(amount - off, 0)
        price, discount = _money(line.price, currency), _money(off, currency) if off else None
        lines.append((line.sku, CATALOGUE[line.sku], line.quantity, price, discount))
    discount = nets if spec.discount == "all" else min(int(spec.discount), nets)
    if spec.broken == "order discount":
        discount = nets + 1
    goods = max(nets - discount, 0) if spec.lines else 1_000
    extras = spec.shipping + spec.tax
    total = {
        "exact": goods + extras,
        "less": goods + extras - min(37, max(goods - 1, 0)),
        "more": goods + extras + 250,
        "tiny": extras + 1,
    }[spec.total]
    if spec.broken == "shipping" or (spec.broken and not spec.lines):
        total = extras - 1 if extras else 0
    parts = {
        "discount": _money(discount, currency) if discount else None,
        "shipping": _money(spec.shipping, currency) if spec.shipping else None,
        "tax": _money(spec.tax, currency) if spec.tax else None,
    }
    return (_money(total, currency) if total > 0 else str(total)), lines, parts


def _next_boundary(now: datetime, zone: str, per: str) -> datetime:
    """The start of the next local day, ISO week or month after ``now``, as a UTC instant."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    day = local.date()
    if per == "day":
        start = day + timedelta(days=1)
    elif per == "week":
        start = day + timedelta(days=7 - day.weekday())
    else:
        start = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime(start.year, start.month, start.day, tzinfo=tz).astimezone(UTC)


def _policy(rule: ExpiryRule) -> ExpiryPolicy:
    if rule.kind == "days":
        return ExpiryPolicy(ExpiryKind.FIXED_PERIOD, days=rule.count)
    if rule.kind == "months":
        return ExpiryPolicy(ExpiryKind.FIXED_PERIOD, months=rule.count)
    if rule.kind == "end_of_period":
        assert rule.period is not None
        return ExpiryPolicy(ExpiryKind.END_OF_PERIOD, period=Period(rule.period), periods_after=rule.count)
    return ExpiryPolicy()


@dataclass(frozen=True)
class Fault:
    name: str
    operation: str
    make: Callable[[str], BaseException]
    after: bool = False
    #: None: on every call (outlasts the service's retries).
    times: int | None = 1

    def install(self, plan: FaultPlan, times: int) -> None:
        plan.fail(self.operation, self.make, times=None if self.times is None else times, after=self.after)

    @property
    def exhausts(self) -> bool:
        return self.times is None


FAULTS = (
    Fault("transaction conflicts", "TransactWriteItems", transaction_conflict, times=1),
    Fault("conflicts outlasting the retries", "TransactWriteItems", transaction_conflict, times=None),
    Fault("throttled write", "TransactWriteItems", throttled, times=1),
    Fault("throttled reads", "GetItem", throttled, times=1),
    Fault("timeout before the write reached the table", "TransactWriteItems", read_timeout),
    Fault("timeout after the write committed", "TransactWriteItems", read_timeout, after=True),
    Fault("crash after the write committed", "TransactWriteItems", crash, after=True),
)


# --- tiers, paid plans, referrals -------------------------------------------------------------

#: Tier programs: (metric, window, months, grace periods, tiers as (name, threshold,
#: multiplier)), with thresholds a few earns reach; the last one ends tiers.
TIER_PROGRAMS = (
    ("points", "rolling_months", 1, 1, (("silver", "50", "1"), ("gold", "300", "2"))),
    ("orders", "rolling_months", 2, 0, (("silver", "1", "1.5"), ("gold", "3", "1"))),
    ("spend", "calendar_year", None, 1, (("silver", "20", "1"), ("gold", "150.5", "1.5"))),
    ("points", "rolling_months", 3, 2, (("bronze", "10", "1"), ("silver", "200", "1.5"), ("gold", "1000", "3"))),
    ("points", "calendar_year", None, 2, (("gold", "100", "1.25"),)),
    ("points", "rolling_months", 1, 0, ()),
)
#: Plans: (plan id, the tier it grants if the tier program in force has it, multiplier, join bonus).
PLAN_SPECS = (("premium", "gold", "1", 100), ("plus", "silver", "1.5", 0), ("boost", None, "2", 25))
#: Referral programs: (enabled, referrer points, referee points, minimum order total, cap,
#: referee rewarded when capped).
REFERRAL_PROGRAMS = (
    (True, 50, 20, None, (1, "month"), True),
    (True, 100, 0, "10", None, True),
    (True, 30, 30, None, (2, "ever"), False),
    (False, 10, 10, None, None, True),
)
#: A tenant's tier program (an index of TIER_PROGRAMS, or none), whether it sells plans, and its
#: referral program (an index of REFERRAL_PROGRAMS, or none): most tenants have all three.
memberships = st.tuples(
    st.sampled_from([0, 1, 2, 3, 4, None]),
    st.sampled_from([True, True, False]),
    st.sampled_from([0, 1, 2, 3, None]),
)
#: How a paid period is recorded: a new subscription, a renewal touching the member's latest
#: one, a period within it, after a gap, starting tomorrow, already ended; the same key again
#: (same body, another period), the same reference under a new key (same period, another);
#: the member's subscription cancelled, then the same plan anew (no second join bonus).
PERIODS = (
    "new",
    "cancel, then new",
    "renew",
    "renew",
    "within",
    "after a gap",
    "tomorrow",
    "ended",
    "key again",
    "key again, another period",
    "reference again",
    "reference again, another period",
)
PROGRAM_JOBS = ("review-tiers", "lapse-subscriptions", "complete-referrals")


# --- the machine ------------------------------------------------------------------------------


@dataclass
class Tenant:
    index: int
    tenant_id: str
    table: str
    services: TenantServices
    model: TenantModel
    rewards: RewardBook = field(default_factory=RewardBook)
    plans: PlanBook = field(default_factory=PlanBook)


@dataclass(frozen=True)
class Sent:
    """A movement or an activity as sent, kept for replays."""

    tenant: int
    request: MovementRequest | None
    activity: Activity | None = None


@dataclass(frozen=True)
class Outcome:
    code: str
    result: MovementResult | None = None
    error: BaseException | None = None


@dataclass
class _Context:
    backend: str = "?"
    #: Rules with real threads (overlapping job runs) may run; the planted-bug test turns them
    #: off so that its derandomized search is the same whatever the machine's load.
    threads: bool = True
    #: Failures are reported with the model's view of the tenants.
    notes: list[str] = field(default_factory=list)
    #: Steps the current example has run (the planted-bug test reports where it failed).
    steps: int = 0


CONTEXT = _Context()

#: Storage is scanned every SCAN_EVERY steps (the tenants touched since their last scan), both
#: tenants every SWEEP_EVERY steps, and both again at the end of every example.
SCAN_EVERY, SWEEP_EVERY = 5, 10


class LedgerMachine(RuleBasedStateMachine):
    members = Bundle("members")  # (tenant index, member id)
    sent = Bundle("sent")  # Sent

    def __init__(self) -> None:
        super().__init__()
        self.backend = CONTEXT.backend
        self.tenants: list[Tenant] = []
        self.touched: set[tuple[int, str]] = set()
        #: Tenants touched since their table was last scanned.
        self.unscanned: set[int] = set()
        #: The last step and its checks passed (teardown then checks everything once more).
        self.verified = False
        self.keys_made = 0
        self.ghosts = 0
        self.program_changes = 0
        self.lifecycle_changes = 0
        self.rule_changes = 0
        self.reward_changes = 0
        self.tier_changes = 0
        #: Keys sent to redeem, cancel and use, kept for their retries: (tenant, key, member or
        #: code, reward or reference).
        self.redemptions: list[tuple[int, str, str, str]] = []
        self.cancellations: list[tuple[int, str, str]] = []
        self.uses: list[tuple[int, str, str, str | None]] = []
        self.steps = 0
        self.page_size = 3
        self.transaction_ids: set[str] = set()
        self.clock = MovableClock(T0)
        self._tables: list[str] = []
        self._client: Any = None
        STATS.examples[self.backend] += 1
        # A fresh stage for every example: its own control table and tenant tables.
        os.environ["LOYALTY_TABLE_PREFIX"] = f"m{uuid.uuid4().hex[:12]}"
        reset_platform()
        services = platform()
        services.provisioner.ensure_control_table()
        self._platform = services
        self._client = shared_client(services.connection)
        self._tables.append(services.settings.control_table_name)
        #: Real threads only where the emulator serialises writes per item (README: moto's
        #: in-process mock does not).
        self.threads = CONTEXT.threads and bool(services.settings.dynamodb_endpoint)

    # --- set-up --------------------------------------------------------------------------------

    @initialize(
        target=members,
        currencies=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2),
        zones=st.lists(st.sampled_from(TIMEZONES), min_size=2, max_size=2),
        programs=st.lists(st.tuples(st.sampled_from(PER_UNIT), st.sampled_from(ROUNDINGS)), min_size=2, max_size=2),
        lifecycle=st.lists(lifecycles, min_size=2, max_size=2),
        page_size=st.integers(1, 9),
        rules=st.lists(rule_sets, min_size=2, max_size=2),
        earning_extras=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=2),
        rewards=st.lists(reward_specs, min_size=2, max_size=2),
        programs_of_members=st.lists(memberships, min_size=2, max_size=2),
    )
    def create_tenants(
        self,
        currencies: list[str],
        zones: list[str],
        programs: list[tuple[str, str]],
        lifecycle: list[tuple[ExpiryRule, int, bool]],
        page_size: int,
        rules: list[tuple[RuleSpec, ...]],
        earning_extras: list[tuple[bool, bool]],
        rewards: list[tuple[int, int | None, int | None, bool, int | None]],
        programs_of_members: list[tuple[int | None, bool, int | None]],
    ) -> Any:
        """Two brands, each with its currency, time zone, program, earning rules, a reward, a
        tier program, plans and a referral program (or not), and a first member."""
        self.page_size = page_size
        first_members = []
        for index, tenant_id in enumerate(TENANT_IDS):
            created = self._platform.tenants.create(
                NewTenant(tenant_id=tenant_id, name=tenant_id, currency=currencies[index], timezone=zones[index])
            )
            table = self._platform.settings.tenant_table_name(tenant_id)
            self._tables.append(table)
            services = self._tenant_services(tenant_id, zones[index])
            model = TenantModel(tenant_id, created.tenant.currency, created.tenant.timezone)
            per_unit, rounding = programs[index]
            model.per_unit, model.rounding = Decimal(per_unit), rounding
            model.expiry, model.pending_days, model.clawback = lifecycle[index]
            model.earn_on_shipping, model.earn_on_tax = earning_extras[index]
            tenant = Tenant(index, tenant_id, table, services, model)
            self.tenants.append(tenant)
            self._write_program(tenant)
            for spec in rules[index]:
                self._add_rule(tenant, spec)
            self._add_reward(tenant, rewards[index])
            tiers, plans, referrals = programs_of_members[index]
            if tiers is not None:
                self._configure_tiers(tenant, tiers, self.clock.now)
            if plans:
                self._configure_plans(tenant)
            if referrals is not None:
                self._configure_referrals(tenant, referrals)
            member = services.members.enrol(NewMember())
            model.enrol(member.member_id, None)
            first_members.append((index, member.member_id))
        return multiple(*first_members)

    def _tenant_services(self, tenant_id: str, zone: str) -> TenantServices:
        build = self._platform.for_tenant_id
        extra = {"timezone": zone} if "timezone" in inspect.signature(build).parameters else {}
        return build(tenant_id, clock=self.clock, **extra)

    def teardown(self) -> None:
        """The example's last check of everything (unless a step or its check already failed),
        then its tables go."""
        try:
            if self.verified:
                self._check_everything()
        finally:
            self._drop_tables()

    def _drop_tables(self) -> None:
        for table in self._tables:
            try:
                self._client.delete_table(TableName=table)
            except Exception:  # noqa: S110  best effort: the emulator dies with the session anyway
                pass

    # --- members -------------------------------------------------------------------------------

    @rule(target=members, tenant=st.sampled_from([0, 1]), external=st.sampled_from(["none", "new", "taken"]))
    def enrol(self, tenant: int, external: str) -> Any:
        self._step("enrol")
        t = self.tenants[tenant]
        taken = sorted(t.model.external_ids)
        if external == "taken" and taken:
            external_id = taken[self.steps % len(taken)]
        elif external == "none":
            external_id = None
        else:
            external_id = f"ext-{self._fresh()}"
        try:
            member = t.services.members.enrol(NewMember(external_id=external_id))
        except MemberExists as exists:
            assert external_id in t.model.external_ids, f"member_exists for a free external id {external_id!r}"
            assert exists.details["member_id"] == t.model.external_ids[external_id], exists.details
            self._outcome(exists.code)
            return multiple()
        assert external_id not in t.model.external_ids, f"external id {external_id!r} enrolled twice"
        assert member.member_id not in t.model.members
        t.model.enrol(member.member_id, external_id)
        self._outcome(SUCCESS)
        self.touched.add((tenant, member.member_id))
        return (tenant, member.member_id)

    # --- movements -----------------------------------------------------------------------------

    @rule(target=sent, member=members, size=points, more=extras, suffix=key_suffixes)
    def earn_points(self, member: tuple[int, str], size: int, more: dict[str, Any], suffix: str) -> Sent:
        self._step("earn_points")
        return self._send_new(member, MovementType.EARN, suffix, more, points=size)

    @rule(target=sent, member=members, amount=amounts, more=extras, suffix=key_suffixes)
    def earn_amount(self, member: tuple[int, str], amount: str, more: dict[str, Any], suffix: str) -> Sent:
        self._step("earn_amount")
        return self._send_new(member, MovementType.EARN, suffix, more, amount=amount)

    @rule(target=sent, member=members, size=points, how=debit_sizes, more=extras, suffix=key_suffixes)
    def redeem(self, member: tuple[int, str], size: int, how: str, more: dict[str, Any], suffix: str) -> Sent:
        self._step("redeem")
        return self._send_new(member, MovementType.REDEEM, suffix, more, points=self._debit(member, size, how))

    @rule(
        target=sent,
        member=members,
        size=points,
        how=st.sampled_from(["up", "drawn", "all", "all+1"]),
        reason=texts,
        more=extras,
        suffix=key_suffixes,
    )
    def adjust(
        self, member: tuple[int, str], size: int, how: str, reason: str, more: dict[str, Any], suffix: str
    ) -> Sent:
        self._step("adjust")
        signed = size if how == "up" else -self._debit(member, size, how)
        return self._send_new(member, MovementType.ADJUST, suffix, {**more, "reason": reason}, points=signed)

    @precondition(lambda self: self.ghosts < 2)
    @rule(target=sent, tenant=st.sampled_from([0, 1]), size=small_points, suffix=key_suffixes)
    def earn_for_unknown_member(self, tenant: int, size: int, suffix: str) -> Sent:
        """A well-formed member id that was never enrolled: not_found, nothing written."""
        self._step("earn_for_unknown_member")
        self.ghosts += 1
        ghost = f"mem_01JD{self.ghosts:022d}"
        return self._send_new((tenant, ghost), MovementType.EARN, suffix, {}, points=size)

    # --- points lifecycle ----------------------------------------------------------------------

    @rule(
        target=sent,
        member=members,
        size=small_points,
        amount=st.none() | amounts,
        order=st.sampled_from(ORDERS),
        pending_days=pending_choices,
        suffix=key_suffixes,
    )
    def earn_for_order(
        self, member: tuple[int, str], size: int, amount: str | None, order: str, pending_days: int | None, suffix: str
    ) -> Sent:
        """An order's points, pending for its own return window, the program's, or none."""
        self._step("earn_for_order")
        how: dict[str, Any] = {"amount": amount} if amount is not None else {"points": size}
        return self._send_new(
            member, MovementType.EARN, suffix, {"reference": order, "pending_days": pending_days}, **how
        )

    @rule(
        target=sent,
        member=members,
        reference=st.sampled_from([*ORDERS, "earned", "earned", "earned", "never earned"]),
        size=small_points,
        how=st.sampled_from(["part", "part", "rest", "rest", "rest+1", "amount", "drawn"]),
        amount=amounts,
        suffix=key_suffixes,
    )
    def reverse(self, member: tuple[int, str], reference: str, size: int, how: str, amount: str, suffix: str) -> Sent:
        """A refund: all that is left of the order, part of it (points or an amount), or more."""
        self._step("reverse")
        model = self.tenants[member[0]].model
        state = model.members.get(member[1]) or MemberState(member[1])
        if reference == "earned":  # an order with points left to reverse, of this member or another
            for candidate in (state, *(s for s in model.members.values() if s.member_id != member[1])):
                orders = {e.reference for e in candidate.ledger if e.movement is MovementType.EARN and e.reference}
                open_orders = sorted(ref for ref in orders if _left_to_reverse(model, candidate, ref) > 0)
                if open_orders:
                    member, state = (member[0], candidate.member_id), candidate
                    reference = open_orders[self.steps % len(open_orders)]
                    break
            else:
                reference = ORDERS[0]
        elif reference == "never earned":
            reference = f"order-{self._fresh()}"
        rest = _left_to_reverse(model, state, reference)
        sized: dict[str, Any] = {"points": size}
        if how == "part":
            sized = {"points": size % max(rest, 1) or 1}
        elif how == "rest":
            sized = {"points": max(rest, 1)}
        elif how == "rest+1":
            sized = {"points": max(rest, 0) + 1}
        elif how == "amount":
            sized = {"amount": amount}
        return self._send_new(member, MovementType.REVERSE, suffix, {"reference": reference}, **sized)

    def _refunded_orders(self) -> list[tuple[int, str, str]]:
        """(tenant, member, order) of every order the model has seen refunded."""
        return sorted(
            (index, state.member_id, entry.reference)
            for index, tenant in enumerate(self.tenants)
            for state in tenant.model.members.values()
            for entry in state.ledger
            if entry.movement is MovementType.REVERSE and entry.reference
        )

    @precondition(lambda self: bool(self._refunded_orders()))
    @rule(target=sent, pick=st.integers(0, 1_000), beyond=st.booleans(), suffix=key_suffixes)
    def refund_again(self, pick: int, beyond: bool, suffix: str) -> Sent:
        """A second refund of an order refunded before: what is left of it, or one point more
        (the bound must count the earlier refunds)."""
        self._step("refund_again")
        refunded = self._refunded_orders()
        tenant, member_id, order = refunded[pick % len(refunded)]
        state = self.tenants[tenant].model.members[member_id]
        rest = max(_left_to_reverse(self.tenants[tenant].model, state, order), 0)
        points = rest + 1 if beyond or rest == 0 else rest
        return self._send_new((tenant, member_id), MovementType.REVERSE, suffix, {"reference": order}, points=points)

    @rule(member=members, suffix=key_suffixes)
    def spend_everything_spendable(self, member: tuple[int, str], suffix: str) -> None:
        """No point is spendable after its expiry or before its maturity: one more than the
        model says is spendable now is refused, exactly that much is not."""
        self._step("spend_everything_spendable")
        t = self.tenants[member[0]]
        spendable = t.model.members[member[1]].effective(self.clock.now).available
        assert t.services.points.view(member[1]).available == spendable, "the balance shows another spendable amount"
        self._send(t, self._request(member, MovementType.REDEEM, suffix, {}, points=max(spendable, 0) + 1))
        if spendable > 0:
            self._send(t, self._request(member, MovementType.REDEEM, suffix, {}, points=spendable))

    @precondition(lambda self: self.lifecycle_changes < 4)
    @rule(tenant=st.sampled_from([0, 1]), lifecycle=lifecycles)
    def change_lifecycle(self, tenant: int, lifecycle: tuple[ExpiryRule, int, bool]) -> None:
        """Later credits get the new expiry and return window; reversals follow the new claw-back."""
        self._step("change_lifecycle")
        self.lifecycle_changes += 1
        t = self.tenants[tenant]
        t.model.expiry, t.model.pending_days, t.model.clawback = lifecycle
        self._write_program(t)

    @rule(how=st.sampled_from(ADVANCES))
    def advance_clock(self, how: str) -> None:
        self._step("advance_clock")
        now = self.clock.now
        if how in CLOCK_STEPS:
            self.clock.now = now + CLOCK_STEPS[how]
        else:
            due = [
                moment
                for tenant in self.tenants
                for state in tenant.model.members.values()
                for moment in (
                    *state.effective(now).due_moments(),
                    state.held.expires_at,
                    state.grant.ends_at if state.grant else None,
                )
                if moment is not None and moment > now
            ]
            target = min(due) + DUE_STEPS[how] if due else now + timedelta(days=1)
            self.clock.now = max(target, now + timedelta(microseconds=1))
        STATS.lifecycle[self.backend]["clock moves"] += 1
        self.touched.update((t.index, m) for t in self.tenants for m in t.model.members)

    @rule(
        tenant=st.sampled_from([0, 1]),
        job=st.sampled_from(JOBS),
        when=st.sampled_from(["now", "now", "earlier"]),
        again=st.booleans(),
    )
    def run_job(self, tenant: int, job: str, when: str, again: bool) -> None:
        """A job now (or a backfill as of two days ago); run again, it finds nothing to do."""
        self._step("run_job")
        t = self.tenants[tenant]
        as_of = self.clock.now - (timedelta(days=2) if when == "earlier" else timedelta(0))
        self._run_job(t, job, as_of)
        if again:
            rerun = self._run_job(t, job, as_of)
            assert not any(rerun.counts.values()), f"a second run as of the same moment did work: {rerun.counts}"

    @precondition(lambda self: self.threads)
    @rule(tenant=st.sampled_from([0, 1]), jobs=st.sampled_from([(j, j) for j in JOBS]))
    def overlapping_job_runs(self, tenant: int, jobs: tuple[str, str]) -> None:
        """Two runs at once, in two threads: together they do the work of one, nothing twice."""
        self._step("overlapping_job_runs")
        t = self.tenants[tenant]
        as_of = self.clock.now
        runs: list[JobRun] = []
        errors: list[BaseException] = []
        start = threading.Barrier(len(jobs))

        def run(job: str) -> None:
            try:
                start.wait()
                runs.append(t.services.jobs.run(JobName(job), as_of))
            except BaseException as error:  # reported below, in the machine's thread
                errors.append(error)

        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, f"an overlapping run failed: {errors!r}"
        expected = t.model.expect_job(jobs[0], as_of)
        together = {name: sum(run.counts.get(name, 0) for run in runs) for name in {*expected.counts, *runs[0].counts}}
        self._check_counts(together, expected, "two overlapping runs")
        self._apply_job(t, expected)

    @rule(
        member=members,
        first=st.sampled_from(OVERLAPPING),
        second=st.sampled_from(OVERLAPPING),
        size=small_points,
        suffix=key_suffixes,
    )
    def interleaved_operations(self, member: tuple[int, str], first: str, second: str, size: int, suffix: str) -> None:
        """The second operation runs to completion inside the first one's commit (which then
        finds the balance moved, re-reads and retries): the result is the model's second-then-
        first; if the first never commits, first-then-second."""
        self._step("interleaved_operations")
        t = self.tenants[member[0]]
        if len(t.model.members[member[1]].lots) >= LOT_CAP - 2:
            self._outcome("skipped_lot_cap")
            return
        outer, would_commit = self._operation(t, member, first, size, suffix)
        inner, _ = self._operation(t, member, second, size, suffix)
        ledger = t.services.points._ledger
        original = ledger.commit
        fired: list[bool] = []

        def commit(*args: Any, **kwargs: Any) -> Any:
            if not fired:
                fired.append(True)
                inner()
            return original(*args, **kwargs)

        committing = would_commit()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ledger, "commit", commit)
            outer()
        if not fired:
            inner()
        assert bool(fired) == committing, f"{first} {'did not commit' if committing else 'committed'}"
        STATS.lifecycle[self.backend]["interleavings"] += 1

    @rule(tenant=st.sampled_from([0, 1]), job=st.sampled_from(JOBS))
    def job_crashes_midway_then_reruns(self, tenant: int, job: str) -> None:
        """The function dies right after its first member's settlement committed; the rerun
        does the rest, and nothing twice."""
        self._step("job_crashes_midway_then_reruns")
        t = self.tenants[tenant]
        as_of = self.clock.now
        expected = t.model.expect_job(job, as_of)
        plan = FaultPlan()
        plan.fail("TransactWriteItems", crash, times=1, after=True)
        first: JobRun | None = None
        with pytest.MonkeyPatch.context() as patch:
            plan.install(patch)
            try:
                first = t.services.jobs.run(JobName(job), as_of)
            except Crash:
                pass
        if first is not None:
            assert not expected.after, "the job committed nothing although work was due"
            self._check_counts(first.counts, expected, "a run with nothing to do")
            return
        assert expected.after, "the job committed although nothing was due"
        rerun = t.services.jobs.run(JobName(job), as_of)
        assert rerun.status is RunStatus.SUCCEEDED
        leftovers = [
            {name: count - expected.by_member[done].get(name, 0) for name, count in expected.counts.items()}
            for done in expected.after
        ]
        modelled = {name: rerun.counts.get(name, 0) for name in expected.counts}
        assert modelled in leftovers, f"the rerun did {rerun.counts}; the model expected one of {leftovers}"
        self._apply_job(t, expected)
        STATS.lifecycle[self.backend]["crashed runs finished"] += 1

    # --- earning rules, orders, activities ------------------------------------------------------

    @rule(
        target=sent,
        member=members,
        specs=st.lists(order_specs, min_size=1, max_size=3),
        when=st.sampled_from(OCCURRED),
        pending_days=pending_choices,
        suffix=key_suffixes,
    )
    def earn_for_orders(
        self, member: tuple[int, str], specs: list[OrderSpec], when: str, pending_days: int | None, suffix: str
    ) -> Any:
        """Order earns, one after the other: the program's rate on what was paid and the rules
        in force when the order happened, the milestone of the member's next order, the caps.
        Right before each, the preview for the member at the same moment says what it records."""
        self._step("earn_for_orders")
        t = self.tenants[member[0]]
        occurred_at = self._occurred(t, when)
        sent = []
        for spec in specs:
            order = self._order(t, spec)
            if order is None:
                continue
            request = self._request(member, MovementType.EARN, suffix, {"pending_days": pending_days}, order=order)
            request = _with(request, occurred_at=occurred_at)
            self._check_preview(t, request)
            self._send(t, request)
            sent.append(Sent(member[0], request))
        return multiple(*sent)

    @rule(
        target=sent,
        member=members,
        which=st.sampled_from(["rewarded", "rewarded", "rewarded", *ACTIVITIES]),
        reference=st.sampled_from([None, None, "act-1"]),
        when=st.sampled_from(OCCURRED),
        times=st.integers(1, 3),
        retry=st.booleans(),
        suffix=key_suffixes,
    )
    def record_activities(
        self,
        member: tuple[int, str],
        which: str,
        reference: str | None,
        when: str,
        times: int,
        retry: bool,
        suffix: str,
    ) -> Any:
        """Activities of one type ("rewarded": one an activity rule of the tenant names), each
        under the activity rules and their allowances; maybe each followed by the client's
        retry with the same key (a replay, even when it used the last allowance)."""
        self._step("record_activities")
        t = self.tenants[member[0]]
        named = sorted({rule.activity for rule in t.model.rules if rule.activity})
        activity = which if which != "rewarded" else named[self.steps % len(named)] if named else ACTIVITIES[0]
        occurred_at = self._occurred(t, when)
        sent = []
        for _ in range(times):
            done = Activity(
                member_id=member[1],
                type=activity,
                idempotency_key=f"{self._fresh()}{suffix}",
                reference=reference,
                occurred_at=occurred_at,
                timezone=t.model.timezone,
            )
            self._send_activity(t, done)
            if retry:
                self._send_activity(t, done)
            sent.append(Sent(member[0], None, done))
        return multiple(*sent)

    def _earned_orders(self) -> list[tuple[int, str, str]]:
        """(tenant, member, order id) of every order earn with points left to take back."""
        return sorted(
            {
                (index, state.member_id, entry.reference)
                for index, tenant in enumerate(self.tenants)
                for state in tenant.model.members.values()
                for entry in state.ledger
                if entry.movement is MovementType.EARN
                and entry.breakdown[:1]
                and entry.breakdown[0][0] == "base"
                and entry.reference
                and _left_to_reverse(tenant.model, state, entry.reference) > 0
            }
        )

    @precondition(lambda self: bool(self._earned_orders()))
    @rule(
        target=sent,
        pick=st.integers(0, 1_000),
        how=st.sampled_from(["half the amount", "the whole amount", "a third of the points", "the rest"]),
        suffix=key_suffixes,
    )
    def refund_an_order(self, pick: int, how: str, suffix: str) -> Sent:
        """A refund of an earned order, by amount (half of what was paid, or all of it) or by
        points: its points come back in proportion, and so does what it counted against the
        caps (an overall counter by the points taken, a campaign's by its share)."""
        self._step("refund_an_order")
        earned = self._earned_orders()
        tenant, member_id, order = earned[pick % len(earned)]
        model = self.tenants[tenant].model
        state = model.members[member_id]
        left = _left_to_reverse(model, state, order)
        paid = sum(
            (e.amount for e in state.ledger if e.movement is MovementType.EARN and e.reference == order and e.amount),
            Decimal(0),
        )
        sized: dict[str, Any] = {
            "half the amount": {"amount": _half(paid, model.currency)},
            "the whole amount": {"amount": format(paid, "f")},
            "a third of the points": {"points": max(left // 3, 1)},
            "the rest": {"points": left},
        }[how]
        return self._send_new((tenant, member_id), MovementType.REVERSE, suffix, {"reference": order}, **sized)

    @rule(
        target=sent,
        member=members,
        spec=order_specs,
        how=st.sampled_from(["half the amount", "a third of the points", "all of it"]),
        suffix=key_suffixes,
    )
    def earn_then_refund_an_order(self, member: tuple[int, str], spec: OrderSpec, how: str, suffix: str) -> Any:
        """An order earned, then refunded in part or in full right away: what it counted
        against the caps comes back in proportion, its milestone stays given."""
        self._step("earn_then_refund_an_order")
        t = self.tenants[member[0]]
        order = self._order(t, spec)
        if order is None:
            return multiple()
        request = self._request(member, MovementType.EARN, suffix, {}, order=order)
        self._check_preview(t, request)
        self._send(t, request)
        applied = t.model.applied.get(request.idempotency_key)
        if applied is None or applied.entry.points <= 0:
            return Sent(member[0], request)
        sized: dict[str, Any] = {
            "half the amount": {"amount": _half(order.total, t.model.currency)},
            "a third of the points": {"points": max(applied.entry.points // 3, 1)},
            "all of it": {"amount": format(order.total, "f")},
        }[how]
        refund = self._request(member, MovementType.REVERSE, suffix, {"reference": order.order_id}, **sized)
        self._send(t, refund)
        return multiple(Sent(member[0], request), Sent(member[0], refund))

    @precondition(lambda self: any(r.limit for t in self.tenants for r in t.model.rules))
    @rule(member=members, pick=st.integers(0, 1_000), when=st.sampled_from(OCCURRED), suffix=key_suffixes)
    def use_up_an_allowance(self, member: tuple[int, str], pick: int, when: str, suffix: str) -> None:
        """One activity more than a limited rule allows, in one period: the last is refused
        (``limit_reached``) or rewarded by the other rules only."""
        self._step("use_up_an_allowance")
        t = self.tenants[member[0]]
        limited = [rule for rule in t.model.rules if rule.limit and rule.activity]
        if not limited:
            return
        chosen = limited[pick % len(limited)]
        occurred_at = self._occurred(t, when)
        for _ in range((chosen.limit or 0) + 1):
            self._send_activity(
                t,
                Activity(
                    member_id=member[1],
                    type=chosen.activity or "",
                    idempotency_key=f"{self._fresh()}{suffix}",
                    occurred_at=occurred_at,
                    timezone=t.model.timezone,
                ),
            )

    @precondition(lambda self: self.rule_changes < 4)
    @rule(tenant=st.sampled_from([0, 1]), spec=rule_specs)
    def add_rule(self, tenant: int, spec: RuleSpec) -> None:
        """A rule added mid-run (in force now, later, or for a while): later earns follow it."""
        self._step("add_rule")
        self.rule_changes += 1
        self._add_rule(self.tenants[tenant], spec)

    def _open_rules(self, tenant: Tenant) -> list[ModelRule]:
        """Rules in force or scheduled: ones that have not ended."""
        now = self.clock.now
        return [rule for rule in tenant.model.rules if rule.ends_at is None or rule.ends_at > now]

    @precondition(lambda self: self.rule_changes < 4 and any(self._open_rules(t) for t in self.tenants))
    @rule(tenant=st.sampled_from([0, 1]), pick=st.integers(0, 1_000))
    def end_rule(self, tenant: int, pick: int) -> None:
        """A rule ended now (never deleted): earns from now on, and earns backdated past its
        end, no longer follow it; its counters stay. A rule that has not started never applies."""
        self._step("end_rule")
        t = self.tenants[tenant] if self._open_rules(self.tenants[tenant]) else self.tenants[1 - tenant]
        self.rule_changes += 1
        open_rules = self._open_rules(t)
        chosen = open_rules[pick % len(open_rules)]
        scheduled = chosen.starts_at is not None and chosen.starts_at > self.clock.now
        ended = t.services.rules.end(chosen.rule_id)
        chosen.end(self.clock.now)
        assert ended.ends_at == chosen.ends_at and not ended.in_force(self.clock.now), ended
        STATS.lifecycle[self.backend]["scheduled rules ended" if scheduled else "rules ended"] += 1

    @rule(
        tenant=st.sampled_from([0, 1]),
        per=st.sampled_from(["day", "day", "week", "month"]),
        side=st.sampled_from(sorted(BOUNDARY_SIDES)),
    )
    def advance_to_period_boundary(self, tenant: int, per: str, side: str) -> None:
        """The clock to the next local day, ISO week or month of a tenant: just before it (the
        period's last moment), at it or just after (a new period: allowances and caps anew)."""
        self._step("advance_to_period_boundary")
        now = self.clock.now
        target = _next_boundary(now, self.tenants[tenant].model.timezone, per) + BOUNDARY_SIDES[side]
        self.clock.now = max(target, now + timedelta(microseconds=1))
        STATS.lifecycle[self.backend]["clock moves to a period boundary"] += 1
        self.touched.update((t.index, m) for t in self.tenants for m in t.model.members)

    def _occurred(self, t: Tenant, when: str) -> datetime | None:
        """An ``occurred_at`` at or before now (None: now), to the millisecond."""
        now = self.clock.now
        if when == "now":
            return None
        if when.endswith("ago"):
            return (now - timedelta(days=int(when.split()[0]))).replace(microsecond=now.microsecond // 1000 * 1000)
        local = now.astimezone(ZoneInfo(t.model.timezone))
        midnight = datetime(local.year, local.month, local.day, tzinfo=local.tzinfo).astimezone(UTC)
        return midnight if when == "local midnight" else midnight - timedelta(milliseconds=1)

    def _order(self, t: Tenant, spec: OrderSpec) -> Order | None:
        """The order in the tenant's currency, parsed as the API parses it; None when it is
        refused (400), as the model says it must be."""
        currency = t.model.currency
        total, lines, parts = _concrete_order(spec, currency)
        modelled = ModelOrder(
            spec.order_id,
            Decimal(total),
            currency,
            tuple(
                ModelLine(sku, category, quantity, Decimal(price), Decimal(off or 0))
                for sku, category, quantity, price, off in lines
            ),
            *(Decimal(parts[name] or 0) for name in ("discount", "shipping", "tax")),
        )
        problems = modelled.problems()
        try:
            order = Order.parse(spec.order_id, total, currency, lines, currency, **parts)
        except InvalidRequest as refused:
            self._outcome("invalid_request")
            assert problems, f"order refused ({refused.details}) though the model finds nothing wrong: {modelled}"
            return None
        assert not problems, f"order accepted though {problems}: {modelled}"
        assert ModelOrder.of(order) == modelled, (ModelOrder.of(order), modelled)
        return order

    def _check_preview(self, t: Tenant, request: MovementRequest) -> None:
        """``PointsService.preview`` for the member, at this moment, for the earn's order and
        ``occurred_at``, says what the model says; for an earn the model expects to be
        recorded, that is exactly what the earn records (checked by ``_judge``)."""
        model = t.model
        assert request.order is not None
        if request.member_id not in model.members:
            return
        now = self.clock.now
        predicted = model.preview(request.member_id, ModelOrder.of(request.order), request.occurred_at or now, now)
        shown = t.services.points.preview(request.member_id, request.order, request.occurred_at, model.timezone)
        got = (shown.points, _parts(shown.breakdown))
        assert got == (predicted.points, predicted.breakdown), (
            f"preview of {request.order} at {request.occurred_at or now}: {got}, the model says "
            f"{(predicted.points, predicted.breakdown)}; model: {model.describe()}"
        )
        expected = model.expect(request, now)
        counts = STATS.lifecycle[self.backend]
        counts["previews checked"] += 1
        if expected.succeeds and expected.replay_of is None:
            assert (expected.delta, expected.breakdown) == got, f"the model's earn {expected} is not its preview {got}"
        elif expected.code == "amount_too_small":
            assert shown.points == 0, f"an order refused for no points previews {got}"

    def _send_activity(self, tenant: Tenant, activity: Activity) -> None:
        """Record one activity, compare its outcome with the model's, and record a success."""
        expected, recorded = tenant.model.expect_activity(
            activity.member_id,
            activity.type,
            activity.idempotency_key,
            self.clock.now,
            reference=activity.reference,
            description=activity.description,
            occurred_at=activity.occurred_at,
            metadata=activity.metadata,
            actor_key_id=activity.actor_key_id,
        )
        if self._over_lot_cap(expected):
            return
        self._judge(tenant, recorded or _stand_in(activity), expected, self._call_activity(tenant, activity))

    def _call_activity(self, tenant: Tenant, activity: Activity) -> Outcome:
        try:
            return Outcome(SUCCESS, result=tenant.services.activities.record(activity))
        except LoyaltyError as error:
            return Outcome(error.code, error=error)
        except TransientStoreError as error:
            return Outcome(BUSY, error=error)
        except Crash as error:
            return Outcome("crash", error=error)

    # --- rewards and coupons ----------------------------------------------------------------------

    @precondition(lambda self: self.reward_changes < 3)
    @rule(tenant=st.sampled_from([0, 1]), spec=reward_specs)
    def add_reward(self, tenant: int, spec: tuple[int, int | None, int | None, bool, int | None]) -> None:
        self._step("add_reward")
        self.reward_changes += 1
        self._add_reward(self.tenants[tenant], spec)

    def _add_reward(self, t: Tenant, spec: tuple[int, int | None, int | None, bool, int | None]) -> None:
        cost, stock, limit, monthly, valid_days = spec
        monthly = monthly and limit is not None
        created = t.services.rewards.create(
            name=f"reward {len(t.rewards.rewards) + 1}",
            type=RewardType.FREE_SHIPPING,
            points_cost=cost,
            stock=stock,
            per_member_limit=limit,
            limit_period=LimitPeriod.MONTH if monthly else LimitPeriod.EVER,
            valid_days=valid_days,
        )
        t.rewards.rewards[created.reward_id] = ModelReward(
            created.reward_id, created.name, cost, stock, limit, monthly, valid_days
        )

    @rule(
        member=members,
        pick=st.integers(0, 1_000),
        # The first choices are drawn most in short searches: the ones that reach the coupons.
        how=st.sampled_from(["twice, after earning it", "after earning its cost", "new", "again", "again, another"]),
        then=st.sampled_from(["cancel twice", "nothing", "use after its validity", "use", "cancel"]),
    )
    def redeem_reward(self, member: tuple[int, str], pick: int, how: str, then: str) -> None:
        """A member redeems a reward for a coupon (some right after earning its cost, some twice
        in a row): a debit and the reward's counters in one transaction, never past the stock
        or the member's limit; its retry answers as first, the same key for another reward is
        refused. Some coupons are then cancelled (and again, with another key), used at once,
        or used once their validity has passed (the clock moved past it)."""
        self._step("redeem_reward")
        index, member_id = member
        t = self.tenants[index]
        rewards = list(t.rewards.rewards.values())
        reward = rewards[pick % len(rewards)]
        times = 2 if how.startswith("twice") else 1
        if how != "new" and not how.startswith("again"):
            self._send_new(member, MovementType.EARN, "-pre", {"pending_days": 0}, points=reward.points_cost * times)
        if how.startswith("again") and self.redemptions:
            index, key, member_id, reward_id = self.redemptions[pick % len(self.redemptions)]
            t = self.tenants[index]
            others = [r for r in t.rewards.rewards.values() if r.reward_id != reward_id]
            reward = t.rewards.rewards[reward_id] if how == "again" or not others else others[0]
            self._redeem(t, member_id, reward, key, then)
            return
        for time_ in range(times):  # what follows, after the last one only
            self._redeem(t, member_id, reward, f"{self._fresh()}-rdm", then if time_ == times - 1 else "nothing")

    def _redeem(self, t: Tenant, member_id: str, reward: ModelReward, key: str, then: str) -> None:
        now = self.clock.now
        judged = expect_redeem(t.model, t.rewards, reward, member_id, key, now)
        self.redemptions.append((t.index, key, member_id, reward.reward_id))
        self.touched.add((t.index, member_id))
        try:
            redemption = t.services.rewards.redeem(member_id, reward.reward_id, key)
            code = SUCCESS
        except LoyaltyError as error:
            redemption, code = None, error.code
        self._judge_reward(t, f"redeem {reward} by {member_id} key={key!r}", judged, code)
        if redemption is None:
            return
        counts = STATS.lifecycle[self.backend]
        if judged.replay:
            assert redemption.replayed, "a redemption's retry was not marked replayed"
            assert _shown(redemption.entry) == _shown(t.model.applied[key].entry), "a replayed redemption differs"
            assert redemption.coupon.code == redemption.entry.reference
            self._check_coupon(t, redemption.coupon)
            counts["redemptions replayed"] += 1
            return
        assert judged.request is not None and judged.expected is not None
        coupon_code = redemption.coupon.code
        assert coupon_code not in t.rewards.coupons, f"coupon code {coupon_code} issued twice"
        request = _with(judged.request, reference=coupon_code)
        expected = _with(t.model.expect(request, now), counters=judged.expected.counters)
        self._check_fresh(t, request, expected, redemption, replayed=False)
        t.model.record(request, expected, redemption.entry)
        coupon = issue(t.rewards, reward, member_id, coupon_code, now, t.model.timezone)
        self._check_coupon(t, redemption.coupon)
        counts["coupons issued"] += 1
        if then.startswith("cancel"):
            for _ in range(2 if then == "cancel twice" else 1):
                self._cancel(t, coupon, f"{self._fresh()}-cnl")
        elif then == "use":
            self._use(t, coupon, f"{self._fresh()}-use", None)
        elif then == "use after its validity":
            self.clock.now += timedelta(days=reward.valid_days or 1, seconds=1)
            self.touched.update((other.index, m) for other in self.tenants for m in other.model.members)
            STATS.lifecycle[self.backend]["clock moves"] += 1
            self._use(t, coupon, f"{self._fresh()}-use", "till-late")

    def _coupons(self) -> list[tuple[Tenant, ModelCoupon]]:
        return [(t, coupon) for t in self.tenants for coupon in t.rewards.coupons.values()]

    @precondition(lambda self: any(t.rewards.coupons for t in self.tenants))
    @rule(pick=st.integers(0, 1_000), how=st.sampled_from(["new", "new", "again", "again for another coupon"]))
    def cancel_coupon(self, pick: int, how: str) -> None:
        """An issued coupon cancelled: its points given back and its counters one back, once."""
        self._step("cancel_coupon")
        coupons = self._coupons()
        t, coupon = coupons[pick % len(coupons)]
        key = f"{self._fresh()}-cnl"
        if how != "new" and self.cancellations:
            index, key, code = self.cancellations[pick % len(self.cancellations)]
            t = self.tenants[index]
            mine = sorted(t.rewards.coupons)
            if how == "again" or len(mine) < 2:
                coupon = t.rewards.coupons[code]
            else:
                coupon = t.rewards.coupons[mine[(mine.index(code) + 1) % len(mine)]]
        self._cancel(t, coupon, key)

    def _cancel(self, t: Tenant, coupon: ModelCoupon, key: str) -> None:
        now = self.clock.now
        judged = expect_cancel(t.model, t.rewards, coupon, key, now)
        if judged.expected is not None and self._over_lot_cap(judged.expected):
            return
        self.cancellations.append((t.index, key, coupon.code))
        self.touched.add((t.index, coupon.member_id))
        try:
            cancelled = t.services.rewards.cancel(coupon.code, key)
            code = SUCCESS
        except LoyaltyError as error:
            cancelled, code = None, error.code
        self._judge_reward(t, f"cancel {coupon} key={key!r}", judged, code)
        if cancelled is None:
            return
        if judged.replay:
            assert cancelled.replayed, "a cancellation's retry was not marked replayed"
            assert _shown(cancelled.entry) == _shown(t.model.applied[key].entry), "a replayed cancellation differs"
            STATS.lifecycle[self.backend]["cancellations replayed"] += 1
            return
        assert judged.request is not None and judged.expected is not None
        self._check_fresh(t, judged.request, judged.expected, cancelled, replayed=False)
        t.model.record(judged.request, judged.expected, cancelled.entry)
        coupon.status, coupon.cancel_key = CANCELLED, key
        self._check_coupon(t, cancelled.coupon)
        STATS.lifecycle[self.backend]["coupons cancelled"] += 1

    @precondition(lambda self: any(t.rewards.coupons for t in self.tenants))
    @rule(
        pick=st.integers(0, 1_000),
        how=st.sampled_from(["new", "new", "again", "again with another reference"]),
        reference=st.sampled_from([None, "till-1", "till-2"]),
    )
    def use_coupon(self, pick: int, how: str, reference: str | None) -> None:
        """The shop uses a coupon: an issued one not past its expiry, once; its retry answers."""
        self._step("use_coupon")
        coupons = self._coupons()
        t, coupon = coupons[pick % len(coupons)]
        key = f"{self._fresh()}-use"
        if how != "new" and self.uses:
            index, key, code, first_reference = self.uses[pick % len(self.uses)]
            t, coupon = self.tenants[index], self.tenants[index].rewards.coupons[code]
            if how == "again":
                reference = first_reference
            elif reference == first_reference:
                reference = f"{first_reference or 'till'}-other"
        self._use(t, coupon, key, reference)

    def _use(self, t: Tenant, coupon: ModelCoupon, key: str, reference: str | None) -> None:
        now = self.clock.now
        judged = expect_use(coupon, key, reference, now)
        self.uses.append((t.index, key, coupon.code, reference))
        try:
            used = t.services.rewards.use(coupon.code, key, reference)
            code = SUCCESS
        except LoyaltyError as error:
            used, code = None, error.code
        self._judge_reward(t, f"use {coupon} key={key!r} reference={reference!r}", judged, code)
        if used is None:
            return
        assert used.replayed is judged.replay, f"use replayed={used.replayed}, the model says {judged.replay}"
        if not judged.replay:
            coupon.status, coupon.used_key, coupon.used_reference = USED, key, reference
            STATS.lifecycle[self.backend]["coupons used"] += 1
        self._check_coupon(t, used.coupon)

    def _judge_reward(self, t: Tenant, what: str, judged: Judged, code: str) -> None:
        self._outcome(code)
        assert code == judged.code, (
            f"{t.tenant_id} at {self.clock.now}: {what} -> {code}; the model expected {judged.code}; "
            f"model: {t.model.describe()}; coupons: {t.rewards.coupons}"
        )

    def _check_coupon(self, t: Tenant, shown: Any) -> None:
        """A coupon as the service answered it is the model's."""
        coupon = t.rewards.coupons[shown.code]
        assert (
            shown.reward_id,
            shown.member_id,
            str(shown.status),
            shown.points,
            shown.expires_at,
            shown.limit_counter,
            shown.used_key,
            shown.used_reference,
        ) == (
            *coupon.stored(),
            coupon.used_key,
            coupon.used_reference,
        ), f"coupon {shown} is not the model's {coupon}"

    # --- tiers, paid plans, referrals -----------------------------------------------------------

    def _configure_tiers(self, t: Tenant, which: int, effective_from: datetime) -> None:
        """A version of the tier program (``TIER_PROGRAMS[which]``) from ``effective_from``."""
        metric, window, months, grace, tiers = TIER_PROGRAMS[which]
        t.services.tiers.configure(
            NewTierProgram(
                metric=Metric(metric),
                window=WindowKind(window),
                months=months,
                grace_periods=grace,
                tiers=tuple(Tier(name, Decimal(threshold), Decimal(factor)) for name, threshold, factor in tiers),
                effective_from=effective_from,
            )
        )
        t.model.tier_versions.append(
            ModelTierProgram(
                effective_from,
                metric,
                window,
                months,
                grace,
                tuple(ModelTier(name, Decimal(threshold), Decimal(factor)) for name, threshold, factor in tiers),
            )
        )
        STATS.lifecycle[self.backend]["tier versions"] += 1

    def _configure_plans(self, t: Tenant) -> None:
        """The catalog: each plan grants its tier if the tier program in force has it."""
        program = with_tiers(t.model.tier_versions, self.clock.now)
        plans = []
        for plan_id, tier, factor, bonus in PLAN_SPECS:
            granted = tier if program is not None and program.tier(tier) is not None else None
            plans.append(ModelPlan(plan_id, f"{plan_id} plan", granted, Decimal(factor), bonus))
        t.services.subscriptions.configure(
            [
                Plan(p.plan_id, p.name, p.tier, p.multiplier, perks=("Free returns",), join_bonus=p.join_bonus)
                for p in plans
            ]
        )
        t.plans.plans = {plan.plan_id: plan for plan in plans}

    def _configure_referrals(self, t: Tenant, which: int) -> None:
        enabled, referrer, referee, minimum, cap, when_capped = REFERRAL_PROGRAMS[which]
        now = self.clock.now
        t.services.referrals.configure(
            NewReferralProgram(
                enabled=enabled,
                referrer_points=referrer,
                referee_points=referee,
                min_order_total=Decimal(minimum) if minimum else None,
                cap=ReferralCap(cap[0], CapPeriod(cap[1])) if cap else None,
                referee_rewarded_when_capped=when_capped,
                effective_from=now,
            )
        )
        t.model.referral_versions.append(
            ModelReferralProgram(
                now, enabled, referrer, referee, Decimal(minimum) if minimum else None, cap, when_capped
            )
        )

    @precondition(lambda self: self.tier_changes < 2)
    @rule(
        tenant=st.sampled_from([0, 1]),
        which=st.sampled_from(range(len(TIER_PROGRAMS))),
        when=st.sampled_from(["now", "now", "tomorrow"]),
    )
    def change_tiers(self, tenant: int, which: int, when: str) -> None:
        """A new version of the tier program, now or from tomorrow (the last of them ends tiers):
        members holding a tier it does not have are qualified afresh."""
        self._step("change_tiers")
        self.tier_changes += 1
        t = self.tenants[tenant]
        start = self.clock.now + (timedelta(days=1) if when == "tomorrow" else timedelta(0))
        if any(version.effective_from == start for version in t.model.tier_versions):
            return
        self._configure_tiers(t, which, start)
        self.touched.update((t.index, m) for m in t.model.members)

    @rule(
        target=members,
        referrer=members,
        how=st.sampled_from(["code", "code", "code, lower case", "unknown code"]),
        then=st.sampled_from(["an order", "an interrupted order", "nothing", "a small order"]),
        skip=st.integers(0, 2),
        suffix=key_suffixes,
    )
    def enrol_with_a_referral_code(self, referrer: tuple[int, str], how: str, then: str, skip: int, suffix: str) -> Any:
        """A member enrolled with another member's code: a referee, pending until its first
        qualifying order (maybe right away, maybe one whose request dies midway). An unknown
        code is refused, with nothing written."""
        self._step("enrol_with_a_referral_code")
        t = self.tenants[referrer[0]]
        code = t.services.members.get(referrer[1]).referral_code
        assert code is not None, "an enrolled member has a referral code"
        if how == "unknown code":
            code = "22222222" if code != "22222222" else "33333333"
        elif how == "code, lower case":
            code = code.lower()
        try:
            member = t.services.members.enrol(NewMember(referral_code=code))
        except LoyaltyError as error:
            self._outcome(error.code)
            assert how == "unknown code" and error.code == "unknown_referral_code", error
            return multiple()
        assert how != "unknown code", "a member enrolled with an unknown referral code"
        t.model.enrol(member.member_id, None)
        t.model.members[member.member_id].referral_from = referrer[1]
        t.model.referrals[member.member_id] = ModelReferral(member.member_id, referrer[1])
        self._outcome(SUCCESS)
        self.touched.add((t.index, member.member_id))
        STATS.lifecycle[self.backend]["referees enrolled"] += 1
        if then == "an interrupted order":
            self._interrupted_completion(t, member.member_id, skip, "job" if skip % 2 else "replay", suffix)
        elif then != "nothing":
            self._referee_order(t, member.member_id, "small" if then == "a small order" else "large", "nothing", suffix)
        return (t.index, member.member_id)

    def _referees(self) -> list[tuple[Tenant, str]]:
        return [(t, m) for t in self.tenants for m, s in t.model.members.items() if s.referral_from]

    @precondition(lambda self: bool(self._referees()))
    @rule(
        pick=st.integers(0, 1_000),
        size=st.sampled_from(["large", "large", "small"]),
        then=st.sampled_from(["nothing", "refund", "order again"]),
        suffix=key_suffixes,
    )
    def referee_orders(self, pick: int, size: str, then: str, suffix: str) -> None:
        """A pending referee's order (one over any minimum, or a small one): the first that
        qualifies rewards both members once; then maybe its refund (the rewards stay) or
        another order (it rewards nothing more)."""
        self._step("referee_orders")
        t, referee = self._referees()[pick % len(self._referees())]
        self._referee_order(t, referee, size, then, suffix)

    def _referee_order(self, t: Tenant, referee: str, size: str, then: str, suffix: str) -> None:
        price = 12_000 if size == "large" else 1
        order = self._order(t, OrderSpec(f"order-r{self._fresh()}", (LineSpec("latte", 1, price),)))
        assert order is not None
        request = self._request((t.index, referee), MovementType.EARN, suffix, {}, order=order)
        self._send(t, request)
        if then == "refund" and request.idempotency_key in t.model.applied:
            refund = {"reference": order.order_id}
            self._send(
                t, self._request((t.index, referee), MovementType.REVERSE, suffix, refund, amount=str(order.total))
            )
        elif then == "order again":
            again = _with(order, order_id=f"{order.order_id}-2")
            self._send(t, self._request((t.index, referee), MovementType.EARN, suffix, {}, order=again))

    @precondition(lambda self: bool(self._referees()))
    @rule(
        pick=st.integers(0, 1_000), skip=st.integers(0, 2), then=st.sampled_from(["job", "replay"]), suffix=key_suffixes
    )
    def referral_completion_interrupted(self, pick: int, skip: int, then: str, suffix: str) -> None:
        """A qualifying order whose request dies after its ``skip + 1``-th write (the order's,
        the referrer's reward, the referee's): the rest is completed by the job, or by the
        client's retry of the order; each side rewarded once."""
        self._step("referral_completion_interrupted")
        t, referee = self._referees()[pick % len(self._referees())]
        self._interrupted_completion(t, referee, skip, then, suffix)

    def _interrupted_completion(self, t: Tenant, referee: str, skip: int, then: str, suffix: str) -> None:
        order = self._order(t, OrderSpec(f"order-q{self._fresh()}", (LineSpec("latte", 1, 12_000),)))
        assert order is not None
        request = self._request((t.index, referee), MovementType.EARN, suffix, {}, order=order)
        expected = t.model.expect(request, self.clock.now)
        if self._over_lot_cap(expected):
            return
        if not expected.succeeds or expected.referral is None:
            self._send(t, request)
            return
        plan = FaultPlan()
        plan.fail("TransactWriteItems", crash, times=1, after=True, skip=skip)
        with pytest.MonkeyPatch.context() as patch:
            plan.install(patch)
            outcome = self._call(t, request)
        STATS.injected[self.backend] += sum(plan.injected.values())
        STATS.faulted_steps[self.backend] += 1
        self._outcome(outcome.code)
        assert outcome.code in {SUCCESS, "crash"}, f"a qualifying order under a crash: {outcome}"
        entry = (
            outcome.result.entry
            if outcome.result is not None
            else t.services.points._ledger.get_entry(request.idempotency_key)
        )
        assert entry is not None, "the qualifying order did not commit"
        self._record_stored(t, request, expected, entry)
        self._sync_referrals(t, finishing=None)
        if then == "replay":
            self._send(t, request)
        else:
            self._run_program_job(t, "complete-referrals", self.clock.now)
        assert t.model.referrals[referee].status in {COMPLETED, CAPPED}, t.model.referrals[referee]
        STATS.lifecycle[self.backend]["referral completions interrupted"] += 1

    def _record_stored(self, t: Tenant, request: MovementRequest, expected: Expected, entry: LedgerEntry) -> None:
        """A movement the service committed but did not answer (or the platform minted): its
        stored entry is the model's, which records it."""
        assert expected.succeeds and expected.replay_of is None, expected
        wanted = expected_entry_fields(request, expected, t.model.currency)
        for name in ("balance_after.lot_count", "balance_after.next_maturity_at", "balance_after.order_count"):
            del wanted[name]
        got = {name: _field(entry, name) for name in wanted}
        differs = {name: (got[name], wanted[name]) for name in wanted if got[name] != wanted[name]}
        assert not differs, f"{_describe(request)} at {self.clock.now}: stored entry differs, (got, model): {differs}"
        assert entry.transaction_id not in self.transaction_ids, "a transaction id was reused"
        self.transaction_ids.add(entry.transaction_id)
        t.model.record(request, expected, entry)
        self.touched.add((t.index, request.member_id))

    def _sync_referrals(self, t: Tenant, *, finishing: str | None) -> None:
        """After anything that may complete a referral: the rewards it credited (read back by
        their keys) are the model's, each once, and so is the referral's state. ``finishing``:
        the key of an order earn (or its replay) that must have finished its referral."""
        model = t.model
        qualified = [r for r in model.referrals.values() if r.status == QUALIFIED]
        if not qualified:
            return
        ledger = t.services.points._ledger
        found = []
        for referral in qualified:
            for role in ("referrer", "referee"):
                if referral.key(role) not in model.applied:
                    entry = ledger.get_entry(referral.key(role))
                    if entry is not None:
                        found.append((entry.member_id, entry.sequence, referral, role, entry))
        for _, _, referral, role, entry in sorted(found, key=lambda f: (f[0], f[1])):
            request = referral.request(role, model.timezone)
            expected = model.expect(request, self.clock.now)
            if role == "referrer" and referral.cap_counter is not None:
                assert model.counters.get(referral.cap_counter, 0) < (referral.cap_limit or 0), (
                    f"a referrer rewarded past the cap: {referral}"
                )
                expected = replace(
                    expected, counters=(*expected.counters, (referral.cap_counter, 1, referral.cap_limit))
                )
            self._record_stored(t, request, expected, entry)
            current = model.referrals[referral.referee_id]
            model.referrals[referral.referee_id] = replace(current, credited=(*current.credited, role))
            STATS.lifecycle[self.backend][f"referral rewards ({role})"] += 1
        for referral in qualified:
            referral = model.referrals[referral.referee_id]
            stored = t.services.referrals._store.get(referral.referee_id)
            assert stored is not None, f"referral of {referral.referee_id} lost"
            if str(stored.status) == QUALIFIED:
                assert referral.earn_key != finishing, f"the referral {referral} was left unfinished"
                continue
            capped = str(stored.status) == CAPPED
            if capped:
                assert referral.cap_counter is not None
                assert model.counters.get(referral.cap_counter, 0) >= (referral.cap_limit or 0), (
                    f"referral {referral} capped under its cap"
                )
            roles = {"referrer"} if not capped else set()
            if referral.referee_points and (not capped or referral.referee_when_capped):
                roles.add("referee")
            assert set(referral.credited) == roles, f"referral {referral} ({stored.status}) rewarded {roles}"
            assert (stored.referrer_points, stored.referee_points) == (
                0 if capped else referral.referrer_points,
                referral.referee_points if "referee" in roles else 0,
            ), stored
            model.referrals[referral.referee_id] = finished(referral, capped)
            STATS.lifecycle[self.backend][f"referrals {stored.status}"] += 1

    def _plans_of(self) -> list[Tenant]:
        return [t for t in self.tenants if t.plans.plans]

    @precondition(lambda self: bool(self._plans_of()))
    @rule(member=members, pick=st.integers(0, 1_000), how=st.sampled_from(PERIODS), days=st.sampled_from([30, 1]))
    def record_period(self, member: tuple[int, str], pick: int, how: str, days: int) -> None:
        """Billing reports a paid period: a subscription starts (its join bonus once per member
        and plan, ever), is renewed, or the period is refused; a key or a reference again
        answers as the guide says."""
        self._step("record_period")
        t = self.tenants[member[0]] if self.tenants[member[0]].plans.plans else self._plans_of()[0]
        member_id = member[1] if t.index == member[0] else sorted(t.model.members)[pick % len(t.model.members)]
        self.clock.now += timedelta(milliseconds=1)  # subscriptions are ordered by their ids' moments
        now = self.clock.now
        book = t.plans
        plans = sorted(book.plans)
        plan_id = plans[pick % len(plans)]
        mine = book.of(member_id)
        latest = next((s for s in mine if s.plan_id == plan_id), mine[0] if mine else None)
        key = f"{self._fresh()}-sub"
        reference = f"inv-{self._fresh()}"
        start, end = now, now + timedelta(days=days)
        if how in ("renew", "within", "after a gap") and latest is not None:
            plan_id = latest.plan_id
            start = {
                "renew": latest.ends_at,
                "within": latest.starts_at,
                "after a gap": latest.ends_at + timedelta(days=1),
            }[how]
            end = latest.ends_at - timedelta(hours=1) if how == "within" else start + timedelta(days=days)
            if end <= start:
                end = start + timedelta(hours=1)
        elif how == "cancel, then new" and latest is not None:
            plan_id = latest.plan_id
            self._cancel_subscription(t, latest)
        elif how == "tomorrow":
            start, end = now + timedelta(days=1), now + timedelta(days=1 + days)
        elif how == "ended":
            start, end = now - timedelta(days=days), now - timedelta(seconds=1)
        elif how.startswith(("key again", "reference again")) and book.keys:
            earlier_key = sorted(book.keys)[pick % len(book.keys)]
            asked = book.keys[earlier_key][0]
            member_id, plan_id, start, end, reference = (
                asked.member_id,
                asked.plan_id,
                asked.start,
                asked.end,
                asked.reference,
            )
            if how.startswith("key again"):
                key = earlier_key
            if how.endswith("another period"):
                end += timedelta(days=1)
        self._record_period(t, PeriodAsked(member_id, plan_id, start, end, reference), key)

    def _record_period(self, t: Tenant, asked: PeriodAsked, key: str) -> None:
        now = self.clock.now
        model, book = t.model, t.plans
        state = model.members[asked.member_id]
        plan = book.plans.get(asked.plan_id)
        bonus_paid = plan is not None and plan.bonus_key(asked.member_id) in model.applied
        judged = book.record(asked, key, state.grant, bonus_paid, now)
        if judged.bonus:
            assert plan is not None
            credit = model.expect_credit(self._bonus_request(t, plan, asked.member_id, "sub_"), _bonus_share(plan), now)
            if self._over_lot_cap(credit):
                return
            if not credit.succeeds:  # the bonus is refused (a balance at its limit): so is the recording
                judged = Recorded(credit.code)
        try:
            recording = t.services.subscriptions.record(
                asked.member_id, PeriodRequest(asked.plan_id, asked.start, asked.end, asked.reference), key
            )
            code = SUCCESS
        except LoyaltyError as error:
            recording, code = None, error.code
        self._outcome(code if code != SUCCESS or judged.outcome is None else f"subscription {judged.outcome}")
        assert code == judged.code, (
            f"{t.tenant_id} at {now}: recording {asked} key={key!r} -> {code}; the model expected {judged}; "
            f"subscriptions {book.of(asked.member_id)}, grant {state.grant}"
        )
        if recording is None:
            return
        if judged.replay_of is not None:
            assert recording.replayed, "a recording's retry was not marked replayed"
            assert (str(recording.outcome), recording.subscription.subscription_id) == judged.replay_of, recording
            return
        assert judged.subscription is not None
        subscription = judged.subscription
        if judged.outcome == STARTED:
            subscription = replace(subscription, subscription_id=recording.subscription.subscription_id)
        shown = recording.subscription
        got = (
            shown.subscription_id,
            shown.member_id,
            shown.plan_id,
            shown.tier,
            shown.multiplier,
            str(shown.status),
            shown.starts_at,
            shown.ends_at,
            shown.join_bonus,
        )
        assert str(recording.outcome) == judged.outcome and got == subscription.shown(), (
            f"recording {asked}: {recording.outcome} {got}; the model says {judged.outcome} {subscription.shown()}"
        )
        assert recording.bonus_points == judged.bonus, recording
        if judged.outcome == ALREADY_RECORDED:
            return
        book.apply(asked, key, replace(judged, subscription=subscription))
        self.touched.add((t.index, asked.member_id))
        if judged.bonus:
            assert plan is not None
            request = self._bonus_request(t, plan, asked.member_id, subscription.subscription_id)
            expected = model.expect_credit(request, _bonus_share(plan), now)
            assert expected.after is not None
            expected.after.grant = subscription.grant()
            entry = t.services.points.transactions(asked.member_id, limit=1, cursor=None).items[0]
            assert entry.transaction_id == recording.bonus_transaction_id, (entry, recording)
            self._record_stored(t, request, expected, entry)
            STATS.lifecycle[self.backend]["join bonuses"] += 1
        else:
            state.grant = subscription.grant()

    def _bonus_request(self, t: Tenant, plan: ModelPlan, member_id: str, subscription_id: str) -> MovementRequest:
        return MovementRequest(
            member_id=member_id,
            movement=MovementType.EARN,
            idempotency_key=plan.bonus_key(member_id),
            points=plan.join_bonus,
            reference=f"subscription:{subscription_id}",
            description=f"Join bonus: {plan.name}",
            metadata={"plan_id": plan.plan_id, "subscription_id": subscription_id},
            timezone=t.model.timezone,
            pending_days=0,
            minted_key=True,
        )

    @precondition(lambda self: any(t.plans.subscriptions for t in self.tenants))
    @rule(pick=st.integers(0, 1_000))
    def cancel_subscription(self, pick: int) -> None:
        """A subscription cancelled now: its benefits stop at once (one past its end lapses
        instead; one that has ended answers as it is); the join bonus stays."""
        self._step("cancel_subscription")
        subscriptions = [(t, s) for t in self.tenants for s in t.plans.subscriptions.values()]
        t, subscription = subscriptions[pick % len(subscriptions)]
        self.clock.now += timedelta(milliseconds=1)
        self._cancel_subscription(t, subscription)

    def _cancel_subscription(self, t: Tenant, subscription: ModelSubscription) -> None:
        now = self.clock.now
        ended = t.services.subscriptions.cancel(subscription.member_id, subscription.subscription_id)
        if subscription.status == ACTIVE:
            subscription.status = LAPSED if subscription.ends_at <= now else SUBSCRIPTION_CANCELLED
            state = t.model.members[subscription.member_id]
            if state.grant is not None and state.grant.subscription_id == subscription.subscription_id:
                state.grant = None
        assert str(ended.status) == subscription.status, f"cancelled {ended}, the model says {subscription}"
        self._outcome(f"subscription {subscription.status}")
        self.touched.add((t.index, subscription.member_id))

    @rule(tenant=st.sampled_from([0, 1]), job=st.sampled_from(PROGRAM_JOBS), again=st.booleans())
    def run_program_job(self, tenant: int, job: str, again: bool) -> None:
        """The tier review, the plan lapse or the referral completion job now; run again, it
        finds nothing to do."""
        self._step("run_program_job")
        t = self.tenants[tenant]
        self._run_program_job(t, job, self.clock.now)
        if again:
            self._run_program_job(t, job, self.clock.now)

    def _run_program_job(self, t: Tenant, job: str, as_of: datetime) -> None:
        model = t.model
        counts: dict[str, int]
        if job == "review-tiers":
            version = with_tiers(model.tier_versions, as_of)
            counts = {"members": 0, "downgraded": 0, "kept": 0}
            reviewed: dict[str, Held] = {}
            for member_id, state in model.members.items():
                held = state.held
                if held.tier is None or held.expires_at is None or held.expires_at > as_of:
                    continue
                counts["members"] += 1
                after = review(held, state.buckets, version, as_of, model.timezone) if version else NONE_HELD
                if after != held:
                    counts["downgraded" if after.tier != held.tier else "kept"] += 1
                    reviewed[member_id] = after
            run = t.services.jobs.run(JobName.REVIEW_TIERS, as_of)
            for member_id, after in reviewed.items():
                model.members[member_id].held = after
                self.touched.add((t.index, member_id))
            STATS.lifecycle[self.backend]["tiers reviewed by jobs"] += len(reviewed)
        elif job == "lapse-subscriptions":
            due = [s for s in t.plans.subscriptions.values() if s.status == ACTIVE and s.ends_at <= as_of]
            counts = {"subscriptions": len(due), "lapsed": len(due), "skipped": 0}
            run = t.services.jobs.run(JobName.LAPSE_SUBSCRIPTIONS, as_of)
            for subscription in due:
                subscription.status = LAPSED
                state = model.members[subscription.member_id]
                if state.grant is not None and state.grant.subscription_id == subscription.subscription_id:
                    state.grant = None
                self.touched.add((t.index, subscription.member_id))
            STATS.lifecycle[self.backend]["subscriptions lapsed by jobs"] += len(due)
        else:
            qualified = [r.referee_id for r in model.referrals.values() if r.status == QUALIFIED]
            run = t.services.jobs.run(JobName.COMPLETE_REFERRALS, as_of)
            self._sync_referrals(t, finishing=None)
            statuses = [model.referrals[referee].status for referee in qualified]
            assert QUALIFIED not in statuses, f"the job left referrals unfinished: {statuses}"
            counts = {
                "referrals": len(qualified),
                "completed": statuses.count(COMPLETED),
                "capped": statuses.count(CAPPED),
            }
        assert run.status is RunStatus.SUCCEEDED, run
        assert run.counts == counts, f"{job} as of {as_of}: the job did {run.counts}; the model expected {counts}"
        STATS.lifecycle[self.backend]["job runs"] += 1

    def _check_membership(self, tenant: Tenant, member_id: str, balance: Balance) -> None:
        """The member's tier, plan and referral as stored (the month totals, the tier held and
        until when, the plan's grant, the pending referrer) are the model's, and as reads show
        them now: the earned tier with its due reviews applied, and the effective tier (the
        higher of it and a plan's in force) is what the qualifying history and the plans say."""
        state = tenant.model.members[member_id]
        where = f"{tenant.tenant_id}/{member_id} at {self.clock.now}"
        stored = {month: (b.points, b.spend, b.orders) for month, b in decode_buckets(balance.tier_buckets).items()}
        assert stored == state.buckets, f"{where}: tier months {stored}, the model's {state.buckets}"
        held = Held(balance.tier, balance.tier_since, balance.tier_expires_at)
        assert held == state.held, f"{where}: tier held {held}, the model's {state.held}"
        grant = state.grant
        modelled = (
            PlanGrant(
                grant.subscription_id, grant.plan_id, grant.tier, grant.multiplier, grant.starts_at, grant.ends_at
            )
            if grant is not None
            else None
        )
        assert balance.plan == modelled, f"{where}: plan {balance.plan}, the model's {grant}"
        assert balance.referral_from == state.referral_from, f"{where}: referred by {balance.referral_from}"
        if not tenant.model.tier_versions:
            return
        now = self.clock.now
        earned, effective_tier = tenant.model.tier_now(state, now)
        status = tenant.services.tiers.status(balance, now)
        shown = Held(*((status.state.tier, status.state.since, status.state.expires_at) if status else (None,) * 3))
        assert shown == earned, f"{where}: the tier shown {shown}, the model's {earned}"
        if grant is not None:  # without a plan the effective tier is the earned one, checked above
            shown_effective = tenant.services.tiers.tier_of(member_id)
            assert shown_effective == effective_tier, (
                f"{where}: effective tier {shown_effective}, the model's {effective_tier} "
                f"(earned {earned}, plan {grant}, months {state.buckets})"
            )
        if effective_tier is not None:
            STATS.lifecycle[self.backend]["effective tiers checked"] += 1

    def _check_program_rewards(self, tenant: Tenant, scanned: Scanned) -> None:
        """A referral rewards each side at most once, a plan's join bonus is paid once per member
        and plan: what the ledger holds of them is what the model credited."""
        where = tenant.tenant_id
        model = tenant.model
        rewards: defaultdict[tuple[str, str], int] = defaultdict(int)
        bonuses: defaultdict[tuple[str, str], int] = defaultdict(int)
        for member_id, rows in scanned.entries.items():
            for row in rows:
                if row["referee_id"] is not None and row["movement"] == "earn":
                    referral = model.referrals.get(row["referee_id"])
                    role = "referrer" if referral is not None and referral.referrer_id == member_id else "referee"
                    rewards[(row["referee_id"], role)] += 1
                if row["plan_id"] is not None and row["movement"] == "earn":
                    bonuses[(row["plan_id"], member_id)] += 1
        twice = {side: count for side, count in rewards.items() if count > 1}
        assert not twice, f"{where}: referral sides rewarded more than once: {twice}"
        credited = {(r.referee_id, role): 1 for r in model.referrals.values() for role in r.credited}
        assert dict(rewards) == credited, f"{where}: referral rewards {dict(rewards)}, the model's {credited}"
        paid = {side: count for side, count in bonuses.items() if count > 1}
        assert not paid, f"{where}: join bonuses paid more than once: {paid}"
        modelled = {
            (plan.plan_id, member_id): 1
            for plan in tenant.plans.plans.values()
            for member_id in model.members
            if plan.bonus_key(member_id) in model.applied
        }
        assert dict(bonuses) == modelled, f"{where}: join bonuses {dict(bonuses)}, the model's {modelled}"

    # --- replays -------------------------------------------------------------------------------

    @rule(earlier=sent, actor=st.sampled_from(ACTORS))
    def replay(self, earlier: Sent, actor: str | None) -> None:
        """The same key and body again, possibly through another API key of the tenant: an
        applied key answers with its first entry; a refused one is evaluated afresh."""
        self._step("replay")
        t = self.tenants[earlier.tenant]
        if earlier.activity is not None:
            self._send_activity(t, _with(earlier.activity, actor_key_id=actor))
            return
        assert earlier.request is not None
        self._send(t, _with(earlier.request, actor_key_id=actor))

    @rule(earlier=sent, change=st.sampled_from(CHANGES), other=members)
    def replay_with_changed_body(self, earlier: Sent, change: str, other: tuple[int, str]) -> None:
        self._step("replay_with_changed_body")
        t = self.tenants[earlier.tenant]
        if earlier.activity is not None:
            self._send_activity(t, _changed_activity(earlier.activity, change, other_member=other[1]))
            return
        assert earlier.request is not None
        request = _changed(earlier.request, change, other_member=other[1])
        assert body_of(request) != body_of(earlier.request)
        self._send(t, request)

    @rule(earlier=sent)
    def same_key_in_the_other_tenant(self, earlier: Sent) -> None:
        """Keys are per tenant, and a member id of one tenant is unknown to the other."""
        self._step("same_key_in_the_other_tenant")
        other = self.tenants[1 - earlier.tenant]
        if earlier.activity is not None:
            self._send_activity(other, earlier.activity)
            return
        assert earlier.request is not None
        self._send(other, earlier.request)

    # --- program -------------------------------------------------------------------------------

    @precondition(lambda self: self.program_changes < 2)
    @rule(tenant=st.sampled_from([0, 1]), per_unit=st.sampled_from(PER_UNIT), rounding=st.sampled_from(ROUNDINGS))
    def change_program(self, tenant: int, per_unit: str, rounding: str) -> None:
        """Later amounts convert at the new rate; replays of earlier ones still answer as first."""
        self._step("change_program")
        self.program_changes += 1
        t = self.tenants[tenant]
        t.model.per_unit, t.model.rounding = Decimal(per_unit), rounding
        self._write_program(t)

    def _write_program(self, t: Tenant) -> None:
        """The whole program, as ``PUT /v1/program`` replaces it."""
        m = t.model
        t.services.program.replace(
            m.per_unit,
            Rounding(m.rounding),
            expiry=_policy(m.expiry),
            pending_days=m.pending_days,
            reversal_clawback=m.clawback,
            earn_on_shipping=m.earn_on_shipping,
            earn_on_tax=m.earn_on_tax,
        )
        got = t.services.program.get()
        assert (
            got.points_per_currency_unit,
            str(got.rounding),
            got.expiry,
            got.pending_days,
            got.reversal_clawback,
            got.earn_on_shipping,
            got.earn_on_tax,
        ) == (
            m.per_unit,
            m.rounding,
            _policy(m.expiry),
            m.pending_days,
            m.clawback,
            m.earn_on_shipping,
            m.earn_on_tax,
        ), got

    def _add_rule(self, t: Tenant, spec: RuleSpec) -> None:
        """A rule through the tenant's rule service, and the model's copy of it."""
        now = self.clock.now
        starts_in, ends_in = spec.window
        fields: dict[str, Any] = {
            "starts_at": now + starts_in if starts_in is not None else None,
            "ends_at": now + ends_in if ends_in is not None else None,
            "factor": Decimal(spec.factor) if spec.factor else None,
            "points": spec.points,
            "skus": frozenset(spec.skus),
            "categories": frozenset(spec.categories),
            "weekdays": frozenset(spec.weekdays),
            "min_order_total": Decimal(spec.min_order_total) if spec.min_order_total is not None else None,
            "every": spec.every,
            "at": spec.at,
            "activity": spec.activity,
            "limit": spec.limit,
            "cap": spec.cap,
        }
        name = f"{spec.kind} {len(t.model.rules) + 1}"
        created = t.services.rules.add(
            NewRule(name=name, kind=RuleKind(spec.kind), per=Per(spec.per) if spec.per else None, **fields)
        )
        assert created.created_at == now, created
        t.model.rules.append(
            ModelRule(rule_id=created.rule_id, name=name, kind=spec.kind, created_at=now, per=spec.per, **fields)
        )
        STATS.lifecycle[self.backend]["rules created"] += 1

    # --- isolation ----------------------------------------------------------------------------

    @rule(member=members)
    def the_other_tenant_cannot_see_the_member(self, member: tuple[int, str]) -> None:
        self._step("the_other_tenant_cannot_see_the_member")
        other = self.tenants[1 - member[0]].services
        for read in (
            lambda: other.points.balance(member[1]),
            lambda: other.points.view(member[1]),
            lambda: other.points.transactions(member[1], limit=5, cursor=None),
            lambda: other.members.get(member[1]),
        ):
            try:
                read()
            except LoyaltyError as error:
                assert error.code == "not_found", error
            else:
                raise AssertionError(f"tenant {self.tenants[1 - member[0]].tenant_id} sees member {member[1]}")

    # --- faults -------------------------------------------------------------------------------

    @rule(
        target=sent,
        member=members,
        movement=st.sampled_from([MovementType.EARN, MovementType.REDEEM, MovementType.ADJUST, MovementType.REVERSE]),
        size=small_points,
        fault=st.sampled_from(FAULTS),
        times=st.integers(1, 4),
        suffix=key_suffixes,
    )
    def move_under_fault(
        self, member: tuple[int, str], movement: MovementType, size: int, fault: Fault, times: int, suffix: str
    ) -> Sent:
        """A fresh movement while DynamoDB misbehaves, then (if it did not succeed) the client's
        retry with the same key and no fault. Nothing is lost or doubled: a success is the
        model's, a failure changed nothing, and the retry answers what was committed."""
        self._step("move_under_fault")
        t = self.tenants[member[0]]
        signed = -size if movement is MovementType.ADJUST and size % 2 else size
        extra: dict[str, Any] = {"reason": "fault drill"} if movement is MovementType.ADJUST else {}
        if movement is MovementType.REVERSE:
            extra = {"reference": ORDERS[size % len(ORDERS)]}
        request = self._request(member, movement, suffix, extra, points=signed)
        expected = t.model.expect(request, self.clock.now)
        if not self._over_lot_cap(expected):
            self._fault_drill(t, request, expected, lambda: self._call(t, request), fault, times)
        return Sent(member[0], request)

    @rule(
        target=sent,
        member=members,
        spec=order_specs,
        activity=st.sampled_from([None, *ACTIVITIES[:2]]),
        fault=st.sampled_from(FAULTS),
        times=st.integers(1, 4),
        suffix=key_suffixes,
    )
    def earn_under_fault(
        self, member: tuple[int, str], spec: OrderSpec, activity: str | None, fault: Fault, times: int, suffix: str
    ) -> Any:
        """An order earn (None) or an activity while DynamoDB misbehaves, then the client's retry:
        caps, allowances and milestones count it once, or not at all."""
        self._step("earn_under_fault")
        t = self.tenants[member[0]]
        now = self.clock.now
        if activity is not None:
            done = Activity(
                member_id=member[1],
                type=activity,
                idempotency_key=f"{self._fresh()}{suffix}",
                timezone=t.model.timezone,
            )
            expected, recorded = t.model.expect_activity(member[1], activity, done.idempotency_key, now)
            if not self._over_lot_cap(expected):
                # An activity reads the balance and its allowances before the movement's retries.
                self._fault_drill(
                    t,
                    recorded or _stand_in(done),
                    expected,
                    lambda: self._call_activity(t, done),
                    fault,
                    times,
                    reads_retried=False,
                )
            return Sent(member[0], None, done)
        order = self._order(t, spec)
        if order is None:
            return multiple()
        request = self._request(member, MovementType.EARN, suffix, {}, order=order)
        expected = t.model.expect(request, now)
        if not self._over_lot_cap(expected):
            # The order's rules and program are read before the movement's retries.
            self._fault_drill(t, request, expected, lambda: self._call(t, request), fault, times, reads_retried=False)
        return Sent(member[0], request)

    def _fault_drill(
        self,
        t: Tenant,
        request: MovementRequest,
        expected: Expected,
        call: Callable[[], Outcome],
        fault: Fault,
        times: int,
        *,
        reads_retried: bool = True,
    ) -> None:
        STATS.faulted_steps[self.backend] += 1
        plan = FaultPlan()
        fault.install(plan, times)
        with pytest.MonkeyPatch.context() as patch:
            plan.install(patch)
            outcome = call()
        STATS.injected[self.backend] += sum(plan.injected.values())
        committed = expected.succeeds and fault.after and plan.injected[fault.operation] > 0
        if not expected.succeeds:
            # No commit is attempted: the refusal stands, unless reads are throttled past the
            # point where the service retries them (a refusal decided before its retry loop).
            allowed = {expected.code} | ({BUSY} if fault.operation == "GetItem" else set())
        elif fault.exhausts:
            allowed = {BUSY}
        elif fault.make is crash:
            allowed = {"crash"}
        else:
            allowed = {SUCCESS}  # every bounded fault is absorbed by the service's retries
            if fault.operation == "GetItem" and not reads_retried:
                allowed.add(BUSY)
        assert outcome.code in allowed, (
            f"under {fault.name} x{times}: got {outcome.code} ({outcome.error!r}), expected one of {sorted(allowed)}"
        )
        if outcome.code == SUCCESS:
            assert outcome.result is not None
            if expected.replay_of is None:
                # A timeout after the commit is answered from the ledger: the service's own retry
                # finds its entry, so the first answer is already a replay of it.
                self._check_fresh(t, request, expected, outcome.result, replayed=committed)
                t.model.record(request, expected, outcome.result.entry)
        elif outcome.code in {BUSY, "crash"}:
            retry = call()
            assert retry.code == expected.code, f"client retry after {fault.name}: {retry.code}, {retry.error!r}"
            if expected.succeeds and expected.replay_of is None:
                assert retry.result is not None
                self._check_fresh(t, request, expected, retry.result, replayed=committed)
                t.model.record(request, expected, retry.result.entry)
            self._outcome(retry.code)
        self._outcome(outcome.code)
        self.touched.add((t.index, request.member_id))
        self._sync_referrals(t, finishing=None)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    @precondition(lambda self: bool(self.tenants))
    def the_ledger_is_consistent(self) -> None:
        """Read path: every member the step touched. Storage: each tenant touched since its
        last scan, every ``SCAN_EVERY`` steps (both tenants every ``SWEEP_EVERY``). Teardown
        checks both tenants and every member once more, so nothing escapes the example: a
        divergence in storage stays until it is scanned (entries are append-only and every
        item is compared with the model as a whole)."""
        self.unscanned.update(index for index, _ in self.touched)
        for tenant in self.tenants:
            for member_id in tenant.model.members:
                if (tenant.index, member_id) in self.touched:
                    self._check_read_path(tenant, member_id)
        self.touched.clear()
        if self.steps % SWEEP_EVERY == 0:
            self.unscanned.update(tenant.index for tenant in self.tenants)
        if self.steps % SCAN_EVERY == 0:
            for tenant in self.tenants:
                if tenant.index in self.unscanned:
                    self._check_storage(tenant)
            self.unscanned.clear()
        self.verified = True

    def _check_everything(self) -> None:
        """Both tenants' storage and every member's read path."""
        for tenant in self.tenants:
            self._check_storage(tenant)
            for member_id in tenant.model.members:
                self._check_read_path(tenant, member_id)

    def _check_storage(self, tenant: Tenant) -> None:
        """Every member of the tenant, from a strongly consistent scan of its table."""
        model = tenant.model
        scanned = _scan(self._client, tenant.table)
        self._check_program_rewards(tenant, scanned)
        balances, entries, lots = scanned.balances, scanned.entries, scanned.lots
        assert set(balances) == set(model.members), (
            f"{tenant.tenant_id}: balances stored for {sorted(balances)}, model has {sorted(model.members)}"
        )
        assert set(entries) <= set(model.members), f"{tenant.tenant_id}: ledger entries of unknown members"
        assert set(lots) <= set(model.members), f"{tenant.tenant_id}: lots of unknown members"
        keys: dict[str, str] = {}
        settled: set[tuple[str, str]] = set()
        total = 0
        for member_id, state in model.members.items():
            stored = balances[member_id]
            rows = sorted(entries.get(member_id, []), key=lambda row: row["sequence"])
            where = f"{tenant.tenant_id}/{member_id}"
            assert [row["sequence"] for row in rows] == list(range(1, len(rows) + 1)), (
                f"{where}: sequences {[row['sequence'] for row in rows]} are not 1..n"
            )
            assert stored["version"] == len(rows), f"{where}: version {stored['version']} for {len(rows)} entries"
            running = pending = 0
            clawed_back = False
            by_type: defaultdict[str, int] = defaultdict(int)
            for row, modelled in zip(rows, state.ledger, strict=False):
                running += row["points"]
                pending += row["pending_change"]
                by_type[row["movement"]] += row["points"]
                at = f"{where} entry {row['sequence']} {row}"
                assert row["after_available"] + row["after_pending"] == running, f"{at}: not the running sum"
                assert row["after_pending"] == pending, f"{at}: not the running pending sum"
                assert row["after_pending"] >= 0, f"{at}: pending went negative"
                if row["breakdown"]:
                    assert sum(points for _, points, _ in row["breakdown"]) == row["points"], f"{at}: breakdown sum"
                clawed_back = clawed_back or (row["movement"] == "reverse" and modelled.clawback)
                assert row["after_available"] >= 0 or clawed_back, f"{at}: negative with no claw-back before it"
                if is_settlement_key(row["key"]):
                    movement, lot_id = row["key"].split(":", 1)
                    assert row["movement"] == movement and row["lot_id"] == lot_id, f"{at}: settles another lot"
                    assert (movement, lot_id) not in settled, f"{at}: lot {lot_id} settled ({movement}) twice"
                    settled.add((movement, lot_id))
                    assert lot_id not in lots.get(member_id, {}) or movement == "mature", f"{at}: expired lot kept"
                else:
                    assert row["key"] not in keys, f"idempotency key {row['key']!r} applied twice"
                    keys[row["key"]] = row["transaction_id"]
            assert [_row(row) for row in rows] == [entry.row() for entry in state.ledger], (
                f"{where}: the ledger differs from the model's:\n  stored {[_row(row) for row in rows]}\n"
                f"  model  {[entry.row() for entry in state.ledger]}"
            )
            assert [
                row["transaction_id"] for row, entry in zip(rows, state.ledger, strict=True) if entry.transaction_id
            ] == [entry.transaction_id for entry in state.ledger if entry.transaction_id], f"{where}: entries differ"
            lifetimes = {
                name: stored[f"lifetime_{name}"] for name in ("earned", "redeemed", "adjusted", "expired", "reversed")
            }
            assert stored["available"] + stored["pending"] == running, f"{where}: {stored} != ledger sum {running}"
            assert stored["pending"] == pending >= 0, f"{where}: pending {stored['pending']}, ledger says {pending}"
            assert stored["available"] >= 0 or clawed_back, f"{where}: negative balance {stored} with no claw-back"
            assert stored["available"] + stored["pending"] == (
                lifetimes["earned"]
                - lifetimes["redeemed"]
                + lifetimes["adjusted"]
                - lifetimes["expired"]
                - lifetimes["reversed"]
            ), f"{where}: lifetime identity broken: {stored}"
            assert lifetimes == {
                "earned": by_type["earn"],
                "redeemed": -by_type["redeem"],
                "adjusted": by_type["adjust"],
                "expired": -by_type["expire"],
                "reversed": -by_type["reverse"],
            }, f"{where}: {stored} vs entries {dict(by_type)}"
            assert by_type["mature"] == 0, f"{where}: a maturity moved points"
            next_expiry_at, next_expiry_points = state.next_expiry()
            assert stored == {
                "available": state.available,
                "pending": state.pending,
                **{f"lifetime_{name}": state.lifetime(name) for name in lifetimes},
                "version": state.version,
                "lot_count": state.lot_count,
                "next_expiry_at": next_expiry_at,
                "next_expiry_points": next_expiry_points,
                "next_maturity_at": state.next_maturity(),
                "order_count": state.order_count,
            }, f"{where}: stored {stored}, model {state}"
            own_lots = lots.get(member_id, {})
            assert own_lots == {
                lot.lot_id: {
                    "remaining": lot.remaining,
                    "original": lot.original,
                    "earned_at": lot.earned_at,
                    "expires_at": lot.expires_at,
                    "matures_at": lot.matures_at,
                    "index": "MATURES" if lot.matures_at else "EXPIRES" if lot.expires_at else None,
                }
                for lot in state.lots.values()
            }, f"{where}: stored lots {own_lots}, model {state.lots}"
            assert sum(lot["remaining"] for lot in own_lots.values() if lot["matures_at"]) == stored["pending"]
            assert sum(lot["remaining"] for lot in own_lots.values() if not lot["matures_at"]) <= max(
                stored["available"], 0
            ), f"{where}: lots hold more than the balance"
            total += stored["available"] + stored["pending"]
        assert keys == {key: applied.entry.transaction_id for key, applied in model.applied.items()}, (
            f"{tenant.tenant_id}: stored keys {sorted(keys)} != applied keys {sorted(model.applied)}"
        )
        lifetime = sum(
            b["lifetime_earned"]
            - b["lifetime_redeemed"]
            + b["lifetime_adjusted"]
            - b["lifetime_expired"]
            - b["lifetime_reversed"]
            for b in balances.values()
        )
        assert lifetime == total == model.totals(), (
            f"{tenant.tenant_id}: totals not conserved: lifetime {lifetime}, balances {total}, moved {model.totals()}"
        )
        self._check_counters(tenant, scanned)
        self._check_coupons(tenant, scanned)

    def _check_coupons(self, tenant: Tenant, scanned: Scanned) -> None:
        """Every coupon is the model's and was paid for by exactly one redemption of its points;
        a cancelled one was given back exactly once (one ``adjust`` of its points, referencing
        it), any other never; no reward has more coupons not cancelled than its stock, no
        member more than its limit."""
        where = tenant.tenant_id
        book = tenant.rewards
        stored = {
            code: tuple(
                c[name] for name in ("reward_id", "member_id", "status", "points", "expires_at", "limit_counter")
            )
            for code, c in scanned.coupons.items()
        }
        assert stored == {code: coupon.stored() for code, coupon in book.coupons.items()}, (
            f"{where}: coupons stored {stored}, the model's {book.coupons}"
        )
        paid: defaultdict[str, list[int]] = defaultdict(list)
        given_back: defaultdict[str, list[int]] = defaultdict(list)
        for rows in scanned.entries.values():
            for row in rows:
                if row["reward_id"] is None:
                    continue
                if row["movement"] == "redeem":
                    paid[row["reference"]].append(-row["points"])
                elif row["movement"] == "adjust":
                    given_back[row["reference"]].append(row["points"])
        assert set(paid) | set(given_back) <= set(scanned.coupons), f"{where}: points moved for no coupon"
        held: defaultdict[str, int] = defaultdict(int)
        for code, coupon in scanned.coupons.items():
            assert paid[code] == [coupon["points"]], f"{where}: coupon {code} paid by {paid[code]}"
            cancelled = coupon["status"] == CANCELLED
            assert given_back[code] == ([coupon["points"]] if cancelled else []), (
                f"{where}: coupon {code} ({coupon['status']}) given back {given_back[code]}"
            )
            if not cancelled:
                held[coupon["reward_id"]] += 1
                if coupon["limit_counter"]:
                    held[coupon["limit_counter"]] += 1
        for reward_id, reward in book.rewards.items():
            assert reward.stock is None or held[reward_id] <= reward.stock, f"{where}: {reward} oversold"
            for name, count in held.items():
                if name.startswith(f"reward:{reward_id}:"):
                    assert count <= (reward.per_member_limit or 0), f"{where}: {name} past {reward}"

    def _check_counters(self, tenant: Tenant, scanned: Scanned) -> None:
        """No cap and no allowance is ever exceeded in its period: every counter is what the
        ledger says moved it (cap counters: the sum of what the entries record; allowances:
        the activity earns whose breakdown has the rule's share, by the rule's period of their
        ``occurred_at``), what the model says, never negative, and at most the cap it was held
        to when it last went up (an allowance: its rule's limit)."""
        model = tenant.model
        rules = {rule.rule_id: rule for rule in model.rules}
        moved: defaultdict[str, int] = defaultdict(int)
        for member_id, rows in scanned.entries.items():
            for row in rows:
                for name, by in row["cap_counters"]:
                    moved[name] += by
                if row["movement"] != "earn" or row["activity"] is None:
                    continue
                for source, _, rule_id in row["breakdown"]:
                    rule = rules.get(rule_id or "")
                    if source == "rule" and rule is not None and rule.limit is not None and rule.per is not None:
                        moved[
                            activity_counter(rule.rule_id, member_id, rule.per, row["occurred_at"], model.timezone)
                        ] += 1
        for member_id, rows in scanned.entries.items():  # a referral cap counts its referrers' rewards
            for row in rows:
                referral = model.referrals.get(row["referee_id"] or "")
                if referral is not None and referral.referrer_id == member_id and referral.cap_counter:
                    moved[referral.cap_counter] += 1
        for coupon in scanned.coupons.values():  # a reward's counters count its coupons not cancelled
            if coupon["status"] != CANCELLED:
                moved[f"reward-stock:{coupon['reward_id']}"] += 1
                if coupon["limit_counter"]:
                    moved[coupon["limit_counter"]] += 1
        stored = {name: count for name, count in scanned.counters.items() if count}
        where = tenant.tenant_id
        assert stored == {name: count for name, count in moved.items() if count}, (
            f"{where}: counters {stored}, the ledger moved {dict(moved)}"
        )
        assert stored == {name: count for name, count in model.counters.items() if count}, (
            f"{where}: counters {stored}, the model's {model.counters}"
        )
        for name, count in scanned.counters.items():
            assert count >= 0, f"{where}: counter {name} = {count}"
            if name.startswith("activity:"):
                ceiling = rules[name.split(":")[1]].limit
            elif name.startswith(("reward-stock:", "reward:")):  # a reward's stock or a member's limit
                reward = tenant.rewards.rewards[name.split(":")[1]]
                ceiling = reward.stock if name.startswith("reward-stock:") else reward.per_member_limit
                if ceiling is None:
                    continue  # no stock limit
            else:
                ceiling = model.ceilings.get(name)
            assert ceiling is not None and count <= ceiling, f"{where}: counter {name} = {count} over {ceiling}"

    def _check_read_path(self, tenant: Tenant, member_id: str) -> None:
        """What a client reads: the balance (stored, and as usable now), the ledger page by page
        (newest first) and the member's coupons page by page (newest first)."""
        state = tenant.model.members[member_id]
        where = f"{tenant.tenant_id}/{member_id}"
        balance = tenant.services.points.balance(member_id)
        assert (
            balance.available,
            balance.pending,
            balance.lifetime_earned,
            balance.lifetime_redeemed,
            balance.lifetime_adjusted,
            balance.lifetime_expired,
            balance.lifetime_reversed,
            balance.version,
            balance.order_count,
        ) == (
            state.available,
            state.pending,
            state.earned,
            state.redeemed,
            state.adjusted,
            state.expired,
            state.reversed,
            state.version,
            state.order_count,
        ), f"{where}: balance read {balance}, model {state}"
        now = self.clock.now
        usable = state.effective(now)
        view = tenant.services.points.view(member_id)
        expiring = usable.next_expiry(after=now)
        assert (view.available, view.pending, view.expiring_at, view.expiring_points) == (
            usable.available,
            usable.pending,
            *expiring,
        ), (
            f"{where} at {now}: the balance shows available {view.available}, pending {view.pending}, expiring "
            f"{view.expiring_points} at {view.expiring_at}; the model says {usable.available}, {usable.pending}, "
            f"{expiring[1]} at {expiring[0]} (stored {state.available}/{state.pending}, lots {state.lots})"
        )
        listed: list[LedgerEntry] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = tenant.services.points.transactions(member_id, limit=self.page_size, cursor=cursor)
            assert len(page.items) <= self.page_size
            listed.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        assert [e.sequence for e in listed] == list(range(state.version, 0, -1)), (
            f"{where}: listed sequences {[e.sequence for e in listed]}"
        )
        assert [e.idempotency_key for e in reversed(listed)] == [m.key for m in state.ledger]
        assert sum(e.points for e in listed) == balance.available + balance.pending
        assert sum(e.pending_change for e in listed) == balance.pending
        for entry, modelled in zip(reversed(listed), state.ledger, strict=True):
            if modelled.transaction_id is None:  # settlement: what the model says, for its lot
                assert (
                    entry.movement,
                    entry.points,
                    entry.pending_change,
                    entry.occurred_at,
                    entry.metadata.get("lot_id"),
                    entry.balance_after.available,
                    entry.balance_after.pending,
                ) == (
                    modelled.movement,
                    modelled.points,
                    modelled.pending_change,
                    modelled.occurred_at,
                    modelled.lot_id,
                    modelled.after_available,
                    modelled.after_pending,
                ), f"{where}: listed settlement entry {entry} != model {modelled}"
                continue
            assert entry.transaction_id == modelled.transaction_id
            first = tenant.model.applied[entry.idempotency_key].entry
            assert _shown(entry) == _shown(first), f"listed entry differs from its first response: {entry}"
        mine = [coupon for coupon in tenant.rewards.coupons.values() if coupon.member_id == member_id]
        mine.sort(key=lambda coupon: (coupon.issued_at, coupon.code), reverse=True)
        coupons: list[Any] = []
        cursor = None
        for _ in range(10_000):
            coupon_page = tenant.services.rewards.member_coupons(member_id, limit=self.page_size, cursor=cursor)
            coupons.extend(coupon_page.items)
            cursor = coupon_page.next_cursor
            if not cursor:
                break
        assert [(c.code, str(c.status)) for c in coupons] == [(c.code, c.status) for c in mine], (
            f"{where}: coupons listed {coupons}, the model's (newest first) {mine}"
        )
        self._check_membership(tenant, member_id, balance)
        subscriptions = tenant.plans.of(member_id)
        if subscriptions:
            listed_subscriptions = tenant.services.subscriptions.list(member_id, limit=50, cursor=None).items
            assert [
                (
                    s.subscription_id,
                    s.plan_id,
                    s.tier,
                    s.multiplier,
                    str(s.status),
                    s.starts_at,
                    s.ends_at,
                    s.join_bonus,
                )
                for s in listed_subscriptions
            ] == [
                (s.subscription_id, s.plan_id, s.tier, s.multiplier, s.status, s.starts_at, s.ends_at, s.join_bonus)
                for s in subscriptions
            ], f"{where}: subscriptions listed {listed_subscriptions}, the model's {subscriptions}"

    # --- helpers -------------------------------------------------------------------------------

    def _step(self, rule_name: str) -> None:
        self.verified = False
        self.steps += 1
        CONTEXT.steps = self.steps
        STATS.steps[self.backend] += 1
        STATS.rules[self.backend][rule_name] += 1

    def _outcome(self, code: str) -> None:
        STATS.outcomes[self.backend][code] += 1

    def _fresh(self) -> str:
        self.keys_made += 1
        return f"{self.keys_made:04d}"

    def _debit(self, member: tuple[int, str], size: int, how: str) -> int:
        """``all``: what the model says the member may spend now (expired points excluded,
        matured ones included, whether or not a job has recorded them)."""
        state = self.tenants[member[0]].model.members.get(member[1])
        available = state.effective(self.clock.now).available if state else 0
        if how == "all" and available > 0:
            return available
        if how == "all+1":
            return max(available, 0) + 1
        return size

    def _request(
        self, member: tuple[int, str], movement: MovementType, suffix: str, more: dict[str, Any], **how: Any
    ) -> MovementRequest:
        model = self.tenants[member[0]].model
        if "occurred_at" in more:
            before, zone = more["occurred_at"]
            now = self.clock.now.replace(microsecond=self.clock.now.microsecond // 1000 * 1000)
            more = {**more, "occurred_at": (now - before).astimezone(zone)}
        return MovementRequest(
            member_id=member[1],
            movement=movement,
            idempotency_key=f"{self._fresh()}{suffix}",
            currency=model.currency,
            timezone=model.timezone,
            **how,
            **more,
        )

    def _send_new(
        self, member: tuple[int, str], movement: MovementType, suffix: str, more: dict[str, Any], **how: Any
    ) -> Sent:
        request = self._request(member, movement, suffix, more, **how)
        self._send(self.tenants[member[0]], request)
        return Sent(member[0], request)

    def _over_lot_cap(self, expected: Expected) -> bool:
        if expected.succeeds and expected.after is not None and len(expected.after.lots) > LOT_CAP:
            self._outcome("skipped_lot_cap")
            return True
        return False

    def _send(self, tenant: Tenant, request: MovementRequest) -> None:
        """Send one request, compare its outcome with the model's, and record a success."""
        request = _with(request, currency=tenant.model.currency, timezone=tenant.model.timezone)
        expected = tenant.model.expect(request, self.clock.now)
        if self._over_lot_cap(expected):
            return
        self._judge(tenant, request, expected, self._call(tenant, request))
        self._sync_referrals(tenant, finishing=request.idempotency_key if request.order is not None else None)

    def _judge(self, tenant: Tenant, request: MovementRequest, expected: Expected, outcome: Outcome) -> None:
        self.touched.add((tenant.index, request.member_id))  # a refusal must change nothing: check it too
        self._outcome(outcome.code)
        assert outcome.code == expected.code, (
            f"{tenant.tenant_id} at {self.clock.now}: {_describe(request)} -> {outcome.code} ({outcome.error!r}); "
            f"the model expected {expected.code}; model: {tenant.model.describe()}"
        )
        if outcome.code == "idempotency_key_reused":
            assert isinstance(outcome.error, LoyaltyError)
            applied = tenant.model.applied[request.idempotency_key]
            assert outcome.error.details["transaction_id"] == applied.entry.transaction_id
        if not expected.succeeds:
            return
        assert outcome.result is not None
        if expected.replay_of is not None:
            assert outcome.result.replayed, "a replay of an applied key was not marked replayed"
            assert _shown(outcome.result.entry) == _shown(expected.replay_of.entry), (
                "a replay did not answer exactly as the first response"
            )
            return
        self._check_fresh(tenant, request, expected, outcome.result, replayed=False)
        tenant.model.record(request, expected, outcome.result.entry)

    def _check_fresh(
        self, tenant: Tenant, request: MovementRequest, expected: Expected, result: MovementResult, *, replayed: bool
    ) -> None:
        assert result.replayed is replayed, f"replayed={result.replayed}, expected {replayed}"
        entry = result.entry
        wanted = expected_entry_fields(request, expected, tenant.model.currency)
        if replayed:  # rebuilt from the stored entry, which keeps what a response shows, not the lot summary
            for name in ("balance_after.lot_count", "balance_after.next_maturity_at", "balance_after.order_count"):
                del wanted[name]
        got = {name: _field(entry, name) for name in wanted}
        differs = {name: (got[name], wanted[name]) for name in wanted if got[name] != wanted[name]}
        assert not differs, f"{_describe(request)} at {self.clock.now}: entry differs, (got, model): {differs}"
        assert entry.occurred_at == (request.occurred_at or self.clock.now)
        if not replayed:
            assert entry.created_at == self.clock.now
        assert entry.transaction_id not in self.transaction_ids, "a transaction id was reused"
        self.transaction_ids.add(entry.transaction_id)
        counts = STATS.lifecycle[self.backend]
        for settled in expected.settlement:
            counts[f"lots {settled.movement}d with a movement"] += 1
        if request.movement is MovementType.REVERSE:
            counts["reversals"] += 1
            counts["reversals giving cap counters back"] += bool(expected.cap_counters)
        if expected.pending_change > 0:
            counts["pending earns"] += 1
        if request.order is not None:
            counts["order earns"] += 1
        rules = {rule.rule_id: rule.kind for rule in tenant.model.rules}
        for source, _, rule_id in expected.breakdown:
            if source == "cap":
                counts["cap cuts"] += 1
            elif source == "rule" and rule_id is not None:
                counts[f"{rules[rule_id]} shares"] += 1
        counts["allowances used"] += sum(1 for name, _, _ in expected.counters if name.startswith("activity:"))

    def _call(self, tenant: Tenant, request: MovementRequest) -> Outcome:
        try:
            return Outcome(SUCCESS, result=tenant.services.points.move(request))
        except LoyaltyError as error:
            return Outcome(error.code, error=error)
        except TransientStoreError as error:  # the API answers it as 503 retry_later
            return Outcome(BUSY, error=error)
        except Crash as error:
            return Outcome("crash", error=error)

    def _run_job(self, tenant: Tenant, job: str, as_of: datetime) -> JobRun:
        """Run one job and compare what it did with the model (whose state is read after the
        run: an operation interleaved inside it has been applied by then)."""
        run = tenant.services.jobs.run(JobName(job), as_of)
        assert run.status is RunStatus.SUCCEEDED, run
        expected = tenant.model.expect_job(job, as_of)
        self._check_counts(run.counts, expected, f"{job} as of {as_of}")
        self._apply_job(tenant, expected)
        listed = tenant.services.jobs.list(limit=3, cursor=None).items
        assert run.run_id in {r.run_id for r in listed}, "the run was not recorded"
        return run

    def _check_counts(self, counts: dict[str, int], expected: JobExpectation, what: str) -> None:
        modelled = {name: counts.get(name, 0) for name in expected.counts}
        others = {name: count for name, count in counts.items() if name not in expected.counts and count}
        assert (modelled, others) == (expected.counts, {}), (
            f"{what}: the job did {counts}; the model expected {expected.counts}"
        )

    def _apply_job(self, tenant: Tenant, expected: JobExpectation) -> None:
        tenant.model.apply_job(expected)
        self.touched.update((tenant.index, member_id) for member_id in expected.after)
        counts = STATS.lifecycle[self.backend]
        counts["job runs"] += 1
        counts["lots expired by jobs"] += expected.counts["lots_expired"]
        counts["lots matured by jobs"] += expected.counts.get("lots_matured", 0)

    def _operation(
        self, tenant: Tenant, member: tuple[int, str], kind: str, size: int, suffix: str
    ) -> tuple[Callable[[], None], Callable[[], bool]]:
        """An operation to interleave, and whether it will commit (asked before it runs)."""
        now = self.clock.now
        if kind in JOBS:
            return (
                lambda: self._run_job(tenant, kind, now) and None,
                lambda: bool(tenant.model.expect_job(kind, now).after),
            )
        movement = MovementType.REDEEM if kind == "redeem" else MovementType.EARN
        request = self._request(member, movement, suffix, {}, points=size)

        def move() -> None:
            outcome = self._call(tenant, request)
            self._judge(tenant, request, tenant.model.expect(request, now), outcome)

        return move, lambda: tenant.model.expect(request, now).succeeds


def _bonus_share(plan: ModelPlan) -> tuple[Part, ...]:
    return (("plan", plan.join_bonus, f"plan:{plan.plan_id}"),)


def _left_to_reverse(model: TenantModel, member: MemberState, reference: str) -> int:
    earned, taken, _ = model.reversible(member, reference)
    return earned - taken


def _with(request: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(request, **changes)


def _changed(request: MovementRequest, change: str, *, other_member: str) -> MovementRequest:
    """The same key with a body that differs in one respect."""
    if request.order is not None and change in ("points", "amount", "movement"):  # another order
        order = request.order
        if change == "movement":
            return _with(request, order=_with(order, order_id=f"{order.order_id}*"))
        return _with(request, order=_with(order, total=order.total + Decimal(1).scaleb(-MINOR_UNITS[order.currency])))
    if change == "points" or (change == "amount" and request.amount is None):
        if request.amount is not None:
            return _with(request, amount=None, points=7)
        return _with(request, points=(request.points or 0) + (1 if (request.points or 0) >= 0 else -1))
    if change == "amount":
        return _with(request, amount=f"{request.amount}1" if "." in (request.amount or "") else "1.5")
    if change == "reference":
        return _with(request, reference=(request.reference or "") + "*")
    if change == "metadata":
        return _with(request, metadata={**request.metadata, "changed": "yes"})
    if change == "pending_days":
        return _with(request, pending_days=(request.pending_days or 0) + 1)
    if change == "member" and other_member != request.member_id:
        return _with(request, member_id=other_member)
    following = {
        MovementType.EARN: MovementType.REDEEM,
        MovementType.REDEEM: MovementType.ADJUST,
        MovementType.ADJUST: MovementType.REVERSE,
        MovementType.REVERSE: MovementType.EARN,
    }
    moved = following[request.movement]
    points = request.points if request.points is not None else 3
    if moved is not MovementType.ADJUST:
        points = abs(points)
    return _with(
        request,
        movement=moved,
        amount=None,
        points=points,
        reason="changed" if moved is MovementType.ADJUST else None,
    )


def _stand_in(activity: Activity) -> MovementRequest:
    """What names an activity the model refuses or replays, in reports and for its key."""
    return MovementRequest(
        member_id=activity.member_id,
        movement=MovementType.EARN,
        idempotency_key=activity.idempotency_key,
        reference=activity.reference,
        occurred_at=activity.occurred_at,
        metadata={**activity.metadata, "activity": activity.type},
    )


def _changed_activity(activity: Activity, change: str, *, other_member: str) -> Activity:
    """The same key with an activity that differs in one respect."""
    if change == "member" and other_member != activity.member_id:
        return _with(activity, member_id=other_member)
    if change == "reference":
        return _with(activity, reference=(activity.reference or "") + "*")
    if change == "metadata":
        return _with(activity, metadata={**activity.metadata, "changed": "yes"})
    following = ACTIVITIES[(ACTIVITIES.index(activity.type) + 1) % len(ACTIVITIES)]
    return _with(activity, type=following)


def _parts(breakdown: tuple[Any, ...]) -> tuple[Part, ...]:
    return tuple((share.source, share.points, share.rule_id) for share in breakdown)


def _field(entry: LedgerEntry, name: str) -> Any:
    if name == "breakdown":
        return _parts(entry.breakdown)
    value: Any = entry
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _shown(entry: LedgerEntry) -> dict[str, Any]:
    """What a client sees of a movement's response, times compared as instants (a replay
    shows ``occurred_at`` in UTC where the first response echoed the client's offset:
    test_replays.py covers that representation)."""
    return presenters.movement(entry).model_dump()


def _describe(request: MovementRequest) -> str:
    amount = f"amount={request.amount}" if request.amount is not None else f"points={request.points}"
    if request.order is not None:
        amount = f"order={request.order}"
    more = f" reference={request.reference!r}" if request.reference is not None else ""
    more += f" pending_days={request.pending_days}" if request.pending_days is not None else ""
    return f"{request.movement} {amount}{more} for {request.member_id} key={request.idempotency_key!r}"


def _row(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["key"],
        row["movement"],
        row["points"],
        row["pending_change"],
        row["after_available"],
        row["after_pending"],
        row["breakdown"],
        row["cap_counters"],
    )


_NUMBER = ("available", "pending", "version", "lot_count", "next_expiry_points")
_LIFETIMES = ("lifetime_earned", "lifetime_redeemed", "lifetime_adjusted", "lifetime_expired", "lifetime_reversed")
_SCANNED = (
    *("pk", "sk", "member_id", *_NUMBER, *_LIFETIMES, "next_expiry_at", "next_maturity_at"),
    *("gsi1pk", "gsi1sk", "points", "movement", "txn_id", "bal_available", "bal_pending", "pending_change", "metadata"),
    *("remaining", "original", "earned_at", "expires_at", "matures_at", "gsi2pk"),
    *("order_count", "bd", "cc", "occurred_at", "count"),
    *("reference", "reward_id", "status", "limit_counter"),
)
_NAMES = {f"#a{i}": name for i, name in enumerate(_SCANNED)}
_PROJECTION = ", ".join(_NAMES)
_DATE = UTCDateTimeAttribute()


def _number(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def _date(item: dict[str, Any], name: str) -> datetime | None:
    return _DATE.deserialize(item[name]["S"]) if name in item else None


@dataclass
class Scanned:
    """A tenant table as a strongly consistent scan reads it."""

    balances: dict[str, dict[str, Any]]
    entries: dict[str, list[dict[str, Any]]]
    lots: dict[str, dict[str, dict[str, Any]]]
    #: Counter items (caps, allowances, rewards' stock and limits) by name.
    counters: dict[str, int]
    #: Coupons issued (not pool codes), by code.
    coupons: dict[str, dict[str, Any]]


def _scan(client: Any, table: str) -> Scanned:
    """Balances, ledger entries, lots and counters of a tenant table (strongly consistent)."""
    balances: dict[str, dict[str, Any]] = {}
    entries: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    lots: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    counters: dict[str, int] = {}
    coupons: dict[str, dict[str, Any]] = {}
    start: dict[str, Any] | None = None
    while True:
        page = client.scan(
            TableName=table,
            ConsistentRead=True,
            ProjectionExpression=_PROJECTION,
            ExpressionAttributeNames=_NAMES,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        for item in page["Items"]:
            sort_key = item["sk"]["S"]
            if sort_key == "#BALANCE":
                balances[item["member_id"]["S"]] = {
                    **{name: _number(item, name) for name in (*_NUMBER, *_LIFETIMES, "order_count")},
                    "next_expiry_at": _date(item, "next_expiry_at"),
                    "next_maturity_at": _date(item, "next_maturity_at"),
                }
            elif sort_key == "#ENTRY":
                member_id = item["gsi1pk"]["S"].removeprefix("MEMBER#").removesuffix("#LEDGER")
                metadata = item.get("metadata", {}).get("M", {})
                entries[member_id].append(
                    {
                        "key": item["pk"]["S"].removeprefix("LEDGER#"),
                        "sequence": int(item["gsi1sk"]["S"]),
                        "points": _number(item, "points"),
                        "pending_change": _number(item, "pending_change"),
                        "movement": item["movement"]["S"],
                        "transaction_id": item["txn_id"]["S"],
                        "after_available": _number(item, "bal_available"),
                        "after_pending": _number(item, "bal_pending"),
                        "lot_id": metadata.get("lot_id", {}).get("S"),
                        "activity": metadata.get("activity", {}).get("S"),
                        "reward_id": metadata.get("reward_id", {}).get("S"),
                        "plan_id": metadata.get("plan_id", {}).get("S"),
                        "referee_id": metadata.get("referee_id", {}).get("S"),
                        "reference": item.get("reference", {}).get("S"),
                        "occurred_at": _date(item, "occurred_at"),
                        "breakdown": tuple(
                            (source, points, rule_id) for source, _, points, rule_id in json.loads(item["bd"]["S"])
                        )
                        if "bd" in item
                        else (),
                        "cap_counters": tuple((name, by) for name, by in json.loads(item["cc"]["S"]))
                        if "cc" in item
                        else (),
                    }
                )
            elif sort_key == "#COUPON" and "member_id" in item:
                coupons[item["pk"]["S"].removeprefix("COUPON#")] = {
                    "reward_id": item["reward_id"]["S"],
                    "member_id": item["member_id"]["S"],
                    "status": item["status"]["S"],
                    "points": _number(item, "points"),
                    "expires_at": _date(item, "expires_at"),
                    "limit_counter": item.get("limit_counter", {}).get("S"),
                }
            elif sort_key == "#COUNTER":
                counters[item["pk"]["S"].removeprefix("COUNTER#")] = _number(item, "count")
            elif sort_key.startswith("LOT#"):
                index = item.get("gsi2pk", {}).get("S")
                lots[item["pk"]["S"].removeprefix("MEMBER#")][sort_key.removeprefix("LOT#")] = {
                    "remaining": _number(item, "remaining"),
                    "original": _number(item, "original"),
                    "earned_at": _date(item, "earned_at"),
                    "expires_at": _date(item, "expires_at"),
                    "matures_at": _date(item, "matures_at"),
                    "index": index.split("#")[0] if index else None,
                }
        start = page.get("LastEvaluatedKey")
        if not start:
            return Scanned(balances, dict(entries), dict(lots), counters, coupons)


# --- the tests --------------------------------------------------------------------------------

#: CI: a fixed, small number of examples per backend (the module stays under two minutes).
CI_EXAMPLES = {"dynamodb-local": 16, "moto": 10}
CI_STEPS = 30
SOAK_STEPS_PER_EXAMPLE = 50


def _settings(max_examples: int, step_count: int) -> settings:
    return settings(
        max_examples=max_examples,
        stateful_step_count=step_count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def test_the_ledger_agrees_with_its_model(model_backend: str) -> None:
    CONTEXT.backend = model_backend
    started = time.monotonic()
    target = int(os.environ.get("LOYALTY_SOAK_STEPS", "0"))
    try:
        if target <= 0:
            run_state_machine_as_test(LedgerMachine, settings=_settings(CI_EXAMPLES[model_backend], CI_STEPS))
        else:
            while STATS.steps[model_backend] < target:
                missing = target - STATS.steps[model_backend]
                batch = max(1, math.ceil(missing / (0.8 * SOAK_STEPS_PER_EXAMPLE)))
                run_state_machine_as_test(LedgerMachine, settings=_settings(batch, SOAK_STEPS_PER_EXAMPLE))
    finally:
        STATS.seconds[model_backend] += time.monotonic() - started
        report(STATS.line(model_backend))
