"""``loyalty keys``: the tenant's API keys (with an admin key)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from devtools.commands.common import ApiOption, JsonOption, KeyOption, ProfileOption, connect, console, listing, show

app = typer.Typer(help="The tenant's API keys, with an admin key.")

COLUMNS = ("id", "name", "scopes", "partner_id", "created_at", "revoked_at")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is for, e.g. web-shop.")],
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="SCOPE", help="read, write or admin (repeat for several; default: read)."),
    ] = None,
    partner: Annotated[
        str | None, typer.Option("--partner", metavar="PARTNER_ID", help="A coalition partner's key (scope partner).")
    ] = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key. Its secret is printed once: only its hash is stored."""
    body: dict[str, object] = {"name": name, "scopes": scopes or (["partner"] if partner else ["read"])}
    if partner:
        body["partner_id"] = partner
    created = connect(api, key, profile).json("POST", "/v1/api-keys", body)
    if as_json:
        show(created)
        return
    console.print(f"key {created['id']} ({', '.join(created['scopes'])}): {created['secret']}", markup=False)
    console.print("The secret is shown once: keep it now.", style="yellow")


@app.command("list")
def list_keys(
    api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """Every key of the tenant (never their secrets)."""
    listing(connect(api, key, profile).json("GET", "/v1/api-keys")["data"], COLUMNS, as_json)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_...).")],
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Revoke a key, effective immediately."""
    revoked = connect(api, key, profile).json("DELETE", f"/v1/api-keys/{quote(key_id)}")
    console.print(f"key {revoked['id']} revoked at {revoked['revoked_at']}", markup=False)
