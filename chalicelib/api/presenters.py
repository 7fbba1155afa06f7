"""Domain objects -> response schemas."""

from __future__ import annotations

from chalicelib.api import schemas
from chalicelib.domain.api_keys import ApiKey, IssuedApiKey
from chalicelib.domain.ledger import Balance, LedgerEntry
from chalicelib.domain.members import Member
from chalicelib.domain.program import Program
from chalicelib.domain.tenants import Tenant


def tenant(value: Tenant) -> schemas.TenantOut:
    return schemas.TenantOut(
        tenant_id=value.tenant_id,
        name=value.name,
        currency=value.currency,
        timezone=value.timezone,
        status=value.status,
        created_at=value.created_at,
        updated_at=value.updated_at,
    )


def api_key(value: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=value.key_id,
        name=value.name,
        scopes=sorted(value.scopes),
        created_at=value.created_at,
        revoked_at=value.revoked_at,
    )


def issued_api_key(value: IssuedApiKey) -> schemas.CreatedApiKey:
    return schemas.CreatedApiKey(**api_key(value.record).model_dump(), secret=value.secret)


def program(value: Program) -> schemas.ProgramOut:
    return schemas.ProgramOut(
        points_per_currency_unit=format(value.points_per_currency_unit.normalize(), "f"),
        rounding=value.rounding,
        updated_at=value.updated_at,
    )


def member(value: Member) -> schemas.MemberOut:
    return schemas.MemberOut(
        id=value.member_id,
        external_id=value.external_id,
        email=value.email,
        name=value.name,
        birthday=value.birthday,
        marketing_consent=value.marketing_consent,
        created_at=value.created_at,
        updated_at=value.updated_at,
    )


def balance(value: Balance) -> schemas.BalanceOut:
    return schemas.BalanceOut(
        member_id=value.member_id,
        available=value.available,
        lifetime_earned=value.lifetime_earned,
        lifetime_redeemed=value.lifetime_redeemed,
        lifetime_adjusted=value.lifetime_adjusted,
        updated_at=value.updated_at,
    )


def transaction(entry: LedgerEntry) -> schemas.TransactionOut:
    return schemas.TransactionOut(
        id=entry.transaction_id,
        member_id=entry.member_id,
        type=entry.movement,
        points=entry.points,
        sequence=entry.sequence,
        balance_after=entry.balance_after.available,
        amount=entry.amount,
        currency=entry.currency,
        reference=entry.reference,
        description=entry.description,
        reason=entry.reason,
        metadata=entry.metadata,
        occurred_at=entry.occurred_at,
        created_at=entry.created_at,
        idempotency_key=entry.idempotency_key,
    )


def movement(entry: LedgerEntry) -> schemas.MovementOut:
    """The response of a point movement, rebuilt identically from the stored entry on replay."""
    return schemas.MovementOut(transaction=transaction(entry), balance=balance(entry.balance_after))
