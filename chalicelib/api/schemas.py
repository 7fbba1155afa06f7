"""Request and response schemas. The OpenAPI document is generated from these same models.

Requests are strict (no type coercion) and reject unknown fields, so a body carrying
``balance`` or ``tenant_id`` is refused rather than silently ignored. One conversion is
declared: a decimal field (an amount, a rate, a factor) takes a decimal string or a JSON
integer, never a JSON number with a fraction (``DECIMAL_RULE``).

A rule pydantic cannot write into JSON Schema by itself (no repeats, not zero, exactly one
of two fields...) is declared next to the check that enforces it, with the JSON Schema that
says it (``json_schema_extra``), so that the document never accepts a body the API refuses.
Left out of the document: rules that depend on the moment or on the tenant (the window of
``occurred_at``, said in its description; the currency's decimal places, an IANA time zone,
an opaque cursor), and so far the
expiry policy's combinations of fields (which of days, months and period each kind takes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from chalicelib.domain import dating
from chalicelib.domain.api_keys import Scope
from chalicelib.domain.clock import utc_now
from chalicelib.domain.events import EventType
from chalicelib.domain.expiry import ExpiryKind, Period
from chalicelib.domain.jobs import JobName, RunStatus
from chalicelib.domain.ledger import MAX_POINTS_PER_MOVEMENT, MovementType
from chalicelib.domain.program import Rounding
from chalicelib.domain.rewards import CodeSource, CouponStatus, LimitPeriod, LockReason, RewardType
from chalicelib.domain.rules import ACTIVITY_TYPE, MAX_SEGMENTS, SEGMENT_PATTERN, Per, RuleKind
from chalicelib.domain.tenants import TENANT_ID_MAX_LENGTH, TENANT_ID_MIN_LENGTH, TENANT_ID_PATTERN, TenantStatus

# --- rules written both as checks and as JSON Schema ---------------------------------------------

JsonSchema = dict[str, Any]

#: What pydantic's ``strip_whitespace`` strips (Unicode White_Space), so that "some character
#: outside it" (in JSON Schema, where the pattern searches the unstripped text) says "not blank".
_NOT_BLANK = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _positive_decimal(integer_digits: int, fraction_digits: int) -> str:
    """A decimal string greater than zero: no sign, exponent or leading zero, at most
    ``integer_digits`` before the point and ``fraction_digits`` after it; "0", "0.0" and
    "00.5" do not match, "0.05" and "2.50" do."""
    small = "|".join(
        "0" * zeros + "[1-9]" + (f"[0-9]{{0,{fraction_digits - zeros - 1}}}" if zeros < fraction_digits - 1 else "")
        for zeros in range(fraction_digits)
    )
    return rf"^([1-9][0-9]{{0,{integer_digits - 1}}}(\.[0-9]{{1,{fraction_digits}}})?|0\.({small}))$"


def _no_repeats(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must not repeat")
    return items


def _not_zero(value: int) -> int:
    if value == 0:
        raise ValueError("must not be 0")
    return value


def _present(name: str) -> JsonSchema:
    """JSON Schema: the field is sent and is not null."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _sent(model: BaseModel, *names: str) -> list[str]:
    """The fields among ``names`` that the request gives a value (not missing, not null)."""
    return [name for name in names if getattr(model, name) is not None]


def _exactly_one_of(*names: str) -> JsonSchema:
    """JSON Schema for what ``_check_exactly_one_of`` enforces."""
    return {"oneOf": [_present(name) for name in names]}


def _check_exactly_one_of(model: BaseModel, *names: str) -> None:
    if len(_sent(model, *names)) != 1:
        raise ValueError(f"send exactly one of {' or '.join(names)}")


def _keys_by_property_names(schema: JsonSchema) -> None:
    """pydantic writes a dict's key pattern as ``patternProperties``, which constrains only the
    keys that match it (any other key, with any value, passes). The API refuses every other
    key: JSON Schema says so with ``propertyNames``, and the values with ``additionalProperties``."""
    ((pattern, values),) = schema.pop("patternProperties").items()
    schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
    schema["additionalProperties"] = values


def _not_null(schema: JsonSchema) -> None:
    """An optional field that may be left out but not sent as null: drop null from the schema."""
    schema.pop("default", None)
    branches = [branch for branch in schema.pop("anyOf") if branch != {"type": "null"}]
    schema.update(branches[0] if len(branches) == 1 else {"anyOf": branches})


#: What every decimal field of a request takes, as its description says.
DECIMAL_RULE = (
    'A decimal string (e.g. "12.50") or a whole number as a JSON integer (12); never a JSON number '
    "with a fraction or an exponent (12.5, 1e3), which is not exact: send those as strings."
)


@dataclass(frozen=True)
class _WholeNumbersToo:
    """A decimal string type that also takes a JSON integer from 1 to ``maximum`` (the whole
    numbers its pattern accepts), normalised to the same decimal string ("10" for 10). Any
    other JSON number is refused: one with a fraction or an exponent arrives as a binary
    float, not the decimal the caller wrote. The JSON Schema says both forms."""

    maximum: int
    minimum: int = 1

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self._integer_as_string, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchema:
        json_schema = handler(schema)
        string = {"type": json_schema.pop("type"), "pattern": json_schema.pop("pattern")}
        integer = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        return {**json_schema, "anyOf": [string, integer]}

    def _integer_as_string(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, float):
            raise PydanticCustomError(
                "decimal_as_string",
                'a decimal with a fraction or an exponent must be sent as a string, e.g. "12.50": '
                "a JSON number is not exact",
            )
        if not isinstance(value, int) or isinstance(value, bool):
            raise PydanticCustomError("decimal_type", "Input should be a decimal string or a whole number")
        if value < self.minimum:
            raise PydanticCustomError(
                "greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": self.minimum}
            )
        if value > self.maximum:
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to {le}", {"le": self.maximum}
            )
        return str(value)


def _decimal(pattern: str, maximum: int, description: str, *, minimum: int = 1, **field: Any) -> tuple[Any, ...]:
    """The metadata of a decimal field, ``Annotated[str, *_decimal(...)]``: a string matching
    ``pattern``, or a JSON integer from ``minimum`` (1: positive) to ``maximum`` (every whole
    number the pattern accepts), see ``DECIMAL_RULE``."""
    return (
        StringConstraints(pattern=pattern),
        _WholeNumbersToo(maximum, minimum),
        Field(description=f"{description} {DECIMAL_RULE}".strip(), **field),
    )


# --- shared field types ------------------------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=_NOT_BLANK)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Email = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True)
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=20, description="Up to 20 string pairs.", json_schema_extra=_keys_by_property_names),
]
PositivePoints = Annotated[int, Field(ge=1, le=MAX_POINTS_PER_MOVEMENT, description="A whole number of points.")]
Amount = Annotated[
    str,
    *_decimal(
        _positive_decimal(12, 3),
        10**12 - 1,
        "A positive amount in the tenant's currency, with at most the currency's decimal places (EUR: 2, JPY: 0).",
        examples=["12.50", 12],
    ),
]
#: A part of an order (a discount, shipping, tax) that may be zero.
OrderPart = Annotated[
    str,
    *_decimal(
        r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$",
        10**12 - 1,
        "Zero or more in the tenant's currency, with at most the currency's decimal places.",
        minimum=0,
        examples=["5.00", 0],
    ),
]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Limit = Annotated[int, Field(ge=1, le=100)]
#: Member segments, and the segments a campaign is limited to.
Segments = Annotated[
    list[Annotated[str, StringConstraints(pattern=SEGMENT_PATTERN.pattern)]],
    Field(max_length=MAX_SEGMENTS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_no_repeats),
]
MemberId = Annotated[str, StringConstraints(pattern=r"^mem_[0-9A-HJKMNP-TV-Z]{26}$")]

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _dated(check: Any) -> Any:
    """A validator applying a rule of chalicelib.domain.dating, its refusal as a field error
    whose ``min`` and ``max`` the API's error shows (chalicelib.api.errors)."""

    def validate(value: datetime) -> datetime:
        try:
            check(value)
        except dating.OccurredAtOutOfRange as refused:
            raise PydanticCustomError(dating.OUT_OF_RANGE, refused.window.message, refused.window.details) from None
        return value

    return AfterValidator(validate)


