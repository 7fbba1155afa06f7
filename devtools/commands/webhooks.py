"""``loyalty webhooks``: the tenant's endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from devtools.commands.common import (
    ApiOption,
    JsonOption,
    KeyOption,
    ProfileOption,
    connect,
    console,
    listing,
    show,
)

app = typer.Typer(help="Webhook endpoints and their deliveries.")

WebhookId = Annotated[str, typer.Argument(metavar="WEBHOOK_ID", help="The endpoint's id (whk_...).")]
COLUMNS = ("id", "url", "events", "status", "failing_since")
DELIVERIES = ("id", "event_type", "status", "attempts", "response_code", "latency_ms", "created_at")


@app.command("create")
def create(
    url: Annotated[str, typer.Argument(metavar="URL", help="The endpoint (https; plain http to loopback locally).")],
    events: Annotated[
        list[str] | None,
        typer.Option("--event", metavar="TYPE", help="An event type, e.g. points.earned (repeat; default: every one)."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", metavar="TEXT")] = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe an endpoint to events; its signing secret is shown once."""
    body: dict[str, object] = {"url": url, "events": events or ["*"]}
    if description:
        body["description"] = description
    created = connect(api, key, profile).json("POST", "/v1/webhooks", body)
    if as_json:
        show(created)
        return
    console.print(f"webhook {created['id']} ({', '.join(created['events'])}): {created['url']}", markup=False)
    console.print(f"signing secret: {created['secret']}", markup=False)
    console.print("The secret is shown once: keep it now.", style="yellow")


@app.command("list")
def list_webhooks(
    api: ApiOption = None, key: KeyOption = None, profile: ProfileOption = None, as_json: JsonOption = False
) -> None:
    """The webhook endpoints."""
    listing(list(connect(api, key, profile).every("/v1/webhooks")), COLUMNS, as_json)


@app.command("deliveries")
def deliveries(
    webhook_id: WebhookId,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="The newest N deliveries (0: all).")] = 20,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """An endpoint's deliveries, newest first."""
    found = connect(api, key, profile).first(f"/v1/webhooks/{quote(webhook_id)}/deliveries", limit)
    listing(found, DELIVERIES, as_json)


@app.command("redeliver")
def redeliver(
    webhook_id: WebhookId,
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY_ID", help="The delivery's id (dlv_...).")],
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
) -> None:
    """Send a delivery again (same webhook-id and body), now."""
    path = f"/v1/webhooks/{quote(webhook_id)}/deliveries/{quote(delivery_id)}/redeliver"
    delivery = connect(api, key, profile).json("POST", path)
    console.print(f"delivery {delivery['id']}: {delivery['status']} (attempts {delivery['attempts']})", markup=False)
