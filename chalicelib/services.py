"""Composition of the services: built lazily, once per warm container, never at import.

``PlatformServices`` holds what is shared (control plane, authentication); the services of
one brand are built for a ``TenantContext`` from cached, table-bound model classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.domain.activities import ActivityService
from chalicelib.domain.api_keys import ApiKeyService
from chalicelib.domain.authentication import Authenticator
from chalicelib.domain.clock import Clock, utc_now
from chalicelib.domain.errors import NotFound
from chalicelib.domain.event_payloads import event_payload
from chalicelib.domain.events import EventFeed
from chalicelib.domain.jobs import JobName, JobRunner, settlement_job
from chalicelib.domain.ledger import PointsService, RetryPolicy
from chalicelib.domain.members import MemberService
from chalicelib.domain.notifications import NotificationJob
from chalicelib.domain.program import ProgramService
from chalicelib.domain.referrals import ReferralCompletionJob, ReferralService
from chalicelib.domain.rewards import RewardService
from chalicelib.domain.rules import RuleService
from chalicelib.domain.steps import movement_steps
from chalicelib.domain.tenants import TenantService
from chalicelib.domain.tiers import TierReviewJob, TierService
from chalicelib.persistence.control import ApiKeyRepository, TenantRepository
from chalicelib.persistence.factory import ConnectionConfig, ControlModels, clear_caches, control_models, tenant_models
from chalicelib.persistence.provisioning import InProcessProvisioningQueue, SqsProvisioningQueue, TableProvisioner
from chalicelib.persistence.referrals import ReferralProgramRepository, ReferralRepository
from chalicelib.persistence.rewards import RewardRepository
from chalicelib.persistence.tenant_data import (
    EventRepository,
    JobRunRepository,
    LedgerRepository,
    MemberRepository,
    NoticeRepository,
    ProgramRepository,
    RuleRepository,
)
from chalicelib.persistence.tiers import TierProgramRepository
from chalicelib.settings import Settings, get_settings, reset_settings

if TYPE_CHECKING:
    from chalicelib.domain.exports import ExportService
    from chalicelib.domain.imports import ImportService
    from chalicelib.domain.ports import ProvisioningQueue
    from chalicelib.domain.tenants import TenantContext

#: Where a feed starts when the tenant's creation time is not at hand (jobs, CLI).
FEED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TenantServices:
    members: MemberService
    points: PointsService
    program: ProgramService
    rules: RuleService
    activities: ActivityService
    jobs: JobRunner
    feed: EventFeed
    rewards: RewardService
    tiers: TierService
    referrals: ReferralService | None = None


class PlatformServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection = ConnectionConfig.from_settings(settings)
        self._sqs: Any = None

    @cached_property
    def _control(self) -> ControlModels:
        return control_models(self.settings.control_table_name, self.connection)

    @cached_property
    def tenant_store(self) -> TenantRepository:
        return TenantRepository(self._control)

    @cached_property
    def api_key_store(self) -> ApiKeyRepository:
        return ApiKeyRepository(self._control)

    @cached_property
    def provisioner(self) -> TableProvisioner:
        return TableProvisioner(
            control_table=self.settings.control_table_name,
            tenant_table_name=self.settings.tenant_table_name,
            config=self.connection,
            stage=self.settings.stage,
            wait_seconds=self.settings.provisioning_wait_seconds,
            poll_seconds=self.settings.provisioning_poll_seconds,
        )

    @cached_property
    def provisioning_queue(self) -> ProvisioningQueue | None:
        """Where new tenants' tables are requested; None: they are created inline."""
        if self.settings.provisioning_queue_url:
            return SqsProvisioningQueue(self.settings.provisioning_queue_url, self.sqs)
        if self.settings.provisioning_async:
            return InProcessProvisioningQueue()
        return None

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.api_key_store, self.tenant_store, self._operator_key_sha256())

    @cached_property
    def tenants(self) -> TenantService:
        return TenantService(self.tenant_store, self.api_key_store, self.provisioner, queue=self.provisioning_queue)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(self.api_key_store)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_balance_races=self.settings.conflict_retry_attempts,
            backoff_base_seconds=self.settings.conflict_backoff_base_seconds,
            backoff_cap_seconds=self.settings.conflict_backoff_cap_seconds,
        )

    def for_tenant(self, context: TenantContext) -> TenantServices:
        return self.for_tenant_id(
            context.tenant_id, created_at=context.tenant.created_at, timezone=context.tenant.timezone
        )

    def for_registered_tenant(self, tenant_id: str, *, clock: Clock = utc_now) -> TenantServices:
        """Services of a tenant read from the registry (its time zone decides local dates)."""
        tenant = self.tenant_store.get(tenant_id, consistent=False)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return self.for_tenant_id(tenant_id, clock=clock, created_at=tenant.created_at, timezone=tenant.timezone)

    def for_tenant_id(
        self,
        tenant_id: str,
        *,
        clock: Clock = utc_now,
        created_at: datetime = FEED_EPOCH,
        timezone: str = "UTC",
    ) -> TenantServices:
        models = tenant_models(tenant_id, self.settings.tenant_table_name(tenant_id), self.connection)
        program = ProgramService(ProgramRepository(models), clock=clock)
        ledger = LedgerRepository(models)
        rules = RuleService(RuleRepository(models), program, clock=clock)
        tiers = TierService(TierProgramRepository(models), ledger, timezone=timezone, clock=clock)
        referrals = ReferralService(
            ReferralRepository(models),
            ReferralProgramRepository(models),
            timezone=timezone,
            clock=clock,
            on_deferred=_referral_deferred,
        )
        members = MemberService(MemberRepository(models), clock=clock)
        points = PointsService(
            ledger,
            program,
            clock=clock,
            retry=self.retry_policy,
            rules=rules,
            steps=movement_steps(
                points=lambda: points,
                counter=ledger.get_counter,
                rules=rules,
                tiers=tiers,
                referrals=referrals,
                segments_of=members.segments_of,
            ),
        )
        notify = NotificationJob(
            ledger=ledger,
            notices=NoticeRepository(models),
            members=members,
            points=points,
            program=program,
            timezone=timezone,
            clock=clock,
        )
        jobs = JobRunner(
            tenant_id,
            JobRunRepository(models),
            {
                JobName.EXPIRE_POINTS: settlement_job(ledger, points),
                JobName.MATURE_PENDING: settlement_job(ledger, points),
                JobName.NOTIFY: notify,
                JobName.REVIEW_TIERS: TierReviewJob(ledger, tiers),
                JobName.COMPLETE_REFERRALS: ReferralCompletionJob(referrals, points),
                JobName.LAPSE_SUBSCRIPTIONS: _lapse_job(models, ledger, points, tiers, timezone, clock),
            },
            clock,
        )
        return TenantServices(
            members=members,
            points=points,
            program=program,
            rules=rules,
            activities=ActivityService(rules, points, clock=clock),
            jobs=jobs,
            feed=EventFeed(EventRepository(models), start=created_at, clock=clock),
            rewards=RewardService(
                RewardRepository(models), points, ledger, clock=clock, timezone=timezone, tier_of=tiers.tier_of
            ),
            tiers=tiers,
            referrals=referrals,
        )

    def sqs(self) -> Any:
        """The SQS client for job fan-out and provisioning (built on first use; only deployed stages need it)."""
        if self._sqs is None:
            import boto3

            self._sqs = boto3.client("sqs", region_name=self.settings.aws_region)
        return self._sqs

    # --- webhooks ------------------------------------------------------------------------------

    @cached_property
    def webhook_sealer(self) -> Any:
        """KMS sealing of webhook secrets; one per container, so opened secrets are cached."""
        import boto3

        from chalicelib.integrations.kms import KmsSealer

        client = boto3.client("kms", region_name=self.settings.aws_region, endpoint_url=self.settings.kms_endpoint_url)
        return KmsSealer(
            client, key_id=self.settings.webhook_kms_key_id, local_alias=self.settings.webhook_local_kms_alias
        )

    @cached_property
    def webhook_url_policy(self) -> Any:
        from chalicelib.integrations.ssrf import UrlPolicy

        return UrlPolicy(local_mode=self.settings.webhooks_local)

    def webhooks(self, tenant_id: str, *, clock: Clock = utc_now) -> Any:
        """The webhook service of one tenant (endpoints, dispatch of its feed, drains)."""
        from datetime import timedelta

        from chalicelib.domain.webhooks import DeliveryPolicy, WebhookService
        from chalicelib.integrations.http import HttpTransport
        from chalicelib.integrations.queues import InProcessDeliveryQueue, SqsDeliveryQueue
        from chalicelib.persistence.webhooks import WebhookRepository

        settings = self.settings
        models = tenant_models(tenant_id, settings.tenant_table_name(tenant_id), self.connection)
        queue: Any = (
            SqsDeliveryQueue(tenant_id, settings.deliveries_queue_url, self.sqs())
            if settings.deliveries_queue_url
            else InProcessDeliveryQueue()
        )
        return WebhookService(
            tenant_id,
            WebhookRepository(models),
            sealer=self.webhook_sealer,
            guard=self.webhook_url_policy,
            transport=HttpTransport(
                self.webhook_url_policy,
                connect_timeout_seconds=settings.webhook_connect_timeout_seconds,
                read_timeout_seconds=settings.webhook_read_timeout_seconds,
                max_response_bytes=settings.webhook_max_response_bytes,
                deadline_seconds=settings.webhook_deadline_seconds,
            ),
            queue=queue,
            open_feed=lambda start: EventFeed(EventRepository(models), start=start, clock=clock),
            render=event_payload,
            policy=DeliveryPolicy(
                retry_window=timedelta(seconds=settings.webhook_retry_window_seconds),
                backoff_base=timedelta(seconds=settings.webhook_backoff_base_seconds),
                backoff_cap=timedelta(seconds=settings.webhook_backoff_cap_seconds),
                disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
                secret_overlap=timedelta(seconds=settings.webhook_secret_overlap_seconds),
            ),
            clock=clock,
        )

    @cached_property
    def event_bus(self) -> Any:
        """The EventBridge bus every feed event also goes to; None when no bus is configured."""
        if not self.settings.event_bus_name:
            return None
        import boto3

        from chalicelib.integrations.eventbridge import EventBridgeBus

        client = boto3.client(
            "events", region_name=self.settings.aws_region, endpoint_url=self.settings.events_endpoint
        )
        return EventBridgeBus(client, bus_name=self.settings.event_bus_name, source=self.settings.event_bus_source)

    def bus_publisher(self, tenant_id: str, *, clock: Clock = utc_now) -> Any:
        """One tenant's publisher of its feed to the bus; None when no bus is configured."""
        if self.event_bus is None:
            return None
        from chalicelib.domain.bus import CHECKPOINT, BusPublisher
        from chalicelib.persistence.checkpoints import FeedCheckpoint

        models = tenant_models(tenant_id, self.settings.tenant_table_name(tenant_id), self.connection)
        return BusPublisher(
            tenant_id,
            FeedCheckpoint(models, CHECKPOINT),
            self.event_bus,
            open_feed=lambda start: EventFeed(EventRepository(models), start=start, clock=clock),
            render=event_payload,
            clock=clock,
        )

    def _operator_key_sha256(self) -> str | None:
        local = self.settings.local_operator_key_sha256()
        if local or not self.settings.operator_key_ssm_parameter:
            return local
        import boto3  # only deployed stages that keep the digest in SSM pay for this import

        ssm = boto3.client("ssm", region_name=self.settings.aws_region)
        parameter = ssm.get_parameter(Name=self.settings.operator_key_ssm_parameter, WithDecryption=True)
        return str(parameter["Parameter"]["Value"]).strip().lower()


