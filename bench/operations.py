"""The operations whose request units are measured, each run once warm and recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bench.appenv import OPERATOR_KEY, AppClient
from bench.capture import Recorder
from bench.units import OperationCost, cost_of

TENANT_ID = "bench-brand"


@dataclass
class Fixture:
    admin_key: str
    key: str  # a read+write key, what a brand's backend would use
    member: str
    busy_member: str  # more than 20 ledger entries
    prefix: str

    @property
    def control_table(self) -> str:
        return f"{self.prefix}-control"

    @property
    def tenant_table(self) -> str:
        return f"{self.prefix}-tenant-{TENANT_ID}"


def _idem(label: str) -> str:
    return f"{label}-{uuid.uuid4()}"


def member_body(n: int) -> dict[str, Any]:
    return {
        "external_id": f"cust-{n:08d}",
        "email": f"customer{n}@example.com",
        "name": "Ada Lovelace",
        "marketing_consent": True,
    }


def earn_points_body(n: int) -> dict[str, Any]:
    return {"points": 120, "reference": f"order-{n:08d}"}


def earn_amount_body(n: int) -> dict[str, Any]:
    return {"amount": "12.50", "reference": f"order-{n:08d}"}


def redeem_body(n: int) -> dict[str, Any]:
    return {"points": 50, "reference": f"reward-{n:08d}"}


RICH_DESCRIPTION = (
    "Online order #A-2291: spring campaign, double points on selected items (garden furniture, outdoor "
    "lighting and barbecue accessories); points for the delivery fee excluded as per the programme rules; "
    "store pickup at Helsinki Kamppi, customer service ticket CS-48812 attached for the price adjustment. "
    "Thank you for shopping with us!"
)


def rich_earn_body(n: int) -> dict[str, Any]:
    """A fuller but valid payload (description <= 500 chars, metadata <= 20 pairs)."""
    return {
        "points": 120,
        "reference": f"order-{n:08d}",
        "description": RICH_DESCRIPTION,
        "metadata": {"channel": "web", "store": "helsinki-kamppi-01", "campaign": "spring-2x", "basket_id": "b-4711"},
    }


def set_up(api: AppClient, prefix: str) -> Fixture:
    created = api.expect(
        201,
        "POST",
        "/v1/tenants",
        key=OPERATOR_KEY,
        body={"tenant_id": TENANT_ID, "name": "Bench Brand", "currency": "EUR", "timezone": "Europe/Helsinki"},
    )
    admin_key = created["api_key"]["secret"]
    key = api.expect(
        201, "POST", "/v1/api-keys", key=admin_key, body={"name": "checkout-service", "scopes": ["read", "write"]}
    )["secret"]
    member = api.expect(201, "POST", "/v1/members", key=key, body=member_body(1))["id"]
    busy = api.expect(201, "POST", "/v1/members", key=key, body=member_body(2))["id"]
    for n in range(25):
        api.expect(
            201,
            "POST",
            f"/v1/members/{busy}/earn",
            key=key,
            body=earn_points_body(1000 + n),
            idempotency_key=_idem("seed"),
        )
    for rule in TEN_RULES:
        api.expect(201, "POST", "/v1/program/rules", key=admin_key, body=rule)
    return Fixture(admin_key=admin_key, key=key, member=member, busy_member=busy, prefix=prefix)


#: An order of 20 lines under 10 active rules (each matches some lines or the order).
TEN_RULES = [
    *(
        {"name": f"Category {c} x2", "kind": "line_multiplier", "factor": "2", "categories": [f"cat-{c}"]}
        for c in range(4)
    ),
    *({"name": f"SKU {s} x3", "kind": "line_multiplier", "factor": "3", "skus": [f"sku-{s:02d}"]} for s in range(3)),
    {"name": "Weekend x1.5", "kind": "order_multiplier", "factor": "1.5", "weekdays": ["sat", "sun"]},
    {"name": "Big basket", "kind": "order_bonus", "points": 100, "min_order_total": "100.00"},
    {"name": "Every 5th order", "kind": "milestone", "every": 5, "points": 50},
]


def order_body(n: int) -> dict[str, Any]:
    lines = [
        {"sku": f"sku-{i:02d}", "category": f"cat-{i % 5}", "quantity": 1 + i % 3, "unit_price": "4.95"}
        for i in range(20)
    ]
    return {"order": {"id": f"order-{n:08d}", "total": "198.00", "currency": "EUR", "lines": lines}}


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    status: int
    body: dict[str, Any] | None = None
    idempotent: bool = False
    #: Informational rows are not judged against the targets.
    info: bool = False


def scenarios(fx: Fixture, n: int) -> list[Scenario]:
    m = fx.member
    return [
        Scenario("member create", "POST", "/v1/members", 201, member_body(100 + n)),
        Scenario("earn (points)", "POST", f"/v1/members/{m}/earn", 201, earn_points_body(200 + n), True),
        Scenario("earn (amount)", "POST", f"/v1/members/{m}/earn", 201, earn_amount_body(300 + n), True),
        Scenario("redeem", "POST", f"/v1/members/{m}/redeem", 201, redeem_body(400 + n), True),
        Scenario(
            "earn (order, 20 lines, 10 rules)",
            "POST",
            f"/v1/members/{m}/earn",
            201,
            order_body(600 + n),
            True,
            info=True,
        ),
        Scenario("balance read", "GET", f"/v1/members/{m}/balance", 200),
        Scenario("transactions page (limit 20)", "GET", f"/v1/members/{fx.busy_member}/transactions?limit=20", 200),
        Scenario(
            f"earn (points, {len(RICH_DESCRIPTION)}-char description + 4 metadata)",
            "POST",
            f"/v1/members/{m}/earn",
            201,
            rich_earn_body(500 + n),
            True,
            info=True,
        ),
    ]


def measure(api: AppClient, recorder: Recorder, fx: Fixture) -> list[OperationCost]:
    # One unrecorded round first: every client, class and cache the app builds lazily exists
    # afterwards, so what is recorded is a warm request.
    for scenario in scenarios(fx, 0):
        _run(api, fx, scenario)
    costs = []
    for scenario in scenarios(fx, 1):
        with recorder.record() as calls:
            _run(api, fx, scenario)
        cost = cost_of(scenario.name, recorder, calls)
        cost.info = scenario.info
        costs.append(cost)
    return costs


def _run(api: AppClient, fx: Fixture, scenario: Scenario) -> None:
    api.expect(
        scenario.status,
        scenario.method,
        scenario.path,
        key=fx.key,
        body=scenario.body,
        idempotency_key=_idem("bench") if scenario.idempotent else None,
    )
