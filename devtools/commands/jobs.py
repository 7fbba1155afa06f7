"""``loyalty jobs trigger`` and ``jobs runs``: a tenant's scheduled jobs through the API (with
an admin key). ``jobs run`` (devtools/cli.py) runs them in this process on a DynamoDB instead."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from devtools.commands.common import ApiOption, JsonOption, KeyOption, ProfileOption, connect, console, listing, show

RUNS = ("job", "status", "as_of", "counts", "error")


def trigger(
    job: Annotated[str, typer.Argument(metavar="JOB", help="expire-points, mature-pending, notify, review-tiers...")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="TIME", help="Run as of this moment (RFC 3339), default now.")
    ] = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a job now for the key's tenant, through the API."""
    run = connect(api, key, profile).json("POST", f"/v1/jobs/{quote(job)}/run", {"as_of": as_of} if as_of else {})
    if as_json:
        show(run)
        return
    console.print(f"{run['job']} {run['status']} as of {run['as_of']}: {run['counts']}", markup=False)


def runs(
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="The newest N runs (0: all).")] = 20,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The tenant's recorded job runs, newest first."""
    listing(connect(api, key, profile).first("/v1/jobs/runs", limit), RUNS, as_json)
