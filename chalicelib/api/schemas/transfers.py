"""Transfers of points between members, and their reversal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import JsonDict

from chalicelib.api.schemas.common import (
    Description,
    ExternalId,
    Out,
    PositivePoints,
    StrictRequest,
    _check_exactly_one_of,
    _exactly_one_of,
)
from chalicelib.api.schemas.points import _BALANCE_EXAMPLE, _TRANSACTION_EXAMPLE, BalanceOut, TransactionOut

_RECIPIENT_IDENTIFIERS = ("member_id", "external_id")


class TransferRecipient(StrictRequest):
    """The member who receives the points: exactly one of `member_id` or `external_id`."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of(*_RECIPIENT_IDENTIFIERS))

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external_id: ExternalId | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> TransferRecipient:
        _check_exactly_one_of(self, *_RECIPIENT_IDENTIFIERS)
        return self


class TransferRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to": {"member_id": "mem_01JD0000000000000000000001"}, "points": 500, "description": "For Mum"}
            ]
        }
    )

    to: TransferRecipient
    points: PositivePoints
    description: Description | None = None


class TransferReversalRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Sent to the wrong member"}]})

    reason: Description | None = Field(default=None, description="Why the transfer is reversed (kept on both entries).")


_TRANSFER_ID = "trf_01JD0000000000000000000000"
_SENT: JsonDict = {
    **_TRANSACTION_EXAMPLE,
    "type": "transfer",
    "points": -500,
    "balance_after": 750,
    "amount": None,
    "currency": None,
    "reference": _TRANSFER_ID,
    "description": "For Mum",
    "metadata": {"transfer_id": _TRANSFER_ID, "to_member_id": "mem_01JD0000000000000000000001"},
    "idempotency_key": "gift-2026-03-01",
    "expires_at": None,
}


class TransferOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _TRANSFER_ID,
                    "from_member_id": "mem_01JD0000000000000000000000",
                    "to_member_id": "mem_01JD0000000000000000000001",
                    "points": 500,
                    "description": "For Mum",
                    "created_at": "2026-03-01T09:30:01Z",
                    "transaction": _SENT,
                    "balance": {**_BALANCE_EXAMPLE, "available": 750, "lifetime_transferred": -500},
                }
            ]
        }
    )

    id: str = Field(description="The transfer's id (the `reference` of its entries on both sides).")
    from_member_id: str
    to_member_id: str
    points: int
    description: str | None
    created_at: datetime
    transaction: TransactionOut = Field(description="The sender's ledger entry (`type` transfer, negative points).")
    balance: BalanceOut = Field(description="The sender's balance after the transfer.")


class TransferReversalOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transfer_id": _TRANSFER_ID,
                    "points": 500,
                    "reversed_at": "2026-03-02T10:00:00Z",
                    "transaction": {
                        **_SENT,
                        "id": "txn_01JD0000000000000000000009",
                        "points": 500,
                        "sequence": 14,
                        "balance_after": 1250,
                        "description": f"reversal of transfer {_TRANSFER_ID}",
                        "reason": "Sent to the wrong member",
                        "metadata": {
                            "transfer_id": _TRANSFER_ID,
                            "from_member_id": "mem_01JD0000000000000000000001",
                            "reversal": "true",
                        },
                        "idempotency_key": f"transfer:{_TRANSFER_ID}:returned",
                        "expires_at": "2027-03-01T09:30:00Z",
                        "created_at": "2026-03-02T10:00:00Z",
                        "occurred_at": "2026-03-02T10:00:00Z",
                    },
                    "balance": {**_BALANCE_EXAMPLE, "lifetime_transferred": 0},
                }
            ]
        }
    )

    transfer_id: str
    points: int = Field(description="The points that came back to the sender.")
    reversed_at: datetime
    transaction: TransactionOut = Field(description="The sender's ledger entry: the points coming back.")
    balance: BalanceOut = Field(description="The sender's balance after the reversal.")
