"""Rewards and coupons in the tenant's table (see chalicelib.persistence.models for the keys).

Coupons are written in two ways: inside a movement's ledger transaction (``add_coupon_write``,
called by ``LedgerRepository.commit``: issue, claim, cancel) and on their own (``mark_used``
with its ``coupon.used`` event, pool uploads). Every write states its condition.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.ports import CouponWrite, CouponWriteKind, Page
from chalicelib.domain.rewards import CodeSource, Coupon, CouponStatus, LimitPeriod, Reward, RewardType
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, cancellation_codes, translate_transient
from chalicelib.persistence.index_keys import COUNTER_PREFIX, COUNTER_SK, sortable
from chalicelib.persistence.notifications import notice_item
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import guarded_transaction

if TYPE_CHECKING:
    from chalicelib.domain.notifications import Notice
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.models import CouponItem, RewardItem
    from chalicelib.persistence.quotas import GuardedTransactWrite

_REWARDS = "REWARDS"
_REWARD_SK = "#REWARD"
_COUPON_SK = "#COUPON"
_INDEX_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")
#: BatchGetItem reads at most 100 keys per request.
_BATCH_GET = 100
#: Attempts at a coupon's use when its transaction meets a concurrent one (then: try later).
_USE_ATTEMPTS = 4


def reward_pk(reward_id: str) -> str:
    return f"REWARD#{reward_id}"


def coupon_pk(code: str) -> str:
    return f"COUPON#{code}"


def pool_partition(reward_id: str) -> str:
    return f"REWARD#{reward_id}#POOL"


def member_coupons_partition(member_id: str) -> str:
    return f"MEMBER#{member_id}#COUPONS"


def add_coupon_write(models: TenantModels, tx: GuardedTransactWrite, write: CouponWrite) -> None:
    """One coupon write of a ledger transaction. Every kind is an update (so the transaction's
    items keep their order: deletes, puts, then updates, the coupon writes last of all)."""
    model, coupon = models.coupon, write.coupon
    item = model(pk=coupon_pk(coupon.code), sk=_COUPON_SK)
    if write.kind is CouponWriteKind.CANCEL:
        assert coupon.cancelled_at is not None, "a cancelled coupon carries its time"
        tx.update(
            item,
            actions=[model.status.set(str(CouponStatus.CANCELLED)), model.cancelled_at.set(coupon.cancelled_at)],
            condition=(model.status == str(CouponStatus.ISSUED)),
            label=write,
        )
        return
    assert coupon.member_id is not None and coupon.issued_at is not None
    actions = [
        model.status.set(str(CouponStatus.ISSUED)),
        model.member_id.set(coupon.member_id),
        model.points.set(coupon.points),
        model.issued_at.set(coupon.issued_at),
        model.gsi1pk.set(member_coupons_partition(coupon.member_id)),
        model.gsi1sk.set(f"{sortable(coupon.issued_at)}#{coupon.code}"),
        *_set_or_remove(model.expires_at, coupon.expires_at),
        *_set_or_remove(model.limit_counter, coupon.limit_counter),
        *_set_or_remove(model.donation_counter, coupon.donation_counter),
    ]
    if write.kind is CouponWriteKind.ISSUE:
        actions += [
            model.reward_id.set(coupon.reward_id),
            model.source.set(str(coupon.source)),
        ]
        condition = model.pk.does_not_exist()
    else:  # CLAIM: the pool code of this reward, still available
        condition = (model.status == str(CouponStatus.AVAILABLE)) & (model.reward_id == coupon.reward_id)
    tx.update(item, actions=actions, condition=condition, label=write)


def _set_or_remove(attribute: Any, value: Any) -> list[Any]:
    return [attribute.set(value) if value is not None else attribute.remove()]


class RewardRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    # --- rewards ------------------------------------------------------------------------

    def get(self, reward_id: str) -> Reward | None:
        with translate_transient():
            try:
                return _to_reward(self._models.reward.get(reward_pk(reward_id), _REWARD_SK, consistent_read=True))
            except DoesNotExist:
                return None

    def add(self, reward: Reward, audit: AuditEntry | None = None) -> None:
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(self._item(reward), condition=self._models.reward.pk.does_not_exist())

    def replace(self, reward: Reward, *, previous_version: int, audit: AuditEntry | None = None) -> bool:
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.save(self._item(reward), condition=(self._models.reward.version == previous_version), label=reward)
        except TransactWriteError as error:
            reasons = zip(tx.labels(), cancellation_codes(error), strict=False)
            if any(label is reward and code == "ConditionalCheckFailed" for label, code in reasons):
                return False
            raise
        return True

    def list(self, *, limit: int, cursor: str | None) -> Page[Reward]:
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", _REWARDS)) if cursor else None
        with translate_transient():
            rows = self._models.reward.gsi1.query(_REWARDS, limit=limit + 1, last_evaluated_key=start)
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_reward)

    def _item(self, reward: Reward) -> RewardItem:
        definition = {
            "name": reward.name,
            "type": str(reward.type),
            "points_cost": reward.points_cost,
            "created_at": reward.created_at.astimezone(UTC).isoformat(),
            "updated_at": reward.updated_at.astimezone(UTC).isoformat(),
            "description": reward.description,
            "amount": str(reward.amount) if reward.amount is not None else None,
            "percent": reward.percent,
            "sku": reward.sku,
            "cause": reward.cause,
            "starts_at": _iso(reward.starts_at),
            "ends_at": _iso(reward.ends_at),
            "stock": reward.stock,
            "per_member_limit": reward.per_member_limit,
            "limit_period": str(reward.limit_period),
            "tiers": sorted(reward.tiers),
            "valid_days": reward.valid_days,
            "codes": str(reward.codes),
            "archived_at": _iso(reward.archived_at),
        }
        return self._models.reward(
            pk=reward_pk(reward.reward_id),
            sk=_REWARD_SK,
            gsi1pk=_REWARDS,
            gsi1sk=reward.reward_id,
            version=reward.version,
            definition=json.dumps(definition, separators=(",", ":")),
        )

    # --- counters -----------------------------------------------------------------------

    def counters(self, names: Sequence[str]) -> dict[str, int]:
        model = self._models.counter
        unique = list(dict.fromkeys(names))
        found: dict[str, int] = {}
        for start in range(0, len(unique), _BATCH_GET):
            keys = [(f"{COUNTER_PREFIX}{name}", COUNTER_SK) for name in unique[start : start + _BATCH_GET]]
            with translate_transient():
                for item in model.batch_get(keys, consistent_read=True):
                    found[item.pk.removeprefix(COUNTER_PREFIX)] = int(item.value or 0)
        return {name: found.get(name, 0) for name in unique}

    # --- coupons and pool codes ---------------------------------------------------------

    def get_coupon(self, code: str) -> Coupon | None:
        with translate_transient():
            try:
                return _to_coupon(self._models.coupon.get(coupon_pk(code), _COUPON_SK, consistent_read=True))
            except DoesNotExist:
                return None

    def member_coupons(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Coupon]:
        partition = member_coupons_partition(member_id)
        start = decode_cursor(cursor, fields=_INDEX_FIELDS, partition=("gsi1pk", partition)) if cursor else None
        with translate_transient():
            rows = self._models.coupon.gsi1.query(
                partition, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(rows, limit=limit, key_of=_index_key, convert=_to_coupon)

    def pool_codes(self, reward_id: str, *, limit: int) -> builtins.list[str]:
        with translate_transient():
            rows = self._models.coupon.gsi1.query(pool_partition(reward_id), limit=limit)
            return [str(row.gsi1sk) for row in rows]

    def existing_codes(self, codes: Sequence[str]) -> builtins.list[str]:
        model = self._models.coupon
        found: list[str] = []
        for start in range(0, len(codes), _BATCH_GET):
            keys = [(coupon_pk(code), _COUPON_SK) for code in codes[start : start + _BATCH_GET]]
            with translate_transient():
                found += [item.pk.removeprefix("COUPON#") for item in model.batch_get(keys, consistent_read=True)]
        return found

    def add_pool_codes(self, coupons: Sequence[Coupon], audit: AuditEntry | None = None) -> None:
        """BatchWriteItem, flushed every 25 items (PynamoDB's batch), unprocessed items retried.
        A batch is not a transaction: ``audit`` is written once every code has landed."""
        now = datetime.now(UTC)
        model = self._models.coupon
        with translate_transient(), model.batch_write() as batch:
            for coupon in coupons:
                batch.save(
                    model(
                        pk=coupon_pk(coupon.code),
                        sk=_COUPON_SK,
                        gsi1pk=pool_partition(coupon.reward_id),
                        gsi1sk=coupon.code,
                        reward_id=coupon.reward_id,
                        status=str(CouponStatus.AVAILABLE),
                        source=str(CodeSource.POOL),
                        uploaded_at=now,
                    )
                )
        if audit is not None:
            with audited_transaction(self._models.audit, audit):
                pass

    def mark_used(self, coupon: Coupon, *, now: datetime, event: Notice) -> bool:
        """The coupon used and its event, in one transaction: the coupon only if it is still
        issued and valid at ``now``, the event only if none of its type, member and code exists."""
        assert coupon.used_at is not None and coupon.used_key is not None, "a used coupon carries its time and key"
        models, model = self._models, self._models.coupon
        condition = (model.status == str(CouponStatus.ISSUED)) & (
            model.expires_at.does_not_exist() | (model.expires_at > now)
        )
        actions = [
            model.status.set(str(CouponStatus.USED)),
            model.used_at.set(coupon.used_at),
            model.used_key.set(coupon.used_key),
            *_set_or_remove(model.used_reference, coupon.used_reference),
        ]
        for _ in range(_USE_ATTEMPTS):
            try:
                with translate_transient(), guarded_transaction(models) as tx:
                    tx.save(notice_item(models, event), condition=models.notice.pk.does_not_exist())
                    tx.update(
                        model(pk=coupon_pk(coupon.code), sk=_COUPON_SK),
                        actions=actions,
                        condition=condition,
                    )
            except TransactWriteError as error:
                codes = cancellation_codes(error)
                if "ConditionalCheckFailed" in codes:
                    return False  # used, cancelled or expired meanwhile (its event exists only if it was used)
                if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                    continue  # a concurrent use of the same coupon: judge it again
                raise
            return True
        raise TransientStoreError(f"coupon {coupon.code!r} is being used concurrently")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _index_key(item: Any) -> dict[str, str]:
    return {"pk": item.pk, "sk": item.sk, "gsi1pk": item.gsi1pk or "", "gsi1sk": item.gsi1sk or ""}


def _to_reward(item: RewardItem) -> Reward:
    data = json.loads(item.definition)

    def moment(name: str) -> datetime | None:
        return datetime.fromisoformat(data[name]) if data.get(name) else None

    return Reward(
        reward_id=item.pk.removeprefix("REWARD#"),
        name=data["name"],
        type=RewardType(data["type"]),
        points_cost=int(data["points_cost"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        version=int(item.version),
        description=data.get("description"),
        amount=Decimal(data["amount"]) if data.get("amount") is not None else None,
        percent=data.get("percent"),
        sku=data.get("sku"),
        cause=data.get("cause"),
        starts_at=moment("starts_at"),
        ends_at=moment("ends_at"),
        stock=data.get("stock"),
        per_member_limit=data.get("per_member_limit"),
        limit_period=LimitPeriod(data.get("limit_period") or LimitPeriod.EVER),
        tiers=frozenset(data.get("tiers") or ()),
        valid_days=data.get("valid_days"),
        codes=CodeSource(data.get("codes") or CodeSource.GENERATED),
        archived_at=moment("archived_at"),
    )


def _to_coupon(item: CouponItem) -> Coupon:
    return Coupon(
        code=item.pk.removeprefix("COUPON#"),
        reward_id=item.reward_id,
        status=CouponStatus(item.status),
        source=CodeSource(item.source),
        member_id=item.member_id,
        points=int(item.points or 0),
        issued_at=item.issued_at,
        expires_at=item.expires_at,
        limit_counter=item.limit_counter,
        donation_counter=item.donation_counter,
        used_at=item.used_at,
        used_key=item.used_key,
        used_reference=item.used_reference,
        cancelled_at=item.cancelled_at,
    )
