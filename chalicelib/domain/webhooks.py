"""Webhooks: endpoints a tenant subscribes to its event feed, and the deliveries made to them.

Dispatch reads the feed from a per-tenant checkpoint (under a lease, so two runs never
dispatch the same page), records one delivery per matching (event, endpoint), and only then
advances the checkpoint: a crash in between replays the page, and the deliveries' keys
(endpoint + event) make the replay rewrite the same records. At least once, never lost.

Each endpoint has an *outbox*: its pending deliveries in event order. A drain (one at a
time per endpoint, under a lease) sends them in that order and stops at the first failure;
the endpoint then waits (``retry_at``, exponential backoff with jitter) before anything else
is sent to it, so events reach an endpoint in order, and a failing one is not hammered. A
delivery still failing once it is older than the retry window (24 h) is given up (``failed``;
it can be redelivered by hand). An endpoint failing without a single success for longer than
``disable_after`` is disabled, and every other endpoint subscribed to ``webhook.disabled``
receives an event saying so.

Signing secrets are generated here (Standard Webhooks ``whsec_`` + base64 of 32 random
bytes), shown once, and handed to a ``SecretSealer`` (KMS) before they are stored. Rotation
keeps the previous secret signing alongside the new one for an overlap window.

Nothing here talks to the network or to storage: ports below, adapters in
``chalicelib.integrations`` (HTTP, KMS, SSRF checks) and ``chalicelib.persistence.webhooks``.
"""

from __future__ import annotations

import base64
import builtins
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.backoff import backoff_seconds
from chalicelib.domain.clock import Clock, isoformat, utc_now
from chalicelib.domain.errors import InvalidRequest, NotFound, WebhookDisabled
from chalicelib.domain.events import EventType
from chalicelib.domain.ids import ulid

if TYPE_CHECKING:
    from chalicelib.domain.events import Event, FeedPage
    from chalicelib.domain.ports import Page

_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
WEBHOOK_ID_PATTERN = re.compile(rf"^whk_{_ULID}$")
DELIVERY_ID_PATTERN = re.compile(rf"^dlv_{_ULID}$")

#: Endpoints per tenant.
MAX_WEBHOOKS = 16
#: Subscribe to every event type.
ALL_EVENTS = "*"
#: Not in the feed: sent to the tenant's other endpoints when one is disabled.
WEBHOOK_DISABLED = "webhook.disabled"
#: What an endpoint may subscribe to.
SUBSCRIBABLE = (*(str(t) for t in EventType), WEBHOOK_DISABLED, ALL_EVENTS)
#: Attempts kept on a delivery (the count goes on).
HISTORY_KEPT = 10
#: Secrets signing at once (the newest plus those still in their overlap window).
MAX_SECRETS = 3
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
#: A settled delivery (succeeded, or failed for good) stays in the log this long, then the
#: table's TTL removes it; an outstanding one is kept until it settles.
DELIVERY_LOG_RETENTION = timedelta(days=30)


class WebhookStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    #: In the outbox, never attempted.
    PENDING = "pending"
    #: In the outbox, attempted and failed; tried again when the endpoint's backoff ends.
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    #: Given up (older than the retry window, or its endpoint is gone); can be redelivered.
    FAILED = "failed"


OUTSTANDING = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRYING})


def new_webhook_id() -> str:
    return f"whk_{ulid()}"


def delivery_id_of(event_id: str) -> str:
    """One delivery per event and endpoint: its id is the event's ULID (a replayed dispatch rewrites it)."""
    return f"dlv_{event_id.removeprefix('evt_')}"


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class SigningSecret:
    #: The secret as the sealer returned it (KMS ciphertext); never the secret itself.
    sealed: str
    created_at: datetime
    #: When a rotated-out secret stops signing; None for the current one.
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    events: frozenset[str]
    description: str | None
    status: WebhookStatus
    secrets: tuple[SigningSecret, ...]
    created_at: datetime
    updated_at: datetime
    #: Events created before this moment (creation, or the last re-enabling) are not sent.
    active_since: datetime
    #: First failure since the last success (None while healthy).
    failing_since: datetime | None = None
    #: Nothing is sent before this moment (backoff after a failure).
    retry_at: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    def subscribes(self, event_type: str) -> bool:
        return event_type in self.events or (ALL_EVENTS in self.events and event_type != WEBHOOK_DISABLED)

    def signing_secrets(self, now: datetime) -> list[SigningSecret]:
        return [s for s in self.secrets if s.active(now)]

    def wants(self, event: Event) -> bool:
        return (
            self.status == WebhookStatus.ENABLED
            and self.subscribes(event.type)
            and event.created_at >= self.active_since
        )


