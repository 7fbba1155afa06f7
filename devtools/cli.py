"""The ``loyalty`` command line (``python -m devtools.cli`` is the same): ``loyalty --help``.

Local work (``run-local``, ``seed-demo``, ``jobs run``) and, over the HTTP API with a key,
the commands of ``devtools.commands`` (profiles, tenants, keys, members, points, program,
webhooks) and bulk ``import``/``export``. Developer tooling, not part of the Lambda bundle;
its tools (typer, rich, PyYAML, moto) are in requirements-run.txt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from devtools.dependencies import exit_for_missing_dependency, missing_dependencies_reported

try:
    import typer
    from rich.console import Console

    from devtools.commands import jobs as jobs_commands
    from devtools.commands import register
    from devtools.commands.common import ApiOption, CliError, KeyOption, OneLineErrors, ProfileOption, target
except ImportError as missing:  # run by a Python without .venv's packages: say how to run it
    if __name__ != "__main__":
        raise
    exit_for_missing_dependency(missing, "devtools.cli")

if TYPE_CHECKING:
    from devtools.bulk_client import Client

cli = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: typer's rich panels label every flag <bool>
    pretty_exceptions_enable=False,
    help="Loyalty platform: the API from the command line (with a key or a profile), and local tooling.",
)
console = Console()
ROOT = Path(__file__).resolve().parents[1]


@cli.command("run-local")
def run_local(
    port: int = typer.Option(int(os.environ.get("PORT", "8000")), help="Port of the API."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    data_dir: str = typer.Option(
        ".local",
        "--data-dir",
        envvar="LOYALTY_LOCAL_DATA",
        help="Folder of the local data (DynamoDB Local's tables, the KMS key, the demo keys); make reset wipes it.",
    ),
    jobs_every: float = typer.Option(
        float(os.environ.get("LOYALTY_LOCAL_JOBS_EVERY", "60")),
        help="Seconds between local runs of the scheduled jobs.",
    ),
    webhooks_every: float = typer.Option(
        float(os.environ.get("LOYALTY_LOCAL_WEBHOOKS_EVERY", "5")),
        help="Seconds between local runs of the webhook dispatch (deliveries to your receivers) and of bulk imports.",
    ),
) -> None:
    """Serve the API with `chalice local` on DynamoDB Local, seeded with a demo brand (devtools.local_run)."""
    from devtools.local_run import LocalRun, serve

    def say(line: str) -> None:
        console.print(line, soft_wrap=True, highlight=False, markup=False)

    def show_banner(lines: list[str]) -> None:
        console.rule("[bold]Loyalty API (local)")
        for line in lines:
            say(line)
        console.rule()

    run = LocalRun(
        host=host,
        port=port,
        data_dir=Path(data_dir).resolve(),
        jobs_every=jobs_every,
        webhooks_every=webhooks_every,
        say=say,
    )
    raise typer.Exit(serve(run, show_banner))


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo brand on LOYALTY_DYNAMODB_ENDPOINT and print a new admin key."""
    if not os.environ.get("LOYALTY_DYNAMODB_ENDPOINT"):
        raise typer.BadParameter("set LOYALTY_DYNAMODB_ENDPOINT to the DynamoDB endpoint to seed")
    from devtools.local_run import seed_demo

    admin_key, member_ids = seed_demo()
    console.print(f"admin key: {admin_key}", soft_wrap=True, markup=False)
    console.print(f"members:   {', '.join(member_ids)}", soft_wrap=True, markup=False)


