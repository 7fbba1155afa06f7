"""Webhook delivery throughput: ``python -m bench.webhooks [--events N] [--endpoints K]``.

On DynamoDB Local (the bench's emulator) with KMS on an embedded moto server, and a real
HTTP receiver on loopback (tests/support/receiver.py) answering 200 at once:

1. N earnings are written through the ledger (not timed);
2. dispatch: the feed -> one recorded delivery per (event, endpoint), timed;
3. drain: each endpoint's outbox sent in order (sign, POST, record), one endpoint after the
   other as the in-process schedule does; timed, and every request verified with the
   Standard Webhooks library afterwards.

What it measures is this code on one CPU against local emulators; a deployed stage drains
endpoints in parallel (one SQS message each), and DynamoDB's latency differs from the
emulator's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.appenv import ROOT, configure_process

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def measure(endpoint: str, kms_endpoint: str, *, events: int, endpoints: int) -> dict[str, Any]:
    from chalicelib.domain.ledger import MovementRequest, MovementType
    from chalicelib.domain.members import NewMember
    from chalicelib.domain.tenants import NewTenant
    from chalicelib.services import platform, reset_platform
    from tests.support.receiver import Receiver

    configure_process(endpoint)
    os.environ.update(
        LOYALTY_KMS_ENDPOINT=kms_endpoint, LOYALTY_WEBHOOKS_LOCAL_MODE="true", LOYALTY_OPERATOR_KEY="bench-op"
    )
    reset_platform()
    services = platform()
    services.provisioner.ensure_control_table()
    services.tenants.create(NewTenant(tenant_id="bench", name="Bench", currency="EUR", timezone="UTC"))
    tenant = services.for_tenant_id("bench")
    with Receiver() as receiver:
        hooks = services.for_tenant_id("bench").webhooks
        issued = [
            hooks.create(url=receiver.url(f"/hook-{n}"), events=["points.earned"], description=None)
            for n in range(endpoints)
        ]
        member = tenant.members.enrol(NewMember(external_id="bench-1"))
        seeded = time.perf_counter()
        for n in range(events):
            tenant.points.move(MovementRequest(member.member_id, MovementType.EARN, f"bench-{n}", points=1))
        seed_seconds = time.perf_counter() - seeded

        later = datetime.now(UTC) + timedelta(seconds=6)  # past the feed's settle window
        hooks = services.for_tenant_id("bench", clock=lambda: later).webhooks
        started = time.perf_counter()
        dispatched = hooks.dispatch()
        while dispatched.events and dispatched.deliveries < events * endpoints:  # one run reads 10 pages
            more = hooks.dispatch()
            if not more.events:
                break
            dispatched.deliveries += more.deliveries
        dispatch_seconds = time.perf_counter() - started

        started = time.perf_counter()
        sent = 0
        for webhook in issued:
            while True:
                counts = hooks.drain(webhook.webhook.webhook_id, batch=100)
                sent += counts.sent
                if not counts.more:
                    break
        drain_seconds = time.perf_counter() - started

        verified = sum(1 for w, hook in enumerate(issued) for r in receiver.at(f"/hook-{w}") if r.verify(hook.secret))
        in_order = all(
            [r.headers["webhook-id"] for r in receiver.at(f"/hook-{w}")]
            == sorted(r.headers["webhook-id"] for r in receiver.at(f"/hook-{w}"))
            for w in range(endpoints)
        )
        latencies = [
            d.last_attempt.latency_ms
            for hook in issued
            for d in hooks.deliveries(hook.webhook.webhook_id, limit=100, cursor=None).items
            if d.last_attempt
        ]
    return {
        "events": events,
        "endpoints": endpoints,
        "seed_seconds": seed_seconds,
        "deliveries": dispatched.deliveries,
        "dispatch_seconds": dispatch_seconds,
        "sent": sent,
        "drain_seconds": drain_seconds,
        "verified": verified,
        "in_order": in_order,
        "send_ms_p50": statistics.median(latencies) if latencies else None,
    }


def print_webhooks(report: Any, m: dict[str, Any]) -> None:
    report.heading("Webhook delivery throughput (DynamoDB Local, KMS on moto, receiver on loopback)")
    report.table(
        ["step", "items", "seconds", "per second"],
        [
            [
                "dispatch: feed -> recorded deliveries",
                m["deliveries"],
                f"{m['dispatch_seconds']:.2f}",
                f"{m['deliveries'] / m['dispatch_seconds']:.0f}",
            ],
            [
                "drain: sign + POST + record, in order",
                m["sent"],
                f"{m['drain_seconds']:.2f}",
                f"{m['sent'] / m['drain_seconds']:.0f}",
            ],
        ],
        right=(1, 2, 3),
    )
    report.text(
        f"{m['events']} events x {m['endpoints']} endpoint(s); {m['verified']} of {m['sent']} requests verified "
        f"with the Standard Webhooks library; per-endpoint order kept: {m['in_order']}; "
        f"HTTP exchange p50 {m['send_ms_p50']} ms (the last 100 deliveries of each endpoint, as logged)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args(argv)

    from bench.report import Report

    print_webhooks(Report(plain=args.plain), run(events=args.events, endpoints=args.endpoints))
    return 0


def run(*, events: int = 500, endpoints: int = 2) -> dict[str, Any]:
    """Its own emulators (a fresh DynamoDB Local, a moto server for KMS), then the measurement."""
    import logging

    from tests.support.emulators import dynamodb_local, moto_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    with dynamodb_local() as endpoint, moto_server() as kms:
        return measure(endpoint, kms, events=events, endpoints=endpoints)


if __name__ == "__main__":
    raise SystemExit(main())