@dataclass(frozen=True)
class IssuedWebhook:
    """A webhook with the plain signing secret, returned once (creation, rotation)."""

    webhook: Webhook
    secret: str


@dataclass(frozen=True)
class Attempt:
    at: datetime
    #: The HTTP status, or None when no response came (refused address, timeout, reset).
    status_code: int | None
    latency_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    delivery_id: str
    event_id: str
    event_type: str
    member_id: str | None
    #: The exact body sent (and re-sent), JSON.
    payload: str
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    history: tuple[Attempt, ...] = ()
    next_attempt_at: datetime | None = None
    succeeded_at: datetime | None = None

    @property
    def kept_until(self) -> datetime | None:
        """When the delivery leaves the log (None while outstanding: it is never dropped unsent).
        Whole seconds, as the table's TTL attribute holds it."""
        if self.status in OUTSTANDING:
            return None
        return (self.updated_at + DELIVERY_LOG_RETENTION).replace(microsecond=0)

    def visible_at(self, now: datetime) -> bool:
        """DynamoDB's TTL deletes within days of the expiry, not at it: the log hides what is past it."""
        return self.kept_until is None or self.kept_until > now

    @property
    def last_attempt(self) -> Attempt | None:
        return self.history[-1] if self.history else None

    def attempted(self, attempt: Attempt, status: DeliveryStatus, next_attempt_at: datetime | None) -> Delivery:
        return replace(
            self,
            status=status,
            attempts=self.attempts + 1,
            history=(*self.history, attempt)[-HISTORY_KEPT:],
            updated_at=attempt.at,
            next_attempt_at=next_attempt_at,
            succeeded_at=attempt.at if attempt.succeeded else self.succeeded_at,
        )


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None


# --- ports ---------------------------------------------------------------------------------


class WebhookStore(Protocol):
    def add(self, webhook: Webhook) -> None: ...
    def get(self, webhook_id: str, *, consistent: bool = True) -> Webhook | None: ...
    def list(self) -> list[Webhook]: ...
    def put(self, webhook: Webhook) -> None:
        """Rewrite the endpoint's settings (not its delivery state)."""

    def set_health(self, webhook_id: str, *, failing_since: datetime | None, retry_at: datetime | None) -> None: ...
    def disable(self, webhook_id: str, *, at: datetime, reason: str) -> None: ...
    def delete(self, webhook_id: str) -> bool: ...
    def claim_drain(self, webhook_id: str, *, now: datetime, until: datetime) -> bool:
        """Take the endpoint's drain lease if it is free (or expired)."""

    def release_drain(self, webhook_id: str) -> None: ...
    def save_deliveries(self, deliveries: builtins.list[Delivery]) -> None:
        """Write each delivery whole; an outstanding one is in its endpoint's outbox."""

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None: ...
    def list_deliveries(
        self, webhook_id: str, *, limit: int, cursor: str | None, kept_after: datetime
    ) -> Page[Delivery]:
        """Newest first, only those still kept after ``kept_after`` (see ``Delivery.kept_until``)."""

    def outbox(self, webhook_id: str, *, limit: int) -> builtins.list[Delivery]:
        """Outstanding deliveries of the endpoint, oldest event first."""

    def claim_checkpoint(self, *, owner: str, now: datetime, until: datetime) -> tuple[bool, str | None]:
        """Take the tenant's dispatch lease: (taken, cursor)."""

    def advance_checkpoint(self, *, owner: str, cursor: str, now: datetime) -> bool: ...
    def release_checkpoint(self, *, owner: str) -> None: ...


class SecretSealer(Protocol):
    def seal(self, secret: str, context: dict[str, str]) -> str: ...
    def open(self, sealed: str, context: dict[str, str]) -> str: ...


