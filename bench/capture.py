"""Seeing every DynamoDB call the app makes, through botocore's own event hooks.

PynamoDB gives every table-bound model class its own ``Connection`` (and so its own
botocore session and client), so hooking one client is not enough: the recorder wraps
``botocore.session.Session.create_client`` and registers its handlers on every DynamoDB
client created afterwards, whichever model (control plane or tenant table) it serves.

While recording, each data-plane request gets ``ReturnConsumedCapacity='INDEXES'``
injected (``provide-client-params``), and every write gets the before and after images
of the items it targets, read with a separate, unhooked client, so that UpdateItem and
GSI charges can be computed from full item images.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.session

READ_OPS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DATA_OPS = READ_OPS | WRITE_OPS

Key = tuple[str, tuple[tuple[str, str], ...]]  # (table, ((attr, value), ...))


@dataclass
class TableInfo:
    name: str
    key_attrs: tuple[str, ...]
    #: index name -> (key attribute names, projection type, non-key attributes for INCLUDE)
    gsis: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]]


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] | None = None
    status: int | None = None
    error: str | None = None
    retries: int = 0
    #: Full item images around a write, keyed by (table, key): None when the item is absent.
    before: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    after: dict[Key, dict[str, Any] | None] = field(default_factory=dict)


def _plain(value: dict[str, Any]) -> str:
    ((kind, raw),) = value.items()
    return f"{kind}:{raw}"


class Recorder:
    """Install once, before the app builds any client; then ``with recorder.record() as calls``."""

    def __init__(self, *, endpoint: str, region: str) -> None:
        self._endpoint = endpoint
        self._region = region
        self._original_create_client: Any = None
        self._hooked: list[Any] = []  # event emitters we registered on
        self._suspended = False
        self._calls: list[Call] | None = None
        self._tables: dict[str, TableInfo] = {}
        self._helper: Any = None
        #: Seconds spent building each DynamoDB client created while installed.
        self.clients_created: list[float] = []

    # --- installation ------------------------------------------------------------------

    def install(self) -> None:
        original = botocore.session.Session.create_client
        self._original_create_client = original
        recorder = self

        def create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            client = original(session, service_name, *args, **kwargs)
            if service_name == "dynamodb" and not recorder._suspended:
                recorder.clients_created.append(time.perf_counter() - started)
                recorder._hook(client)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        self._suspended = True
        try:
            session = botocore.session.get_session()
            session.set_credentials("bench", "bench")
            self._helper = session.create_client("dynamodb", self._region, endpoint_url=self._endpoint)
        finally:
            self._suspended = False

    def uninstall(self) -> None:
        """Restore botocore and take our handlers off every client (before timing anything)."""
        if self._original_create_client is not None:
            botocore.session.Session.create_client = self._original_create_client  # type: ignore[method-assign]
            self._original_create_client = None
        for events in self._hooked:
            events.unregister("provide-client-params.dynamodb", unique_id="bench-before")
            events.unregister("after-call.dynamodb", unique_id="bench-after")
            events.unregister("after-call-error.dynamodb", unique_id="bench-error")
        self._hooked.clear()

    def _hook(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._before, unique_id="bench-before")
        events.register("after-call.dynamodb", self._after, unique_id="bench-after")
        events.register("after-call-error.dynamodb", self._error, unique_id="bench-error")
        self._hooked.append(events)

    @property
    def helper(self) -> Any:
        """A botocore DynamoDB client that is never recorded."""
        return self._helper

    @contextmanager
    def record(self) -> Iterator[list[Call]]:
        calls: list[Call] = []
        self._calls = calls
        try:
            yield calls
        finally:
            self._calls = None

    # --- handlers ------------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self._calls is None:
            return
        operation = model.name
        if operation in DATA_OPS:
            params["ReturnConsumedCapacity"] = "INDEXES"
        call = Call(operation=operation, params=copy.deepcopy(params))
        if operation in WRITE_OPS:
            call.before = self._images(operation, params)
        context["bench_call"] = call

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.pop("bench_call", None)
        if call is None or self._calls is None:
            return
        call.response = parsed
        call.status = http_response.status_code
        call.retries = int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        if call.status >= 300:
            call.error = parsed.get("Error", {}).get("Code", "error")
        if call.operation in WRITE_OPS:
            call.after = {key: self._get(key) for key in call.before}
        self._calls.append(call)

    def _error(self, exception: Exception, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.pop("bench_call", None)
        if call is not None and self._calls is not None:
            call.error = type(exception).__name__
            self._calls.append(call)

    # --- item images and table shapes ---------------------------------------------------------

    def table(self, name: str) -> TableInfo:
        info = self._tables.get(name)
        if info is None:
            described = self._helper.describe_table(TableName=name)["Table"]
            gsis = {}
            for index in described.get("GlobalSecondaryIndexes", []):
                projection = index.get("Projection", {})
                gsis[index["IndexName"]] = (
                    tuple(k["AttributeName"] for k in index["KeySchema"]),
                    projection.get("ProjectionType", "ALL"),
                    tuple(projection.get("NonKeyAttributes", [])),
                )
            info = TableInfo(
                name=name,
                key_attrs=tuple(k["AttributeName"] for k in described["KeySchema"]),
                gsis=gsis,
            )
            self._tables[name] = info
        return info

    def key_of(self, table: str, item_or_key: dict[str, Any]) -> Key:
        attrs = self.table(table).key_attrs
        return table, tuple((name, _plain(item_or_key[name])) for name in attrs)

    def _get(self, key: Key) -> dict[str, Any] | None:
        table, parts = key
        request_key = {}
        for name, plain in parts:
            kind, _, raw = plain.partition(":")
            request_key[name] = {kind: raw}
        reply = self._helper.get_item(TableName=table, Key=request_key, ConsistentRead=True)
        return reply.get("Item")

    def full_item(self, table: str, item_or_key: dict[str, Any]) -> dict[str, Any] | None:
        return self._get(self.key_of(table, item_or_key))

    def _targets(self, operation: str, params: dict[str, Any]) -> list[Key]:
        if operation == "PutItem":
            return [self.key_of(params["TableName"], params["Item"])]
        if operation in ("UpdateItem", "DeleteItem"):
            return [self.key_of(params["TableName"], params["Key"])]
        keys: list[Key] = []
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                keys.append(self.key_of(body["TableName"], body["Item"] if kind == "Put" else body["Key"]))
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        keys.append(self.key_of(table, request["PutRequest"]["Item"]))
                    else:
                        keys.append(self.key_of(table, request["DeleteRequest"]["Key"]))
        return keys

    def _images(self, operation: str, params: dict[str, Any]) -> dict[Key, dict[str, Any] | None]:
        return {key: self._get(key) for key in self._targets(operation, params)}
