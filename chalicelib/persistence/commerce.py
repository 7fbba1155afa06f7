"""Order events and Shopify integrations, in the tenant's own table.

Keys: a handled order event is ``ORDER#<source>#<order id>`` / ``EVENT#<event id>`` (one
partition per order: a refund reads its order's events in one query); an integration is
``SHOPIFY#<id>`` / ``#SHOPIFY``, listed in ``gsi1`` under ``SHOPIFY``.
"""

from __future__ import annotations

from decimal import Decimal

from pynamodb.exceptions import PutError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.commerce import OrderEventRecord, OrderEventType, Outcome
from chalicelib.domain.shopify import ShopifyIntegration
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import response_code, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import OrderEventItem, ShopifyIntegrationItem
from chalicelib.persistence.signing_secrets import decode_secrets, encode_secrets

_EVENT_PREFIX = "EVENT#"
_SHOPIFY_SK = "#SHOPIFY"
_SHOPIFY = "SHOPIFY"


def order_pk(source: str, order_id: str) -> str:
    return f"ORDER#{source}#{order_id}"


class OrderEventRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self, source: str, order_id: str, event_id: str) -> OrderEventRecord | None:
        with translate_transient():
            try:
                item = self._models.order_event.get(
                    order_pk(source, order_id), _EVENT_PREFIX + event_id, consistent_read=True
                )
            except self._models.order_event.DoesNotExist:
                return None
        return _to_record(item)

    def for_order(self, source: str, order_id: str) -> list[OrderEventRecord]:
        model = self._models.order_event
        with translate_transient():
            rows = model.query(order_pk(source, order_id), model.sk.startswith(_EVENT_PREFIX), consistent_read=True)
            return [_to_record(item) for item in rows]

    def add(self, record: OrderEventRecord) -> OrderEventRecord:
        model = self._models.order_event
        item = model(
            pk=order_pk(record.source, record.order_id),
            sk=_EVENT_PREFIX + record.event_id,
            source=record.source,
            order_id=record.order_id,
            event_id=record.event_id,
            event_type=str(record.type),
            fingerprint=record.fingerprint,
            member_id=record.member_id,
            outcome=str(record.outcome),
            created_at=record.created_at,
            ledger_key=record.ledger_key,
            refund_amount=None if record.refund_amount is None else str(record.refund_amount),
            points=record.points,
        )
        try:
            with translate_transient():
                item.save(condition=model.pk.does_not_exist())
        except PutError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
            existing = self.get(record.source, record.order_id, record.event_id)
            if existing is None:
                raise
            return existing
        return record


def _to_record(item: OrderEventItem) -> OrderEventRecord:
    return OrderEventRecord(
        source=item.source,
        order_id=item.order_id,
        event_id=item.event_id,
        type=OrderEventType(item.event_type),
        fingerprint=item.fingerprint,
        member_id=item.member_id,
        outcome=Outcome(item.outcome),
        created_at=item.created_at,
        ledger_key=item.ledger_key,
        refund_amount=Decimal(item.refund_amount) if item.refund_amount is not None else None,
        points=int(item.points or 0),
    )


class ShopifyRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add(self, integration: ShopifyIntegration, audit: AuditEntry | None = None) -> None:
        item = self._item(integration)
        item.gsi1pk, item.gsi1sk = _SHOPIFY, integration.integration_id
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(item, condition=self._models.shopify.pk.does_not_exist())

    def put(self, integration: ShopifyIntegration, audit: AuditEntry | None = None) -> None:
        item = self._item(integration)
        item.gsi1pk, item.gsi1sk = _SHOPIFY, integration.integration_id
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(item, condition=self._models.shopify.pk.exists())

    def get(self, integration_id: str) -> ShopifyIntegration | None:
        with translate_transient():
            try:
                item = self._models.shopify.get(f"SHOPIFY#{integration_id}", _SHOPIFY_SK, consistent_read=True)
            except self._models.shopify.DoesNotExist:
                return None
        return _to_integration(item)

    def _item(self, integration: ShopifyIntegration) -> ShopifyIntegrationItem:
        return self._models.shopify(
            pk=f"SHOPIFY#{integration.integration_id}",
            sk=_SHOPIFY_SK,
            integration_id=integration.integration_id,
            description=integration.description,
            auto_enrol=integration.auto_enrol,
            secrets=encode_secrets(integration.secrets),
            created_at=integration.created_at,
            updated_at=integration.updated_at,
        )


def _to_integration(item: ShopifyIntegrationItem) -> ShopifyIntegration:
    return ShopifyIntegration(
        integration_id=item.integration_id,
        description=item.description,
        auto_enrol=bool(item.auto_enrol),
        secrets=decode_secrets(item.secrets),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )
