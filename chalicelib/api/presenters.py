"""Domain objects -> response schemas."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from chalicelib.api import schemas
from chalicelib.domain.api_keys import ApiKey, IssuedApiKey
from chalicelib.domain.clock import isoformat
from chalicelib.domain.commerce import OrderEventResult, Outcome
from chalicelib.domain.csv_cells import escape_cell
from chalicelib.domain.event_payloads import event_data
from chalicelib.domain.events import Event
from chalicelib.domain.exports import MemberRow
from chalicelib.domain.imports import ImportJob, RowIssue, RowOutcome
from chalicelib.domain.jobs import JobRun
from chalicelib.domain.ledger import BalanceView, EarnPreview, LedgerEntry
from chalicelib.domain.members import Member
from chalicelib.domain.partners import Partner, PartnerSettlement
from chalicelib.domain.program import Program
from chalicelib.domain.referrals import Referral, ReferralProgram
from chalicelib.domain.rewards import Coupon, Eligibility, Redemption, Reward, RewardStats
from chalicelib.domain.rules import WEEKDAYS, Earning, EarningRule, Share
from chalicelib.domain.shopify import IssuedIntegration, ShopifyIntegration
from chalicelib.domain.tenants import Tenant
from chalicelib.domain.tiers import Metric, TierProgram, TierStatus
from chalicelib.domain.webhooks import Delivery, IssuedWebhook, SigningSecret, Webhook, WebhookStatus

if TYPE_CHECKING:
    from chalicelib.domain.plans import PlanCatalog, Recording, Subscription
    from chalicelib.domain.subscriptions import PlanStatus


def tenant(value: Tenant) -> schemas.TenantOut:
    return schemas.TenantOut(
        tenant_id=value.tenant_id,
        name=value.name,
        currency=value.currency,
        timezone=value.timezone,
        status=value.status,
        created_at=value.created_at,
        updated_at=value.updated_at,
        provisioning_failure=(
            schemas.ProvisioningFailureOut(attempts=failure.attempts, error=failure.error, at=failure.at)
            if (failure := value.provisioning_failure)
            else None
        ),
    )


def api_key(value: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=value.key_id,
        name=value.name,
        scopes=sorted(value.scopes),
        created_at=value.created_at,
        revoked_at=value.revoked_at,
        partner_id=value.partner_id,
    )


def issued_api_key(value: IssuedApiKey) -> schemas.CreatedApiKey:
    return schemas.CreatedApiKey(**api_key(value.record).model_dump(), secret=value.secret)


def program(value: Program) -> schemas.ProgramOut:
    expiry = value.expiry
    return schemas.ProgramOut(
        points_per_currency_unit=format(value.points_per_currency_unit.normalize(), "f"),
        rounding=value.rounding,
        expiry=schemas.ExpiryPolicyOut(
            kind=expiry.kind,
            days=expiry.days,
            months=expiry.months,
            period=expiry.period,
            periods_after=expiry.periods_after,
        ),
        pending_days=value.pending_days,
        reversal_clawback=value.reversal_clawback,
        expiry_warning_days=value.expiry_warning_days,
        birthday_bonus=value.birthday_bonus,
        earn_on_shipping=value.earn_on_shipping,
        earn_on_tax=value.earn_on_tax,
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
        referral_code=value.referral_code,
        card_code=value.card_code,
        referred_by=value.referred_by,
        segments=sorted(value.segments),
    )


def balance(view: BalanceView, tiers: TierStatus | None = None, plan: PlanStatus | None = None) -> schemas.BalanceOut:
    """``plan``: the paid plan in force (GET balance); the member's tier is then the effective one."""
    stored = view.balance
    expiring = schemas.ExpiringSoon(points=view.expiring_points, at=view.expiring_at) if view.expiring_at else None
    return schemas.BalanceOut(
        member_id=stored.member_id,
        available=view.available,
        pending=view.pending,
        expiring_soon=expiring,
        lifetime_earned=stored.lifetime_earned,
        lifetime_redeemed=stored.lifetime_redeemed,
        lifetime_adjusted=stored.lifetime_adjusted,
        lifetime_expired=stored.lifetime_expired,
        lifetime_reversed=stored.lifetime_reversed,
        updated_at=stored.updated_at,
        tier=plan.effective_tier if plan is not None else tiers.state.tier if tiers is not None else stored.tier,
        tier_status=tier_status(tiers) if tiers is not None else None,
        plan=plan_status(plan) if plan is not None else None,
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
        expires_at=entry.expires_at,
        pending_change=entry.pending_change,
        matures_at=entry.matures_at,
        breakdown=shares(entry.breakdown),
    )


