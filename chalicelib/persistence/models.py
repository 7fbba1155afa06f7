"""Item shapes of the control-plane table and of each tenant's own table.

These classes carry attributes only. Concrete, table-bound classes are created per table
by :mod:`chalicelib.persistence.factory`, each with its own ``Meta`` and its own index
instances, so no class state is ever shared between two tenants' tables.

Control-plane table (one per stage)::

    pk                   sk         gsi1pk                     gsi1sk     what
    TENANT#<tenant>      #TENANT    TENANTS                    <tenant>   a brand
    APIKEY#<key id>      #APIKEY    TENANT#<tenant>#APIKEYS    <key id>   an API key (hash only)
    AUDIT                <entry id> -                          -          an operator's audit entry

Tenant table (one per brand)::

    pk                   sk         gsi1pk                     gsi1sk     what
    MEMBER#<member>      #PROFILE   MEMBERS                    <member>   profile
    MEMBER#<member>      #BALANCE   -                          -          balance + version
    EXTID#<external id>  #EXTID     -                          -          external id -> member
    ENROLREQ#<idem key>  #ENROLREQ  -                          -          an enrolment's Idempotency-Key
    LEDGER#<idem key>    #ENTRY     MEMBER#<member>#LEDGER     <seq:012>  ledger entry
    MEMBER#<member>      LOT#<txn>  -                          -          lot (points left, expiry)
    PROGRAM              #CURRENT   -                          -          program settings
    PROGRAM              RULE#<id>  -                          -          an earning rule
    COUNTER#<name>       #COUNTER   -                          -          a limit counter
    REWARD#<reward>      #REWARD    REWARDS                    <reward>   a reward of the catalog
    COUPON#<code>        #COUPON    REWARD#<reward>#POOL       <code>     a pool code not issued yet
    COUPON#<code>        #COUPON    MEMBER#<member>#COUPONS    <issued at>#<code>  an issued coupon
    NOTICE#<type>#<member>#<subject>  #NOTICE                     -          a notice (feed event)
    WEBHOOK#<webhook>    #WEBHOOK   WEBHOOKS                   <webhook>  a webhook endpoint
    WEBHOOK#<webhook>    DELIVERY#<event ulid>  WEBHOOK#<webhook>#OUTBOX  <event ulid>  a delivery
    WEBHOOKS|EVENTBRIDGE|INSIGHTS  #CHECKPOINT  -              -          a feed consumer's cursor + lease
    INSIGHTS#DAY|INSIGHTS#COHORT|INSIGHTS  <day>|<month>|#NOW  -  -    the insights' aggregate rows
    INSIGHTS#MEMBER#<member>  #INSIGHTS  -                     -          the insights fold's mark of a member
    WEBHOOKS|EVENTBRIDGE  #CHECKPOINT  -                       -          a feed consumer's cursor + lease
    MEMBERACCESS         #SETTINGS  -                          -          member-token signing key + allowed origins

A delivery is in ``gsi1`` (its endpoint's *outbox*, in event order) only while it is pending
or retrying: the drain reads the outbox whole from the index, and a settled delivery drops
out of it. The delivery log is the webhook's own partition, newest first.

    MEMBER#<member>      #TIERREVIEW  -  (gsi2: TIERS#<shard> / <review at>#<member>)  tier review due
    REFCODE#<code> | CARD#<code>  #CODE  -                  -          a referral / card code -> member
    REFERRAL#<referee>   #REFERRAL  MEMBER#<referrer>#REFERRALS  <referee>  a referral (gsi2 while qualified)
    PROGRAM              REFERRALS#<from>#<version>  -      -          a version of the referral program
    PROGRAM              TIERS#<from>#<version>  -          -          a version of the tier program
    AUDIT                <entry id>  -                      -          an audit entry (append-only)
    MEMBER#<member>      CONSENT#<ulid>  -                  -          a change of the member's consent

A pending lot is in the sparse, keys-only index ``gsi2`` under ``MATURES#<shard>`` /
``<matures at>#<member>#<lot>``, then (if it expires) under ``EXPIRES#<shard>`` /
``<expires at>#...``, so the jobs find what is due without scanning members; a lot leaves
the table (and the index) once spent or expired. Under an inactivity policy a balance
holding points is there too, under ``EXPIRES#<shard>`` / ``<deadline>#<member>#LAPSE``,
and a member with a birthday under ``BIRTHDAY#<MM-DD>`` / ``<member>`` (the notify job).

The balance lives apart from the profile so a movement rewrites only a small item and
the members index (which projects profiles) is not touched by earning or redeeming.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.indexes import GlobalSecondaryIndex
from pynamodb.models import Model


class KeyedItem(Model):
    """Generic single-table keys. Never bound to a table itself."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    @classmethod
    def _get_connection(cls) -> TableConnection:
        """PynamoDB opens one botocore client per model class (~60 ms each, and a connection
        pool each); table-bound classes share the client their factory provides instead."""
        connection = super()._get_connection()
        provide_client = getattr(cls.Meta, "client_provider", None)
        if provide_client is not None and connection.connection._client is None:
            connection.connection._client = provide_client()
        return connection


