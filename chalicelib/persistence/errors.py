"""Translation of PynamoDB/botocore failures into domain errors, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.errors import TransientStoreError

#: Error codes DynamoDB documents as safe to retry.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)

#: Cancellation reasons of a transaction that are worth retrying.
RETRYABLE_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def response_code(error: PynamoDBException) -> str | None:
    """DynamoDB's error code, or None when no answer came back (timeout, connection reset).

    Not PynamoDB's ``cause_response_code``: it raises AttributeError for botocore errors
    whose ``response`` is None, such as ReadTimeoutError.
    """
    response = getattr(error.cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_retryable(error: PynamoDBException) -> bool:
    # No response code: the request may or may not have reached the table. Retrying is
    # safe because every write we issue is conditional or idempotent.
    code = response_code(error)
    return code is None or code in RETRYABLE_CODES


@contextmanager
def translate_transient() -> Iterator[None]:
    try:
        yield
    except PynamoDBException as error:
        if is_retryable(error):
            raise TransientStoreError(str(error)) from error
        raise


def cancellation_codes(error: PynamoDBException) -> list[str | None]:
    reasons = getattr(error, "cancellation_reasons", None) or []
    return [reason.code if reason is not None else None for reason in reasons]
