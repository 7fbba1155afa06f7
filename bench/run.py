"""``python -m bench.run``: request units, handler overhead and cold start, against DynamoDB Local.

Options: ``--iterations N`` (latency samples, default 200), ``--warmup N`` (default 20),
``--cold-runs N`` (fresh interpreters per side, default 15), ``--plain`` (no rich),
``--skip-latency`` / ``--skip-cold`` / ``--skip-expiry`` / ``--skip-webhooks`` / ``--skip-imports`` (for quick
runs), ``--import-rows N`` (bulk import section, default 5 000; ``python -m bench.imports`` runs
100 000), ``--expiry-only`` (just the expiry job), ``--expiry-scale F`` (fraction of the full scale of 10 000 due
lots in tenants of 10 000 and 100 000 members; the default fits ``make bench`` in ~5 minutes).
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.appenv import REGION, ROOT
from bench.expiry import DEFAULT_EXPIRY_SCALE

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
    parser.add_argument("--skip-expiry", action="store_true", help="leave out the expiry job section")
    parser.add_argument("--skip-webhooks", action="store_true", help="leave out webhook delivery throughput")
    parser.add_argument("--skip-imports", action="store_true", help="leave out bulk import throughput")
    parser.add_argument("--import-rows", type=int, default=5000, help="rows of the bulk import section")
    parser.add_argument("--expiry-only", action="store_true", help="run only the expiry job section")
    parser.add_argument(
        "--expiry-scale",
        type=float,
        default=DEFAULT_EXPIRY_SCALE,
        help=f"fraction of the full expiry scale (1 = 10 000 due lots, tenants of 10 000 and 100 000 members; "
        f"default {DEFAULT_EXPIRY_SCALE:g})",
    )
    args = parser.parse_args(argv)
    if args.skip_expiry and args.expiry_only:
        parser.error("--skip-expiry and --expiry-only exclude each other")

    from bench import coldstart, latency, sections
    from bench.appenv import AppClient, configure_process
    from bench.capture import Recorder
    from bench.operations import measure, set_up
    from bench.report import Report
    from tests.support.emulators import dynamodb_local

    report = Report(plain=args.plain)
    started = time.perf_counter()
    results: dict[str, object] = {}
    if args.expiry_only:
        run_expiry(report, args.expiry_scale, results)
        sections.print_verdicts(report, results)
        report.text(f"total bench time {time.perf_counter() - started:.1f} s")
        return 0
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
    if not args.skip_webhooks:
        from bench import webhooks

        webhooks.print_webhooks(report, webhooks.run())
    if not args.skip_imports:
        from bench import imports

        imports.print_imports(
            report,
            imports.run(rows=args.import_rows, progress=lambda text: print(f"[imports] {text}", file=sys.stderr)),
        )
    if not args.skip_expiry:
        run_expiry(report, args.expiry_scale, results)
    sections.print_verdicts(report, results)
    report.text(f"total bench time {time.perf_counter() - started:.1f} s")
    return 0


def run_expiry(report: object, scale: float, results: dict[str, object]) -> None:
    """Section 4: its own DynamoDB Local (a fresh, empty emulator), seeded, timed, verified."""
    from bench import expiry

    def progress(text: str) -> None:  # a few minutes of work: say what is happening, on stderr
        print(f"[expiry] {text}", file=sys.stderr, flush=True)

    measured = expiry.measure(expiry.Scale.of(scale), progress=progress)
    expiry.print_expiry(report, measured)  # type: ignore[arg-type]
    results["expiry"] = measured


if __name__ == "__main__":
    raise SystemExit(main())
