"""Command line for local work: `python -m devtools.cli --help`.

Developer tooling, not part of the Lambda bundle; its tools (typer, rich, moto) are dev dependencies.
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
from typing import TYPE_CHECKING, Annotated, TypedDict

from devtools.dependencies import exit_for_missing_dependency, missing_dependencies_reported

try:
    import typer
    from rich.console import Console
except ImportError as missing:  # run by a Python without .venv's packages: say how to run it
    if __name__ != "__main__":
        raise
    exit_for_missing_dependency(missing, "devtools.cli")

if TYPE_CHECKING:
    from devtools.bulk_client import Client

cli = typer.Typer(add_completion=False, help="Loyalty platform: local tooling.")
console = Console()
ROOT = Path(__file__).resolve().parents[1]

DEMO_TENANT = "demo"


class _DemoMember(TypedDict):
    external_id: str
    email: str
    name: str
    points: int


DEMO_MEMBERS: list[_DemoMember] = [
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
    from chalicelib.jobs.imports import SCHEDULE as IMPORTS_SCHEDULE
    from chalicelib.jobs.webhooks import SCHEDULE as WEBHOOKS_SCHEDULE

    schedules = [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
    if not schedules:
        console.print("[dim]scheduler: the app defines no scheduled jobs yet[/dim]")
        return
    fast = {WEBHOOKS_SCHEDULE, IMPORTS_SCHEDULE}  # deliveries and imports: soon after they are asked for
    every = {s.name: webhooks_every_seconds if s.name in fast else every_seconds for s in schedules}
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
        help="Seconds between local runs of the webhook dispatch (deliveries to your receivers) and of bulk imports.",
    ),
) -> None:
    """Serve the API with `chalice local` on an embedded moto server, seeded with a demo brand."""
    operator_key = os.environ.get("LOYALTY_OPERATOR_KEY") or f"op_local_{secrets.token_urlsafe(24)}"
    endpoint = os.environ.get("LOYALTY_DYNAMODB_ENDPOINT")
    moto = None
    if not endpoint:
        from devtools.devserver import SerialMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        moto = SerialMotoServer(port=int(os.environ.get("LOYALTY_MOTO_PORT", "0"))).start()
        endpoint = moto.endpoint
    elif not os.environ.get("LOYALTY_KMS_ENDPOINT"):
        # DynamoDB Local does not speak KMS (webhook secrets): an embedded moto server does.
        from devtools.devserver import SerialMotoServer

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
        [sys.executable, "-m", "devtools.devserver", "--host", host, "--port", str(port), "--stage", "local"],
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


# --- bulk import and export (over HTTP, with a tenant's admin key) ---------------------------------

import_cli = typer.Typer(help="Bulk imports, over the API with an admin key.")
export_cli = typer.Typer(help="CSV exports, over the API with an admin key.")
cli.add_typer(import_cli, name="import")
cli.add_typer(export_cli, name="export")

_API = typer.Option(
    "http://127.0.0.1:8000", "--api", envvar="LOYALTY_API_URL", help="The API's root (make run's by default)."
)
_KEY = typer.Option(..., "--key", envvar="LOYALTY_API_KEY", help="A tenant admin key (lk_...).")


def _client(api: str, key: str) -> Client:  # local tooling: the client class is imported lazily
    from devtools.bulk_client import Client, RequestsTransport

    return Client(RequestsTransport(api), key)


@import_cli.command("members")
def import_members_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")],
    api: str = _API,
    key: str = _KEY,
    poll: float = typer.Option(1.0, help="Seconds between looks at the import's progress."),
    part_bytes: int = typer.Option(4_900_000, help="Larger files are sent as several imports of this size."),
    errors_out: Annotated[
        Path | None, typer.Option("--errors-out", help="Write every row not imported to this CSV.")
    ] = None,
) -> None:
    """Import members with opening balances (and tiers) from a CSV file, with a progress bar.

    Columns: external_id (required), email, name, birthday, marketing_consent, points, tier.
    Exit code 1 if some rows failed (their reasons are listed), 2 if the API refused the file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from devtools.bulk_client import ApiError, import_members, write_errors

    client = _client(api, key)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=None)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = import_members(
                client, file.read_bytes(), poll_seconds=poll, part_bytes=part_bytes, on_progress=show
            )
        except ApiError as error:
            progress.stop()
            console.print(f"[red]refused: {error}[/red]", highlight=False)
            for problem in error.details.get("fields", []):
                console.print(f"  {problem['path']}: {problem['message']}", highlight=False, markup=False)
            raise typer.Exit(2) from None
    totals = report.totals
    table = Table(title=f"Import of {file.name}")
    for column in ("import", "status", "rows", "imported", "skipped", "failed"):
        table.add_column(column, justify="right" if column not in ("import", "status") else "left")
    for part in report.parts:
        counts = part.record["counts"]
        table.add_row(
            str(part.import_id),
            str(part.record["status"]),
            *(str(counts[k]) for k in ("total", "imported", "skipped", "failed")),
        )
    console.print(table)
    console.print(
        f"{totals['imported']} imported, {totals['skipped']} skipped (already members), {totals['failed']} failed "
        f"of {totals['total']} rows",
        highlight=False,
    )
    for issue in report.errors[:20]:
        console.print(
            f"  row {issue['row']} ({issue.get('external_id') or '-'}): {issue['outcome']} {issue['code']}: "
            f"{issue['message']}",
            highlight=False,
            markup=False,
        )
    if len(report.errors) > 20:
        console.print(f"  ... and {len(report.errors) - 20} more" + ("" if errors_out else " (--errors-out FILE)"))
    if errors_out is not None:
        write_errors(report.errors, errors_out)
        console.print(f"rows not imported written to {errors_out}")
    if "failed" in report.statuses:
        console.print("[red]an import failed (see its last_error); it is no longer resumed[/red]")
        raise typer.Exit(2)
    if totals["failed"]:
        raise typer.Exit(1)


def _export(path: str, out: Path, api: str, key: str) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from devtools.bulk_client import ApiError, export_csv

    client = _client(api, key)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"exporting to {out}", total=None)
        try:
            rows = export_csv(client, path, out, on_rows=lambda n: bar.update(task, description=f"{n} rows"))
        except ApiError as error:
            bar.stop()
            console.print(f"[red]refused: {error}[/red]", highlight=False)
            raise typer.Exit(2) from None
    console.print(f"{rows} rows written to {out}", highlight=False)


@export_cli.command("members")
def export_members_command(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    api: str = _API,
    key: str = _KEY,
    page_size: int = typer.Option(1000, help="Members per request (1-1000)."),
) -> None:
    """Every member with its balance and tier, as one CSV file."""
    _export(f"/v1/exports/members.csv?limit={page_size}", out, api, key)


@export_cli.command("ledger")
def export_ledger_command(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    start: str = typer.Option(None, "--from", help="First instant, RFC 3339 (default: the first of the month)."),
    end: str = typer.Option(None, "--to", help="End instant, exclusive (default: now)."),
    api: str = _API,
    key: str = _KEY,
    page_size: int = typer.Option(1000, help="Entries per request (1-1000)."),
) -> None:
    """Ledger entries recorded in [--from, --to), in time order, as one CSV file."""
    from urllib.parse import urlencode

    query = {"limit": str(page_size), **({"from": start} if start else {}), **({"to": end} if end else {})}
    _export(f"/v1/exports/ledger.csv?{urlencode(query)}", out, api, key)


if __name__ == "__main__":
    with missing_dependencies_reported("devtools.cli"):
        cli()