def _referral_deferred(referee_id: str, error: Exception) -> None:
    """A referral's completion failed after its qualifying order committed: the order stands, and
    the complete-referrals job (or a replay of the order's Idempotency-Key) finishes it."""
    from chalicelib.observability import logger

    logger.warning("referral completion deferred", extra={"referee_id": referee_id, "error": type(error).__name__})


@lru_cache(maxsize=1)
def platform() -> PlatformServices:
    return PlatformServices(get_settings())


def reset_platform() -> None:
    """Drop every cached service, setting and bound model (tests and local tooling)."""
    platform.cache_clear()
    reset_settings()
    clear_caches()


# --- commerce integrations (order intake, Shopify) ----------------------------------------------


def order_intake(services: PlatformServices, tenant_id: str, *, timezone: str = "UTC") -> Any:
    """One tenant's order intake: order events -> ledger movements, idempotent per event."""
    from chalicelib.domain.commerce import OrderIntakeService
    from chalicelib.persistence.commerce import OrderEventRepository

    models = tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)
    tenant = services.for_tenant_id(tenant_id, timezone=timezone)
    return OrderIntakeService(OrderEventRepository(models), tenant.points, LedgerRepository(models), tenant.members)


def shopify(services: PlatformServices, tenant_id: str) -> Any:
    """One tenant's Shopify integrations (shared secrets sealed like webhook secrets)."""
    from datetime import timedelta

    from chalicelib.domain.shopify import ShopifyService
    from chalicelib.persistence.commerce import ShopifyRepository

    models = tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)
    return ShopifyService(
        tenant_id,
        ShopifyRepository(models),
        services.webhook_sealer,
        overlap=timedelta(seconds=services.settings.webhook_secret_overlap_seconds),
    )


