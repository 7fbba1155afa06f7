"""Notices in a tenant's table: each written once, and the birthday index they are found by."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.events import EventType
from chalicelib.domain.notifications import Notice
from chalicelib.persistence.errors import (
    response_code,
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    BIRTHDAY_PREFIX,
    NOTICE_SK,
    feed_partition,
    member_notices_partition,
    notice_pk,
)
from chalicelib.persistence.models import (
    NoticeItem,
)


def notice_item(models: TenantModels, notice: Notice) -> NoticeItem:
    """A notice's item: unique per type, member and subject, in the feed by time and in the
    member's notices (which export and erasure read)."""
    ulid = notice.notice_id.removeprefix("ntc_")
    return models.notice(
        pk=notice_pk(notice.type, notice.member_id, notice.subject),
        sk=NOTICE_SK,
        gsi3pk=feed_partition(notice.created_at),
        gsi3sk=ulid,
        gsi1pk=member_notices_partition(notice.member_id),
        gsi1sk=ulid,
        notice_id=notice.notice_id,
        type=str(notice.type),
        member_id=notice.member_id,
        subject=notice.subject,
        created_at=notice.created_at,
        data=json.dumps(notice.data, separators=(",", ":")),
    )


class NoticeRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add_once(self, notice: Notice) -> int:
        item = notice_item(self._models, notice)
        try:
            with translate_transient():
                item.save(condition=self._models.notice.pk.does_not_exist())
        except PutError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                return 0
            raise
        return 1

    def exists(self, notice_type: str, member_id: str, subject: str) -> bool:
        with translate_transient():
            try:
                self._models.notice.get(notice_pk(notice_type, member_id, subject), NOTICE_SK, attributes_to_get=["pk"])
            except DoesNotExist:
                return False
        return True

    def members_born_on(self, days: list[str]) -> Iterator[str]:
        index = self._models.lot.gsi2
        for day in days:
            with translate_transient():
                for row in index.query(f"{BIRTHDAY_PREFIX}{day}"):
                    yield str(row.gsi2sk)


def to_notice(item: NoticeItem) -> Notice:
    return Notice(
        notice_id=item.notice_id,
        type=EventType(item.type),
        member_id=item.member_id,
        subject=item.subject,
        created_at=item.created_at,
        data=json.loads(item.data),
    )