#: When a movement or an activity happened: the dating rule (chalicelib.domain.dating).
OccurredAt = Annotated[
    AwareDatetime,
    _dated(lambda value: dating.check_occurred_at(value, utc_now())),
    Field(
        description="When it happened (RFC 3339 with offset); defaults to now. At most "
        f"{dating.CLOCK_SKEW.seconds // 60} minutes ahead (clock skew) and {dating.MAX_AGE.days} days back; "
        "allowances and caps count in its period."
    ),
]
#: The moment a preview evaluates the rules at: any, in the future too (it writes nothing).
PreviewAt = Annotated[AwareDatetime, _dated(dating.check_preview_at)]


class StrictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Query(BaseModel):
    """Query strings are text, so their models coerce ("20" -> 20) but still forbid extras."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# --- errors ---------------------------------------------------------------------------------


class ErrorDetail(Out):
    code: str = Field(description="Machine-readable error code, e.g. `insufficient_points`.")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(Out):
    error: ErrorDetail


# --- tenants and keys -----------------------------------------------------------------------


class CreateTenantRequest(StrictRequest):
    tenant_id: Annotated[
        str,
        StringConstraints(
            min_length=TENANT_ID_MIN_LENGTH, max_length=TENANT_ID_MAX_LENGTH, pattern=TENANT_ID_PATTERN.pattern
        ),
    ] = Field(description="Slug naming the brand: 3-32 lowercase letters, digits and inner hyphens.", examples=["acme"])
    name: Name
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(examples=["EUR"])
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(examples=["Europe/Helsinki"])

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value


class ProvisioningFailureOut(Out):
    attempts: int = Field(description="Failed attempts at provisioning the tenant's table; each is retried.")
    error: str = Field(
        description="The last failure, e.g. DynamoDB's table limits.",
        examples=["retry_later: DynamoDB refuses table operations for now (...)"],
    )
    at: datetime


class TenantOut(Out):
    tenant_id: str
    name: str
    currency: str
    timezone: str
    status: TenantStatus = Field(
        description="provisioning (its table is being created: its keys get 409 tenant_not_ready), "
        "then active; suspended by the operator."
    )
    created_at: datetime
    updated_at: datetime
    provisioning_failure: ProvisioningFailureOut | None = Field(
        description="While provisioning keeps failing (it is retried), the last failure; null otherwise."
    )


class TenantList(Out):
    data: list[TenantOut]
    next_cursor: str | None


class ApiKeyOut(Out):
    """An API key as listed. Every field is always present (null when it does not apply)."""

    id: str = Field(examples=["key_01JD0000000000000000000000"])
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    partner_id: str | None = Field(description="A partner key's coalition partner; null otherwise.")


class CreatedApiKey(ApiKeyOut):
    """A key just created, in the one shape of every creation (`POST /v1/api-keys`, and `api_key`
    of `POST /v1/tenants`): the key as listed, plus its secret."""

    secret: str = Field(description="The key itself. Shown once; only its hash is stored.")


class CreatedTenant(Out):
    tenant: TenantOut
    api_key: CreatedApiKey


class CreateApiKeyRequest(StrictRequest):
    name: Name
    scopes: Annotated[
        list[Scope],
        Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ]
    partner_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$")] | None = Field(
        default=None,
        description="A partner key: the registered partner it acts for; scopes must then be exactly ['partner'].",
    )


class ApiKeyList(Out):
    data: list[ApiKeyOut]


class CallerKey(Out):
    id: str
    name: str
    scopes: list[Scope]


class Me(Out):
    tenant: TenantOut
    api_key: CallerKey


class ListQuery(Query):
    limit: Limit = 20
    cursor: Cursor | None = None


# --- program --------------------------------------------------------------------------------


class ExpiryPolicyModel(StrictRequest):
    """When earned points stop being spendable.

    * `{"kind": "none"}` (default): never.
    * `{"kind": "fixed_period", "days": 365}` or `{"kind": "fixed_period", "months": 12}`: after earning.
    * `{"kind": "end_of_period", "period": "year", "periods_after": 1}`: at the end of the period N
      periods after the one of earning, in the tenant's time zone (here: 31 December of the next year).
    * `{"kind": "inactivity", "days": 365}`: every available point lapses N days after the member's
      last earn or redeem (a policy change applies to each member from their next movement).
    """

    kind: ExpiryKind = ExpiryKind.NONE
    days: Annotated[int, Field(ge=1, le=3650)] | None = None
    months: Annotated[int, Field(ge=1, le=120)] | None = None
    period: Period | None = None
    periods_after: Annotated[int, Field(ge=0, le=10)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> ExpiryPolicyModel:
        if self.kind is ExpiryKind.FIXED_PERIOD and (self.days is None) == (self.months is None):
            raise ValueError("fixed_period needs exactly one of days or months")
        if self.kind is ExpiryKind.END_OF_PERIOD and self.period is None:
            raise ValueError("end_of_period needs a period: year, quarter or month")
        if self.kind is ExpiryKind.INACTIVITY and (self.days is None or self.months or self.period):
            raise ValueError("inactivity needs days (and no months or period)")
        if self.kind is ExpiryKind.NONE and (self.days or self.months or self.period or self.periods_after):
            raise ValueError("kind none takes no other field")
        return self


PointsRate = Annotated[
    str, *_decimal(_positive_decimal(6, 4), 999_999, "Points per one unit of the tenant's currency, greater than 0.")
]


class ProgramRequest(StrictRequest):
    points_per_currency_unit: PointsRate = Field(examples=["2.5", 10])
    rounding: Rounding
    expiry: ExpiryPolicyModel = Field(default_factory=ExpiryPolicyModel)
    pending_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=0, description="Default return window of earned points, in days."
    )
    reversal_clawback: bool = Field(
        default=False, description="Whether a reversal may push the balance below zero (else it stops at zero)."
    )
    expiry_warning_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=14,
        description="points.expiring_soon is announced this many days before points expire (0: never).",
    )
    birthday_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0, description="Points credited on each member's birthday, in the tenant's time zone (0: none)."
    )
    earn_on_shipping: bool = Field(default=False, description="Whether an order's shipping earns points.")
    earn_on_tax: bool = Field(default=False, description="Whether an order's tax earns points.")


class ExpiryPolicyOut(Out):
    kind: ExpiryKind
    days: int | None
    months: int | None
    period: Period | None
    periods_after: int


class ProgramOut(Out):
    points_per_currency_unit: str
    rounding: Rounding
    expiry: ExpiryPolicyOut
    pending_days: int
    reversal_clawback: bool
    expiry_warning_days: int
    birthday_bonus: int
    earn_on_shipping: bool
    earn_on_tax: bool
    updated_at: datetime | None


# --- earning rules and orders ---------------------------------------------------------------

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Factor = Annotated[str, *_decimal(r"^([1-9][0-9]?)(\.[0-9]{1,2})?$", 99, 'e.g. "1.5" or 2 (> 1, < 100).')]


ActivityType = Annotated[
    str,
    StringConstraints(pattern=ACTIVITY_TYPE.pattern),
    Field(
        description="review, social_follow, social_share, profile_completed, signup, newsletter_signup, custom:<name>"
    ),
]


class ActivityRequest(StrictRequest):
    type: ActivityType
    reference: Reference | None = Field(default=None, description="e.g. the review's id in the brand's system.")
    description: Description | None = None
    occurred_at: OccurredAt | None = None
    metadata: Metadata = Field(default_factory=dict)


class RuleRequest(StrictRequest):
    """An earning rule. `line_multiplier`: lines whose sku or category matches earn `factor` times
    their base; `order_multiplier`: the whole order earns `factor` times (a campaign, optionally on
    some `weekdays` in the tenant's time zone); `order_bonus`: `points` for an order. Every kind may
    require `min_order_total` and be limited to [`starts_at`, `ends_at`). `milestone`: `points` on the
    member's `at`-th order or every `every`-th; `activity`: `points` for an `activity`, at most `limit`
    times `per` day, week, month, year or ever. `earning_cap`: a member earns at most `cap` points `per`
    period, whatever earns them; an order rule with `cap` and `per` gives a member at most `cap` points
    per period. Order rules may be limited to `tiers` and `segments`."""

    name: Name
    kind: RuleKind
    factor: Factor | None = None
    points: PositivePoints | None = None
    skus: Annotated[list[Code], Field(max_length=100)] = Field(default_factory=list)
    categories: Annotated[list[Code], Field(max_length=100)] = Field(default_factory=list)
    weekdays: Annotated[list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]], Field(max_length=7)] = Field(
        default_factory=list
    )
    min_order_total: Amount | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    every: Annotated[int, Field(ge=2, le=1000)] | None = Field(default=None, description="milestone: every Nth order.")
    at: Annotated[int, Field(ge=1, le=100_000)] | None = Field(default=None, description="milestone: the Nth order.")
    activity: ActivityType | None = Field(default=None, description="activity: the activity type it rewards.")
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="activity: at most this many times per `per`."
    )
    per: Per | None = Field(
        default=None, description="activity: with `limit`; earning_cap and capped order rules: with `cap`."
    )
    tiers: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]],
        Field(max_length=10, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ] = Field(default_factory=list, description="Order rules: only members of these tiers (empty: every member).")
    cap: PositivePoints | None = Field(
        default=None,
        description="earning_cap: the most points a member earns per `per`; order rules: the most points the rule "
        "gives a member per `per` (a campaign cap).",
    )
    segments: Segments = Field(
        default_factory=list, description="Order rules: only members in one of these segments (empty: every member)."
    )


class RuleOut(Out):
    id: str = Field(examples=["rul_01JD0000000000000000000000"])
    name: str
    kind: RuleKind
    factor: str | None
    points: int | None
    skus: list[str]
    categories: list[str]
    weekdays: list[str]
    min_order_total: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    every: int | None
    at: int | None
    activity: str | None
    limit: int | None
    per: Per | None
    created_at: datetime
    status: Literal["scheduled", "active", "ended"]
    tiers: list[str] = Field(default_factory=list)
    cap: int | None = None
    segments: list[str] = Field(default_factory=list)


class RuleList(Out):
    data: list[RuleOut]


class OrderLineModel(StrictRequest):
    sku: Code
    category: Code | None = None
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unit_price: Amount = Field(description=f"The listed price of one unit, before discounts. {DECIMAL_RULE}")
    discount: OrderPart | None = Field(
        default=None, description=f"Taken off this line (of unit_price * quantity); default 0. {DECIMAL_RULE}"
    )


class OrderModel(StrictRequest):
    """An order. Points follow what the customer paid: the lines after their discounts and the
    order's `discount` (spread over the lines in proportion), never more than `total - shipping -
    tax`; shipping and tax earn only when the program says so (`earn_on_shipping`, `earn_on_tax`)."""

    id: Reference = Field(description="The shop's order id; the earn's reference (for refunds) unless one is sent.")
    total: Amount = Field(
        description=f"What the customer paid in all, after discounts, with shipping and tax. {DECIMAL_RULE}"
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="Must be the tenant's currency."
    )
    lines: Annotated[list[OrderLineModel], Field(max_length=100)] = Field(
        default_factory=list,
        description="Line items at their listed prices; without them the base rate applies to total - shipping - tax.",
    )
    discount: OrderPart | None = Field(
        default=None,
        description=f"Taken off the whole order (spread over the lines in proportion); default 0. {DECIMAL_RULE}",
    )
    shipping: OrderPart | None = Field(
        default=None, description=f"The shipping inside total; default 0. {DECIMAL_RULE}"
    )
    tax: OrderPart | None = Field(
        default=None, description=f"The tax inside total (added or included); default 0. {DECIMAL_RULE}"
    )


class PreviewRequest(StrictRequest):
    order: OrderModel
    occurred_at: PreviewAt | None = Field(
        default=None,
        description="Evaluate the rules in force then (2000 to 2099, in the future too: a preview writes "
        "nothing); default now.",
    )
    member_id: MemberId | None = Field(
        default=None,
        description="Preview for this member, as their earn would compute it: their tier (multiplier, tier "
        "campaigns), segments, the milestone of their next order, and the earning caps with what they have left. "
        "404 if unknown.",
    )


class ShareOut(Out):
    source: Literal["base", "discount", "rule", "tier", "plan", "cap", "requested"] = Field(
        description="base: the base rate at the listed prices; discount: what the order's discounts (and amounts "
        "that do not earn, such as tax included in prices) took off it (negative); "
        "tier: the member's tier multiplier (tier:<name>); plan: a paid plan's (plan:<plan id>); "
        "cap: points cut by an earning cap (negative; rule_id: the cap's rule, or the capped campaign); "
        "requested: what a capped earn of points or an amount asked for."
    )
    name: str
    points: int
    rule_id: str | None


class PreviewOut(Out):
    points: int
    breakdown: list[ShareOut]
    tier: str | None = Field(
        default=None, description="With member_id: the member's tier the preview applied (null: none)."
    )


# --- rewards and coupons ---------------------------------------------------------------------

CouponCode = Annotated[str, StringConstraints(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Tier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Stock = Annotated[int, Field(ge=1, le=100_000_000)]
PerMemberLimit = Annotated[int, Field(ge=1, le=10_000)]
ValidDays = Annotated[int, Field(ge=1, le=3650)]
Percent = Annotated[int, Field(ge=1, le=100)]
Tiers = Annotated[
    list[Tier], Field(max_length=20, json_schema_extra={"uniqueItems": True}), AfterValidator(_no_repeats)
]

#: The field each reward type needs (and no other type takes).
_TYPE_FIELDS = {
    "amount": ["fixed_discount", "gift_card"],
    "percent": ["percent_discount"],
    "sku": ["free_product"],
    "cause": ["charity_donation"],
}


def _type_fields(schema: JsonSchema) -> None:
    """JSON Schema for what the reward's own check enforces: each type's field, and only its own."""
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"enum": types}}, "required": ["type"]},
            "then": _present(name),
            "else": {"properties": {name: {"type": "null"}}},
        }
        for name, types in _TYPE_FIELDS.items()
    ]


class CreateRewardRequest(StrictRequest):
    """A reward of the catalog. Its type decides the one extra field it takes: `amount` (a
    `fixed_discount` or `gift_card` value in the tenant's currency), `percent`
    (`percent_discount`), `sku` (`free_product`), `cause` (`charity_donation`: points given to a
    named cause, totals per cause reported); `free_shipping` and `experience` take none.
    `per_member_limit` counts a member's coupons `ever` or per calendar `month` (tenant's time
    zone); `stock` counts every member's (cancelled coupons come back). `tiers` restricts it to
    members of those tiers: members have no tier until tiers exist, so until then such a
    reward is locked (`tier`) for everybody. `codes`: `generated` (unique codes made at
    redemption) or `pool` (codes the brand uploads)."""

    model_config = ConfigDict(json_schema_extra=_type_fields)

    name: Name
    type: RewardType
    points_cost: PositivePoints
    description: Description | None = None
    amount: Amount | None = None
    percent: Percent | None = None
    sku: Code | None = None
    cause: Name | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock: Stock | None = None
    per_member_limit: PerMemberLimit | None = None
    limit_period: LimitPeriod = LimitPeriod.EVER
    tiers: Tiers = Field(default_factory=list)
    valid_days: ValidDays | None = Field(default=None, description="Days a coupon is usable once issued.")
    codes: CodeSource = CodeSource.GENERATED


class UpdateRewardRequest(StrictRequest):
    """Only the fields sent change; null clears an optional one. The type and the code source
    are fixed. Coupons already issued keep what they were issued with."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Name | None = Field(default=None, json_schema_extra=_not_null)
    points_cost: PositivePoints | None = Field(default=None, json_schema_extra=_not_null)
    description: Description | None = None
    amount: Amount | None = None
    percent: Percent | None = None
    sku: Code | None = None
    cause: Name | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock: Stock | None = None
    per_member_limit: PerMemberLimit | None = None
    limit_period: LimitPeriod | None = Field(default=None, json_schema_extra=_not_null)
    tiers: Tiers | None = Field(default=None, json_schema_extra=_not_null)
    valid_days: ValidDays | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateRewardRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("name", "points_cost", "limit_period", "tiers"):  # _not_null
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RewardOut(Out):
    id: str = Field(examples=["rwd_01JD0000000000000000000000"])
    name: str
    type: RewardType
    points_cost: int
    description: str | None
    amount: str | None
    percent: int | None
    sku: str | None
    cause: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    stock: int | None
    per_member_limit: int | None
    limit_period: LimitPeriod
    tiers: list[str]
    valid_days: int | None
    codes: CodeSource
    status: Literal["active", "scheduled", "ended", "archived"]
    issued: int = Field(description="Coupons issued and not cancelled.")
    remaining_stock: int | None = Field(description="Coupons that may still be issued (null: no stock limit).")
    cause_total_points: int | None = Field(
        description="charity_donation: points given to its cause so far, by every reward of that cause."
    )
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class RewardList(Out):
    data: list[RewardOut]
    next_cursor: str | None


class UploadCodesRequest(StrictRequest):
    codes: Annotated[
        list[CouponCode],
        Field(min_length=1, max_length=500, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_no_repeats),
    ] = Field(description="Codes for the reward's pool; none may exist already (in any reward).")


class UploadCodesOut(Out):
    reward_id: str
    added: int


class CouponOut(Out):
    code: str
    reward_id: str
    member_id: str
    status: CouponStatus
    points: int = Field(description="The points paid for it (given back if it is cancelled).")
    issued_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    used_reference: str | None
    cancelled_at: datetime | None


class CouponList(Out):
    data: list[CouponOut]
    next_cursor: str | None


class RedemptionOut(Out):
    transaction: TransactionOut
    balance: BalanceOut
    coupon: CouponOut


class UseCouponRequest(StrictRequest):
    reference: Reference | None = Field(default=None, description="Your reference, e.g. the order it was used on.")


class MemberRewardOut(Out):
    reward: RewardOut
    redeemable: bool
    locked_because: list[LockReason] = Field(description="Empty when redeemable.")
    points_short: int = Field(description="Points the member lacks for it (0: enough).")
    remaining_for_member: int | None = Field(
        description="Coupons of it the member may still get in the current period (null: no limit)."
    )


class MemberRewardList(Out):
    member_id: str
    available_points: int
    data: list[MemberRewardOut]
    next_cursor: str | None


# --- members --------------------------------------------------------------------------------


def _plausible_birthday(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= datetime.now(UTC).date():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


#: Referral codes are 8 characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ, matched case-insensitively.
ReferralCode = Annotated[
    str,
    StringConstraints(pattern=r"^[2-9A-HJKMNP-Za-hjkmnp-z]{8}$"),
    Field(description="A member's referral code (8 characters, case-insensitive).", examples=["7KQ4MZ2P"]),
]
CardCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$"),
    Field(
        description="The brand's loyalty card number: 4-40 letters, digits or hyphens, unique in the tenant, "
        "stored and matched upper-cased.",
        examples=["6001-2345-6789"],
    ),
]


class CreateMemberRequest(StrictRequest):
    external_id: ExternalId | None = Field(default=None, description="The brand's own customer id; unique.")
    email: Email | None = None
    name: Name | None = None
    birthday: date | None = None
    marketing_consent: bool = False
    card_code: CardCode | None = None
    referral_code: ReferralCode | None = Field(
        default=None,
        description="The referrer's referral code: the new member is their referee (422 unknown_referral_code, "
        "422 self_referral when the email or external_id is the referrer's).",
    )
    segments: Segments = Field(default_factory=list, description='e.g. ["vip", "staff"]: campaigns target them.')

    _birthday = field_validator("birthday")(_plausible_birthday)


class UpdateMemberRequest(StrictRequest):
    """Only the fields sent change; send null to clear one (not `marketing_consent`)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    email: Email | None = None
    name: Name | None = None
    birthday: date | None = None
    marketing_consent: bool | None = Field(default=None, json_schema_extra=_not_null)
    card_code: CardCode | None = Field(
        default=None, description="A new card code (409 card_code_taken); null clears it."
    )
    segments: Segments | None = Field(
        default=None, json_schema_extra=_not_null, description="Replaces the member's segments ([] clears them)."
    )

    _birthday = field_validator("birthday")(_plausible_birthday)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateMemberRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("marketing_consent", "segments"):
            if name in self.model_fields_set and getattr(self, name) is None:  # _not_null
                raise ValueError(f"{name} cannot be null")
        return self


class MemberOut(Out):
    id: str = Field(examples=["mem_01JD0000000000000000000000"])
    external_id: str | None
    email: str | None
    name: str | None
    birthday: date | None
    marketing_consent: bool
    created_at: datetime
    updated_at: datetime
    referral_code: str | None = Field(
        description="The member's code to refer others; null for a member enrolled before referral codes "
        "(POST /v1/members/{member_id}/referral-code gives one)."
    )
    card_code: str | None
    referred_by: str | None = Field(description="The member whose referral code this member enrolled with.")
    segments: list[str] = Field(default_factory=list)


class MemberList(Out):
    data: list[MemberOut]
    next_cursor: str | None


class MemberListQuery(ListQuery):
    """With an identifier (`external_id`, `referral_code`, `card_code`): the member matching every
    one given, or none (`limit` and `cursor` then play no part)."""

    external_id: ExternalId | None = None
    referral_code: ReferralCode | None = None
    card_code: CardCode | None = None


# --- points -----------------------------------------------------------------------------------


class _Movement(StrictRequest):
    reference: Reference | None = Field(default=None, description="Your reference, e.g. an order id.")
    description: Description | None = None
    occurred_at: OccurredAt | None = None
    metadata: Metadata = Field(default_factory=dict)


class EarnRequest(_Movement):
    """Send exactly one of `points`, `amount` (converted by the program's rate) or `order`
    (the program's rate and earning rules; the response has the breakdown)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("points", "amount", "order"))

    points: PositivePoints | None = None
    amount: Amount | None = None
    order: OrderModel | None = None
    pending_days: Annotated[int, Field(ge=0, le=365)] | None = Field(
        default=None, description="Days the points stay pending (a return window); default: the program's."
    )

    @model_validator(mode="after")
    def _points_or_amount(self) -> EarnRequest:
        _check_exactly_one_of(self, "points", "amount", "order")
        return self


class RedeemRequest(_Movement):
    points: PositivePoints


class AdjustRequest(_Movement):
    points: Annotated[
        int,
        Field(ge=-MAX_POINTS_PER_MOVEMENT, le=MAX_POINTS_PER_MOVEMENT, json_schema_extra={"not": {"const": 0}}),
        AfterValidator(_not_zero),
    ] = Field(description="Signed, non-zero: positive credits, negative debits (never below zero).")
    reason: Description


class ExpiringSoon(Out):
    points: int
    at: datetime


class ReverseRequest(_Movement):
    """Take back points earned for an order (its `reference`): exactly one of `points`, or the
    points an `amount` of a partial refund converts to. Pending points go first."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("points", "amount"))

    reference: Reference = Field(description="The reference the points were earned with, e.g. the order id.")
    points: PositivePoints | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> ReverseRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class BalanceOut(Out):
    member_id: str
    available: int = Field(description="Spendable now: points past their expiry never count.")
    pending: int = Field(description="Earned, waiting out a return window: not spendable yet.")
    expiring_soon: ExpiringSoon | None = Field(description="The next expiry: how many points, and when.")
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_adjusted: int = Field(description="Net sum of adjustments (may be negative).")
    lifetime_expired: int
    lifetime_reversed: int
    updated_at: datetime
    tier: str | None = Field(
        default=None,
        description="The member's tier (after this movement): the tier earned, or a paid plan's if higher; null: none.",
    )
    tier_status: TierStatusOut | None = Field(
        default=None,
        description="GET balance only, when the tenant has tiers: the earned tier's expiry, benefits and progress.",
    )
    plan: PlanStatusOut | None = Field(
        default=None, description="GET balance only: the paid plan in force (null: none, or it has ended)."
    )


class TransactionOut(Out):
    id: str = Field(examples=["txn_01JD0000000000000000000000"])
    member_id: str
    type: MovementType
    points: int = Field(description="Signed change of the member's points (available + pending).")
    sequence: int = Field(description="Position in the member's ledger, from 1.")
    balance_after: int
    amount: str | None
    currency: str | None
    reference: str | None
    description: str | None
    reason: str | None
    metadata: dict[str, str]
    occurred_at: datetime
    created_at: datetime
    idempotency_key: str
    expires_at: datetime | None = Field(description="For points credited under an expiry policy: when they expire.")
    pending_change: int = Field(description="Signed change of the pending points (points - pending_change: available).")
    matures_at: datetime | None = Field(description="For pending points: when they become available.")
    breakdown: list[ShareOut] = Field(description="Order earns: which rule (or the base rate) gave what.")


class MovementOut(Out):
    transaction: TransactionOut
    balance: BalanceOut


class ReversalSummary(Out):
    requested: int
    reversed: int
    from_pending: int
    from_available: int
    outcome: Literal["full", "clawed_back", "stopped_at_zero"] = Field(
        description="full: all taken back; clawed_back: the balance went below zero to do it; "
        "stopped_at_zero: the member held less, so less was taken back."
    )


class ReversalOut(MovementOut):
    reversal: ReversalSummary


class TransactionList(Out):
    data: list[TransactionOut]
    next_cursor: str | None


class RunJobRequest(StrictRequest):
    as_of: AwareDatetime | None = Field(
        default=None, description="Run as if it were this moment (backfills, previews); defaults to now."
    )


class JobRunOut(Out):
    id: str
    job: JobName
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    counts: dict[str, int]
    error: str | None


class JobRunList(Out):
    data: list[JobRunOut]
    next_cursor: str | None


class EventQuery(Query):
    after: Cursor | None = Field(default=None, description="The next_cursor of the previous read.")
    type: EventType | None = Field(default=None, description="Only events of this type.")
    limit: Limit = 100


class EventOut(Out):
    id: str = Field(examples=["evt_01JD0000000000000000000000"])
    type: EventType
    member_id: str
    created_at: datetime
    data: dict[str, Any] = Field(
        description=(
            "points.* (but expiring_soon): the ledger transaction; member.created: the member's id, external id "
            "and creation time; points.expiring_soon: points, expires_at, expiry_date (local); member.birthday: "
            "birthday, bonus_points, bonus_transaction_id. The last two only for members with marketing consent."
        )
    )


class EventList(Out):
    data: list[EventOut]
    next_cursor: str = Field(description="Poll again with after=next_cursor; events appear about 5 s after commit.")


class Health(Out):
    status: Literal["ok"]


# --- webhooks -----------------------------------------------------------------------------------

from chalicelib.domain.webhooks import SUBSCRIBABLE, DeliveryStatus, WebhookStatus  # noqa: E402

WebhookEventName = Literal[SUBSCRIBABLE]  # type: ignore[valid-type]
WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$"),
    Field(
        description="https only (plain http to loopback in local mode); the host must resolve to public "
        "addresses only, checked again at every delivery.",
        examples=["https://hooks.example.com/loyalty"],
    ),
]
WebhookEvents = Annotated[
    list[WebhookEventName],
    Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description='Event types to receive, or "*" for every feed event (webhook.disabled must be named).',
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_no_repeats),
]


class CreateWebhookRequest(StrictRequest):
    url: WebhookUrl
    events: WebhookEvents
    description: Description | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _description_not_null(self) -> CreateWebhookRequest:
        if "description" in self.model_fields_set and self.description is None:  # _not_null
            raise ValueError("description cannot be null (leave it out)")
        return self


class UpdateWebhookRequest(StrictRequest):
    """Only the fields sent change; send null to clear the description. Enabling a disabled
    endpoint starts it afresh: events from then on, no backoff."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: WebhookUrl | None = Field(default=None, json_schema_extra=_not_null)
    events: WebhookEvents | None = Field(default=None, json_schema_extra=_not_null)
    description: Description | None = None
    status: WebhookStatus | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateWebhookRequest:
        if not self.model_fields_set:  # minProperties: 1
            raise ValueError("send at least one field to change")
        for name in ("url", "events", "status"):  # _not_null
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class WebhookSecretOut(Out):
    created_at: datetime
    expires_at: datetime | None = Field(description="When a rotated-out secret stops signing; null: current.")


class WebhookOut(Out):
    id: str = Field(examples=["whk_01JD0000000000000000000000"])
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus
    secrets: list[WebhookSecretOut] = Field(description="The secrets signing now (never their values).")
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = Field(description="First failure since the last success; null while healthy.")
    retry_at: datetime | None = Field(description="Nothing is sent before then (backoff); null: no backoff.")
    disabled_at: datetime | None
    disabled_reason: str | None


class CreatedWebhook(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...), shown only in this response.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(Out):
    data: list[WebhookOut]


class DeliveryAttemptOut(Out):
    at: datetime
    status_code: int | None = Field(description="The endpoint's HTTP status; null: no answer (see error).")
    latency_ms: int
    error: str | None


class DeliveryOut(Out):
    id: str = Field(examples=["dlv_01JD0000000000000000000000"], description="Also the webhook-id header.")
    webhook_id: str
    event_id: str
    event_type: str
    member_id: str | None
    status: DeliveryStatus
    attempts: int
    response_code: int | None = Field(description="Of the last attempt.")
    latency_ms: int | None = Field(description="Of the last attempt.")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    succeeded_at: datetime | None
    history: list[DeliveryAttemptOut] = Field(description="The last attempts, oldest first.")


class DeliveryList(Out):
    data: list[DeliveryOut]
    next_cursor: str | None


# --- tiers -------------------------------------------------------------------------------------

TierName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
TierThreshold = Annotated[
    str,
    *_decimal(
        _positive_decimal(12, 3),
        10**12 - 1,
        "In the metric's unit: points or orders (whole), or an amount of the tenant's currency.",
    ),
]
TierMultiplier = Annotated[
    str, *_decimal(r"^(10|[1-9])(\.[0-9]{1,2})?$", 10, 'Earning multiplier, 1 to 10, e.g. "1.5" or 2.')
]
Perk = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=_NOT_BLANK)]


class TierModel(StrictRequest):
    name: TierName
    threshold: TierThreshold
    multiplier: TierMultiplier = "1"
    perks: Annotated[list[Perk], Field(max_length=20)] = Field(default_factory=list)


class TierWindowModel(StrictRequest):
    kind: Literal["rolling_months", "calendar_year"]
    months: Annotated[int, Field(ge=1, le=24)] | None = Field(default=None, description="rolling_months only.")


class TierProgramRequest(StrictRequest):
    """A new version of the tier program, in force from `effective_from` (default now; never in
    the past). Tiers are listed lowest first, with ascending thresholds; `tiers: []` ends tiers."""

    metric: Literal["points", "spend", "orders"] = Field(
        description="points earned, amount spent (order totals and amount earns), or orders."
    )
    window: TierWindowModel
    grace_periods: Annotated[int, Field(ge=0, le=24)] = Field(
        default=1,
        description="A tier reached or confirmed in a period (a month for rolling windows, a year for calendar "
        "years) is held until the end of that period plus this many periods.",
    )
    tiers: Annotated[list[TierModel], Field(max_length=10)]
    effective_from: AwareDatetime | None = None


class TierOut(Out):
    name: str
    threshold: str
    multiplier: str
    perks: list[str]


class TierWindowOut(Out):
    kind: Literal["rolling_months", "calendar_year"]
    months: int | None


class TierProgramOut(Out):
    id: str = Field(examples=["tpv_01JD0000000000000000000000"])
    metric: Literal["points", "spend", "orders"]
    window: TierWindowOut
    grace_periods: int
    tiers: list[TierOut]
    effective_from: datetime
    created_at: datetime
    status: Literal["scheduled", "active", "superseded"]


class TierProgramList(Out):
    data: list[TierProgramOut] = Field(description="Every version, oldest first; none is ever deleted.")


class TierProgressOut(Out):
    next_tier: str
    remaining: int | str = Field(description="Whole points or orders; for spend, an amount (decimal string).")
    metric: Literal["points", "spend", "orders"]


class TierStatusOut(Out):
    tier: str | None
    since: datetime | None
    expires_at: datetime | None = Field(description="When the tier is next reviewed (kept, lowered or lost).")
    multiplier: str | None
    perks: list[str]
    metric: Literal["points", "spend", "orders"]
    qualifying: int | str = Field(description="The total counted in the current window (spend: decimal string).")
    progress: TierProgressOut | None = Field(description="What the next tier takes; null at the top tier.")


class PlanStatusOut(Out):
    """The paid plan in force on the member (chalicelib.domain.plans)."""

    subscription_id: str
    plan_id: str
    name: str | None = Field(description="The plan's name in the catalog now (null: removed from the catalog).")
    tier: str | None = Field(description="The tier the plan grants (the member's tier is the higher of it and theirs).")
    multiplier: str = Field(description="The plan's own extra earning multiplier on order earns (1: none).")
    perks: list[str]
    starts_at: datetime
    ends_at: datetime = Field(description="Its benefits stop at this moment unless a period is recorded.")


BalanceOut.model_rebuild()
MovementOut.model_rebuild()
ReversalOut.model_rebuild()


# --- commerce integrations: order intake, Shopify ---------------------------------------------------

from pydantic import RootModel  # noqa: E402

EventId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
SharedSecret = Annotated[str, StringConstraints(min_length=16, max_length=255, pattern=r"^[\x21-\x7e]+$")]


class OrderCustomer(StrictRequest):
    """Exactly one of `member_id` or `external_id`; `email` and `name` are used when enrolling."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("member_id", "external_id"))

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external_id: ExternalId | None = None
    email: Email | None = None
    name: Name | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> OrderCustomer:
        _check_exactly_one_of(self, "member_id", "external_id")
        return self


class PaidOrderEvent(StrictRequest):
    type: Literal["paid"]
    event_id: EventId = Field(description="The shop's id of this event; with the order id, the idempotency key.")
    order: OrderModel
    customer: OrderCustomer
    enrol: bool = Field(default=False, description="Enrol a customer whose external_id matches no member.")
    occurred_at: OccurredAt | None = None


class RefundedOrderEvent(StrictRequest):
    type: Literal["refunded"]
    event_id: EventId
    order_id: Reference
    amount: Amount | None = Field(
        default=None, description="The amount refunded; its share of the order's total is reversed. Omitted: the rest."
    )
    occurred_at: OccurredAt | None = None


class CancelledOrderEvent(StrictRequest):
    type: Literal["cancelled"]
    event_id: EventId
    order_id: Reference
    occurred_at: OccurredAt | None = None


OrderEvent = Annotated[PaidOrderEvent | RefundedOrderEvent | CancelledOrderEvent, Field(discriminator="type")]


class OrderEventRequest(RootModel[OrderEvent]):
    """A paid, refunded or cancelled order event from a shop."""

    model_config = ConfigDict(strict=True, defer_build=True)


class OrderEventOut(Out):
    event_id: str
    order_id: str
    type: Literal["paid", "refunded", "cancelled"]
    outcome: Literal["earned", "already_earned", "reversed", "nothing_to_reverse"] = Field(
        description="already_earned: a paid event under another event id for an order that had already earned; "
        "nothing was credited and `transaction` is the original earn."
    )
    member_id: str
    points: int = Field(description="Signed change of the member's points this event made (0: none).")
    transaction: TransactionOut | None = Field(
        description="The ledger entry the event made (already_earned: the order's original earn); null when none."
    )
    replayed: bool = Field(description="True when this event had been received before: the first result.")


class CreateShopifyIntegrationRequest(StrictRequest):
    description: Description | None = None
    auto_enrol: bool = Field(default=True, description="Enrol customers who match no member.")
    secret: SharedSecret | None = Field(
        default=None,
        description="Shopify's webhook signing secret; omitted: one is generated and shown once.",
    )


class RotateShopifySecretRequest(StrictRequest):
    secret: SharedSecret | None = Field(default=None, description="The new secret; omitted: one is generated.")


class ShopifyIntegrationOut(Out):
    id: str = Field(examples=["shp_01JD0000000000000000000000_acme"])
    webhook_path: str = Field(description="Where the store sends its webhooks (POST, HMAC-signed).")
    description: str | None
    auto_enrol: bool
    secrets: list[WebhookSecretOut]
    created_at: datetime
    updated_at: datetime


class CreatedShopifyIntegration(ShopifyIntegrationOut):
    secret: str | None = Field(description="The generated secret, shown only now; null when you supplied it.")


class ShopifyWebhookOut(Out):
    topic: str
    outcome: Literal["earned", "already_earned", "reversed", "nothing_to_reverse", "ignored"]
    order_id: str | None
    member_id: str | None
    points: int
    transaction_id: str | None
    replayed: bool


# --- coalition partners ----------------------------------------------------------------------------

PartnerId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$",
        description="Slug naming the partner: 3-32 lowercase letters, digits and inner hyphens.",
        examples=["coffee-co"],
    ),
]
Rate = Annotated[
    str, *_decimal(_positive_decimal(6, 4), 999_999, "Greater than 0, at most 4 decimal places.", examples=["2.5", 2])
]


class CreatePartnerRequest(StrictRequest):
    partner_id: PartnerId
    name: Name
    earn_rate: Rate = Field(description=f"Points per currency unit spent with the partner. {DECIMAL_RULE}")
    redeem_rate: Rate = Field(description=f"Currency value of one point redeemed with the partner. {DECIMAL_RULE}")


class PartnerOut(Out):
    partner_id: str
    name: str
    earn_rate: str
    redeem_rate: str
    created_at: datetime


class PartnerList(Out):
    data: list[PartnerOut]


_MEMBER_IDENTIFIERS = ("member_id", "external_id", "referral_code", "card_code")


class PartnerMember(StrictRequest):
    """Exactly one of `member_id`, `external_id`, `referral_code` or `card_code`."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of(*_MEMBER_IDENTIFIERS))

    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external_id: ExternalId | None = None
    referral_code: ReferralCode | None = None
    card_code: CardCode | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> PartnerMember:
        _check_exactly_one_of(self, *_MEMBER_IDENTIFIERS)
        return self


class PartnerEarnRequest(StrictRequest):
    """Send exactly one of `amount` (spent with the partner, converted at its earn_rate) or `points`."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("points", "amount"))

    member: PartnerMember
    points: PositivePoints | None = None
    amount: Amount | None = None
    reference: Reference | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> PartnerEarnRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class PartnerReverseRequest(StrictRequest):
    """Take back points this partner issued for `reference` (a refund at the partner): exactly one
    of `points`, or an `amount` refunded, converted at the partner's earn_rate as the earn was."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("points", "amount"))

    member: PartnerMember
    reference: Reference = Field(description="The reference the partner earned with.")
    points: PositivePoints | None = None
    amount: Amount | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _points_or_amount(self) -> PartnerReverseRequest:
        _check_exactly_one_of(self, "points", "amount")
        return self


class PartnerRedeemRequest(StrictRequest):
    member: PartnerMember
    points: PositivePoints
    reference: Reference | None = None
    description: Description | None = None


class SettlementQuery(Query):
    from_: date | None = Field(
        default=None, alias="from", description="First day (UTC), inclusive; default: the first of `to`'s month."
    )
    to: date | None = Field(
        default=None, description="Last day (UTC), inclusive, at most 366 days after `from`; default: today."
    )


class SettlementDay(Out):
    day: date
    issued_points: int
    redeemed_points: int
    reversed_points: int = Field(description="Points the partner took back (refunds) that day.")


class SettlementOut(Out):
    partner_id: str
    currency: str
    from_date: date
    to_date: date
    earn_rate: str
    redeem_rate: str
    issued_points: int
    redeemed_points: int
    issued_value: str = Field(description="issued_points / earn_rate: the spend the issued points stand for.")
    redeemed_value: str = Field(description="redeemed_points x redeem_rate.")
    reversed_points: int = Field(description="Points the partner asked back for refunds (whether or not spent).")
    reversed_value: str = Field(description="reversed_points / earn_rate: the refunds they stand for.")
    net_issued_points: int = Field(description="issued_points - reversed_points.")
    days: list[SettlementDay] = Field(description="Days of the period with partner activity.")


# --- referrals -------------------------------------------------------------------------------------


class ReferralCapModel(StrictRequest):
    limit: Annotated[int, Field(ge=1, le=100_000)] = Field(description="Referrals rewarded per referrer and period.")
    per: Literal["day", "week", "month", "year", "ever"] = Field(
        description="A calendar period in the tenant's time zone (week: ISO week)."
    )


class ReferralProgramRequest(StrictRequest):
    """A new version of the referral program, in force from `effective_from` (default now; never in
    the past). `enabled: false` switches referrals off from then on (pending referrals stay pending)."""

    enabled: bool = True
    referrer_points: Annotated[int, Field(ge=1, le=MAX_POINTS_PER_MOVEMENT)] = Field(
        description="Credited to the referrer when the referee's first qualifying order earn commits."
    )
    referee_points: Annotated[int, Field(ge=0, le=MAX_POINTS_PER_MOVEMENT)] = Field(
        default=0, description="Credited to the referee at the same moment (0: none)."
    )
    min_order_total: Amount | None = Field(
        default=None, description="The qualifying order's minimum total; omitted: any order earn qualifies."
    )
    cap: ReferralCapModel | None = Field(
        default=None, description="At most this many referrals rewarded per referrer and period; null: no cap."
    )
    referee_rewarded_when_capped: bool = Field(
        default=True, description="Whether the referee is still rewarded when the referrer's reward is capped."
    )
    effective_from: AwareDatetime | None = None


class ReferralCapOut(Out):
    limit: int
    per: Literal["day", "week", "month", "year", "ever"]


class ReferralProgramOut(Out):
    id: str = Field(examples=["rpv_01JD0000000000000000000000"])
    enabled: bool
    referrer_points: int
    referee_points: int
    min_order_total: str | None
    cap: ReferralCapOut | None
    referee_rewarded_when_capped: bool
    effective_from: datetime
    created_at: datetime
    status: Literal["scheduled", "active", "superseded"]


class ReferralProgramList(Out):
    data: list[ReferralProgramOut] = Field(description="Every version, oldest first; none is ever deleted.")


class ReferralOut(Out):
    referee_id: str
    referrer_id: str
    status: Literal["pending", "qualified", "completed", "capped"] = Field(
        description="pending: no qualifying order yet; qualified: the order is recorded, rewards being credited; "
        "completed: both rewarded; capped: the referrer had reached the cap (the referee per the program)."
    )
    enrolled_at: datetime
    qualified_at: datetime | None
    completed_at: datetime | None
    order_id: str | None = Field(description="The referee's qualifying order.")
    referrer_points: int = Field(description="Points credited to the referrer for this referral.")
    referee_points: int = Field(description="Points credited to the referee for this referral.")


class ReferralList(Out):
    data: list[ReferralOut] = Field(description="Newest referee first.")
    next_cursor: str | None


# --- paid membership: plans and subscriptions ------------------------------------------------------

import re  # noqa: E402

_LATEST_PERIOD = datetime(2100, 1, 1, tzinfo=UTC)

PlanId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$",
        description="Slug naming the plan: 1-32 lowercase letters, digits, '-' and '_'.",
        examples=["premium"],
    ),
]


_MULTIPLIER_ONE = r"^1(\.0{1,2})?$"
#: JSON Schema of what ``PlanModel._grants_something`` enforces.
_GRANTS_SOMETHING: JsonSchema = {
    "anyOf": [
        _present("tier"),
        {
            "required": ["multiplier"],
            "properties": {
                "multiplier": {"not": {"anyOf": [{"type": "string", "pattern": _MULTIPLIER_ONE}, {"const": 1}]}}
            },
        },
        {"required": ["perks"], "properties": {"perks": {"minItems": 1}}},
    ]
}


class PlanModel(StrictRequest):
    """A plan grants a tier, an extra multiplier above 1, or perks (at least one of them)."""

    model_config = ConfigDict(json_schema_extra=_GRANTS_SOMETHING)

    plan_id: PlanId
    name: Name
    tier: TierName | None = Field(default=None, description="A tier of the tier program in force; null: none.")
    multiplier: TierMultiplier = Field(
        default="1", description=f"Extra earning multiplier of order earns, 1 to 10. {DECIMAL_RULE}"
    )
    perks: Annotated[list[Perk], Field(max_length=20)] = Field(default_factory=list)
    join_bonus: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0, description="Points credited when a member first subscribes to this plan (once per member)."
    )

    @model_validator(mode="after")
    def _grants_something(self) -> PlanModel:
        if self.tier is None and re.fullmatch(_MULTIPLIER_ONE, self.multiplier) and not self.perks:
            raise ValueError("a plan grants a tier, a multiplier above 1 or perks")
        return self


class PlansRequest(StrictRequest):
    """The whole catalog, replacing the previous one. Subscriptions keep what their recorded
    periods granted; a renewal takes the plan as it is then."""

    plans: Annotated[list[PlanModel], Field(max_length=20)]


class PlanOut(Out):
    plan_id: str
    name: str
    tier: str | None
    multiplier: str
    perks: list[str]
    join_bonus: int


class PlanList(Out):
    data: list[PlanOut]
    updated_at: datetime | None


class SubscriptionRequest(StrictRequest):
    """A paid period as the brand's billing reports it (this API takes no payment)."""

    plan_id: PlanId
    period_start: AwareDatetime = Field(description="Start of the paid period (RFC 3339 with offset).")
    period_end: AwareDatetime = Field(description="End of the paid period, after period_start, in the future.")
    reference: Reference = Field(description="The billing's invoice or charge id: recorded once per tenant.")

    @field_validator("period_start", "period_end")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if not _EARLIEST <= value < _LATEST_PERIOD:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return value


class PeriodOut(Out):
    reference: str
    period_start: datetime
    period_end: datetime
    recorded_at: datetime


class SubscriptionOut(Out):
    id: str = Field(examples=["sub_01JD0000000000000000000000"])
    member_id: str
    plan_id: str
    status: Literal["active", "cancelled", "lapsed"] = Field(
        description="lapsed as soon as ends_at has passed (the lapse job records it and its events within the hour)."
    )
    tier: str | None = Field(description="The tier it grants (as of its latest recorded period).")
    multiplier: str
    starts_at: datetime
    ends_at: datetime
    cancelled_at: datetime | None
    lapsed_at: datetime | None
    join_bonus: int = Field(description="Points credited when it started (0: none).")
    periods: list[PeriodOut] = Field(description="The latest recorded periods (at most 12), oldest first.")
    period_count: int
    created_at: datetime
    updated_at: datetime


class SubscriptionList(Out):
    data: list[SubscriptionOut] = Field(description="Newest first.")
    next_cursor: str | None


class JoinBonusOut(Out):
    points: int
    transaction_id: str | None


class SubscriptionRecordOut(Out):
    outcome: Literal["started", "renewed", "recorded", "already_recorded"] = Field(
        description="started: a new subscription; renewed: extended (or resumed) by the period; recorded: the "
        "period lies within what was covered; already_recorded: this reference was recorded before (nothing written)."
    )
    subscription: SubscriptionOut
    join_bonus: JoinBonusOut | None = Field(description="The join bonus this recording credited; null: none.")


# --- bulk imports and exports ------------------------------------------------------------------------


class ImportRequest(StrictRequest):
    """The file as JSON; or send the file itself with `Content-Type: text/csv`.

    Columns (header row, any order): `external_id` (required), `email`, `name`, `birthday`
    (YYYY-MM-DD), `marketing_consent` (true/false), `points` (opening balance, a whole number
    >= 0), `tier` (a tier of the tier program in force)."""

    csv: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The CSV text, UTF-8, comma-separated, first row the header.",
        examples=["external_id,email,points\ncust-1,ada@example.com,120\n"],
    )
    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="Shown in the import's record (the file's name, for you)."
    )


class ImportRowIssueOut(Out):
    row: int = Field(description="The row as a spreadsheet shows it: the header is row 1.")
    external_id: str | None
    outcome: Literal["failed", "skipped"] = Field(
        description="failed: the row is invalid (nothing written); skipped: a member with this external_id "
        "exists already (left unchanged)."
    )
    code: str = Field(
        description="malformed_row, duplicate_external_id, invalid_external_id, invalid_email, invalid_name, "
        "invalid_birthday, invalid_marketing_consent, invalid_points, unknown_tier; member_exists (skipped)."
    )
    message: str
    details: dict[str, Any]


class ImportCounts(Out):
    total: int = Field(description="Rows of the file (blank lines not counted).")
    processed: int
    imported: int = Field(description="Members enrolled with their opening balance (and tier).")
    skipped: int = Field(description="Rows whose external_id was already a member's.")
    failed: int = Field(description="Invalid rows: nothing of them was written.")


class ImportSummaryOut(Out):
    id: str = Field(examples=["imp_01JD0000000000000000000000"])
    status: Literal["queued", "running", "completed", "failed"] = Field(
        description="failed: the import itself kept failing (not its rows) and is no longer resumed."
    )
    filename: str | None
    columns: list[str]
    counts: ImportCounts
    chunks: int = Field(description="Chunks the rows are stored in (up to 500 rows each).")
    chunks_done: int
    attempts: int = Field(description="Failed attempts at running the import (each resumes from its checkpoint).")
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportOut(ImportSummaryOut):
    errors: list[ImportRowIssueOut] = Field(
        description="The first rows not imported (failed or skipped), in row order; all of them: "
        "GET /v1/imports/{import_id}/errors."
    )
    error_count: int = Field(description="Rows not imported: counts.failed + counts.skipped.")


class ImportList(Out):
    data: list[ImportSummaryOut]
    next_cursor: str | None


class ImportRowIssueList(Out):
    data: list[ImportRowIssueOut]
    next_cursor: str | None


ExportLimit = Annotated[int, Field(ge=1, le=1000)]


class MemberExportQuery(Query):
    limit: ExportLimit = Field(default=1000, description="Members per page.")
    cursor: Cursor | None = Field(default=None, description="The Next-Cursor header of the previous page.")


class LedgerExportQuery(Query):
    from_: AwareDatetime | None = Field(
        default=None,
        alias="from",
        description="First instant (RFC 3339, e.g. 2026-01-01T00:00:00Z), inclusive, to the millisecond; "
        "default: the first of `to`'s month (UTC).",
    )
    to: AwareDatetime | None = Field(
        default=None,
        description="End instant, exclusive, at most 366 days after `from`; default: now. Entries of the last "
        "5 seconds are not visible yet.",
    )
    limit: ExportLimit = Field(default=1000, description="Entries per page.")
    cursor: Cursor | None = Field(default=None, description="The Next-Cursor header of the previous page.")
