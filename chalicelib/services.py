"""Composition of the services: built lazily, once per warm container, never at import.

``PlatformServices`` holds what is shared by every tenant (control plane, authentication, the
AWS clients); ``TenantServices`` holds one tenant's services, each built on first use from the
tenant's cached, table-bound model classes. Handlers and jobs reach a tenant's service in one
way: ``platform().for_tenant(context).<feature>`` (or ``for_tenant_id`` / ``for_registered_tenant``
when no request context is at hand).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.domain.clock import Clock, utc_now
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.domain.activities import ActivityService
    from chalicelib.domain.api_keys import ApiKeyService
    from chalicelib.domain.audit import Actor, AuditService
    from chalicelib.domain.authentication import Authenticator
    from chalicelib.domain.bus import BusPublisher
    from chalicelib.domain.challenges import ChallengeService
    from chalicelib.domain.commerce import OrderIntakeService
    from chalicelib.domain.consents import ConsentService
    from chalicelib.domain.events import EventFeed
    from chalicelib.domain.exports import ExportService
    from chalicelib.domain.households import HouseholdService
    from chalicelib.domain.imports import ImportService
    from chalicelib.domain.insights import InsightsService
    from chalicelib.domain.jobs import JobRunner
    from chalicelib.domain.ledger import PointsService, RetryPolicy
    from chalicelib.domain.member_access import MemberAccessService
    from chalicelib.domain.members import MemberService
    from chalicelib.domain.partners import PartnerService
    from chalicelib.domain.ports import ProvisioningQueue
    from chalicelib.domain.privacy import PrivacyService
    from chalicelib.domain.program import ProgramService
    from chalicelib.domain.referrals import ReferralService
    from chalicelib.domain.rewards import RewardService
    from chalicelib.domain.rules import RuleService
    from chalicelib.domain.shopify import ShopifyService
    from chalicelib.domain.subscriptions import SubscriptionService
    from chalicelib.domain.tenants import Tenant, TenantContext, TenantService
    from chalicelib.domain.tiers import TierService
    from chalicelib.domain.transfers import TransferService
    from chalicelib.domain.webhooks import DeliveryQueue, WebhookService
    from chalicelib.domain.welcome import WelcomeService
    from chalicelib.integrations.eventbridge import EventBridgeBus
    from chalicelib.integrations.kms import KmsSealer
    from chalicelib.integrations.ssrf import UrlPolicy
    from chalicelib.persistence.control import ApiKeyRepository, TenantRepository
    from chalicelib.persistence.factory import (
        ControlModels,
        TenantModels,
    )
    from chalicelib.persistence.insights import InsightRepository
    from chalicelib.persistence.ledger import LedgerRepository
    from chalicelib.persistence.members import MemberRepository
    from chalicelib.persistence.privacy import PrivacyRepository
    from chalicelib.persistence.provisioning import TableProvisioner
    from chalicelib.settings import Settings

#: Where a feed starts when the tenant's creation time is not at hand (jobs, CLI).
FEED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class TenantServices:
    """One tenant's services. Each is built on first use and kept for the container's life; the
    tenant's models are bound once, and the repositories the services share are built once."""

    def __init__(
        self,
        platform: PlatformServices,
        tenant_id: str,
        *,
        clock: Clock = utc_now,
        created_at: datetime = FEED_EPOCH,
        timezone: str = "UTC",
        actor: Actor | None = None,
    ) -> None:
        from chalicelib.domain.audit import SYSTEM, Auditor

        self._platform = platform
        self.tenant_id = tenant_id
        self.clock = clock
        self.created_at = created_at
        self.timezone = timezone
        #: Who the changes made through these services are recorded as (the request's key).
        self.actor = actor or SYSTEM
        self.auditor = Auditor(self.actor, clock)

    @cached_property
    def models(self) -> TenantModels:
        from chalicelib.persistence.factory import tenant_models

        settings = self._platform.settings
        return tenant_models(self.tenant_id, settings.tenant_table_name(self.tenant_id), self._platform.connection)

    @cached_property
    def _ledger(self) -> LedgerRepository:
        from chalicelib.persistence.ledger import LedgerRepository

        return LedgerRepository(self.models)

    @cached_property
    def _member_store(self) -> MemberRepository:
        from chalicelib.persistence.members import MemberRepository

        return MemberRepository(self.models)

    # --- the program and its members ---------------------------------------------------------------

    @cached_property
    def program(self) -> ProgramService:
        from chalicelib.domain.program import ProgramService
        from chalicelib.persistence.program import ProgramRepository

        return ProgramService(ProgramRepository(self.models), clock=self.clock, auditor=self.auditor)

    @cached_property
    def rules(self) -> RuleService:
        from chalicelib.domain.rules import RuleService
        from chalicelib.persistence.rules import RuleRepository

        return RuleService(RuleRepository(self.models), self.program, clock=self.clock, auditor=self.auditor)

    @cached_property
    def tiers(self) -> TierService:
        from chalicelib.domain.tiers import TierService
        from chalicelib.persistence.tiers import TierProgramRepository

        store = TierProgramRepository(self.models, self._platform.control)
        return TierService(store, self._ledger, timezone=self.timezone, clock=self.clock, auditor=self.auditor)

    @cached_property
    def referrals(self) -> ReferralService:
        from chalicelib.domain.referrals import ReferralService
        from chalicelib.persistence.referrals import ReferralProgramRepository, ReferralRepository

        return ReferralService(
            ReferralRepository(self.models),
            ReferralProgramRepository(self.models),
            timezone=self.timezone,
            clock=self.clock,
            on_deferred=_referral_deferred,
            auditor=self.auditor,
        )

    @cached_property
    def members(self) -> MemberService:
        from chalicelib.domain.members import MemberService

        return MemberService(self._member_store, clock=self.clock, actor=self.actor, welcome=self._welcome)

    @cached_property
    def points(self) -> PointsService:
        from chalicelib.domain.ledger import PointsService
        from chalicelib.domain.steps import movement_steps

        ledger = self._ledger
        return PointsService(
            ledger,
            self.program,
            clock=self.clock,
            retry=self._platform.retry_policy,
            rules=self.rules,
            steps=movement_steps(
                points=lambda: self.points,
                counter=ledger.get_counter,
                rules=self.rules,
                tiers=self.tiers,
                referrals=self.referrals,
                segments_of=self.members.segments_of,
                challenges=self.challenges,
            ),
        )

    @cached_property
    def activities(self) -> ActivityService:
        from chalicelib.domain.activities import ActivityService

        return ActivityService(self.rules, self.points, clock=self.clock)

    @cached_property
    def rewards(self) -> RewardService:
        from chalicelib.domain.rewards import RewardService
        from chalicelib.persistence.rewards import RewardRepository

        return RewardService(
            RewardRepository(self.models),
            self.points,
            self._ledger,
            clock=self.clock,
            timezone=self.timezone,
            tier_of=self.tiers.tier_of,
            auditor=self.auditor,
        )

    @cached_property
    def subscriptions(self) -> SubscriptionService:
        """Paid membership: the plan catalog and its members' subscriptions."""
        from chalicelib.domain.subscriptions import SubscriptionService
        from chalicelib.persistence.plans import PlanCatalogRepository, SubscriptionRepository

        return SubscriptionService(
            SubscriptionRepository(self.models),
            PlanCatalogRepository(self.models),
            self._ledger,
            self.points,
            self.tiers,
            timezone=self.timezone,
            clock=self.clock,
            auditor=self.auditor,
        )

    @cached_property
    def partners(self) -> PartnerService:
        """Coalition partners: registry, partner movements through the ledger, settlement."""
        from chalicelib.domain.partners import PartnerService
        from chalicelib.persistence.partners import PartnerRepository

        return PartnerService(PartnerRepository(self.models), self.points, self.members, auditor=self.auditor)

    # --- scheduled jobs ------------------------------------------------------------------------------

    @cached_property
    def jobs(self) -> JobRunner:
        from chalicelib.domain.insights import CHECKPOINT as INSIGHTS_CHECKPOINT
        from chalicelib.domain.insights import InsightsFold
        from chalicelib.domain.jobs import JobName, JobRunner, settlement_job
        from chalicelib.domain.notifications import NotificationJob
        from chalicelib.domain.privacy import RetentionJob
        from chalicelib.domain.referrals import ReferralCompletionJob
        from chalicelib.domain.subscriptions import SubscriptionLapseJob
        from chalicelib.domain.tiers import TierReviewJob
        from chalicelib.persistence.checkpoints import FeedCheckpoint
        from chalicelib.persistence.jobs import JobRunRepository
        from chalicelib.persistence.notifications import NoticeRepository
        from chalicelib.persistence.plans import SubscriptionRepository

        ledger, points = self._ledger, self.points
        notify = NotificationJob(
            ledger=ledger,
            notices=NoticeRepository(self.models),
            members=self.members,
            points=points,
            program=self.program,
            timezone=self.timezone,
            clock=self.clock,
            consents=self.consents,
            welcome=self.welcome,
        )
        return JobRunner(
            self.tenant_id,
            JobRunRepository(self.models),
            {
                JobName.EXPIRE_POINTS: settlement_job(ledger, points),
                JobName.MATURE_PENDING: settlement_job(ledger, points),
                JobName.NOTIFY: notify,
                JobName.REVIEW_TIERS: TierReviewJob(ledger, self.tiers),
                JobName.COMPLETE_REFERRALS: ReferralCompletionJob(self.referrals, points),
                JobName.LAPSE_SUBSCRIPTIONS: SubscriptionLapseJob(
                    SubscriptionRepository(self.models), self.subscriptions
                ),
                JobName.ERASE_INACTIVE: RetentionJob(
                    self._privacy_store, ledger, self._member_store, self.privacy, self.program
                ),
                JobName.FOLD_INSIGHTS: InsightsFold(
                    self._insight_store,
                    FeedCheckpoint(self.models, INSIGHTS_CHECKPOINT),
                    open_feed=self._open_feed,
                    start=self.created_at,
                    timezone=self.timezone,
                    clock=self.clock,
                    tiers=self.tiers.in_force,
                ),
            },
            self.clock,
            auditor=self.auditor,
        )

    # --- the event feed and where it goes ------------------------------------------------------------

    def _open_feed(self, start: datetime) -> EventFeed:
        from chalicelib.domain.events import EventFeed
        from chalicelib.persistence.events import EventRepository

        return EventFeed(EventRepository(self.models), start=start, clock=self.clock)

    @cached_property
    def feed(self) -> EventFeed:
        return self._open_feed(self.created_at)

    @cached_property
    def webhooks(self) -> WebhookService:
        """Webhook endpoints, dispatch of the feed to them, drains."""
        from chalicelib.domain.event_payloads import event_payload
        from chalicelib.domain.webhooks import DeliveryPolicy, WebhookService
        from chalicelib.integrations.http import HttpTransport
        from chalicelib.integrations.queues import InProcessDeliveryQueue, SqsDeliveryQueue
        from chalicelib.persistence.webhooks import WebhookRepository

        platform, settings = self._platform, self._platform.settings
        queue: DeliveryQueue = (
            SqsDeliveryQueue(self.tenant_id, settings.deliveries_queue_url, platform.sqs)
            if settings.deliveries_queue_url
            else InProcessDeliveryQueue()
        )
        return WebhookService(
            self.tenant_id,
            WebhookRepository(self.models),
            sealer=platform.webhook_sealer,
            guard=platform.webhook_url_policy,
            transport=HttpTransport(
                platform.webhook_url_policy,
                connect_timeout_seconds=settings.webhook_connect_timeout_seconds,
                read_timeout_seconds=settings.webhook_read_timeout_seconds,
                max_response_bytes=settings.webhook_max_response_bytes,
                deadline_seconds=settings.webhook_deadline_seconds,
            ),
            queue=queue,
            open_feed=self._open_feed,
            render=event_payload,
            policy=DeliveryPolicy(
                retry_window=timedelta(seconds=settings.webhook_retry_window_seconds),
                backoff_base=timedelta(seconds=settings.webhook_backoff_base_seconds),
                backoff_cap=timedelta(seconds=settings.webhook_backoff_cap_seconds),
                disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
                secret_overlap=timedelta(seconds=settings.webhook_secret_overlap_seconds),
            ),
            clock=self.clock,
            auditor=self.auditor,
        )

    @cached_property
    def bus_publisher(self) -> BusPublisher | None:
        """The publisher of the feed to the event bus; None when no bus is configured."""
        from chalicelib.domain.bus import CHECKPOINT, BusPublisher
        from chalicelib.domain.event_payloads import event_payload
        from chalicelib.persistence.checkpoints import FeedCheckpoint

        bus = self._platform.event_bus
        if bus is None:
            return None
        return BusPublisher(
            self.tenant_id,
            FeedCheckpoint(self.models, CHECKPOINT),
            bus,
            open_feed=self._open_feed,
            render=event_payload,
            clock=self.clock,
        )

    # --- commerce integrations -----------------------------------------------------------------------

    @cached_property
    def order_intake(self) -> OrderIntakeService:
        """Order events -> ledger movements, idempotent per event."""
        from chalicelib.domain.commerce import OrderIntakeService
        from chalicelib.persistence.commerce import OrderEventRepository

        return OrderIntakeService(OrderEventRepository(self.models), self.points, self._ledger, self.members)

    @cached_property
    def shopify(self) -> ShopifyService:
        """Shopify integrations (shared secrets sealed like webhook secrets)."""
        from chalicelib.domain.shopify import ShopifyService
        from chalicelib.persistence.commerce import ShopifyRepository

        platform = self._platform
        return ShopifyService(
            self.tenant_id,
            ShopifyRepository(self.models),
            platform.webhook_sealer,
            overlap=timedelta(seconds=platform.settings.webhook_secret_overlap_seconds),
            auditor=self.auditor,
        )

    # --- bulk imports and exports --------------------------------------------------------------------

    @cached_property
    def imports(self) -> ImportService:
        """Bulk imports. Deployed, submitting one enqueues its run on the jobs queue; locally (no
        queue) the ``resume-imports`` schedule runs it in-process."""
        from chalicelib.domain.imports import ImportService
        from chalicelib.integrations.queues import SqsImportQueue
        from chalicelib.persistence.imports import ImportRepository

        platform, settings = self._platform, self._platform.settings
        queue = (
            SqsImportQueue(self.tenant_id, settings.jobs_queue_url, platform.sqs) if settings.jobs_queue_url else None
        )
        return ImportService(
            ImportRepository(self.models),
            self.program,
            self.tiers,
            queue=queue,
            timezone=self.timezone,
            clock=self.clock,
            workers=settings.import_row_workers,
            auditor=self.auditor,
            welcome=self._welcome_imported,
        )

    @cached_property
    def exports(self) -> ExportService:
        """Members with balances, ledger entries of a period."""
        from chalicelib.domain.exports import ExportService
        from chalicelib.persistence.exports import ExportRepository

        return ExportService(
            self._member_store, self._ledger, ExportRepository(self.models), self.tiers, clock=self.clock
        )

    # --- challenges and badges -----------------------------------------------------------------------

    @cached_property
    def challenges(self) -> ChallengeService:
        """Challenges of the brand, members' progress and badges (moved by the ledger's steps)."""
        from chalicelib.domain.challenges import ChallengeService
        from chalicelib.persistence.challenges import ChallengeRepository

        return ChallengeService(
            ChallengeRepository(self.models),
            self.program,
            exists=self.members.get,
            tier_of=self.tiers.tier_of,
            segments_of=self.members.segments_of,
            clock=self.clock,
            auditor=self.auditor,
        )

    # --- transfers between members -------------------------------------------------------------------

    @cached_property
    def transfers(self) -> TransferService:
        """Points moved between two members in one transaction, and their reversal."""
        from chalicelib.domain.transfers import TransferService
        from chalicelib.persistence.transfers import TransferRepository

        return TransferService(
            self._ledger,
            TransferRepository(self.models),
            self.program,
            self.points,
            clock=self.clock,
            retry=self._platform.retry_policy,
            auditor=self.auditor,
        )

    # --- the audit trail and consent history -----------------------------------------------------------

    @cached_property
    def audit(self) -> AuditService:
        """The tenant's audit trail (each entry is written by the store of the change it records)."""
        from chalicelib.domain.audit import AuditService
        from chalicelib.persistence.audit import AuditRepository

        return AuditService(AuditRepository(self.models.audit))

    @cached_property
    def consents(self) -> ConsentService:
        """Members' consent histories (each change is written by the member store)."""
        from chalicelib.domain.consents import ConsentService
        from chalicelib.persistence.consents import ConsentRepository

        return ConsentService(ConsentRepository(self.models))

    # --- privacy: export, erasure, retention ---------------------------------------------------------

    @cached_property
    def _privacy_store(self) -> PrivacyRepository:
        from chalicelib.persistence.privacy import PrivacyRepository

        return PrivacyRepository(self.models)

    @cached_property
    def privacy(self) -> PrivacyService:
        """A member's data on request, erasure that keeps the books (chalicelib.domain.privacy)."""
        from chalicelib.domain.privacy import PrivacyService
        from chalicelib.persistence.referrals import ReferralRepository

        referrals, rewards, subscriptions = ReferralRepository(self.models), self.rewards, self.subscriptions
        return PrivacyService(
            self._privacy_store,
            self._member_store,
            self._ledger,
            self.program,
            consent_history=lambda member_id, limit, cursor: self.consents.history(
                member_id, limit=limit, cursor=cursor
            ),
            coupons=lambda member_id, limit, cursor: rewards.store.member_coupons(
                member_id, limit=limit, cursor=cursor
            ),
            referral_of=referrals.get,
            referrals=lambda member_id, limit, cursor: referrals.list_for(member_id, limit=limit, cursor=cursor),
            subscriptions=lambda member_id, limit, cursor: subscriptions.list(member_id, limit=limit, cursor=cursor),
            challenges=self.challenges.for_member,
            badges=self.challenges.badges,
            settle_due=self.points.settle_due,
            clock=self.clock,
            auditor=self.auditor,
            audit=self.audit.store,
            leave_household=self.households.remove_erased,
            household_of=self.households.membership_of,
        )

    # --- program insights ----------------------------------------------------------------------------

    @cached_property
    def _insight_store(self) -> InsightRepository:
        from chalicelib.persistence.insights import InsightRepository

        return InsightRepository(self.models, self._ledger)

    @cached_property
    def insights(self) -> InsightsService:
        """The program's figures, read from the aggregate rows."""
        from chalicelib.domain.insights import InsightsService

        return InsightsService(
            self._insight_store,
            timezone=self.timezone,
            point_value=lambda: self.program.get().point_value,
            reward_names=self._reward_names,
            program=self.program.get,
            rules=self.rules.all,
            tiers=self.tiers.versions,
            plans=self.subscriptions.catalog,
            clock=self.clock,
        )

    def _reward_names(self, reward_ids: list[str]) -> dict[str, str]:
        names = {}
        for reward_id in reward_ids:
            reward = self.rewards.store.get(reward_id)
            if reward is not None:
                names[reward_id] = reward.name
        return names

    # --- member access ----------------------------------------------------------------------------

    @cached_property
    def member_access(self) -> MemberAccessService:
        """Member tokens (signing key sealed like webhook secrets) and the member API's origins."""
        from chalicelib.domain.member_access import MemberAccessService
        from chalicelib.persistence.member_access import MemberAccessRepository

        return MemberAccessService(
            self.tenant_id,
            MemberAccessRepository(self.models),
            self._platform.webhook_sealer,
            clock=self.clock,
            auditor=self.auditor,
        )

    # --- the welcome --------------------------------------------------------------------------------

    @cached_property
    def welcome(self) -> WelcomeService:
        """The sign-up bonus on enrolment by any path; ``member.welcome`` by the notify job."""
        from chalicelib.domain.welcome import WelcomeService
        from chalicelib.persistence.notifications import NoticeRepository

        return WelcomeService(
            self.program,
            self.points,
            self.rewards,
            self.members,
            NoticeRepository(self.models),
            timezone=self.timezone,
            clock=self.clock,
        )

    def _welcome(self, member_id: str) -> None:
        _credit_signup_bonus(self.welcome, member_id, imported=False)

    def _welcome_imported(self, member_id: str) -> None:
        _credit_signup_bonus(self.welcome, member_id, imported=True)

    # --- households: pooled points ------------------------------------------------------------------

    @cached_property
    def households(self) -> HouseholdService:
        """Households whose members pool their points, and redemptions from the pool."""
        from chalicelib.domain.households import HouseholdService
        from chalicelib.persistence.households import HouseholdRepository

        return HouseholdService(
            HouseholdRepository(self.models),
            self._ledger,
            self.program,
            self.points,
            clock=self.clock,
            retry=self._platform.retry_policy,
        )


