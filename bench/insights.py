"""``python -m bench.insights``: the cost of keeping and reading the program's insights, against
DynamoDB Local.

* the fold (job ``fold-insights``): events per second, and request units per event (computed
  from the calls it made, ``bench.units``);
* a summary read over a year of daily rows: its request units;
* the time to fold the same day's events for a brand of 10,000 and one of 100,000 members (the
  members beyond the day's are seeded straight into the table): the fold's cost follows the
  events, so the ratio should be near 1.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.appenv import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seed_members(recorder: Any, table: str, count: int) -> None:
    """``count`` members (profile and balance) written straight to the table, outside the feed."""
    client = recorder.helper
    now = datetime.now(UTC).isoformat()
    batch: list[dict[str, Any]] = []
    for n in range(count):
        member = f"mem_SEED{n:022d}"
        for sk, extra in (
            ("#PROFILE", {"member_id": {"S": member}, "created_at": {"S": now}}),
            ("#BALANCE", {"available": {"N": "100"}, "version": {"N": "1"}}),
        ):
            batch.append({"PutRequest": {"Item": {"pk": {"S": f"MEMBER#{member}"}, "sk": {"S": sk}, **extra}}})
        if len(batch) >= 24 or n == count - 1:
            request = {table: batch}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            batch = []


def day_of_events(api: Any, admin: str, members: int) -> int:
    """A day's activity: enrolments, each with three order earns and a redemption. Its event count."""
    events = 0
    for _ in range(members):
        member = api.expect(201, "POST", "/v1/members", key=admin, body={})["id"]
        events += 1
        for n in range(3):
            order = {"id": f"o-{uuid.uuid4().hex[:10]}", "total": f"{10 + n}.50", "currency": "EUR"}
            path = f"/v1/members/{member}/earn"
            api.expect(201, "POST", path, key=admin, body={"order": order}, idempotency_key=str(uuid.uuid4()))
            events += 1
        body = {"points": 50}
        api.expect(201, "POST", f"/v1/members/{member}/redeem", key=admin, body=body, idempotency_key=str(uuid.uuid4()))
        events += 1
    return events


def fold(tenant_id: str) -> dict[str, int]:
    from chalicelib.domain.jobs import JobName
    from chalicelib.services import platform

    def later() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=6)

    return platform().for_registered_tenant(tenant_id, clock=later).jobs.run(JobName.FOLD_INSIGHTS).counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--day-members", type=int, default=100, help="members active in the folded day")
    parser.add_argument("--sizes", default="10000,100000", help="brand sizes compared (members)")
    parser.add_argument("--rounds", type=int, default=3, help="timed folds per brand (the median is shown)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from bench.appenv import bench_tenant, recorded_app
    from bench.units import cost_of
    from chalicelib.services import platform

    with recorded_app() as (api, recorder):
        logging.getLogger("loyalty").setLevel(logging.WARNING)  # one line per figure, not per request
        admins: dict[int, str] = {}
        for size in sizes:
            tenant = f"bench-ins-{size}"
            admins[size] = bench_tenant(api, tenant)
            seed_members(recorder, platform().settings.tenant_table_name(tenant), size)
            day_of_events(api, admins[size], 2)  # warm every client and class
            fold(tenant)
        # Rounds alternate between the brands, so both meet the same machine load; the median counts.
        times: dict[int, list[float]] = {size: [] for size in sizes}
        events = 0
        for _ in range(args.rounds):
            for size in sizes:
                events = day_of_events(api, admins[size], args.day_members)
                started = time.perf_counter()
                counts = fold(f"bench-ins-{size}")
                times[size].append(time.perf_counter() - started)
                assert counts["events"] == events, (counts, events)
        timings = {size: (events, statistics.median(values)) for size, values in times.items()}

        size = sizes[0]
        tenant, admin = f"bench-ins-{size}", admins[size]
        table = platform().settings.tenant_table_name(tenant)
        recorded_events = day_of_events(api, admin, max(10, args.day_members // 5))
        with recorder.record() as calls:
            counts = fold(tenant)
        assert counts["events"] == recorded_events
        cost = cost_of("fold", recorder, calls)
        ru_per_event = (cost.rru(incl_auth=True) + cost.wru(incl_auth=True)) / recorded_events
        # A year of daily rows: the fullest day's row copied to 365 days, then one summary read.
        client = recorder.helper
        rows = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "INSIGHTS#DAY"}},
        )["Items"]
        row = max(rows, key=len)
        today = datetime.now(UTC).date()
        for back in range(365):
            day = (today - timedelta(days=back)).isoformat()
            client.put_item(TableName=table, Item={**row, "sk": {"S": day}})
        first = (today - timedelta(days=364)).isoformat()
        path = f"/v1/insights/summary?from={first}&to={today.isoformat()}"
        api.expect(200, "GET", path, key=admin)  # warm
        with recorder.record() as calls:
            api.expect(200, "GET", path, key=admin)
        summary_ru = cost_of("summary", recorder, calls).rru(incl_auth=False)

    print("Insights (DynamoDB Local)")
    for size, (events, elapsed) in timings.items():
        print(
            f"  fold of one day's {events} events, brand of {size:>7,} members: {elapsed:6.2f} s "
            f"({events / elapsed:,.0f} events/s)"
        )
    if len(sizes) >= 2:
        small, large = timings[sizes[0]], timings[sizes[-1]]
        print(f"  fold time ratio {sizes[-1]:,} / {sizes[0]:,} members: {large[1] / small[1]:.2f}")
    print(f"  request units per folded event (reads + writes): {ru_per_event:.2f}")
    print(f"  request units of a summary read over 365 daily rows: {summary_ru:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
