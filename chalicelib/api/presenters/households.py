"""Households -> response schemas; a pooled redemption is rebuilt identically from its entries on replay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.presenters.points import transaction

if TYPE_CHECKING:
    from chalicelib.api.schemas.households import HouseholdOut, HouseholdRemovalOut, PooledRedemptionOut
    from chalicelib.domain.households import HouseholdView, PooledRedemptionResult


def household(view: HouseholdView) -> HouseholdOut:
    from chalicelib.api.schemas.households import HouseholdMemberOut, HouseholdOut, PoolOut

    value = view.household
    return HouseholdOut(
        id=value.household_id,
        name=value.name,
        members=[
            HouseholdMemberOut(
                member_id=m.membership.member_id,
                role=m.membership.role.value,
                joined_at=m.membership.joined_at,
                available=m.available,
                pending=m.pending,
            )
            for m in view.members
        ],
        pool=PoolOut(available=view.available, pending=view.pending),
        created_at=value.created_at,
    )


def removal(household_id: str, member_id: str, after: HouseholdView | None) -> HouseholdRemovalOut:
    from chalicelib.api.schemas.households import HouseholdRemovalOut

    return HouseholdRemovalOut(
        household_id=household_id,
        member_id=member_id,
        dissolved=after is None,
        household=household(after) if after is not None else None,
    )


def redemption(result: PooledRedemptionResult) -> PooledRedemptionOut:
    from chalicelib.api.schemas.households import ContributionOut, PooledRedemptionOut

    lead = result.entries[0]
    return PooledRedemptionOut(
        id=result.redemption_id,
        household_id=lead.metadata.get("household_id", result.household_id),
        member_id=lead.metadata.get("redeemer_id", result.redeemer_id),
        points=result.points,
        description=lead.description,
        created_at=lead.created_at,
        contributions=[
            ContributionOut(member_id=entry.member_id, points=-entry.points, transaction=transaction(entry))
            for entry in result.entries
        ],
    )