# --- coalition partners ------------------------------------------------------------------------


def partners(services: PlatformServices, context: TenantContext) -> Any:
    """One tenant's coalition partners: registry, partner movements through the ledger, settlement."""
    from chalicelib.domain.partners import PartnerService
    from chalicelib.persistence.partners import PartnerRepository

    tenant_id = context.tenant_id
    models = tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)
    tenant = services.for_tenant(context)
    return PartnerService(PartnerRepository(models), tenant.points, tenant.members)


# --- paid membership ---------------------------------------------------------------------------


def subscriptions(services: PlatformServices, context: TenantContext, *, clock: Clock = utc_now) -> Any:
    """One tenant's paid membership: the plan catalog and its members' subscriptions."""
    tenant_id, timezone = context.tenant_id, context.tenant.timezone
    models = tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)
    tenant = services.for_tenant(context)
    return _subscription_service(models, LedgerRepository(models), tenant.points, tenant.tiers, timezone, clock)


def _subscription_service(models: Any, ledger: Any, points: Any, tiers: Any, timezone: str, clock: Clock) -> Any:
    from chalicelib.domain.subscriptions import SubscriptionService
    from chalicelib.persistence.plans import PlanCatalogRepository, SubscriptionRepository

    return SubscriptionService(
        SubscriptionRepository(models),
        PlanCatalogRepository(models),
        ledger,
        points,
        tiers,
        timezone=timezone,
        clock=clock,
    )