jobs_cli = typer.Typer(help="Scheduled jobs: run here on DynamoDB, or through the API.")
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("run")
def run_job(
    job: str = typer.Argument(..., help="The job, e.g. expire-points."),
    as_of: str = typer.Option(None, "--as-of", help="Run as of this moment (RFC 3339), default now."),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant (default: every active tenant)."),
    stage: Annotated[
        str | None,
        typer.Option("--stage", metavar="NAME", help="Run on the AWS tables of this deployed stage (dev, prod)."),
    ] = None,
) -> None:
    """Run a job in this process, on DynamoDB.

    On LOYALTY_DYNAMODB_ENDPOINT, or on the tables of the deployed stage named by --stage (with
    your AWS credentials); without either it refuses. Once for every active tenant (or
    --tenant); prints each run."""
    from datetime import datetime

    if not stage and not os.environ.get("LOYALTY_DYNAMODB_ENDPOINT"):
        raise CliError(
            "jobs run needs LOYALTY_DYNAMODB_ENDPOINT (a local DynamoDB) or --stage NAME (AWS); "
            "through the API: loyalty jobs trigger JOB"
        )
    if stage:
        _stage_environment(stage)

    from chalicelib.domain.errors import InvalidRequest
    from chalicelib.domain.jobs import parse_job
    from chalicelib.domain.tenants import TenantStatus
    from chalicelib.services import platform

    try:
        name = parse_job(job)
    except InvalidRequest as error:
        raise CliError(error.message) from None
    try:
        moment = datetime.fromisoformat(as_of.replace("Z", "+00:00")) if as_of else None
    except ValueError:
        raise CliError(f"--as-of {as_of!r} is not an RFC 3339 time, e.g. 2027-01-01T00:00:00Z") from None
    if moment is not None and moment.tzinfo is None:
        raise CliError("--as-of needs a time zone offset, e.g. 2027-01-01T00:00:00Z")
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


jobs_cli.command("trigger")(jobs_commands.trigger)
jobs_cli.command("runs")(jobs_commands.runs)


def _stage_environment(stage: str) -> None:
    """The table prefix and stage name of a deployed stage, from .chalice/config.json."""
    import json

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    settings = config.get("stages", {}).get(stage, {}).get("environment_variables", {})
    if stage == "local" or "LOYALTY_TABLE_PREFIX" not in settings:
        deployed = [
            name
            for name, s in config.get("stages", {}).items()
            if "LOYALTY_TABLE_PREFIX" in s.get("environment_variables", {})
        ]
        raise CliError(f"unknown stage {stage!r}: deployed stages are {', '.join(deployed)}")
    os.environ["LOYALTY_STAGE"] = settings.get("LOYALTY_STAGE", stage)
    os.environ["LOYALTY_TABLE_PREFIX"] = settings["LOYALTY_TABLE_PREFIX"]
    os.environ.pop("LOYALTY_DYNAMODB_ENDPOINT", None)


# --- bulk import and export (over HTTP, with a tenant's admin key) ---------------------------------

import_cli = typer.Typer(help="Bulk imports, over the API with an admin key.")
export_cli = typer.Typer(help="CSV exports, over the API with an admin key.")
cli.add_typer(import_cli, name="import")
cli.add_typer(export_cli, name="export")


def _client(api: str, key: str) -> Client:
    from devtools.commands import common

    return common.make_client(api, key)


def _connect(api: str | None, key: str | None, profile: str | None) -> Client:
    """The client of the URL and key of the flags, the environment or the profile."""
    found = target(api, key, profile)
    assert found.key is not None
    return _client(found.api, found.key)


@import_cli.command("members")
def import_members_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file.")],
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
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

    client = _connect(api, key, profile)
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


def _export(path: str, out: Path, client: Client) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from devtools.bulk_client import ApiError, export_csv

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
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    page_size: int = typer.Option(1000, help="Members per request (1-1000)."),
) -> None:
    """Every member with its balance and tier, as one CSV file."""
    _export(f"/v1/exports/members.csv?limit={page_size}", out, _connect(api, key, profile))


@export_cli.command("ledger")
def export_ledger_command(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    start: str = typer.Option(None, "--from", help="First instant, RFC 3339 (default: the first of the month)."),
    end: str = typer.Option(None, "--to", help="End instant, exclusive (default: now)."),
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    page_size: int = typer.Option(1000, help="Entries per request (1-1000)."),
) -> None:
    """Ledger entries recorded in [--from, --to), in time order, as one CSV file."""
    from urllib.parse import urlencode

    query = {"limit": str(page_size), **({"from": start} if start else {}), **({"to": end} if end else {})}
    _export(f"/v1/exports/ledger.csv?{urlencode(query)}", out, _connect(api, key, profile))


register(cli)


def main() -> None:
    """The ``loyalty`` console script (pyproject.toml), and ``python -m devtools.cli``."""
    with missing_dependencies_reported("devtools.cli"):
        cli()


if __name__ == "__main__":
    main()