class IndexedItem(KeyedItem):
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    #: The table-bound classes get index instances of their own (``factory._bind``), so the
    #: indexes are only declared on these bases, never assigned.
    gsi1: ClassVar[GlobalSecondaryIndex[Any]]


class FeedItem(IndexedItem):
    """An item that is also an event of the tenant's feed (index ``feed``: one partition per
    UTC day, sorted by the event's ULID). The event is the item the change writes anyway,
    so there is never an event without its change, nor a change without its event."""

    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    feed: ClassVar[GlobalSecondaryIndex[Any]]


class TenantTableSchema(FeedItem):
    """All key attributes of a tenant table: the class its table is created from."""

    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)


# --- control plane -------------------------------------------------------------------


class TenantItem(IndexedItem):
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    currency = UnicodeAttribute()
    timezone = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    #: Failed attempts at provisioning its table since the last success (absent: none).
    provisioning_attempts = NumberAttribute(null=True)
    provisioning_error = UnicodeAttribute(null=True)
    provisioning_failed_at = UTCDateTimeAttribute(null=True)
    #: False from registration until the tenant's first tier version, then True (in that
    #: version's transaction); absent on tenants registered before it was kept: unknown.
    tiers_stored = BooleanAttribute(null=True)
    #: A sandbox brand's flag and how far its test clock runs ahead of real time (absent: live, none).
    sandbox = BooleanAttribute(null=True)
    clock_offset_seconds = NumberAttribute(null=True)


class ApiKeyItem(IndexedItem):
    key_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    scopes = UnicodeSetAttribute()
    secret_sha256 = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    partner_id = UnicodeAttribute(null=True)


# --- tenant table --------------------------------------------------------------------


class MemberItem(FeedItem):
    member_id = UnicodeAttribute()
    external_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)
    marketing_consent = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    #: The member's segments (``vip``, ``staff``); absent: none (DynamoDB has no empty sets).
    segments = UnicodeSetAttribute(null=True)
    #: Members with a birthday are in ``gsi2`` under ``BIRTHDAY#<MM-DD>`` / ``<member>``.
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    #: Referrals and codes (chalicelib.domain.referrals); each code has its guard item.
    referral_code = UnicodeAttribute(null=True)
    card_code = UnicodeAttribute(null=True)
    referred_by = UnicodeAttribute(null=True)
    #: When the member was erased (chalicelib.domain.privacy): the personal attributes are gone.
    erased_at = UTCDateTimeAttribute(null=True)
    #: Member access (chalicelib.persistence.member_access): one more each time the member's
    #: tokens are revoked; absent: 0.
    token_generation = NumberAttribute(null=True)
    #: Enrolled by a bulk import (absent: otherwise).
    imported = BooleanAttribute(null=True)


