"""Member tokens in the domain: signing, verification, revocation, rotation, origins, expiring lots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.errors import InvalidRequest, NotFound, TokenInvalid
from chalicelib.domain.expiry import Lot
from chalicelib.domain.member_access import (
    MemberAccess,
    MemberAccessService,
    MemberScope,
    SigningKey,
    expiring_within,
    normalize_origins,
    read_claims,
)

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ALICE, BOB = "mem_01JD0000000000000000000000", "mem_01JD0000000000000000000001"


class FakeSealer:
    """Seals by tagging the secret with its context: a wrong context does not open."""

    def seal(self, secret: str, context: dict[str, str]) -> str:
        return f"{sorted(context.items())}|{secret}"

    def open(self, sealed: str, context: dict[str, str]) -> str:
        tag, _, secret = sealed.partition("|")
        assert tag == str(sorted(context.items())), "opened under another context"
        return secret


class FakeStore:
    def __init__(self) -> None:
        self.access: MemberAccess | None = None
        self.generations = {ALICE: 0, BOB: 0}

    def get(self, *, consistent: bool = False) -> MemberAccess | None:
        return self.access

    def put_signing_key(self, key: SigningKey, *, replace: bool, audit: object = None) -> SigningKey:
        if not replace and self.access is not None and self.access.signing_key is not None:
            return self.access.signing_key
        self.access = MemberAccess(signing_key=key, allowed_origins=self.access.allowed_origins if self.access else ())
        return key

    def set_allowed_origins(self, origins: tuple[str, ...], at: datetime, audit: object = None) -> MemberAccess:
        self.access = replace(self.access or MemberAccess(), allowed_origins=origins, updated_at=at)
        return self.access

    def token_generation(self, member_id: str, *, consistent: bool = False) -> int | None:
        return self.generations.get(member_id)

    def next_token_generation(self, member_id: str) -> int | None:
        if member_id not in self.generations:
            return None
        self.generations[member_id] += 1
        return self.generations[member_id]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def service(store: FakeStore, clock: Clock) -> MemberAccessService:
    return MemberAccessService("acme", store, FakeSealer(), clock=clock)


def verify(service: MemberAccessService, token: str) -> str:
    claims, signed, signature = read_claims(token)
    return service.verify(claims, signed, signature)[0].member_id


def test_a_token_verifies_until_it_expires(service: MemberAccessService, clock: Clock) -> None:
    issued = service.issue(ALICE, frozenset({MemberScope.READ}), 15)
    assert issued.claims.expires_at - issued.claims.issued_at == timedelta(minutes=15)
    assert verify(service, issued.token) == ALICE
    clock.now = T0 + timedelta(minutes=15)
    with pytest.raises(TokenInvalid):
        verify(service, issued.token)


def test_a_token_is_bound_to_its_member_tenant_and_signature(service: MemberAccessService, store: FakeStore) -> None:
    token = service.issue(ALICE, frozenset(MemberScope), 5).token
    claims, signed, signature = read_claims(token)
    # Another member's claims under Alice's signature
    with pytest.raises(TokenInvalid):
        service.verify(replace(claims, member_id=BOB), signed.replace("A", "B", 1), signature)
    # A signature cut short
    with pytest.raises(TokenInvalid):
        service.verify(claims, signed, signature[:-2])
    # Another tenant's service does not open this tenant's key (the KMS context names the tenant)
    other = MemberAccessService("globex", store, FakeSealer())
    with pytest.raises(AssertionError, match="another context"):
        other.verify(claims, signed, signature)
    for garbage in ("", "lk_x", "lmt_", "lmt_a.b.c", "lmt_!!!.x", "lmt_e30.x"):
        with pytest.raises(TokenInvalid):
            read_claims(garbage)


def test_revoking_a_member_ends_only_its_tokens(service: MemberAccessService) -> None:
    alice, bob = (
        service.issue(ALICE, frozenset(MemberScope), 5).token,
        service.issue(BOB, frozenset(MemberScope), 5).token,
    )
    service.revoke_member_tokens(ALICE)
    with pytest.raises(TokenInvalid):
        verify(service, alice)
    assert verify(service, bob) == BOB
    assert verify(service, service.issue(ALICE, frozenset(MemberScope), 5).token) == ALICE
    with pytest.raises(NotFound):
        service.revoke_member_tokens("mem_01JD00000000000000000000ZZ")


def test_rotating_the_key_ends_every_token(service: MemberAccessService) -> None:
    tokens = [service.issue(member, frozenset(MemberScope), 5).token for member in (ALICE, BOB)]
    first_key = service.settings().signing_key
    rotated = service.rotate_signing_key()
    assert first_key is not None and rotated.key_id != first_key.key_id
    for token in tokens:
        with pytest.raises(TokenInvalid):
            verify(service, token)
    assert verify(service, service.issue(BOB, frozenset(MemberScope), 5).token) == BOB


def test_lifetime_and_member_are_checked_when_minting(service: MemberAccessService) -> None:
    for minutes in (0, 61):
        with pytest.raises(InvalidRequest):
            service.issue(ALICE, frozenset(MemberScope), minutes)
    with pytest.raises(NotFound):
        service.issue("mem_01JD00000000000000000000ZZ", frozenset(MemberScope), 5)
    with pytest.raises(NotFound):
        service.issue("not-a-member", frozenset(MemberScope), 5)


def test_origins_are_normalised_and_checked() -> None:
    assert normalize_origins(["https://Shop.Example.com/", "https://shop.example.com", "http://localhost:8000"]) == (
        "https://shop.example.com",
        "http://localhost:8000",
    )
    for bad in ("*", "shop.example.com", "https://shop.example.com/path", "ftp://x"):
        with pytest.raises(InvalidRequest):
            normalize_origins([bad])
    access = MemberAccess(allowed_origins=("https://shop.example.com",))
    assert access.allows_origin("https://SHOP.example.com") and not access.allows_origin("https://evil.example")
    assert not access.allows_origin(None)


def test_expiring_within_counts_spendable_lots_by_moment() -> None:
    def lot(remaining: int, days: int | None, *, pending: bool = False) -> Lot:
        return Lot(
            lot_id=f"txn_{remaining}",
            member_id=ALICE,
            remaining=remaining,
            original=remaining,
            earned_at=T0,
            expires_at=T0 + timedelta(days=days) if days is not None else None,
            matures_at=T0 + timedelta(days=5) if pending else None,
        )

    lots = (lot(10, 3), lot(5, 3), lot(7, 20), lot(4, None), lot(9, 2, pending=True), lot(0, 1), lot(8, -1))
    assert expiring_within(lots, T0, 30) == [(T0 + timedelta(days=3), 15), (T0 + timedelta(days=20), 7)]
    assert expiring_within(lots, T0, 10) == [(T0 + timedelta(days=3), 15)]