class PlatformServices:
    def __init__(self, settings: Settings) -> None:
        from chalicelib.persistence.factory import ConnectionConfig

        self.settings = settings
        self.connection = ConnectionConfig.from_settings(settings)

    @cached_property
    def control(self) -> ControlModels:
        """The control table's models: the tenants' registry and their API keys."""
        from chalicelib.persistence.factory import control_models

        return control_models(self.settings.control_table_name, self.connection)

    @cached_property
    def tenant_store(self) -> TenantRepository:
        from chalicelib.persistence.control import TenantRepository

        return TenantRepository(self.control)

    @cached_property
    def api_key_store(self) -> ApiKeyRepository:
        from chalicelib.persistence.control import ApiKeyRepository

        return ApiKeyRepository(self.control, audit_model_of=lambda tenant_id: self._tenant_models(tenant_id).audit)

    @cached_property
    def provisioner(self) -> TableProvisioner:
        from chalicelib.persistence.provisioning import TableProvisioner

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
        from chalicelib.persistence.provisioning import InProcessProvisioningQueue, SqsProvisioningQueue

        if self.settings.provisioning_queue_url:
            return SqsProvisioningQueue(self.settings.provisioning_queue_url, lambda: self.sqs)
        if self.settings.provisioning_async:
            return InProcessProvisioningQueue()
        return None

    @cached_property
    def authenticator(self) -> Authenticator:
        from chalicelib.domain.authentication import Authenticator

        return Authenticator(
            self.api_key_store,
            self.tenant_store,
            self._operator_key_sha256(),
            member_access=lambda tenant: self.for_tenant_record(tenant).member_access,
        )

    @cached_property
    def tenants(self) -> TenantService:
        from chalicelib.domain.tenants import TenantService

        return TenantService(self.tenant_store, self.api_key_store, self.provisioner, queue=self.provisioning_queue)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        from chalicelib.domain.api_keys import ApiKeyService

        return ApiKeyService(self.api_key_store)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        from chalicelib.domain.ledger import RetryPolicy

        return RetryPolicy(
            max_balance_races=self.settings.conflict_retry_attempts,
            backoff_base_seconds=self.settings.conflict_backoff_base_seconds,
            backoff_cap_seconds=self.settings.conflict_backoff_cap_seconds,
        )

    # --- one tenant's services -----------------------------------------------------------------------

    def for_tenant(self, context: TenantContext) -> TenantServices:
        """The services of the request's tenant (its time zone decides local dates, its clock "now"),
        recording its changes as made by the request's key."""
        from chalicelib.domain.audit import Actor

        return self.for_tenant_record(context.tenant, actor=Actor.of(context))

    def for_registered_tenant(self, tenant_id: str, *, clock: Clock | None = None) -> TenantServices:
        """Services of a tenant read from the registry (its time zone decides local dates, its clock
        "now" unless ``clock`` is given)."""
        from chalicelib.domain.errors import NotFound

        tenant = self.tenant_store.get(tenant_id, consistent=False)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return self.for_tenant_record(tenant, clock=clock)

    def for_tenant_record(
        self, tenant: Tenant, *, clock: Clock | None = None, actor: Actor | None = None
    ) -> TenantServices:
        """Services of ``tenant`` as registered: real time, or a sandbox brand's test clock."""
        return self.for_tenant_id(
            tenant.tenant_id,
            clock=clock or tenant.clock,
            created_at=tenant.created_at,
            timezone=tenant.timezone,
            actor=actor,
        )

    def for_tenant_id(
        self,
        tenant_id: str,
        *,
        clock: Clock = utc_now,
        created_at: datetime = FEED_EPOCH,
        timezone: str = "UTC",
        actor: Actor | None = None,
    ) -> TenantServices:
        return TenantServices(self, tenant_id, clock=clock, created_at=created_at, timezone=timezone, actor=actor)

    # --- AWS clients and what every tenant's services share ------------------------------------------

    @cached_property
    def sqs(self) -> Any:
        """The SQS client for job fan-out and provisioning (built on first use; only deployed stages need it)."""
        import boto3

        return boto3.client("sqs", region_name=self.settings.aws_region)

    @cached_property
    def webhook_sealer(self) -> KmsSealer:
        """KMS sealing of webhook secrets; one per container, so opened secrets are cached."""
        import boto3

        from chalicelib.integrations.kms import KmsSealer

        client = boto3.client("kms", region_name=self.settings.aws_region, endpoint_url=self.settings.kms_endpoint_url)
        return KmsSealer(
            client, key_id=self.settings.webhook_kms_key_id, local_alias=self.settings.webhook_local_kms_alias
        )

    @cached_property
    def webhook_url_policy(self) -> UrlPolicy:
        from chalicelib.integrations.ssrf import UrlPolicy

        return UrlPolicy(local_mode=self.settings.webhooks_local)

    @cached_property
    def event_bus(self) -> EventBridgeBus | None:
        """The EventBridge bus every feed event also goes to; None when no bus is configured."""
        from chalicelib.integrations.eventbridge import EventBridgeBus

        if not self.settings.event_bus_name:
            return None
        import boto3

        client = boto3.client(
            "events", region_name=self.settings.aws_region, endpoint_url=self.settings.events_endpoint
        )
        return EventBridgeBus(client, bus_name=self.settings.event_bus_name, source=self.settings.event_bus_source)

    def _operator_key_sha256(self) -> str | None:
        local = self.settings.local_operator_key_sha256()
        if local or not self.settings.operator_key_ssm_parameter:
            return local
        import boto3  # only deployed stages that keep the digest in SSM pay for this import

        ssm = boto3.client("ssm", region_name=self.settings.aws_region)
        parameter = ssm.get_parameter(Name=self.settings.operator_key_ssm_parameter, WithDecryption=True)
        return str(parameter["Parameter"]["Value"]).strip().lower()

    # --- the audit trail -----------------------------------------------------------------------------

    @cached_property
    def operator_audit(self) -> AuditService:
        """The operator's audit trail (tenants created, suspended, resumed), in the control table."""
        from chalicelib.domain.audit import AuditService
        from chalicelib.persistence.audit import AuditRepository

        return AuditService(AuditRepository(self.control.audit))

    def _tenant_models(self, tenant_id: str) -> TenantModels:
        """A tenant's table-bound models (the audit entries of its API keys' changes go there)."""
        from chalicelib.persistence.factory import tenant_models

        return tenant_models(tenant_id, self.settings.tenant_table_name(tenant_id), self.connection)


def _referral_deferred(referee_id: str, error: Exception) -> None:
    """A referral's completion failed after its qualifying order committed: the order stands, and
    the complete-referrals job (or a replay of the order's Idempotency-Key) finishes it."""
    logger.warning("referral completion deferred", extra={"referee_id": referee_id, "error": type(error).__name__})


def _credit_signup_bonus(welcome: WelcomeService, member_id: str, *, imported: bool) -> None:
    """The sign-up bonus of a member just enrolled. The enrolment stands whatever happens here: a
    failure is logged, and the notify job's welcome credits it (the same key) before announcing it."""
    try:
        welcome.credit_signup_bonus(member_id, imported=imported)
    except Exception as error:
        logger.warning("sign-up bonus deferred", extra={"member_id": member_id, "error": type(error).__name__})


@lru_cache(maxsize=1)
def platform() -> PlatformServices:
    from chalicelib.settings import get_settings

    return PlatformServices(get_settings())


def reset_platform() -> None:
    """Drop every cached service, setting and bound model (tests and local tooling)."""
    from chalicelib.persistence.factory import clear_caches

    platform.cache_clear()
    from chalicelib.settings import reset_settings

    reset_settings()
    clear_caches()