def _lapse_job(models: Any, ledger: Any, points: Any, tiers: Any, timezone: str, clock: Clock) -> Any:
    from chalicelib.domain.subscriptions import SubscriptionLapseJob
    from chalicelib.persistence.plans import SubscriptionRepository

    service = _subscription_service(models, ledger, points, tiers, timezone, clock)
    return SubscriptionLapseJob(SubscriptionRepository(models), service)


# --- bulk imports and exports --------------------------------------------------------------------


def imports(
    services: PlatformServices, tenant_id: str, *, timezone: str = "UTC", clock: Clock = utc_now
) -> ImportService:
    """One tenant's bulk imports. Deployed, submitting one enqueues its run on the jobs queue;
    locally (no queue) the ``resume-imports`` schedule runs it in-process."""
    from chalicelib.domain.imports import ImportService
    from chalicelib.integrations.queues import SqsImportQueue
    from chalicelib.persistence.imports import ImportRepository

    settings = services.settings
    models = tenant_models(tenant_id, settings.tenant_table_name(tenant_id), services.connection)
    tenant = services.for_tenant_id(tenant_id, clock=clock, timezone=timezone)
    queue = SqsImportQueue(tenant_id, settings.jobs_queue_url, services.sqs()) if settings.jobs_queue_url else None
    return ImportService(
        ImportRepository(models),
        tenant.program,
        tenant.tiers,
        queue=queue,
        timezone=timezone,
        clock=clock,
        workers=settings.import_row_workers,
    )


def exports(
    services: PlatformServices, tenant_id: str, *, timezone: str = "UTC", clock: Clock = utc_now
) -> ExportService:
    """One tenant's exports: members with balances, ledger entries of a period."""
    from chalicelib.domain.exports import ExportService
    from chalicelib.persistence.exports import ExportRepository

    models = tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)
    tenant = services.for_tenant_id(tenant_id, clock=clock, timezone=timezone)
    return ExportService(
        MemberRepository(models), LedgerRepository(models), ExportRepository(models), tenant.tiers, clock=clock
    )
