"""``python -m bench.import_under_load --base URL --key lk_... [--rows N]``: a bulk import beside live traffic.

Against a running API (``make run``'s, or a stage's), with an admin key of a brand:

1. enrols a handful of members over the API (``POST /v1/members``), the integrator's own;
2. writes a CSV of ``--rows`` new members (the import's columns, a unique ``external_id`` and
   ``email`` per row, opening balances, no tier) and runs ``loyalty import members`` on it (the
   CLI beside this Python, or ``--loyalty``), which sends it (in parts over 4.9 MB) and follows
   the imports to the end;
3. meanwhile ``--threads`` threads (a ``requests`` session each, each on its own members) earn a
   few points (``POST /v1/members/{id}/earn`` with an ``Idempotency-Key``) and read the balance
   (``GET /v1/members/{id}/balance``), recording every status code and latency, until the CLI
   exits (every import completed or failed; Ctrl-C stops the callers and reports what was
   measured so far); first, ``--baseline`` seconds alone (no import), recorded apart, to compare.

Prints the import's wall time and rows per second, each import's record (``GET /v1/imports/{id}``),
the callers' status codes (the body of every 5xx and 429, at most ``--show-bodies`` of each) and
p50/p95/p99 of earn and balance, alone and during the import. Exit code 1 if a caller got a 5xx or the
import did not complete. The figures are this machine's (its CPUs, DynamoDB Local's), not AWS's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.appenv import ROOT

if str(ROOT) not in sys.path:  # `python -m bench.import_under_load` from elsewhere
    sys.path.insert(0, str(ROOT))

DEFAULT_ROWS = 100_000
DEFAULT_THREADS = 4
MEMBERS_PER_THREAD = 2
TIMEOUT_SECONDS = 30.0


def make_csv(path: Path, rows: int, *, prefix: str, seed: int = 11) -> int:
    """Writes a file of ``rows`` members whose external ids and emails start with ``prefix``; its bytes."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("external_id,email,name,birthday,marketing_consent,points\n")
        for n in range(rows):
            external_id = f"{prefix}-{n:07d}"
            points = 0 if rng.random() < 0.1 else rng.randint(1, 5000)
            birthday = f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if n % 2 else ""
            consent = "true" if n % 3 == 0 else "false"
            out.write(f"{external_id},{external_id}@example.com,Member {n},{birthday},{consent},{points}\n")
    return path.stat().st_size