class BalanceItem(KeyedItem):
    member_id = UnicodeAttribute()
    available = NumberAttribute()
    lifetime_earned = NumberAttribute()
    lifetime_redeemed = NumberAttribute()
    lifetime_adjusted = NumberAttribute()
    lifetime_expired = NumberAttribute(default=0)
    version = NumberAttribute()
    updated_at = UTCDateTimeAttribute()
    lot_count = NumberAttribute(default=0)
    next_expiry_at = UTCDateTimeAttribute(null=True)
    next_expiry_points = NumberAttribute(default=0)
    pending = NumberAttribute(default=0)
    next_maturity_at = UTCDateTimeAttribute(null=True)
    lifetime_reversed = NumberAttribute(default=0)
    last_activity_at = UTCDateTimeAttribute(null=True)
    inactive_at = UTCDateTimeAttribute(null=True)
    order_count = NumberAttribute(null=True)
    #: Tiers (chalicelib.domain.tiers): the member's tier, since, review time, change counter,
    #: and qualifying totals by local month as compact JSON.
    tier = UnicodeAttribute(null=True)
    tier_since = UTCDateTimeAttribute(null=True)
    tier_expires_at = UTCDateTimeAttribute(null=True)
    tier_rev = NumberAttribute(null=True)
    tier_buckets = UnicodeAttribute(null=True, attr_name="tq")
    #: The paid plan in force (chalicelib.domain.plans.PlanGrant) as compact JSON: what an earn needs.
    plan = UnicodeAttribute(null=True, attr_name="pl")
    #: Under an inactivity policy, a balance holding points is in ``gsi2`` at its deadline.
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    #: The referrer while the member's referral is pending (cleared by the qualifying order earn).
    referral_from = UnicodeAttribute(null=True)
    #: Net points transferred (received minus sent); absent: none.
    lifetime_transferred = NumberAttribute(null=True)
    #: When the member was erased (set once, by the erasure's transaction).
    erased_at = UTCDateTimeAttribute(null=True)


class LotItem(KeyedItem):
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)
    remaining = NumberAttribute()
    original = NumberAttribute()
    earned_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)
    matures_at = UTCDateTimeAttribute(null=True)


class ExternalIdItem(KeyedItem):
    member_id = UnicodeAttribute()
    #: The bulk import that created the member (absent: enrolled otherwise).
    import_id = UnicodeAttribute(null=True)


class EnrolmentItem(KeyedItem):
    """An enrolment's Idempotency-Key (pk ``ENROLREQ#<key>``, sk ``#ENROLREQ``), written only if
    absent in the transaction that writes the member: what a replay needs besides the request
    itself (whose fingerprint it keeps) to answer the member it created. No personal data."""

    member_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    referral_code = UnicodeAttribute(null=True)
    referred_by = UnicodeAttribute(null=True)


class LedgerItem(FeedItem):
    """One ledger entry. The idempotency key, member id and sequence live in its keys only
    (pk, gsi1pk, gsi1sk), and stored names are short: an entry under 1 KB costs 2 write
    units in a transaction, over it 4, so every byte the entry repeats is money."""

    transaction_id = UnicodeAttribute(attr_name="txn_id")
    movement = UnicodeAttribute()
    points = NumberAttribute()
    request_fingerprint = UnicodeAttribute(attr_name="fingerprint")
    occurred_at = UTCDateTimeAttribute()
    created_at = UTCDateTimeAttribute()
    amount = UnicodeAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    reference = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    metadata: MapAttribute[str, str] = MapAttribute(null=True)
    actor_key_id = UnicodeAttribute(null=True, attr_name="actor")
    expires_at = UTCDateTimeAttribute(null=True)
    matures_at = UTCDateTimeAttribute(null=True)
    pending_change = NumberAttribute(null=True)
    requested = NumberAttribute(null=True)
    after_available = NumberAttribute(attr_name="bal_available")
    after_lifetime_earned = NumberAttribute(attr_name="bal_earned")
    after_lifetime_redeemed = NumberAttribute(attr_name="bal_redeemed")
    after_lifetime_adjusted = NumberAttribute(attr_name="bal_adjusted")
    #: Stored only when set (zero / none are the absent default), to keep entries small.
    after_lifetime_expired = NumberAttribute(null=True, attr_name="bal_expired")
    after_next_expiry_at = UTCDateTimeAttribute(null=True, attr_name="bal_next_expiry_at")
    after_next_expiry_points = NumberAttribute(null=True, attr_name="bal_next_expiry_points")
    after_pending = NumberAttribute(null=True, attr_name="bal_pending")
    after_lifetime_reversed = NumberAttribute(null=True, attr_name="bal_reversed")
    after_inactive_at = UTCDateTimeAttribute(null=True, attr_name="bal_inactive_at")
    #: Order earns: the breakdown by rule, as compact JSON ([source, name, points, rule id]...).
    breakdown = UnicodeAttribute(null=True, attr_name="bd")
    #: The member's tier after the movement (absent: none).
    after_tier = UnicodeAttribute(null=True, attr_name="bal_tier")
    #: Earning-cap counters the entry moved, as compact JSON ([name, by]...); absent: none.
    cap_counters = UnicodeAttribute(null=True, attr_name="cc")
    #: Net points transferred after the entry (absent: none).
    after_lifetime_transferred = NumberAttribute(null=True, attr_name="bal_transferred")
    #: Order earns: the order as sent (``Order.canonical`` with its id), compact JSON.
    order = UnicodeAttribute(null=True, attr_name="ord")


