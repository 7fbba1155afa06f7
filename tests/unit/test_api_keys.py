"""API keys: issuing, authenticating tenants and the operator, scopes and revocation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pytest

import chalicelib.domain.authentication as authentication_module
from chalicelib.domain.api_keys import (
    KEY_PREFIX,
    ApiKeyService,
    hash_secret,
    issue_api_key,
    key_id_of,
    parse_bearer,
)
from chalicelib.domain.authentication import Authenticator
from chalicelib.domain.errors import Forbidden, NotFound, TenantSuspended, Unauthorized
from chalicelib.domain.ids import API_KEY_ID_PATTERN
from chalicelib.domain.scopes import Scope, require_scope, scope_allows
from chalicelib.domain.tenants import NewTenant, TenantContext, TenantService, TenantStatus
from tests.support.memory import InMemoryApiKeyStore, InMemoryProvisioner, InMemoryTenantStore
from tests.unit.builders import T0, FakeClock

OPERATOR_KEY = "operator-secret-for-tests"


@dataclass
class ControlPlane:
    clock: FakeClock
    keys: InMemoryApiKeyStore
    tenants: InMemoryTenantStore
    tenant_service: TenantService
    key_service: ApiKeyService
    auth: Authenticator

    def create_tenant(self, tenant_id: str) -> str:
        """Creates a tenant and returns its admin key."""
        created = self.tenant_service.create(NewTenant(tenant_id, tenant_id.title(), "EUR", "Europe/Helsinki"))
        return created.admin_key.secret

    def context(self, secret: str) -> TenantContext:
        return self.auth.authenticate_tenant(f"Bearer {secret}")


@pytest.fixture
def plane() -> ControlPlane:
    clock = FakeClock()
    keys = InMemoryApiKeyStore()
    tenants = InMemoryTenantStore(keys)
    return ControlPlane(
        clock=clock,
        keys=keys,
        tenants=tenants,
        tenant_service=TenantService(tenants, keys, InMemoryProvisioner(), clock=clock),
        key_service=ApiKeyService(keys, clock=clock),
        auth=Authenticator(keys, tenants, hashlib.sha256(OPERATOR_KEY.encode()).hexdigest()),
    )


# --- issuing --------------------------------------------------------------------------------------


def test_an_issued_key_has_the_lk_prefix_its_key_id_and_a_43_character_secret() -> None:
    issued = issue_api_key("acme", name="pos", scopes=frozenset({Scope.WRITE}), now=T0)

    ulid = issued.record.key_id.removeprefix("key_")
    assert API_KEY_ID_PATTERN.match(issued.record.key_id)
    assert issued.secret.startswith(f"{KEY_PREFIX}{ulid}_")
    assert re.fullmatch(r"lk_[0-9A-HJKMNP-TV-Z]{26}_[A-Za-z0-9_-]{43}", issued.secret)
    assert key_id_of(issued.secret) == issued.record.key_id


def test_the_record_holds_only_the_sha256_of_the_secret() -> None:
    issued = issue_api_key("acme", name="pos", scopes=frozenset({Scope.READ, Scope.WRITE}), now=T0)

    record = issued.record
    assert record.secret_sha256 == hashlib.sha256(issued.secret.encode()).hexdigest() == hash_secret(issued.secret)
    assert issued.secret not in repr(record)
    assert issued.secret.split("_", 2)[2] not in repr(record)
    assert (record.tenant_id, record.name, record.scopes) == ("acme", "pos", frozenset({Scope.READ, Scope.WRITE}))
    assert (record.created_at, record.revoked_at, record.active) == (T0, None, True)


def test_two_issued_keys_differ_in_id_and_secret() -> None:
    a = issue_api_key("acme", name="a", scopes=frozenset({Scope.READ}), now=T0)
    b = issue_api_key("acme", name="b", scopes=frozenset({Scope.READ}), now=T0)

    assert a.record.key_id != b.record.key_id
    assert a.secret.split("_", 2)[2] != b.secret.split("_", 2)[2]


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "lk_",
        "key_01JD0000000000000000000000",
        "lk_01JD0000000000000000000000",
        "lk_01JD0000000000000000000000_" + "a" * 42,
        "lk_01JD0000000000000000000000_" + "a" * 44,
        "lk_01jd0000000000000000000000_" + "a" * 43,
        "lk_01JD000000000000000000000I_" + "a" * 43,  # I is not in Crockford's base32
        "xk_01JD0000000000000000000000_" + "a" * 43,
        "lk_01JD0000000000000000000000_" + "a" * 42 + "=",
    ],
)
def test_key_id_of_refuses_anything_not_shaped_like_a_key(secret: str) -> None:
    assert key_id_of(secret) is None


def test_key_id_of_reads_the_ulid_of_a_well_formed_key() -> None:
    assert key_id_of("lk_01JD0000000000000000000000_" + "a" * 43) == "key_01JD0000000000000000000000"


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("  Bearer abc", "abc")],
)
def test_parse_bearer_reads_the_token(header: str, token: str) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "abc", "Token abc"])
def test_parse_bearer_refuses_other_schemes_and_empty_tokens(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        parse_bearer(header)


# --- authenticating a tenant -----------------------------------------------------------------------


def test_a_valid_key_resolves_its_tenant_and_scopes(plane: ControlPlane) -> None:
    secret = plane.create_tenant("acme")

    context = plane.context(secret)

    assert context.tenant_id == "acme"
    assert context.tenant.status is TenantStatus.ACTIVE
    assert context.key_id == key_id_of(secret)
    assert (context.key_name, context.scopes) == ("admin", frozenset({Scope.ADMIN}))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer nonsense",
        "Bearer lk_01JD0000000000000000000000_" + "a" * 43,  # well formed, unknown id
        "Basic dXNlcjpwYXNz",
    ],
)
def test_a_missing_malformed_or_unknown_key_is_unauthorized(plane: ControlPlane, header: str | None) -> None:
    plane.create_tenant("acme")

    with pytest.raises(Unauthorized) as error:
        plane.auth.authenticate_tenant(header)

    assert error.value.code == "unauthorized"


def test_a_wrong_secret_with_a_valid_key_id_is_unauthorized(plane: ControlPlane) -> None:
    # Given a real key
    secret = plane.create_tenant("acme")
    # And a forgery that keeps its id but changes one character of the secret
    last = secret[-1]
    forged = secret[:-1] + ("A" if last != "A" else "B")

    # When the forgery is presented
    with pytest.raises(Unauthorized) as error:
        plane.context(forged)

    # Then it is refused like an unknown key (nothing says the id exists)
    assert key_id_of(forged) == key_id_of(secret)
    assert error.value.message == "invalid API key"


def test_a_revoked_key_is_unauthorized(plane: ControlPlane) -> None:
    admin = plane.context(plane.create_tenant("acme"))
    issued = plane.key_service.create(admin, name="pos", scopes=frozenset({Scope.WRITE}))
    assert plane.context(issued.secret).key_id == issued.record.key_id

    plane.key_service.revoke(admin, issued.record.key_id)

    with pytest.raises(Unauthorized) as error:
        plane.context(issued.secret)
    assert error.value.message == "this API key has been revoked"


def test_a_key_of_a_suspended_tenant_is_refused_until_it_resumes(plane: ControlPlane) -> None:
    secret = plane.create_tenant("acme")
    plane.tenant_service.suspend("acme")

    with pytest.raises(TenantSuspended) as error:
        plane.context(secret)
    plane.tenant_service.resume("acme")

    assert error.value.code == "tenant_suspended"
    assert isinstance(error.value, Forbidden)
    assert plane.context(secret).tenant_id == "acme"


def test_a_key_whose_tenant_record_is_missing_is_unauthorized(plane: ControlPlane) -> None:
    orphan = issue_api_key("ghost", name="x", scopes=frozenset({Scope.READ}), now=T0)
    plane.keys.add(orphan.record)

    with pytest.raises(Unauthorized):
        plane.context(orphan.secret)


# --- the operator -------------------------------------------------------------------------------


def test_the_configured_operator_key_is_accepted(plane: ControlPlane) -> None:
    assert plane.auth.authenticate_operator(f"Bearer {OPERATOR_KEY}") is None


@pytest.mark.parametrize("presented", ["wrong", OPERATOR_KEY + "x", OPERATOR_KEY.upper()])
def test_any_other_operator_key_is_unauthorized(plane: ControlPlane, presented: str) -> None:
    with pytest.raises(Unauthorized) as error:
        plane.auth.authenticate_operator(f"Bearer {presented}")

    assert error.value.message == "invalid operator key"


def test_a_tenant_key_is_not_an_operator_key(plane: ControlPlane) -> None:
    secret = plane.create_tenant("acme")

    with pytest.raises(Unauthorized):
        plane.auth.authenticate_operator(f"Bearer {secret}")


@pytest.mark.parametrize("configured", [None, ""])
@pytest.mark.parametrize("presented", [OPERATOR_KEY, "", "0" * 64, "anything"])
def test_without_a_configured_operator_key_every_operator_call_is_unauthorized(
    configured: str | None, presented: str
) -> None:
    auth = Authenticator(InMemoryApiKeyStore(), InMemoryTenantStore(), configured)

    with pytest.raises(Unauthorized):
        auth.authenticate_operator(f"Bearer {presented}")


def test_a_digest_equal_to_the_placeholder_does_not_open_an_unconfigured_operator() -> None:
    # The unconfigured path compares against "0"*64; a presented key hashing to it must still fail.
    auth = Authenticator(InMemoryApiKeyStore(), InMemoryTenantStore(), None)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(authentication_module, "hash_secret", lambda _: "0" * 64)
        with pytest.raises(Unauthorized):
            auth.authenticate_operator("Bearer anything")


# --- scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ({Scope.ADMIN}, Scope.ADMIN, True),
        ({Scope.ADMIN}, Scope.WRITE, True),
        ({Scope.ADMIN}, Scope.READ, True),
        ({Scope.WRITE}, Scope.WRITE, True),
        ({Scope.WRITE}, Scope.READ, False),
        ({Scope.WRITE}, Scope.ADMIN, False),
        ({Scope.READ}, Scope.READ, True),
        ({Scope.READ}, Scope.WRITE, False),
        ({Scope.READ}, Scope.ADMIN, False),
        ({Scope.READ, Scope.WRITE}, Scope.READ, True),
        ({Scope.READ, Scope.WRITE}, Scope.WRITE, True),
        ({Scope.READ, Scope.WRITE}, Scope.ADMIN, False),
        (set(), Scope.READ, False),
    ],
)
def test_scope_allows(granted: set[Scope], required: Scope, allowed: bool) -> None:
    assert scope_allows(frozenset(granted), required) is allowed


def test_require_scope_names_the_missing_scope(plane: ControlPlane) -> None:
    admin = plane.context(plane.create_tenant("acme"))
    reader = plane.context(plane.key_service.create(admin, name="r", scopes=frozenset({Scope.READ})).secret)

    require_scope(reader, Scope.READ)
    with pytest.raises(Forbidden) as error:
        require_scope(reader, Scope.WRITE)

    assert error.value.code == "forbidden"
    assert error.value.details == {"required_scope": "write", "key_scopes": ["read"]}


# --- ApiKeyService ------------------------------------------------------------------------------


def test_created_keys_are_listed_for_their_tenant_only(plane: ControlPlane) -> None:
    acme = plane.context(plane.create_tenant("acme"))
    globex = plane.context(plane.create_tenant("globex"))
    pos = plane.key_service.create(acme, name="pos", scopes=frozenset({Scope.WRITE}))

    acme_keys = plane.key_service.list(acme)
    globex_keys = plane.key_service.list(globex)

    assert sorted(k.name for k in acme_keys) == ["admin", "pos"]
    assert pos.record in acme_keys
    assert [k.name for k in globex_keys] == ["admin"]


def test_revoking_a_key_records_when_and_is_idempotent(plane: ControlPlane) -> None:
    admin = plane.context(plane.create_tenant("acme"))
    pos = plane.key_service.create(admin, name="pos", scopes=frozenset({Scope.WRITE}))
    revoke_time = plane.clock.advance(minutes=10)

    revoked = plane.key_service.revoke(admin, pos.record.key_id)
    plane.clock.advance(minutes=10)
    again = plane.key_service.revoke(admin, pos.record.key_id)

    assert revoked.revoked_at == revoke_time
    assert again.revoked_at == revoke_time
    assert plane.keys.get(pos.record.key_id).revoked_at == revoke_time


def test_revoking_another_tenants_key_is_not_found_and_leaves_it_active(plane: ControlPlane) -> None:
    acme = plane.context(plane.create_tenant("acme"))
    globex_secret = plane.create_tenant("globex")
    globex_key_id = key_id_of(globex_secret)

    with pytest.raises(NotFound) as error:
        plane.key_service.revoke(acme, globex_key_id)

    assert error.value.code == "not_found"
    assert plane.keys.get(globex_key_id).active is True
    assert plane.context(globex_secret).tenant_id == "globex"


@pytest.mark.parametrize("key_id", ["key_01JD0000000000000000000000", "nonsense", ""])
def test_revoking_an_unknown_or_malformed_key_id_is_not_found(plane: ControlPlane, key_id: str) -> None:
    acme = plane.context(plane.create_tenant("acme"))

    with pytest.raises(NotFound):
        plane.key_service.revoke(acme, key_id)
