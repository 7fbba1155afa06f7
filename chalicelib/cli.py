"""Command line for local work: `python -m chalicelib.cli --help`.

Never imported by the Lambda entry point; its tools (typer, rich, moto) are dev dependencies.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console

cli = typer.Typer(add_completion=False, help="Loyalty platform: local tooling.")
console = Console()
ROOT = Path(__file__).resolve().parents[1]

DEMO_TENANT = "demo"
DEMO_MEMBERS = [
    {"external_id": "cust-1001", "email": "ada@example.com", "name": "Ada Lovelace", "points": 1200},
    {"external_id": "cust-1002", "email": "alan@example.com", "name": "Alan Turing", "points": 350},
    {"external_id": "cust-1003", "email": "grace@example.com", "name": "Grace Hopper", "points": 0},
]


def _local_environment(endpoint: str, operator_key: str) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.setdefault("LOYALTY_TABLE_PREFIX", "loyalty-local")
    os.environ["LOYALTY_STAGE"] = "local"
    os.environ["LOYALTY_DYNAMODB_ENDPOINT"] = endpoint
    os.environ["LOYALTY_OPERATOR_KEY"] = operator_key
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def seed_demo() -> tuple[str, list[str]]:
    """Create the control table and the demo brand with a few members.

    Returns a fresh admin key and the demo members' ids.
    """
    from chalicelib.domain.api_keys import Scope
    from chalicelib.domain.errors import MemberExists
    from chalicelib.domain.ledger import MovementRequest, MovementType
    from chalicelib.domain.members import NewMember
    from chalicelib.domain.tenants import NewTenant, TenantContext
    from chalicelib.services import platform, reset_platform

    reset_platform()
    services = platform()
    services.provisioner.ensure_control_table()
    existing = services.tenant_store.get(DEMO_TENANT)
    if existing is None:
        created = services.tenants.create(
            NewTenant(tenant_id=DEMO_TENANT, name="Demo Coffee", currency="EUR", timezone="Europe/Helsinki")
        )
        tenant, admin_secret = created.tenant, created.admin_key.secret
    else:  # a persistent endpoint already holds the demo brand: issue another admin key
        tenant = existing
        context = TenantContext(tenant=tenant, key_id="cli", key_name="cli", scopes=frozenset({Scope.ADMIN}))
        admin_secret = services.api_keys.create(context, name="make-run", scopes=frozenset({Scope.ADMIN})).secret
    demo = services.for_tenant_id(DEMO_TENANT)
    member_ids = []
    for spec in DEMO_MEMBERS:
        try:
            member = demo.members.enrol(
                NewMember(external_id=spec["external_id"], email=spec["email"], name=spec["name"])
            )
        except MemberExists:
            found = demo.members.find_by_external_id(str(spec["external_id"]))
            member_ids += [found.member_id] if found else []
            continue
        member_ids.append(member.member_id)
        if spec["points"]:
            demo.points.move(
                MovementRequest(
                    member_id=member.member_id,
                    movement=MovementType.EARN,
                    idempotency_key=f"seed-{spec['external_id']}",
                    points=int(spec["points"]),
                    description="opening balance",
                    currency=tenant.currency,
                )
            )
    return admin_secret, member_ids


def _run_schedules(every_seconds: float, webhooks_every_seconds: float, stop: threading.Event) -> None:
    """Invoke the app's @app.schedule handlers in-process, as EventBridge would when deployed.

    The webhook dispatch runs every ``webhooks_every_seconds`` (a local receiver sees events a
    few seconds after they happen), the other jobs every ``every_seconds``; one thread, one
    client, so the handlers never run concurrently.
    """
    import time

    from chalice.app import ScheduledEventConfig
    from chalice.test import Client

    from app import app
    from chalicelib.jobs.webhooks import SCHEDULE as WEBHOOKS_SCHEDULE

    schedules = [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
    if not schedules:
        console.print("[dim]scheduler: the app defines no scheduled jobs yet[/dim]")
        return
    every = {s.name: webhooks_every_seconds if s.name == WEBHOOKS_SCHEDULE else every_seconds for s in schedules}
    listed = ", ".join(f"{name} every {seconds:g}s" for name, seconds in every.items())
    console.print(f"scheduler: {listed}", soft_wrap=True, highlight=False, markup=False)
    due = {name: time.monotonic() + seconds for name, seconds in every.items()}
    with Client(app) as client:
        while not stop.wait(max(0.0, min(due.values()) - time.monotonic())):
            for schedule in schedules:
                if due[schedule.name] > time.monotonic():
                    continue
                due[schedule.name] = time.monotonic() + every[schedule.name]
                event = client.events.generate_cw_event(
                    source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
                )
                try:
                    client.lambda_.invoke(schedule.name, event)
                except Exception as error:  # keep the local loop alive; the handler logs details
                    console.print(f"[red]scheduler: {schedule.name} failed: {error}[/red]")


@cli.command("run-local")
def run_local(
    port: int = typer.Option(int(os.environ.get("PORT", "8000")), help="Port of the API."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    jobs_every: float = typer.Option(
        float(os.environ.get("LOYALTY_LOCAL_JOBS_EVERY", "60")),
        help="Seconds between local runs of the scheduled jobs.",
    ),
    webhooks_every: float = typer.Option(
        float(os.environ.get("LOYALTY_LOCAL_WEBHOOKS_EVERY", "5")),
        help="Seconds between local runs of the webhook dispatch (deliveries to your receivers).",
    ),
) -> None:
    """Serve the API with `chalice local` on an embedded moto server, seeded with a demo brand."""
    operator_key = os.environ.get("LOYALTY_OPERATOR_KEY") or f"op_local_{secrets.token_urlsafe(24)}"
    endpoint = os.environ.get("LOYALTY_DYNAMODB_ENDPOINT")
    moto = None
    if not endpoint:
        from chalicelib.devserver import SerialMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        moto = SerialMotoServer(port=int(os.environ.get("LOYALTY_MOTO_PORT", "0"))).start()
        endpoint = moto.endpoint
    elif not os.environ.get("LOYALTY_KMS_ENDPOINT"):
        # DynamoDB Local does not speak KMS (webhook secrets): an embedded moto server does.
        from chalicelib.devserver import SerialMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto = SerialMotoServer().start()
        os.environ["LOYALTY_KMS_ENDPOINT"] = moto.endpoint
    _local_environment(endpoint, operator_key)
    admin_key, member_ids = seed_demo()
    base = f"http://{host}:{port}/v1"
    auth = f"-H 'Authorization: Bearer {admin_key}'"
    lines = [
        f"API          {base}   (OpenAPI: {base}/openapi.json)",
        f"DynamoDB     {endpoint}" + ("  (embedded moto server)" if moto and moto.endpoint == endpoint else ""),
        f"Operator key {operator_key}",
        f"Demo admin   {admin_key}   (tenant '{DEMO_TENANT}', members: {', '.join(member_ids)})",
        "Try:",
        f"  curl -s {base}/members/{member_ids[0]}/balance {auth}",
        f"  curl -s -X POST {base}/members/{member_ids[0]}/earn {auth} -H 'Idempotency-Key: order-1' "
        "-H 'Content-Type: application/json' -d '{\"amount\": \"12.50\"}'",
        f"Webhooks     dispatched every {webhooks_every:g}s; plain http to loopback is allowed locally:",
        f"  curl -s -X POST {base}/webhooks {auth} -H 'Content-Type: application/json' "
        '-d \'{"url": "http://127.0.0.1:9000/hook", "events": ["*"]}\'',
    ]
    console.rule("[bold]Loyalty API (local)")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    console.rule()

    stop = threading.Event()
    threading.Thread(target=_run_schedules, args=(jobs_every, webhooks_every, stop), daemon=True).start()
    server = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.devserver", "--host", host, "--port", str(port), "--stage", "local"],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        sys.exit(server.wait())
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    finally:
        stop.set()
        if moto is not None:
            moto.stop()


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo brand on LOYALTY_DYNAMODB_ENDPOINT and print a new admin key."""
    if not os.environ.get("LOYALTY_DYNAMODB_ENDPOINT"):
        raise typer.BadParameter("set LOYALTY_DYNAMODB_ENDPOINT to the DynamoDB endpoint to seed")
    admin_key, member_ids = seed_demo()
    console.print(f"admin key: {admin_key}", soft_wrap=True, markup=False)
    console.print(f"members:   {', '.join(member_ids)}", soft_wrap=True, markup=False)


