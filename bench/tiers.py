"""``python -m bench.tiers``: the request units of tier operations, against DynamoDB Local.

A brand with Silver (500 points) and Gold (2 000) over a rolling 12 months; measured warm:
an earn that changes no tier, an earn that upgrades (balance, bucket and tier in the same
transaction, plus the review index entry and the ``tier.changed`` event), an order earn with
the tier's multiplier, the balance read with the tier's status, and the review job lowering
one member. Units exclude authentication (the API key and tenant reads every request pays).
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.appenv import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "500", "multiplier": "1.5", "perks": ["Free delivery"]},
        {"name": "gold", "threshold": "2000", "multiplier": "2", "perks": ["Free delivery", "Lounge"]},
    ],
}


def main() -> int:
    from bench.appenv import bench_tenant, recorded_app
    from bench.units import cost_of

    with recorded_app() as (api, recorder):
        admin = bench_tenant(api, "bench-tiers")
        api.expect(200, "PUT", "/v1/program/tiers", key=admin, body=TIERS)

        def member() -> str:
            return str(api.expect(201, "POST", "/v1/members", key=admin, body={})["id"])

        def earn(member_id: str, body: dict[str, Any]) -> Any:
            path = f"/v1/members/{member_id}/earn"
            return api.expect(201, "POST", path, key=admin, body=body, idempotency_key=str(uuid.uuid4()))

        def order(total: str) -> dict[str, Any]:
            return {"order": {"id": f"o-{uuid.uuid4().hex[:8]}", "total": total, "currency": "EUR"}}

        rows = []

        def measure(name: str, action: Any, check: Any = None) -> None:
            with recorder.record() as calls:
                result = action()
            if check is not None:
                assert check(result), (name, result)
            rows.append(cost_of(name, recorder, calls))

        # warm every lazily built client and class first
        warm = member()
        earn(warm, {"points": 100})
        earn(warm, {"points": 600})
        api.expect(200, "GET", f"/v1/members/{warm}/balance", key=admin)

        steady, crossing = member(), member()
        earn(steady, {"points": 100})
        earn(crossing, {"points": 450})
        measure(
            "earn (points), no tier change",
            lambda: earn(steady, {"points": 100}),
            lambda r: r["balance"]["tier"] is None,
        )
        measure(
            "earn (points) that upgrades to silver",
            lambda: earn(crossing, {"points": 100}),
            lambda r: r["balance"]["tier"] == "silver",
        )
        measure(
            "earn (order) as silver, tier share",
            lambda: earn(crossing, order("20.00")),
            lambda r: r["transaction"]["breakdown"][-1]["rule_id"] == "tier:silver",
        )
        measure(
            "balance read with tier status",
            lambda: api.expect(200, "GET", f"/v1/members/{crossing}/balance", key=admin),
            lambda r: r["tier_status"]["progress"]["next_tier"] == "gold",
        )
        # the review job, long after: the members holding a tier are lowered (warm and crossing)
        as_of = (datetime.now(UTC) + timedelta(days=800)).isoformat()
        measure(
            "review-tiers job, 2 members lowered",
            lambda: api.expect(201, "POST", "/v1/jobs/review-tiers/run", key=admin, body={"as_of": as_of}),
            lambda r: r["counts"] == {"members": 2, "downgraded": 2, "kept": 0},
        )
    print(f"{'operation':45} {'RRU':>6} {'WRU':>6}  calls (auth excluded)")
    for row in rows:
        print(f"{row.name:45} {row.rru(incl_auth=False):6.1f} {row.wru(incl_auth=False):6.1f}  {row.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
