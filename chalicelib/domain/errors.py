"""The domain's error hierarchy. The API maps each class to an HTTP status in one table."""

from __future__ import annotations

from typing import Any


class LoyaltyError(Exception):
    """Base of every error the API reports to a caller."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class InvalidRequest(LoyaltyError):
    code = "invalid_request"

    @classmethod
    def for_fields(cls, message: str, *fields: tuple[str, str, str]) -> InvalidRequest:
        """An error naming each offending field as (path, message, type), like pydantic's."""
        return cls(message, details={"fields": [{"path": p, "message": m, "type": t} for p, m, t in fields]})


class Unauthorized(LoyaltyError):
    code = "unauthorized"


class Forbidden(LoyaltyError):
    code = "forbidden"


class TenantSuspended(Forbidden):
    code = "tenant_suspended"


class NotFound(LoyaltyError):
    code = "not_found"


class Conflict(LoyaltyError):
    code = "conflict"


class OrderNotPaid(Conflict):
    """A refund or cancellation arrived before the order's paid event."""

    code = "order_not_paid"


class TenantExists(Conflict):
    code = "tenant_exists"


class MemberExists(Conflict):
    code = "member_exists"


class TenantNotReady(Conflict):
    """The tenant's table is still being provisioned (HTTP 409): its keys work once it is
    ``active``, typically within a minute of its creation."""

    code = "tenant_not_ready"


class WebhookDisabled(Conflict):
    """A redelivery asked of a disabled webhook (enable it first)."""

    code = "webhook_disabled"


class BusinessRuleViolation(LoyaltyError):
    """A well-formed request the rules refuse (HTTP 422)."""

    code = "unprocessable"


class InsufficientPoints(BusinessRuleViolation):
    code = "insufficient_points"


class IdempotencyKeyReused(BusinessRuleViolation):
    code = "idempotency_key_reused"


class AmountTooSmall(BusinessRuleViolation):
    code = "amount_too_small"


class BalanceLimitExceeded(BusinessRuleViolation):
    code = "balance_limit_exceeded"


class MovementTooLarge(BusinessRuleViolation):
    code = "movement_too_large"


class LimitReached(BusinessRuleViolation):
    """A limit of the program was reached (an activity's allowance, a cap, a reward's stock)."""

    code = "limit_reached"


class ActivityNotRewarded(BusinessRuleViolation):
    """No activity rule in force rewards this activity type."""

    code = "activity_not_rewarded"


class ReversalExceedsEarned(BusinessRuleViolation):
    code = "reversal_exceeds_earned"


class ReversalNeedsPoints(BusinessRuleViolation):
    """A refund by amount for a reference whose earns recorded no amount paid: only points
    can say what to take back."""

    code = "reversal_needs_points"


class RewardUnavailable(BusinessRuleViolation):
    """The reward cannot be redeemed now (``details.reason``: archived, window or tier)."""

    code = "reward_unavailable"


class OutOfStock(BusinessRuleViolation):
    """The reward's stock (or its pool of codes) is used up."""

    code = "out_of_stock"


class CouponNotUsable(Conflict):
    """The coupon is not in a state that allows it (``details.status``: used, expired, cancelled)."""

    code = "coupon_not_usable"


class CouponCodeExists(Conflict):
    """Codes uploaded to a pool that exist already (``details.codes``), in any reward."""

    code = "coupon_code_exists"


class CodePoolNotUsed(Conflict):
    """Codes uploaded to a reward whose coupons get generated codes."""

    code = "code_pool_not_used"


class StorageLimitExceeded(LoyaltyError):
    """A write DynamoDB would refuse: over one of its limits (items or bytes per transaction
    or batch, item size, digits of a number). Checked before the request is sent; retrying
    the same request cannot help (HTTP 422). ``details.limit`` names the limit."""

    code = "storage_limit_exceeded"


class RetryLater(LoyaltyError):
    """Throttling or transaction conflicts that survived our bounded retries. The message
    gives the cause only: the API adds how to retry, which depends on the route (with the
    same Idempotency-Key, or simply again)."""

    code = "retry_later"


class TransientStoreError(Exception):
    """Raised by repositories for failures that are safe to retry (throttling, conflicts).

    Not a LoyaltyError: services retry it and turn it into RetryLater when retries run out.
    """


class TransferNotAllowed(BusinessRuleViolation):
    """The program does not allow this transfer (``details.reason``: disabled, below_minimum,
    daily_maximum, same_member)."""

    code = "transfer_not_allowed"


class MemberErased(NotFound):
    """The member was erased at the brand's request (HTTP 410): their personal data is gone and
    nothing more can be done for them. The financial record (amounts, dates) stays."""

    code = "member_erased"


class TokenInvalid(Unauthorized):
    """A member token that is malformed, forged, expired, revoked (the member's tokens, or the
    tenant's signing key rotated), or presented for another tenant (HTTP 401). A new token is
    minted by the brand's backend."""

    code = "token_invalid"


# --- the errors of one feature each, declared here so routes can name them without importing
# --- the feature's domain module when the app is imported


class PartnerExists(Conflict):
    """A partner with this id exists already in the tenant."""

    code = "partner_exists"


class CardCodeTaken(Conflict):
    """Another member of the tenant holds this card code (``details.member_id`` names it)."""

    code = "card_code_taken"


class UnknownReferralCode(BusinessRuleViolation):
    """No member of the tenant has this referral code (another tenant's codes are unknown too)."""

    code = "unknown_referral_code"


class SelfReferral(BusinessRuleViolation):
    """The new member shares the referrer's email or external id."""

    code = "self_referral"


class SubscriptionActive(Conflict):
    """The member holds a subscription of another plan that has not ended (cancel it first)."""

    code = "subscription_active"


class PeriodNotContiguous(Conflict):
    """The period starts after the member's current subscription ends: it would leave a gap."""

    code = "period_not_contiguous"


class ReferenceRecorded(Conflict):
    """The billing reference was recorded already for another member, plan or period."""

    code = "subscription_reference_exists"


class SandboxOnly(Conflict):
    """A test clock belongs to sandbox brands: a live brand's time is real time."""

    code = "sandbox_only"


class HouseholdNotAllowed(BusinessRuleViolation):
    """The program or the household's own rules refuse the change (``details.reason``:
    disabled, full, owner_role, owner_not_alone)."""

    code = "household_not_allowed"


class MemberInHousehold(Conflict):
    """The member already belongs to a household (a member is in at most one at a time)."""

    code = "member_in_household"


class HouseholdRedeemerRequired(BusinessRuleViolation):
    """Only the household's owner or a redeemer may redeem from its pool (``details.role``: the
    member's role, or null when the member is not in the household)."""

    code = "household_redeemer_required"
