"""``loyalty program``: the whole program as one YAML file (see ``devtools.program_plan`` and
``examples/program.yaml``): ``apply FILE [--diff]`` and ``export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from devtools.bulk_client import Client
from devtools.commands.common import ApiOption, CliError, KeyOption, ProfileOption, connect, console
from devtools.program_plan import Current, ProgramFileError, export, load, plan

app = typer.Typer(help="The whole program as one YAML file: apply, export.")


def fetch(client: Client) -> Current:
    """Every section as the API holds it."""
    return Current(
        settings=client.json("GET", "/v1/program"),
        tier_versions=client.json("GET", "/v1/program/tiers")["data"],
        rules=client.json("GET", "/v1/program/rules")["data"],
        rewards=list(client.every("/v1/rewards?limit=100")),
        plans=client.json("GET", "/v1/program/plans")["data"],
        referral_versions=client.json("GET", "/v1/program/referrals")["data"],
    )


@app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The program, in YAML ('-': standard input).")],
    diff: Annotated[bool, typer.Option("--diff", help="Show what would change; write nothing.")] = False,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Make the tenant's program what FILE says.

    Only what differs is written: applying the same file again reports no changes. With
    --diff, the changes are listed and nothing is written."""
    if str(file) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise CliError(f"cannot read {file}: {error.strerror or error}") from None
    try:
        program = load(text)
    except ProgramFileError as error:
        raise CliError(f"{file}: {error}") from None
    client = connect(api, key, profile)
    steps = plan(program, fetch(client))
    if not steps:
        console.print("no changes", markup=False)
        return
    for step in steps:
        console.print(step.describe(), markup=False)
    if diff:
        console.print(f"{len(steps)} change(s) to apply (nothing written: --diff)", markup=False)
        return
    for done, step in enumerate(steps):
        try:
            client.json(step.method, step.path, step.body)
        except Exception:
            console.print(f"applied {done} of {len(steps)} change(s); stopped at: {step.label}", markup=False)
            raise
    console.print(f"applied {len(steps)} change(s)", markup=False)


@app.command("export")
def export_program(api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None) -> None:
    """Print the tenant's program as YAML.

    Applied back, the output changes nothing."""
    import yaml

    document = export(fetch(connect(api, key, profile)))
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100))
