"""Cached factories of table-bound PynamoDB classes.

Each call builds subclasses with their *own* ``Meta`` and their *own* index instances
(PynamoDB binds an index instance to the last model class it was attached to, so a shared
index would let one tenant's queries reach another tenant's table). Nothing here talks to
AWS: PynamoDB opens its connection on the first request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from pynamodb.attributes import UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.domain.tenants import validate_tenant_id
from chalicelib.persistence import models

if TYPE_CHECKING:
    from chalicelib.settings import Settings

M = TypeVar("M", bound=models.KeyedItem)

GSI1 = "gsi1"
GSI2 = "gsi2"
FEED = "feed"


@dataclass(frozen=True)
class ConnectionConfig:
    """What a table-bound class needs to reach DynamoDB (hashable, for the caches)."""

    region: str
    endpoint: str | None
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_retry_attempts: int
    max_pool_connections: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionConfig:
        return cls(
            region=settings.aws_region,
            endpoint=settings.dynamodb_endpoint,
            connect_timeout_seconds=settings.dynamodb_connect_timeout_seconds,
            read_timeout_seconds=settings.dynamodb_read_timeout_seconds,
            max_retry_attempts=settings.dynamodb_max_retry_attempts,
        )


def _gsi1() -> GlobalSecondaryIndex[Any]:
    """A fresh index instance: never share one between model classes."""

    class Gsi1(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = GSI1
            projection = AllProjection()

        gsi1pk = UnicodeAttribute(hash_key=True)
        gsi1sk = UnicodeAttribute(range_key=True)

    return Gsi1()


@lru_cache(maxsize=8)
def _shared_connection(config: ConnectionConfig) -> Connection:
    """One PynamoDB Connection (hence one botocore client) per configuration."""
    return Connection(
        region=config.region,
        host=config.endpoint,
        connect_timeout_seconds=config.connect_timeout_seconds,
        read_timeout_seconds=config.read_timeout_seconds,
        max_retry_attempts=config.max_retry_attempts,
        max_pool_connections=config.max_pool_connections,
    )


def shared_client(config: ConnectionConfig) -> Any:
    """The botocore DynamoDB client every table-bound class of ``config`` uses (built on first use)."""
    return _shared_connection(config).client


def _gsi2() -> GlobalSecondaryIndex[Any]:
    """Due lots: sparse (only lots with an expiry) and keys-only (the job reads the lots)."""

    class Gsi2(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = GSI2
            projection = KeysOnlyProjection()

        gsi2pk = UnicodeAttribute(hash_key=True)
        gsi2sk = UnicodeAttribute(range_key=True)

    return Gsi2()


def _feed() -> GlobalSecondaryIndex[Any]:
    class Feed(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = FEED
            projection = AllProjection()

        gsi3pk = UnicodeAttribute(hash_key=True)
        gsi3sk = UnicodeAttribute(range_key=True)

    return Feed()


def _bind(
    base: type[M],
    table: str,
    config: ConnectionConfig,
    *,
    indexed: bool,
    due_index: bool = False,
    feed: bool = False,
) -> type[M]:
    meta = type(
        "Meta",
        (),
        {
            "client_provider": staticmethod(functools.partial(shared_client, config)),
            "table_name": table,
            "region": config.region,
            "host": config.endpoint,
            "connect_timeout_seconds": config.connect_timeout_seconds,
            "read_timeout_seconds": config.read_timeout_seconds,
            "max_retry_attempts": config.max_retry_attempts,
            "max_pool_connections": config.max_pool_connections,
            "billing_mode": "PAY_PER_REQUEST",
        },
    )
    namespace: dict[str, Any] = {"Meta": meta, "__module__": __name__}
    if indexed:
        namespace["gsi1"] = _gsi1()
    if due_index:
        namespace["gsi2"] = _gsi2()
    if feed:
        namespace["feed"] = _feed()
    return type(f"{base.__name__}[{table}]", (base,), namespace)


@dataclass(frozen=True)
class ControlModels:
    table_name: str
    schema: type[models.IndexedItem]
    tenant: type[models.TenantItem]
    api_key: type[models.ApiKeyItem]
    #: The operator's audit entries (tenants created, suspended, resumed).
    audit: type[models.AuditItem]


@dataclass(frozen=True)
class TenantModels:
    tenant_id: str
    table_name: str
    schema: type[models.TenantTableSchema]
    member: type[models.MemberItem]
    balance: type[models.BalanceItem]
    lot: type[models.LotItem]
    external_id: type[models.ExternalIdItem]
    enrolment: type[models.EnrolmentItem]
    ledger: type[models.LedgerItem]
    program: type[models.ProgramItem]
    job_run: type[models.JobRunItem]
    notice: type[models.NoticeItem]
    rule: type[models.RuleItem]
    counter: type[models.CounterItem]
    reward: type[models.RewardItem]
    coupon: type[models.CouponItem]
    webhook: type[models.WebhookItem]
    delivery: type[models.DeliveryItem]
    feed_checkpoint: type[models.FeedCheckpointItem]
    tier_review: type[models.TierReviewItem]
    # commerce integrations
    order_event: type[models.OrderEventItem]
    shopify: type[models.ShopifyIntegrationItem]
    # coalition partners
    partner: type[models.PartnerItem]
    # referrals and member codes
    code_guard: type[models.CodeGuardItem]
    referral: type[models.ReferralItem]
    # paid membership: subscriptions, reported periods, recording requests
    subscription: type[models.SubscriptionItem]
    # bulk imports
    import_job: type[models.ImportItem]
    import_chunk: type[models.ImportChunkItem]
    import_result: type[models.ImportResultItem]
    # challenges and badges
    challenge_progress: type[models.ChallengeProgressItem]
    # the audit trail and consent history
    audit: type[models.AuditItem]
    consent: type[models.ConsentItem]
    # privacy: the last-activity index, erased external ids
    retention: type[models.RetentionItem]
    erased_id: type[models.ErasedIdItem]
    # member access: the member-token signing key and the member API's origins
    member_access: type[models.MemberAccessItem]
    # households: a household, a member's membership, a creation's key
    household: type[models.HouseholdItem]


@lru_cache(maxsize=8)
def control_models(table_name: str, config: ConnectionConfig) -> ControlModels:
    return ControlModels(
        table_name=table_name,
        schema=_bind(models.IndexedItem, table_name, config, indexed=True),
        tenant=_bind(models.TenantItem, table_name, config, indexed=True),
        api_key=_bind(models.ApiKeyItem, table_name, config, indexed=True),
        audit=_bind(models.AuditItem, table_name, config, indexed=False),
    )


@lru_cache(maxsize=4096)
def tenant_models(tenant_id: str, table_name: str, config: ConnectionConfig) -> TenantModels:
    validate_tenant_id(tenant_id)
    if not table_name.endswith(f"-tenant-{tenant_id}"):
        raise ValueError(f"table {table_name!r} does not belong to tenant {tenant_id!r}")
    return TenantModels(
        tenant_id=tenant_id,
        table_name=table_name,
        schema=_bind(models.TenantTableSchema, table_name, config, indexed=True, due_index=True, feed=True),
        member=_bind(models.MemberItem, table_name, config, indexed=True, feed=True),
        balance=_bind(models.BalanceItem, table_name, config, indexed=False),
        lot=_bind(models.LotItem, table_name, config, indexed=False, due_index=True),
        external_id=_bind(models.ExternalIdItem, table_name, config, indexed=False),
        enrolment=_bind(models.EnrolmentItem, table_name, config, indexed=False),
        ledger=_bind(models.LedgerItem, table_name, config, indexed=True, feed=True),
        program=_bind(models.ProgramItem, table_name, config, indexed=False),
        job_run=_bind(models.JobRunItem, table_name, config, indexed=False),
        notice=_bind(models.NoticeItem, table_name, config, indexed=False, feed=True),
        rule=_bind(models.RuleItem, table_name, config, indexed=False),
        counter=_bind(models.CounterItem, table_name, config, indexed=False),
        reward=_bind(models.RewardItem, table_name, config, indexed=True),
        coupon=_bind(models.CouponItem, table_name, config, indexed=True),
        webhook=_bind(models.WebhookItem, table_name, config, indexed=True),
        delivery=_bind(models.DeliveryItem, table_name, config, indexed=True),
        feed_checkpoint=_bind(models.FeedCheckpointItem, table_name, config, indexed=False),
        tier_review=_bind(models.TierReviewItem, table_name, config, indexed=False, due_index=True),
        # commerce integrations
        order_event=_bind(models.OrderEventItem, table_name, config, indexed=False),
        shopify=_bind(models.ShopifyIntegrationItem, table_name, config, indexed=True),
        partner=_bind(models.PartnerItem, table_name, config, indexed=False),
        # referrals and member codes
        code_guard=_bind(models.CodeGuardItem, table_name, config, indexed=False),
        referral=_bind(models.ReferralItem, table_name, config, indexed=True, due_index=True),
        subscription=_bind(models.SubscriptionItem, table_name, config, indexed=False, due_index=True),
        import_job=_bind(models.ImportItem, table_name, config, indexed=True, due_index=True),
        import_chunk=_bind(models.ImportChunkItem, table_name, config, indexed=False),
        import_result=_bind(models.ImportResultItem, table_name, config, indexed=False),
        challenge_progress=_bind(models.ChallengeProgressItem, table_name, config, indexed=False),
        # the audit trail and consent history
        audit=_bind(models.AuditItem, table_name, config, indexed=False),
        consent=_bind(models.ConsentItem, table_name, config, indexed=False),
        retention=_bind(models.RetentionItem, table_name, config, indexed=False, due_index=True),
        erased_id=_bind(models.ErasedIdItem, table_name, config, indexed=False),
        member_access=_bind(models.MemberAccessItem, table_name, config, indexed=False),
        household=_bind(models.HouseholdItem, table_name, config, indexed=False),
    )


def clear_caches() -> None:
    """Forget every bound class and client (tests switch between emulators)."""
    control_models.cache_clear()
    tenant_models.cache_clear()
    _shared_connection.cache_clear()
