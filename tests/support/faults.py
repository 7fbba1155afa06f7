"""Fault injection at the DynamoDB client boundary (botocore), for any emulator.

Emulators never throttle, time out or report transaction conflicts on their own, so the
tests make the client do it: before the request is sent (it never reached the table) or
after the response came back (it did, and the caller never learns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError, ReadTimeoutError


@dataclass
class _Rule:
    operation: str
    make_error: Callable[[str], BaseException]
    after: bool
    remaining: int | None  # None: forever
    skip: int = 0  # let this many matching calls through first


@dataclass
class FaultPlan:
    rules: list[_Rule] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)

    def fail(
        self,
        operation: str,
        make_error: Callable[[str], BaseException],
        *,
        times: int | None = 1,
        after: bool = False,
        skip: int = 0,
    ) -> None:
        self.rules.append(_Rule(operation, make_error, after, times, skip))

    def _take(self, operation: str, after: bool) -> BaseException | None:
        for rule in self.rules:
            if rule.operation == operation and rule.after == after and rule.remaining != 0:
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                self.injected[operation] += 1
                return rule.make_error(operation)
        return None

    def install(self, monkeypatch: Any) -> None:
        original = botocore.client.BaseClient._make_api_call
        plan = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, api_params)
            plan.calls[operation_name] += 1
            error = plan._take(operation_name, after=False)
            if error is not None:
                raise error
            response = original(client, operation_name, api_params)
            error = plan._take(operation_name, after=True)
            if error is not None:
                raise error
            return response

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", _make_api_call)


def transaction_conflict(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled [None, TransactionConflict]",
            },
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "conflict"}],
        },
        operation,
    )


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation)


def read_timeout(operation: str) -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url=f"https://dynamodb/{operation}")


class Crash(RuntimeError):
    """The function dies after DynamoDB answered, before the HTTP response is written."""


def crash(operation: str) -> Crash:
    return Crash(f"process died after {operation}")


def limit_exceeded(operation: str) -> ClientError:
    """DynamoDB's refusal of a table operation: 500 already in progress, or the table quota reached."""
    return ClientError(
        {
            "Error": {
                "Code": "LimitExceededException",
                "Message": "Subscriber limit exceeded: "
                "Only 500 tables can be created, updated or deleted simultaneously",
            }
        },
        operation,
    )


def backups_unavailable(operation: str) -> ClientError:
    """What UpdateContinuousBackups answers in the first moments of a new table."""
    return ClientError(
        {"Error": {"Code": "ContinuousBackupsUnavailableException", "Message": "Backups are being enabled"}},
        operation,
    )


def rewrite_responses(
    monkeypatch: Any, operation: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]], *, times: int
) -> Counter[str]:
    """The next ``times`` answers of ``operation`` pass through ``rewrite`` (e.g. a table still
    CREATING, which no emulator reports for long). Returns a counter of the rewritten calls.
    Installed after a FaultPlan, it sees what the plan lets through."""
    original = botocore.client.BaseClient._make_api_call
    rewritten: Counter[str] = Counter()

    def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        response = original(client, operation_name, api_params)
        if (
            client.meta.service_model.service_name == "dynamodb"
            and operation_name == operation
            and rewritten[operation] < times
        ):
            rewritten[operation] += 1
            return rewrite(response)
        return response

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", _make_api_call)
    return rewritten


def table_status(status: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A rewrite for CreateTable / DescribeTable answers: the table (and its indexes) in ``status``."""

    def rewrite(response: dict[str, Any]) -> dict[str, Any]:
        key = "TableDescription" if "TableDescription" in response else "Table"
        table = dict(response[key], TableStatus=status)
        if table.get("GlobalSecondaryIndexes"):
            table["GlobalSecondaryIndexes"] = [dict(i, IndexStatus=status) for i in table["GlobalSecondaryIndexes"]]
        return dict(response, **{key: table})

    return rewrite
