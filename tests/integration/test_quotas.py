"""DynamoDB's quotas enforced by the application, on both emulators.

For each limit: the application refuses the write with StorageLimitExceeded before any
request is sent (no TransactWriteItems call is made, nothing is written), and the same raw
request shows what the emulator itself does: DynamoDB Local refuses it, as DynamoDB does,
while moto 5.2.5 accepts some of them (4 MB per transaction, 25 per batch write, 38
digits), which is why the application checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.errors import MovementTooLarge, StorageLimitExceeded
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName
from chalicelib.domain.ledger import MovementRequest, MovementType
from chalicelib.domain.members import NewMember
from chalicelib.domain.program import Rounding
from chalicelib.domain.tenants import NewTenant
from chalicelib.persistence.factory import TenantModels, shared_client, tenant_models
from chalicelib.persistence.quotas import GuardedTransactWrite, check_batch_write
from chalicelib.services import platform
from tests.support.faults import FaultPlan
from tests.support.http import Api

KB = 1024
#: Emulators that let each over-limit raw request through (measured on moto 5.2.5).
MOTO_ACCEPTS = {"transaction_size", "batch_write_items", "number_digits"}


@pytest.fixture
def tenant(api: Api) -> TenantModels:
    api.create_tenant("acme")
    return tenant_models("acme", platform().settings.tenant_table_name("acme"), platform().connection)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    """Counts the DynamoDB calls made (a plan with no faults)."""
    plan = FaultPlan()
    plan.install(monkeypatch)
    return plan


def _items(tenant: TenantModels) -> list[dict[str, Any]]:
    client = shared_client(platform().connection)
    return client.scan(TableName=tenant.table_name, ConsistentRead=True)["Items"]


def _ledger_rows(tenant: TenantModels, count: int, *, description_bytes: int = 0) -> list[Any]:
    return [
        tenant.ledger(
            pk=f"LEDGER#k{index}",
            sk="#ENTRY",
            transaction_id=f"txn_{index}",
            movement="earn",
            points=1,
            request_fingerprint="f",
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            description="x" * description_bytes if description_bytes else None,
            after_available=1,
            after_lifetime_earned=1,
            after_lifetime_redeemed=0,
            after_lifetime_adjusted=0,
        )
        for index in range(count)
    ]


def _raw_transaction_outcome(tenant: TenantModels, rows: list[Any]) -> str:
    """What the emulator does with the same transaction when nothing checks it first."""
    try:
        with TransactWrite(connection=tenant.balance._get_connection().connection) as tx:
            for row in rows:
                tx.save(row)
    except TransactWriteError as error:
        return f"refused: {error.cause_response_code}"
    return "accepted"


def _expect_refusal(
    backend: str, limit: str, tenant: TenantModels, rows: list[Any], calls: FaultPlan
) -> StorageLimitExceeded:
    before = _items(tenant)
    made = calls.calls["TransactWriteItems"]
    with pytest.raises(StorageLimitExceeded) as refused:
        with GuardedTransactWrite(connection=tenant.balance._get_connection().connection) as tx:
            for row in rows:
                tx.save(row)
    assert refused.value.details["limit"] == limit
    assert calls.calls["TransactWriteItems"] == made, "the refused transaction was sent"
    assert _items(tenant) == before, "the refused transaction wrote something"

    # The same request, unchecked: DynamoDB Local refuses it like DynamoDB; moto may not.
    raw = _raw_transaction_outcome(tenant, rows)
    if backend == "moto" and limit in MOTO_ACCEPTS:
        assert raw == "accepted", f"moto now enforces {limit}: update MOTO_ACCEPTS and the docs"
    else:
        assert raw == "refused: ValidationException", raw
    return refused.value


def test_a_transaction_of_more_than_100_items(backend: str, tenant: TenantModels, calls: FaultPlan) -> None:
    refused = _expect_refusal(backend, "transaction_items", tenant, _ledger_rows(tenant, 101), calls)
    assert refused.details == {"limit": "transaction_items", "maximum": 100, "actual": 101}


def test_a_transaction_of_more_than_4_mb(backend: str, tenant: TenantModels, calls: FaultPlan) -> None:
    rows = _ledger_rows(tenant, 11, description_bytes=390 * KB)  # each item fits; 4.2 MB in all
    refused = _expect_refusal(backend, "transaction_size", tenant, rows, calls)
    assert refused.details["actual"] > 4 * 1024 * KB


def test_an_item_over_400_kb(backend: str, tenant: TenantModels, calls: FaultPlan) -> None:
    rows = _ledger_rows(tenant, 1, description_bytes=401 * KB)
    refused = _expect_refusal(backend, "item_size", tenant, rows, calls)
    assert refused.details["actual"] > 400 * KB


def test_a_number_of_more_than_38_digits(backend: str, tenant: TenantModels, calls: FaultPlan) -> None:
    row = tenant.balance(
        pk="MEMBER#m",
        sk="#BALANCE",
        member_id="m",
        available=10**38,  # 39 digits, 38 of them zeros: one significant digit, accepted
        lifetime_earned=10**38 + 1,  # 39 significant digits
        lifetime_redeemed=0,
        lifetime_adjusted=0,
        version=1,
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    refused = _expect_refusal(backend, "number_digits", tenant, [row], calls)
    assert refused.details["attribute"] == "lifetime_earned"


def test_a_batch_write_of_more_than_25_items(backend: str, tenant: TenantModels) -> None:
    request_items = {
        tenant.table_name: [{"PutRequest": {"Item": {"pk": {"S": f"BATCH#{i}"}, "sk": {"S": "#X"}}}} for i in range(26)]
    }
    with pytest.raises(StorageLimitExceeded) as refused:
        check_batch_write(request_items)
    assert refused.value.details == {"limit": "batch_write_items", "maximum": 25, "actual": 26}

    client = shared_client(platform().connection)
    if backend == "moto":
        client.batch_write_item(RequestItems=request_items)  # moto accepts what DynamoDB refuses
        assert len([i for i in _items(tenant) if i["pk"]["S"].startswith("BATCH#")]) == 26
    else:
        with pytest.raises(ClientError, match="Too many items"):
            client.batch_write_item(RequestItems=request_items)


# --- through the application's own repositories ------------------------------------------------------


def test_enrolling_a_member_whose_profile_would_exceed_400_kb_is_refused_and_writes_nothing(
    backend: str, tenant: TenantModels, calls: FaultPlan
) -> None:
    members = platform().for_tenant_id("acme").members

    with pytest.raises(StorageLimitExceeded) as refused:
        members.enrol(NewMember(name="x" * (401 * KB), external_id="big"))

    assert refused.value.details["limit"] == "item_size"
    assert calls.calls["TransactWriteItems"] == 0
    assert members.find_by_external_id("big") is None
    assert members.list(limit=10, cursor=None).items == []


def test_creating_a_tenant_whose_entry_would_exceed_400_kb_is_refused_and_writes_nothing(
    backend: str, api: Api, calls: FaultPlan
) -> None:
    services = platform()
    created = services.tenants.create(NewTenant(tenant_id="small", name="s", currency="EUR", timezone="UTC"))
    huge = replace(created.tenant, tenant_id="huge", name="x" * (401 * KB))
    made = calls.calls["TransactWriteItems"]

    with pytest.raises(StorageLimitExceeded):
        services.tenant_store.create_with_key(huge, replace(created.admin_key.record, key_id="key_huge"))

    assert calls.calls["TransactWriteItems"] == made
    assert services.tenant_store.get("huge") is None


# --- limits the application itself reaches, and works within ------------------------------------------


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def many_lots_past_expiry(api: Api, tenant: TenantModels) -> Iterator[tuple[Any, str, _Clock]]:
    """A member with 50 lots (50 earns under a 1-day expiry), all past expiry, no job run yet.

    Settling all 50 at once would take 151 transaction items (an expire entry and a lot delete
    per lot, plus the balance): more than DynamoDB's 100. The ledger settles them in chunks."""
    clock = _Clock(datetime(2027, 3, 1, 12, tzinfo=UTC))
    services = platform().for_tenant_id("acme", clock=clock)
    services.program.replace(Decimal(1), Rounding.FLOOR, ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=1))
    member = services.members.enrol(NewMember()).member_id
    for index in range(50):
        services.points.move(MovementRequest(member, MovementType.EARN, f"earn-{index}", points=1))
    clock.now += timedelta(days=2)
    yield services, member, clock