def shares(breakdown: tuple[Share, ...]) -> list[schemas.ShareOut]:
    return [
        schemas.ShareOut(source=share.source, name=share.name, points=share.points, rule_id=share.rule_id)
        for share in breakdown
    ]


def earning(value: Earning | EarnPreview) -> schemas.PreviewOut:
    return schemas.PreviewOut(
        points=value.points,
        breakdown=shares(value.breakdown),
        tier=value.tier if isinstance(value, EarnPreview) else None,
    )


def rule(value: EarningRule, now: datetime) -> schemas.RuleOut:
    status: Literal["ended", "scheduled", "active"] = (
        "ended" if value.ends_at and value.ends_at <= now else "scheduled" if not value.in_force(now) else "active"
    )
    return schemas.RuleOut(
        id=value.rule_id,
        name=value.name,
        kind=value.kind,
        factor=format(value.factor, "f") if value.factor is not None else None,
        points=value.points,
        skus=sorted(value.skus),
        categories=sorted(value.categories),
        weekdays=sorted(value.weekdays, key=WEEKDAYS.index),
        min_order_total=format(value.min_order_total, "f") if value.min_order_total is not None else None,
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        every=value.every,
        at=value.at,
        activity=value.activity,
        limit=value.limit,
        per=value.per,
        created_at=value.created_at,
        status=status,
        tiers=sorted(value.tiers),
        cap=value.cap,
        segments=sorted(value.segments),
    )


def movement(entry: LedgerEntry) -> schemas.MovementOut:
    """The response of a point movement, rebuilt identically from the stored entry on replay."""
    return schemas.MovementOut(transaction=transaction(entry), balance=balance(entry.view_after))


def job_run(run: JobRun) -> schemas.JobRunOut:
    return schemas.JobRunOut(
        id=run.run_id,
        job=run.job,
        as_of=run.as_of,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        counts=run.counts,
        error=run.error,
    )


def reversal(entry: LedgerEntry) -> schemas.ReversalOut:
    requested = entry.requested or 0
    taken = -entry.points
    outcome: Literal["stopped_at_zero", "clawed_back", "full"] = (
        "stopped_at_zero" if taken < requested else "clawed_back" if entry.balance_after.available < 0 else "full"
    )
    return schemas.ReversalOut(
        transaction=transaction(entry),
        balance=balance(entry.view_after),
        reversal=schemas.ReversalSummary(
            requested=requested,
            reversed=taken,
            from_pending=-entry.pending_change,
            from_available=taken + entry.pending_change,
            outcome=outcome,
        ),
    )


def event(value: Event) -> schemas.EventOut:
    return schemas.EventOut(
        id=value.event_id,
        type=value.type,
        member_id=value.member_id,
        created_at=value.created_at,
        data=event_data(value),
    )


def reward(value: Reward, stats: RewardStats, now: datetime) -> schemas.RewardOut:
    status: Literal["archived", "ended", "active", "scheduled"]
    if value.archived:
        status = "archived"
    elif value.ends_at and value.ends_at <= now:
        status = "ended"
    else:
        status = "active" if value.in_window(now) else "scheduled"
    return schemas.RewardOut(
        id=value.reward_id,
        name=value.name,
        type=value.type,
        points_cost=value.points_cost,
        description=value.description,
        amount=format(value.amount, "f") if value.amount is not None else None,
        percent=value.percent,
        sku=value.sku,
        cause=value.cause,
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        stock=value.stock,
        per_member_limit=value.per_member_limit,
        limit_period=value.limit_period,
        tiers=sorted(value.tiers),
        valid_days=value.valid_days,
        codes=value.codes,
        status=status,
        issued=stats.issued,
        remaining_stock=stats.remaining,
        cause_total_points=stats.cause_total,
        created_at=value.created_at,
        updated_at=value.updated_at,
        archived_at=value.archived_at,
    )


