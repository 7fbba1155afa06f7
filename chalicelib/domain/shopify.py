"""A Shopify-style adapter: a store points its ``orders/paid``, ``refunds/create`` and
``orders/cancelled`` webhooks at one URL of ours, and they become order intake events.

Shopify cannot send our bearer key, so the integration id in the URL names the tenant
(``shp_<ULID>_<tenant>``) and the ``X-Shopify-Hmac-Sha256`` header authenticates: the
base64 HMAC-SHA256 of the raw body under the integration's shared secret. The secret is
needed in the clear to verify, so it is sealed with KMS like webhook signing secrets
(encryption context: tenant and integration), never hashed; it is shown once (when we
generate it) and rotatable, the previous one verifying for an overlap window.

An order earns on what was paid: ``total_price`` with its ``total_tax`` and shipping
(``total_shipping_price_set``) named, each line at its ``price`` less its discount
allocations (which carry the order-level discounts too), so the program's rules for
discounts, shipping and tax apply as to any order (chalicelib.domain.orders).

Members are matched by the Shopify customer id (as the brand's own external id, then as
``shopify:<id>``), then by email (``shopify-email:<sha256 of the address>``, the external id
we give guests); unmatched customers are enrolled under the first of those that applies
when the integration auto-enrols.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.commerce import Customer, OrderEvent, OrderEventType
from chalicelib.domain.errors import InvalidRequest, NotFound, Unauthorized
from chalicelib.domain.ids import ulid
from chalicelib.domain.orders import Order
from chalicelib.domain.webhooks import SigningSecret

if TYPE_CHECKING:
    from chalicelib.domain.webhooks import SecretSealer

SECRET_PREFIX = "shpss_"  # noqa: S105 - a prefix, not a secret
_INTEGRATION_ID = re.compile(r"^shp_([0-9A-HJKMNP-TV-Z]{26})_([a-z][a-z0-9-]{2,31})$")
#: Topics we act on; any other is acknowledged and ignored (Shopify retries non-2xx answers).
TOPICS = {
    "orders/paid": OrderEventType.PAID,
    "refunds/create": OrderEventType.REFUNDED,
    "orders/cancelled": OrderEventType.CANCELLED,
}
MAX_SECRETS = 2


def new_integration_id(tenant_id: str) -> str:
    return f"shp_{ulid()}_{tenant_id}"


def tenant_of(integration_id: str) -> str | None:
    """The tenant an integration id names, or None for an id that is not one of ours."""
    match = _INTEGRATION_ID.fullmatch(integration_id)
    return match.group(2) if match else None


def new_shared_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, raw_body: bytes) -> str:
    """What Shopify sends in ``X-Shopify-Hmac-Sha256``."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class ShopifyIntegration:
    integration_id: str
    description: str | None
    auto_enrol: bool
    secrets: tuple[SigningSecret, ...]
    created_at: datetime
    updated_at: datetime

    def verifying_secrets(self, now: datetime) -> list[SigningSecret]:
        return [s for s in self.secrets if s.active(now)]


@dataclass(frozen=True)
class IssuedIntegration:
    integration: ShopifyIntegration
    #: The plain secret when we generated it (shown once); None when the brand supplied Shopify's.
    secret: str | None


class ShopifyStore(Protocol):
    def add(self, integration: ShopifyIntegration) -> None: ...
    def get(self, integration_id: str) -> ShopifyIntegration | None: ...
    def put(self, integration: ShopifyIntegration) -> None: ...


