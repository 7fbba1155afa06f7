"""``loyalty tenants``: the platform operator's commands (with the operator key)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from devtools.commands.common import ApiOption, JsonOption, KeyOption, ProfileOption, connect, console, listing, show

app = typer.Typer(help="Tenants (brands), with the operator key.")

TenantId = Annotated[str, typer.Argument(metavar="TENANT_ID", help="The tenant's id, e.g. acme.")]
COLUMNS = ("tenant_id", "name", "currency", "timezone", "status", "created_at")


@app.command("create")
def create(
    tenant_id: TenantId,
    name: Annotated[str, typer.Option("--name", help="The brand's name.")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code, e.g. EUR.")],
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Helsinki.")],
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="A sandbox brand, with a test clock its admin key moves forward.")
    ] = False,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant and its first admin key (its secret is shown once)."""
    body = {"tenant_id": tenant_id, "name": name, "currency": currency, "timezone": timezone, "sandbox": sandbox}
    created = connect(api, key, profile).json("POST", "/v1/tenants", body)
    if as_json:
        show(created)
        return
    tenant, admin = created["tenant"], created["api_key"]
    console.print(f"tenant {tenant['tenant_id']} created ({tenant['status']})", markup=False)
    console.print(f"admin key {admin['id']}: {admin['secret']}", markup=False)
    console.print("The secret is shown once: keep it now (loyalty profile set NAME --key ...).", style="yellow")


@app.command("list")
def list_tenants(
    api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """Every tenant."""
    listing(list(connect(api, key, profile).every("/v1/tenants?limit=100")), COLUMNS, as_json)


@app.command("show")
def show_tenant(
    tenant_id: TenantId, api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None
) -> None:
    """One tenant."""
    show(connect(api, key, profile).json("GET", f"/v1/tenants/{quote(tenant_id)}"))


@app.command("suspend")
def suspend(tenant_id: TenantId, api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None) -> None:
    """Suspend a tenant: its keys get 403 until it is resumed."""
    tenant = connect(api, key, profile).json("POST", f"/v1/tenants/{quote(tenant_id)}/suspend")
    console.print(f"tenant {tenant['tenant_id']}: {tenant['status']}", markup=False)


@app.command("resume")
def resume(tenant_id: TenantId, api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None) -> None:
    """Resume a suspended tenant."""
    tenant = connect(api, key, profile).json("POST", f"/v1/tenants/{quote(tenant_id)}/resume")
    console.print(f"tenant {tenant['tenant_id']}: {tenant['status']}", markup=False)
