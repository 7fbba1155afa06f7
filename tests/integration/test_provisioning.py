"""Asynchronous tenant provisioning, on moto and on DynamoDB Local, with the asynchronous path
forced on (``LOYALTY_PROVISIONING_ASYNC``): messages wait in process and are delivered to the
real ``provision-tenant`` SQS handler through ``chalice.test.Client``, one per invocation
(the deployed event source has a batch size of 1). A delivery that raises is what SQS
redelivers later; the tests redeliver it by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.errors import NotFound, RetryLater
from chalicelib.domain.tenants import TenantStatus
from chalicelib.jobs.provisioning import FUNCTION, PROVISIONING_QUEUE
from chalicelib.persistence.factory import shared_client
from chalicelib.persistence.provisioning import provisioning_message
from chalicelib.services import platform, reset_platform
from tests.support.checks import assert_error, tenant_state
from tests.support.faults import (
    Crash,
    FaultPlan,
    backups_unavailable,
    crash,
    limit_exceeded,
    rewrite_responses,
    table_status,
)
from tests.support.http import OPERATOR_KEY, Api, Reply

NEW_TENANT = {"tenant_id": "acme", "name": "Acme Shoes", "currency": "EUR", "timezone": "Europe/Paris"}


# --- helpers -------------------------------------------------------------------------------------


def use_async_provisioning(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Force the asynchronous path (and short waits) from now on."""
    monkeypatch.setenv("LOYALTY_PROVISIONING_ASYNC", "true")
    monkeypatch.setenv("LOYALTY_PROVISIONING_POLL_SECONDS", "0.01")
    monkeypatch.setenv("LOYALTY_PROVISIONING_WAIT_SECONDS", "2")
    for name, value in settings.items():
        monkeypatch.setenv(f"LOYALTY_{name.upper()}", value)
    reset_platform()
    platform()  # built now, outside any request (chalice.test.Client patches the stage's environment)


def waiting_messages() -> list[str]:
    """The provisioning messages enqueued since the last call (the in-process queue)."""
    return platform().provisioning_queue.drain()  # type: ignore[union-attr]


def deliver(api: Api, body: str, *, receive_count: int = 1) -> Any:
    """One SQS delivery of ``body`` to the provision-tenant function; raises what it raises."""
    event = api.client.events.generate_sqs_event(message_bodies=[body], queue_name=PROVISIONING_QUEUE)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return api.client.lambda_.invoke(FUNCTION, event).payload


def create(api: Api, **overrides: str) -> Reply:
    return api.call("POST", "/v1/tenants", key=OPERATOR_KEY, body={**NEW_TENANT, **overrides})


def describe(tenant_id: str) -> dict[str, Any] | None:
    client = shared_client(platform().connection)
    try:
        return client.describe_table(TableName=platform().settings.tenant_table_name(tenant_id))["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None


def assert_table_as_provisioned(backend: str, tenant_id: str) -> None:
    """The tenant's table with the settings a brand's data needs, as far as the emulator shows them."""
    table = describe(tenant_id)
    assert table is not None, f"no table for {tenant_id}"
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} >= {"gsi1", "gsi2", "feed"}
    client = shared_client(platform().connection)
    ttl = client.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at"), ttl
    if backend != "moto":
        return  # DynamoDB Local describes no encryption and has neither backups nor tags
    assert table["SSEDescription"]["Status"] == "ENABLED" and table["SSEDescription"]["SSEType"] == "KMS"
    backups = client.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    tags = client.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == sorted(
        [
            ("app", "loyalty"),
            ("component", "tenant-data"),
            ("stage", platform().settings.stage),
            ("tenant", tenant_id),
        ]
    ), tags


def assert_not_ready(reply: Reply, tenant_id: str = "acme", context: str = "") -> None:
    details = assert_error(reply, 409, "tenant_not_ready", context)
    assert details == {"tenant_id": tenant_id, "status": "provisioning"}, details
    assert reply.headers.get("retry-after") == "5", reply.headers


def operator_view(api: Api, tenant_id: str = "acme") -> dict[str, Any]:
    reply = api.call("GET", f"/v1/tenants/{tenant_id}", key=OPERATOR_KEY)
    assert reply.status == 200, reply
    return reply.body


