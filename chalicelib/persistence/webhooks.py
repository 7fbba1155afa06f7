"""Webhook endpoints, their deliveries and the dispatch checkpoint, in the tenant's own table.

Keys (see :mod:`chalicelib.persistence.models`): an endpoint is ``WEBHOOK#<id>`` / ``#WEBHOOK``
(listed in ``gsi1`` under ``WEBHOOKS``); its deliveries share its partition as
``DELIVERY#<event ulid>`` (the delivery log, newest first) and, while outstanding, sit in
``gsi1`` under ``WEBHOOK#<id>#OUTBOX`` (the outbox, oldest event first). Deliveries are
written whole with BatchWriteItem (1 write unit per KB, no transaction premium): their keys
are deterministic, so a replayed dispatch rewrites the same records.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.clock import isoformat
from chalicelib.domain.ports import Page
from chalicelib.domain.webhooks import (
    OUTSTANDING,
    Attempt,
    Delivery,
    DeliveryStatus,
    Webhook,
    WebhookStatus,
)
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.checkpoints import FeedCheckpoint
from chalicelib.persistence.errors import cancellation_codes, response_code, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import DeliveryItem, WebhookItem
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.signing_secrets import decode_secrets, encode_secrets

_WEBHOOKS = "WEBHOOKS"
_WEBHOOK_SK = "#WEBHOOK"
_DELIVERY_PREFIX = "DELIVERY#"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def webhook_pk(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def outbox_partition(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}#OUTBOX"


class WebhookRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models
        self._checkpoint = FeedCheckpoint(models, _WEBHOOKS)

    # --- endpoints -----------------------------------------------------------------------------

    def add(self, webhook: Webhook, audit: AuditEntry | None = None) -> None:
        item = self._models.webhook(pk=webhook_pk(webhook.webhook_id), sk=_WEBHOOK_SK, **_webhook_attributes(webhook))
        item.gsi1pk, item.gsi1sk = _WEBHOOKS, webhook.webhook_id
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(item, condition=self._models.webhook.pk.does_not_exist())

    def get(self, webhook_id: str, *, consistent: bool = True) -> Webhook | None:
        with translate_transient():
            try:
                item = self._models.webhook.get(webhook_pk(webhook_id), _WEBHOOK_SK, consistent_read=consistent)
            except self._models.webhook.DoesNotExist:
                return None
        return _to_webhook(item)

    def list(self) -> list[Webhook]:
        with translate_transient():
            return [_to_webhook(item) for item in self._models.webhook.gsi1.query(_WEBHOOKS)]

    def put(self, webhook: Webhook, audit: AuditEntry | None = None) -> None:
        model = self._models.webhook
        actions = [
            getattr(model, name).set(value) if value is not None else getattr(model, name).remove()
            for name, value in _webhook_attributes(webhook).items()
        ]
        if audit is None:
            self._update(webhook.webhook_id, actions, model.pk.exists())
            return
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.update(model(pk=webhook_pk(webhook.webhook_id), sk=_WEBHOOK_SK), actions, model.pk.exists())
        except TransactWriteError as error:
            if "ConditionalCheckFailed" not in cancellation_codes(error):  # deleted meanwhile: as _update
                raise

    def set_health(self, webhook_id: str, *, failing_since: datetime | None, retry_at: datetime | None) -> None:
        model = self._models.webhook
        actions = [
            model.failing_since.set(failing_since) if failing_since else model.failing_since.remove(),
            model.retry_at.set(retry_at) if retry_at else model.retry_at.remove(),
        ]
        self._update(webhook_id, actions, model.pk.exists())

    def disable(self, webhook_id: str, *, at: datetime, reason: str) -> None:
        model = self._models.webhook
        actions = [
            model.status.set(str(WebhookStatus.DISABLED)),
            model.disabled_at.set(at),
            model.disabled_reason.set(reason),
            model.updated_at.set(at),
            model.retry_at.remove(),
        ]
        self._update(webhook_id, actions, model.status == str(WebhookStatus.ENABLED))

    def delete(self, webhook_id: str, audit: AuditEntry | None = None) -> bool:
        model = self._models.webhook
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.delete(model(pk=webhook_pk(webhook_id), sk=_WEBHOOK_SK), condition=model.pk.exists())
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in cancellation_codes(error):
                return False
            raise
        return True

    def claim_drain(self, webhook_id: str, *, now: datetime, until: datetime) -> bool:
        model = self._models.webhook
        condition = model.pk.exists() & (model.drain_lease_until.does_not_exist() | (model.drain_lease_until < now))
        return self._update(webhook_id, [model.drain_lease_until.set(until)], condition)

    def release_drain(self, webhook_id: str) -> None:
        model = self._models.webhook
        self._update(webhook_id, [model.drain_lease_until.remove()], model.pk.exists())

    def _update(self, webhook_id: str, actions: builtins.list[Any], condition: Any) -> bool:
        item = self._models.webhook(pk=webhook_pk(webhook_id), sk=_WEBHOOK_SK)
        try:
            with translate_transient():
                item.update(actions=actions, condition=condition)
        except UpdateError as error:
            if response_code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    # --- deliveries ----------------------------------------------------------------------------

    def save_deliveries(self, deliveries: builtins.list[Delivery], audit: AuditEntry | None = None) -> None:
        """In batches; with ``audit`` (a manual redelivery), in one transaction with the entry."""
        if audit is not None:
            with audited_transaction(self._models.audit, audit) as tx:
                for delivery in deliveries:
                    tx.save(self._delivery_item(delivery))
            return
        if not deliveries:
            return
        with translate_transient(), self._models.delivery.batch_write() as batch:
            for delivery in deliveries:
                batch.save(self._delivery_item(delivery))

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        sk = _DELIVERY_PREFIX + delivery_id.removeprefix("dlv_")
        with translate_transient():
            try:
                return _to_delivery(self._models.delivery.get(webhook_pk(webhook_id), sk, consistent_read=True))
            except self._models.delivery.DoesNotExist:
                return None

    def list_deliveries(
        self, webhook_id: str, *, limit: int, cursor: str | None, kept_after: datetime
    ) -> Page[Delivery]:
        model = self._models.delivery
        partition = webhook_pk(webhook_id)
        start = decode_cursor(cursor, fields=("pk", "sk"), partition=("pk", partition)) if cursor else None
        with translate_transient():
            rows = list(
                model.query(
                    partition,
                    model.sk.startswith(_DELIVERY_PREFIX),
                    # Past its TTL but not yet deleted by DynamoDB (which takes up to days).
                    filter_condition=model.expires_at.does_not_exist() | (model.expires_at > kept_after),
                    scan_index_forward=False,
                    limit=limit + 1,
                    last_evaluated_key=start,
                )
            )
        return paginate(rows, limit=limit, key_of=lambda row: {"pk": row.pk, "sk": row.sk}, convert=_to_delivery)

    def outbox(self, webhook_id: str, *, limit: int) -> builtins.list[Delivery]:
        with translate_transient():
            rows = self._models.delivery.gsi1.query(outbox_partition(webhook_id), limit=limit)
            return [_to_delivery(row) for row in rows]

    def _delivery_item(self, delivery: Delivery) -> DeliveryItem:
        ulid = delivery.delivery_id.removeprefix("dlv_")
        item = self._models.delivery(
            pk=webhook_pk(delivery.webhook_id),
            sk=_DELIVERY_PREFIX + ulid,
            delivery_id=delivery.delivery_id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            member_id=delivery.member_id,
            payload=delivery.payload,
            status=str(delivery.status),
            attempts=delivery.attempts,
            history=json.dumps(
                [[isoformat(a.at), a.status_code, a.latency_ms, a.error] for a in delivery.history],
                separators=(",", ":"),
            )
            if delivery.history
            else None,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
            next_attempt_at=delivery.next_attempt_at,
            succeeded_at=delivery.succeeded_at,
            expires_at=delivery.kept_until,
        )
        if delivery.status in OUTSTANDING:
            item.gsi1pk, item.gsi1sk = outbox_partition(delivery.webhook_id), ulid
        return item

    # --- the dispatch checkpoint -----------------------------------------------------------------

    def claim_checkpoint(self, *, owner: str, now: datetime, until: datetime) -> tuple[bool, str | None]:
        taken, cursor, _ = self._checkpoint.claim(owner=owner, now=now, until=until)
        return taken, cursor

    def advance_checkpoint(self, *, owner: str, cursor: str, now: datetime) -> bool:
        return self._checkpoint.advance(owner=owner, cursor=cursor, now=now)

    def release_checkpoint(self, *, owner: str) -> None:
        self._checkpoint.release(owner=owner)


def _webhook_attributes(webhook: Webhook) -> dict[str, Any]:
    return {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "events": set(webhook.events),
        "description": webhook.description,
        "status": str(webhook.status),
        "secrets": encode_secrets(webhook.secrets),
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "active_since": webhook.active_since,
        "failing_since": webhook.failing_since,
        "retry_at": webhook.retry_at,
        "disabled_at": webhook.disabled_at,
        "disabled_reason": webhook.disabled_reason,
    }


def _to_webhook(item: WebhookItem) -> Webhook:
    return Webhook(
        webhook_id=item.webhook_id,
        url=item.url,
        events=frozenset(item.events or ()),
        description=item.description,
        status=WebhookStatus(item.status),
        secrets=decode_secrets(item.secrets),
        created_at=item.created_at,
        updated_at=item.updated_at,
        active_since=item.active_since,
        failing_since=item.failing_since,
        retry_at=item.retry_at,
        disabled_at=item.disabled_at,
        disabled_reason=item.disabled_reason,
    )


def _to_delivery(item: DeliveryItem) -> Delivery:
    history = tuple(
        Attempt(at=datetime.fromisoformat(at), status_code=code, latency_ms=int(latency), error=error)
        for at, code, latency, error in json.loads(item.history or "[]")
    )
    return Delivery(
        webhook_id=item.webhook_id,
        delivery_id=item.delivery_id,
        event_id=item.event_id,
        event_type=item.event_type,
        member_id=item.member_id,
        payload=item.payload,
        status=DeliveryStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        attempts=int(item.attempts or 0),
        history=history,
        next_attempt_at=item.next_attempt_at,
        succeeded_at=item.succeeded_at,
    )
