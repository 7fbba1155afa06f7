"""Households through the HTTP API and the real services, on both emulators: the program's
setting, roles, one household per member, leaving with one's points, and pooled redemptions
(lots expiring first across members, never expired or pending points, one entry and balance
per contributor, replays, refusals that change nothing), and erasure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.errors import InsufficientPoints, MovementTooLarge
from chalicelib.domain.events import EventType
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.households import (
    MAX_LOTS_PER_POOLED_REDEMPTION,
    HouseholdRole,
    PooledRedemptionRequest,
)
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementRequest, MovementType
from chalicelib.domain.program import HouseholdPolicy, Rounding
from chalicelib.services import TenantServices, platform
from tests.support.checks import assert_error
from tests.support.clocks import MovableClock
from tests.support.http import Api

ALLOWED = {"enabled": True, "max_members": 3}
PROGRAM = {"points_per_currency_unit": "1", "rounding": "floor", "households": ALLOWED}


def _create(api: Api, key: str, owner: str, idempotency_key: str | None = None, **body: Any) -> Any:
    body = {"owner_member_id": owner, **body}
    return api.call("POST", "/v1/households", key=key, body=body, idempotency_key=idempotency_key)


def _join(api: Api, key: str, household: str, member: str, role: str) -> Any:
    body = {"member_id": member, "role": role}
    return api.call("POST", f"/v1/households/{household}/members", key=key, body=body)


def _redeem(api: Api, key: str, household: str, idempotency_key: str, **body: Any) -> Any:
    path = f"/v1/households/{household}/redemptions"
    return api.call("POST", path, key=key, body=body, idempotency_key=idempotency_key)


def _get(api: Api, key: str, household: str) -> Any:
    return api.call("GET", f"/v1/households/{household}", key=key)


@pytest.fixture
def family(api: Api, admin_key: str) -> tuple[str, str, str]:
    """Households allowed (3 members at most); an owner with 300 points, a kin with 500, a child with 200."""
    assert api.call("PUT", "/v1/program", key=admin_key, body=PROGRAM).status == 200
    members = []
    for name, points in (("Owner", 300), ("Kin", 500), ("Child", 200)):
        member = api.enrol(admin_key, name=name)
        assert api.earn(admin_key, member, f"fund-{name}", points=points).status == 201
        members.append(member)
    owner, kin, child = members
    return owner, kin, child


def test_households_are_refused_unless_the_program_allows_them(api: Api, admin_key: str) -> None:
    # Given a program that says nothing of households
    owner = api.enrol(admin_key)
    program = api.call("GET", "/v1/program", key=admin_key)
    assert program.body["households"] == {"enabled": False, "max_members": 6}

    # When a member creates a household, Then it is refused, naming why
    refused = _create(api, admin_key, owner)
    assert assert_error(refused, 422, "household_not_allowed") == {"reason": "disabled"}

    # And the setting is kept as sent, with its bounds
    put = api.call("PUT", "/v1/program", key=admin_key, body=PROGRAM)
    assert put.status == 200 and put.body["households"] == ALLOWED, put
    too_big = {**PROGRAM, "households": {"enabled": True, "max_members": 11}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=too_big).status == 400
    # And an unknown owner is not found
    ghost = _create(api, admin_key, "mem_01JD0000000000000000000000")
    assert_error(ghost, 404, "not_found")


def test_a_household_is_created_joined_and_read_with_its_pool(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, child = family
    # When the owner creates a household, with an Idempotency-Key
    created = _create(api, admin_key, owner, "house-1", name="The Smiths")

    # Then it holds the owner alone, and their points are the pool
    assert created.status == 201, created
    household = created.body["id"]
    assert household.startswith("hh_") and created.body["name"] == "The Smiths"
    assert [(m["member_id"], m["role"], m["available"]) for m in created.body["members"]] == [(owner, "owner", 300)]
    assert created.body["pool"] == {"available": 300, "pending": 0}

    # And a retry with the key answers the same household; another body under it is refused
    again = _create(api, admin_key, owner, "house-1", name="The Smiths")
    assert again.status == 201 and again.body == created.body and again.headers.get("idempotent-replayed") == "true"
    assert_error(_create(api, admin_key, owner, "house-1", name="Others"), 422, "idempotency_key_reused")

    # When the kin joins as a redeemer and the child as a member, the child holding pending points too
    pending = {**PROGRAM, "pending_days": 14}
    assert api.call("PUT", "/v1/program", key=admin_key, body=pending).status == 200
    assert api.earn(admin_key, child, "pending-1", points=40).status == 201
    assert api.call("PUT", "/v1/program", key=admin_key, body=PROGRAM).status == 200
    assert _join(api, admin_key, household, kin, "redeemer").status == 201
    joined = _join(api, admin_key, household, child, "member")

    # Then the household lists them in joining order with their own points, and the pool sums them
    assert joined.status == 201, joined
    read = _get(api, admin_key, household)
    assert read.status == 200 and read.body == joined.body
    assert [(m["member_id"], m["role"], m["available"], m["pending"]) for m in read.body["members"]] == [
        (owner, "owner", 300, 0),
        (kin, "redeemer", 500, 0),
        (child, "member", 200, 40),
    ]
    assert read.body["pool"] == {"available": 1000, "pending": 40}

    # And a fourth member is refused: the household is full
    fourth = api.enrol(admin_key)
    full = _join(api, admin_key, household, fourth, "member")
    assert assert_error(full, 422, "household_not_allowed") == {"reason": "full", "max_members": 3}
    # And a read key may read it; an unknown household is not found
    reader = api.create_key(admin_key, "read")
    assert _get(api, reader, household).status == 200
    assert_error(_get(api, admin_key, "hh_01JD0000000000000000000000"), 404, "not_found")


def test_a_member_is_in_one_household_at_a_time(api: Api, admin_key: str, family: tuple[str, str, str]) -> None:
    owner, kin, child = family
    first = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, first, kin, "member").status == 201

    # When the kin joins another household, or this one again, or creates one
    second = _create(api, admin_key, child).body["id"]
    elsewhere = _join(api, admin_key, second, kin, "member")
    again = _join(api, admin_key, first, kin, "redeemer")
    own = _create(api, admin_key, kin)

    # Then each is refused, naming the household the kin is in, and nothing changed
    for refused in (elsewhere, again, own):
        assert assert_error(refused, 409, "member_in_household") == {"member_id": kin, "household_id": first}
    assert [m["member_id"] for m in _get(api, admin_key, second).body["members"]] == [child]
    assert [m["member_id"] for m in _get(api, admin_key, first).body["members"]] == [owner, kin]


def test_roles_decide_who_redeems_from_the_pool(api: Api, admin_key: str, family: tuple[str, str, str]) -> None:
    owner, kin, child = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, kin, "member").status == 201
    outsider = api.enrol(admin_key)

    # When a plain member or an outsider redeems from the pool, Then it is refused, naming the role
    member = _redeem(api, admin_key, household, "m-1", member_id=kin, points=10)
    assert assert_error(member, 422, "household_redeemer_required") == {"member_id": kin, "role": "member"}
    stranger = _redeem(api, admin_key, household, "m-2", member_id=outsider, points=10)
    assert assert_error(stranger, 422, "household_redeemer_required") == {"member_id": outsider, "role": None}
    # And the member still spends their own points through the ordinary route
    assert api.redeem(admin_key, kin, "own-1", points=100).status == 201

    # When the owner makes the kin a redeemer, Then the kin may redeem from the pool
    path = f"/v1/households/{household}/members/{kin}"
    changed = api.call("PATCH", path, key=admin_key, body={"role": "redeemer"})
    assert changed.status == 200 and changed.body["members"][1]["role"] == "redeemer", changed
    assert api.call("PATCH", path, key=admin_key, body={"role": "redeemer"}).body == changed.body
    assert _redeem(api, admin_key, household, "m-3", member_id=kin, points=10).status == 201

    # And the owner is never demoted, nor is the owner role given
    demote = api.call("PATCH", f"/v1/households/{household}/members/{owner}", key=admin_key, body={"role": "member"})
    assert assert_error(demote, 422, "household_not_allowed") == {"reason": "owner_role"}
    assert api.call("PATCH", path, key=admin_key, body={"role": "owner"}).status == 400
    absent = api.call("PATCH", f"/v1/households/{household}/members/{child}", key=admin_key, body={"role": "member"})
    assert_error(absent, 404, "not_found")


def test_leaving_keeps_ones_points_and_the_owner_leaves_last(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, child = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, kin, "redeemer").status == 201

    # When the owner tries to leave with the kin still in, Then it is refused
    path = f"/v1/households/{household}/members"
    refused = api.call("DELETE", f"{path}/{owner}", key=admin_key)
    assert assert_error(refused, 422, "household_not_allowed") == {"reason": "owner_not_alone", "members": 2}

    # When the kin leaves, Then the kin keeps every point and the pool no longer counts them
    left = api.call("DELETE", f"{path}/{kin}", key=admin_key)
    assert left.status == 200, left
    assert (left.body["dissolved"], left.body["member_id"]) == (False, kin)
    assert left.body["household"]["pool"] == {"available": 300, "pending": 0}
    assert api.balance(admin_key, kin)["available"] == 500
    assert [e["type"] for e in api.ledger(admin_key, kin)] == ["earn"]
    # And leaving again is not found; the kin may join another household now
    assert_error(api.call("DELETE", f"{path}/{kin}", key=admin_key), 404, "not_found")
    other = _create(api, admin_key, child).body["id"]
    assert _join(api, admin_key, other, kin, "member").status == 201

    # When the owner, alone, leaves, Then the household is dissolved and the owner may start another
    gone = api.call("DELETE", f"{path}/{owner}", key=admin_key)
    assert gone.status == 200 and gone.body == {
        "household_id": household,
        "member_id": owner,
        "dissolved": True,
        "household": None,
    }
    assert_error(_get(api, admin_key, household), 404, "not_found")
    assert api.balance(admin_key, owner)["available"] == 300
    assert _create(api, admin_key, owner).status == 201


def test_a_pooled_redemption_writes_each_contributors_entry_and_balance(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, child = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, kin, "redeemer").status == 201
    assert _join(api, admin_key, household, child, "member").status == 201

    # When the kin redeems 600 points from the pool (points that never expire: the redeemer's first)
    redeemed = _redeem(api, admin_key, household, "weekend", member_id=kin, points=600, description="Weekend")

    # Then the kin's 500 and 100 of the owner's (the next member in joining order) are taken
    assert redeemed.status == 201, redeemed
    body = redeemed.body
    redemption = body["id"]
    assert redemption.startswith("hrd_")
    assert (body["household_id"], body["member_id"], body["points"], body["description"]) == (
        household,
        kin,
        600,
        "Weekend",
    )
    assert [(c["member_id"], c["points"]) for c in body["contributions"]] == [(kin, 500), (owner, 100)]
    lead, other = (c["transaction"] for c in body["contributions"])
    assert (lead["type"], lead["points"], lead["balance_after"], lead["idempotency_key"]) == (
        "redeem",
        -500,
        0,
        "weekend",
    )
    assert lead["metadata"] == {
        "household_id": household,
        "redemption_id": redemption,
        "redeemer_id": kin,
        "contributors": f"{kin},{owner}",
    }
    assert other["idempotency_key"] == f"household:{redemption}:{owner}"
    assert (other["points"], other["balance_after"], other["reference"]) == (-100, 200, redemption)

    # And each member's balance and ledger moved; the child's points were not needed
    assert [api.balance(admin_key, m)["available"] for m in (owner, kin, child)] == [200, 0, 200]
    assert api.balance(admin_key, kin)["lifetime_redeemed"] == 500
    assert api.ledger(admin_key, owner)[0]["id"] == other["id"]
    assert [e["type"] for e in api.ledger(admin_key, child)] == ["earn"]
    assert _get(api, admin_key, household).body["pool"] == {"available": 400, "pending": 0}

    # And each entry is an ordinary points.redeemed event in its member's feed
    now = datetime.now(UTC)
    later = platform().for_tenant_id("acme", clock=lambda: now + timedelta(seconds=10), created_at=now - DAY)
    events = later.feed.read(after=None, types=frozenset({EventType.POINTS_REDEEMED}), limit=10).events
    assert sorted((e.member_id, e.entry.points) for e in events if e.entry) == sorted([(kin, -500), (owner, -100)])

    # When the same request is sent again, Then it answers the first result and moves nothing
    again = _redeem(api, admin_key, household, "weekend", member_id=kin, points=600, description="Weekend")
    assert again.status == 201 and again.body == body and again.headers.get("idempotent-replayed") == "true"
    assert [api.balance(admin_key, m)["available"] for m in (owner, kin, child)] == [200, 0, 200]
    # And the key with another body is refused
    reused = _redeem(api, admin_key, household, "weekend", member_id=kin, points=601, description="Weekend")
    assert_error(reused, 422, "idempotency_key_reused")
    # And a key the ledger keeps for itself is refused
    minted = _redeem(api, admin_key, household, f"household:{redemption}:x", member_id=kin, points=1)
    assert_error(minted, 400, "invalid_request")


def test_a_pooled_redemption_the_pool_cannot_cover_changes_nothing(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, _ = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, kin, "member").status == 201
    ledgers = [api.ledger(admin_key, m) for m in (owner, kin)]

    short = _redeem(api, admin_key, household, "too-much", member_id=owner, points=801)

    assert assert_error(short, 422, "insufficient_points") == {"available": 800, "requested": 801}
    assert [api.ledger(admin_key, m) for m in (owner, kin)] == ledgers
    assert [api.balance(admin_key, m)["available"] for m in (owner, kin)] == [300, 500]
    # And the whole pool may be spent at once
    assert _redeem(api, admin_key, household, "all", member_id=owner, points=800).status == 201
    assert [api.balance(admin_key, m)["available"] for m in (owner, kin)] == [0, 0]


def test_an_erased_member_leaves_and_the_household_passes_on(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, child = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, child, "member").status == 201
    assert _join(api, admin_key, household, kin, "redeemer").status == 201

    # When the owner is erased, Then the longest-standing redeemer (not the older member) owns it
    erase = api.call("POST", f"/v1/members/{owner}/erase", key=admin_key, idempotency_key="erase-owner")
    assert erase.status == 200, erase
    read = _get(api, admin_key, household).body
    assert [(m["member_id"], m["role"]) for m in read["members"]] == [(child, "member"), (kin, "owner")]
    assert read["pool"] == {"available": 700, "pending": 0}

    # When the others leave and the last one is erased, Then the household goes
    assert api.call("DELETE", f"/v1/households/{household}/members/{child}", key=admin_key).status == 200
    erase = api.call("POST", f"/v1/members/{kin}/erase", key=admin_key, idempotency_key="erase-kin")
    assert erase.status == 200, erase
    assert_error(_get(api, admin_key, household), 404, "not_found")


def test_a_members_export_names_their_household_and_role(
    api: Api, admin_key: str, family: tuple[str, str, str]
) -> None:
    owner, kin, child = family
    household = _create(api, admin_key, owner).body["id"]
    assert _join(api, admin_key, household, kin, "redeemer").status == 201

    # Each member's export names the household and their own role in it
    for member, role in ((owner, "owner"), (kin, "redeemer")):
        export = api.call("GET", f"/v1/members/{member}/export", key=admin_key)
        assert export.status == 200, export
        assert export.body["household"]["household_id"] == household
        assert export.body["household"]["role"] == role
        assert export.body["household"]["joined_at"]
    # A member in no household: null, and after leaving, null too
    assert api.call("GET", f"/v1/members/{child}/export", key=admin_key).body["household"] is None
    assert api.call("DELETE", f"/v1/households/{household}/members/{kin}", key=admin_key).status == 200
    assert api.call("GET", f"/v1/members/{kin}/export", key=admin_key).body["household"] is None


# --- the draw across members (services, with a clock the test moves) -------------------------------

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TZ = "Europe/Helsinki"
POLICY = ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30)


@dataclass
class Brand:
    services: TenantServices
    clock: MovableClock
    keys: Counter[str]

    def program(self, expiry: ExpiryPolicy, pending_days: int = 0) -> None:
        policy = HouseholdPolicy(enabled=True, max_members=10)
        self.services.program.replace(Decimal(1), Rounding.FLOOR, expiry, pending_days, households=policy)

    def enrol(self) -> str:
        return self.services.members.enrol(NewMember()).member_id

    def earn(self, member: str, points: int) -> None:
        self.keys[member] += 1
        key = f"earn-{self.keys[member]}-{member}"
        self.services.points.move(
            MovementRequest(member, MovementType.EARN, points=points, idempotency_key=key, timezone=TZ)
        )

    def household(self, owner: str, *others: tuple[str, HouseholdRole]) -> str:
        households = self.services.households
        household = households.create(owner, None, None).household.household_id
        for member, role in others:
            households.add_member(household, member, role)
        return household

    def redeem(self, household: str, redeemer: str, points: int, key: str) -> list[tuple[str, int]]:
        result = self.services.households.redeem(PooledRedemptionRequest(household, redeemer, points, key))
        return [(entry.member_id, -entry.points) for entry in result.entries]

    def lots(self, member: str) -> list[tuple[int, datetime | None]]:
        lots = self.services.points.balance_and_lots(member)[1]
        return sorted((lot.remaining, lot.expires_at) for lot in lots)

    def available(self, member: str) -> int:
        return self.services.points.view(member).available


@pytest.fixture
def brand(api: Api) -> Brand:
    api.create_tenant("acme")
    clock = MovableClock(T0)
    return Brand(platform().for_tenant_id("acme", clock=clock), clock, Counter())


def test_the_pool_spends_the_lots_expiring_first_across_members(brand: Brand) -> None:
    # Given an owner with 100 points that never expire (earned before the expiry policy)
    owner, kin, child = brand.enrol(), brand.enrol(), brand.enrol()
    brand.program(ExpiryPolicy())
    brand.earn(owner, 100)
    brand.program(POLICY)
    # And the kin's 100 expiring at T0+30d, the owner's 100 at T0+35d, the child's 100 at T0+40d
    brand.earn(kin, 100)
    kin_expiry = POLICY.expires_at(T0, TZ)
    brand.clock.now = T0 + 5 * DAY
    brand.earn(owner, 100)
    owner_expiry = POLICY.expires_at(brand.clock.now, TZ)
    brand.clock.now = T0 + 10 * DAY
    brand.earn(child, 100)
    child_expiry = POLICY.expires_at(brand.clock.now, TZ)
    household = brand.household(owner, (kin, HouseholdRole.MEMBER), (child, HouseholdRole.MEMBER))

    # When the owner redeems 250 points from the pool
    taken = brand.redeem(household, owner, 250, "fifo-1")

    # Then the kin's lot (expiring first), then the owner's, then 50 of the child's were taken
    assert sorted(taken) == sorted([(owner, 100), (kin, 100), (child, 50)])
    assert taken[0][0] == owner  # the redeemer's entry leads
    assert brand.lots(kin) == [] and brand.lots(owner) == []
    assert brand.lots(child) == [(50, child_expiry)]
    assert [brand.available(m) for m in (owner, kin, child)] == [100, 0, 50]
    assert kin_expiry < owner_expiry < child_expiry

    # When the rest is redeemed, Then the child's lot goes before the owner's points that never expire
    assert sorted(brand.redeem(household, owner, 100, "fifo-2")) == sorted([(child, 50), (owner, 50)])
    assert [brand.available(m) for m in (owner, kin, child)] == [50, 0, 0]


def test_the_redeemers_own_lots_go_first_on_equal_expiry(brand: Brand) -> None:
    brand.program(POLICY)
    owner, kin = brand.enrol(), brand.enrol()
    brand.earn(owner, 100)
    brand.earn(kin, 100)
    household = brand.household(owner, (kin, HouseholdRole.REDEEMER))

    assert brand.redeem(household, kin, 120, "tie-1") == [(kin, 100), (owner, 20)]
    assert brand.redeem(household, owner, 30, "tie-2") == [(owner, 30)]


def test_the_pool_never_spends_expired_lots_or_pending_points(brand: Brand) -> None:
    # Given an owner whose 100 points expired (the expiry job has not run) and who earns 70 pending
    owner, kin = brand.enrol(), brand.enrol()
    brand.program(POLICY)
    brand.earn(owner, 100)
    expired = POLICY.expires_at(T0, TZ)
    assert expired is not None
    brand.clock.now = expired + DAY
    brand.program(POLICY, pending_days=14)
    brand.earn(owner, 70)
    brand.program(POLICY)
    # And a kin with 40 spendable points
    brand.earn(kin, 40)
    household = brand.household(owner, (kin, HouseholdRole.MEMBER))
    view = brand.services.households.view(brand.services.households.get(household))
    assert (view.available, view.pending) == (40, 70)

    # When the owner asks 41 points, Then the pool is short: expired and pending points do not count
    with pytest.raises(InsufficientPoints) as short:
        brand.redeem(household, owner, 41, "short")
    assert short.value.details == {"available": 40, "requested": 41}

    # When the owner redeems 40, Then only the kin's points go; the expiry is recorded on the owner
    assert brand.redeem(household, owner, 40, "all-40") == [(kin, 40)]
    assert brand.available(kin) == 0
    owner_balance = brand.services.points.balance(owner)
    assert (owner_balance.lifetime_expired, owner_balance.pending, owner_balance.available) == (100, 70, 0)


def test_a_pooled_redemption_spanning_too_many_lots_is_refused(brand: Brand) -> None:
    brand.program(POLICY)
    owner, kin = brand.enrol(), brand.enrol()
    per_member = MAX_LOTS_PER_POOLED_REDEMPTION // 2 + 1
    for member in (owner, kin):
        for _ in range(per_member):
            brand.clock.now += timedelta(minutes=1)
            brand.earn(member, 10)
    household = brand.household(owner, (kin, HouseholdRole.MEMBER))

    with pytest.raises(MovementTooLarge) as refused:
        brand.redeem(household, owner, 20 * per_member, "too-many")

    assert refused.value.details["max_lots"] == MAX_LOTS_PER_POOLED_REDEMPTION
    assert refused.value.details["max_points"] == 10 * MAX_LOTS_PER_POOLED_REDEMPTION
    assert [brand.available(m) for m in (owner, kin)] == [10 * per_member] * 2
    # And what it says may be taken at once is taken
    taken = brand.redeem(household, owner, 10 * MAX_LOTS_PER_POOLED_REDEMPTION, "at-once")
    assert sum(points for _, points in taken) == 10 * MAX_LOTS_PER_POOLED_REDEMPTION
