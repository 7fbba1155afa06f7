"""``python -m bench.run``: request units, handler overhead and cold start, against DynamoDB Local.

Options: ``--iterations N`` (latency samples, default 200), ``--warmup N`` (default 20),
``--cold-runs N`` (fresh interpreters per side, default 15), ``--plain`` (no rich),
``--skip-latency`` / ``--skip-cold`` (for quick runs).
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.appenv import REGION, ROOT

if str(ROOT) not in sys.path:  # `python -m bench.run` from elsewhere
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--plain", action="store_true", help="plain text tables (no rich)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args(argv)

    from bench import coldstart, latency, sections
    from bench.appenv import AppClient, configure_process
    from bench.capture import Recorder
    from bench.operations import measure, set_up
    from bench.report import Report
    from tests.support.emulators import dynamodb_local

    report = Report(plain=args.plain)
    started = time.perf_counter()
    results: dict[str, object] = {}
    with dynamodb_local() as endpoint:
        report.text(f"DynamoDB Local at {endpoint} (started by the bench, in memory)")
        prefix = configure_process(endpoint)
        recorder = Recorder(endpoint=endpoint, region=REGION)
        recorder.install()
        api = AppClient()
        try:
            fixture = set_up(api, prefix)
            costs = measure(api, recorder, fixture)
            clients_built = list(recorder.clients_created)
            recorder.uninstall()
            sections.print_units(report, costs, clients_built)
            sections.print_findings(report, costs)
            results["units"] = costs
            if not args.skip_latency:
                timings = latency.measure(api, fixture, endpoint, iterations=args.iterations, warmup=args.warmup)
                sections.print_latency(report, timings, args.iterations, args.warmup)
                results["latency"] = timings
        finally:
            recorder.uninstall()
            api.close()
    if not args.skip_cold:
        cold = coldstart.measure(runs=args.cold_runs)
        sections.print_cold_start(report, cold)
        results["cold"] = cold
    sections.print_verdicts(report, results)
    report.text(f"total bench time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