class ShopifyService:
    def __init__(
        self,
        tenant_id: str,
        store: ShopifyStore,
        sealer: SecretSealer,
        *,
        overlap: timedelta = timedelta(hours=24),
        clock: Clock = utc_now,
    ) -> None:
        self._tenant_id = tenant_id
        self._store = store
        self._sealer = sealer
        self._overlap = overlap
        self._clock = clock

    def create(self, *, description: str | None, auto_enrol: bool, secret: str | None) -> IssuedIntegration:
        now = self._clock()
        integration_id = new_integration_id(self._tenant_id)
        plain = secret or new_shared_secret()
        integration = ShopifyIntegration(
            integration_id=integration_id,
            description=description,
            auto_enrol=auto_enrol,
            secrets=(SigningSecret(self._seal(integration_id, plain), now),),
            created_at=now,
            updated_at=now,
        )
        self._store.add(integration)
        return IssuedIntegration(integration, None if secret else plain)

    def get(self, integration_id: str) -> ShopifyIntegration:
        found = self._store.get(integration_id) if tenant_of(integration_id) == self._tenant_id else None
        if found is None:
            raise NotFound(f"Shopify integration {integration_id!r} not found")
        return found

    def rotate_secret(self, integration_id: str, secret: str | None) -> IssuedIntegration:
        integration = self.get(integration_id)
        now = self._clock()
        plain = secret or new_shared_secret()
        retiring = tuple(
            replace(s, expires_at=min(s.expires_at or now + self._overlap, now + self._overlap))
            for s in integration.verifying_secrets(now)
        )
        kept = (SigningSecret(self._seal(integration_id, plain), now), *retiring[: MAX_SECRETS - 1])
        rotated = replace(integration, secrets=kept, updated_at=now)
        self._store.put(rotated)
        return IssuedIntegration(rotated, None if secret else plain)

    def authenticate(self, integration_id: str, raw_body: bytes, presented: str | None) -> ShopifyIntegration:
        """The integration whose secret signed ``raw_body``; Unauthorized otherwise (the same
        answer for an unknown integration, a missing header and a wrong signature)."""
        refusal = Unauthorized("the webhook's X-Shopify-Hmac-Sha256 does not verify for this integration")
        found = self._store.get(integration_id) if tenant_of(integration_id) == self._tenant_id else None
        if found is None or not presented:
            raise refusal
        context = self._context(integration_id)
        verified = False
        for sealed in found.verifying_secrets(self._clock()):
            expected = signature(self._sealer.open(sealed.sealed, context), raw_body)
            verified |= hmac.compare_digest(expected.encode(), presented.strip().encode())
        if not verified:
            raise refusal
        return found

    def _context(self, integration_id: str) -> dict[str, str]:
        """KMS encryption context: a sealed secret opens only for its own tenant and integration."""
        return {"tenant_id": self._tenant_id, "shopify_integration_id": integration_id}

    def _seal(self, integration_id: str, secret: str) -> str:
        return self._sealer.seal(secret, self._context(integration_id))


# --- payloads -> order events ---------------------------------------------------------------------


def to_order_event(
    integration: ShopifyIntegration,
    topic: str,
    payload: Any,
    *,
    tenant_currency: str,
    timezone: str,
) -> OrderEvent | None:
    """The order event a verified webhook tells, or None for a topic we do not act on."""
    kind = TOPICS.get(topic)
    if kind is None:
        return None
    if not isinstance(payload, dict):
        raise InvalidRequest.for_fields("the webhook body must be a JSON object", ("body", "not an object", "type"))
    source = f"shopify:{integration.integration_id}"
    if kind is OrderEventType.REFUNDED:
        order_id = _id(payload, "order_id")
        return OrderEvent(
            source=source,
            event_id=f"refund-{_id(payload, 'id')}",
            type=kind,
            order_id=order_id,
            currency=tenant_currency,
            timezone=timezone,
            refund_amount=_refund_amount(payload, tenant_currency),
        )
    order_id = _id(payload, "id")
    if kind is OrderEventType.CANCELLED:
        return OrderEvent(
            source=source,
            event_id="cancelled",
            type=kind,
            order_id=order_id,
            currency=tenant_currency,
            timezone=timezone,
        )
    currency = str(payload.get("currency") or "")
    lines = []
    for index, line in enumerate(payload.get("line_items") or []):
        if not isinstance(line, dict):
            continue
        sku = str(line.get("sku") or f"variant-{line.get('variant_id') or index}")[:64]
        category = str(line.get("product_type"))[:64] if line.get("product_type") else None
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            raise InvalidRequest.for_fields(
                "a line item needs a positive quantity", (f"line_items.{index}.quantity", "positive integer", "type")
            )
        lines.append((sku, category, quantity, _text(line.get("price")) or "0", _line_discount(line)))
    total = _text(payload.get("total_price")) or _text(payload.get("subtotal_price"))
    if not total:
        raise InvalidRequest.for_fields("the order has no price", ("total_price", "missing", "missing"))
    order = Order.parse(
        order_id,
        total,
        currency,
        lines,
        tenant_currency,
        shipping=_shipping(payload),
        tax=_text(payload.get("total_tax")),
    )
    found = payload.get("customer")
    customer: dict[str, Any] = found if isinstance(found, dict) else {}
    customer_id = str(customer["id"]) if customer.get("id") is not None else None
    email = str(customer.get("email") or payload.get("email") or "").strip().lower() or None
    name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip() or None
    external_ids = [
        *([customer_id, f"shopify:{customer_id}"] if customer_id else []),
        *([f"shopify-email:{hashlib.sha256(email.encode()).hexdigest()}"] if email else []),
    ]
    if not external_ids:
        raise InvalidRequest.for_fields(
            "the order names neither a customer nor an email", ("customer", "missing", "missing")
        )
    enrol = external_ids[1] if customer_id else external_ids[0]
    return OrderEvent(
        source=source,
        event_id="paid",
        type=kind,
        order_id=order_id,
        currency=tenant_currency,
        timezone=timezone,
        order=order,
        customer=Customer(
            external_ids=tuple(external_ids),
            email=email,
            name=name[:200] if name else None,
            enrol_external_id=enrol if integration.auto_enrol else None,
        ),
    )


