"""Domain errors -> HTTP, in one table. Every error body has the same shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib.domain import errors

if TYPE_CHECKING:
    from pydantic import ValidationError

#: Most specific classes first; the first match wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.LoyaltyError], int], ...] = (
    (errors.InvalidRequest, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.MemberErased, 410),
    (errors.NotFound, 404),
    (errors.TenantNotReady, 409),
    (errors.Conflict, 409),
    (errors.BusinessRuleViolation, 422),
    (errors.StorageLimitExceeded, 422),
    (errors.RetryLater, 503),
)

JSON_HEADERS = {"Content-Type": "application/json"}
#: Seconds a client should wait before calling again with the key of a tenant still being provisioned.
TENANT_NOT_READY_RETRY_AFTER = "5"


def status_of(error: errors.LoyaltyError) -> int:
    return status_for(type(error))


def status_for(error_class: type[errors.LoyaltyError]) -> int:
    """The HTTP status of an error class (500 for one the table does not name)."""
    for mapped, status in STATUS_BY_ERROR:
        if issubclass(error_class, mapped):
            return status
    return 500


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def retry_advice(*, idempotency_key: bool) -> str:
    """What a 503 asks of the caller. A route that takes an Idempotency-Key is retried with
    the same key (the attempt may have been applied: the key makes the retry answer its first
    result instead of applying it twice); any other route is simply called again."""
    return "retry shortly with the same Idempotency-Key" if idempotency_key else "retry shortly"


def error_response(error: errors.LoyaltyError, *, idempotency_key: bool = False) -> Response:
    """The error body. ``idempotency_key``: whether the route takes one, which a 503 (whose
    message the domain gives as its cause only) tells the caller to retry with."""
    status = status_of(error)
    message = error.message
    if isinstance(error, errors.RetryLater):
        message = f"{message}; {retry_advice(idempotency_key=idempotency_key)}"
    headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="loyalty"'
    if status == 503:
        headers["Retry-After"] = "1"
    if isinstance(error, errors.TenantNotReady):
        headers["Retry-After"] = TENANT_NOT_READY_RETRY_AFTER
    return Response(body=error_body(error.code, message, error.details), status_code=status, headers=headers)


def internal_error_response() -> Response:
    return Response(
        body=error_body("internal_error", "an unexpected error occurred; it has been logged"),
        status_code=500,
        headers=dict(JSON_HEADERS),
    )


def invalid_request_from(validation: ValidationError, *, location: str) -> errors.InvalidRequest:
    """pydantic's errors as `details.fields`: one entry per offending field, never the input value.
    A date outside its window (chalicelib.domain.dating) also names the window's `min` and
    `max`, in its field and in `details`, as the domain's own refusal does."""
    from chalicelib.domain import dating

    fields = []
    window: dict[str, Any] = {}
    for problem in validation.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in problem["loc"])
        field = {"path": path or location, "message": problem["msg"], "type": problem["type"]}
        if problem["type"] == dating.OUT_OF_RANGE:
            window = {name: problem.get("ctx", {})[name] for name in ("min", "max")}
            field.update(window)
        fields.append(field)
    return errors.InvalidRequest(
        f"the request {location} is invalid", details={"location": location, "fields": fields, **window}
    )
