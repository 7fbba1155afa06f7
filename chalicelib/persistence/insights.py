"""The insights' aggregate rows in the tenant's table (see chalicelib.domain.insights):

    pk                        sk            what
    INSIGHTS#DAY              <YYYY-MM-DD>  a local day's counters (sums over any period)
    INSIGHTS#COHORT           <YYYY-MM>     an enrolment month: size, active members by month
    INSIGHTS                  #NOW          running totals and the members' summed state
    INSIGHTS#MEMBER#<member>  #INSIGHTS     the fold's mark of one member (JSON)
    INSIGHTS                  #CHECKPOINT   the fold's cursor and lease (chalicelib.persistence.checkpoints)

Counters are top-level number attributes moved with ``ADD``; a batch's rows, marks and the
checkpoint's advance are one ``TransactWriteItems``, conditioned on the checkpoint's cursor and
lease, so a batch is counted once or not at all. A year of days is one partition's query.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError
from ulid import ULID

from chalicelib.domain.clock import isoformat
from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.insights import CHECKPOINT, COHORT, DAY, NOW, Batch, MemberMark, MemberState, Number
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.plans import recorded_tier
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, RETRYABLE_CODES, translate_transient
from chalicelib.persistence.events import EventRepository
from chalicelib.persistence.index_keys import BALANCE, COUNTER_PREFIX, COUNTER_SK, member_pk
from chalicelib.persistence.ledger import to_balance

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.tiers import TierProgram
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.ledger import LedgerRepository

_PK = {DAY: "INSIGHTS#DAY", COHORT: "INSIGHTS#COHORT", NOW: "INSIGHTS"}
_NOW_SK = "#NOW"
_MARK_SK = "#INSIGHTS"
_CHECKPOINT_SK = "#CHECKPOINT"


def _mark_pk(member_id: str) -> str:
    return f"INSIGHTS#MEMBER#{member_id}"


def _number(raw: str) -> Number:
    return int(raw) if raw.lstrip("-").isdigit() else Decimal(raw)


def _counters(item: dict[str, Any]) -> dict[str, Number | str]:
    out: dict[str, Number | str] = {}
    for name, value in item.items():
        if name in ("pk", "sk"):
            continue
        if "N" in value:
            out[name] = _number(value["N"])
        elif "S" in value:
            out[name] = value["S"]
    return out


class InsightRepository:
    """The aggregate rows, the members' marks and the fold's commit. Reads and writes go through
    the tenant table's shared client, in DynamoDB's own request shapes (counter names are data)."""

    def __init__(self, models: TenantModels, ledger: LedgerRepository) -> None:
        self._models = models
        self._ledger = ledger
        self._events = EventRepository(models)
        #: Request units consumed by this repository's calls (when the service reports them).
        self.consumed: float = 0.0

    @property
    def _client(self) -> Any:
        return self._models.feed_checkpoint._get_connection().connection.client

    @property
    def _table(self) -> str:
        return self._models.table_name

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**kwargs, ReturnConsumedCapacity="TOTAL")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in RETRYABLE_CODES:
                raise TransientStoreError(str(error)) from error
            raise
        except BotoCoreError as error:
            raise TransientStoreError(str(error)) from error
        capacity = answer.get("ConsumedCapacity")
        for used in capacity if isinstance(capacity, list) else [capacity] if capacity else []:
            self.consumed += float(used.get("CapacityUnits", 0) or 0)
        return answer

    # --- the fold ------------------------------------------------------------------------------

    def marks(self, member_ids: list[str]) -> dict[str, MemberMark]:
        found: dict[str, MemberMark] = {}
        for start in range(0, len(member_ids), 100):
            keys = [{"pk": {"S": _mark_pk(m)}, "sk": {"S": _MARK_SK}} for m in member_ids[start : start + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    member_id = item["pk"]["S"].removeprefix("INSIGHTS#MEMBER#")
                    found[member_id] = MemberMark.from_dict(member_id, json.loads(item["mark"]["S"]))
                request = answer.get("UnprocessedKeys") or {}
        return found

    def member_states(
        self, member_ids: list[str], timezone: str, tiers: Callable[[], TierProgram | None], at: datetime
    ) -> dict[str, MemberState]:
        """The members' balances in batches of 100 (consistent), and the lots of those holding any."""
        balances = self.balances(member_ids)
        zone = ZoneInfo(timezone)
        states: dict[str, MemberState] = {}
        for member_id in member_ids:
            balance: Balance | None = balances.get(member_id)
            if balance is None or balance.erased_at is not None:
                states[member_id] = MemberState()  # an erased member holds nothing (points forfeited)
                continue
            expiring: dict[str, int] = {}
            maturing: dict[str, int] = {}
            if balance.lot_count or balance.pending or balance.next_expiry_at or balance.next_maturity_at:
                for lot in self._ledger.get_lots(member_id, consistent=True):
                    if lot.remaining <= 0:
                        continue
                    if lot.matures_at is not None:
                        month = lot.matures_at.astimezone(zone).strftime("%Y-%m")
                        maturing[month] = maturing.get(month, 0) + lot.remaining
                    elif lot.expires_at is not None:
                        month = lot.expires_at.astimezone(zone).strftime("%Y-%m")
                        expiring[month] = expiring.get(month, 0) + lot.remaining
            states[member_id] = MemberState(
                available=balance.available,
                pending=balance.pending,
                expiring=expiring,
                maturing=maturing,
                tier=recorded_tier(tiers(), balance.tier, balance.plan, at)
                if balance.plan is not None and balance.plan.tier is not None
                else balance.tier,
                plan=balance.plan is not None,
            )
        return states

    def commit(self, batch: Batch, *, owner: str, previous: str | None, cursor: str, now: datetime) -> bool:
        items: list[dict[str, Any]] = []
        condition = "lease_owner = :owner AND " + (
            "attribute_not_exists(#cursor)" if previous is None else "#cursor = :previous"
        )
        stamp = self._models.feed_checkpoint.updated_at.serialize(now)
        values: dict[str, Any] = {":owner": {"S": owner}, ":cursor": {"S": cursor}, ":now": {"S": stamp}}
        if previous is not None:
            values[":previous"] = {"S": previous}
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": CHECKPOINT}, "sk": {"S": _CHECKPOINT_SK}},
                    "UpdateExpression": "SET #cursor = :cursor, updated_at = :now",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#cursor": "cursor"},
                    "ExpressionAttributeValues": values,
                }
            }
        )
        for (kind, key), counters in sorted(batch.counts.items()):
            moves = {name: by for name, by in sorted(counters.items()) if by}
            as_of = batch.as_of if kind == NOW else None
            if not moves and as_of is None:
                continue
            names = {f"#c{i}": name for i, name in enumerate(moves)}
            numbers = {f":c{i}": {"N": str(by)} for i, by in enumerate(moves.values())}
            expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(moves))) if moves else ""
            if as_of is not None:
                names["#as_of"] = "as_of"
                numbers[":as_of"] = {"S": isoformat(as_of)}
                expression = f"SET #as_of = :as_of {expression}".strip()
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": _PK[kind]}, "sk": {"S": key or _NOW_SK}},
                        "UpdateExpression": expression,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": numbers,
                    }
                }
            )
        for member_id, mark in sorted(batch.marks.items()):
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": _mark_pk(member_id)},
                            "sk": {"S": _MARK_SK},
                            "mark": {"S": json.dumps(mark.to_dict(), separators=(",", ":"), sort_keys=True)},
                        },
                    }
                }
            )
        try:
            self._call("transact_write_items", TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # the checkpoint moved on (another run) or the lease was lost
            if any(code in RETRYABLE_CANCELLATIONS for code in reasons):
                raise TransientStoreError(str(error)) from error
            raise
        return True

    # --- the reads -----------------------------------------------------------------------------

    def _query(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            answer = self._call("query", **kwargs)
            rows.extend(answer.get("Items", []))
            start = answer.get("LastEvaluatedKey")
            if not start:
                return rows

    def days(self, first: date, last: date) -> dict[str, dict[str, Number]]:
        rows = self._query(_PK[DAY], first.isoformat(), last.isoformat())
        return {row["sk"]["S"]: {k: v for k, v in _counters(row).items() if not isinstance(v, str)} for row in rows}

    def now(self) -> dict[str, Number | str]:
        answer = self._call(
            "get_item", TableName=self._table, Key={"pk": {"S": _PK[NOW]}, "sk": {"S": _NOW_SK}}, ConsistentRead=False
        )
        item = answer.get("Item")
        return _counters(item) if item else {}

    def earns(self, start: datetime, end: datetime) -> Iterator[LedgerEntry]:
        day, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
        low, high = str(ULID.from_datetime(start)), str(ULID.from_datetime(end))[:10] + "Z" * 16
        while day <= last:
            after = low if day == start.astimezone(UTC).date() else ""
            while True:
                events = self._events.read_day(day, after=after, upper=high, limit=100)
                for event in events:
                    entry = event.entry
                    if entry is None:
                        continue
                    if entry.cap_counters or (entry.order is not None and entry.movement is MovementType.EARN):
                        yield entry
                if len(events) < 100:
                    break
                after = events[-1].sort_key
            day += timedelta(days=1)

    def counters(self, names: list[str]) -> dict[str, int]:
        model = self._models.counter
        with translate_transient():
            return {
                item.pk.removeprefix(COUNTER_PREFIX): int(item.value or 0)
                for item in model.batch_get(
                    [(f"{COUNTER_PREFIX}{name}", COUNTER_SK) for name in names], consistent_read=True
                )
            }

    def balances(self, member_ids: list[str]) -> dict[str, Balance]:
        model = self._models.balance
        with translate_transient():
            found = [
                to_balance(item)
                for item in model.batch_get([(member_pk(m), BALANCE) for m in member_ids], consistent_read=True)
            ]
        return {balance.member_id: balance for balance in found}

    def cohorts(self, first: str, last: str) -> dict[str, dict[str, Number]]:
        rows = self._query(_PK[COHORT], first, last)
        return {row["sk"]["S"]: {k: v for k, v in _counters(row).items() if not isinstance(v, str)} for row in rows}
