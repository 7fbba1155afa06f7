"""DynamoDB on-demand request units, computed from the calls an operation actually made.

Rules (AWS's on-demand billing, as documented in "DynamoDB item sizes and formats" and
"Read/write capacity mode"):

* item size = sum over attributes of (UTF-8 bytes of the name + size of the value); strings
  are their UTF-8 length, numbers ~ ceil(significant digits / 2) + 1 bytes (+1 if negative),
  binary its raw length, booleans and null 1 byte, lists and maps 3 bytes + their elements
  + 1 byte per element (map keys count like attribute names), sets the sum of their members;
* write: 1 WRU per started 1 KB of the larger of the before and after image; a delete is
  charged on the deleted item; TransactWriteItems charges 2 WRU per started KB per item;
* GSI: each index write costs 1 WRU per started KB of the projected index entry; an item
  that enters or leaves the index is one write, a changed index key is two (delete + put),
  a changed projected attribute is one, no change is none;
* read: 1 RRU per started 4 KB strongly consistent, 0.5 eventually consistent (GSIs are
  always eventually consistent); a miss still costs the minimum; transactional reads 2x;
  Query and Scan are charged on the summed size of the items read, rounded up once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.capture import Call, Key, Recorder

KB = 1024
READ_BLOCK = 4 * KB


# --- item sizes ------------------------------------------------------------------------------


def number_size(text: str) -> int:
    value = Decimal(text)
    if value.is_zero():
        return 1  # no significant digit: just the 1-byte overhead
    digits = value.normalize().as_tuple().digits  # leading/trailing zeros trimmed
    return math.ceil(len(digits) / 2) + 1 + (1 if value < 0 else 0)


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(number_size(n) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, *, consistent: bool) -> float:
    blocks = max(1, math.ceil(size / READ_BLOCK))
    return blocks * (1.0 if consistent else 0.5)


# --- naming what a call touched ----------------------------------------------------------------


def table_role(table: str) -> str:
    if table.endswith("-control"):
        return "control"
    if "-tenant-" in table:
        return "tenant"
    return table


def item_kind(item_or_key: dict[str, Any] | None) -> str:
    if not item_or_key:
        return "item"
    pk = str(next(iter(item_or_key.get("pk", {"S": ""}).values())))
    sk = str(next(iter(item_or_key.get("sk", {"S": ""}).values())))
    if pk.startswith("APIKEY#"):
        return "api key"
    if pk.startswith("TENANT#") and sk == "#TENANT":
        return "tenant"
    if pk.startswith("MEMBER#"):
        return {"#BALANCE": "balance", "#PROFILE": "profile"}.get(sk, "member item")
    if pk.startswith("EXTID#"):
        return "external id"
    if pk.startswith("ENROLREQ#"):
        return "enrolment key"
    if pk.startswith("LEDGER#"):
        return "ledger entry"
    if pk == "PROGRAM":
        return "program"
    return "item"


def partition_kind(params: dict[str, Any]) -> str:
    values = params.get("ExpressionAttributeValues", {})
    texts = [str(next(iter(value.values()))) for value in values.values()]
    for prefix, name in (("RULE#", "rules"), ("TIERS#", "tier versions"), ("REFERRALS#", "referral versions")):
        if any(text.startswith(prefix) for text in texts):
            return name
    for value in values.values():
        text = str(next(iter(value.values())))
        if text.endswith("#LEDGER"):
            return "ledger"
        if text == "MEMBERS":
            return "members"
        if text == "TENANTS":
            return "tenants"
    return "items"


# --- charges ------------------------------------------------------------------------------------


@dataclass
class ItemWrite:
    kind: str
    table_role: str
    before: int
    after: int
    transactional: bool
    table_wru: int
    gsi_wru: int
    gsi_note: str
    image: dict[str, Any] | None = None

    @property
    def billed_size(self) -> int:
        return max(self.before, self.after)


@dataclass
class Charge:
    """What one DynamoDB call costs."""

    operation: str
    label: str  # e.g. "GetItem api key (control, consistent)"
    short: str  # for the one-line summary, e.g. "GetItem (balance, consistent)"
    auth: bool
    rru: float = 0.0
    wru: float = 0.0  # table writes
    gsi_wru: float = 0.0
    detail: str = ""
    writes: list[ItemWrite] = field(default_factory=list)
    #: DynamoDB Local's own figures from ConsumedCapacity (total, table part, index part).
    local_total: float | None = None
    local_table: float | None = None
    local_gsi: float | None = None
    #: Sizes of the items a Query/Scan read, in order (for what-if figures).
    item_sizes: list[int] = field(default_factory=list)
    #: Sizes of the item a GetItem read (0 on a miss).
    size: int = 0


def _local_capacity(response: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    if not response or "ConsumedCapacity" not in response:
        return None, None, None
    consumed = response["ConsumedCapacity"]
    entries = consumed if isinstance(consumed, list) else [consumed]
    total = table = gsi = 0.0
    for entry in entries:
        total += float(entry.get("CapacityUnits", 0.0))
        table += float(entry.get("Table", {}).get("CapacityUnits", 0.0))
        for index in entry.get("GlobalSecondaryIndexes", {}).values():
            gsi += float(index.get("CapacityUnits", 0.0))
        for index in entry.get("LocalSecondaryIndexes", {}).values():
            gsi += float(index.get("CapacityUnits", 0.0))
    return total, table, gsi


def _projected(item: dict[str, Any], gsi: tuple[tuple[str, ...], str, tuple[str, ...]], table_keys: tuple[str, ...]):
    index_keys, projection, non_key = gsi
    if projection == "ALL":
        return item
    keep = set(index_keys) | set(table_keys) | (set(non_key) if projection == "INCLUDE" else set())
    return {name: value for name, value in item.items() if name in keep}


def gsi_writes(
    recorder: Recorder, key: Key, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[int, str]:
    """WRU spent on the table's GSIs by one item changing from ``before`` to ``after``."""
    table = recorder.table(key[0])
    total = 0
    notes = []
    for name, gsi in table.gsis.items():
        index_keys = gsi[0]
        was = before is not None and all(k in before for k in index_keys)
        now = after is not None and all(k in after for k in index_keys)
        old_entry = _projected(before, gsi, table.key_attrs) if was and before is not None else None
        new_entry = _projected(after, gsi, table.key_attrs) if now and after is not None else None
        if not was and not now:
            continue
        if was and not now:
            units = write_units(item_size(old_entry))
            notes.append(f"{name} delete {item_size(old_entry)} B")
        elif now and not was:
            units = write_units(item_size(new_entry))
            notes.append(f"{name} put {item_size(new_entry)} B")
        elif any(before[k] != after[k] for k in index_keys):  # type: ignore[index]
            units = write_units(item_size(old_entry)) + write_units(item_size(new_entry))
            notes.append(f"{name} key change (delete+put)")
        elif old_entry != new_entry:
            units = write_units(item_size(new_entry))
            notes.append(f"{name} update {item_size(new_entry)} B")
        else:
            units = 0
        total += units
    return total, ", ".join(notes)


