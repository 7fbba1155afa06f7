"""Webhooks end to end: a real receiver on loopback verifies every delivery with the Standard
Webhooks library; retries, ordering, disabling, redelivery, rotation, SSRF and isolation.

Time is moved by the dispatch job's clock (``dispatch``): the API writes events at real time,
the job looks at them from a few seconds (the feed's settle window) or hours later.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError

from chalicelib.domain.errors import NotFound
from chalicelib.domain.ledger import MovementRequest, MovementType
from chalicelib.domain.webhooks import DELIVERY_LOG_RETENTION, WebhookStatus
from chalicelib.integrations import ssrf
from chalicelib.jobs.webhooks import dispatch_tenant
from chalicelib.persistence.factory import tenant_models
from chalicelib.services import platform
from tests.support.checks import assert_error, assert_invalid
from tests.support.http import Api
from tests.support.receiver import Receiver, webhook_environment

SETTLED = timedelta(seconds=6)


class ShiftedClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = SETTLED

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def hooks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api) -> Api:
    webhook_environment(
        request,
        monkeypatch,
        webhooks_local_mode="true",
        webhook_read_timeout_seconds="0.5",
        webhook_connect_timeout_seconds="0.5",
    )
    return api


def subscribe(api: Api, key: str, url: str, *events: str, **extra: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/webhooks", key=key, body={"url": url, "events": list(events) or ["*"], **extra})
    assert reply.status == 201, reply
    return reply.body


def deliveries(api: Api, key: str, webhook_id: str) -> list[dict[str, Any]]:
    reply = api.call("GET", f"/v1/webhooks/{webhook_id}/deliveries?limit=100", key=key)
    assert reply.status == 200, reply
    return reply.body["data"]


def run(clock: Callable[[], datetime], tenant: str = "acme") -> dict[str, Any]:
    return dispatch_tenant(tenant, clock=clock)


# --- subscribe, receive, verify ------------------------------------------------------------------


def test_a_subscribed_endpoint_receives_signed_events_in_order(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock, caplog: pytest.LogCaptureFixture
) -> None:
    api = hooks
    # Given an endpoint subscribed to member creations and earnings
    created = subscribe(api, admin_key, receiver.url(), "member.created", "points.earned", description="CRM")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["status"] == "enabled" and created["events"] == ["member.created", "points.earned"]
    webhook_id = created["id"]

    # When a member is enrolled, earns three times and redeems once
    member = api.enrol(admin_key, external_id="ada")
    for n in range(3):
        assert api.earn(admin_key, member, f"order-{n}", points=10 * (n + 1)).status == 201
    assert api.redeem(admin_key, member, "spend-1", points=5).status == 201
    summary = run(clock)

    # Then the receiver got exactly the subscribed events, in order, each verifying with the secret
    got = receiver.at("/hook")
    payloads = [r.verify(secret) for r in got]
    assert [p["type"] for p in payloads] == ["member.created", "points.earned", "points.earned", "points.earned"]
    assert [p["data"]["data"].get("points") for p in payloads[1:]] == [10, 20, 30]
    assert all(p["data"]["member_id"] == member for p in payloads)
    assert summary["deliveries"] == 4 and summary["succeeded"] == 4
    # And a wrong secret does not verify
    with pytest.raises(WebhookVerificationError):
        got[0].verify("whsec_" + base64.b64encode(b"x" * 32).decode())

    # And the delivery log shows each: succeeded at the first attempt, its status code and latency
    log = deliveries(api, admin_key, webhook_id)
    assert [d["event_type"] for d in log] == ["points.earned"] * 3 + ["member.created"]  # newest first
    assert {(d["status"], d["attempts"], d["response_code"]) for d in log} == {("succeeded", 1, 200)}
    assert all(d["latency_ms"] >= 0 and d["history"][0]["status_code"] == 200 for d in log)
    assert [r.headers["webhook-id"] for r in reversed(got)] == [d["id"] for d in log]

    # And running the job again sends nothing twice
    again = run(clock)
    assert again["deliveries"] == 0 and len(receiver.at("/hook")) == 4

    # And the secret is never shown again nor stored in clear
    shown = api.call("GET", f"/v1/webhooks/{webhook_id}", key=admin_key).body
    assert "secret" not in shown and len(shown["secrets"]) == 1
    listed = api.call("GET", "/v1/webhooks", key=admin_key).body["data"]
    assert [w["id"] for w in listed] == [webhook_id] and "secret" not in listed[0]
    models = tenant_models("acme", platform().settings.tenant_table_name("acme"), platform().connection)
    raw = json.dumps(models.webhook.get(f"WEBHOOK#{webhook_id}", "#WEBHOOK").serialize())
    assert secret.removeprefix("whsec_") not in raw and "whsec_" not in raw
    # Nor logged: the scenario's log records (message and every extra field) never show it
    logs = "".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    assert "webhooks dispatched" in logs and secret.removeprefix("whsec_") not in logs


def test_failures_are_retried_with_backoff_in_order_until_they_succeed(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    # Given an endpoint that answers 500, then stalls past the read timeout, then works
    webhook = subscribe(api, admin_key, receiver.url(), "points.earned")
    receiver.script("/hook", 500, 1.5)
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "first", points=1)
    api.earn(admin_key, member, "second", points=2)

    # When the job runs: the first event fails, and the second is not sent ahead of it
    first = run(clock)
    assert (first["sent"], first["failed_attempts"]) == (1, 1)
    state = api.call("GET", f"/v1/webhooks/{webhook['id']}", key=admin_key).body
    assert state["failing_since"] is not None and state["retry_at"] is not None
    retry_at = datetime.fromisoformat(state["retry_at"])
    # Then nothing is sent during the backoff (15-30 s after a first failure)
    assert timedelta(seconds=14) <= retry_at - clock() <= timedelta(seconds=31)
    assert run(clock)["due"] == 0 and len(receiver.at("/hook")) == 1

    # When the backoff has passed, the retry times out; after the next backoff it succeeds
    clock.advance(seconds=31)
    assert run(clock)["failed_attempts"] == 1
    clock.advance(seconds=61)
    final = run(clock)
    assert (final["sent"], final["succeeded"]) == (2, 2)

    # Then the receiver saw the first event three times, then the second: order kept
    points = [json.loads(r.body)["data"]["data"]["points"] for r in receiver.at("/hook")]
    assert points == [1, 1, 1, 2]
    second, retried = deliveries(api, admin_key, webhook["id"])  # newest first
    assert (second["status"], second["attempts"]) == ("succeeded", 1)
    assert retried["status"] == "succeeded" and retried["response_code"] == 200
    assert [(h["status_code"], h["error"]) for h in retried["history"]] == [
        (500, "HTTP 500"),
        (None, "timeout"),
        (200, None),
    ]
    assert retried["history"][1]["latency_ms"] >= 400
    healthy = api.call("GET", f"/v1/webhooks/{webhook['id']}", key=admin_key).body
    assert healthy["failing_since"] is None and healthy["retry_at"] is None


def test_an_endpoint_failing_for_days_is_given_up_disabled_and_announced(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    # Given a dead endpoint, and a second endpoint subscribed to webhook.disabled
    dead = subscribe(api, admin_key, receiver.url("/dead"), "*")
    watcher = subscribe(api, admin_key, receiver.url("/ops"), "webhook.disabled")
    receiver.script("/dead", *([503] * 100))
    member = api.enrol(admin_key)
    assert api.earn(admin_key, member, "e-1", points=5).status == 201

    # When it keeps failing: every hour for a day, then for days
    run(clock)
    for _ in range(30):
        clock.advance(hours=1, seconds=1)
        run(clock)
    log = deliveries(api, admin_key, dead["id"])
    # Then each delivery was retried for 24 hours, then given up
    assert {d["status"] for d in log} == {"failed"}, log
    created = datetime.fromisoformat(log[0]["created_at"])
    assert datetime.fromisoformat(log[0]["history"][-1]["at"]) - created >= timedelta(hours=24)
    assert api.call("GET", f"/v1/webhooks/{dead['id']}", key=admin_key).body["status"] == "enabled"

    # When it still fails with new events for five days (earned at the job's time: the feed's
    # cursor has moved on to the job's days)
    points = platform().for_tenant_id("acme", clock=lambda: clock() - SETTLED).points
    for day in range(6):
        points.move(MovementRequest(member, MovementType.EARN, f"day-{day}", points=1))
        clock.advance(days=1)
        run(clock)
    # Then it is disabled, saying why
    state = api.call("GET", f"/v1/webhooks/{dead['id']}", key=admin_key).body
    assert state["status"] == "disabled" and "failed for" in state["disabled_reason"], state
    # And the other endpoint got a signed webhook.disabled event naming it
    run(clock)
    (notice,) = receiver.at("/ops")
    payload = notice.verify(watcher["secret"])
    assert payload["type"] == "webhook.disabled" and payload["data"]["webhook_id"] == dead["id"]

    # And nothing more is sent to the disabled endpoint, until it is enabled again
    sent = len(receiver.at("/dead"))
    points.move(MovementRequest(member, MovementType.EARN, "after", points=1))
    clock.advance(seconds=10)
    run(clock)
    assert len(receiver.at("/dead")) == sent
    # And it cannot be sent a redelivery while disabled
    latest = deliveries(api, admin_key, dead["id"])[0]
    redeliver = f"/v1/webhooks/{dead['id']}/deliveries/{latest['id']}/redeliver"
    assert assert_error(api.call("POST", redeliver, key=admin_key), 409, "webhook_disabled") == {
        "webhook_id": dead["id"],
        "status": "disabled",
    }
    outstanding = [d["id"] for d in deliveries(api, admin_key, dead["id"]) if d["status"] in ("pending", "retrying")]
    assert outstanding, "the endpoint was disabled with deliveries still outstanding"

    # When it is repaired and enabled again (at the job's time: days after the API's clock), Then
    # it starts afresh: what was outstanding is given up unsent, and only new events are sent
    receiver.heal("/dead")
    enabled = platform().for_tenant_id("acme", clock=clock).webhooks.update(dead["id"], status=WebhookStatus.ENABLED)
    assert (enabled.status, enabled.disabled_at, enabled.failing_since) == (WebhookStatus.ENABLED, None, None)
    clock.advance(seconds=10)
    points.move(MovementRequest(member, MovementType.EARN, "fresh", points=7))
    clock.advance(seconds=10)
    run(clock)
    fresh = receiver.at("/dead")[sent:]
    assert [r.verify(dead["secret"])["data"]["data"]["points"] for r in fresh] == [7]
    log = {d["id"]: d for d in deliveries(api, admin_key, dead["id"])}
    assert all(log[i]["status"] == "failed" for i in outstanding)
    assert "enabled again" in log[outstanding[0]]["history"][-1]["error"]
    # And a redelivery by hand (at the job's time too) still sends one of them
    assert platform().for_tenant_id("acme", clock=clock).webhooks.redeliver(dead["id"], latest["id"]).attempts == 0
    run(clock)
    assert receiver.at("/dead")[-1].headers["webhook-id"] == latest["id"]


def test_a_delivery_can_be_sent_again_by_hand(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    webhook = subscribe(api, admin_key, receiver.url(), "member.created")
    api.enrol(admin_key)
    run(clock)
    (delivery,) = deliveries(api, admin_key, webhook["id"])

    shown = api.call("GET", f"/v1/webhooks/{webhook['id']}/deliveries/{delivery['id']}", key=admin_key)
    assert shown.status == 200 and shown.body == delivery, shown

    # When the tenant asks for it again
    reply = api.call("POST", f"/v1/webhooks/{webhook['id']}/deliveries/{delivery['id']}/redeliver", key=admin_key)
    assert reply.status == 202 and reply.body["status"] == "pending", reply
    run(clock)

    # Then the same message (id and body) arrives again, signed anew, and the log counts two attempts
    first, second = receiver.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    assert first.body == second.body and second.verify(webhook["secret"])["type"] == "member.created"
    (again,) = deliveries(api, admin_key, webhook["id"])
    assert (again["status"], again["attempts"]) == ("succeeded", 2)
    missing = f"/v1/webhooks/{webhook['id']}/deliveries/dlv_01JD0000000000000000000000/redeliver"
    assert_error(api.call("POST", missing, key=admin_key), 404, "not_found")


def test_settled_deliveries_leave_the_log_after_the_retention_outstanding_ones_never(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    good = subscribe(api, admin_key, receiver.url(), "member.created")
    failing = subscribe(api, admin_key, receiver.url("/down"), "member.created")
    receiver.script("/down", 500)
    api.enrol(admin_key)
    run(clock)
    (sent,) = deliveries(api, admin_key, good["id"])
    (retrying,) = deliveries(api, admin_key, failing["id"])
    assert (sent["status"], retrying["status"]) == ("succeeded", "retrying")

    # Then the settled one carries the table's TTL, 30 days after it settled; the outstanding one none
    models = tenant_models("acme", platform().settings.tenant_table_name("acme"), platform().connection)
    ulid = sent["id"].removeprefix("dlv_")
    settled = models.delivery.get(f"WEBHOOK#{good['id']}", f"DELIVERY#{ulid}")
    assert settled.expires_at == (settled.updated_at + DELIVERY_LOG_RETENTION).replace(microsecond=0)
    outstanding = models.delivery.get(f"WEBHOOK#{failing['id']}", f"DELIVERY#{retrying['id'].removeprefix('dlv_')}")
    assert outstanding.expires_at is None

    # When the retention has passed but DynamoDB has not yet deleted it (TTL lags by up to days)
    later = platform().for_tenant_id("acme", clock=lambda: settled.expires_at + timedelta(seconds=1)).webhooks
    # Then the log no longer shows it, listed or fetched; the outstanding delivery is still there
    assert later.deliveries(good["id"], limit=10, cursor=None).items == []
    with pytest.raises(NotFound):
        later.delivery(good["id"], sent["id"])
    assert [d.delivery_id for d in later.deliveries(failing["id"], limit=10, cursor=None).items] == [retrying["id"]]
    # While a day before the retention ends it is listed
    earlier = platform().for_tenant_id("acme", clock=lambda: settled.expires_at - timedelta(days=1)).webhooks
    assert [d.delivery_id for d in earlier.deliveries(good["id"], limit=10, cursor=None).items] == [sent["id"]]


def test_a_rotated_secret_signs_alongside_the_new_one_for_a_day(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    webhook = subscribe(api, admin_key, receiver.url(), "member.created")
    old = webhook["secret"]

    # When the secret is rotated
    rotated = api.call("POST", f"/v1/webhooks/{webhook['id']}/rotate-secret", key=admin_key)
    assert rotated.status == 200, rotated
    new = rotated.body["secret"]
    assert new != old and new.startswith("whsec_")
    assert [s["expires_at"] is None for s in rotated.body["secrets"]] == [True, False]
    api.enrol(admin_key)
    run(clock)

    # Then a delivery in the overlap carries both signatures, and verifies with either secret
    (during,) = receiver.at("/hook")
    assert len(during.signatures) == 2
    assert during.verify(old) == during.verify(new)

    # When the overlap (24 h) has passed
    clock.advance(hours=25)
    api.enrol(admin_key)
    clock.advance(seconds=10)
    run(clock)

    # Then only the new secret signs: the old one is refused
    after = receiver.at("/hook")[-1]
    assert len(after.signatures) == 1 and after.verify(new)["type"] == "member.created"
    with pytest.raises(WebhookVerificationError):
        after.verify(old)


# --- SSRF ------------------------------------------------------------------------------------


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A fake DNS: host -> addresses (the tests change answers between registration and delivery)."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return table


def test_urls_reaching_private_networks_or_metadata_are_refused_at_registration(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    api: Api,
    admin_key: str,
    names: dict[str, list[str]],
) -> None:
    # Given a deployed stage (not local mode) and names resolving to private and public addresses
    webhook_environment(request, monkeypatch, webhooks_local_mode="false")
    names.update(
        {
            "internal.example.com": ["10.0.0.5"],
            "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
            "metadata.example.com": ["169.254.169.254"],
            "public.example.com": ["93.184.216.34"],
        }
    )
    refused = [
        "http://public.example.com/hook",  # plain http
        "ftp://public.example.com/hook",
        "https://user:pw@public.example.com/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.0.1/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::ffff:10.0.0.1]/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://internal.example.com/hook",
        "https://mixed.example.com/hook",
        "https://metadata.example.com/hook",
        "https://nowhere.example.com/hook",
    ]
    # When each is registered, Then it is 400 naming the url, and nothing is created
    for url in refused:
        reply = api.call("POST", "/v1/webhooks", key=admin_key, body={"url": url, "events": ["*"]})
        assert_invalid(reply, "url", context=url)
    assert api.call("GET", "/v1/webhooks", key=admin_key).body["data"] == []
    # While a public https URL is accepted
    assert subscribe(api, admin_key, "https://public.example.com/hook")["url"] == "https://public.example.com/hook"


def test_delivery_rechecks_the_address_and_follows_no_redirect(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock, names: dict[str, list[str]]
) -> None:
    api = hooks
    # Given a name that resolved to a public address at registration (DNS rebinding)...
    names["rebind.example.com"] = ["93.184.216.34"]
    rebinding = subscribe(api, admin_key, "https://rebind.example.com/hook", "member.created")
    # ... and an endpoint that answers with a redirect to somewhere else
    receiver.script("/redirect", (302, {"Location": receiver.url("/stolen")}))
    redirecting = subscribe(api, admin_key, receiver.url("/redirect"), "member.created")

    # When the name resolves to a private, then the metadata address at delivery time
    names["rebind.example.com"] = ["10.0.0.7"]
    api.enrol(admin_key)
    run(clock)
    names["rebind.example.com"] = ["169.254.169.254"]
    clock.advance(minutes=2)
    run(clock)

    # Then nothing was sent there: each attempt is refused and recorded
    (refused,) = deliveries(api, admin_key, rebinding["id"])
    assert refused["status"] == "retrying" and refused["attempts"] == 2
    assert [h["status_code"] for h in refused["history"]] == [None, None]
    assert "private" in refused["history"][0]["error"] and "metadata" in refused["history"][1]["error"]
    # And the redirect was recorded as a failure, never followed
    (redirected,) = deliveries(api, admin_key, redirecting["id"])
    assert redirected["history"][0]["status_code"] == 302
    assert redirected["history"][0]["error"] == "redirect not followed"
    assert receiver.at("/stolen") == []


# --- isolation and validation ------------------------------------------------------------------


def test_another_tenant_cannot_see_or_touch_a_webhook(
    hooks: Api, admin_key: str, other_admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    webhook = subscribe(api, admin_key, receiver.url(), "member.created")
    api.enrol(admin_key)
    run(clock)
    (delivery,) = deliveries(api, admin_key, webhook["id"])
    base = f"/v1/webhooks/{webhook['id']}"
    # When tenant B's admin key addresses tenant A's webhook on every route, Then each is 404
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{delivery['id']}/redeliver", None),
        ("DELETE", base, None),
    ]:
        assert_error(api.call(method, path, key=other_admin_key, body=body), 404, "not_found", f"{method} {path}")
    assert api.call("GET", "/v1/webhooks", key=other_admin_key).body == {"data": []}
    # And A's webhook is untouched, and a non-admin key of A is refused
    assert api.call("GET", base, key=admin_key).body["description"] is None
    reader = api.create_key(admin_key, "read")
    assert_error(api.call("GET", "/v1/webhooks", key=reader), 403, "forbidden")


def test_bodies_are_validated_and_deletion_stops_deliveries(
    hooks: Api, admin_key: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    api = hooks
    assert_invalid(
        api.call("POST", "/v1/webhooks", key=admin_key, body={"url": receiver.url(), "events": ["points.spent"]}),
        "events.0",
    )
    assert_invalid(
        api.call("POST", "/v1/webhooks", key=admin_key, body={"url": receiver.url(), "events": []}), "events"
    )
    webhook = subscribe(api, admin_key, receiver.url(), "member.created")
    path = f"/v1/webhooks/{webhook['id']}"
    assert api.call("PATCH", path, key=admin_key, body={"url": None}).status == 400
    assert api.call("PATCH", path, key=admin_key, body={}).status == 400
    changed = api.call("PATCH", path, key=admin_key, body={"events": ["*"], "description": "all"})
    assert changed.status == 200 and changed.body["events"] == ["*"] and changed.body["description"] == "all"

    # When it is deleted, Then it is gone and receives nothing more
    assert api.call("DELETE", path, key=admin_key).status == 200
    assert_error(api.call("GET", path, key=admin_key), 404, "not_found")
    api.enrol(admin_key)
    run(clock)
    assert receiver.requests == []


# --- deployed: through the deliveries queue --------------------------------------------------------


def test_deployed_the_schedule_and_queue_handler_dispatch_then_drain_each_endpoint(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    api: Api,
    admin_key: str,
    other_admin_key: str,
    receiver: Receiver,
) -> None:
    if backend != "moto":
        pytest.skip("the deliveries queue is moto's SQS (in-process)")
    import boto3

    from chalicelib.domain import events as feed
    from chalicelib.jobs.webhooks import DELIVERIES_QUEUE, FUNCTION, SCHEDULE

    # Given a deployed stage: a deliveries queue, and two tenants each with a subscribed endpoint
    sqs = boto3.client("sqs", region_name="eu-west-1")
    queue_url = sqs.create_queue(QueueName="loyalty-test-deliveries")["QueueUrl"]
    webhook_environment(request, monkeypatch, webhooks_local_mode="true", deliveries_queue_url=queue_url)
    monkeypatch.setattr(feed, "SETTLE_WINDOW", timedelta(0))  # the handlers run at real time
    acme = subscribe(api, admin_key, receiver.url("/acme"), "member.created")
    globex = subscribe(api, other_admin_key, receiver.url("/globex"), "member.created")
    api.enrol(admin_key, external_id="a-1")
    api.enrol(other_admin_key, external_id="g-1")

    def messages() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in got]

    def handle(bodies: list[dict[str, Any]]) -> None:
        for body in bodies:  # batch size 1, as deployed
            event = api.client.events.generate_sqs_event(message_bodies=[json.dumps(body)], queue_name=DELIVERIES_QUEUE)
            api.client.lambda_.invoke(FUNCTION, event)

    # When the schedule fires, Then it only enqueues one dispatch unit per active tenant
    schedule = api.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    assert api.client.lambda_.invoke(SCHEDULE, schedule).payload == {"units": 2}
    units = messages()
    assert sorted((m["kind"], m["tenant_id"]) for m in units) == [("dispatch", "acme"), ("dispatch", "globex")]
    assert receiver.requests == []

    # When the handler takes them, Then deliveries are recorded and one drain per endpoint is enqueued
    handle(units)
    drains = messages()
    assert sorted((m["kind"], m["tenant_id"], m["webhook_id"]) for m in drains) == sorted(
        [("drain", "acme", acme["id"]), ("drain", "globex", globex["id"])]
    )
    assert receiver.requests == []

    # When the drains are handled, Then each endpoint gets its own tenant's event, signed with its secret
    handle(drains)
    assert receiver.at("/acme")[0].verify(acme["secret"])["data"]["data"]["external_id"] == "a-1"
    assert receiver.at("/globex")[0].verify(globex["secret"])["data"]["data"]["external_id"] == "g-1"
    assert messages() == []

    # And a manual redelivery goes through the queue too
    (delivery,) = deliveries(api, admin_key, acme["id"])
    path = f"/v1/webhooks/{acme['id']}/deliveries/{delivery['id']}/redeliver"
    assert api.call("POST", path, key=admin_key).status == 202
    requested = messages()
    assert requested == [{"kind": "drain", "tenant_id": "acme", "webhook_id": acme["id"]}]
    handle(requested)
    assert len(receiver.at("/acme")) == 2 and deliveries(api, admin_key, acme["id"])[0]["attempts"] == 2

    # And malformed messages are dropped, not retried for ever
    handle([{"kind": "drain", "tenant_id": "../etc"}, {"nonsense": True}])