def test_a_member_with_50_expired_lots_can_still_earn(many_lots_past_expiry: tuple[Any, str, _Clock]) -> None:
    services, member, _ = many_lots_past_expiry

    result = services.points.move(MovementRequest(member, MovementType.EARN, "after-expiry", points=5))

    assert result.entry.balance_after.available == 5
    balance = services.points.balance(member)
    assert (balance.available, balance.lifetime_expired, balance.lifetime_earned) == (5, 50, 55)
    first = services.points.transactions(member, limit=100, cursor=None)
    history = first.items + services.points.transactions(member, limit=100, cursor=first.next_cursor).items
    expired = [entry for entry in history if entry.movement is MovementType.EXPIRE]
    assert len(expired) == 50 and {entry.idempotency_key for entry in expired} == {
        f"expire:{entry.metadata['lot_id']}" for entry in expired
    }
    assert [entry.sequence for entry in reversed(history)] == list(range(1, 102))  # 50 earns, 50 expiries, 1 earn


def test_the_expiry_job_expires_50_lots_of_one_member(many_lots_past_expiry: tuple[Any, str, _Clock]) -> None:
    services, member, clock = many_lots_past_expiry

    run = services.jobs.run(JobName.EXPIRE_POINTS, clock.now)

    assert (run.counts["lots_expired"], run.counts["points_expired"], run.counts["members"]) == (50, 50, 1)
    balance = services.points.balance(member)
    assert (balance.available, balance.lifetime_expired, balance.lot_count) == (0, 50, 0)
    assert services.jobs.run(JobName.EXPIRE_POINTS, clock.now).counts["lots_expired"] == 0  # nothing twice


