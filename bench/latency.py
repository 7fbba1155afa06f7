"""Handler latency (chalice.test, full HTTP path incl. auth) beside a bare boto3 client doing the same calls."""

from __future__ import annotations

import gc
import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

from bench.appenv import REGION, AppClient, drop_buffered_metrics, key_id_of
from bench.operations import TENANT_ID, Fixture

EARN_BODY = '{"points": 10, "reference": "order-00000001"}'


def _ts() -> str:
    """PynamoDB's UTCDateTimeAttribute format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class Bare:
    """The DynamoDB calls the handler makes, with nothing around them."""

    def __init__(self, endpoint: str, fx: Fixture, member_id: str) -> None:
        self.client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
        self.control = fx.control_table
        self.table = fx.tenant_table
        self.key_id = key_id_of(fx.key)
        self.member_id = member_id
        self.api_key_key = {"pk": {"S": f"APIKEY#{self.key_id}"}, "sk": {"S": "#APIKEY"}}
        self.tenant_key = {"pk": {"S": f"TENANT#{TENANT_ID}"}, "sk": {"S": "#TENANT"}}
        self.balance_key = {"pk": {"S": f"MEMBER#{member_id}"}, "sk": {"S": "#BALANCE"}}
        self.get_times: list[float] = []
        self.tx_times: list[float] = []

    def _auth(self) -> None:
        self.client.get_item(
            TableName=self.control, Key=self.api_key_key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        )
        self.client.get_item(
            TableName=self.control, Key=self.tenant_key, ConsistentRead=False, ReturnConsumedCapacity="TOTAL"
        )

    def balance(self) -> None:
        self._auth()
        self.client.get_item(
            TableName=self.table, Key=self.balance_key, ConsistentRead=False, ReturnConsumedCapacity="TOTAL"
        )

    def earn(self, points: int = 10) -> None:
        started = time.perf_counter()
        self._auth()
        balance = self.client.get_item(
            TableName=self.table, Key=self.balance_key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        )["Item"]
        self.get_times.append((time.perf_counter() - started) / 3)
        version = int(balance["version"]["N"])
        available = int(balance["available"]["N"]) + points
        earned = int(balance["lifetime_earned"]["N"]) + points
        redeemed, adjusted = balance["lifetime_redeemed"]["N"], balance["lifetime_adjusted"]["N"]
        now = _ts()
        idempotency_key = f"bare-{uuid.uuid4()}"
        entry = {
            "pk": {"S": f"LEDGER#{idempotency_key}"},
            "sk": {"S": "#ENTRY"},
            "gsi1pk": {"S": f"MEMBER#{self.member_id}#LEDGER"},
            "gsi1sk": {"S": f"{version + 1:012d}"},
            "transaction_id": {"S": f"txn_{uuid.uuid4().hex[:26].upper()}"},
            "member_id": {"S": self.member_id},
            "movement": {"S": "earn"},
            "points": {"N": str(points)},
            "sequence": {"N": str(version + 1)},
            "idempotency_key": {"S": idempotency_key},
            "request_fingerprint": {"S": uuid.uuid4().hex * 2},
            "occurred_at": {"S": now},
            "created_at": {"S": now},
            "reference": {"S": "order-00000001"},
            "actor_key_id": {"S": self.key_id},
            "after_available": {"N": str(available)},
            "after_lifetime_earned": {"N": str(earned)},
            "after_lifetime_redeemed": {"N": redeemed},
            "after_lifetime_adjusted": {"N": adjusted},
        }
        tx_started = time.perf_counter()
        self.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": entry, "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self.balance_key,
                        "UpdateExpression": "SET #0 = :0, #1 = :1, #2 = :2, #3 = :3, #4 = :4, #5 = :5",
                        "ConditionExpression": "#4 = :6",
                        "ExpressionAttributeNames": {
                            "#0": "available",
                            "#1": "lifetime_earned",
                            "#2": "lifetime_redeemed",
                            "#3": "lifetime_adjusted",
                            "#4": "version",
                            "#5": "updated_at",
                        },
                        "ExpressionAttributeValues": {
                            ":0": {"N": str(available)},
                            ":1": {"N": str(earned)},
                            ":2": {"N": redeemed},
                            ":3": {"N": adjusted},
                            ":4": {"N": str(version + 1)},
                            ":5": {"S": now},
                            ":6": {"N": str(version)},
                        },
                    }
                },
            ],
            ReturnConsumedCapacity="TOTAL",
        )
        self.tx_times.append(time.perf_counter() - tx_started)


def measure(api: AppClient, fx: Fixture, endpoint: str, *, iterations: int, warmup: int) -> dict[str, Any]:
    from bench.operations import member_body, order_body

    handler_member = api.expect(201, "POST", "/v1/members", key=fx.key, body=member_body(9001))["id"]
    bare_member = api.expect(201, "POST", "/v1/members", key=fx.key, body=member_body(9002))["id"]
    bare = Bare(endpoint, fx, bare_member)
    http = api.client.http
    earn_path = f"/v1/members/{handler_member}/earn"
    balance_path = f"/v1/members/{handler_member}/balance"
    read_headers = AppClient.headers(fx.key)

    def handler_earn() -> None:
        response = http.post(earn_path, headers=AppClient.headers(fx.key, f"lat-{uuid.uuid4()}"), body=EARN_BODY)
        if response.status_code != 201:
            raise RuntimeError(f"earn failed: {response.status_code} {response.body!r}")

    def handler_balance() -> None:
        response = http.get(balance_path, headers=read_headers)
        if response.status_code != 200:
            raise RuntimeError(f"balance failed: {response.status_code} {response.body!r}")

    def handler_health() -> None:
        http.get("/v1/health")

    order_number = iter(range(10**9))

    def handler_order_earn() -> None:
        body = json.dumps(order_body(700_000 + next(order_number)))
        response = http.post(earn_path, headers=AppClient.headers(fx.key, f"lat-{uuid.uuid4()}"), body=body)
        if response.status_code != 201:
            raise RuntimeError(f"order earn failed: {response.status_code} {response.body!r}")

    runs = {
        "handler earn": handler_earn,
        "bare earn": bare.earn,
        "handler balance": handler_balance,
        "bare balance": bare.balance,
        "handler health": handler_health,
        "handler order earn (20 lines, 10 rules)": handler_order_earn,
    }
    names = list(runs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    for i in range(warmup + iterations):
        shift = i % len(names)  # rotate the order so no side always runs first
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            runs[name]()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                samples[name].append(elapsed)
            drop_buffered_metrics()
    result: dict[str, Any] = dict(samples)
    result["dynamodb calls"] = [
        statistics.median(bare.get_times[warmup:]) * 1000,
        statistics.median(bare.tx_times[warmup:]) * 1000,
    ]
    return result
