"""The domain's event payloads are exactly what the API's schemas write: the publishers (webhooks,
the bus) and ``GET /v1/events`` send the same JSON, byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from chalicelib.api import presenters
from chalicelib.domain.event_payloads import event_payload, json_time, transaction_payload
from chalicelib.domain.events import Event, EventType
from chalicelib.domain.ledger import Balance, LedgerEntry, MovementType
from chalicelib.domain.members import Member
from chalicelib.domain.notifications import Notice
from chalicelib.domain.rules import Share

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _balance(available: int) -> Balance:
    return Balance(
        member_id="mem_01JD0000000000000000000000",
        available=available,
        lifetime_earned=available,
        lifetime_redeemed=0,
        lifetime_adjusted=0,
        version=3,
        updated_at=T0,
    )


MINIMAL = LedgerEntry(
    transaction_id="txn_01JD0000000000000000000001",
    member_id="mem_01JD0000000000000000000000",
    movement=MovementType.REDEEM,
    points=-40,
    sequence=2,
    idempotency_key="k-2",
    request_fingerprint="f",
    occurred_at=T0,
    created_at=T0 + timedelta(microseconds=1),
    balance_after=_balance(60),
)

FULL = LedgerEntry(
    transaction_id="txn_01JD0000000000000000000002",
    member_id="mem_01JD0000000000000000000000",
    movement=MovementType.EARN,
    points=125,
    sequence=3,
    idempotency_key="order-1",
    request_fingerprint="f",
    occurred_at=T0 - timedelta(days=1, milliseconds=250),
    created_at=T0 + timedelta(seconds=1, microseconds=123456),
    balance_after=_balance(185),
    amount="12.50",
    currency="EUR",
    reference="order-1",
    description="online order",
    reason="because",
    metadata={"channel": "web", "store": "42"},
    actor_key_id="key_01JD0000000000000000000000",
    expires_at=T0 + timedelta(days=365),
    pending_change=125,
    matures_at=T0 + timedelta(days=14, microseconds=10),
    requested=None,
    breakdown=(
        Share(source="base", name="base", points=100),
        Share(source="rule", name="double weekend", points=50, rule_id="rul_1"),
        Share(source="cap", name="cap", points=-25, rule_id="rul_2"),
    ),
    cap_counters=(("rul_2", 25),),
)

MEMBER = Member(
    member_id="mem_01JD0000000000000000000000",
    external_id="crm-7",
    email=None,
    name=None,
    birthday=None,
    marketing_consent=True,
    created_at=T0 + timedelta(microseconds=987654),
    updated_at=T0,
)

NOTICE = Notice(
    notice_id="ntc_01JD0000000000000000000003",
    type=EventType.POINTS_EXPIRING_SOON,
    member_id="mem_01JD0000000000000000000000",
    subject="2026-03-01",
    created_at=T0,
    data={"points": 40, "expires_at": "2026-03-01T00:00:00.000Z", "expiry_date": "2026-03-01", "note": None},
)

EVENTS = [Event.of_entry(MINIMAL), Event.of_entry(FULL), Event.of_member(MEMBER), Event.of_notice(NOTICE)]


def test_a_transaction_payload_is_the_api_transaction() -> None:
    for entry in (MINIMAL, FULL):
        expected = presenters.transaction(entry).model_dump(mode="json")
        assert transaction_payload(entry) == expected
        assert json.dumps(transaction_payload(entry)) == json.dumps(expected)


def test_an_event_payload_is_the_api_event() -> None:
    for event in EVENTS:
        expected = presenters.event(event).model_dump(mode="json")
        assert event_payload(event) == expected
        assert json.dumps(event_payload(event)) == json.dumps(expected)


class _Moment(BaseModel):
    at: datetime


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    offset_minutes=st.one_of(st.just(0), st.integers(min_value=-14 * 60, max_value=14 * 60)),
)
def test_times_are_written_as_pydantic_writes_them(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    assert json_time(aware) == _Moment(at=aware).model_dump(mode="json")["at"]
