"""An order as the earning rules see it, and what of it the customer paid for. Pure.

Points follow the money. An order carries:

* ``total``: what the customer paid in all, shipping and tax included;
* its ``lines`` at their listed prices, each with an optional ``discount`` (off that line);
* an optional order-level ``discount``, and the ``shipping`` and ``tax`` inside the total.

What the goods were paid is the lines after their discounts and the order's discount, never
more than ``total - shipping - tax``: when the lines list more than that (a discount the shop
did not itemise, or tax included in the prices), the difference is a discount too. Every
discount is spread over the lines in proportion to what each cost after its own discount,
in the currency's minor units (largest remainder, so the lines add up to the cent), so a SKU
or category multiplier applies to what each line really cost. Without lines, the goods are
``total - shipping - tax``.

Shipping and tax earn only when the program says so (``earn_on_shipping``, ``earn_on_tax``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.program import Program, minor_units, parse_amount

_ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal
    category: str | None = None
    #: Taken off this line (its listed ``unit_price * quantity``).
    discount: Decimal = _ZERO

    @property
    def amount(self) -> Decimal:
        """The line at its listed price."""
        return self.unit_price * self.quantity

    @property
    def net(self) -> Decimal:
        """The line after its own discount."""
        return self.amount - self.discount


@dataclass(frozen=True)
class PaidOrder:
    """What an order's customer paid, as the earning rules use it."""

    #: Each line's share of what the goods were paid (in the order of ``Order.lines``).
    lines: tuple[Decimal, ...]
    #: What the goods were paid: the lines after every discount (or the total less shipping and tax).
    goods: Decimal
    #: The goods at their listed prices (``goods`` when there are no lines).
    listed: Decimal
    #: Shipping and tax that earn under the program (0 when they do not).
    earning_extras: Decimal

    @property
    def base(self) -> Decimal:
        """What the base rate (and the order-wide multipliers) apply to."""
        return self.goods + self.earning_extras

    @property
    def listed_base(self) -> Decimal:
        """``base`` had the goods been paid at their listed prices."""
        return self.listed + self.earning_extras


@dataclass(frozen=True)
class Order:
    order_id: str
    #: What the customer paid in all, shipping and tax included.
    total: Decimal
    currency: str
    lines: tuple[OrderLine, ...] = ()
    #: Taken off the whole order (spread over the lines).
    discount: Decimal = _ZERO
    shipping: Decimal = _ZERO
    tax: Decimal = _ZERO

    @classmethod
    def parse(
        cls,
        order_id: str,
        total: str,
        currency: str,
        lines: Sequence[tuple[str, str | None, int, str] | tuple[str, str | None, int, str, str | None]],
        tenant_currency: str,
        *,
        discount: str | None = None,
        shipping: str | None = None,
        tax: str | None = None,
    ) -> Order:
        """An order from the API's strings: its currency must be the tenant's; each line is
        ``(sku, category, quantity, unit_price)`` with an optional fifth item, its discount."""
        if currency != tenant_currency:
            raise InvalidRequest.for_fields(
                f"orders are in the tenant's currency, {tenant_currency}",
                ("order.currency", f"expected {tenant_currency}", "currency_mismatch"),
            )
        parsed = []
        for index, line in enumerate(lines):
            sku, category, quantity, price = line[:4]
            line_discount = line[4] if len(line) == 5 else None
            parsed.append(
                OrderLine(
                    sku=sku,
                    category=category,
                    quantity=quantity,
                    unit_price=_money(price, currency, f"order.lines.{index}.unit_price", positive=True),
                    discount=_money(line_discount, currency, f"order.lines.{index}.discount"),
                )
            )
        order = cls(
            order_id=order_id,
            total=_money(total, currency, "order.total", positive=True),
            currency=currency,
            lines=tuple(parsed),
            discount=_money(discount, currency, "order.discount"),
            shipping=_money(shipping, currency, "order.shipping"),
            tax=_money(tax, currency, "order.tax"),
        )
        order.check()
        return order

    def check(self) -> None:
        """Refuse an order whose parts cannot be what was paid (InvalidRequest naming them)."""
        problems = []
        if self.shipping + self.tax > self.total:
            problems.append(("order.shipping", "shipping and tax together exceed the total", "value_error"))
        for index, line in enumerate(self.lines):
            if line.discount > line.amount:
                problems.append(
                    (f"order.lines.{index}.discount", "more than the line's unit_price * quantity", "value_error")
                )
        nets = sum((max(line.net, _ZERO) for line in self.lines), _ZERO)
        if self.lines and self.discount > nets:
            problems.append(("order.discount", "more than the lines cost after their own discounts", "value_error"))
        if problems:
            raise InvalidRequest.for_fields(f"order {self.order_id!r}: {problems[0][1]}", *problems)

    def paid(self, program: Program) -> PaidOrder:
        """What the customer paid for the goods, line by line, and what else earns."""
        goods_paid = self.total - self.shipping - self.tax
        extras = (self.shipping if program.earn_on_shipping else _ZERO) + (self.tax if program.earn_on_tax else _ZERO)
        if not self.lines:
            return PaidOrder((), goods_paid, goods_paid, extras)
        nets = [line.net for line in self.lines]
        net_total = sum(nets, _ZERO)
        goods = min(goods_paid, net_total - self.discount)
        return PaidOrder(
            lines=_spread(nets, net_total - goods, self.currency),
            goods=goods,
            listed=sum((line.amount for line in self.lines), _ZERO),
            earning_extras=extras,
        )

    def canonical(self) -> dict[str, object]:
        """The order's content for fingerprints: the parts an older order could not carry are
        named only when sent, so an order without them fingerprints as it always did."""
        lines = [
            [x.sku, x.category, x.quantity, str(x.unit_price), *([str(x.discount)] if x.discount else [])]
            for x in self.lines
        ]
        extras = {name: str(value) for name in ("discount", "shipping", "tax") if (value := getattr(self, name))}
        return {"total": str(self.total), "currency": self.currency, "lines": lines, **extras}


def _spread(nets: list[Decimal], reduction: Decimal, currency: str) -> tuple[Decimal, ...]:
    """Each line's net less its share of ``reduction``, in proportion to the nets, in whole
    minor units of the currency (largest remainder first, then the earlier line)."""
    if reduction <= 0:
        return tuple(nets)
    unit = Decimal(1).scaleb(-minor_units(currency))
    total = sum(nets, _ZERO)
    cents = int(reduction / unit)
    exact = [Decimal(cents) * net / total for net in nets]
    shares = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    order = sorted(range(len(nets)), key=lambda i: (-(exact[i] - shares[i]), i))
    for index in order[: cents - sum(shares)]:
        shares[index] += 1
    return tuple(net - share * unit for net, share in zip(nets, shares, strict=True))


def _money(value: str | None, currency: str, path: str, *, positive: bool = False) -> Decimal:
    """A decimal string of the currency (at most its minor-unit digits); 0 when not sent."""
    if value is None:
        return _ZERO
    if not positive and _is_zero(value):
        return _ZERO
    try:
        return parse_amount(value, currency)
    except InvalidRequest as error:
        fields = error.details.get("fields", [])
        raise InvalidRequest.for_fields(
            f"{path}: {error.message}", *((path, f["message"], f["type"]) for f in fields)
        ) from None


def _is_zero(value: str) -> bool:
    try:
        return Decimal(value) == 0
    except ArithmeticError:
        return False