def coupon(value: Coupon, now: datetime) -> schemas.CouponOut:
    assert value.member_id is not None and value.issued_at is not None, "an issued coupon"
    return schemas.CouponOut(
        code=value.code,
        reward_id=value.reward_id,
        member_id=value.member_id,
        status=value.status_at(now),
        points=value.points,
        issued_at=value.issued_at,
        expires_at=value.expires_at,
        used_at=value.used_at,
        used_reference=value.used_reference,
        cancelled_at=value.cancelled_at,
    )


def redemption(value: Redemption, now: datetime) -> schemas.RedemptionOut:
    """A redemption or a cancellation: its movement, the balance right after it, the coupon now."""
    return schemas.RedemptionOut(
        transaction=transaction(value.entry), balance=balance(value.entry.view_after), coupon=coupon(value.coupon, now)
    )


def member_reward(value: Eligibility, stats: RewardStats, now: datetime) -> schemas.MemberRewardOut:
    return schemas.MemberRewardOut(
        reward=reward(value.reward, stats, now),
        redeemable=value.redeemable,
        locked_because=list(value.reasons),
        points_short=value.points_short,
        remaining_for_member=value.remaining_for_member,
    )


# --- tiers -------------------------------------------------------------------------------------


def _figure(value: Decimal, metric: Metric) -> int | str:
    """Points and orders are whole numbers; spend is an amount (a decimal string)."""
    return format(value, "f") if metric is Metric.SPEND else int(value)


def tier_program(value: TierProgram, in_force: TierProgram | None, now: datetime) -> schemas.TierProgramOut:
    status: Literal["scheduled", "active", "superseded"]
    if value.effective_from > now:
        status = "scheduled"
    else:
        status = "active" if in_force is not None and in_force.version_id == value.version_id else "superseded"
    return schemas.TierProgramOut(
        id=value.version_id,
        metric=value.metric.value,
        window=schemas.TierWindowOut(kind=value.window.value, months=value.months),
        grace_periods=value.grace_periods,
        tiers=[
            schemas.TierOut(
                name=tier.name,
                threshold=format(tier.threshold, "f"),
                multiplier=format(tier.multiplier, "f"),
                perks=list(tier.perks),
            )
            for tier in value.tiers
        ],
        effective_from=value.effective_from,
        created_at=value.created_at,
        status=status,
    )


def tier_status(value: TierStatus) -> schemas.TierStatusOut:
    tier, metric = value.tier, value.program.metric
    following = value.progress
    return schemas.TierStatusOut(
        tier=value.state.tier,
        since=value.state.since,
        expires_at=value.state.expires_at,
        multiplier=format(tier.multiplier, "f") if tier else None,
        perks=list(tier.perks) if tier else [],
        metric=metric.value,
        qualifying=_figure(value.total, metric),
        progress=schemas.TierProgressOut(
            next_tier=following.next_tier,
            remaining=_figure(following.remaining, metric),
            metric=metric.value,
        )
        if following
        else None,
    )


# --- paid membership ------------------------------------------------------------------------------


def plan_status(value: PlanStatus) -> schemas.PlanStatusOut:
    grant, plan = value.grant, value.plan
    return schemas.PlanStatusOut(
        subscription_id=grant.subscription_id,
        plan_id=grant.plan_id,
        name=plan.name if plan is not None else None,
        tier=grant.tier,
        multiplier=format(grant.multiplier, "f"),
        perks=list(plan.perks) if plan is not None else [],
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
    )


def plans(value: PlanCatalog) -> schemas.PlanList:
    return schemas.PlanList(
        data=[
            schemas.PlanOut(
                plan_id=plan.plan_id,
                name=plan.name,
                tier=plan.tier,
                multiplier=format(plan.multiplier, "f"),
                perks=list(plan.perks),
                join_bonus=plan.join_bonus,
            )
            for plan in value.plans
        ],
        updated_at=value.updated_at,
    )


