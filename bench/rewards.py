"""``python -m bench.rewards``: reward redemption and capped earns, against DynamoDB Local.

Request units (computed per AWS's on-demand rules from the DynamoDB calls each operation made,
as in ``make bench``) and handler latency (chalice.test, the full HTTP path with
authentication, warm) of:

* ``POST /v1/members/{id}/rewards/{reward_id}/redeem``: a voucher with a generated code, and
  one with a stock and a per-member monthly limit (their counters move in the redemption's
  transaction);
* earns under earning caps: a plain earn in a brand without rules (the baseline), an earn under
  a monthly cap that is not cut, one cut to what is left, one past the cap (0 points), and an
  order earn under a campaign cap and the monthly cap.

Options: ``--iterations N`` (latency samples per operation, default 200), ``--warmup N``
(default 20).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.appenv import OPERATOR_KEY, REGION, ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rewards", description=__doc__)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)

    from bench.appenv import AppClient, configure_process, drop_buffered_metrics
    from bench.capture import Recorder
    from bench.units import cost_of
    from tests.support.emulators import dynamodb_local

    with dynamodb_local() as endpoint:
        configure_process(endpoint)
        recorder = Recorder(endpoint=endpoint, region=REGION)
        recorder.install()
        api = AppClient()
        rows = []
        try:

            def tenant(tenant_id: str) -> str:
                body = {"tenant_id": tenant_id, "name": tenant_id, "currency": "EUR", "timezone": "Europe/Helsinki"}
                admin = api.expect(201, "POST", "/v1/tenants", key=OPERATOR_KEY, body=body)["api_key"]["secret"]
                program = {"points_per_currency_unit": "10", "rounding": "floor"}
                api.expect(200, "PUT", "/v1/program", key=admin, body=program)
                return str(admin)

            def member(key: str) -> str:
                return str(api.expect(201, "POST", "/v1/members", key=key, body={})["id"])

            def earn(key: str, member_id: str, body: dict[str, Any]) -> Any:
                path = f"/v1/members/{member_id}/earn"
                return api.expect(201, "POST", path, key=key, body=body, idempotency_key=str(uuid.uuid4()))

            def redeem(key: str, member_id: str, reward_id: str) -> Any:
                path = f"/v1/members/{member_id}/rewards/{reward_id}/redeem"
                return api.expect(201, "POST", path, key=key, idempotency_key=str(uuid.uuid4()))

            def measure(name: str, action: Callable[[], Any], check: Callable[[Any], bool] | None = None) -> None:
                with recorder.record() as calls:
                    result = action()
                if check is not None:
                    assert check(result), (name, result)
                rows.append(cost_of(name, recorder, calls))
                drop_buffered_metrics()

            # --- rewards -----------------------------------------------------------------------
            shop = tenant("bench-rewards")
            voucher = api.expect(
                201,
                "POST",
                "/v1/rewards",
                key=shop,
                body={"name": "€5 voucher", "type": "fixed_discount", "amount": "5.00", "points_cost": 100},
            )["id"]
            limited = api.expect(
                201,
                "POST",
                "/v1/rewards",
                key=shop,
                body={
                    "name": "Free coffee",
                    "type": "free_product",
                    "sku": "coffee",
                    "points_cost": 50,
                    "stock": 100_000,
                    "per_member_limit": 10_000,
                    "limit_period": "month",
                },
            )["id"]
            redeemer = member(shop)
            earn(shop, redeemer, {"points": 10_000_000})
            redeem(shop, redeemer, voucher)  # warm every lazily built client and class
            redeem(shop, redeemer, limited)
            measure(
                "redeem a voucher (generated code)",
                lambda: redeem(shop, redeemer, voucher),
                lambda r: r["transaction"]["points"] == -100,
            )
            measure(
                "redeem with stock + per-member monthly limit",
                lambda: redeem(shop, redeemer, limited),
                lambda r: r["transaction"]["points"] == -50,
            )

            # --- caps ---------------------------------------------------------------------------
            plain = tenant("bench-plain")
            capped = tenant("bench-caps")
            for rule in (
                {"name": "Monthly cap", "kind": "earning_cap", "cap": 5000, "per": "month"},
                {"name": "Double", "kind": "order_multiplier", "factor": "2", "cap": 300, "per": "month"},
            ):
                api.expect(201, "POST", "/v1/program/rules", key=capped, body=rule)
            plain_member, capped_member, order_member = member(plain), member(capped), member(capped)
            earn(plain, plain_member, {"points": 10})
            earn(capped, capped_member, {"points": 10})
            measure("earn (points), no rules: baseline", lambda: earn(plain, plain_member, {"points": 120}))
            measure(
                "earn (points) under a monthly cap, not cut",
                lambda: earn(capped, capped_member, {"points": 120}),
                lambda r: r["transaction"]["points"] == 120,
            )
            earn(capped, capped_member, {"points": 4700})
            measure(
                "earn (points) cut by the monthly cap",
                lambda: earn(capped, capped_member, {"points": 600}),
                lambda r: r["transaction"]["points"] == 5000 - 4830,
            )
            measure(
                "earn (points) past the cap: 0 points",
                lambda: earn(capped, capped_member, {"points": 120}),
                lambda r: r["transaction"]["points"] == 0,
            )
            measure(
                "earn (order) under campaign + monthly caps",
                lambda: earn(capped, order_member, {"order": {"id": "o-1", "total": "20.00", "currency": "EUR"}}),
                lambda r: r["transaction"]["points"] == 400,
            )
            recorder.uninstall()

            # --- latency ------------------------------------------------------------------------
            latency_member = member(capped)
            runs: dict[str, Callable[[], Any]] = {
                "redeem a voucher": lambda: redeem(shop, redeemer, voucher),
                "redeem with stock + limit": lambda: redeem(shop, redeemer, limited),
                "earn (points), no rules": lambda: earn(plain, plain_member, {"points": 10}),
                "earn (points) under a cap": lambda: earn(capped, latency_member, {"points": 10}),
            }
            samples = _latency(runs, iterations=args.iterations, warmup=args.warmup)
        finally:
            recorder.uninstall()
            api.close()
    print(f"{'operation':46} {'RRU':>5} {'WRU':>5} {'RRU+auth':>9}  calls (auth excluded)")
    for row in rows:
        print(
            f"{row.name:46} {row.rru(incl_auth=False):5.1f} {row.wru(incl_auth=False):5.1f} "
            f"{row.rru(incl_auth=True):9.1f}  {row.summary()}"
        )
    print()
    print(f"latency, {args.iterations} warm requests each (after {args.warmup}), chalice.test + DynamoDB Local")
    print(f"{'operation':30} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in samples.items():
        ordered = sorted(values)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        print(f"{name:30} {statistics.median(ordered) * 1000:8.1f} {p95 * 1000:8.1f}")
    return 0


def _latency(runs: dict[str, Callable[[], Any]], *, iterations: int, warmup: int) -> dict[str, list[float]]:
    from bench.appenv import drop_buffered_metrics

    names = list(runs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    for i in range(warmup + iterations):
        shift = i % len(names)  # rotate the order so no operation always runs first
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            runs[name]()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                samples[name].append(elapsed)
            drop_buffered_metrics()
    return samples


if __name__ == "__main__":
    raise SystemExit(main())