def _id(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise InvalidRequest.for_fields(f"the webhook has no {name}", (name, "missing", "missing"))
    text = str(value).strip()
    if len(text) > 64 or not re.fullmatch(r"[\x21-\x7e]+", text):
        raise InvalidRequest.for_fields(f"{name} is malformed", (name, "1-64 visible ASCII characters", "pattern"))
    return text


def _text(value: Any) -> str | None:
    """A Shopify money field (a string, sometimes a number) as text; None when absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


def _line_discount(line: dict[str, Any]) -> str | None:
    """What the line's discount allocations take off it (order-level discounts included, as
    Shopify allocates them to the lines), else its ``total_discount``."""
    allocations = [a.get("amount") for a in line.get("discount_allocations") or [] if isinstance(a, dict)]
    if allocations:
        try:
            return format(sum((Decimal(str(a)) for a in allocations if a is not None), Decimal(0)), "f")
        except InvalidOperation:
            raise InvalidRequest.for_fields(
                "a discount allocation is not a number", ("line_items.discount_allocations", "amount", "decimal")
            ) from None
    return _text(line.get("total_discount"))


def _shipping(payload: dict[str, Any]) -> str | None:
    """The order's shipping, after shipping discounts: ``total_shipping_price_set`` in the shop's
    money, else the sum of its shipping lines."""
    price_set = payload.get("total_shipping_price_set")
    if isinstance(price_set, dict) and isinstance(price_set.get("shop_money"), dict):
        return _text(price_set["shop_money"].get("amount"))
    prices = [
        _text(line.get("discounted_price")) or _text(line.get("price"))
        for line in payload.get("shipping_lines") or []
        if isinstance(line, dict)
    ]
    try:
        return format(sum((Decimal(p) for p in prices if p), Decimal(0)), "f") if prices else None
    except InvalidOperation:
        raise InvalidRequest.for_fields(
            "a shipping price is not a number", ("shipping_lines", "price", "decimal")
        ) from None


def _refund_amount(payload: dict[str, Any], currency: str) -> Decimal:
    """What the refund paid back: its successful refund transactions, else its line subtotals."""
    transactions = [
        t
        for t in payload.get("transactions") or []
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status", "success") == "success"
    ]
    values = [t.get("amount") for t in transactions] or [
        line.get("subtotal") for line in payload.get("refund_line_items") or [] if isinstance(line, dict)
    ]
    try:
        amount = sum((Decimal(str(v)) for v in values if v is not None), Decimal(0))
    except InvalidOperation:
        raise InvalidRequest.for_fields(
            "a refund amount is not a number", ("transactions", "amount", "decimal")
        ) from None
    if amount < 0 or not amount.is_finite():
        raise InvalidRequest.for_fields("a refund amount is negative", ("transactions", "amount", "decimal"))
    return amount