def subscription(value: Subscription, now: datetime) -> schemas.SubscriptionOut:
    """As it stands at ``now``: past its end it reads as lapsed, whether or not the job has run."""
    status = value.status_at(now)
    lapsed_at = value.lapsed_at or (value.ends_at if status == "lapsed" else None)
    return schemas.SubscriptionOut(
        id=value.subscription_id,
        member_id=value.member_id,
        plan_id=value.plan_id,
        status=status.value,
        tier=value.tier,
        multiplier=format(value.multiplier, "f"),
        starts_at=value.starts_at,
        ends_at=value.ends_at,
        cancelled_at=value.cancelled_at,
        lapsed_at=lapsed_at,
        join_bonus=value.join_bonus,
        periods=[
            schemas.PeriodOut(
                reference=period.reference,
                period_start=period.start,
                period_end=period.end,
                recorded_at=period.recorded_at,
            )
            for period in value.periods
        ],
        period_count=value.period_count,
        created_at=value.created_at,
        updated_at=value.updated_at,
    )


def recording(value: Recording) -> schemas.SubscriptionRecordOut:
    """The answer to a recording, as it was then (a replay answers the same)."""
    bonus = (
        schemas.JoinBonusOut(points=value.bonus_points, transaction_id=value.bonus_transaction_id)
        if value.bonus_points
        else None
    )
    return schemas.SubscriptionRecordOut(
        outcome=value.outcome.value,
        subscription=subscription(value.subscription, value.recorded_at),
        join_bonus=bonus,
    )


# --- bulk imports and exports ----------------------------------------------------------------------


def uploaded_codes(reward_id: str, added: int) -> schemas.UploadCodesOut:
    return schemas.UploadCodesOut(reward_id=reward_id, added=added)


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def partner(value: Partner) -> schemas.PartnerOut:
    return schemas.PartnerOut(
        partner_id=value.partner_id,
        name=value.name,
        earn_rate=_rate(value.earn_rate),
        redeem_rate=_rate(value.redeem_rate),
        created_at=value.created_at,
    )


def settlement(value: PartnerSettlement, currency: str) -> schemas.SettlementOut:
    return schemas.SettlementOut(
        partner_id=value.partner.partner_id,
        currency=currency,
        from_date=value.from_date,
        to_date=value.to_date,
        earn_rate=_rate(value.partner.earn_rate),
        redeem_rate=_rate(value.partner.redeem_rate),
        issued_points=value.issued_points,
        redeemed_points=value.redeemed_points,
        issued_value=format(value.issued_value, "f"),
        redeemed_value=format(value.redeemed_value, "f"),
        reversed_points=value.reversed_points,
        reversed_value=format(value.reversed_value, "f"),
        net_issued_points=value.net_issued_points,
        days=[
            schemas.SettlementDay(
                day=d.day,
                issued_points=d.issued_points,
                redeemed_points=d.redeemed_points,
                reversed_points=d.reversed_points,
            )
            for d in value.days
        ],
    )


def referral_program(
    value: ReferralProgram, in_force: ReferralProgram | None, now: datetime
) -> schemas.ReferralProgramOut:
    status: Literal["scheduled", "active", "superseded"]
    if value.effective_from > now:
        status = "scheduled"
    else:
        status = "active" if in_force is not None and in_force.version_id == value.version_id else "superseded"
    return schemas.ReferralProgramOut(
        id=value.version_id,
        enabled=value.enabled,
        referrer_points=value.referrer_points,
        referee_points=value.referee_points,
        min_order_total=format(value.min_order_total, "f") if value.min_order_total is not None else None,
        cap=schemas.ReferralCapOut(limit=value.cap.limit, per=value.cap.per.value) if value.cap else None,
        referee_rewarded_when_capped=value.referee_rewarded_when_capped,
        effective_from=value.effective_from,
        created_at=value.created_at,
        status=status,
    )


def referral(value: Referral) -> schemas.ReferralOut:
    return schemas.ReferralOut(
        referee_id=value.referee_id,
        referrer_id=value.referrer_id,
        status=value.status.value,
        enrolled_at=value.created_at,
        qualified_at=value.qualified_at,
        completed_at=value.completed_at,
        order_id=value.order_id,
        referrer_points=value.referrer_points,
        referee_points=value.referee_points,
    )