class CounterItem(KeyedItem):
    """A counter (pk ``COUNTER#<name>``, sk ``#COUNTER``), changed only inside ledger transactions."""

    #: Stored as ``count``; named otherwise here, where ``count`` is the model's query method.
    value = NumberAttribute(default=0, attr_name="count")


class RuleItem(KeyedItem):
    """An earning rule: pk ``PROGRAM``, sk ``RULE#<rule id>``; its definition as JSON."""

    definition = UnicodeAttribute()


class NoticeItem(FeedItem):
    """A notification event, once per type, member and subject (pk ``NOTICE#...``, sk ``#NOTICE``)."""

    notice_id = UnicodeAttribute()
    type = UnicodeAttribute()
    member_id = UnicodeAttribute()
    subject = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    #: The notice's figures as JSON.
    data = UnicodeAttribute()


class JobRunItem(KeyedItem):
    """pk ``JOBRUNS``, sk the run id (a ULID: newest last)."""

    job = UnicodeAttribute()
    as_of = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    status = UnicodeAttribute()
    counts: MapAttribute[str, int] = MapAttribute(null=True)
    error = UnicodeAttribute(null=True)


class ProgramItem(KeyedItem):
    points_per_currency_unit = UnicodeAttribute()
    rounding = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    #: The expiry policy as JSON (kind, days, months, period, periods_after).
    expiry = UnicodeAttribute(null=True)
    pending_days = NumberAttribute(null=True)
    reversal_clawback = BooleanAttribute(null=True)
    expiry_warning_days = NumberAttribute(null=True)
    birthday_bonus = NumberAttribute(null=True)
    earn_on_shipping = BooleanAttribute(null=True)
    earn_on_tax = BooleanAttribute(null=True)
    #: The transfer policy as JSON (enabled, minimum, daily_maximum); absent: transfers disabled.
    transfers = UnicodeAttribute(null=True)
    #: What an earn needs to know before it reads the rules or the tier versions, kept by every
    #: write of a rule or a tier version (in its transaction) and of the program: ``summarised``
    #: once it covers every rule and version stored, ``capped_rules`` the ids of the rules with a
    #: cap (none: the attribute is absent), ``tiers_stored`` once a tier version is stored.
    summarised = BooleanAttribute(null=True)
    capped_rules = UnicodeSetAttribute(null=True)
    tiers_stored = BooleanAttribute(null=True)
    #: Set once a challenge is stored (in its transaction): a movement reads challenges only then.
    challenges_stored = BooleanAttribute(null=True)
    #: Privacy (chalicelib.domain.privacy): retention in years, personal metadata keys and descriptions.
    erase_inactive_after_years = NumberAttribute(null=True)
    personal_metadata_keys = UnicodeSetAttribute(null=True)
    personal_descriptions = BooleanAttribute(null=True)
    #: Money per point (a decimal string); absent: "0".
    point_value = UnicodeAttribute(null=True)
    #: The welcome (chalicelib.domain.welcome): absent is 0 / false.
    signup_bonus = NumberAttribute(null=True)
    welcome_imported = BooleanAttribute(null=True)
    #: The household policy as JSON (enabled, max_members); absent: households disabled.
    households = UnicodeAttribute(null=True)