class UrlGuard(Protocol):
    def check(self, url: str) -> None:
        """Raise InvalidRequest when the URL may not receive webhooks."""


class Transport(Protocol):
    def send(self, url: str, *, message_id: str, payload: str, secrets: list[str]) -> SendResult:
        """Sign (Standard Webhooks) and POST; never raises for the endpoint's failures."""


class DeliveryQueue(Protocol):
    def drain_soon(self, webhook_id: str) -> None:
        """Ask for the endpoint's outbox to be drained (SQS); in process: a no-op, the job drains."""


class Feed(Protocol):
    def read(self, *, after: str | None, types: frozenset[EventType], limit: int) -> FeedPage: ...


# --- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    retry_window: timedelta = timedelta(hours=24)
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    disable_after: timedelta = timedelta(days=5)
    secret_overlap: timedelta = timedelta(hours=24)
    #: A drain stops starting new sends after this long (Lambda time limits).
    drain_budget: timedelta = timedelta(seconds=20)
    drain_lease: timedelta = timedelta(seconds=90)
    #: Feed pages of one dispatch run (100 events each).
    dispatch_pages: int = 10
    dispatch_lease: timedelta = timedelta(seconds=90)

    def backoff(self, failures: int, rand: Callable[[], float]) -> timedelta:
        """Exponential, capped, with "equal jitter": between half and all of the step."""
        return timedelta(
            seconds=backoff_seconds(
                max(failures - 1, 0),
                base=self.backoff_base.total_seconds(),
                cap=self.backoff_cap.total_seconds(),
                jitter="equal",
                rand=rand,
            )
        )


@dataclass
class DispatchCounts:
    events: int = 0
    deliveries: int = 0
    pages: int = 0
    skipped: bool = False


@dataclass
class DrainCounts:
    sent: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    disabled: bool = False
    busy: bool = False
    more: bool = False
    endpoints: list[str] = field(default_factory=list)


def _failure_note(failure: Attempt) -> str:
    return f"not sent: the endpoint is failing ({failure.error or failure.status_code})"


# --- the service -----------------------------------------------------------------------------