def signing_secrets(secrets: Iterable[SigningSecret]) -> list[schemas.WebhookSecretOut]:
    """A webhook's or a Shopify integration's secrets: when each was made and expires, never the secret."""
    return [schemas.WebhookSecretOut(created_at=s.created_at, expires_at=s.expires_at) for s in secrets]


class _WebhookFields(TypedDict):
    """What WebhookOut and CreatedWebhook share."""

    id: str
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    secrets: list[schemas.WebhookSecretOut]
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None
    retry_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


def _webhook_fields(value: Webhook) -> _WebhookFields:
    return {
        "id": value.webhook_id,
        "url": value.url,
        "events": sorted(value.events),
        "description": value.description,
        "status": value.status,
        "secrets": signing_secrets(value.secrets),
        "created_at": value.created_at,
        "updated_at": value.updated_at,
        "failing_since": value.failing_since,
        "retry_at": value.retry_at,
        "disabled_at": value.disabled_at,
        "disabled_reason": value.disabled_reason,
    }


def webhook(value: Webhook) -> schemas.WebhookOut:
    return schemas.WebhookOut(**_webhook_fields(value))


def issued_webhook(value: IssuedWebhook) -> schemas.CreatedWebhook:
    return schemas.CreatedWebhook(**_webhook_fields(value.webhook), secret=value.secret)


def delivery(value: Delivery) -> schemas.DeliveryOut:
    last = value.last_attempt
    return schemas.DeliveryOut(
        id=value.delivery_id,
        webhook_id=value.webhook_id,
        event_id=value.event_id,
        event_type=value.event_type,
        member_id=value.member_id,
        status=value.status,
        attempts=value.attempts,
        response_code=last.status_code if last else None,
        latency_ms=last.latency_ms if last else None,
        next_attempt_at=value.next_attempt_at,
        created_at=value.created_at,
        updated_at=value.updated_at,
        succeeded_at=value.succeeded_at,
        history=[
            schemas.DeliveryAttemptOut(at=a.at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error)
            for a in value.history
        ],
    )


def _order_event_points(result: OrderEventResult) -> int:
    """The signed change of the member's points the event made (an order already earned: none)."""
    if result.entry is None or result.record.outcome is Outcome.ALREADY_EARNED:
        return 0
    return result.entry.points


def order_event(result: OrderEventResult) -> schemas.OrderEventOut:
    record, entry = result.record, result.entry
    return schemas.OrderEventOut(
        event_id=record.event_id,
        order_id=record.order_id,
        type=record.type.value,
        outcome=record.outcome.value,
        member_id=record.member_id,
        points=_order_event_points(result),
        transaction=transaction(entry) if entry else None,
        replayed=result.replayed,
    )


def shopify_webhook(topic: str, result: OrderEventResult | None) -> schemas.ShopifyWebhookOut:
    """The answer to a Shopify webhook: what its order event did, or ``ignored`` (no result:
    a topic that is not an order event)."""
    if result is None:
        return schemas.ShopifyWebhookOut(
            topic=topic,
            outcome="ignored",
            order_id=None,
            member_id=None,
            points=0,
            transaction_id=None,
            replayed=False,
        )
    return schemas.ShopifyWebhookOut(
        topic=topic,
        outcome=result.record.outcome.value,
        order_id=result.record.order_id,
        member_id=result.record.member_id,
        points=_order_event_points(result),
        transaction_id=result.entry.transaction_id if result.entry else None,
        replayed=result.replayed,
    )


class _IntegrationFields(TypedDict):
    """What ShopifyIntegrationOut and CreatedShopifyIntegration share."""

    id: str
    webhook_path: str
    description: str | None
    auto_enrol: bool
    secrets: list[schemas.WebhookSecretOut]
    created_at: datetime
    updated_at: datetime


def _shopify_integration_fields(value: ShopifyIntegration) -> _IntegrationFields:
    return {
        "id": value.integration_id,
        "webhook_path": f"/v1/integrations/shopify/{value.integration_id}/webhooks",
        "description": value.description,
        "auto_enrol": value.auto_enrol,
        "secrets": signing_secrets(value.secrets),
        "created_at": value.created_at,
        "updated_at": value.updated_at,
    }


def shopify_integration(value: ShopifyIntegration) -> schemas.ShopifyIntegrationOut:
    return schemas.ShopifyIntegrationOut(**_shopify_integration_fields(value))


