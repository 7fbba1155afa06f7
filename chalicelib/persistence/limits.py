"""DynamoDB's request limits, checked by the application before a request leaves it.

DynamoDB refuses an over-limit write with a ``ValidationException``, which would reach a
caller as a 500. Worse, the test emulators let some through: moto 5.2.5 (measured) accepts
a transaction over 4 MB, a BatchWriteItem of more than 25 requests and numbers of more
than 38 significant digits or outside DynamoDB's range, so code that exceeds them would
pass its tests and fail in AWS. Checking here makes every backend fail the same way, early
and clearly, with :class:`~chalicelib.domain.errors.StorageLimitExceeded` naming the limit.

Checked (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html):

* TransactWriteItems: at most 100 actions and 4 MB in all;
* BatchWriteItem: at most 25 put/delete requests and 16 MB in all;
* an item: at most 400 KB (attribute names count, as do values);
* a number: at most 38 significant digits, magnitude within 1E-130 .. 9.99..E+125.

Sizes follow DynamoDB's documented rules (``item_size``). For an update the stored item's
final size is unknown without reading it: its key plus the values the update writes is
what is checked, a lower bound that still catches any single oversized value.

Every transaction of the application goes through :class:`GuardedTransactWrite`; the
single-item writes (profile updates, program, API keys) carry only fields that the
request schemas bound far below these limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.errors import StorageLimitExceeded

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition
    from pynamodb.expressions.update import Action
    from pynamodb.models import Model

KB = 1024
MB = 1024 * KB

MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * MB
MAX_BATCH_WRITE_REQUESTS = 25
MAX_BATCH_WRITE_BYTES = 16 * MB
MAX_ITEM_BYTES = 400 * KB
MAX_NUMBER_DIGITS = 38
#: Largest and smallest decimal exponent of a number's leading digit DynamoDB stores.
MAX_NUMBER_EXPONENT = 125
MIN_NUMBER_EXPONENT = -130

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]


def _exceeded(limit: str, message: str, *, maximum: int, actual: int, **more: Any) -> StorageLimitExceeded:
    return StorageLimitExceeded(
        f"{message} (DynamoDB allows at most {maximum}; this request has {actual})",
        details={"limit": limit, "maximum": maximum, "actual": actual, **more},
    )


# --- numbers ------------------------------------------------------------------------------------


def significant_digits(number: str) -> int:
    """Digits of ``number`` without leading and trailing zeros (DynamoDB's precision)."""
    digits = "".join(str(digit) for digit in _parse_number(number).as_tuple().digits).strip("0")
    return max(len(digits), 1)


def _parse_number(number: str) -> Decimal:
    try:
        value = Decimal(number)
    except (InvalidOperation, TypeError, ValueError):
        raise StorageLimitExceeded(
            f"{number!r} is not a number DynamoDB can store", details={"limit": "number_format"}
        ) from None
    if not value.is_finite():
        raise StorageLimitExceeded(f"{number!r} is not a number DynamoDB can store", details={"limit": "number_format"})
    return value


def check_number(number: str, *, attribute: str = "") -> None:
    """At most 38 significant digits, and a magnitude DynamoDB can represent."""
    value = _parse_number(number)
    digits = significant_digits(number)
    where = f" in {attribute!r}" if attribute else ""
    if digits > MAX_NUMBER_DIGITS:
        raise _exceeded(
            "number_digits",
            f"a number{where} has more significant digits than DynamoDB stores",
            maximum=MAX_NUMBER_DIGITS,
            actual=digits,
            attribute=attribute,
        )
    if value != 0:
        exponent = value.adjusted()
        if not MIN_NUMBER_EXPONENT <= exponent <= MAX_NUMBER_EXPONENT:
            raise StorageLimitExceeded(
                f"a number{where} is outside DynamoDB's range (1E-130 to 9.99..E+125 in magnitude)",
                details={"limit": "number_range", "attribute": attribute, "exponent": exponent},
            )


# --- sizes --------------------------------------------------------------------------------------


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _number_size(number: str) -> int:
    return (significant_digits(number) + 1) // 2 + 1


def _binary_size(value: Any) -> int:
    return len(value) if isinstance(value, bytes | bytearray) else _utf8(str(value))


def attribute_size(value: AttributeValue, *, attribute: str = "") -> int:
    """Bytes DynamoDB counts for one attribute value (numbers are checked on the way)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        check_number(data, attribute=attribute)
        return _number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(_utf8(member) for member in data)
    if kind == "NS":
        for member in data:
            check_number(member, attribute=attribute)
        return sum(_number_size(member) for member in data)
    if kind == "BS":
        return sum(_binary_size(member) for member in data)
    if kind == "L":
        return 3 + sum(1 + attribute_size(member, attribute=attribute) for member in data)
    if kind == "M":
        return 3 + sum(
            1 + _utf8(name) + attribute_size(member, attribute=f"{attribute}.{name}") for name, member in data.items()
        )
    raise StorageLimitExceeded(f"unknown DynamoDB attribute type {kind!r}", details={"limit": "attribute_type"})


def item_size(item: Item) -> int:
    """An item's size as DynamoDB counts it: each attribute's name plus its value."""
    return sum(_utf8(name) + attribute_size(value, attribute=name) for name, value in item.items())


def check_item(item: Item, *, what: str = "an item") -> int:
    """At most 400 KB; returns the size."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise _exceeded("item_size", f"{what} would exceed DynamoDB's item size", maximum=MAX_ITEM_BYTES, actual=size)
    return size


def _values_size(values: Mapping[str, AttributeValue] | None) -> int:
    return sum(attribute_size(value, attribute=name) for name, value in (values or {}).items())


def _action_size(action: Mapping[str, Any]) -> int:
    """Size of one transaction action: the whole item of a put; the key plus the values of the others."""
    ((kind, request),) = action.items()
    if kind == "Put":
        return check_item(request["Item"], what=f"the item put in {request.get('TableName', 'a table')}")
    size = item_size(request["Key"]) + _values_size(request.get("ExpressionAttributeValues"))
    if size > MAX_ITEM_BYTES:
        raise _exceeded(
            "item_size", f"an {kind.lower()} would exceed DynamoDB's item size", maximum=MAX_ITEM_BYTES, actual=size
        )
    return size


# --- requests -----------------------------------------------------------------------------------


def check_transaction(actions: Sequence[Mapping[str, Any]]) -> int:
    """A TransactWriteItems request (``TransactItems``): 100 actions, 4 MB, each item 400 KB.
    Returns its size."""
    if len(actions) > MAX_TRANSACTION_ACTIONS:
        raise _exceeded(
            "transaction_items",
            "a transaction would write more items than DynamoDB allows",
            maximum=MAX_TRANSACTION_ACTIONS,
            actual=len(actions),
        )
    total = sum(_action_size(action) for action in actions)
    if total > MAX_TRANSACTION_BYTES:
        raise _exceeded(
            "transaction_size",
            "a transaction would exceed DynamoDB's size",
            maximum=MAX_TRANSACTION_BYTES,
            actual=total,
        )
    return total


def check_batch_write(request_items: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
    """A BatchWriteItem request (``RequestItems``): 25 requests, 16 MB, each item 400 KB.
    Returns its size."""
    requests = [(table, request) for table, batch in request_items.items() for request in batch]
    if len(requests) > MAX_BATCH_WRITE_REQUESTS:
        raise _exceeded(
            "batch_write_items",
            "a batch write would carry more requests than DynamoDB allows",
            maximum=MAX_BATCH_WRITE_REQUESTS,
            actual=len(requests),
        )
    total = 0
    for table, request in requests:
        if "PutRequest" in request:
            total += check_item(request["PutRequest"]["Item"], what=f"the item put in {table}")
        else:
            total += item_size(request["DeleteRequest"]["Key"])
    if total > MAX_BATCH_WRITE_BYTES:
        raise _exceeded(
            "batch_write_size",
            "a batch write would exceed DynamoDB's size",
            maximum=MAX_BATCH_WRITE_BYTES,
            actual=total,
        )
    return total


class GuardedTransactWrite(TransactWrite):
    """PynamoDB's TransactWrite that checks DynamoDB's limits when it commits, before any
    request is sent: an over-limit transaction raises StorageLimitExceeded and writes nothing.

    Each action may carry a ``label``; :meth:`labels` lists them in the order the request
    sends the actions, which is the order of a cancellation's reasons. PynamoDB sends
    condition checks, then deletes, then puts, then updates, whatever order they were
    added in, so a reason is never found by counting the calls made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._labels: dict[str, list[object]] = {"check": [], "delete": [], "put": [], "update": []}

    def condition_check(
        self,
        model_cls: type[Model],
        hash_key: Any,
        range_key: Any | None = None,
        condition: Condition | None = None,
        *,
        label: object = None,
    ) -> None:
        super().condition_check(model_cls, hash_key, range_key, condition)
        self._labels["check"].append(label)

    def delete(
        self,
        model: Model,
        condition: Condition | None = None,
        *,
        add_version_condition: bool = True,
        label: object = None,
    ) -> None:
        super().delete(model, condition, add_version_condition=add_version_condition)
        self._labels["delete"].append(label)

    def save(
        self,
        model: Model,
        condition: Condition | None = None,
        return_values: str | None = None,
        *,
        label: object = None,
    ) -> None:
        super().save(model, condition, return_values)
        self._labels["put"].append(label)

    def update(
        self,
        model: Model,
        actions: list[Action],
        condition: Condition | None = None,
        return_values: str | None = None,
        *,
        add_version_condition: bool = True,
        label: object = None,
    ) -> None:
        super().update(model, actions, condition, return_values, add_version_condition=add_version_condition)
        self._labels["update"].append(label)

    def labels(self) -> list[object]:
        """The actions' labels, in the order of the request (and of its cancellation reasons)."""
        return [*self._labels["check"], *self._labels["delete"], *self._labels["put"], *self._labels["update"]]

    def transact_items(self) -> list[dict[str, Any]]:
        """The actions, as the TransactWriteItems request will carry them."""
        return [
            *({"ConditionCheck": item} for item in self._condition_check_items),
            *({"Delete": item} for item in self._delete_items),
            *({"Put": item} for item in self._put_items),
            *({"Update": item} for item in self._update_items),
        ]

    def _commit(self) -> Any:
        check_transaction(self.transact_items())
        return super()._commit()
