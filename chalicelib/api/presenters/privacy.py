"""A member's data export and erasure -> response schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.presenters.challenges import member_badge, member_challenge
from chalicelib.api.presenters.consents import consent_change
from chalicelib.api.presenters.events import event
from chalicelib.api.presenters.members import member
from chalicelib.api.presenters.plans import subscription
from chalicelib.api.presenters.points import balance, transaction
from chalicelib.api.presenters.referrals import referral
from chalicelib.api.presenters.rewards import coupon
from chalicelib.domain.entries import BalanceView
from chalicelib.domain.events import Event

if TYPE_CHECKING:
    from chalicelib.api.schemas.privacy import ErasureOut, MemberExportOut, MemberHouseholdOut
    from chalicelib.domain.households import Membership
    from chalicelib.domain.privacy import Erasure, MemberDataset


def member_export(value: MemberDataset) -> MemberExportOut:
    from chalicelib.api.schemas.privacy import ConsentOut, LotOut, MemberExportOut

    now = value.exported_at
    return MemberExportOut(
        exported_at=now,
        member=member(value.member),
        consents=ConsentOut(
            marketing=value.member.marketing_consent,
            updated_at=value.member.updated_at,
            history=[consent_change(change) for change in value.consent_changes],
        ),
        balance=balance(BalanceView.at(value.balance, value.lots, now)),
        lots=[
            LotOut(
                id=lot.lot_id,
                remaining=lot.remaining,
                original=lot.original,
                earned_at=lot.earned_at,
                expires_at=lot.expires_at,
                matures_at=lot.matures_at,
            )
            for lot in sorted(value.lots, key=lambda lot: lot.lot_id)
        ],
        transactions=[transaction(entry) for entry in value.entries],
        tier_history=[event(Event.of_notice(notice)) for notice in value.tier_changes],
        coupons=[coupon(found, now) for found in value.coupons],
        referred_by=referral(value.referred_by) if value.referred_by is not None else None,
        referrals=[referral(found) for found in value.referrals],
        subscriptions=[subscription(found, now) for found in value.subscriptions],
        partner_activity=[transaction(entry) for entry in value.partner_entries],
        events=[event(found) for found in value.events],
        challenges=[member_challenge(challenge, progress) for challenge, progress in value.challenges],
        badges=[member_badge(award) for award in value.badges],
        household=_household(value.household),
    )


def _household(found: tuple[str, Membership] | None) -> MemberHouseholdOut | None:
    from chalicelib.api.schemas.privacy import MemberHouseholdOut

    if found is None:
        return None
    household_id, membership = found
    return MemberHouseholdOut(household_id=household_id, role=membership.role.value, joined_at=membership.joined_at)


def erasure(value: Erasure) -> ErasureOut:
    from chalicelib.api.schemas.privacy import ErasureOut

    return ErasureOut(
        member_id=value.member_id,
        erased_at=value.erased_at,
        points_forfeited=value.points_forfeited,
        pending_forfeited=value.pending_forfeited,
        transaction_id=value.transaction_id,
    )
