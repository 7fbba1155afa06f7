"""Privacy: a member's data export and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from chalicelib.api.schemas.challenges import MemberBadgeOut, MemberChallengeOut
from chalicelib.api.schemas.common import Out
from chalicelib.api.schemas.consents import ConsentChangeOut
from chalicelib.api.schemas.events import EventOut
from chalicelib.api.schemas.members import MemberOut
from chalicelib.api.schemas.plans import SubscriptionOut
from chalicelib.api.schemas.points import BalanceOut, TransactionOut
from chalicelib.api.schemas.referrals import ReferralOut
from chalicelib.api.schemas.rewards import CouponOut


class ConsentOut(Out):
    marketing: bool = Field(description="Whether the member agreed to marketing messages (birthday, expiring points).")
    updated_at: datetime = Field(description="The last change of the member's profile.")
    history: list[ConsentChangeOut] = Field(
        description=(
            "Every change of the member's consents, oldest first, with its time, source and value "
            "(as `GET /v1/members/{member_id}/consents` lists them)."
        )
    )


class LotOut(Out):
    id: str = Field(
        description="The transaction that credited the points.", examples=["txn_01JD0000000000000000000000"]
    )
    remaining: int
    original: int
    earned_at: datetime
    expires_at: datetime | None
    matures_at: datetime | None = Field(description="Pending points: when they become available.")


class MemberExportOut(Out):
    """Everything held about one member, as one JSON document (GDPR access and portability)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "exported_at": "2026-03-01T12:00:00Z",
                    "member": {
                        "id": "mem_01JD0000000000000000000000",
                        "external_id": "cust-1042",
                        "email": "ada@example.com",
                        "name": "Ada Lovelace",
                        "birthday": "1990-12-10",
                        "marketing_consent": True,
                        "created_at": "2026-01-15T10:00:00Z",
                        "updated_at": "2026-01-15T10:00:00Z",
                        "referral_code": "7KQ4MZ2P",
                        "card_code": None,
                        "referred_by": None,
                        "segments": [],
                    },
                    "consents": {
                        "marketing": True,
                        "updated_at": "2026-01-15T10:00:00Z",
                        "history": [
                            {
                                "id": "cns_01JD0000000000000000000000",
                                "consent": "marketing",
                                "value": True,
                                "previous": None,
                                "at": "2026-01-15T10:00:00Z",
                                "source": {"key_id": "key_01JD0000000000000000000000", "channel": "api"},
                            }
                        ],
                    },
                    "balance": {
                        "member_id": "mem_01JD0000000000000000000000",
                        "available": 120,
                        "pending": 0,
                        "expiring_soon": None,
                        "lifetime_earned": 120,
                        "lifetime_redeemed": 0,
                        "lifetime_adjusted": 0,
                        "lifetime_expired": 0,
                        "lifetime_reversed": 0,
                        "lifetime_transferred": 0,
                        "updated_at": "2026-01-20T10:00:00Z",
                        "tier": None,
                        "tier_status": None,
                        "plan": None,
                    },
                    "lots": [],
                    "transactions": [],
                    "tier_history": [],
                    "coupons": [],
                    "referred_by": None,
                    "referrals": [],
                    "subscriptions": [],
                    "partner_activity": [],
                    "events": [],
                    "challenges": [],
                    "badges": [],
                    "household": None,
                }
            ]
        }
    )

    exported_at: datetime
    member: MemberOut = Field(description="The profile.")
    consents: ConsentOut
    balance: BalanceOut
    lots: list[LotOut] = Field(description="Points not yet spent, by the transaction that credited them.")
    transactions: list[TransactionOut] = Field(description="The whole ledger, oldest first.")
    tier_history: list[EventOut] = Field(description="The member's `tier.changed` events, oldest first.")
    coupons: list[CouponOut]
    referred_by: ReferralOut | None = Field(description="The member's own referral, if they enrolled with a code.")
    referrals: list[ReferralOut] = Field(description="The members this member referred.")
    subscriptions: list[SubscriptionOut]
    partner_activity: list[TransactionOut] = Field(description="Movements made by coalition partners.")
    events: list[EventOut] = Field(description="The member's events of the feed, oldest first.")
    challenges: list[MemberChallengeOut] = Field(
        description="The challenges open to the member and those they made progress in, each with their progress."
    )
    badges: list[MemberBadgeOut] = Field(description="The badges the member holds, oldest first.")
    household: MemberHouseholdOut | None = Field(
        default=None, description="The household the member is in and their role in it; null when in none."
    )


class MemberHouseholdOut(Out):
    household_id: str
    role: Literal["owner", "redeemer", "member"]
    joined_at: datetime


class ErasureOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "mem_01JD0000000000000000000000",
                    "erased_at": "2026-03-01T12:00:00Z",
                    "points_forfeited": 1250,
                    "pending_forfeited": 120,
                    "transaction_id": "txn_01JD0000000000000000000001",
                }
            ]
        }
    )

    member_id: str
    erased_at: datetime
    points_forfeited: int = Field(description="Available points the erasure's ledger entry settled.")
    pending_forfeited: int = Field(description="Pending points the erasure's ledger entry settled.")
    transaction_id: str | None = Field(description="The erasure's ledger entry (an `adjust`, reason `member_erased`).")
