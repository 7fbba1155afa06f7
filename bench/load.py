"""``python -m bench.load``: earn and balance latency under load, through the HTTP server.

A real `chalice local` server (tests/support/live_server.py, its own process) on DynamoDB Local,
and N concurrent clients (threads, a ``requests`` session each, each on its own member so no two
clients race on one balance) sending earns or balance reads for a fixed time; beside it, the
same N threads making the DynamoDB calls those requests make with bare boto3 (bench.latency's
``Bare``: the two auth reads, then the balance read and the two-item transaction, or the
balance read). p50/p95/p99 per cell and the server/bare ratios.

Options: ``--seconds S`` per cell (default 3; ``--long`` = 20), ``--clients 1,4,16``, ``--plain``.
Both sides share this machine's cores with DynamoDB Local (and the server), so the figures
compare the two sides at equal load here; they are not AWS latencies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.appenv import REGION, ROOT
from bench.operations import TENANT_ID  # bench.latency.Bare names the tenant table after it

if str(ROOT) not in sys.path:  # `python -m bench.load` from elsewhere
    sys.path.insert(0, str(ROOT))

DEFAULT_SECONDS = 3.0
LONG_SECONDS = 20.0
DEFAULT_CLIENTS = (1, 4, 16)


@dataclass(frozen=True)
class Cell:
    side: str  # "server" or "bare boto3"
    operation: str  # "earn" or "balance"
    clients: int
    samples: list[float]  # seconds
    seconds: float

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0


def _drive(clients: int, seconds: float, make: Callable[[int], Callable[[], None]]) -> tuple[list[float], float]:
    """``clients`` threads, each calling its own ``make(i)()`` until ``seconds`` pass; all latencies."""
    runs = [make(i) for i in range(clients)]
    for run in runs:  # one unrecorded call each: connections open, code paths warm
        run()
    barrier = threading.Barrier(clients + 1)
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    stop_at = [0.0]

    def worker(i: int) -> None:
        barrier.wait()
        out = results[i]
        try:
            while time.perf_counter() < stop_at[0]:
                started = time.perf_counter()
                runs[i]()
                out.append(time.perf_counter() - started)
        except BaseException as error:  # reported after the cell
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return [sample for out in results for sample in out], elapsed


def measure(*, clients: tuple[int, ...], seconds: float, progress: Callable[[str], None]) -> list[Cell]:
    # The server's fake credentials (tests/support/live_server.py): DynamoDB Local keeps one set
    # of tables per access key, so bare boto3 must present the same one to see the server's.
    # boto3's default session keeps the credentials it first resolved, so it is dropped on the
    # way in and out: the bare clients here present the server's, those after it the bench's.
    import boto3

    saved = {name: os.environ.get(name) for name in _CREDENTIALS}
    os.environ.update(_CREDENTIALS)
    boto3.DEFAULT_SESSION = None
    try:
        return _measure(clients=clients, seconds=seconds, progress=progress)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        boto3.DEFAULT_SESSION = None


_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}


def _measure(*, clients: tuple[int, ...], seconds: float, progress: Callable[[str], None]) -> list[Cell]:
    import boto3
    import requests

    from bench.latency import Bare
    from bench.operations import Fixture, member_body
    from tests.support.emulators import dynamodb_local
    from tests.support.http import OPERATOR_KEY
    from tests.support.live_server import chalice_local

    cells: list[Cell] = []
    with dynamodb_local() as endpoint, chalice_local(endpoint, prefix_letter="l") as base_url:
        progress(f"server at {base_url}, DynamoDB Local at {endpoint}")
        setup = requests.Session()

        def call(method: str, path: str, key: str, body: Any = None, idem: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            if idem:
                headers["Idempotency-Key"] = idem
            response = setup.request(method, base_url + path, headers=headers, json=body, timeout=30)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()

        body = {"tenant_id": TENANT_ID, "name": "Load", "currency": "EUR", "timezone": "Europe/Helsinki"}
        admin = call("POST", "/v1/tenants", OPERATOR_KEY, body)["api_key"]["secret"]
        key = call("POST", "/v1/api-keys", admin, {"name": "load", "scopes": ["read", "write"]})["secret"]
        most = max(clients)
        server_members = [call("POST", "/v1/members", key, member_body(10_000 + i))["id"] for i in range(most)]
        bare_members = [call("POST", "/v1/members", key, member_body(20_000 + i))["id"] for i in range(most)]
        for member in server_members + bare_members:  # something to read and a balance to move
            call("POST", f"/v1/members/{member}/earn", key, {"points": 1000}, f"seed-{uuid.uuid4()}")
        tables = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION).list_tables()["TableNames"]
        control = next(name for name in tables if name.endswith("-control"))
        fixture = Fixture(admin_key=admin, key=key, member="", busy_member="", prefix=control.removesuffix("-control"))

        def server_earn(i: int) -> Callable[[], None]:
            session = requests.Session()
            url = f"{base_url}/v1/members/{server_members[i]}/earn"
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            payload = '{"points": 10, "reference": "order-00000001"}'

            def run() -> None:
                response = session.post(
                    url, data=payload, headers={**headers, "Idempotency-Key": f"load-{uuid.uuid4()}"}, timeout=30
                )
                if response.status_code != 201:
                    raise RuntimeError(f"earn: {response.status_code} {response.text}")

            return run

        def server_balance(i: int) -> Callable[[], None]:
            session = requests.Session()
            url = f"{base_url}/v1/members/{server_members[i]}/balance"
            headers = {"Authorization": f"Bearer {key}"}

            def run() -> None:
                response = session.get(url, headers=headers, timeout=30)
                if response.status_code != 200:
                    raise RuntimeError(f"balance: {response.status_code} {response.text}")

            return run

        def bare(operation: str) -> Callable[[int], Callable[[], None]]:
            def make(i: int) -> Callable[[], None]:
                side = Bare(endpoint, fixture, bare_members[i])
                return side.earn if operation == "earn" else side.balance

            return make

        for n in clients:
            for operation, server_side in (("earn", server_earn), ("balance", server_balance)):
                for side, make in (("server", server_side), ("bare boto3", bare(operation))):
                    samples, elapsed = _drive(n, seconds, make)
                    cells.append(Cell(side, operation, n, samples, elapsed))
                    progress(f"{side} {operation} x{n}: {len(samples)} requests in {elapsed:.1f} s")
    return cells


def print_load(report: Any, cells: list[Cell], seconds: float) -> None:
    report.heading("Latency under load: HTTP server (chalice local) vs bare boto3, both on DynamoDB Local")
    by_key = {(c.side, c.operation, c.clients): c for c in cells}
    rows = []
    for cell in cells:
        if cell.side != "server":
            continue
        bare = by_key.get(("bare boto3", cell.operation, cell.clients))
        row: list[object] = [cell.operation, cell.clients]
        for side in (cell, bare):
            row += (
                [f"{side.percentile(50):.1f}", f"{side.percentile(95):.1f}", f"{side.percentile(99):.1f}"]
                if side
                else ["-"] * 3
            )
            row.append(f"{side.throughput:.0f}" if side else "-")
        if bare:
            row += [
                f"{cell.percentile(50) / bare.percentile(50):.1f}x",
                f"{cell.percentile(95) / bare.percentile(95):.1f}x",
                f"{cell.percentile(99) / bare.percentile(99):.1f}x",
            ]
        rows.append(row)
    report.table(
        [
            "operation",
            "clients",
            "server p50 ms",
            "p95",
            "p99",
            "req/s",
            "bare p50 ms",
            "p95",
            "p99",
            "req/s",
            "p50 ratio",
            "p95 ratio",
            "p99 ratio",
        ],
        rows,
        right=tuple(range(1, 13)),
    )
    counts = ", ".join(f"{c.side} {c.operation} x{c.clients}: {len(c.samples)}" for c in cells)
    report.text(
        f"{seconds:g} s per cell; samples: {counts}. Each client works on its own member (no balance races). "
        "The server is one `chalice local` process; clients, server and DynamoDB Local share this machine's cores, "
        f"so the ratios say what the app adds at equal load here, not what AWS would show. Median of all: "
        f"{statistics.median([s for c in cells for s in c.samples]) * 1000:.1f} ms."
    )


def main(argv: list[str] | None = None) -> int:
    from bench.report import Report

    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="seconds per cell (default 3)")
    parser.add_argument("--long", action="store_true", help=f"{LONG_SECONDS:g} s per cell")
    parser.add_argument("--clients", default=",".join(map(str, DEFAULT_CLIENTS)), help="e.g. 1,4,16")
    parser.add_argument("--plain", action="store_true", help="plain text tables (no rich)")
    args = parser.parse_args(argv)
    seconds = LONG_SECONDS if args.long else args.seconds
    clients = tuple(int(part) for part in args.clients.split(",") if part.strip())
    cells = measure(
        clients=clients, seconds=seconds, progress=lambda text: print(f"[load] {text}", file=sys.stderr, flush=True)
    )
    print_load(Report(plain=args.plain), cells, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
