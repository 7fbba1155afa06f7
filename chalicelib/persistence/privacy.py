"""Privacy in a tenant's table: the erasure's writes, the redaction of an erased member's
history, erased external ids, the member's notices and the last-activity index.

Keys (see :mod:`chalicelib.persistence.models`)::

    MEMBER#<member>   #RETENTION   (gsi2: RETENTION#<shard> / <last activity>#<member>)  last-activity index
    ERASED#<sha256>   #ERASED      -                                                     an erased external id
    RETENTION         #CHECKPOINT  -                                                     the retention walk's cursor
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from ulid import ULID

from chalicelib.domain.events import EventType
from chalicelib.domain.imports import LEDGER_KEY_PREFIX as IMPORT_KEY_PREFIX
from chalicelib.domain.notifications import Notice
from chalicelib.domain.privacy import (
    ERASURE_SUBJECT,
    ErasureWrite,
    PersonalData,
    redact_delivery_body,
    redact_transfer_delivery,
    transfer_counterpart,
)
from chalicelib.persistence.errors import translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    DUE_SHARDS,
    LEDGER_PREFIX,
    LOT_PREFIX,
    MEMBERS_PARTITION,
    NOTICE_SK,
    PROFILE,
    due_shard,
    external_id_pk,
    ledger_partition,
    member_notices_partition,
    member_pk,
    notice_pk,
    sortable,
)
from chalicelib.persistence.notifications import notice_item, to_notice
from chalicelib.persistence.quotas import GuardedTransactWrite, guarded_transaction
from chalicelib.persistence.referrals import CODE_SK, card_code_pk, referral_code_pk

#: The key an erased member's imported opening entry moves to: ``import:erased-<sha256>``.
ERASED_KEY_MARK = "erased-"
RETENTION_SK = "#RETENTION"
RETENTION_PREFIX = "RETENTION#"
ERASED_SK = "#ERASED"
#: The retention walk's cursor (a feed checkpoint item of its own name).
RETENTION_CHECKPOINT = "RETENTION"
_CHECKPOINT_SK = "#CHECKPOINT"
#: Profile attributes an erasure removes (the index keys of the members list and the birthdays too).
PERSONAL_ATTRIBUTES = (
    "external_id",
    "email",
    "name",
    "birthday",
    "referral_code",
    "card_code",
    "segments",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
)


def erased_id_pk(tenant_id: str, external_id: str) -> str:
    """A one-way hash of the external id (salted with the tenant, so two brands' hashes differ)."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{external_id}".encode()).hexdigest()
    return f"ERASED#{digest}"


def add_erasure_write(models: TenantModels, tx: GuardedTransactWrite, write: ErasureWrite) -> None:
    """The profile redacted (only if unchanged since it was read), the identifiers' look-up
    items deleted (only if still the member's), the external id's hash and ``member.erased``."""
    member, member_id = models.member, write.member_id
    tx.update(
        member(pk=member_pk(member_id), sk=PROFILE),
        actions=[
            *(getattr(member, name).remove() for name in PERSONAL_ATTRIBUTES),
            member.marketing_consent.set(False),
            member.erased_at.set(write.erased_at),
            member.updated_at.set(write.erased_at),
        ],
        condition=member.pk.exists()
        & member.erased_at.does_not_exist()
        & (member.updated_at == write.profile_updated_at),
        label=write,
    )
    if write.external_id is not None:
        link = models.external_id
        tx.delete(
            link(pk=external_id_pk(write.external_id), sk="#EXTID"), condition=link.member_id == member_id, label=write
        )
        tx.save(
            models.erased_id(
                pk=erased_id_pk(models.tenant_id, write.external_id), sk=ERASED_SK, erased_at=write.erased_at
            )
        )
    guard = models.code_guard
    for pk in (
        referral_code_pk(write.referral_code) if write.referral_code else None,
        card_code_pk(write.card_code) if write.card_code else None,
    ):
        if pk is not None:
            tx.delete(guard(pk=pk, sk=CODE_SK), condition=guard.member_id == member_id, label=write)
    tx.save(notice_item(models, write.event), condition=models.notice.pk.does_not_exist(), label=write)
    tx.delete(models.retention(pk=member_pk(member_id), sk=RETENTION_SK))


class PrivacyRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    # --- erasure ---------------------------------------------------------------------------------

    def erasure_event(self, member_id: str) -> Notice | None:
        with translate_transient():
            try:
                item = self._models.notice.get(
                    notice_pk(EventType.MEMBER_ERASED, member_id, ERASURE_SUBJECT), NOTICE_SK, consistent_read=True
                )
            except DoesNotExist:
                return None
        return to_notice(item)

    def redact_history(self, member_id: str, personal: PersonalData, *, since: datetime, until: datetime) -> int:
        # The other side of each transfer carries the same description: it goes too (found from
        # the member's entries' metadata, which the redaction keeps, so a rerun finds them again).
        counterparts = self._transfer_counterparts(member_id) if personal.descriptions else {}
        return (
            self._redact_counterparts(counterparts)
            + self._redact_ledger(member_id, personal)
            + self._redact_birthdays(member_id, since.year, until.year)
            + self._redact_deliveries(member_id, personal, counterparts)
            + self._delete_lots(member_id)
            + self._rekey_imported_entries(member_id)
        )

    def _transfer_counterparts(self, member_id: str) -> dict[str, frozenset[str]]:
        """The other members of the member's transfers, each with the transfers' ids."""
        ledger = self._models.ledger
        found: dict[str, set[str]] = {}
        with translate_transient():
            for item in ledger.gsi1.query(ledger_partition(member_id), filter_condition=ledger.movement == "transfer"):
                side = transfer_counterpart(item.metadata.as_dict() if item.metadata is not None else {})
                if side is not None:
                    found.setdefault(side[0], set()).add(side[1])
        return {other: frozenset(ids) for other, ids in found.items()}

    def _redact_counterparts(self, counterparts: dict[str, frozenset[str]]) -> int:
        """The description of the other side's entry of each transfer (not of a reversal's)."""
        ledger, changed = self._models.ledger, 0
        with translate_transient():
            for other, transfer_ids in counterparts.items():
                rows = ledger.gsi1.query(
                    ledger_partition(other),
                    filter_condition=(ledger.movement == "transfer") & ledger.description.exists(),
                )
                for row in rows:
                    metadata = row.metadata.as_dict() if row.metadata is not None else {}
                    side = transfer_counterpart(metadata)
                    if side is not None and side[1] in transfer_ids and row.reference == side[1]:
                        row.update(actions=[ledger.description.remove()])
                        changed += 1
        return changed

    def _redact_ledger(self, member_id: str, personal: PersonalData) -> int:
        """The marked metadata keys and (when marked) descriptions of the member's entries."""
        if not personal.metadata_keys and not personal.descriptions:
            return 0
        ledger, changed = self._models.ledger, 0
        with translate_transient():
            for item in ledger.gsi1.query(ledger_partition(member_id)):
                actions: list[Any] = []
                if personal.descriptions and item.description is not None:
                    actions.append(ledger.description.remove())
                metadata = item.metadata.as_dict() if item.metadata is not None else {}
                if set(metadata) & personal.metadata_keys:
                    kept = {k: v for k, v in metadata.items() if k not in personal.metadata_keys}
                    actions.append(ledger.metadata.set(kept) if kept else ledger.metadata.remove())
                if actions:
                    item.update(actions=actions)
                    changed += 1
        return changed

    def _redact_birthdays(self, member_id: str, first_year: int, last_year: int) -> int:
        """``member.birthday`` events carry the birthday: one per year since enrolment."""
        notice, changed = self._models.notice, 0
        with translate_transient():
            for year in range(first_year, last_year + 1):
                try:
                    item = notice.get(notice_pk(EventType.MEMBER_BIRTHDAY, member_id, str(year)), NOTICE_SK)
                except DoesNotExist:
                    continue
                data = json.loads(item.data)
                if data.get("birthday") is not None:
                    data["birthday"] = None
                    item.update(actions=[notice.data.set(json.dumps(data, separators=(",", ":")))])
                    changed += 1
        return changed

    def _redact_deliveries(
        self, member_id: str, personal: PersonalData, counterparts: dict[str, frozenset[str]]
    ) -> int:
        """The member's webhook deliveries (outstanding ones are sent as stored): redacted payloads;
        and the other members' deliveries of the member's transfers, without their description."""
        webhook, delivery, changed = self._models.webhook, self._models.delivery, 0
        with translate_transient():
            for endpoint in webhook.gsi1.query("WEBHOOKS"):
                rows = delivery.query(
                    endpoint.pk,
                    delivery.sk.startswith("DELIVERY#"),
                    filter_condition=delivery.member_id.is_in(member_id, *counterparts),
                )
                for row in rows:
                    payload = json.loads(row.payload)
                    if row.member_id == member_id:
                        redacted = redact_delivery_body(payload, personal)
                    else:
                        redacted = redact_transfer_delivery(payload, counterparts[row.member_id])
                    if redacted != payload:
                        row.update(actions=[delivery.payload.set(json.dumps(redacted, separators=(",", ":")))])
                        changed += 1
        return changed

    def _rekey_imported_entries(self, member_id: str) -> int:
        """A bulk import's opening entry is keyed by the member's external id (``import:<id>``):
        it moves, whole, to a key of the id's hash (``import:erased-<sha256>``), so the external
        id leaves the ledger's keys while the entry stays."""
        ledger, models, moved = self._models.ledger, self._models, 0
        prefix = f"{LEDGER_PREFIX}{IMPORT_KEY_PREFIX}"
        with translate_transient():
            rows = list(ledger.gsi1.query(ledger_partition(member_id), filter_condition=ledger.pk.startswith(prefix)))
        for row in rows:
            external_id = row.pk.removeprefix(prefix)
            if external_id.startswith(ERASED_KEY_MARK):
                continue
            digest = erased_id_pk(models.tenant_id, external_id).removeprefix("ERASED#")
            raw = row.serialize()
            raw["pk"] = {"S": f"{prefix}{ERASED_KEY_MARK}{digest}"}
            with translate_transient(), guarded_transaction(models) as tx:
                tx.delete(row, condition=ledger.pk.exists())
                tx.save(ledger.from_raw_data(raw), condition=ledger.pk.does_not_exist())
            moved += 1
        return moved

    def _delete_lots(self, member_id: str) -> int:
        """Lots the erasure's transaction had no room to delete (its balance counts none)."""
        lot, deleted = self._models.lot, 0
        with translate_transient():
            for item in lot.query(member_pk(member_id), lot.sk.startswith(LOT_PREFIX), consistent_read=True):
                item.delete()
                deleted += 1
        return deleted

    def erased_external_ids(self, external_ids: Iterable[str]) -> set[str]:
        by_pk = {erased_id_pk(self._models.tenant_id, external_id): external_id for external_id in external_ids}
        if not by_pk:
            return set()
        with translate_transient():
            found = self._models.erased_id.batch_get([(pk, ERASED_SK) for pk in by_pk])
            return {by_pk[item.pk] for item in found}

    # --- export ----------------------------------------------------------------------------------

    def member_notices(self, member_id: str) -> list[Notice]:
        notice, connection = self._models.notice, self._models.schema._get_connection()  # the table's, with its indexes
        with translate_transient():
            raw = connection.query(member_notices_partition(member_id), index_name="gsi1")
            items = list(raw.get("Items", []))
            while "LastEvaluatedKey" in raw:
                raw = connection.query(
                    member_notices_partition(member_id), index_name="gsi1", exclusive_start_key=raw["LastEvaluatedKey"]
                )
                items += raw.get("Items", [])
        return [to_notice(notice.from_raw_data(data)) for data in items]

    # --- retention -------------------------------------------------------------------------------

    def activity_due(self, before: datetime) -> Iterator[str]:
        index = self._models.retention.gsi2
        upper = sortable(before)
        for shard in range(DUE_SHARDS):
            with translate_transient():
                rows = list(index.query(f"{RETENTION_PREFIX}{shard}", self._models.retention.gsi2sk < upper))
            for row in rows:
                yield str(row.gsi2sk).rsplit("#", 1)[1]

    def index_activity(self, member_id: str, last_activity: datetime) -> None:
        with translate_transient():
            self._models.retention(
                pk=member_pk(member_id),
                sk=RETENTION_SK,
                gsi2pk=f"{RETENTION_PREFIX}{due_shard(member_id)}",
                gsi2sk=f"{sortable(last_activity)}#{member_id}",
            ).save()

    def unindex_activity(self, member_id: str) -> None:
        with translate_transient():
            self._models.retention(pk=member_pk(member_id), sk=RETENTION_SK).delete()

    def enrolled_before(self, before: datetime, *, after: str | None, limit: int) -> list[str]:
        member = self._models.member
        upper = f"mem_{str(ULID.from_datetime(before))[:10]}"
        lower = after or "mem_"
        if lower >= upper:
            return []
        with translate_transient():
            rows = member.gsi1.query(
                MEMBERS_PARTITION, member.gsi1sk.between(lower, upper), limit=limit + 1, attributes_to_get=["gsi1sk"]
            )
            ids = [str(row.gsi1sk) for row in rows if row.gsi1sk != after and str(row.gsi1sk) < upper]
        return ids[:limit]

    def retention_checkpoint(self) -> str | None:
        with translate_transient():
            try:
                item = self._models.feed_checkpoint.get(RETENTION_CHECKPOINT, _CHECKPOINT_SK, consistent_read=True)
            except DoesNotExist:
                return None
        return item.cursor

    def save_retention_checkpoint(self, member_id: str) -> None:
        with translate_transient():
            self._models.feed_checkpoint(pk=RETENTION_CHECKPOINT, sk=_CHECKPOINT_SK, cursor=member_id).save()
