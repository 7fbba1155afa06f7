"""``python -m bench.referrals``: the request units of referral operations, against DynamoDB Local.

Measured warm: an enrolment (with its referral code's guard), one with a card code and a
referrer's code (two guards and the pending referral), a pending referee's order below the
minimum (the program's version read), the qualifying order earn (its own commit with the
referral's qualification, then both rewards through the ledger and the referral finished with
its event), the same order replayed, a look-up by referral code, a referrer's list. Units
exclude authentication (the API key and tenant reads every request pays).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from bench.appenv import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROGRAM = {
    "referrer_points": 500,
    "referee_points": 200,
    "min_order_total": "20.00",
    "cap": {"limit": 10, "per": "month"},
}


def main() -> int:
    from bench.appenv import bench_tenant, recorded_app
    from bench.units import cost_of

    with recorded_app() as (api, recorder):
        admin = bench_tenant(api, "bench-refs", points_per_euro=None)
        api.expect(200, "PUT", "/v1/program/referrals", key=admin, body=PROGRAM)

        def enrol(**body: Any) -> dict[str, Any]:
            return dict(api.expect(201, "POST", "/v1/members", key=admin, body=body))

        def order(member_id: str, total: str, key: str | None = None) -> Any:
            body = {"order": {"id": f"o-{uuid.uuid4().hex[:8]}", "total": total, "currency": "EUR"}}
            path = f"/v1/members/{member_id}/earn"
            return api.expect(201, "POST", path, key=admin, body=body, idempotency_key=key or str(uuid.uuid4()))

        rows = []

        def measure(name: str, action: Any) -> Any:
            with recorder.record() as calls:
                result = action()
            rows.append(cost_of(name, recorder, calls))
            return result

        # warm every lazily built client and class first
        warm_referrer = enrol()
        warm = enrol(referral_code=warm_referrer["referral_code"], card_code="WARM-0001")
        order(warm["id"], "10.00")
        order(warm["id"], "30.00")
        api.expect(200, "GET", f"/v1/members?referral_code={warm_referrer['referral_code']}", key=admin)

        ann = measure("enrol (referral code guard)", lambda: enrol(name="Ann"))
        ben = measure(
            "enrol with a card and a referrer's code",
            lambda: enrol(name="Ben", card_code="CARD-0001", referral_code=ann["referral_code"]),
        )
        measure("order earn below the minimum (pending referee)", lambda: order(ben["id"], "10.00"))
        body = {"order": {"id": "o-qualifying", "total": "30.00", "currency": "EUR"}}
        path = f"/v1/members/{ben['id']}/earn"
        measure(
            "qualifying order earn + both rewards + finish",
            lambda: api.expect(201, "POST", path, key=admin, body=body, idempotency_key="qualifying"),
        )
        measure(
            "the qualifying order replayed",
            lambda: api.expect(201, "POST", path, key=admin, body=body, idempotency_key="qualifying"),
        )
        measure("order earn after completion", lambda: order(ben["id"], "30.00"))
        measure(
            "look-up by referral code",
            lambda: api.expect(200, "GET", f"/v1/members?referral_code={ann['referral_code']}", key=admin),
        )
        measure(
            "a referrer's referrals (1)",
            lambda: api.expect(200, "GET", f"/v1/members/{ann['id']}/referrals", key=admin),
        )
    print(f"{'operation':50} {'RRU':>6} {'WRU':>6}  calls (auth excluded)")
    for row in rows:
        print(f"{row.name:50} {row.rru(incl_auth=False):6.1f} {row.wru(incl_auth=False):6.1f}  {row.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