class WebhookService:
    def __init__(
        self,
        tenant_id: str,
        store: WebhookStore,
        *,
        sealer: SecretSealer,
        guard: UrlGuard,
        transport: Transport,
        queue: DeliveryQueue,
        open_feed: Callable[[datetime], Feed],
        render: Callable[[Event], dict[str, Any]],
        policy: DeliveryPolicy | None = None,
        clock: Clock = utc_now,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant_id = tenant_id
        self._store = store
        self._sealer = sealer
        self._guard = guard
        self._transport = transport
        self._queue = queue
        self._open_feed = open_feed
        self._render = render
        self.policy = policy or DeliveryPolicy()
        self._clock = clock
        self._rand = rand
        self._monotonic = monotonic

    # --- endpoints ---------------------------------------------------------------------------

    def create(self, *, url: str, events: Iterable[str], description: str | None) -> IssuedWebhook:
        self._guard.check(url)
        if len(self._store.list()) >= MAX_WEBHOOKS:
            raise InvalidRequest.for_fields(
                f"a tenant has at most {MAX_WEBHOOKS} webhooks; delete one first",
                ("url", f"at most {MAX_WEBHOOKS} webhooks per tenant", "too_many"),
            )
        now = self._clock()
        webhook_id = new_webhook_id()
        secret = new_signing_secret()
        webhook = Webhook(
            webhook_id=webhook_id,
            url=url,
            events=frozenset(events),
            description=description,
            status=WebhookStatus.ENABLED,
            secrets=(SigningSecret(self._seal(webhook_id, secret), now),),
            created_at=now,
            updated_at=now,
            active_since=now,
        )
        self._store.add(webhook)
        return IssuedWebhook(webhook, secret)

    def list(self) -> list[Webhook]:
        return sorted(self._store.list(), key=lambda w: w.webhook_id)

    def get(self, webhook_id: str) -> Webhook:
        webhook = self._store.get(webhook_id) if WEBHOOK_ID_PATTERN.fullmatch(webhook_id) else None
        if webhook is None:
            raise NotFound(f"webhook {webhook_id!r} not found")
        return webhook

    def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        clear_description: bool = False,
        status: WebhookStatus | None = None,
    ) -> Webhook:
        webhook = self.get(webhook_id)
        if url is not None and url != webhook.url:
            self._guard.check(url)
        now = self._clock()
        changed = replace(
            webhook,
            url=url if url is not None else webhook.url,
            events=frozenset(events) if events is not None else webhook.events,
            description=None
            if clear_description
            else (description if description is not None else webhook.description),
            updated_at=now,
        )
        if status == WebhookStatus.ENABLED and webhook.status == WebhookStatus.DISABLED:
            # A fresh start: events from now on, no inherited backoff.
            changed = replace(
                changed,
                status=WebhookStatus.ENABLED,
                active_since=now,
                failing_since=None,
                retry_at=None,
                disabled_at=None,
                disabled_reason=None,
            )
        elif status == WebhookStatus.DISABLED and webhook.status == WebhookStatus.ENABLED:
            changed = replace(
                changed, status=WebhookStatus.DISABLED, disabled_at=now, disabled_reason="disabled by the tenant"
            )
        self._store.put(changed)
        return changed

    def delete(self, webhook_id: str) -> Webhook:
        webhook = self.get(webhook_id)
        if not self._store.delete(webhook_id):
            raise NotFound(f"webhook {webhook_id!r} not found")
        return webhook

    def rotate_secret(self, webhook_id: str) -> IssuedWebhook:
        webhook = self.get(webhook_id)
        now = self._clock()
        secret = new_signing_secret()
        retiring = [
            replace(
                s, expires_at=min(s.expires_at or now + self.policy.secret_overlap, now + self.policy.secret_overlap)
            )
            for s in webhook.signing_secrets(now)
        ]
        kept = (SigningSecret(self._seal(webhook_id, secret), now), *retiring[: MAX_SECRETS - 1])
        rotated = replace(webhook, secrets=kept, updated_at=now)
        self._store.put(rotated)
        return IssuedWebhook(rotated, secret)

    # --- the delivery log --------------------------------------------------------------------

    def deliveries(self, webhook_id: str, *, limit: int, cursor: str | None) -> Page[Delivery]:
        self.get(webhook_id)
        return self._store.list_deliveries(webhook_id, limit=limit, cursor=cursor, kept_after=self._clock())

    def delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        self.get(webhook_id)
        found = (
            self._store.get_delivery(webhook_id, delivery_id) if DELIVERY_ID_PATTERN.fullmatch(delivery_id) else None
        )
        if found is None or not found.visible_at(self._clock()):
            raise NotFound(f"delivery {delivery_id!r} not found")
        return found

    def redeliver(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Back into the outbox (the same message id and body), to be sent with the next drain.
        A manual request ends the endpoint's backoff: it is tried now. Not for a disabled endpoint."""
        delivery = self.delivery(webhook_id, delivery_id)
        webhook = self.get(webhook_id)
        if webhook.status != WebhookStatus.ENABLED:
            raise WebhookDisabled(
                f"webhook {webhook_id!r} is disabled; enable it (PATCH status) before redelivering",
                details={"webhook_id": webhook_id, "status": str(webhook.status)},
            )
        now = self._clock()
        queued = replace(delivery, status=DeliveryStatus.PENDING, updated_at=now, next_attempt_at=now)
        self._store.save_deliveries([queued])
        if webhook.retry_at is not None:
            self._store.set_health(webhook_id, failing_since=webhook.failing_since, retry_at=None)
        self._queue.drain_soon(webhook_id)
        return queued

    # --- dispatch: feed -> deliveries ----------------------------------------------------------

    def dispatch(self) -> DispatchCounts:
        """Turn new feed events into recorded deliveries (in their endpoints' outboxes)."""
        counts = DispatchCounts()
        webhooks = [w for w in self._store.list() if w.status == WebhookStatus.ENABLED]
        if not webhooks:
            return counts
        now = self._clock()
        owner = str(ulid())
        taken, cursor = self._store.claim_checkpoint(owner=owner, now=now, until=now + self.policy.dispatch_lease)
        if not taken:
            counts.skipped = True
            return counts
        try:
            feed = self._open_feed(min(w.active_since for w in webhooks))
            for _ in range(self.policy.dispatch_pages):
                page = feed.read(after=cursor, types=frozenset(), limit=100)
                counts.pages += 1
                deliveries = [
                    self._new_delivery(webhook, event, now)
                    for event in page.events
                    for webhook in webhooks
                    if webhook.wants(event)
                ]
                self._store.save_deliveries(deliveries)  # durable before the checkpoint moves
                counts.events += len(page.events)
                counts.deliveries += len(deliveries)
                if page.next_cursor == cursor:
                    break
                if not self._store.advance_checkpoint(owner=owner, cursor=page.next_cursor, now=self._clock()):
                    break  # the lease was lost: another run goes on from where this one recorded
                cursor = page.next_cursor
        finally:
            self._store.release_checkpoint(owner=owner)
        return counts

    def due_endpoints(self) -> builtins.list[str]:
        """Enabled endpoints out of backoff with something in their outbox (the sweeper)."""
        now = self._clock()
        return [
            w.webhook_id
            for w in self.list()
            if w.status == WebhookStatus.ENABLED
            and (w.retry_at is None or w.retry_at <= now)
            and self._store.outbox(w.webhook_id, limit=1)
        ]

    def _new_delivery(self, webhook: Webhook, event: Event, now: datetime) -> Delivery:
        body = {"type": str(event.type), "timestamp": isoformat(event.created_at), "data": self._render(event)}
        return Delivery(
            webhook_id=webhook.webhook_id,
            delivery_id=delivery_id_of(event.event_id),
            event_id=event.event_id,
            event_type=str(event.type),
            member_id=event.member_id,
            payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
            status=DeliveryStatus.PENDING,
            created_at=now,
            updated_at=now,
            next_attempt_at=max(now, webhook.retry_at) if webhook.retry_at else now,
        )

    # --- drain: outbox -> the endpoint ----------------------------------------------------------

    def drain(self, webhook_id: str, *, batch: int = 25) -> DrainCounts:
        """Send the endpoint's outbox in order until it is empty, a send fails, or the budget ends."""
        counts = DrainCounts(endpoints=[webhook_id])
        webhook = self._store.get(webhook_id)
        now = self._clock()
        if webhook is None or webhook.status != WebhookStatus.ENABLED:
            return counts
        if webhook.retry_at is not None and webhook.retry_at > now:
            return counts
        if not self._store.claim_drain(webhook_id, now=now, until=now + self.policy.drain_lease):
            counts.busy = True
            return counts
        try:
            self._drain(webhook, counts, batch)
        finally:
            self._store.release_drain(webhook_id)
        return counts

    def _drain(self, webhook: Webhook, counts: DrainCounts, batch: int) -> None:
        started = self._monotonic()
        failed: Attempt | None = None
        secrets_ = self._open_secrets(webhook, self._clock())
        handled: set[str] = set()  # the outbox is an index: what this drain settled may linger a moment
        while True:
            outbox = [d for d in self._store.outbox(webhook.webhook_id, limit=batch) if d.delivery_id not in handled]
            if not outbox:
                break
            for delivery in outbox:
                handled.add(delivery.delivery_id)
                now = self._clock()
                if failed is not None:
                    # The endpoint just failed: send nothing more now; only give up what is too old.
                    if now - delivery.created_at >= self.policy.retry_window:
                        self._give_up(delivery, _failure_note(failed), counts)
                        continue
                    return self._backing_off(webhook, failed, counts)
                if delivery.updated_at < webhook.active_since:
                    # Left outstanding when the endpoint was disabled: re-enabling starts afresh
                    # (events from then on); a redelivery by hand can still send it.
                    self._give_up(delivery, "not sent: recorded before the endpoint was enabled again", counts)
                    continue
                if self._monotonic() - started >= self.policy.drain_budget.total_seconds():
                    counts.more = True
                    return None
                result = self._transport.send(
                    webhook.url, message_id=delivery.delivery_id, payload=delivery.payload, secrets=secrets_
                )
                attempt = Attempt(now, result.status_code, result.latency_ms, result.error)
                counts.sent += 1
                if attempt.succeeded:
                    counts.succeeded += 1
                    self._store.save_deliveries([delivery.attempted(attempt, DeliveryStatus.SUCCEEDED, None)])
                    if webhook.failing_since is not None or webhook.retry_at is not None:
                        self._store.set_health(webhook.webhook_id, failing_since=None, retry_at=None)
                        webhook = replace(webhook, failing_since=None, retry_at=None)
                    continue
                counts.failed_attempts += 1
                failed = attempt
                if now - delivery.created_at >= self.policy.retry_window:
                    self._store.save_deliveries([delivery.attempted(attempt, DeliveryStatus.FAILED, None)])
                    counts.given_up += 1
                    continue
                retry_at = now + self.policy.backoff(delivery.attempts + 1, self._rand)
                self._store.save_deliveries([delivery.attempted(attempt, DeliveryStatus.RETRYING, retry_at)])
                return self._backing_off(replace(webhook, retry_at=retry_at), failed, counts)
            if failed is not None:
                return self._backing_off(webhook, failed, counts)
        return None

    def _give_up(self, delivery: Delivery, reason: str, counts: DrainCounts) -> None:
        now = self._clock()
        note = Attempt(now, None, 0, reason)
        gave_up = replace(
            delivery,
            status=DeliveryStatus.FAILED,
            history=(*delivery.history, note)[-HISTORY_KEPT:],
            updated_at=now,
            next_attempt_at=None,
        )
        self._store.save_deliveries([gave_up])
        counts.given_up += 1

    def _backing_off(self, webhook: Webhook, failure: Attempt, counts: DrainCounts) -> None:
        now = self._clock()
        failing_since = webhook.failing_since or failure.at
        retry_at = webhook.retry_at if webhook.retry_at and webhook.retry_at > now else None
        if retry_at is None:
            retry_at = now + self.policy.backoff(1, self._rand)
        if now - failing_since >= self.policy.disable_after:
            self._disable(webhook, failing_since, now)
            counts.disabled = True
            return
        self._store.set_health(webhook.webhook_id, failing_since=failing_since, retry_at=retry_at)

    def _disable(self, webhook: Webhook, failing_since: datetime, now: datetime) -> None:
        days = (now - failing_since).total_seconds() / 86400
        reason = f"every delivery failed for {days:.1f} days (since {isoformat(failing_since)})"
        self._store.disable(webhook.webhook_id, at=now, reason=reason)
        body = {
            "type": WEBHOOK_DISABLED,
            "timestamp": isoformat(now),
            "data": {
                "webhook_id": webhook.webhook_id,
                "url": webhook.url,
                "disabled_at": isoformat(now),
                "failing_since": isoformat(failing_since),
                "reason": reason,
            },
        }
        event_ulid = str(ulid(now))
        notices = [
            Delivery(
                webhook_id=other.webhook_id,
                delivery_id=f"dlv_{event_ulid}",
                event_id=f"evt_{event_ulid}",
                event_type=WEBHOOK_DISABLED,
                member_id=None,
                payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
                status=DeliveryStatus.PENDING,
                created_at=now,
                updated_at=now,
                next_attempt_at=now,
            )
            for other in self._store.list()
            if other.webhook_id != webhook.webhook_id
            and other.status == WebhookStatus.ENABLED
            and other.subscribes(WEBHOOK_DISABLED)
        ]
        self._store.save_deliveries(notices)
        for notice in notices:
            self._queue.drain_soon(notice.webhook_id)

    # --- secrets -------------------------------------------------------------------------------

    def _context(self, webhook_id: str) -> dict[str, str]:
        """KMS encryption context: a sealed secret opens only for its own tenant and endpoint."""
        return {"tenant_id": self.tenant_id, "webhook_id": webhook_id}

    def _seal(self, webhook_id: str, secret: str) -> str:
        return self._sealer.seal(secret, self._context(webhook_id))

    def _open_secrets(self, webhook: Webhook, now: datetime) -> builtins.list[str]:
        return [self._sealer.open(s.sealed, self._context(webhook.webhook_id)) for s in webhook.signing_secrets(now)]
