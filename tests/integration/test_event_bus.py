"""Every feed event also goes to the EventBridge bus when one is configured: on moto's events
mock, a rule on the bus forwards everything to an SQS queue the test reads, as a partner's
rule would."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.bus import EventBusUnavailable
from chalicelib.jobs.webhooks import dispatch_tenant
from chalicelib.services import platform
from tests.support.http import Api
from tests.support.receiver import webhook_environment

BUS = "partners"


def later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=6)  # past the feed's settle window


def start_publishing(*tenants: str) -> None:
    """The publisher's first run for each tenant (at real time): it publishes what happens after."""
    for tenant in tenants:
        assert dispatch_tenant(tenant)["published"] == 0


@pytest.fixture
def tap(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, backend: str, api: Api) -> Callable[[], list]:
    """A bus with a rule sending every event of source ``loyalty`` to a queue; returns a reader."""
    if backend != "moto":
        pytest.skip("EventBridge is moto's (in-process)")
    import boto3

    events = boto3.client("events", region_name="eu-west-1")
    sqs = boto3.client("sqs", region_name="eu-west-1")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="partner-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": ["loyalty"]}))
    events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": arn}])
    webhook_environment(request, monkeypatch, event_bus_name=BUS)

    def read() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                got.append(json.loads(message["Body"]))
        return got

    return read


def test_every_event_goes_to_the_bus_once_with_its_tenant(
    tap: Callable[[], list], api: Api, admin_key: str, other_admin_key: str
) -> None:
    # Given two tenants publishing to the bus, and their activity: 1 enrolment + 12 earnings at
    # acme, 1 enrolment at globex
    start_publishing("acme", "globex")
    member = api.enrol(admin_key, external_id="ada")
    for n in range(12):
        assert api.earn(admin_key, member, f"o-{n}", points=n + 1).status == 201
    api.enrol(other_admin_key, external_id="grace")

    # When each tenant's unit runs
    acme, globex = dispatch_tenant("acme", clock=later), dispatch_tenant("globex", clock=later)

    # Then each event is on the bus, in order, typed, with its tenant and the feed's event body
    got = tap()
    assert (acme["published"], globex["published"]) == (13, 1)
    by_tenant = {t: [e for e in got if e["detail"]["tenant_id"] == t] for t in ("acme", "globex")}
    assert [e["detail-type"] for e in by_tenant["acme"]] == ["member.created"] + ["points.earned"] * 12
    assert [e["detail"]["data"]["points"] for e in by_tenant["acme"][1:]] == list(range(1, 13))
    assert {e["source"] for e in got} == {"loyalty"}
    assert all(e["detail"]["member_id"] == member for e in by_tenant["acme"])
    assert by_tenant["globex"][0]["detail"]["data"]["external_id"] == "grace"
    assert len({e["detail"]["id"] for e in got}) == 14
    # And in batches: 13 events of acme in 2 PutEvents calls
    assert platform().event_bus.calls == 3

    # When the unit runs again, Then nothing is published twice
    assert dispatch_tenant("acme", clock=later)["published"] == 0 and tap() == []


def test_entries_the_bus_keeps_refusing_are_published_on_a_later_run(
    tap: Callable[[], list], monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str
) -> None:
    start_publishing("acme")
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "o-1", points=5)
    bus = platform().event_bus
    real = bus._client.put_events
    monkeypatch.setattr(bus, "_sleep", lambda seconds: None)

    def throttle_earnings(Entries: list[dict[str, Any]]) -> dict[str, Any]:
        accepted = [e for e in Entries if e["DetailType"] != "points.earned"]
        if accepted:
            real(Entries=accepted)
        results = [{"ErrorCode": "ThrottlingException"} if e not in accepted else {"EventId": "x"} for e in Entries]
        return {"FailedEntryCount": len(Entries) - len(accepted), "Entries": results}

    # Given a bus that keeps throttling one of the two entries
    monkeypatch.setattr(bus._client, "put_events", throttle_earnings)
    # When the unit runs, Then it fails (the queue would retry it), with only the accepted one on the bus
    with pytest.raises(EventBusUnavailable, match="ThrottlingException"):
        dispatch_tenant("acme", clock=later)
    assert [e["detail-type"] for e in tap()] == ["member.created"]

    # When the bus recovers and the unit runs again, Then the refused event is published (the page is
    # replayed from the checkpoint: the accepted one comes again, at least once)
    monkeypatch.setattr(bus._client, "put_events", real)
    dispatch_tenant("acme", clock=later)
    assert [e["detail-type"] for e in tap()] == ["member.created", "points.earned"]


def test_events_before_the_bus_was_configured_are_not_published(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, backend: str, api: Api, admin_key: str
) -> None:
    if backend != "moto":
        pytest.skip("EventBridge is moto's (in-process)")
    # Given events from before any bus, then a bus configured
    api.enrol(admin_key, external_id="before")
    dispatch_tenant("acme", clock=later)
    import boto3

    boto3.client("events", region_name="eu-west-1").create_event_bus(Name=BUS)
    webhook_environment(request, monkeypatch, event_bus_name=BUS)
    start_publishing("acme")
    # When new events happen after the publisher's first run, Then only those are published
    api.enrol(admin_key, external_id="after")
    assert dispatch_tenant("acme", clock=later)["published"] == 1