class WebhookItem(IndexedItem):
    """A webhook endpoint (pk ``WEBHOOK#<id>``, sk ``#WEBHOOK``; gsi1 ``WEBHOOKS`` / ``<id>``).
    ``secrets`` is JSON: ``[{"s": <KMS ciphertext>, "c": created, "e": expires or null}]``."""

    webhook_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = UnicodeSetAttribute()
    description = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    secrets = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    active_since = UTCDateTimeAttribute()
    failing_since = UTCDateTimeAttribute(null=True)
    retry_at = UTCDateTimeAttribute(null=True)
    disabled_at = UTCDateTimeAttribute(null=True)
    disabled_reason = UnicodeAttribute(null=True)
    drain_lease_until = UTCDateTimeAttribute(null=True)


class DeliveryItem(IndexedItem):
    """A delivery (pk ``WEBHOOK#<webhook>``, sk ``DELIVERY#<event ulid>``); in the outbox while outstanding.
    ``history`` is JSON: the last attempts as ``[at, status code, latency ms, error]``."""

    delivery_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    member_id = UnicodeAttribute(null=True)
    payload = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    history = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    next_attempt_at = UTCDateTimeAttribute(null=True)
    succeeded_at = UTCDateTimeAttribute(null=True)
    #: The table's TTL attribute (epoch seconds): set once the delivery is settled.
    expires_at = TTLAttribute(null=True)


class FeedCheckpointItem(KeyedItem):
    """pk ``<consumer>`` (``WEBHOOKS``, ``EVENTBRIDGE``), sk ``#CHECKPOINT``: how far a feed
    consumer has read, since when it publishes, and who is reading."""

    cursor = UnicodeAttribute(null=True)
    since = UTCDateTimeAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


class RewardItem(IndexedItem):
    """A reward (pk ``REWARD#<id>``, sk ``#REWARD``; gsi1 ``REWARDS`` / ``<id>``); its
    definition as JSON, ``version`` for optimistic concurrency between two edits."""

    version = NumberAttribute()
    definition = UnicodeAttribute()


class CouponItem(IndexedItem):
    """A coupon or an unissued pool code (pk ``COUPON#<code>``, sk ``#COUPON``): one key space
    for both, so a code is unique in the tenant. In ``gsi1`` under its reward's pool while
    available, then under its member's coupons (newest last)."""

    reward_id = UnicodeAttribute()
    status = UnicodeAttribute()
    source = UnicodeAttribute()
    member_id = UnicodeAttribute(null=True)
    points = NumberAttribute(null=True)
    issued_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    #: Counters the redemption moved besides the stock (restored when it is cancelled).
    limit_counter = UnicodeAttribute(null=True)
    donation_counter = UnicodeAttribute(null=True)
    used_at = UTCDateTimeAttribute(null=True)
    used_key = UnicodeAttribute(null=True)
    used_reference = UnicodeAttribute(null=True)
    cancelled_at = UTCDateTimeAttribute(null=True)
    uploaded_at = UTCDateTimeAttribute(null=True)


# --- tiers --------------------------------------------------------------------------------------


class TierReviewItem(KeyedItem):
    """A member's tier review (pk ``MEMBER#<member>``, sk ``#TIERREVIEW``), in the sparse,
    keys-only ``gsi2`` under ``TIERS#<shard>`` / ``<review at>#<member>`` while the member holds
    a tier: the review job finds who is due without scanning members. Written in the same
    transaction as the balance whose tier it follows."""

    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)


# --- commerce integrations (order intake, Shopify) ---------------------------------------


class OrderEventItem(KeyedItem):
    """A handled order event (pk ``ORDER#<source>#<order id>``, sk ``EVENT#<event id>``):
    its outcome, what a replay answers, and a refund's amount for the next refund's share."""

    source = UnicodeAttribute()
    order_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    member_id = UnicodeAttribute()
    outcome = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    ledger_key = UnicodeAttribute(null=True)
    refund_amount = UnicodeAttribute(null=True)
    points = NumberAttribute(default=0)


