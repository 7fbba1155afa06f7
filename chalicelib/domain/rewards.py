"""The rewards catalog and coupons.

A reward costs points and, once redeemed, gives the member a coupon: a code the shop or the
till accepts, valid for ``valid_days``. A redemption is one ledger movement (``redeem``,
whose reference is the coupon's code) whose DynamoDB transaction also moves the reward's
counters and writes the coupon (see ``LedgerStore.commit``):

* ``reward-stock:<reward>``: coupons issued and not cancelled, never past ``stock``;
* ``reward:<reward>:<member>`` (or ``...:<YYYY-MM>`` in the tenant's time zone): the member's
  coupons of the reward, never past ``per_member_limit``;
* ``donation:<cause>``: points given to a charity's cause;
* the coupon: a generated code put only if absent, or a code of the brand's pool claimed
  only if still available.

So a reward is never oversold, a member never passes a limit, and points are never debited
without a coupon (or a coupon issued without its points), whatever runs concurrently.
Cancelling a coupon is the same in reverse: one ``adjust`` credit of its points, the
counters given back, and the coupon marked cancelled only if it is still issued. Using a
coupon marks it used, only if it is still issued and valid, in the transaction that writes
its ``coupon.used`` event (once per coupon).
"""

from __future__ import annotations

import builtins
import re
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chalicelib.domain.audit import SYSTEM, AuditAction, Auditor
from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import (
    CodePoolNotUsed,
    CouponCodeExists,
    CouponNotUsable,
    IdempotencyKeyReused,
    InvalidRequest,
    LimitReached,
    LoyaltyError,
    NotFound,
    OutOfStock,
    RetryLater,
    RewardUnavailable,
    TransientStoreError,
)
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import new_notice_id, ulid
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.notifications import Notice
from chalicelib.domain.ports import CounterChange, CouponWrite, CouponWriteKind, Page

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.domain.entries import LedgerEntry
    from chalicelib.domain.ledger import PointsService
    from chalicelib.domain.ports import LedgerStore, RewardStore

REWARD_ID_PATTERN = re.compile(r"^rwd_[0-9A-HJKMNP-TV-Z]{26}$")
#: Generated codes: no 0/O, 1/I/L, so a code read aloud or typed from a receipt is unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_GROUPS, CODE_GROUP_LENGTH = 3, 4  # XXXX-XXXX-XXXX: 31**12, about 59 bits
#: Codes a brand uploads: what a path segment may hold.
POOL_CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
#: Attempts at a coupon when its code turns out to be taken (a pool code claimed concurrently).
MAX_CODE_ATTEMPTS = 8
#: Rounds of the ledger's own retries a redemption waits out when a hot reward's counters conflict.
MAX_BUSY_RETRIES = 16
BUSY_BACKOFF_BASE_SECONDS = 0.02
BUSY_BACKOFF_CAP_SECONDS = 0.5
#: Pool codes read per attempt, one picked at random among them (spreads concurrent claims).
POOL_SAMPLE = 25


class RewardType(StrEnum):
    FIXED_DISCOUNT = "fixed_discount"
    PERCENT_DISCOUNT = "percent_discount"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"
    GIFT_CARD = "gift_card"
    CHARITY_DONATION = "charity_donation"
    EXPERIENCE = "experience"


class LimitPeriod(StrEnum):
    EVER = "ever"
    MONTH = "month"


class CodeSource(StrEnum):
    GENERATED = "generated"
    POOL = "pool"


class CouponStatus(StrEnum):
    #: A pool code not issued yet (never shown as a coupon).
    AVAILABLE = "available"
    ISSUED = "issued"
    USED = "used"
    #: Issued and past its validity (derived when read: nothing needs to run for it).
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class LockReason(StrEnum):
    ARCHIVED = "archived"
    WINDOW = "window"
    TIER = "tier"
    STOCK = "stock"
    LIMIT = "limit"
    BALANCE = "balance"


def new_reward_id(at: datetime | None = None) -> str:
    return f"rwd_{ulid(at)}"


def generate_code() -> str:
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH)) for _ in range(CODE_GROUPS))
    return "-".join(groups)


