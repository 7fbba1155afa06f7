"""Shared by every feature's schemas: the base models, the field types and the rules written
both as checks and as JSON Schema, the error body, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from chalicelib.domain import dating
from chalicelib.domain.clock import request_now
from chalicelib.domain.ids import MAX_SEGMENTS, SEGMENT_PATTERN
from chalicelib.domain.movement_requests import MAX_POINTS_PER_MOVEMENT

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
    _dated(lambda value: dating.check_occurred_at(value, request_now())),
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


class ListQuery(Query):
    limit: Limit = 20
    cursor: Cursor | None = None
