"""The tenant's program: its settings, its earning rules, and a preview of what an order earns."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.routing import ApiRequest, endpoint, schemas
from chalicelib.domain.clock import request_now
from chalicelib.domain.errors import NotFound
from chalicelib.domain.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.api.schemas.program import ProgramOut, ProgramRequest
    from chalicelib.api.schemas.rules import OrderModel, PreviewOut, PreviewRequest, RuleList, RuleOut, RuleRequest
    from chalicelib.api.schemas.tiers import TierProgramList, TierProgramOut, TierProgramRequest
    from chalicelib.domain.orders import Order

bp = Blueprint(__name__)
TAG = "Program"


@endpoint(
    bp,
    "/program",
    "GET",
    summary="The program's settings",
    description=(
        "The program's earning settings: points per currency unit and rounding, expiry, pending days, the "
        "birthday bonus, and whether shipping and tax earn. Reads only."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.program.ProgramOut,
)
def get_program(request: ApiRequest) -> ProgramOut:
    from chalicelib.api.presenters import program as presenters

    return presenters.program(request.services.for_tenant(request.tenant).program.get())


@endpoint(
    bp,
    "/program",
    "PUT",
    summary="Replace the program's settings",
    description=(
        "Replaces the program's settings as a whole. Applies to movements from now on; past ledger "
        "entries are never recomputed. Idempotent: sending the same settings again changes nothing."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.program.ProgramRequest,
    response=schemas.program.ProgramOut,
)
def put_program(request: ApiRequest) -> ProgramOut:
    from chalicelib.api.presenters import program as presenters
    from chalicelib.domain.expiry import ExpiryPolicy
    from chalicelib.domain.program import HouseholdPolicy, TransferPolicy

    body: ProgramRequest = request.body
    expiry = ExpiryPolicy(
        kind=body.expiry.kind,
        days=body.expiry.days,
        months=body.expiry.months,
        period=body.expiry.period,
        periods_after=body.expiry.periods_after,
    )
    program = request.services.for_tenant(request.tenant).program.replace(
        Decimal(body.points_per_currency_unit),
        body.rounding,
        expiry,
        body.pending_days,
        body.reversal_clawback,
        expiry_warning_days=body.expiry_warning_days,
        birthday_bonus=body.birthday_bonus,
        earn_on_shipping=body.earn_on_shipping,
        earn_on_tax=body.earn_on_tax,
        transfers=TransferPolicy(
            enabled=body.transfers.enabled,
            minimum=body.transfers.minimum,
            daily_maximum=body.transfers.daily_maximum,
        ),
        erase_inactive_after_years=body.erase_inactive_after_years,
        personal_metadata_keys=tuple(body.personal_metadata_keys),
        personal_descriptions=body.personal_descriptions,
        point_value=Decimal(body.point_value),
        signup_bonus=body.signup_bonus,
        welcome_imported=body.welcome_imported,
        households=HouseholdPolicy(enabled=body.households.enabled, max_members=body.households.max_members),
    )
    return presenters.program(program)


@endpoint(
    bp,
    "/program/rules",
    "POST",
    summary="Add an earning rule (in force from starts_at, or now)",
    description=(
        "Adds an earning rule (an order multiplier, a category or SKU bonus, an activity reward...) in "
        "force from `starts_at` (now if left out) until `ends_at` or until it is ended. Rules are never "
        "edited or deleted, so every past earn stays explained; to change one, end it and add another. "
        "Not idempotent: each call adds a rule."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    status=201,
    body=schemas.rules.RuleRequest,
    response=schemas.rules.RuleOut,
)
def add_rule(request: ApiRequest) -> RuleOut:
    from chalicelib.api.presenters import rules as presenters
    from chalicelib.domain.rules import NewRule

    body: RuleRequest = request.body
    rule = request.services.for_tenant(request.tenant).rules.add(
        NewRule(
            name=body.name,
            kind=body.kind,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            factor=Decimal(body.factor) if body.factor is not None else None,
            points=body.points,
            skus=frozenset(body.skus),
            categories=frozenset(body.categories),
            weekdays=frozenset(body.weekdays),
            min_order_total=Decimal(body.min_order_total) if body.min_order_total is not None else None,
            every=body.every,
            at=body.at,
            activity=body.activity,
            limit=body.limit,
            per=body.per,
            tiers=frozenset(body.tiers),
            cap=body.cap,
            segments=frozenset(body.segments),
        )
    )
    return presenters.rule(rule, request_now())


@endpoint(
    bp,
    "/program/rules",
    "GET",
    summary="Every earning rule, past, present and scheduled",
    description=(
        "Every earning rule of the program, past, in force and scheduled, so that any earn can be "
        "explained by the rules of its time."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.rules.RuleList,
)
def list_rules(request: ApiRequest) -> RuleList:
    from chalicelib.api.presenters import rules as presenters
    from chalicelib.api.schemas.rules import RuleList

    now = request_now()
    rules = request.services.for_tenant(request.tenant).rules.list()
    return RuleList(data=[presenters.rule(rule, now) for rule in rules])


@endpoint(
    bp,
    "/program/rules/{rule_id}",
    "GET",
    summary="One earning rule",
    description="One earning rule, with its window of validity. 404 if it is not this tenant's.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.rules.RuleOut,
)
def get_rule(request: ApiRequest, rule_id: str) -> RuleOut:
    from chalicelib.api.presenters import rules as presenters

    return presenters.rule(request.services.for_tenant(request.tenant).rules.get(rule_id), request_now())


@endpoint(
    bp,
    "/program/rules/{rule_id}/end",
    "POST",
    summary="End an earning rule now (rules are never deleted: past earns stay explained)",
    description=(
        "Ends a rule now: earns from now on no longer apply it; those it already gave stay. A rule that "
        "has ended already keeps its end."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    response=schemas.rules.RuleOut,
)
def end_rule(request: ApiRequest, rule_id: str) -> RuleOut:
    from chalicelib.api.presenters import rules as presenters

    return presenters.rule(request.services.for_tenant(request.tenant).rules.end(rule_id), request_now())


@endpoint(
    bp,
    "/program/preview",
    "POST",
    summary="What an order would earn now (or at occurred_at), with the breakdown, for any member or for "
    "member_id as their earn would compute it; writes nothing",
    description=(
        "Computes what an order would earn, now or at `occurred_at`, with the breakdown by rule, tier and "
        "plan: for any member, or for `member_id` exactly as their earn would compute it. Writes nothing, "
        "so it can be called freely (a checkout page showing the points to come). 404 `not_found` if "
        "`member_id` is unknown."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    body=schemas.rules.PreviewRequest,
    response=schemas.rules.PreviewOut,
    read_only=True,
    errors=(NotFound,),
)
def preview(request: ApiRequest) -> PreviewOut:
    from chalicelib.api.presenters import rules as presenters

    body: PreviewRequest = request.body
    tenant = request.tenant.tenant
    order = to_order(body.order, tenant.currency)
    services = request.services.for_tenant(request.tenant)
    if body.member_id is not None:
        preview = services.points.preview(body.member_id, order, body.occurred_at, tenant.timezone)
        return presenters.earning(preview)
    return presenters.earning(services.rules.earning(order, body.occurred_at or request_now(), tenant.timezone))


def to_order(body: OrderModel, tenant_currency: str) -> Order:
    from chalicelib.domain.orders import Order

    lines = [(line.sku, line.category, line.quantity, line.unit_price, line.discount) for line in body.lines]
    return Order.parse(
        body.id,
        body.total,
        body.currency,
        lines,
        tenant_currency,
        discount=body.discount,
        shipping=body.shipping,
        tax=body.tax,
    )


# --- tiers -------------------------------------------------------------------------------------


@endpoint(
    bp,
    "/program/tiers",
    "PUT",
    summary="Configure the tiers: a new version, in force from effective_from (versions are never deleted)",
    description=(
        "Configures the tier program (its qualification metric, its window and the tiers with their "
        "thresholds and multipliers) as a new version, in force from `effective_from`. Versions are never "
        "deleted: members are judged by the version in force at each time. Not idempotent: each call adds "
        "a version."
    ),
    tag=TAG,
    auth="tenant",
    scope=Scope.ADMIN,
    body=schemas.tiers.TierProgramRequest,
    response=schemas.tiers.TierProgramOut,
)
def put_tiers(request: ApiRequest) -> TierProgramOut:
    from chalicelib.api.presenters import tiers as presenters
    from chalicelib.domain.tiers import Metric, NewTierProgram, Tier, WindowKind

    body: TierProgramRequest = request.body
    tiers = request.services.for_tenant(request.tenant).tiers
    version = tiers.configure(
        NewTierProgram(
            metric=Metric(body.metric),
            window=WindowKind(body.window.kind),
            months=body.window.months,
            grace_periods=body.grace_periods,
            tiers=tuple(
                Tier(
                    name=tier.name,
                    threshold=Decimal(tier.threshold),
                    multiplier=Decimal(tier.multiplier),
                    perks=tuple(tier.perks),
                )
                for tier in body.tiers
            ),
            effective_from=body.effective_from,
        )
    )
    now = request_now()
    return presenters.tier_program(version, tiers.in_force(now), now)


@endpoint(
    bp,
    "/program/tiers",
    "GET",
    summary="Every version of the tier program, oldest first, with the one in force",
    description="Every version of the tier program, oldest first, and the one in force now.",
    tag=TAG,
    auth="tenant",
    scope=Scope.READ,
    response=schemas.tiers.TierProgramList,
)
def list_tiers(request: ApiRequest) -> TierProgramList:
    from chalicelib.api.presenters import tiers as presenters
    from chalicelib.api.schemas.tiers import TierProgramList

    tiers = request.services.for_tenant(request.tenant).tiers
    now = request_now()
    in_force = tiers.versions_in_force(now)
    return TierProgramList(data=[presenters.tier_program(v, in_force, now) for v in tiers.versions()])