jobs_cli = typer.Typer(help="Scheduled jobs.")
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("run")
def run_job(
    job: str = typer.Argument(..., help="The job, e.g. expire-points."),
    as_of: str = typer.Option(None, "--as-of", help="Run as of this moment (RFC 3339), default now."),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant (default: every active tenant)."),
) -> None:
    """Run one job once, against LOYALTY_DYNAMODB_ENDPOINT (or AWS), and print each run."""
    from datetime import datetime

    from chalicelib.domain.jobs import parse_job
    from chalicelib.domain.tenants import TenantStatus
    from chalicelib.services import platform

    name = parse_job(job)
    moment = datetime.fromisoformat(as_of) if as_of else None
    if moment is not None and moment.tzinfo is None:
        raise typer.BadParameter("--as-of needs a time zone offset, e.g. 2027-01-01T00:00:00Z")
    services = platform()
    tenant_ids = [tenant] if tenant else []
    cursor = None
    while not tenant:
        page = services.tenants.list(limit=100, cursor=cursor)
        tenant_ids += [t.tenant_id for t in page.items if t.status == TenantStatus.ACTIVE]
        cursor = page.next_cursor
        if not cursor:
            break
    for tenant_id in tenant_ids:
        run = services.for_registered_tenant(tenant_id).jobs.run(name, moment)
        console.print(f"{tenant_id:<32} {run.status:<10} {run.counts}", markup=False)


if __name__ == "__main__":
    cli()