@pytest.fixture
def queued(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    use_async_provisioning(monkeypatch)
    yield api


# --- the flow --------------------------------------------------------------------------------------


def test_a_new_tenant_is_provisioning_until_its_table_is_ready_then_active(queued: Api, backend: str) -> None:
    api = queued
    # When the operator creates a tenant
    created = create(api)

    # Then it is answered at once as provisioning, with its admin key
    assert created.status == 201, created
    assert created.body["tenant"]["status"] == "provisioning"
    assert created.body["tenant"]["tenant_id"] == "acme"
    admin = created.body["api_key"]["secret"]
    assert created.body["api_key"]["scopes"] == ["admin"]
    # And the operator sees it provisioning, its table not created yet, one message waiting
    assert operator_view(api)["status"] == "provisioning"
    listed = api.call("GET", "/v1/tenants", key=OPERATOR_KEY).body["data"]
    assert [(t["tenant_id"], t["status"]) for t in listed] == [("acme", "provisioning")]
    assert describe("acme") is None
    messages = waiting_messages()
    assert [json.loads(m) for m in messages] == [{"tenant_id": "acme"}]

    # And meanwhile its key is refused with 409 tenant_not_ready, reading or writing
    assert_not_ready(api.call("GET", "/v1/me", key=admin), context="GET /v1/me")
    assert_not_ready(api.call("POST", "/v1/members", key=admin, body={"name": "Ada"}), context="POST /v1/members")
    # And it cannot be suspended or resumed before it is active
    assert_not_ready(api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY), context="suspend")
    assert_not_ready(api.call("POST", "/v1/tenants/acme/resume", key=OPERATOR_KEY), context="resume")
    assert operator_view(api)["status"] == "provisioning"

    # When the message is delivered
    deliver(api, messages[0])

    # Then the table exists with its settings and the tenant is active
    assert_table_as_provisioned(backend, "acme")
    view = operator_view(api)
    assert view["status"] == "active"
    assert view["updated_at"] >= view["created_at"] == created.body["tenant"]["created_at"]
    assert view["provisioning_failure"] is None
    # And its key works: a member earns points and the ledger shows them
    me = api.call("GET", "/v1/me", key=admin)
    assert me.status == 200 and me.body["tenant"]["status"] == "active", me
    member = api.enrol(admin, name="Ada", external_id="ada-1")
    earned = api.earn(admin, member, "order-1", points=120)
    assert earned.status == 201, earned
    assert api.balance(admin, member)["available"] == 120
    assert [(e["type"], e["points"]) for e in api.ledger(admin, member)] == [("earn", 120)]


def test_without_a_queue_the_table_is_created_inline_and_the_tenant_is_active_at_once(api: Api, backend: str) -> None:
    created = create(api)

    assert created.status == 201 and created.body["tenant"]["status"] == "active", created
    assert_table_as_provisioned(backend, "acme")
    assert platform().provisioning_queue is None
    assert api.call("GET", "/v1/me", key=created.body["api_key"]["secret"]).status == 200


