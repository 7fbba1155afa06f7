"""DynamoDB's quotas, checked by the application (chalicelib/persistence/quotas.py): sizes as
DynamoDB counts them, each limit at its boundary, and the error a caller gets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.api.errors import error_response, status_of
from chalicelib.domain.errors import StorageLimitExceeded
from chalicelib.persistence import quotas
from chalicelib.persistence.quotas import (
    MAX_BATCH_WRITE_REQUESTS,
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_ACTIONS,
    MAX_TRANSACTION_BYTES,
    GuardedTransactWrite,
    check_batch_write,
    check_item,
    check_number,
    check_transaction,
    item_size,
)

KEY_BYTES = len("pk") + len("p0") + len("sk") + len("s")  # the key of _item(0)


def _item(index: int, *, padding: int = 0, **more: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": f"p{index}"}, "sk": {"S": "s"}, **more}
    if padding:
        item["d"] = {"S": "x" * (padding - 1)}  # the name "d" counts 1 byte
    return item


def _put(item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": "t", "Item": item}}


def _limit(error: pytest.ExceptionInfo[StorageLimitExceeded]) -> str:
    return str(error.value.details["limit"])


# --- sizes, per DynamoDB's documented rules -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3),
        ({"S": "é€"}, 5),  # UTF-8 bytes, not characters
        ({"N": "12345"}, 4),  # 1 byte per 2 significant digits, rounded up, plus 1
        ({"N": "1000000"}, 2),  # trailing zeros do not count
        ({"N": "0.000123"}, 3),  # nor leading ones
        ({"N": "-1.5E+10"}, 2),
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"B": b"\x00\x01\x02"}, 3),
        ({"SS": ["a", "bc"]}, 3),
        ({"L": []}, 3),
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + (1 + 2) + (1 + 2)),
        ({"M": {"k": {"S": "v"}}}, 3 + 1 + 1 + 1),
    ],
)
def test_attribute_sizes_follow_dynamodbs_rules(value: dict[str, Any], size: int) -> None:
    assert quotas.attribute_size(value) == size


def test_an_items_size_counts_attribute_names() -> None:
    assert item_size({"name": {"S": "ab"}, "n": {"N": "7"}}) == (4 + 2) + (1 + 2)


# --- 400 KB per item --------------------------------------------------------------------------------


def test_an_item_of_exactly_400_kb_is_accepted_and_one_byte_more_is_refused() -> None:
    at_limit = _item(0, padding=MAX_ITEM_BYTES - KEY_BYTES)
    assert check_item(at_limit) == MAX_ITEM_BYTES

    with pytest.raises(StorageLimitExceeded) as refused:
        check_item(_item(0, padding=MAX_ITEM_BYTES - KEY_BYTES + 1))

    assert _limit(refused) == "item_size"
    assert refused.value.details["maximum"] == MAX_ITEM_BYTES
    assert refused.value.details["actual"] == MAX_ITEM_BYTES + 1


def test_an_oversized_item_inside_a_transaction_or_an_update_is_refused() -> None:
    with pytest.raises(StorageLimitExceeded) as put:
        check_transaction([_put(_item(0, padding=MAX_ITEM_BYTES))])
    assert _limit(put) == "item_size"

    update = {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "p"}, "sk": {"S": "s"}},
            "UpdateExpression": "SET #d = :d",
            "ExpressionAttributeValues": {":d": {"S": "x" * MAX_ITEM_BYTES}},
        }
    }
    with pytest.raises(StorageLimitExceeded) as updated:
        check_transaction([update])
    assert _limit(updated) == "item_size"


# --- 100 actions and 4 MB per transaction -------------------------------------------------------------


def test_a_transaction_of_100_actions_is_accepted_and_101_are_refused() -> None:
    check_transaction([_put(_item(i)) for i in range(MAX_TRANSACTION_ACTIONS)])

    with pytest.raises(StorageLimitExceeded) as refused:
        check_transaction([_put(_item(i)) for i in range(MAX_TRANSACTION_ACTIONS + 1)])

    assert _limit(refused) == "transaction_items"
    assert refused.value.details == {"limit": "transaction_items", "maximum": 100, "actual": 101}
    assert "at most 100" in refused.value.message


def test_a_transaction_over_4_mb_is_refused_though_each_item_fits() -> None:
    item_bytes = 390 * 1024
    fitting = MAX_TRANSACTION_BYTES // item_bytes  # 10 items of 390 KB: 3.8 MB
    assert check_transaction([_put(_item(i, padding=item_bytes - KEY_BYTES)) for i in range(fitting)]) <= (
        MAX_TRANSACTION_BYTES
    )

    with pytest.raises(StorageLimitExceeded) as refused:
        check_transaction([_put(_item(i, padding=item_bytes - KEY_BYTES)) for i in range(fitting + 1)])

    assert _limit(refused) == "transaction_size"
    assert refused.value.details["actual"] > MAX_TRANSACTION_BYTES


# --- 25 requests per batch write ----------------------------------------------------------------------


def test_a_batch_write_of_25_requests_is_accepted_and_26_are_refused_across_tables() -> None:
    check_batch_write({"t": [{"PutRequest": {"Item": _item(i)}} for i in range(MAX_BATCH_WRITE_REQUESTS)]})

    with pytest.raises(StorageLimitExceeded) as refused:
        check_batch_write(
            {
                "t1": [{"PutRequest": {"Item": _item(i)}} for i in range(20)],
                "t2": [{"DeleteRequest": {"Key": _item(i)}} for i in range(6)],
            }
        )

    assert _limit(refused) == "batch_write_items"
    assert refused.value.details["actual"] == 26


def test_an_oversized_item_in_a_batch_write_is_refused() -> None:
    with pytest.raises(StorageLimitExceeded) as refused:
        check_batch_write({"t": [{"PutRequest": {"Item": _item(0, padding=MAX_ITEM_BYTES)}}]})
    assert _limit(refused) == "item_size"


# --- numbers: 38 significant digits, DynamoDB's range --------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "9" * 38,
        "-" + "9" * 38,
        "1" + "0" * 100,  # one significant digit
        "0." + "0" * 20 + "1" * 38,
        "1" * 38 + "0" * 50,
        "0",
        "-0.0",
        "9.9999999999999999999999999999999999999E+125",
        "1E-130",
    ],
)
def test_numbers_dynamodb_stores_are_accepted(number: str) -> None:
    check_number(number)


@pytest.mark.parametrize(
    ("number", "limit"),
    [
        ("1" * 39, "number_digits"),
        ("-" + "1" * 39, "number_digits"),
        ("1." + "1" * 38, "number_digits"),
        ("1E+126", "number_range"),
        ("-1E+126", "number_range"),
        ("1E-131", "number_range"),
        ("NaN", "number_format"),
        ("Infinity", "number_format"),
        ("12a", "number_format"),
    ],
)
def test_numbers_dynamodb_refuses_are_refused(number: str, limit: str) -> None:
    with pytest.raises(StorageLimitExceeded) as refused:
        check_number(number, attribute="available")
    assert _limit(refused) == limit


def test_numbers_are_checked_wherever_they_are_in_an_item() -> None:
    nested = _item(0, m={"M": {"l": {"L": [{"NS": ["1", "1" * 39]}]}}})
    with pytest.raises(StorageLimitExceeded) as refused:
        check_transaction([_put(nested)])
    assert _limit(refused) == "number_digits"
    assert refused.value.details["attribute"] == "m.l"


@given(st.integers(min_value=-(10**60), max_value=10**60))
def test_integers_are_accepted_exactly_when_they_have_at_most_38_significant_digits(value: int) -> None:
    digits = len(str(abs(value)).strip("0")) or 1
    if digits <= 38:
        check_number(str(value))
    else:
        with pytest.raises(StorageLimitExceeded):
            check_number(str(value))


# --- the guard on PynamoDB transactions, and what a caller gets ------------------------------------------


class _RecordingConnection:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_the_guarded_transaction_refuses_before_sending_anything() -> None:
    connection = _RecordingConnection()
    tx = GuardedTransactWrite(connection=connection)  # type: ignore[arg-type]
    tx._put_items.extend({"TableName": "t", "Item": _item(i)} for i in range(MAX_TRANSACTION_ACTIONS + 1))

    with pytest.raises(StorageLimitExceeded):
        tx._commit()

    assert connection.calls == []


def test_the_guarded_transaction_sends_a_transaction_within_the_limits() -> None:
    connection = _RecordingConnection()
    tx = GuardedTransactWrite(connection=connection)  # type: ignore[arg-type]
    tx._put_items.append({"TableName": "t", "Item": _item(0)})
    tx._update_items.append({"TableName": "t", "Key": _item(1), "ExpressionAttributeValues": {":v": {"N": "1"}}})

    tx._commit()

    assert len(connection.calls) == 1
    assert [list(action) for action in tx.transact_items()] == [["Put"], ["Update"]]


def test_a_caller_gets_422_storage_limit_exceeded_in_the_error_shape() -> None:
    error = StorageLimitExceeded("too big", details={"limit": "transaction_items", "maximum": 100, "actual": 101})

    response = error_response(error)

    assert status_of(error) == 422
    assert response.status_code == 422
    assert response.body == {
        "error": {
            "code": "storage_limit_exceeded",
            "message": "too big",
            "details": {"limit": "transaction_items", "maximum": 100, "actual": 101},
        }
    }