def test_a_redemption_spanning_more_lots_than_one_transaction_holds_says_how_much_it_can_take(
    api: Api, tenant: TenantModels
) -> None:
    """45 lots of 1 point each (45 earns under a 1-year expiry): redeeming all 45 at once would
    change 45 lots; one movement may change 40. The refusal names what can be taken now."""
    clock = _Clock(datetime(2027, 3, 1, 12, tzinfo=UTC))
    services = platform().for_tenant_id("acme", clock=clock)
    services.program.replace(Decimal(1), Rounding.FLOOR, ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=365))
    member = services.members.enrol(NewMember()).member_id
    for index in range(45):
        clock.now += timedelta(minutes=1)
        services.points.move(MovementRequest(member, MovementType.EARN, f"earn-{index}", points=1))

    with pytest.raises(MovementTooLarge) as refused:
        services.points.move(MovementRequest(member, MovementType.REDEEM, "all-at-once", points=45))
    assert refused.value.details == {"points": 45, "lots": 45, "max_lots": 40, "max_points": 40}
    assert services.points.balance(member).available == 45  # nothing written

    services.points.move(MovementRequest(member, MovementType.REDEEM, "first-part", points=40))
    services.points.move(MovementRequest(member, MovementType.REDEEM, "the-rest", points=5))
    balance = services.points.balance(member)
    assert (balance.available, balance.lifetime_redeemed, balance.lot_count) == (0, 45, 0)