def test_a_duplicate_message_changes_nothing(queued: Api, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    api = queued
    # Given a tenant provisioned by its message, then used
    admin = create(api).body["api_key"]["secret"]
    (message,) = waiting_messages()
    deliver(api, message)
    member = api.enrol(admin, name="Ada")
    assert api.earn(admin, member, "order-1", points=50).status == 201
    before = tenant_state(api, admin)
    activated = operator_view(api)

    # When the same message is delivered again (SQS delivers at least once)
    plan = FaultPlan()
    plan.install(monkeypatch)
    deliver(api, message)

    # Then no table operation was attempted, and the tenant and its data are as they were
    assert plan.calls["CreateTable"] == 0 and plan.calls["UpdateTable"] == 0, plan.calls
    assert operator_view(api) == activated
    assert tenant_state(api, admin) == before
    assert before["balances"][member]["available"] == 50
    assert_table_as_provisioned(backend, "acme")  # on moto: each tag once, not twice


def test_a_table_left_by_a_crashed_attempt_is_taken_over_by_the_next(
    queued: Api, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    api = queued
    admin = create(api).body["api_key"]["secret"]
    (message,) = waiting_messages()
    # Given a first attempt that dies right after DynamoDB created the table
    plan = FaultPlan()
    plan.fail("CreateTable", crash, after=True)
    plan.install(monkeypatch)
    with pytest.raises(Crash):
        deliver(api, message)

    # Then the table exists but the tenant is still provisioning, the failure recorded
    assert describe("acme") is not None
    assert operator_view(api)["status"] == "provisioning"
    failure = operator_view(api)["provisioning_failure"]
    assert failure["attempts"] == 1 and failure["error"] == "Crash: process died after CreateTable", failure
    assert_not_ready(api.call("GET", "/v1/me", key=admin))

    # When the message is redelivered, Then the existing table is used and the tenant becomes active
    deliver(api, message)
    assert plan.calls["CreateTable"] == 1
    view = operator_view(api)
    assert (view["status"], view["provisioning_failure"]) == ("active", None)
    assert_table_as_provisioned(backend, "acme")
    assert api.call("GET", "/v1/me", key=admin).status == 200


def test_limit_exceeded_leaves_the_tenant_provisioning_until_a_later_delivery_succeeds(
    queued: Api, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    api = queued
    admin = create(api).body["api_key"]["secret"]
    (message,) = waiting_messages()
    # Given DynamoDB refusing new tables twice (500 table operations in progress, or the quota)
    plan = FaultPlan()
    plan.fail("CreateTable", limit_exceeded, times=2)
    plan.install(monkeypatch)

    # When the message is delivered, Then the delivery fails (SQS will redeliver it) ...
    for attempt in (1, 2):
        with pytest.raises(RetryLater) as refused:
            deliver(api, message)
        assert refused.value.details == {"table": describe_name("acme"), "reason": "LimitExceededException"}
        # ... and the tenant stays provisioning, without a table, the failures counted
        view = operator_view(api)
        assert view["status"] == "provisioning"
        assert describe("acme") is None
        failure = view["provisioning_failure"]
        assert failure["attempts"] == attempt, failure
        assert failure["error"].startswith("retry_later: DynamoDB refuses table operations for now"), failure
        assert_not_ready(api.call("GET", "/v1/me", key=admin))

    # When it is delivered a third time, with DynamoDB accepting again
    deliver(api, message)

    # Then the tenant is active, its failures cleared, after exactly three attempts
    assert plan.injected["CreateTable"] == 2 and plan.calls["CreateTable"] == 3
    view = operator_view(api)
    assert (view["status"], view["provisioning_failure"]) == ("active", None)
    assert_table_as_provisioned(backend, "acme")
    assert api.call("GET", "/v1/me", key=admin).status == 200


def describe_name(tenant_id: str) -> str:
    return platform().settings.tenant_table_name(tenant_id)


def test_a_table_still_creating_is_awaited_within_bounds_then_retried(
    queued: Api, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    api = queued
    admin = create(api).body["api_key"]["secret"]
    (message,) = waiting_messages()
    # Given DynamoDB reporting the new table as CREATING for longer than one attempt waits
    use_async_provisioning(monkeypatch, provisioning_wait_seconds="0.5", provisioning_poll_seconds="0.02")
    plan = FaultPlan()
    plan.install(monkeypatch)
    rewrite_responses(monkeypatch, "CreateTable", table_status("CREATING"), times=1)
    creating = rewrite_responses(monkeypatch, "DescribeTable", table_status("CREATING"), times=1000)

    # When the message is delivered, Then the attempt gives up after its bounded wait
    with pytest.raises(RetryLater) as refused:
        deliver(api, message)
    assert refused.value.details == {"table": describe_name("acme"), "status": "CREATING"}
    assert 2 <= creating["DescribeTable"] <= 26  # it polled (every 20 ms for 0.5 s), and stopped
    assert operator_view(api)["status"] == "provisioning"
    assert "is still CREATING" in operator_view(api)["provisioning_failure"]["error"]

    # When the table turns ACTIVE and the message is redelivered, Then the tenant is active
    creating["DescribeTable"] = 1000
    deliver(api, message)
    assert plan.calls["CreateTable"] == 1  # the table was created once
    assert operator_view(api)["status"] == "active"
    assert api.call("GET", "/v1/me", key=admin).status == 200


def test_point_in_time_recovery_not_yet_available_is_awaited(
    queued: Api, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    api = queued
    create(api)
    (message,) = waiting_messages()
    plan = FaultPlan()
    plan.fail("UpdateContinuousBackups", backups_unavailable, times=2)
    plan.install(monkeypatch)

    deliver(api, message)

    assert plan.injected["UpdateContinuousBackups"] == 2 and plan.calls["UpdateContinuousBackups"] == 3
    assert operator_view(api)["status"] == "active"
    assert_table_as_provisioned(backend, "acme")


# --- requests and messages that cannot succeed -----------------------------------------------------


def test_a_refused_request_registers_nothing_and_the_same_request_completes(queued: Api, backend: str) -> None:
    api = queued
    queue = platform().provisioning_queue

    def unavailable(tenant_id: str) -> None:
        raise RetryLater("the provisioning queue is unavailable", details={"reason": "EndpointConnectionError"})

    # Given a queue that refuses the new tenant's message
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(queue, "enqueue", unavailable)
        refused = create(api)

    # Then the request is answered 503 retry_later, and no tenant nor key was registered
    assert assert_error(refused, 503, "retry_later") == {"reason": "EndpointConnectionError"}
    assert api.call("GET", "/v1/tenants", key=OPERATOR_KEY).body["data"] == []
    assert platform().api_key_store.list_for_tenant("acme") == []
    assert describe("acme") is None

    # When the operator sends the same request again, Then it completes as usual
    created = create(api)
    assert created.status == 201 and created.body["tenant"]["status"] == "provisioning", created
    (message,) = waiting_messages()
    deliver(api, message)
    assert operator_view(api)["status"] == "active"
    assert api.call("GET", "/v1/me", key=created.body["api_key"]["secret"]).status == 200
    assert_table_as_provisioned(backend, "acme")


def test_a_message_before_its_tenant_is_registered_is_retried_then_dropped(queued: Api) -> None:
    api = queued
    early = provisioning_message("acme")
    # When a message arrives for a tenant not registered (yet), Then it is left for redelivery
    with pytest.raises(NotFound):
        deliver(api, early)
    with pytest.raises(NotFound):
        deliver(api, early, receive_count=2)
    # And dropped at its third delivery, without creating any table
    assert deliver(api, early, receive_count=3) is None
    assert describe("acme") is None

    # While the same message once the tenant is registered provisions it
    create(api)
    deliver(api, waiting_messages()[0])
    assert operator_view(api)["status"] == "active"


def test_messages_that_name_no_tenant_are_dropped_at_once(queued: Api) -> None:
    for body in ("not json", "[]", '{"tenant": "acme"}', '{"tenant_id": "NOT A SLUG"}'):
        assert deliver(queued, body) is None, body  # no exception: redelivering would not help
    assert queued.call("GET", "/v1/tenants", key=OPERATOR_KEY).body["data"] == []


def test_inline_provisioning_failures_answer_503_and_a_retry_completes(
    api: Api, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # Given no queue (make run) and DynamoDB refusing one new table
    plan = FaultPlan()
    plan.fail("CreateTable", limit_exceeded)
    plan.install(monkeypatch)

    refused = create(api)
    details = assert_error(refused, 503, "retry_later")
    assert details == {"table": describe_name("acme"), "reason": "LimitExceededException"}
    assert refused.headers.get("retry-after") == "1"
    # Then nothing was registered, and the same request completes
    assert api.call("GET", "/v1/tenants", key=OPERATOR_KEY).body["data"] == []
    again = create(api)
    assert again.status == 201 and again.body["tenant"]["status"] == "active", again
    assert_table_as_provisioned(backend, "acme")


# --- the deployed queue ----------------------------------------------------------------------------


def test_the_sqs_queue_carries_the_message_to_the_handler(
    api: Api, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "moto":
        pytest.skip("SQS is emulated by moto only")
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="loyalty-test-provisioning")["QueueUrl"]
    use_async_provisioning(monkeypatch, provisioning_queue_url=url)

    created = create(api)
    assert created.status == 201 and created.body["tenant"]["status"] == "provisioning"
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None  # delayed 2 s
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    assert [json.loads(m["Body"]) for m in received] == [{"tenant_id": "acme"}]

    deliver(api, received[0]["Body"])
    assert operator_view(api)["status"] == "active"
    assert platform().tenants.get("acme").status is TenantStatus.ACTIVE
