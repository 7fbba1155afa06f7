"""Transfers -> response schemas, rebuilt identically from the stored entry on replay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.presenters.points import balance, transaction

if TYPE_CHECKING:
    from chalicelib.api.schemas.transfers import TransferOut, TransferReversalOut
    from chalicelib.domain.transfers import TransferResult


def transfer(result: TransferResult) -> TransferOut:
    from chalicelib.api.schemas.transfers import TransferOut

    entry = result.entry
    return TransferOut(
        id=result.transfer_id,
        from_member_id=entry.member_id,
        to_member_id=entry.metadata.get("to_member_id", ""),
        points=-entry.points,
        description=entry.description,
        created_at=entry.created_at,
        transaction=transaction(entry),
        balance=balance(entry.view_after),
    )


def reversal(result: TransferResult) -> TransferReversalOut:
    from chalicelib.api.schemas.transfers import TransferReversalOut

    entry = result.entry
    return TransferReversalOut(
        transfer_id=result.transfer_id,
        points=entry.points,
        reversed_at=entry.created_at,
        transaction=transaction(entry),
        balance=balance(entry.view_after),
    )
