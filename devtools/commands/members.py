"""``loyalty members``: enrol, show, find, list and export a tenant's members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import typer

from devtools.commands.common import (
    ApiOption,
    CliError,
    JsonOption,
    KeyOption,
    ProfileOption,
    connect,
    console,
    listing,
    show,
)

app = typer.Typer(help="Members: create, show, find by external id, list, export one's data.")

MemberId = Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's id (mem_...).")]
COLUMNS = ("id", "external_id", "name", "email", "referral_code", "created_at")


@app.command("create")
def create(
    external_id: Annotated[
        str | None, typer.Option("--external-id", metavar="ID", help="Your own customer id (unique).")
    ] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="EMAIL")] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME")] = None,
    birthday: Annotated[str | None, typer.Option("--birthday", metavar="YYYY-MM-DD")] = None,
    marketing_consent: Annotated[bool, typer.Option("--marketing-consent", help="The member agreed to news.")] = False,
    referral_code: Annotated[
        str | None, typer.Option("--referral-code", metavar="CODE", help="The code of the member who referred them.")
    ] = None,
    segments: Annotated[
        list[str] | None, typer.Option("--segment", metavar="SEGMENT", help="A segment (repeat for several).")
    ] = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enrol a member."""
    fields: dict[str, Any] = {
        "external_id": external_id,
        "email": email,
        "name": name,
        "birthday": birthday,
        "referral_code": referral_code,
        "segments": segments or None,
        "marketing_consent": marketing_consent or None,
    }
    member = connect(api, key, profile).json("POST", "/v1/members", {k: v for k, v in fields.items() if v is not None})
    if as_json:
        show(member)
        return
    console.print(f"member {member['id']} created", markup=False)
    show(member)


@app.command("show")
def show_member(
    member_id: MemberId, api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None
) -> None:
    """One member's profile."""
    show(connect(api, key, profile).json("GET", f"/v1/members/{quote(member_id)}"))


@app.command("find")
def find(
    external_id: Annotated[str, typer.Argument(metavar="EXTERNAL_ID", help="Your own customer id.")],
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """The member with this external id (exit code 1 if none)."""
    found = connect(api, key, profile).json("GET", "/v1/members?" + urlencode({"external_id": external_id}))["data"]
    if not found:
        raise CliError(f"no member has the external id {external_id!r}")
    show(found[0])


@app.command("list")
def list_members(
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="At most this many (0: every member).")] = 50,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Members (the first --limit of them)."""
    listing(connect(api, key, profile).first("/v1/members", limit), COLUMNS, as_json)


@app.command("export")
def export(
    member_id: MemberId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the document to FILE (default: print it)."),
    ] = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Everything held about a member, as one JSON document (an admin key; for a member's request
    to see or take their data)."""
    document = connect(api, key, profile).json("GET", f"/v1/members/{quote(member_id)}/export")
    if output is None:
        show(document)
        return
    output.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"member {member_id} exported to {output}", markup=False)