def _key_item(key: Key) -> dict[str, Any]:
    item = {}
    for name, plain in key[1]:
        kind, _, raw = plain.partition(":")
        item[name] = {kind: raw}
    return item


def _item_write(recorder: Recorder, call: Call, key: Key, *, transactional: bool) -> ItemWrite:
    before = call.before.get(key)
    after = call.after.get(key)
    size_before, size_after = item_size(before), item_size(after)
    units = write_units(max(size_before, size_after)) * (2 if transactional else 1)
    gsi_units, gsi_note = gsi_writes(recorder, key, before, after)
    return ItemWrite(
        kind=item_kind(after or before or _key_item(key)),
        table_role=table_role(key[0]),
        before=size_before,
        after=size_after,
        transactional=transactional,
        table_wru=units,
        gsi_wru=gsi_units,
        gsi_note=gsi_note,
        image=after or before,
    )


def charge(recorder: Recorder, call: Call) -> Charge:
    params = call.params
    op = call.operation
    local_total, local_table, local_gsi = _local_capacity(call.response)
    common = {"local_total": local_total, "local_table": local_table, "local_gsi": local_gsi}
    failed = f" FAILED {call.error}" if call.error else ""
    retried = f" ({call.retries} botocore retries, each billed)" if call.retries else ""

    if op == "GetItem":
        table = params["TableName"]
        consistent = bool(params.get("ConsistentRead"))
        item = (call.response or {}).get("Item")
        if item is not None and "ProjectionExpression" in params:
            item = recorder.full_item(table, params["Key"])  # billed on the whole item
        size = item_size(item)
        kind = item_kind(item or params["Key"])
        role = table_role(table)
        mode = "consistent" if consistent else "eventual"
        found = "" if item is not None else ", miss"
        return Charge(
            operation=op,
            label=f"GetItem {kind} ({role}, {mode}{found})",
            short=f"GetItem ({kind}, {mode})" if role != "control" else f"GetItem ({role}, {mode})",
            auth=role == "control" and kind in ("api key", "tenant"),
            rru=read_units(size, consistent=consistent),
            size=size,
            detail=f"{size} B read{failed}{retried}",
            **common,
        )

    if op in ("Query", "Scan"):
        table = params["TableName"]
        index = params.get("IndexName")
        consistent = bool(params.get("ConsistentRead")) and index is None
        items = (call.response or {}).get("Items", [])
        size = sum(item_size(item) for item in items)
        approx = ""
        if "FilterExpression" in params or "ProjectionExpression" in params or params.get("Select") == "COUNT":
            approx = " (lower bound: filter/projection hides items read)"
        where = f"{table_role(table)}{'/' + index if index else ''}"
        what = partition_kind(params)
        limit = params.get("Limit")
        return Charge(
            operation=op,
            label=f"{op} {what} on {where} (Limit {limit}, {len(items)} items, "
            f"{'consistent' if consistent else 'eventual'})",
            short=f"{op} ({what} on {index or 'table'}, {len(items)} items)",
            auth=False,
            rru=read_units(size, consistent=consistent),
            detail=f"{len(items)} items, {size} B summed{approx}{failed}{retried}",
            item_sizes=[item_size(item) for item in items],
            size=size,
            **common,
        )

    if op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"):
        transactional = op == "TransactWriteItems"
        writes = [_item_write(recorder, call, key, transactional=transactional) for key in call.before]
        if transactional:
            kinds = []
            for action in params["TransactItems"]:
                ((verb, body),) = action.items()
                kinds.append(f"{verb} {item_kind(body.get('Item') or body.get('Key'))}")
            label = f"TransactWriteItems[{', '.join(kinds)}]"
        else:
            label = f"{op} {', '.join(w.kind for w in writes)}"
        gsi = sum(w.gsi_wru for w in writes)
        details = "; ".join(
            f"{w.kind} {w.before}->{w.after} B = {w.table_wru} WRU"
            + (f" + GSI {w.gsi_wru} ({w.gsi_note})" if w.gsi_wru else "")
            for w in writes
        )
        return Charge(
            operation=op,
            label=label,
            short=label,
            auth=False,
            wru=float(sum(w.table_wru for w in writes)),
            gsi_wru=float(gsi),
            writes=writes,
            detail=details + failed + retried,
            **common,
        )

    if op == "TransactGetItems":
        total = 0.0
        for action in params["TransactItems"]:
            body = action["Get"]
            item = recorder.full_item(body["TableName"], body["Key"])
            total += 2 * read_units(item_size(item), consistent=True)
        return Charge(
            operation=op,
            label="TransactGetItems",
            short="TransactGetItems",
            auth=False,
            rru=total,
            detail=failed,
            **common,
        )

    if op == "BatchGetItem":
        total = 0.0
        for table, request in params["RequestItems"].items():
            consistent = bool(request.get("ConsistentRead"))
            for key in request["Keys"]:
                total += read_units(item_size(recorder.full_item(table, key)), consistent=consistent)
        return Charge(
            operation=op, label="BatchGetItem", short="BatchGetItem", auth=False, rru=total, detail=failed, **common
        )

    return Charge(
        operation=op,
        label=f"{op} (control plane, not billed per request)",
        short=op,
        auth=False,
        detail=failed,
        **common,
    )


