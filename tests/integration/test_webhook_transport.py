"""The webhook sender against a real receiver on loopback, without storage: what it sends, and
how little a hostile or broken receiver can make it read or wait."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from chalicelib.domain.webhooks import new_signing_secret
from chalicelib.integrations.http import HttpTransport
from chalicelib.integrations.ssrf import UrlPolicy
from tests.support.receiver import Answer, Receiver

CAP = 4096


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def transport(*, deadline: float = 1.5, local: bool = True) -> HttpTransport:
    return HttpTransport(
        UrlPolicy(local_mode=local),
        connect_timeout_seconds=0.5,
        read_timeout_seconds=0.5,
        max_response_bytes=CAP,
        deadline_seconds=deadline,
    )


def send(sender: HttpTransport, url: str, secret: str) -> tuple[object, float]:
    started = time.monotonic()
    result = sender.send(url, message_id="dlv_1", payload='{"type":"x"}', secrets=[secret])
    return result, time.monotonic() - started


def test_a_delivery_is_one_signed_post_with_the_standard_headers(receiver: Receiver) -> None:
    secret = new_signing_secret()
    result, _ = send(transport(), receiver.url("/in?tenant=acme"), secret)
    assert (result.status_code, result.error) == (200, None)  # type: ignore[attr-defined]
    (got,) = receiver.at("/in?tenant=acme")
    assert got.verify(secret) == {"type": "x"}
    assert got.headers["webhook-id"] == "dlv_1" and got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}" and got.headers["connection"] == "close"
    assert json.loads(got.body) == {"type": "x"}


def test_a_huge_answer_is_read_only_up_to_the_cap(receiver: Receiver) -> None:
    # Given a receiver answering 200 with 20 MB
    receiver.script("/big", Answer(200, size=20_000_000, chunk=16_384))
    # When a delivery is sent, Then it succeeds, having taken only about the cap before hanging up
    result, took = send(transport(), receiver.url("/big"), new_signing_secret())
    assert result.status_code == 200 and took < 1.5  # type: ignore[attr-defined]
    time.sleep(0.2)
    assert receiver.bytes_sent < 20_000_000 // 4, receiver.bytes_sent  # socket buffers, not the body


def test_a_body_dripping_slowly_ends_at_the_deadline_with_its_status_kept(receiver: Receiver) -> None:
    # Given a receiver that answers 200 then drips its body a byte every 0.2 s (each read is in time)
    receiver.script("/drip", Answer(200, size=1000, chunk=1, pause=0.2))
    # When a delivery is sent, Then it is cut at the deadline, not after 200 s, and counts as answered
    result, took = send(transport(deadline=1.0), receiver.url("/drip"), new_signing_secret())
    assert 0.9 <= took < 1.6, took
    assert (result.status_code, result.error) == (200, None)  # type: ignore[attr-defined]


def test_headers_dripping_slowly_are_a_timeout_at_the_deadline(receiver: Receiver) -> None:
    # Given a receiver that sends a header every 0.2 s, forever as far as we care (each read in time)
    receiver.script("/slow", Answer(200, header_drips=1000, pause=0.2))
    result, took = send(transport(deadline=1.0), receiver.url("/slow"), new_signing_secret())
    # Then the attempt is a timeout at the deadline
    assert 0.9 <= took < 1.6, took
    assert (result.status_code, result.error) == (None, "timeout")  # type: ignore[attr-defined]


def test_a_stalled_answer_is_a_timeout_and_a_closed_port_a_connection_failure(receiver: Receiver) -> None:
    receiver.script("/stall", 3.0)
    result, took = send(transport(), receiver.url("/stall"), new_signing_secret())
    assert (result.status_code, result.error) == (None, "timeout") and took < 1.0  # type: ignore[attr-defined]
    closed = receiver.url("/x").replace(f":{receiver.port}", ":1")
    result, _ = send(transport(), closed, new_signing_secret())
    assert result.status_code is None and result.error.startswith("connection failed")  # type: ignore[attr-defined]


def test_a_redirect_is_a_failure_and_not_followed(receiver: Receiver) -> None:
    receiver.script("/moved", (307, {"Location": receiver.url("/stolen")}))
    result, _ = send(transport(), receiver.url("/moved"), new_signing_secret())
    assert (result.status_code, result.error) == (307, "redirect not followed")  # type: ignore[attr-defined]
    assert receiver.at("/stolen") == []


def test_outside_local_mode_the_loopback_receiver_is_refused_unsent(receiver: Receiver) -> None:
    result, _ = send(transport(local=False), receiver.url("/hook"), new_signing_secret())
    assert result.status_code is None and result.error.startswith("refused:")  # type: ignore[attr-defined]
    assert receiver.requests == []
