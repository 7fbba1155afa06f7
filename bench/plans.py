"""``python -m bench.plans``: the request units of paid membership, against DynamoDB Local.

A brand with Silver (500 points) and Gold (2 000) and a Premium plan granting Gold and an extra
x1.5; measured warm, authentication excluded: the same order earn by a member without a tier
or plan, by a member holding an earned tier, and by a subscribed member (the grant is on the
balance item the earn reads anyway: no extra read); the balance read with the plan, recording
a first period (with its join bonus, in the bonus's ledger transaction), a renewal, a
cancellation, and the lapse job lapsing two subscriptions.
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
PLANS = {
    "plans": [
        {
            "plan_id": "premium",
            "name": "Premium membership",
            "tier": "gold",
            "multiplier": "1.5",
            "perks": ["Free returns"],
            "join_bonus": 100,
        }
    ]
}


def main() -> int:
    from bench.appenv import bench_tenant, recorded_app
    from bench.units import cost_of

    with recorded_app() as (api, recorder):
        admin = bench_tenant(api, "bench-plans")
        api.expect(200, "PUT", "/v1/program/tiers", key=admin, body=TIERS)
        api.expect(200, "PUT", "/v1/program/plans", key=admin, body=PLANS)
        now = datetime.now(UTC)

        def member() -> str:
            return str(api.expect(201, "POST", "/v1/members", key=admin, body={})["id"])

        def earn(member_id: str, body: dict[str, Any]) -> Any:
            path = f"/v1/members/{member_id}/earn"
            return api.expect(201, "POST", path, key=admin, body=body, idempotency_key=str(uuid.uuid4()))

        def order(total: str) -> dict[str, Any]:
            return {"order": {"id": f"o-{uuid.uuid4().hex[:8]}", "total": total, "currency": "EUR"}}

        def subscribe(member_id: str, start: datetime, end: datetime) -> Any:
            body = {
                "plan_id": "premium",
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "reference": f"inv-{uuid.uuid4().hex[:12]}",
            }
            path = f"/v1/members/{member_id}/subscriptions"
            return api.expect(201, "POST", path, key=admin, body=body, idempotency_key=str(uuid.uuid4()))

        rows = []

        def measure(name: str, action: Any, check: Any = None) -> None:
            with recorder.record() as calls:
                result = action()
            if check is not None:
                assert check(result), (name, result)
            rows.append(cost_of(name, recorder, calls))

        # warm every lazily built client and class first
        warm = member()
        subscribe(warm, now - timedelta(minutes=1), now + timedelta(days=30))
        earn(warm, order("10.00"))
        earn(warm, {"points": 10})
        api.expect(200, "GET", f"/v1/members/{warm}/balance", key=admin)

        plain, silver, subscribed, ending = member(), member(), member(), member()
        for who in (plain, subscribed, ending):
            earn(who, {"points": 100})
        earn(silver, {"points": 600})
        # The same order for each (none of them crosses a threshold: no tier write)
        measure(
            "earn (order), no tier, no plan",
            lambda: earn(plain, order("5.00")),
            lambda r: [s["source"] for s in r["transaction"]["breakdown"]] == ["base"],
        )
        measure(
            "earn (order), silver earned, no plan",
            lambda: earn(silver, order("5.00")),
            lambda r: [s["source"] for s in r["transaction"]["breakdown"]] == ["base", "tier"],
        )
        measure(
            "record a first period (join bonus)",
            lambda: subscribe(subscribed, now - timedelta(minutes=1), now + timedelta(days=365)),
            lambda r: r["outcome"] == "started" and r["join_bonus"]["points"] == 100,
        )
        measure(
            "earn (order), subscribed: gold + plan shares",
            lambda: earn(subscribed, order("5.00")),
            lambda r: (
                [s["source"] for s in r["transaction"]["breakdown"]] == ["base", "tier", "plan"]
                and r["balance"]["tier"] == "gold"
            ),
        )
        measure(
            "earn (points), subscribed",
            lambda: earn(subscribed, {"points": 10}),
            lambda r: r["balance"]["tier"] == "gold",
        )
        measure(
            "balance read with plan and tier status",
            lambda: api.expect(200, "GET", f"/v1/members/{subscribed}/balance", key=admin),
            lambda r: r["plan"]["plan_id"] == "premium" and r["tier"] == "gold",
        )
        end = now + timedelta(days=365)
        measure(
            "record a renewal (consecutive period)",
            lambda: subscribe(subscribed, end, end + timedelta(days=365)),
            lambda r: r["outcome"] == "renewed",
        )
        first = subscribe(ending, now - timedelta(minutes=1), now + timedelta(days=30))["subscription"]["id"]
        cancel = f"/v1/members/{subscribed}/subscriptions"
        sub_id = api.expect(200, "GET", cancel, key=admin)["data"][0]["id"]
        measure(
            "cancel",
            lambda: api.expect(200, "POST", f"{cancel}/{sub_id}/cancel", key=admin),
            lambda r: r["status"] == "cancelled",
        )
        as_of = (now + timedelta(days=31)).isoformat()
        measure(
            "lapse-subscriptions job, 2 lapsed",
            lambda: api.expect(201, "POST", "/v1/jobs/lapse-subscriptions/run", key=admin, body={"as_of": as_of}),
            lambda r: r["counts"] == {"subscriptions": 2, "lapsed": 2, "skipped": 0},
        )
        assert first
    print(f"{'operation':45} {'RRU':>6} {'WRU':>6}  calls (auth excluded)")
    for row in rows:
        print(f"{row.name:45} {row.rru(incl_auth=False):6.1f} {row.wru(incl_auth=False):6.1f}  {row.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