class ShopifyIntegrationItem(IndexedItem):
    """A Shopify integration (pk ``SHOPIFY#<id>``, sk ``#SHOPIFY``; gsi1 ``SHOPIFY`` / ``<id>``).
    ``secrets`` is JSON as for webhooks: ``[{"s": <KMS ciphertext>, "c": created, "e": expires or null}]``."""

    integration_id = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    auto_enrol = BooleanAttribute(default=True)
    secrets = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class SubscriptionItem(KeyedItem):
    """Paid membership (chalicelib.persistence.plans), ``data`` as JSON, three shapes:

    * a subscription: pk ``MEMBER#<member>``, sk ``SUB#<subscription id>``, ``version``; while
      active in the sparse, keys-only ``gsi2`` under ``PLANS#<shard>`` / ``<ends at>#<member>#<id>``
      (the lapse job finds what is due without scanning members);
    * a reported period under its billing reference: pk ``SUBREF#<reference>``, sk ``#SUBREF``;
    * an Idempotency-Key's first result: pk ``SUBREQ#<key>``, sk ``#SUBREQ``.
    """

    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)
    data = UnicodeAttribute()
    version = NumberAttribute(null=True)


class PartnerItem(KeyedItem):
    """A coalition partner (pk ``PARTNERS``, sk ``PARTNER#<id>``: all of a tenant's partners in one query)."""

    partner_id = UnicodeAttribute()
    name = UnicodeAttribute()
    earn_rate = UnicodeAttribute()
    redeem_rate = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


# --- referrals and member codes ------------------------------------------------------------------


class CodeGuardItem(KeyedItem):
    """The owner of a code: a referral code (pk ``REFCODE#<code>``) or a card code (pk
    ``CARD#<code>``), sk ``#CODE``. Written only if absent, in the transaction that gives the
    member the code, so a code names one member of the tenant."""

    member_id = UnicodeAttribute()


class ReferralItem(IndexedItem):
    """A referral (pk ``REFERRAL#<referee>``, sk ``#REFERRAL``), listed for its referrer in
    ``gsi1`` (``MEMBER#<referrer>#REFERRALS`` / ``<referee>``); while qualified and not finished
    it is in the sparse, keys-only ``gsi2`` (``REFERRALS#<shard>`` / ``<qualified at>#<referee>``)
    for the complete-referrals job. ``terms`` is JSON: the program's terms frozen at qualification."""

    referee_id = UnicodeAttribute()
    referrer_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    qualified_at = UTCDateTimeAttribute(null=True)
    completed_at = UTCDateTimeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    earn_key = UnicodeAttribute(null=True)
    terms = UnicodeAttribute(null=True)
    referrer_points = NumberAttribute(null=True)
    referee_points = NumberAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)


# --- bulk imports ------------------------------------------------------------------------------


class ImportItem(IndexedItem):
    """A bulk import (pk ``IMPORT#<id>``, sk ``#IMPORT``; gsi1 ``IMPORTS`` / ``<id>``, newest
    last), in the sparse, keys-only ``gsi2`` under ``IMPORTS#OPEN`` / ``<id>`` until it is
    completed or failed (the resume schedule finds unfinished imports there). ``next_chunk`` is
    its checkpoint; the counts are added by each chunk's result transaction."""

    import_id = UnicodeAttribute()
    status = UnicodeAttribute()
    columns = UnicodeAttribute()
    total_rows = NumberAttribute()
    chunk_count = NumberAttribute()
    next_chunk = NumberAttribute(default=0)
    imported = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    filename = UnicodeAttribute(null=True)
    actor_key_id = UnicodeAttribute(null=True, attr_name="actor")
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)


class ImportChunkItem(KeyedItem):
    """A chunk of an import's rows (pk ``IMPORTCHUNK#<import>#<index>``, sk ``#CHUNK``): one
    partition per chunk, so storing a large file is not bound by one partition's write rate.
    ``rows`` is compact JSON: ``[[row number, duplicate of, field count, field...], ...]``."""

    rows = UnicodeAttribute()
    #: The table's TTL attribute (epoch seconds): the rows (personal data) leave the table by it.
    expires_at = TTLAttribute(null=True)


