"""Tenants: slug validation, creation (tables first, then record and admin key), suspend/resume."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.api_keys import key_id_of
from chalicelib.domain.authentication import Authenticator
from chalicelib.domain.errors import InvalidRequest, NotFound, TenantExists, TransientStoreError
from chalicelib.domain.scopes import Scope
from chalicelib.domain.tenants import NewTenant, TenantService, TenantStatus, is_tenant_id, validate_tenant_id
from tests.support.memory import InMemoryApiKeyStore, InMemoryProvisioner, InMemoryTenantStore
from tests.unit.builders import T0, FakeClock


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.keys = InMemoryApiKeyStore()
        self.tenants = InMemoryTenantStore(self.keys)
        self.provisioner = InMemoryProvisioner()
        self.service = TenantService(self.tenants, self.keys, self.provisioner, clock=self.clock)


@pytest.fixture
def world() -> World:
    return World()


def new(tenant_id: str = "acme") -> NewTenant:
    return NewTenant(tenant_id=tenant_id, name="Acme Shoes", currency="EUR", timezone="Europe/Helsinki")


# --- slugs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    ["acme", "a-b", "abc", "a1b2", "acme-shoes-2", "x9-y8-z7", "a" * 32, "a" + "-b" * 15 + "c"],
)
def test_valid_slugs_are_accepted(slug: str) -> None:
    assert validate_tenant_id(slug) == slug
    assert is_tenant_id(slug) is True


@pytest.mark.parametrize(
    "slug",
    [
        pytest.param("ab", id="2-chars"),
        pytest.param("a" * 33, id="33-chars"),
        pytest.param("-ab", id="leading-hyphen"),
        pytest.param("ab-", id="trailing-hyphen"),
        pytest.param("a--b", id="double-hyphen"),
        pytest.param("Acme", id="uppercase"),
        pytest.param("ac_me", id="underscore"),
        pytest.param("1abc", id="leading-digit"),
        pytest.param("ac me", id="space"),
        pytest.param("acmé", id="non-ascii"),
        pytest.param("acme.shoes", id="dot"),
        pytest.param("", id="empty"),
        pytest.param(" acme", id="leading-space"),
    ],
)
def test_invalid_slugs_are_refused(slug: str) -> None:
    with pytest.raises(InvalidRequest) as refusal:
        validate_tenant_id(slug)

    assert is_tenant_id(slug) is False
    assert refusal.value.details == {
        "fields": [{"path": "tenant_id", "message": "invalid slug", "type": "string_pattern_mismatch"}]
    }


def test_a_non_string_is_not_a_slug() -> None:
    assert is_tenant_id(None) is False  # type: ignore[arg-type]
    assert is_tenant_id(1234) is False  # type: ignore[arg-type]


def test_a_slug_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        validate_tenant_id("acme\n")


# --- creation -----------------------------------------------------------------------------------


def test_create_provisions_the_tables_then_writes_the_tenant_with_an_admin_key(world: World) -> None:
    # Given a provisioner that notes whether the tenant record existed when it ran
    seen_at_provisioning: list[object] = []
    ensure = world.provisioner.ensure_tenant_tables

    def ensure_and_look(tenant_id: str) -> None:
        seen_at_provisioning.append(world.tenants.get(tenant_id))
        ensure(tenant_id)

    world.provisioner.ensure_tenant_tables = ensure_and_look  # type: ignore[method-assign]

    # When a tenant is created
    created = world.service.create(new("acme"))

    # Then the tables came first, while no record existed yet
    assert seen_at_provisioning == [None]
    assert world.provisioner.tables == {"acme"}
    # And the record is active and stored
    tenant = created.tenant
    assert (tenant.tenant_id, tenant.name, tenant.currency, tenant.timezone) == (
        "acme",
        "Acme Shoes",
        "EUR",
        "Europe/Helsinki",
    )
    assert (tenant.status, tenant.created_at, tenant.updated_at) == (TenantStatus.ACTIVE, T0, T0)
    assert world.tenants.get("acme") == tenant
    # And an admin key was issued and stored only as its digest
    key = created.admin_key
    assert (key.record.tenant_id, key.record.name, key.record.scopes) == ("acme", "admin", frozenset({Scope.ADMIN}))
    assert key_id_of(key.secret) == key.record.key_id
    assert world.keys.list_for_tenant("acme") == [key.record]


def test_the_admin_key_authenticates_as_the_new_tenant(world: World) -> None:
    created = world.service.create(new("acme"))
    auth = Authenticator(world.keys, world.tenants, None)

    context = auth.authenticate_tenant(f"Bearer {created.admin_key.secret}")

    assert (context.tenant_id, context.scopes) == ("acme", frozenset({Scope.ADMIN}))


def test_a_failed_provisioning_writes_nothing_and_a_retry_completes(world: World) -> None:
    world.provisioner.fail_next(TransientStoreError("throttled"))

    with pytest.raises(TransientStoreError):
        world.service.create(new("acme"))

    assert world.tenants.get("acme") is None
    assert world.keys.list_for_tenant("acme") == []

    created = world.service.create(new("acme"))
    assert created.tenant.tenant_id == "acme"
    assert world.provisioner.calls == ["acme", "acme"]
    assert world.provisioner.tables == {"acme"}


def test_a_duplicate_tenant_is_refused_without_touching_the_first(world: World) -> None:
    first = world.service.create(new("acme"))
    world.clock.advance(hours=1)

    with pytest.raises(TenantExists) as refusal:
        world.service.create(NewTenant("acme", "Other", "USD", "UTC"))

    assert refusal.value.code == "tenant_exists"
    assert refusal.value.details == {"tenant_id": "acme"}
    assert world.tenants.get("acme") == first.tenant
    assert world.keys.list_for_tenant("acme") == [first.admin_key.record]
    assert world.provisioner.calls == ["acme"]  # checked before provisioning


def test_a_duplicate_that_slips_past_the_check_is_refused_by_the_store(world: World) -> None:
    # Given a concurrent creator that wins between our check and our write
    ensure = world.provisioner.ensure_tenant_tables
    rival = TenantService(world.tenants, world.keys, InMemoryProvisioner(), clock=world.clock)

    def ensure_while_a_rival_creates(tenant_id: str) -> None:
        ensure(tenant_id)
        rival.create(new(tenant_id))

    world.provisioner.ensure_tenant_tables = ensure_while_a_rival_creates  # type: ignore[method-assign]

    # When we create the same tenant
    with pytest.raises(TenantExists):
        world.service.create(new("acme"))

    # Then only the rival's admin key exists
    assert len(world.keys.list_for_tenant("acme")) == 1


def test_an_invalid_slug_is_refused_before_provisioning(world: World) -> None:
    with pytest.raises(InvalidRequest):
        world.service.create(new("Acme"))

    assert world.provisioner.calls == []
    assert world.tenants.list(limit=10, cursor=None).items == []


# --- reading, listing, suspending -----------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", ["ghost", "NOT A SLUG"])
def test_get_of_an_unknown_tenant_is_not_found(world: World, tenant_id: str) -> None:
    with pytest.raises(NotFound):
        world.service.get(tenant_id)


def test_tenants_are_listed_by_id_across_pages(world: World) -> None:
    for slug in ["delta", "alpha", "echo", "charlie", "bravo"]:
        world.service.create(new(slug))

    first = world.service.list(limit=2, cursor=None)
    second = world.service.list(limit=2, cursor=first.next_cursor)
    third = world.service.list(limit=2, cursor=second.next_cursor)

    assert [t.tenant_id for t in first.items] == ["alpha", "bravo"]
    assert [t.tenant_id for t in second.items] == ["charlie", "delta"]
    assert [t.tenant_id for t in third.items] == ["echo"]
    assert third.next_cursor is None


def test_a_cursor_from_elsewhere_is_refused(world: World) -> None:
    world.service.create(new("acme"))

    with pytest.raises(InvalidRequest):
        world.service.list(limit=2, cursor="not-a-cursor")


def test_suspend_then_resume_changes_the_status_and_updated_at_only(world: World) -> None:
    created = world.service.create(new("acme")).tenant
    suspended_at = world.clock.advance(hours=1)

    suspended = world.service.suspend("acme")
    stored_while_suspended = world.tenants.get("acme")
    resumed_at = world.clock.advance(hours=1)
    resumed = world.service.resume("acme")

    assert (suspended.status, suspended.updated_at) == (TenantStatus.SUSPENDED, suspended_at)
    assert stored_while_suspended == suspended
    assert (resumed.status, resumed.updated_at, resumed.created_at) == (TenantStatus.ACTIVE, resumed_at, T0)
    assert world.tenants.get("acme") == resumed
    assert (resumed.name, resumed.currency) == (created.name, created.currency)
    assert resumed_at - suspended_at == timedelta(hours=1)


def test_suspending_twice_keeps_it_suspended(world: World) -> None:
    world.service.create(new("acme"))

    world.service.suspend("acme")
    again = world.service.suspend("acme")

    assert again.status is TenantStatus.SUSPENDED
    assert world.tenants.get("acme").status is TenantStatus.SUSPENDED


@pytest.mark.parametrize("action", ["suspend", "resume"])
def test_suspending_or_resuming_an_unknown_tenant_is_not_found(world: World, action: str) -> None:
    with pytest.raises(NotFound):
        getattr(world.service, action)("ghost")