@dataclass(frozen=True)
class Reward:
    reward_id: str
    name: str
    type: RewardType
    points_cost: int
    created_at: datetime
    updated_at: datetime
    version: int = 1
    description: str | None = None
    #: fixed_discount and gift_card: the value, in the tenant's currency.
    amount: Decimal | None = None
    #: percent_discount: 1-100.
    percent: int | None = None
    #: free_product: the product.
    sku: str | None = None
    #: charity_donation: the cause the points go to (totals per cause are kept).
    cause: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    #: Coupons that may be issued in all (None: unlimited); cancelled ones come back.
    stock: int | None = None
    per_member_limit: int | None = None
    limit_period: LimitPeriod = LimitPeriod.EVER
    #: Tiers that may redeem it (empty: every member). Members have no tier until tiers
    #: exist, so a restricted reward is locked (``tier``) for everybody until then.
    tiers: frozenset[str] = frozenset()
    #: Days a coupon stays usable after it is issued (None: no end).
    valid_days: int | None = None
    codes: CodeSource = CodeSource.GENERATED
    archived_at: datetime | None = None

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        needs = {
            RewardType.FIXED_DISCOUNT: "amount",
            RewardType.GIFT_CARD: "amount",
            RewardType.PERCENT_DISCOUNT: "percent",
            RewardType.FREE_PRODUCT: "sku",
            RewardType.CHARITY_DONATION: "cause",
        }
        for name in ("amount", "percent", "sku", "cause"):
            wanted = needs.get(self.type) == name
            if wanted and getattr(self, name) is None:
                problems.append((name, f"a {self.type} reward needs {name}"))
            if not wanted and getattr(self, name) is not None:
                problems.append((name, f"a {self.type} reward takes no {name}"))
        if self.percent is not None and not 1 <= self.percent <= 100:
            problems.append(("percent", "must be between 1 and 100"))
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            problems.append(("ends_at", "must be after starts_at"))
        if self.limit_period is LimitPeriod.MONTH and self.per_member_limit is None:
            problems.append(("limit_period", "a period needs per_member_limit"))
        if problems:
            raise InvalidRequest.for_fields("invalid reward", *((p, m, "value_error") for p, m in problems))

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def in_window(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (self.ends_at is None or at < self.ends_at)

    @property
    def stock_counter(self) -> str:
        return f"reward-stock:{self.reward_id}"

    def limit_counter(self, member_id: str, at: datetime, timezone: str) -> str | None:
        if self.per_member_limit is None:
            return None
        name = f"reward:{self.reward_id}:{member_id}"
        if self.limit_period is LimitPeriod.MONTH:
            name += f":{at.astimezone(ZoneInfo(timezone)):%Y-%m}"
        return name

    @property
    def donation_counter(self) -> str | None:
        return f"donation:{self.cause}" if self.type is RewardType.CHARITY_DONATION else None

    def static_locks(self, at: datetime, member_tier: str | None) -> list[LockReason]:
        """What locks the reward whatever the member holds: archive, window, tier."""
        reasons = []
        if self.archived:
            reasons.append(LockReason.ARCHIVED)
        if not self.in_window(at):
            reasons.append(LockReason.WINDOW)
        if self.tiers and member_tier not in self.tiers:
            reasons.append(LockReason.TIER)
        return reasons


#: Fields a reward's edit may change (its type and code source are fixed at creation).
EDITABLE = frozenset(
    {
        "name",
        "description",
        "points_cost",
        "amount",
        "percent",
        "sku",
        "cause",
        "starts_at",
        "ends_at",
        "stock",
        "per_member_limit",
        "limit_period",
        "tiers",
        "valid_days",
    }
)


@dataclass(frozen=True)
class Coupon:
    code: str
    reward_id: str
    status: CouponStatus
    source: CodeSource
    member_id: str | None = None
    #: The points the member paid (given back if it is cancelled).
    points: int = 0
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    limit_counter: str | None = None
    donation_counter: str | None = None
    used_at: datetime | None = None
    used_key: str | None = None
    used_reference: str | None = None
    cancelled_at: datetime | None = None

    def status_at(self, at: datetime) -> CouponStatus:
        if self.status is CouponStatus.ISSUED and self.expires_at is not None and self.expires_at <= at:
            return CouponStatus.EXPIRED
        return self.status


@dataclass(frozen=True)
class RewardStats:
    #: Coupons issued and not cancelled.
    issued: int
    #: Coupons that may still be issued (None: no stock limit).
    remaining: int | None
    #: charity_donation: points given to the reward's cause by every reward of that cause.
    cause_total: int | None = None


@dataclass(frozen=True)
class Redemption:
    """A redemption or a cancellation: its ledger entry and the coupon (as stored now on replay)."""

    entry: LedgerEntry
    coupon: Coupon
    replayed: bool


@dataclass(frozen=True)
class Eligibility:
    reward: Reward
    reasons: tuple[LockReason, ...]
    #: Points the member lacks (0 when the balance is enough).
    points_short: int
    remaining_stock: int | None
    #: Coupons the member may still get in the current period (None: no limit).
    remaining_for_member: int | None

    @property
    def redeemable(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class CouponUse:
    coupon: Coupon
    replayed: bool


class _CodeTaken(LoyaltyError):
    """A generated code that exists already, or a pool code claimed by someone else first.
    Never reaches a caller: the redemption tries another code."""

    code = "coupon_code_taken"


def _no_tier(member_id: str) -> str | None:
    return None


class RewardService:
    def __init__(
        self,
        store: RewardStore,
        points: PointsService,
        ledger: LedgerStore,
        *,
        clock: Clock = utc_now,
        timezone: str = "UTC",
        tier_of: Callable[[str], str | None] = _no_tier,
        sleep: Callable[[float], None] = time.sleep,
        auditor: Auditor | None = None,
    ) -> None:
        self.sleep = sleep
        self.auditor = auditor or Auditor(SYSTEM, clock)
        self.store = store
        self.points = points
        self.ledger = ledger
        self.clock = clock
        #: The tenant's time zone: monthly limits count calendar months in it.
        self.timezone = timezone
        #: The member's tier, once tiers exist (until then: no member is in a tier).
        self.tier_of = tier_of

    # --- the catalog --------------------------------------------------------------------

    def create(self, **values: Any) -> Reward:
        now = self.clock()
        reward = Reward(reward_id=new_reward_id(now), created_at=now, updated_at=now, **values)
        self.store.add(reward, self.auditor.entry(AuditAction.REWARD_CREATED, "reward", reward.reward_id, after=reward))
        return reward

    def get(self, reward_id: str) -> Reward:
        reward = self.store.get(reward_id) if REWARD_ID_PATTERN.fullmatch(reward_id) else None
        if reward is None:
            raise NotFound(f"reward {reward_id!r} not found")
        return reward

    def list(self, *, limit: int, cursor: str | None) -> Page[Reward]:
        return self.store.list(limit=limit, cursor=cursor)

    def update(self, reward_id: str, changes: dict[str, Any]) -> Reward:
        if unknown := set(changes) - EDITABLE:
            raise InvalidRequest.for_fields(
                "these fields cannot change", *((name, "not editable", "extra_forbidden") for name in sorted(unknown))
            )
        return self._edit(reward_id, AuditAction.REWARD_UPDATED, lambda reward, now: replace(reward, **changes))

    def archive(self, reward_id: str) -> Reward:
        """No new coupon of it from now on; issued coupons stay usable. Idempotent."""
        return self._edit(
            reward_id,
            AuditAction.REWARD_ARCHIVED,
            lambda reward, now: reward if reward.archived else replace(reward, archived_at=now),
        )

    def _edit(self, reward_id: str, action: AuditAction, change: Any) -> Reward:
        for _ in range(5):
            current = self.get(reward_id)
            now = self.clock()
            edited = change(current, now)
            if edited is current:
                return current
            edited = replace(edited, updated_at=now, version=current.version + 1)
            audit = self.auditor.entry(action, "reward", reward_id, before=current, after=edited, at=now)
            if self.store.replace(edited, previous_version=current.version, audit=audit):
                return edited
        raise RetryLater(f"reward {reward_id!r} is being edited concurrently")

    def stats(self, rewards: builtins.list[Reward]) -> builtins.list[RewardStats]:
        """Each reward's coupons issued, stock left and (charity) its cause's total, in one read."""
        names = [reward.stock_counter for reward in rewards]
        names += [reward.donation_counter for reward in rewards if reward.donation_counter]
        counts = self.store.counters(names) if names else {}
        return [
            RewardStats(
                issued=counts.get(reward.stock_counter, 0),
                remaining=max(0, reward.stock - counts.get(reward.stock_counter, 0))
                if reward.stock is not None
                else None,
                cause_total=counts.get(reward.donation_counter, 0) if reward.donation_counter else None,
            )
            for reward in rewards
        ]

    # --- codes ----------------------------------------------------------------------------

    def add_codes(self, reward_id: str, codes: builtins.list[str]) -> int:
        reward = self.get(reward_id)
        if reward.codes is not CodeSource.POOL:
            raise CodePoolNotUsed(
                f"reward {reward_id!r} issues generated codes; create it with codes 'pool' to upload codes",
                details={"reward_id": reward_id, "codes": str(reward.codes)},
            )
        if len(set(codes)) != len(codes):
            raise InvalidRequest.for_fields("codes repeat", ("codes", "items must not repeat", "value_error"))
        if bad := [code for code in codes if not POOL_CODE_PATTERN.fullmatch(code)]:
            raise InvalidRequest.for_fields(
                "malformed codes",
                *(("codes", f"{code!r}: 4-64 letters, digits, '_' or '-'", "value_error") for code in bad),
            )
        if taken := self.store.existing_codes(codes):
            raise CouponCodeExists(
                f"{len(taken)} of these codes exist already; nothing was added",
                details={"codes": sorted(taken)[:20], "count": len(taken)},
            )
        self.store.add_pool_codes(
            [
                Coupon(code=code, reward_id=reward_id, status=CouponStatus.AVAILABLE, source=CodeSource.POOL)
                for code in codes
            ],
            # The codes themselves stay out of the trail: each one is worth a reward.
            self.auditor.entry(AuditAction.REWARD_CODES_UPLOADED, "reward", reward_id, after={"count": len(codes)}),
        )
        return len(codes)

    # --- redemption -------------------------------------------------------------------------

    def redeem(
        self, member_id: str, reward_id: str, idempotency_key: str, *, actor_key_id: str | None = None
    ) -> Redemption:
        taken: set[str] = set()
        busy = 0
        while len(taken) < MAX_CODE_ATTEMPTS:
            try:
                replay = self._replayed_redemption(member_id, reward_id, idempotency_key)
            except TransientStoreError:
                busy = self._wait_out(busy)
                continue
            if replay is not None:
                return replay
            reward = self.get(reward_id)
            now = self.clock()
            if locks := reward.static_locks(now, self.tier_of(member_id)):
                raise RewardUnavailable(
                    f"reward {reward_id!r} cannot be redeemed now ({locks[0]})",
                    details={"reward_id": reward_id, "reason": str(locks[0])},
                )
            coupon, kind = self._new_coupon(reward, member_id, now, taken)
            request = MovementRequest(
                member_id=member_id,
                movement=MovementType.REDEEM,
                idempotency_key=idempotency_key,
                points=reward.points_cost,
                reference=coupon.code,
                description=f"Reward: {reward.name}",
                metadata={"reward_id": reward_id},
                actor_key_id=actor_key_id,
                timezone=self.timezone,
                counters=self._counters(reward, coupon, +1),
                coupons=(CouponWrite(kind, coupon, refusal=_CodeTaken(coupon.code)),),
            )
            try:
                result = self.points.move(request)
            except _CodeTaken:
                taken.add(coupon.code)
                continue
            except IdempotencyKeyReused:
                continue  # a concurrent duplicate won with another code: replay it
            except (RetryLater, TransientStoreError):
                busy = self._wait_out(busy)  # a hot reward: its counters conflict; try again
                continue
            except LimitReached as reached:
                raise self._limit_refusal(reward, reached) from None
            return Redemption(result.entry, coupon, replayed=False)
        raise RetryLater("no coupon code could be taken")

    def _new_coupon(
        self, reward: Reward, member_id: str, now: datetime, taken: set[str]
    ) -> tuple[Coupon, CouponWriteKind]:
        if reward.codes is CodeSource.POOL:
            available = [
                c for c in self.store.pool_codes(reward.reward_id, limit=POOL_SAMPLE + len(taken)) if c not in taken
            ]
            if not available:
                raise OutOfStock(
                    f"reward {reward.reward_id!r} has no codes left in its pool",
                    details={"reward_id": reward.reward_id, "reason": "pool_empty"},
                )
            code, kind = secrets.choice(available), CouponWriteKind.CLAIM
        else:
            code, kind = generate_code(), CouponWriteKind.ISSUE
        coupon = Coupon(
            code=code,
            reward_id=reward.reward_id,
            status=CouponStatus.ISSUED,
            source=reward.codes,
            member_id=member_id,
            points=reward.points_cost,
            issued_at=now,
            expires_at=now + timedelta(days=reward.valid_days) if reward.valid_days else None,
            limit_counter=reward.limit_counter(member_id, now, self.timezone),
            donation_counter=reward.donation_counter,
        )
        return coupon, kind

    @staticmethod
    def _counters(reward: Reward, coupon: Coupon, sign: int) -> tuple[CounterChange, ...]:
        """The redemption's counters (sign +1, within their limits) or their return (sign -1)."""
        changes = [CounterChange(reward.stock_counter, sign, at_most=reward.stock if sign > 0 else None)]
        if coupon.limit_counter:
            limit = reward.per_member_limit if sign > 0 else None
            changes.append(CounterChange(coupon.limit_counter, sign, at_most=limit))
        if coupon.donation_counter:
            changes.append(CounterChange(coupon.donation_counter, sign * coupon.points))
        return tuple(changes)

    @staticmethod
    def _limit_refusal(reward: Reward, reached: LimitReached) -> LoyaltyError:
        if reached.details.get("counter") == reward.stock_counter:
            return OutOfStock(
                f"reward {reward.reward_id!r} is out of stock ({reward.stock} coupons)",
                details={"reward_id": reward.reward_id, "reason": "stock", "stock": reward.stock},
            )
        period = "ever" if reward.limit_period is LimitPeriod.EVER else "this month"
        return LimitReached(
            f"the member has had this reward {reward.per_member_limit} times ({period})",
            details={
                "reward_id": reward.reward_id,
                "limit": reward.per_member_limit,
                "period": str(reward.limit_period),
                "counter": reached.details.get("counter"),
            },
        )

    def _replayed_redemption(self, member_id: str, reward_id: str, idempotency_key: str) -> Redemption | None:
        """The redemption this key already made, if any; the key used for anything else is refused."""
        entry = self.ledger.get_entry(idempotency_key)
        if entry is None:
            return None
        same = (
            entry.movement is MovementType.REDEEM
            and entry.member_id == member_id
            and entry.metadata.get("reward_id") == reward_id
        )
        coupon = self.store.get_coupon(entry.reference or "") if same else None
        if coupon is None:
            raise _reused(idempotency_key, entry)
        return Redemption(entry, coupon, replayed=True)

    # --- coupons ----------------------------------------------------------------------------

    def coupon(self, code: str) -> Coupon:
        coupon = self.store.get_coupon(code) if POOL_CODE_PATTERN.fullmatch(code) else None
        if coupon is None or coupon.status is CouponStatus.AVAILABLE:
            raise NotFound(f"coupon {code!r} not found")
        return coupon

    def member_coupons(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Coupon]:
        self.points.balance(member_id)  # 404 for an unknown member
        return self.store.member_coupons(member_id, limit=limit, cursor=cursor)

    def use(self, code: str, idempotency_key: str, reference: str | None = None) -> CouponUse:
        """Mark the coupon used, once: the same key again replays; anything else is refused."""
        coupon = self.coupon(code)
        now = self.clock()
        if coupon.status_at(now) is CouponStatus.ISSUED:
            used = replace(
                coupon, status=CouponStatus.USED, used_at=now, used_key=idempotency_key, used_reference=reference
            )
            if self.store.mark_used(used, now=now, event=use_event(used)):
                return CouponUse(used, replayed=False)
            coupon = self.coupon(code)  # used or cancelled concurrently
        if coupon.status is CouponStatus.USED and coupon.used_key == idempotency_key:
            if coupon.used_reference != reference:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request",
                    details={"idempotency_key": idempotency_key, "code": code},
                )
            return CouponUse(coupon, replayed=True)
        raise _not_usable(coupon, now)

    def cancel(self, code: str, idempotency_key: str, *, actor_key_id: str | None = None) -> Redemption:
        """Cancel an issued coupon (used, cancelled ones cannot be) and give its points back."""
        busy = 0
        while True:
            entry = self.ledger.get_entry(idempotency_key)
            coupon = self.coupon(code)
            now = self.clock()
            if entry is not None:
                if entry.movement is not MovementType.ADJUST or entry.reference != code:
                    raise _reused(idempotency_key, entry)
                return Redemption(entry, coupon, replayed=True)
            if coupon.status is not CouponStatus.ISSUED:
                raise _not_usable(coupon, now)
            cancelled = replace(coupon, status=CouponStatus.CANCELLED, cancelled_at=now)
            reward = self.get(coupon.reward_id)
            request = MovementRequest(
                member_id=coupon.member_id or "",
                movement=MovementType.ADJUST,
                idempotency_key=idempotency_key,
                points=coupon.points,
                reference=code,
                reason=f"coupon {code} cancelled: its points given back",
                metadata={"reward_id": coupon.reward_id},
                actor_key_id=actor_key_id,
                timezone=self.timezone,
                counters=self._counters(reward, coupon, -1),
                coupons=(CouponWrite(CouponWriteKind.CANCEL, cancelled, refusal=_not_usable(coupon, now)),),
            )
            try:
                result = self.points.move(request)
            except IdempotencyKeyReused:
                continue  # a concurrent request took this key first: judge it again
            except RetryLater:
                busy = self._wait_out(busy)
                continue
            except CouponNotUsable:
                raise _not_usable(self.coupon(code), now) from None
            return Redemption(result.entry, cancelled if not result.replayed else self.coupon(code), result.replayed)

    def _wait_out(self, busy: int) -> int:
        """The ledger gave up on conflicts (every redemption of a reward updates its stock
        counter, so a popular reward's transactions collide): wait a jittered while and try
        again, a bounded number of times, then let the caller retry (503)."""
        busy += 1
        if busy > MAX_BUSY_RETRIES:
            raise RetryLater("this reward is in high demand")
        self.sleep(backoff_seconds(busy, base=BUSY_BACKOFF_BASE_SECONDS, cap=BUSY_BACKOFF_CAP_SECONDS, jitter="full"))
        return busy

    # --- what a member can redeem ---------------------------------------------------------------

    def for_member(self, member_id: str, *, limit: int, cursor: str | None) -> tuple[int, Page[Eligibility]]:
        """The member's available points, and a page of rewards with what locks each."""
        available = self.points.view(member_id).available  # 404 for an unknown member
        page = self.store.list(limit=limit, cursor=cursor)
        now = self.clock()
        names = []
        for reward in page.items:
            names.append(reward.stock_counter)
            if counter := reward.limit_counter(member_id, now, self.timezone):
                names.append(counter)
        counts = self.store.counters(names) if names else {}
        tier = self.tier_of(member_id)
        result = []
        for reward in page.items:
            reasons = reward.static_locks(now, tier)
            remaining_stock = None
            if reward.stock is not None:
                remaining_stock = max(0, reward.stock - counts.get(reward.stock_counter, 0))
            if (
                reward.codes is CodeSource.POOL
                and not reward.archived
                and not self.store.pool_codes(reward.reward_id, limit=1)
            ):
                remaining_stock = 0
            if remaining_stock == 0:
                reasons.append(LockReason.STOCK)
            remaining_for_member = None
            if counter := reward.limit_counter(member_id, now, self.timezone):
                remaining_for_member = max(0, (reward.per_member_limit or 0) - counts.get(counter, 0))
                if remaining_for_member == 0:
                    reasons.append(LockReason.LIMIT)
            short = max(0, reward.points_cost - available)
            if short:
                reasons.append(LockReason.BALANCE)
            result.append(Eligibility(reward, tuple(reasons), short, remaining_stock, remaining_for_member))
        return available, Page(items=result, next_cursor=page.next_cursor)


def use_event(coupon: Coupon) -> Notice:
    """``coupon.used``: written with the use, once per coupon (its code is the subject)."""
    assert coupon.member_id is not None and coupon.used_at is not None, "a used coupon was issued to a member"
    return Notice(
        notice_id=new_notice_id(coupon.used_at),
        type=EventType.COUPON_USED,
        member_id=coupon.member_id,
        subject=coupon.code,
        created_at=coupon.used_at,
        data={
            "reward_id": coupon.reward_id,
            "code": coupon.code,
            "member_id": coupon.member_id,
            "reference": coupon.used_reference,
            "used_at": isoformat(coupon.used_at),
        },
    )


def _reused(idempotency_key: str, entry: LedgerEntry) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        "this Idempotency-Key was already used with a different request",
        details={"idempotency_key": idempotency_key, "transaction_id": entry.transaction_id},
    )


def _not_usable(coupon: Coupon, now: datetime) -> CouponNotUsable:
    status = coupon.status_at(now)
    return CouponNotUsable(f"coupon {coupon.code!r} is {status}", details={"code": coupon.code, "status": str(status)})
