"""Paid membership in a tenant's table: the plan catalog, subscriptions, reported periods,
recording requests, and what a plan change writes in a transaction (``add_plan_write``).

    pk                   sk            gsi2 (sparse, keys only)                   what
    PROGRAM              #PLANS        -                                          the plan catalog (JSON)
    MEMBER#<member>      SUB#<sub id>  PLANS#<shard> / <ends at>#<member>#<sub>   a subscription (indexed while active)
    SUBREF#<reference>   #SUBREF       -                                          a reported period, by reference
    SUBREQ#<key>         #SUBREQ       -                                          an Idempotency-Key's first result

The balance item holds the grant in force (``pl``), written in the same transactions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.events import EventType
from chalicelib.domain.notifications import Notice
from chalicelib.domain.plans import (
    Outcome,
    Period,
    PeriodRecord,
    Plan,
    PlanCatalog,
    PlanGrant,
    PlanWrite,
    PlanWriteRefused,
    Recording,
    RequestRecord,
    Subscription,
    SubscriptionStatus,
)
from chalicelib.domain.ports import BalanceChanged, Page
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, cancellation_codes, translate_transient
from chalicelib.persistence.index_keys import (
    BALANCE,
    DUE_SHARDS,
    due_shard,
    member_pk,
    sortable,
)
from chalicelib.persistence.notifications import notice_item
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite
from chalicelib.persistence.tiers import tier_unchanged

if TYPE_CHECKING:
    from chalicelib.domain.entries import Balance
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.models import BalanceItem, SubscriptionItem

_PROGRAM = "PROGRAM"
_CATALOG_SK = "#PLANS"
_SUB = "SUB#"
_REF, _REF_SK = "SUBREF#", "#SUBREF"
_REQ, _REQ_SK = "SUBREQ#", "#SUBREQ"
LAPSE_PREFIX = "PLANS#"


def _at(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


# --- the balance's grant -------------------------------------------------------------------------


def encode_grant(grant: PlanGrant | None) -> str | None:
    if grant is None:
        return None
    fields = [grant.subscription_id, grant.plan_id, grant.tier, format(grant.multiplier, "f")]
    return json.dumps([*fields, _at(grant.starts_at), _at(grant.ends_at)], separators=(",", ":"))


def decode_grant(raw: str | None) -> PlanGrant | None:
    if not raw:
        return None
    subscription_id, plan_id, tier, multiplier, starts_at, ends_at = json.loads(raw)
    return PlanGrant(
        subscription_id,
        plan_id,
        tier,
        Decimal(multiplier),
        datetime.fromisoformat(starts_at),
        datetime.fromisoformat(ends_at),
    )


def plan_actions(balance: type[BalanceItem], new: Balance) -> list[Any]:
    """SET the grant, or REMOVE it (the ledger's commit sets ``tier_rev`` with the tier fields)."""
    encoded = encode_grant(new.plan)
    return [balance.plan.set(encoded) if encoded is not None else balance.plan.remove()]


# --- items <-> domain ----------------------------------------------------------------------------


def _subscription_data(value: Subscription) -> dict[str, Any]:
    return {
        "id": value.subscription_id,
        "member": value.member_id,
        "plan": value.plan_id,
        "tier": value.tier,
        "x": format(value.multiplier, "f"),
        "status": str(value.status),
        "from": _at(value.starts_at),
        "to": _at(value.ends_at),
        "created": _at(value.created_at),
        "updated": _at(value.updated_at),
        "cancelled": _at(value.cancelled_at),
        "lapsed": _at(value.lapsed_at),
        "periods": [[p.reference, _at(p.start), _at(p.end), _at(p.recorded_at)] for p in value.periods],
        "count": value.period_count,
        "bonus": value.join_bonus,
        "v": value.version,
    }


def _to_subscription(data: dict[str, Any]) -> Subscription:
    return Subscription(
        subscription_id=data["id"],
        member_id=data["member"],
        plan_id=data["plan"],
        tier=data["tier"],
        multiplier=Decimal(data["x"]),
        status=SubscriptionStatus(data["status"]),
        starts_at=datetime.fromisoformat(data["from"]),
        ends_at=datetime.fromisoformat(data["to"]),
        created_at=datetime.fromisoformat(data["created"]),
        updated_at=datetime.fromisoformat(data["updated"]),
        version=int(data["v"]),
        periods=tuple(
            Period(reference, datetime.fromisoformat(start), datetime.fromisoformat(end), datetime.fromisoformat(at))
            for reference, start, end, at in data["periods"]
        ),
        period_count=int(data["count"]),
        cancelled_at=_moment(data.get("cancelled")),
        lapsed_at=_moment(data.get("lapsed")),
        join_bonus=int(data.get("bonus") or 0),
    )


def _subscription_item(models: TenantModels, value: Subscription) -> SubscriptionItem:
    active = value.status is SubscriptionStatus.ACTIVE
    return models.subscription(
        pk=member_pk(value.member_id),
        sk=f"{_SUB}{value.subscription_id}",
        gsi2pk=f"{LAPSE_PREFIX}{due_shard(value.member_id)}" if active else None,
        gsi2sk=f"{sortable(value.ends_at)}#{value.member_id}#{value.subscription_id}" if active else None,
        data=json.dumps(_subscription_data(value), separators=(",", ":")),
        version=value.version,
    )


def _recording_data(value: Recording, bonus_transaction_id: str | None) -> dict[str, Any]:
    return {
        "outcome": str(value.outcome),
        "subscription": _subscription_data(value.subscription),
        "at": _at(value.recorded_at),
        "bonus": value.bonus_points,
        "txn": bonus_transaction_id,
    }


def _to_recording(data: dict[str, Any]) -> Recording:
    return Recording(
        outcome=Outcome(data["outcome"]),
        subscription=_to_subscription(data["subscription"]),
        recorded_at=datetime.fromisoformat(data["at"]),
        bonus_points=int(data["bonus"]),
        bonus_transaction_id=data.get("txn"),
    )


# --- a plan change in a transaction --------------------------------------------------------------


def add_plan_write(
    models: TenantModels, tx: GuardedTransactWrite, write: PlanWrite, *, bonus_transaction_id: str | None = None
) -> None:
    """Everything of ``write`` but the balance, each item under its condition (labelled, so a
    refusal is recognised): subscriptions over their previous version, the period and the
    request only if new, each event only once."""
    model = models.subscription
    for subscription in write.subscriptions:
        previous = subscription.version - 1
        condition = model.pk.does_not_exist() if previous == 0 else model.version == previous
        tx.save(_subscription_item(models, subscription), condition=condition, label=subscription)
    if write.period is not None:
        period = write.period
        data: dict[str, Any] = {
            "member": period.member_id,
            "sub": period.subscription_id,
            "plan": period.plan_id,
            "from": _at(period.period_start),
            "to": _at(period.period_end),
            "at": _at(period.recorded_at),
        }
        tx.save(
            model(pk=f"{_REF}{period.reference}", sk=_REF_SK, data=json.dumps(data, separators=(",", ":"))),
            condition=model.pk.does_not_exist(),
            label=period,
        )
    if write.request is not None:
        request = write.request
        data = {
            "fingerprint": request.fingerprint,
            "member": request.member_id,
            "recording": _recording_data(request.recording, bonus_transaction_id),
        }
        tx.save(
            model(pk=f"{_REQ}{request.idempotency_key}", sk=_REQ_SK, data=json.dumps(data, separators=(",", ":"))),
            condition=model.pk.does_not_exist(),
            label=request,
        )
    for event in write.events:
        notice = Notice(
            event.event_id, EventType(event.type), event.member_id, event.subject, event.created_at, dict(event.data)
        )
        tx.save(notice_item(models, notice), condition=models.notice.pk.does_not_exist(), label=event)


def refused_plan_items(write: PlanWrite, refused: list[object]) -> bool:
    """Whether one of the write's own conditions (not the balance's) failed."""
    mine = [*write.subscriptions, write.period, write.request, *write.events]
    return any(label is item for label in refused for item in mine if item is not None)


# --- repositories --------------------------------------------------------------------------------


class PlanCatalogRepository:
    """The catalog is one item (``PROGRAM`` / ``#PLANS``), replaced whole."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self) -> PlanCatalog | None:
        with translate_transient():
            try:
                item = self._models.rule.get(_PROGRAM, _CATALOG_SK)
            except DoesNotExist:
                return None
        data = json.loads(item.definition)
        return PlanCatalog(
            plans=tuple(
                Plan(
                    plan_id=plan["plan_id"],
                    name=plan["name"],
                    tier=plan.get("tier"),
                    multiplier=Decimal(plan["multiplier"]),
                    perks=tuple(plan.get("perks") or ()),
                    join_bonus=int(plan.get("join_bonus") or 0),
                )
                for plan in data["plans"]
            ),
            updated_at=_moment(data.get("updated_at")),
        )

    def put(self, catalog: PlanCatalog, audit: AuditEntry | None = None) -> None:
        definition = {
            "updated_at": _at(catalog.updated_at),
            "plans": [
                {
                    "plan_id": plan.plan_id,
                    "name": plan.name,
                    "tier": plan.tier,
                    "multiplier": format(plan.multiplier, "f"),
                    "perks": list(plan.perks),
                    "join_bonus": plan.join_bonus,
                }
                for plan in catalog.plans
            ],
        }
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(self._models.rule(pk=_PROGRAM, sk=_CATALOG_SK, definition=json.dumps(definition)))


class SubscriptionRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self, member_id: str, subscription_id: str) -> Subscription | None:
        with translate_transient():
            try:
                item = self._models.subscription.get(
                    member_pk(member_id), f"{_SUB}{subscription_id}", consistent_read=True
                )
            except DoesNotExist:
                return None
        return _to_subscription(json.loads(item.data))

    def list(self, member_id: str, *, limit: int, cursor: str | None) -> Page[Subscription]:
        model = self._models.subscription
        partition = member_pk(member_id)
        start = decode_cursor(cursor, fields=("pk", "sk"), partition=("pk", partition)) if cursor else None
        with translate_transient():
            rows = model.query(
                partition,
                model.sk.startswith(_SUB),
                scan_index_forward=False,
                limit=limit + 1,
                last_evaluated_key=start,
            )
            return paginate(
                rows,
                limit=limit,
                key_of=lambda row: {"pk": row.pk, "sk": row.sk},
                convert=lambda row: _to_subscription(json.loads(row.data)),
            )

    def latest_lapsed(self, member_id: str, plan_id: str) -> Subscription | None:
        model = self._models.subscription
        with translate_transient():
            rows = model.query(
                member_pk(member_id), model.sk.startswith(_SUB), scan_index_forward=False, consistent_read=True
            )
            for row in rows:
                subscription = _to_subscription(json.loads(row.data))
                if subscription.plan_id == plan_id:
                    return subscription if subscription.status is SubscriptionStatus.LAPSED else None
        return None

    def get_period(self, reference: str) -> PeriodRecord | None:
        with translate_transient():
            try:
                item = self._models.subscription.get(f"{_REF}{reference}", _REF_SK, consistent_read=True)
            except DoesNotExist:
                return None
        data = json.loads(item.data)
        return PeriodRecord(
            reference=reference,
            member_id=data["member"],
            subscription_id=data["sub"],
            plan_id=data["plan"],
            period_start=datetime.fromisoformat(data["from"]),
            period_end=datetime.fromisoformat(data["to"]),
            recorded_at=datetime.fromisoformat(data["at"]),
        )

    def get_request(self, idempotency_key: str) -> RequestRecord | None:
        with translate_transient():
            try:
                item = self._models.subscription.get(f"{_REQ}{idempotency_key}", _REQ_SK, consistent_read=True)
            except DoesNotExist:
                return None
        data = json.loads(item.data)
        return RequestRecord(idempotency_key, data["fingerprint"], data["member"], _to_recording(data["recording"]))

    def apply(self, previous: Balance, write: PlanWrite) -> None:
        """The balance's grant (only if its tier_rev is still the one read) and the write."""
        new = write.apply(previous, previous)
        balance = self._models.balance
        try:
            with translate_transient(), GuardedTransactWrite(connection=balance._get_connection().connection) as tx:
                tx.update(
                    balance(pk=member_pk(previous.member_id), sk=BALANCE),
                    actions=[*plan_actions(balance, new), balance.tier_rev.set(new.tier_rev)],
                    condition=balance.pk.exists() & tier_unchanged(balance, previous),
                )
                add_plan_write(self._models, tx, write)
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            refused = [
                label for label, code in zip(tx.labels(), codes, strict=False) if code == "ConditionalCheckFailed"
            ]
            if refused_plan_items(write, refused):
                raise PlanWriteRefused(write.member_id) from None
            if "ConditionalCheckFailed" in codes:
                raise BalanceChanged(previous.member_id) from None
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise

    def due(self, as_of: datetime) -> Iterator[tuple[str, str]]:
        index = self._models.subscription.gsi2
        upper = f"{sortable(as_of)}#~"
        for shard in range(DUE_SHARDS):
            with translate_transient():
                for row in index.query(f"{LAPSE_PREFIX}{shard}", self._models.subscription.gsi2sk <= upper):
                    _, member_id, subscription_id = (row.gsi2sk or "").split("#", 2)
                    yield member_id, subscription_id
