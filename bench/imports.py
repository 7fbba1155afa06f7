"""Bulk import throughput and cost: ``python -m bench.imports [--rows N] [--workers K]``.

On a fresh DynamoDB Local, for a brand with Silver and Gold tiers:

1. **Request units per row**, computed from the DynamoDB calls an import of 500 rows (one
   chunk) actually makes (bench/units.py: the on-demand rules, transactions and index writes
   included): storing the file (``submit``), then landing it (transactions of 12 rows, each
   row its profile, balance, external-id link, opening entry, and tier review and event for
   tiered rows; plus the chunk's result and checkpoint). One transaction at a time while
   recorded.
2. **Rows per second** of an import of ``--rows`` rows (default 100 000), not recorded:
   ``submit`` (parse, check, chunk, store) and the landing, in-process, ``--workers``
   transactions in flight (the deployed default, 8), chunk after chunk as the job unit does.

Then every row is checked to have landed once: the import's counts, and a sample of members
whose balance and tier must be the file's. What it measures is this code on this machine's
CPUs against DynamoDB Local (Java, in memory), not DynamoDB's latency: read the rows per
second as a relative figure.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from bench.appenv import REGION, ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TENANT = "bench-imports"


def make_csv(rows: int, *, prefix: str, seed: int = 7) -> tuple[bytes, dict[str, tuple[int, str | None]]]:
    """A file of ``rows`` members; and what each external id must end with (points, tier)."""
    rng = random.Random(seed)
    lines = ["external_id,email,name,birthday,marketing_consent,points,tier"]
    expected: dict[str, tuple[int, str | None]] = {}
    for n in range(rows):
        external_id = f"{prefix}-{n:07d}"
        points = 0 if rng.random() < 0.1 else rng.randint(1, 5000)
        tier = rng.choice(["silver", "gold"]) if rng.random() < 0.1 else ""
        birthday = f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if n % 2 else ""
        consent = "true" if n % 3 == 0 else "false"
        lines.append(f"{external_id},{external_id}@example.com,Member {n},{birthday},{consent},{points},{tier}")
        expected[external_id] = (points, tier or None)
    return ("\n".join(lines) + "\n").encode(), expected


def measure(endpoint: str, *, rows: int, sample: int = 500, workers: int = 8, progress: Any = None) -> dict[str, Any]:
    from bench.appenv import configure_process
    from bench.capture import Recorder
    from bench.units import cost_of
    from chalicelib.domain.imports import ROWS_PER_TRANSACTION
    from chalicelib.domain.tenants import NewTenant
    from chalicelib.domain.tiers import Metric, NewTierProgram, Tier, WindowKind
    from chalicelib.services import platform, reset_platform

    say = progress or (lambda text: None)
    configure_process(endpoint)
    os.environ["LOYALTY_IMPORT_ROW_WORKERS"] = "1"
    recorder = Recorder(endpoint=endpoint, region=REGION)
    recorder.install()
    reset_platform()
    services = platform()
    services.provisioner.ensure_control_table()
    services.tenants.create(NewTenant(tenant_id=TENANT, name="Bench imports", currency="EUR", timezone="UTC"))
    from decimal import Decimal

    services.for_tenant_id(TENANT).tiers.configure(
        NewTierProgram(
            metric=Metric.POINTS,
            window=WindowKind.ROLLING_MONTHS,
            months=12,
            grace_periods=1,
            tiers=(Tier("silver", Decimal(500)), Tier("gold", Decimal(2000))),
        )
    )

    # 1. units per row, recorded (one row at a time)
    say(f"units: importing {sample} rows, every DynamoDB call recorded")
    data, _ = make_csv(sample, prefix="sample")
    service = services.for_tenant_id(TENANT).imports
    with recorder.record() as calls:
        job = service.submit(data)
    submit_cost = cost_of("submit", recorder, calls)
    with recorder.record() as calls:
        sampled = service.run(job.import_id, owner="bench-sample", budget_seconds=None).job
    land_cost = cost_of("land", recorder, calls)
    recorder.uninstall()
    assert sampled.imported == sample, sampled
    transactions = [c for c in land_cost.charges if c.short.startswith("TransactWriteItems")]

    # 2. throughput, not recorded
    os.environ["LOYALTY_IMPORT_ROW_WORKERS"] = str(workers)
    reset_platform()
    services = platform()
    service = services.for_tenant_id(TENANT).imports
    data, expected = make_csv(rows, prefix="row")
    say(f"throughput: {rows} rows ({len(data) / 1e6:.1f} MB), {workers} transactions in flight")
    started = time.perf_counter()
    job = service.submit(data)
    submit_seconds = time.perf_counter() - started
    say(f"submitted in {submit_seconds:.1f} s: {job.chunk_count} chunks")
    last = [time.perf_counter()]

    def on_chunk(current: Any) -> None:
        if time.perf_counter() - last[0] >= 15 or current.next_chunk == current.chunk_count:
            last[0] = time.perf_counter()
            rate = current.processed / (last[0] - landing_started)
            say(f"{current.processed}/{current.total_rows} rows landed ({rate:.0f} rows/s)")

    landing_started = time.perf_counter()
    done = service.run(job.import_id, owner="bench", budget_seconds=None, on_chunk=on_chunk).job
    land_seconds = time.perf_counter() - landing_started

    # every row once: the counts, and a sample of members as the file says
    tenant = services.for_tenant_id(TENANT)
    checked = 0
    for external_id in random.Random(3).sample(sorted(expected), min(200, rows)):
        member = tenant.members.find_by_external_id(external_id)
        assert member is not None, external_id
        balance = tenant.points.balance(member.member_id)
        assert (balance.available, balance.tier) == expected[external_id], (external_id, balance)
        entries = tenant.points.transactions(member.member_id, limit=10, cursor=None).items
        assert len(entries) == (1 if expected[external_id][0] else 0), entries
        checked += 1
    return {
        "rows": rows,
        "bytes": len(data),
        "chunks": done.chunk_count,
        "workers": workers,
        "imported": done.imported,
        "failed": done.failed,
        "skipped": done.skipped,
        "status": str(done.status),
        "submit_seconds": submit_seconds,
        "land_seconds": land_seconds,
        "checked": checked,
        "sample": sample,
        "submit_wru": submit_cost.wru(incl_auth=True),
        "land_wru": land_cost.wru(incl_auth=True),
        "land_rru": land_cost.rru(incl_auth=True),
        "row_transaction_wru": sum(c.wru + c.gsi_wru for c in transactions) / sample,
        "row_transactions": len(transactions),
        "rows_per_transaction": ROWS_PER_TRANSACTION,
    }


def print_imports(report: Any, m: dict[str, Any]) -> None:
    report.heading("Bulk import (DynamoDB Local; python -m bench.imports)")
    sample = m["sample"]
    report.table(
        ["step", "rows", "seconds", "rows per second"],
        [
            [
                "submit: parse, check, store chunks",
                m["rows"],
                f"{m['submit_seconds']:.1f}",
                f"{m['rows'] / m['submit_seconds']:.0f}",
            ],
            [
                f"land: {m['rows_per_transaction']} rows per transaction, {m['workers']} in flight",
                m["imported"],
                f"{m['land_seconds']:.1f}",
                f"{m['imported'] / m['land_seconds']:.0f}",
            ],
        ],
        right=(1, 2, 3),
    )
    report.table(
        [f"request units per row (sample of {sample} rows)", "write", "read"],
        [
            ["submit (chunks of the file)", f"{m['submit_wru'] / sample:.2f}", "0"],
            [
                "land (row transactions, chunk results, checkpoint)",
                f"{m['land_wru'] / sample:.2f}",
                f"{m['land_rru'] / sample:.2f}",
            ],
            ["total", f"{(m['submit_wru'] + m['land_wru']) / sample:.2f}", f"{m['land_rru'] / sample:.2f}"],
        ],
        right=(1, 2),
    )
    report.text(
        f"{m['rows']} rows ({m['bytes'] / 1e6:.1f} MB, {m['chunks']} chunks): {m['imported']} imported, "
        f"{m['skipped']} skipped, {m['failed']} failed, status {m['status']}; {m['checked']} members checked "
        f"against the file (balance, tier, one entry). The rows' transactions ({m['row_transactions']} recorded) "
        f"cost {m['row_transaction_wru']:.2f} WRU per row with their index writes; the rest of 'land' is the "
        f"chunk's result and checkpoint."
    )


def run(*, rows: int = 100_000, workers: int = 8, progress: Any = None) -> dict[str, Any]:
    from tests.support.emulators import dynamodb_local

    with dynamodb_local() as endpoint:
        return measure(endpoint, rows=rows, workers=workers, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args(argv)

    from bench.report import Report

    def progress(text: str) -> None:
        print(f"[imports] {text}", file=sys.stderr, flush=True)

    print_imports(Report(plain=args.plain), run(rows=args.rows, workers=args.workers, progress=progress))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