# --- one API operation --------------------------------------------------------------------------


@dataclass
class OperationCost:
    name: str
    charges: list[Charge]
    info: bool = False

    def _sum(self, attr: str, *, auth: bool | None) -> float:
        return sum(getattr(c, attr) for c in self.charges if auth is None or c.auth == auth)

    def rru(self, *, incl_auth: bool) -> float:
        return self._sum("rru", auth=None if incl_auth else False)

    def wru(self, *, incl_auth: bool) -> float:
        return self._sum("wru", auth=None if incl_auth else False) + self._sum(
            "gsi_wru", auth=None if incl_auth else False
        )

    def gsi_wru(self) -> float:
        return self._sum("gsi_wru", auth=None)

    def local(self, *, incl_auth: bool) -> float:
        return sum(c.local_total or 0.0 for c in self.charges if incl_auth or not c.auth)

    def summary(self) -> str:
        """e.g. 'GetItem x2 (control, consistent) + GetItem (balance, consistent)
        + TransactWriteItems[...] + GSI write'"""
        parts: list[tuple[str, int]] = []
        for c in self.charges:
            if parts and parts[-1][0] == c.short:
                parts[-1] = (c.short, parts[-1][1] + 1)
            else:
                parts.append((c.short, 1))
        text = []
        for short, count in parts:
            if count > 1:
                verb, _, rest = short.partition(" ")
                text.append(f"{verb} x{count} {rest}".strip())
            else:
                text.append(short)
        gsi_writes_count = sum(1 for c in self.charges for w in c.writes if w.gsi_wru)
        if gsi_writes_count:
            text.append("GSI write" + (f" x{gsi_writes_count}" if gsi_writes_count > 1 else ""))
        return " + ".join(text)


def cost_of(name: str, recorder: Recorder, calls: list[Call]) -> OperationCost:
    return OperationCost(name=name, charges=[charge(recorder, call) for call in calls])
