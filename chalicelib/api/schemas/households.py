"""Households: members pooling their points, and redemptions from the pool."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.json_schema import JsonDict, JsonValue

from chalicelib.api.schemas.common import Description, MemberId, Name, Out, PositivePoints, StrictRequest
from chalicelib.api.schemas.points import _TRANSACTION_EXAMPLE, TransactionOut

#: The roles a member may be given: the owner role is the creator's, and never given.
JoinRole = Literal["redeemer", "member"]

_HOUSEHOLD_ID = "hh_01JD0000000000000000000000"
_OWNER = "mem_01JD0000000000000000000000"
_KIN = "mem_01JD0000000000000000000001"
_REDEMPTION_ID = "hrd_01JD0000000000000000000000"


class CreateHouseholdRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"owner_member_id": _OWNER, "name": "The Smiths"}]})

    owner_member_id: MemberId = Field(description="The member who creates and owns the household.")
    name: Name | None = None


class AddHouseholdMemberRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"member_id": _KIN, "role": "redeemer"}]})

    member_id: MemberId
    role: JoinRole = Field(
        description="`redeemer`: may redeem from the pool; `member`: contributes, spends only their own points."
    )


class ChangeHouseholdRoleRequest(StrictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "member"}]})

    role: JoinRole


class PooledRedemptionRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"member_id": _OWNER, "points": 800, "description": "Family weekend"}]}
    )

    member_id: MemberId = Field(description="The redeemer: the household's owner or one of its redeemers.")
    points: PositivePoints
    description: Description | None = None


class HouseholdMemberOut(Out):
    member_id: str
    role: Literal["owner", "redeemer", "member"]
    joined_at: datetime
    available: int = Field(description="The member's own available points (spendable now).")
    pending: int = Field(description="The member's pending points (not spendable yet).")


class PoolOut(Out):
    available: int = Field(description="What the pool may spend: the members' available points summed.")
    pending: int = Field(description="The members' pending points summed (never spent from the pool).")


_MEMBERS_EXAMPLE: list[JsonValue] = [
    {"member_id": _OWNER, "role": "owner", "joined_at": "2026-03-01T09:30:00Z", "available": 1200, "pending": 0},
    {"member_id": _KIN, "role": "redeemer", "joined_at": "2026-03-02T10:00:00Z", "available": 300, "pending": 50},
]


class HouseholdOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _HOUSEHOLD_ID,
                    "name": "The Smiths",
                    "members": _MEMBERS_EXAMPLE,
                    "pool": {"available": 1500, "pending": 50},
                    "created_at": "2026-03-01T09:30:00Z",
                }
            ]
        }
    )

    id: str
    name: str | None
    members: list[HouseholdMemberOut] = Field(description="The members in joining order, the owner first.")
    pool: PoolOut
    created_at: datetime


class HouseholdRemovalOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "household_id": _HOUSEHOLD_ID,
                    "member_id": _KIN,
                    "dissolved": False,
                    "household": {
                        "id": _HOUSEHOLD_ID,
                        "name": "The Smiths",
                        "members": _MEMBERS_EXAMPLE[:1],
                        "pool": {"available": 1200, "pending": 0},
                        "created_at": "2026-03-01T09:30:00Z",
                    },
                }
            ]
        }
    )

    household_id: str
    member_id: str
    dissolved: bool = Field(description="Whether the household is gone (its owner left alone).")
    household: HouseholdOut | None = Field(description="The household after the member left (null: dissolved).")


class ContributionOut(Out):
    member_id: str
    points: int = Field(description="The points taken from this member.")
    transaction: TransactionOut = Field(description="The member's ledger entry (`type` redeem).")


_CONTRIBUTION_ENTRY: JsonDict = {
    **_TRANSACTION_EXAMPLE,
    "type": "redeem",
    "points": -800,
    "balance_after": 400,
    "amount": None,
    "currency": None,
    "reference": _REDEMPTION_ID,
    "description": "Family weekend",
    "metadata": {
        "household_id": _HOUSEHOLD_ID,
        "redemption_id": _REDEMPTION_ID,
        "redeemer_id": _OWNER,
        "contributors": _OWNER,
    },
    "idempotency_key": "weekend-2026-03",
    "expires_at": None,
}


class PooledRedemptionOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _REDEMPTION_ID,
                    "household_id": _HOUSEHOLD_ID,
                    "member_id": _OWNER,
                    "points": 800,
                    "description": "Family weekend",
                    "created_at": "2026-03-01T09:30:01Z",
                    "contributions": [{"member_id": _OWNER, "points": 800, "transaction": _CONTRIBUTION_ENTRY}],
                }
            ]
        }
    )

    id: str = Field(description="The redemption's id (the `reference` of every contributor's entry).")
    household_id: str
    member_id: str = Field(description="The redeemer.")
    points: int
    description: str | None
    created_at: datetime
    contributions: list[ContributionOut] = Field(
        description="One per member whose points were taken, the first holding the request's Idempotency-Key."
    )
