"""The tenant's event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.api.schemas.common import Cursor, Limit, Out, Query
from chalicelib.domain.events import EventType


class EventQuery(Query):
    after: Cursor | None = Field(default=None, description="The next_cursor of the previous read.")
    type: EventType | None = Field(default=None, description="Only events of this type.")
    limit: Limit = 100


class EventOut(Out):
    id: str = Field(examples=["evt_01JD0000000000000000000000"])
    type: EventType
    member_id: str
    created_at: datetime
    data: dict[str, Any] = Field(
        description=(
            "points.* (but expiring_soon): the ledger transaction; member.created: the member's id, external id "
            "and creation time; points.expiring_soon: points, expires_at, expiry_date (local); member.birthday: "
            "birthday, bonus_points, bonus_transaction_id. The last two only for members with marketing consent. "
            "member.erased: member_id, erased_at, points_forfeited, pending_forfeited, transaction_id (no "
            "personal data; an erased member's earlier events are read without it)."
            "member.welcome: signup_bonus_points, signup_bonus_transaction_id, available_points, "
            "points_per_currency_unit, first_reward_id, first_reward_name, first_reward_points_cost, "
            "points_to_first_reward (null when no reward is within reach)."
        )
    )


class EventList(Out):
    data: list[EventOut]
    next_cursor: str = Field(description="Poll again with after=next_cursor; events appear about 5 s after commit.")