def issued_shopify_integration(value: IssuedIntegration) -> schemas.CreatedShopifyIntegration:
    return schemas.CreatedShopifyIntegration(**_shopify_integration_fields(value.integration), secret=value.secret)


#: A row issue is a row not imported: failed or skipped.
_ISSUE_OUTCOMES: dict[RowOutcome, Literal["failed", "skipped"]] = {
    RowOutcome.FAILED: "failed",
    RowOutcome.SKIPPED: "skipped",
}


def import_issue(value: RowIssue) -> schemas.ImportRowIssueOut:
    return schemas.ImportRowIssueOut(
        row=value.row,
        external_id=value.external_id,
        outcome=_ISSUE_OUTCOMES[value.outcome],
        code=value.code,
        message=value.message,
        details=value.details,
    )


def _import_fields(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.import_id,
        "status": str(job.status),
        "filename": job.filename,
        "columns": list(job.columns),
        "counts": schemas.ImportCounts(
            total=job.total_rows,
            processed=job.processed,
            imported=job.imported,
            skipped=job.skipped,
            failed=job.failed,
        ),
        "chunks": job.chunk_count,
        "chunks_done": job.next_chunk,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def import_summary(job: ImportJob) -> schemas.ImportSummaryOut:
    return schemas.ImportSummaryOut(**_import_fields(job))


def import_job(job: ImportJob, issues: list[RowIssue]) -> schemas.ImportOut:
    return schemas.ImportOut(
        **_import_fields(job),
        errors=[import_issue(issue) for issue in issues],
        error_count=job.failed + job.skipped,
    )


#: Columns of the members export; those named like the import's columns mean the same.
MEMBER_EXPORT_COLUMNS = (
    "member_id",
    "external_id",
    "email",
    "name",
    "birthday",
    "marketing_consent",
    "available",
    "pending",
    "tier",
    "lifetime_earned",
    "lifetime_redeemed",
    "lifetime_adjusted",
    "lifetime_expired",
    "lifetime_reversed",
    "created_at",
)
LEDGER_EXPORT_COLUMNS = (
    "transaction_id",
    "created_at",
    "occurred_at",
    "member_id",
    "type",
    "points",
    "pending_change",
    "balance_after",
    "amount",
    "currency",
    "reference",
    "description",
    "reason",
    "idempotency_key",
    "expires_at",
    "matures_at",
    "metadata",
)


def _cell(value: object) -> str:
    """A CSV cell: text escaped against formulas (``escape_cell``); numbers, booleans and
    instants, which the platform writes itself, as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return escape_cell(str(value))


def _csv(columns: tuple[str, ...], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def members_csv(rows: list[MemberRow]) -> str:
    """A page of the members export: the header, then one member per row."""
    return _csv(
        MEMBER_EXPORT_COLUMNS,
        [
            [
                row.member.member_id,
                row.member.external_id,
                row.member.email,
                row.member.name,
                row.member.birthday.isoformat() if row.member.birthday else None,
                row.member.marketing_consent,
                row.balance.available,
                row.balance.pending,
                row.tier,
                row.balance.balance.lifetime_earned,
                row.balance.balance.lifetime_redeemed,
                row.balance.balance.lifetime_adjusted,
                row.balance.balance.lifetime_expired,
                row.balance.balance.lifetime_reversed,
                row.member.created_at,
            ]
            for row in rows
        ],
    )


def ledger_csv(entries: list[LedgerEntry]) -> str:
    """A page of the ledger export: the header, then one entry per row, in time order."""
    return _csv(
        LEDGER_EXPORT_COLUMNS,
        [
            [
                entry.transaction_id,
                entry.created_at,
                entry.occurred_at,
                entry.member_id,
                str(entry.movement),
                entry.points,
                entry.pending_change,
                entry.balance_after.available,
                entry.amount,
                entry.currency,
                entry.reference,
                entry.description,
                entry.reason,
                entry.idempotency_key,
                entry.expires_at,
                entry.matures_at,
                json.dumps(entry.metadata, sort_keys=True, separators=(",", ":")) if entry.metadata else None,
            ]
            for entry in entries
        ],
    )
