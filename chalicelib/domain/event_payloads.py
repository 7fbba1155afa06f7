"""The JSON an event is published as: an item of ``GET /v1/events``, the ``data`` of a webhook
delivery, the ``detail`` of an EventBridge entry. It is part of what the domain promises its
consumers, so it is built here, where the publishers (webhooks, the bus) and the HTTP layer
both reach it; the API's ``EventOut`` and ``TransactionOut`` schemas document the same shape
(tests/unit/test_event_payloads.py keeps the two equal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.clock import isoformat
from chalicelib.domain.events import Event
from chalicelib.domain.ledger import LedgerEntry


def json_time(moment: datetime) -> str:
    """A time as the API's schemas write it: ISO 8601, microseconds only when there are any,
    UTC as ``Z``."""
    text = moment.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


def _json_time_or_none(moment: datetime | None) -> str | None:
    return json_time(moment) if moment is not None else None


def transaction_payload(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as the API shows a transaction."""
    return {
        "id": entry.transaction_id,
        "member_id": entry.member_id,
        "type": str(entry.movement),
        "points": entry.points,
        "sequence": entry.sequence,
        "balance_after": entry.balance_after.available,
        "amount": entry.amount,
        "currency": entry.currency,
        "reference": entry.reference,
        "description": entry.description,
        "reason": entry.reason,
        "metadata": dict(entry.metadata),
        "occurred_at": json_time(entry.occurred_at),
        "created_at": json_time(entry.created_at),
        "idempotency_key": entry.idempotency_key,
        "expires_at": _json_time_or_none(entry.expires_at),
        "pending_change": entry.pending_change,
        "matures_at": _json_time_or_none(entry.matures_at),
        "breakdown": [
            {"source": share.source, "name": share.name, "points": share.points, "rule_id": share.rule_id}
            for share in entry.breakdown
        ],
    }


def event_data(event: Event) -> dict[str, Any]:
    """What the event is about: the ledger transaction (``points.*`` but ``expiring_soon``), the
    new member (``member.created``), or the notice's own data."""
    if event.entry is not None:
        return transaction_payload(event.entry)
    if event.notice is not None:
        return dict(event.notice.data)
    assert event.member is not None
    return {
        "member_id": event.member.member_id,
        "external_id": event.member.external_id,
        "created_at": isoformat(event.member.created_at),
    }


def event_payload(event: Event) -> dict[str, Any]:
    """The whole event: id, type, member, time and data."""
    return {
        "id": event.event_id,
        "type": str(event.type),
        "member_id": event.member_id,
        "created_at": json_time(event.created_at),
        "data": event_data(event),
    }
