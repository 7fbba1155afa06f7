"""``loyalty points``: earn, redeem, balance and history of a member.

Earns and redeems send an Idempotency-Key: ``--idempotency-key``, or one generated for the
invocation and printed, so that a retry with the same key is applied once."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

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

app = typer.Typer(help="Points of a member: earn, redeem, balance, history.")

MemberId = Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's id (mem_...).")]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Send this key (a retry with it is applied once); default: a new one, printed.",
    ),
]
Reference = Annotated[str | None, typer.Option("--reference", metavar="REF", help="Your reference, e.g. an order id.")]
Description = Annotated[str | None, typer.Option("--description", metavar="TEXT")]
HISTORY = ("id", "type", "points", "balance_after", "reference", "description", "occurred_at")


def _move(
    kind: str,
    member_id: str,
    body: dict[str, Any],
    idempotency_key: str | None,
    connection: tuple[str | None, str | None, str | None],
    as_json: bool,
) -> None:
    sent = idempotency_key or f"cli-{uuid.uuid4().hex}"
    answer = connect(*connection).json(
        "POST",
        f"/v1/members/{quote(member_id)}/{kind}",
        {k: v for k, v in body.items() if v is not None},
        idempotency_key=sent,
    )
    if as_json:
        show(answer)
        return
    transaction, balance = answer["transaction"], answer["balance"]
    console.print(
        f"{transaction['type']} {transaction['points']:+d} points ({transaction['id']}); "
        f"available {balance['available']}, pending {balance['pending']}",
        markup=False,
    )
    console.print(f"Idempotency-Key: {sent}", style="dim", markup=False)


@app.command("earn")
def earn(
    member_id: MemberId,
    points: Annotated[int | None, typer.Option("--points", metavar="N", help="Points to credit.")] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", metavar="AMOUNT", help="An amount spent, converted by the program.")
    ] = None,
    reference: Reference = None,
    description: Description = None,
    idempotency_key: IdempotencyKey = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Credit points, or an amount at the program's rate."""
    if (points is None) == (amount is None):
        raise CliError("give one of --points or --amount")
    body = {"points": points, "amount": amount, "reference": reference, "description": description}
    _move("earn", member_id, body, idempotency_key, (api, key, profile), as_json)


@app.command("redeem")
def redeem(
    member_id: MemberId,
    points: Annotated[int, typer.Option("--points", metavar="N", help="Points to debit.")],
    reference: Reference = None,
    description: Description = None,
    idempotency_key: IdempotencyKey = None,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Debit points (refused if the member has fewer)."""
    body = {"points": points, "reference": reference, "description": description}
    _move("redeem", member_id, body, idempotency_key, (api, key, profile), as_json)


@app.command("balance")
def balance(
    member_id: MemberId,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The member's balance, and tier."""
    answer = connect(api, key, profile).json("GET", f"/v1/members/{quote(member_id)}/balance")
    if as_json:
        show(answer)
        return
    console.print(
        f"{answer['member_id']}: available {answer['available']}, pending {answer['pending']}, "
        f"tier {answer.get('tier') or '-'}",
        markup=False,
    )
    if soon := answer.get("expiring_soon"):
        console.print(f"{soon['points']} points expire at {soon['at']}", markup=False)


@app.command("history")
def history(
    member_id: MemberId,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="The newest N entries (0: all).")] = 20,
    api: ApiOption = None,
    key: KeyOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """The member's ledger, newest first."""
    entries = connect(api, key, profile).first(f"/v1/members/{quote(member_id)}/transactions", limit)
    listing(entries, HISTORY, as_json)
