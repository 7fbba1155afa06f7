"""What a million requests cost on AWS at on-demand list prices (us-east-1).

Each operation's bill is its DynamoDB request units (computed by bench.units from the calls it
made, auth reads included), one Lambda invocation at the handler duration measured here (the
median through ``chalice.test``, on DynamoDB Local) and the memory size the deployed stages
configure, and one API Gateway request of the kind infra/ deploys (Chalice's REST API).

The prices are constants below, dated and with the pages they come from; the free tiers, the
Lambda tiers past 6 billion GB-seconds a month and the API Gateway tiers past 333 million
requests a month are left out (the bill of a first million, on an account past its free tier).
Data transfer, storage, CloudWatch and X-Ray are not request prices and are left out too.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.appenv import ROOT, AppClient, drop_buffered_metrics

if TYPE_CHECKING:
    from bench.operations import Fixture
    from bench.report import Report
    from bench.units import OperationCost

#: The day these list prices were recorded; re-check the pages below before quoting a figure.
PRICES_AS_OF = "2026-12-06"
PRICE_REGION = "us-east-1"

#: https://aws.amazon.com/dynamodb/pricing/on-demand/ (Standard table class; the on-demand
#: prices in force since their 50 % reduction of 2024-11-01).
DYNAMODB_PRICING_URL = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
DYNAMODB_USD_PER_MILLION_WRU = 0.625
DYNAMODB_USD_PER_MILLION_RRU = 0.125

#: https://aws.amazon.com/lambda/pricing/ (x86_64, the architecture infra/ packages for; the
#: first 6 billion GB-seconds a month; duration billed in 1 ms steps).
LAMBDA_PRICING_URL = "https://aws.amazon.com/lambda/pricing/"
LAMBDA_USD_PER_GB_SECOND = 0.0000166667
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20

#: https://aws.amazon.com/api-gateway/pricing/ (REST APIs, the first 333 million requests a
#: month): Chalice deploys a REST API (infra/ reads its ``RestAPI`` resource).
API_GATEWAY_PRICING_URL = "https://aws.amazon.com/api-gateway/pricing/"
API_GATEWAY_KIND = "REST API"
API_GATEWAY_USD_PER_MILLION_REQUESTS = 3.50

#: The operations billed (names of bench.operations' scenarios).
BILLED = ("earn (points)", "redeem", "balance read", "earn (order, 20 lines, 10 rules)")


def lambda_memory_mb(stage: str = "prod") -> int:
    """The API function's memory size in .chalice/config.json (the stage's, else the top level's)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    return int(stage_config.get("lambda_memory_size", config.get("lambda_memory_size", 128)))


@dataclass(frozen=True)
class BillRow:
    operation: str
    rru: float
    wru: float
    handler_ms: float
    memory_mb: int

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.handler_ms))

    @property
    def dynamodb_usd(self) -> float:
        return self.rru * DYNAMODB_USD_PER_MILLION_RRU + self.wru * DYNAMODB_USD_PER_MILLION_WRU

    @property
    def lambda_usd(self) -> float:
        gb_seconds = self.memory_mb / 1024 * self.billed_ms / 1000 * 1_000_000
        return gb_seconds * LAMBDA_USD_PER_GB_SECOND + LAMBDA_USD_PER_MILLION_REQUESTS

    @property
    def api_gateway_usd(self) -> float:
        return API_GATEWAY_USD_PER_MILLION_REQUESTS

    @property
    def total_usd(self) -> float:
        return self.dynamodb_usd + self.lambda_usd + self.api_gateway_usd


def measure_durations(api: AppClient, fx: Fixture, *, samples: int, warmup: int = 5) -> dict[str, float]:
    """Median handler time (ms) of each billed operation, through chalice.test (auth included)."""
    from bench.operations import order_body

    http = api.client.http
    member = fx.member
    numbers = iter(range(3_000_000, 10**9))

    def post(path: str, body: dict[str, object]) -> Callable[[], None]:
        def run() -> None:
            payload = dict(body)
            if "order" in payload:
                payload = order_body(next(numbers))
            else:
                payload["reference"] = f"bill-{uuid.uuid4().hex[:12]}"
            response = http.post(
                path, headers=AppClient.headers(fx.key, f"bill-{uuid.uuid4()}"), body=json.dumps(payload)
            )
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.body!r}")

        return run

    def balance() -> None:
        response = http.get(f"/v1/members/{member}/balance", headers=AppClient.headers(fx.key))
        if response.status_code != 200:
            raise RuntimeError(f"balance: {response.status_code} {response.body!r}")

    runs: dict[str, Callable[[], None]] = {
        "earn (points)": post(f"/v1/members/{member}/earn", {"points": 120}),
        "redeem": post(f"/v1/members/{member}/redeem", {"points": 50}),
        "balance read": balance,
        "earn (order, 20 lines, 10 rules)": post(f"/v1/members/{member}/earn", {"order": True}),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + samples):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
            drop_buffered_metrics()
            if i >= warmup:
                times[name].append(elapsed * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def rows_of(costs: list[OperationCost], durations: dict[str, float], memory_mb: int) -> list[BillRow]:
    by_name = {cost.name: cost for cost in costs}
    return [
        BillRow(
            operation=name,
            rru=by_name[name].rru(incl_auth=True),
            wru=by_name[name].wru(incl_auth=True),
            handler_ms=durations[name],
            memory_mb=memory_mb,
        )
        for name in BILLED
        if name in by_name and name in durations
    ]


def print_bill(report: Report, rows: list[BillRow], samples: int) -> None:
    report.heading(f"The bill: one million of each request on AWS ({PRICE_REGION}, on-demand list prices)")
    report.table(
        [
            "operation (x 1 000 000)",
            "RRU",
            "WRU",
            "DynamoDB $",
            "handler ms (median)",
            "billed ms",
            "Lambda $",
            f"API Gateway {API_GATEWAY_KIND} $",
            "total $",
        ],
        [
            [
                row.operation,
                row.rru,
                row.wru,
                f"{row.dynamodb_usd:.2f}",
                f"{row.handler_ms:.1f}",
                row.billed_ms,
                f"{row.lambda_usd:.2f}",
                f"{row.api_gateway_usd:.2f}",
                f"{row.total_usd:.2f}",
            ]
            for row in rows
        ],
        right=(1, 2, 3, 4, 5, 6, 7, 8),
    )
    memory = rows[0].memory_mb if rows else lambda_memory_mb()
    report.text(
        f"Prices as of {PRICES_AS_OF}: DynamoDB ${DYNAMODB_USD_PER_MILLION_RRU:.3f}/M RRU, "
        f"${DYNAMODB_USD_PER_MILLION_WRU:.3f}/M WRU ({DYNAMODB_PRICING_URL}); Lambda x86_64 "
        f"${LAMBDA_USD_PER_GB_SECOND:.10f}/GB-s + ${LAMBDA_USD_PER_MILLION_REQUESTS:.2f}/M requests at {memory} MB "
        f"(.chalice/config.json) ({LAMBDA_PRICING_URL}); API Gateway {API_GATEWAY_KIND} "
        f"${API_GATEWAY_USD_PER_MILLION_REQUESTS:.2f}/M ({API_GATEWAY_PRICING_URL})."
    )
    report.text(
        f"Units include the two auth reads. Handler ms: the median of {samples} warm requests in this process on "
        "DynamoDB Local (a Lambda's calls to DynamoDB in the same region take longer, and its CPU share at "
        f"{memory} MB differs), rounded up to the 1 ms Lambda bills. Free tiers, volume tiers, data transfer, "
        "storage, logs and traces are left out."
    )
