"""Feed consumers' checkpoints in the tenant's table: ``<NAME>`` / ``#CHECKPOINT``.

One item per consumer (webhook dispatch: ``WEBHOOKS``; the EventBridge publisher:
``EVENTBRIDGE``): how far it has read the feed (``cursor``), since when it publishes
(``since``, set by its first claim) and who is reading now (a lease, so two runs never read
the same page at once). Advancing is conditional on still holding the lease.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import UpdateError

from chalicelib.persistence.errors import response_code, translate_transient
from chalicelib.persistence.factory import TenantModels

_CHECKPOINT_SK = "#CHECKPOINT"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class FeedCheckpoint:
    def __init__(self, models: TenantModels, name: str) -> None:
        self._model = models.feed_checkpoint
        self._name = name

    def claim(self, *, owner: str, now: datetime, until: datetime) -> tuple[bool, str | None, datetime | None]:
        model = self._model
        item = model(pk=self._name, sk=_CHECKPOINT_SK)
        try:
            with translate_transient():
                item.update(
                    actions=[
                        model.lease_owner.set(owner),
                        model.lease_until.set(until),
                        model.since.set(model.since | now),  # if_not_exists: the first claim's time
                    ],
                    condition=model.lease_until.does_not_exist() | (model.lease_until < now),
                )
        except UpdateError as error:
            if response_code(error) == _CONDITION_FAILED:
                return False, None, None
            raise
        return True, item.cursor, item.since

    def advance(self, *, owner: str, cursor: str, now: datetime) -> bool:
        model = self._model
        try:
            with translate_transient():
                model(pk=self._name, sk=_CHECKPOINT_SK).update(
                    actions=[model.cursor.set(cursor), model.updated_at.set(now)],
                    condition=model.lease_owner == owner,
                )
        except UpdateError as error:
            if response_code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    def release(self, *, owner: str) -> None:
        model = self._model
        try:
            with translate_transient():
                model(pk=self._name, sk=_CHECKPOINT_SK).update(
                    actions=[model.lease_owner.remove(), model.lease_until.remove()],
                    condition=model.lease_owner == owner,
                )
        except UpdateError as error:
            if response_code(error) != _CONDITION_FAILED:
                raise