@dataclass
class Calls:
    """Every caller's answers: (operation, status, seconds), and the bodies of the errors worth reading."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "before"
    samples: list[tuple[str, int, float]] = field(default_factory=list)
    before: list[tuple[str, int, float]] = field(default_factory=list)
    bodies: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)

    def add(self, operation: str, status: int, seconds: float, body: str | None, keep: int) -> None:
        with self.lock:
            (self.samples if self.phase == "during" else self.before).append((operation, status, seconds))
            if body is not None and (status >= 500 or status == 429):
                kept = self.bodies.setdefault((operation, status), [])
                if len(kept) < keep:
                    kept.append(body[:500])


def _api(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def enrol(session: Any, api: str, key: str, external_id: str) -> str:
    response = session.post(
        f"{api}/members",
        json={"external_id": external_id, "email": f"{external_id}@example.com", "name": external_id},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"enrol-{external_id}"},
        timeout=TIMEOUT_SECONDS,
    )
    if response.status_code not in (200, 201):
        raise SystemExit(f"enrolling {external_id}: {response.status_code} {response.text[:300]}")
    return str(response.json()["id"])


def caller(api: str, key: str, members: list[str], stop: threading.Event, calls: Calls, keep: int) -> None:
    """Earn then balance, member after member, until ``stop``."""
    import requests

    session = requests.Session()
    auth = {"Authorization": f"Bearer {key}"}
    n = 0
    while not stop.is_set():
        member = members[n % len(members)]
        n += 1
        order = f"order-{uuid.uuid4().hex[:16]}"
        earn_headers = {**auth, "Idempotency-Key": order}
        for operation, method, url, body, headers in (
            ("earn", "POST", f"{api}/members/{member}/earn", {"amount": "3.20", "reference": order}, earn_headers),
            ("balance", "GET", f"{api}/members/{member}/balance", None, auth),
        ):
            started = time.perf_counter()
            try:
                response = session.request(method, url, json=body, headers=headers, timeout=TIMEOUT_SECONDS)
            except requests.RequestException as error:
                with calls.lock:
                    if calls.phase == "during":
                        calls.transport_errors[f"{operation}: {type(error).__name__}"] += 1
                continue
            calls.add(operation, response.status_code, time.perf_counter() - started, response.text, keep)


def _loyalty_command(given: str | None) -> list[str]:
    if given:
        return [given]
    beside = Path(sys.executable).parent / "loyalty"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("loyalty")
    return [found] if found else [sys.executable, "-m", "devtools.cli"]


def _import_ids(session: Any, api: str, key: str) -> list[str]:
    response = session.get(f"{api}/imports", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    return [str(item["id"]) for item in response.json().get("data", [])]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index] * 1000


def run(
    *, base: str, key: str, rows: int, threads: int, baseline: float, loyalty: str | None, keep: int, say: Any
) -> dict[str, Any]:
    import requests

    api = _api(base)
    session = requests.Session()
    prefix = f"iul-{uuid.uuid4().hex[:8]}"
    members = [enrol(session, api, key, f"{prefix}-caller-{i}") for i in range(threads * MEMBERS_PER_THREAD)]
    say(f"enrolled {len(members)} members for the callers")
    before = set(_import_ids(session, api, key))

    workdir = Path(tempfile.mkdtemp(prefix="import-under-load-"))
    csv_path = workdir / f"{prefix}.csv"
    size = make_csv(csv_path, rows, prefix=prefix)
    say(f"wrote {rows} rows ({size / 1e6:.1f} MB) to {csv_path}")

    calls = Calls()
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=caller,
            args=(api, key, members[i * MEMBERS_PER_THREAD : (i + 1) * MEMBERS_PER_THREAD], stop, calls, keep),
            daemon=True,
        )
        for i in range(threads)
    ]
    command = [*_loyalty_command(loyalty), "import", "members", str(csv_path), "--api", base, "--key", key]
    for worker in workers:
        worker.start()
    if baseline > 0:
        say(f"callers alone for {baseline:g} s")
        time.sleep(baseline)
    with calls.lock:
        calls.phase = "during"
    say(f"running {' '.join(command[:-1])} lk_...")
    callers_started = time.perf_counter()
    started = time.perf_counter()
    try:
        finished = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
        returncode: int | str = finished.returncode
        output = (finished.stdout + finished.stderr).strip().splitlines()[-12:]
    except KeyboardInterrupt:  # Ctrl-C: report what was measured so far (the imports go on in the API)
        returncode, output = "interrupted", []
    wall = time.perf_counter() - started
    stop.set()
    for worker in workers:
        worker.join(TIMEOUT_SECONDS + 5)
    callers_seconds = time.perf_counter() - callers_started
    say(f"loyalty import ended ({returncode}) after {wall:.1f} s")

    new = [i for i in _import_ids(session, api, key) if i not in before]
    records = []
    for import_id in new:
        response = session.get(
            f"{api}/imports/{import_id}", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_SECONDS
        )
        records.append(response.json())
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rows": rows,
        "bytes": size,
        "wall": wall,
        "returncode": returncode,
        "cli_tail": output,
        "records": sorted(records, key=lambda r: str(r.get("created_at", ""))),
        "calls": calls,
        "callers_seconds": callers_seconds,
        "threads": threads,
        "members": len(members),
        "baseline": baseline,
    }


def print_result(report: Any, m: dict[str, Any]) -> None:
    report.heading(f"Bulk import of {m['rows']} rows beside {m['threads']} callers")
    completed = all(r.get("status") == "completed" for r in m["records"]) and bool(m["records"])
    processed = sum(int(r.get("counts", {}).get("processed", 0)) for r in m["records"])
    report.table(
        ["rows", "file MB", "imports", "wall s", "rows processed/s", "CLI exit", "all completed"],
        [
            [
                m["rows"],
                f"{m['bytes'] / 1e6:.1f}",
                len(m["records"]),
                f"{m['wall']:.1f}",
                f"{processed / m['wall']:.0f}",
                m["returncode"],
                "yes" if completed else "no",
            ]
        ],
        title="The import (wall: loyalty import members, from its start to its exit)",
        right=(0, 1, 2, 3, 4, 5),
    )
    columns = ["total", "processed", "imported", "skipped", "failed"]
    report.table(
        ["import", "status", *columns, "chunks", "attempts", "error_count", "last_error"],
        [
            [
                r.get("id"),
                r.get("status"),
                *(r.get("counts", {}).get(c) for c in columns),
                f"{r.get('chunks_done')}/{r.get('chunks')}",
                r.get("attempts"),
                r.get("error_count"),
                r.get("last_error") or "-",
            ]
            for r in m["records"]
        ],
        title="GET /v1/imports/{id}",
        right=(2, 3, 4, 5, 6, 7, 8, 9),
    )
    if m["returncode"] not in (0, "interrupted"):
        report.text("loyalty import's last lines:")
        for line in m["cli_tail"]:
            report.text(f"  {line}")
    calls: Calls = m["calls"]
    statuses = Counter((op, status) for op, status, _ in calls.samples)
    report.table(
        ["operation", "status", "count"],
        [[op, status, count] for (op, status), count in sorted(statuses.items())]
        + [[name, "no answer", count] for name, count in sorted(calls.transport_errors.items())],
        title=(
            f"Callers: {len(calls.samples)} requests in {m['callers_seconds']:.1f} s "
            f"({m['threads']} threads, {m['members']} members)"
        ),
        right=(1, 2),
    )
    rows = []
    phases = [("during the import", calls.samples)]
    if calls.before:
        phases.insert(0, (f"alone ({m['baseline']:g} s before)", calls.before))
    for (phase, samples), operation in itertools.product(phases, ("earn", "balance")):
        ok = [s for op, status, s in samples if op == operation and status < 400]
        every = [s for op, _, s in samples if op == operation]
        rows.append(
            [
                phase,
                operation,
                len(every),
                len(ok),
                f"{percentile(ok, 50):.0f}",
                f"{percentile(ok, 95):.0f}",
                f"{percentile(ok, 99):.0f}",
                f"{max(ok) * 1000:.0f}" if ok else "-",
            ]
        )
    report.table(
        ["callers", "operation", "requests", "2xx", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        rows,
        title="Latency of the successful calls",
        right=(2, 3, 4, 5, 6, 7),
    )
    for (operation, status), bodies in sorted(calls.bodies.items()):
        report.text(f"{operation} {status} ({statuses[(operation, status)]} in all), bodies:")
        for body in bodies:
            report.text(f"  {body}")


def main(argv: list[str] | None = None) -> int:
    from bench.report import Report

    parser = argparse.ArgumentParser(prog="python -m bench.import_under_load", description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the API's root (make run's by default)")
    parser.add_argument("--key", default=os.environ.get("LOYALTY_API_KEY"), help="an admin key of the brand")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="concurrent callers (default 4)")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds the callers run alone first (default 20)")
    parser.add_argument("--loyalty", help="the loyalty command (default: the one beside this Python)")
    parser.add_argument("--show-bodies", type=int, default=5, help="bodies kept per operation and error status")
    parser.add_argument("--plain", action="store_true", help="plain text tables (no rich)")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("--key (or LOYALTY_API_KEY) is required")

    def progress(text: str) -> None:
        print(f"[import_under_load] {text}", file=sys.stderr, flush=True)

    m = run(
        base=args.base,
        key=args.key,
        rows=args.rows,
        threads=args.threads,
        baseline=args.baseline,
        loyalty=args.loyalty,
        keep=args.show_bodies,
        say=progress,
    )
    print_result(Report(plain=args.plain), m)
    server_errors = any(status >= 500 for _, status, _ in m["calls"].samples)
    completed = all(r.get("status") == "completed" for r in m["records"]) and bool(m["records"])
    return 1 if server_errors or not completed else 0


if __name__ == "__main__":
    raise SystemExit(main())