class ImportResultItem(KeyedItem):
    """A landed chunk's result (pk ``IMPORT#<import>``, sk ``RESULT#<index>``): written once,
    in the transaction that adds its counts to the import. ``issues`` is JSON:
    ``[[row, external id, outcome, code, message, details], ...]``."""

    imported = NumberAttribute()
    skipped = NumberAttribute()
    failed = NumberAttribute()
    issues = UnicodeAttribute(null=True)


# --- challenges and badges -----------------------------------------------------------------------


class ChallengeProgressItem(KeyedItem):
    """A member's progress in a challenge (pk ``MEMBER#<member>``, sk ``CHL#P#<challenge>``) or a
    badge they hold (sk ``CHL#B#<badge>``): one query reads both. ``data`` is JSON; ``version``
    is the condition of the movement that moves the progress."""

    version = NumberAttribute()
    data = UnicodeAttribute()


# --- the audit trail and consent history ------------------------------------------------------


class AuditItem(KeyedItem):
    """An audit entry (pk ``AUDIT``, sk its id, a ULID: oldest first), in the tenant's table for a
    tenant's changes, in the control table for the operator's. Written only if absent, in the
    transaction of the change it records; never updated. ``before`` and ``after`` are JSON."""

    actor = UnicodeAttribute()
    channel = UnicodeAttribute()
    action = UnicodeAttribute()
    target_type = UnicodeAttribute()
    target_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    before = UnicodeAttribute(null=True)
    after = UnicodeAttribute(null=True)
    #: The table's TTL attribute (epoch seconds): the end of the entry's retention.
    expires_at = TTLAttribute(null=True)


class ConsentItem(KeyedItem):
    """A change of a member's consent (pk ``MEMBER#<member>``, sk ``CONSENT#<ULID>``: the member's
    history in time order), written in the transaction that changes the profile's flag."""

    consent = UnicodeAttribute()
    value = BooleanAttribute()
    previous = BooleanAttribute(null=True)
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    channel = UnicodeAttribute()


# --- privacy ------------------------------------------------------------------------------------


class RetentionItem(KeyedItem):
    """A member's entry in the last-activity index (pk ``MEMBER#<member>``, sk ``#RETENTION``),
    in the sparse, keys-only ``gsi2`` under ``RETENTION#<shard>`` / ``<last activity>#<member>``:
    the retention job finds members inactive for long without scanning members."""

    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi2: ClassVar[GlobalSecondaryIndex[Any]]  # bound per table (factory._bind, due_index=True)


class ErasedIdItem(KeyedItem):
    """An erased member's external id, as a one-way hash (pk ``ERASED#<sha256>``, sk
    ``#ERASED``): a bulk import recognises it and refuses the row rather than bring the
    member back."""

    erased_at = UTCDateTimeAttribute()


def set_or_remove(attribute: Any, value: Any) -> list[Any]:
    """An update action that SETs the attribute, or REMOVEs it when there is no value."""
    return [attribute.set(value) if value is not None else attribute.remove()]


class MemberAccessItem(KeyedItem):
    """A tenant's member-access settings (pk ``MEMBERACCESS``, sk ``#SETTINGS``): its member-token
    signing key (id, KMS ciphertext, created) and the origins allowed to call the member API (JSON list)."""

    signing_key_id = UnicodeAttribute(null=True)
    signing_key_sealed = UnicodeAttribute(null=True)
    signing_key_created_at = UTCDateTimeAttribute(null=True)
    allowed_origins = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


# --- households ---------------------------------------------------------------------------------


class HouseholdItem(KeyedItem):
    """Households (chalicelib.persistence.households), three shapes:

    * a household: pk ``HOUSEHOLD#<id>``, sk ``#HOUSEHOLD``, ``data`` (JSON: name, created, members
      with their roles) and ``version``, the condition of every change and of a pooled redemption;
    * a member's membership: pk ``MEMBER#<member>``, sk ``#HOUSEHOLD``, ``household_id``: written
      only if absent, so a member is in at most one household;
    * a creation's Idempotency-Key: pk ``HOUSEHOLDREQ#<key>``, sk ``#HOUSEHOLDREQ``, ``household_id``
      and the request's fingerprint in ``data``.
    """

    household_id = UnicodeAttribute(null=True)
    data = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
