"""The event feed of a tenant's table: a day's ledger entries, member profiles and notices."""

from __future__ import annotations

from datetime import date

from chalicelib.domain.events import Event
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    _NOTICE,
    PROFILE,
)
from chalicelib.persistence.ledger import _to_entry
from chalicelib.persistence.members import _to_member
from chalicelib.persistence.notifications import _to_notice


class EventRepository:
    """Reads the feed index raw: a day's partition holds ledger entries and member profiles."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def read_day(self, day: date, *, after: str, upper: str, limit: int) -> list[Event]:
        ledger, member = self._models.ledger, self._models.member
        condition = ledger.gsi3sk.between(after, upper) if after else ledger.gsi3sk <= upper
        with translate_transient():
            raw = ledger._get_connection().query(
                f"EVENTS#{day.isoformat()}", range_key_condition=condition, index_name="feed", limit=limit + 1
            )
        events = []
        for data in raw.get("Items", []):
            if data.get("gsi3sk", {}).get("S") == after:
                continue  # between() is inclusive
            if data["sk"]["S"] == PROFILE:
                events.append(Event.of_member(_to_member(member.from_raw_data(data))))
            elif data["sk"]["S"] == _NOTICE:
                events.append(Event.of_notice(_to_notice(self._models.notice.from_raw_data(data))))
            else:
                events.append(Event.of_entry(_to_entry(ledger.from_raw_data(data))))
        return events[:limit]
