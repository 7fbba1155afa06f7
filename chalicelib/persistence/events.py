"""The event feed of a tenant's table: a day's ledger entries, member profiles and notices."""

from __future__ import annotations

from datetime import date

from chalicelib.domain.events import Event
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import NOTICE_SK, PROFILE, feed_partition_of_day
from chalicelib.persistence.ledger import to_entry
from chalicelib.persistence.members import to_member
from chalicelib.persistence.notifications import to_notice


class EventRepository:
    """Reads the feed index raw: a day's partition holds ledger entries and member profiles."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def read_day(self, day: date, *, after: str, upper: str, limit: int) -> list[Event]:
        ledger, member = self._models.ledger, self._models.member
        condition = ledger.gsi3sk.between(after, upper) if after else ledger.gsi3sk <= upper
        with translate_transient():
            raw = ledger._get_connection().query(
                feed_partition_of_day(day), range_key_condition=condition, index_name="feed", limit=limit + 1
            )
        events = []
        for data in raw.get("Items", []):
            if data.get("gsi3sk", {}).get("S") == after:
                continue  # between() is inclusive
            if data["sk"]["S"] == PROFILE:
                events.append(Event.of_member(to_member(member.from_raw_data(data))))
            elif data["sk"]["S"] == NOTICE_SK:
                events.append(Event.of_notice(to_notice(self._models.notice.from_raw_data(data))))
            else:
                events.append(Event.of_entry(to_entry(ledger.from_raw_data(data))))
        return events[:limit]
