"""Referrals and member codes in a tenant's table.

* Code guards: ``REFCODE#<code>`` / ``CARD#<code>``, sk ``#CODE``, naming the member.
* A referral: ``REFERRAL#<referee>`` / ``#REFERRAL``, in ``gsi1`` under its referrer
  (``MEMBER#<referrer>#REFERRALS``), and in the sparse keys-only ``gsi2`` while it is
  qualified and not finished (``REFERRALS#<shard>`` / ``<qualified at>#<referee>``).
* Versions of the referral program: ``PROGRAM`` / ``REFERRALS#<effective from>#<version>``
  (the rule item shape: a JSON definition), like the tier program's versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import TransientStoreError
from chalicelib.domain.ports import Page
from chalicelib.domain.referrals import (
    CapPeriod,
    Referral,
    ReferralCap,
    ReferralProgram,
    ReferralQualification,
    ReferralStatus,
    ReferralTerms,
)
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import RETRYABLE_CANCELLATIONS, cancellation_codes, translate_transient
from chalicelib.persistence.index_keys import (
    DUE_SHARDS,
    due_shard,
    sortable,
)
from chalicelib.persistence.notifications import notice_item
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite

if TYPE_CHECKING:
    from chalicelib.domain.notifications import Notice
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.models import ReferralItem

CODE_SK = "#CODE"
REFERRAL_SK = "#REFERRAL"
_REFERRAL_PREFIX = "REFERRAL#"
_DUE_PREFIX = "REFERRALS#"
_VERSION_PREFIX = "REFERRALS#"
_LIST_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")


def referral_code_pk(code: str) -> str:
    return f"REFCODE#{code}"


def card_code_pk(code: str) -> str:
    return f"CARD#{code}"


def referral_pk(referee_id: str) -> str:
    return f"{_REFERRAL_PREFIX}{referee_id}"


def referrals_of(referrer_id: str) -> str:
    return f"MEMBER#{referrer_id}#REFERRALS"


def guard_item(models: TenantModels, pk: str, member_id: str) -> Any:
    return models.code_guard(pk=pk, sk=CODE_SK, member_id=member_id)


def code_owner(models: TenantModels, pk: str) -> str | None:
    """The member a code guard names (strongly consistent), if any."""
    with translate_transient():
        try:
            return str(models.code_guard.get(pk, CODE_SK, consistent_read=True).member_id)
        except DoesNotExist:
            return None


def new_referral_item(models: TenantModels, referral: Referral) -> ReferralItem:
    """A pending referral, put in the referee's enrolment transaction."""
    return models.referral(
        pk=referral_pk(referral.referee_id),
        sk=REFERRAL_SK,
        gsi1pk=referrals_of(referral.referrer_id),
        gsi1sk=referral.referee_id,
        referee_id=referral.referee_id,
        referrer_id=referral.referrer_id,
        status=str(referral.status),
        created_at=referral.created_at,
    )


def _encode_terms(terms: ReferralTerms) -> str:
    return json.dumps(
        {
            "version_id": terms.version_id,
            "referrer_points": terms.referrer_points,
            "referee_points": terms.referee_points,
            "referee_rewarded_when_capped": terms.referee_rewarded_when_capped,
            "cap_limit": terms.cap_limit,
            "cap_period": terms.cap_period,
        },
        separators=(",", ":"),
    )


def _decode_terms(raw: str | None) -> ReferralTerms | None:
    if not raw:
        return None
    data = json.loads(raw)
    return ReferralTerms(
        version_id=data["version_id"],
        referrer_points=int(data["referrer_points"]),
        referee_points=int(data["referee_points"]),
        referee_rewarded_when_capped=bool(data["referee_rewarded_when_capped"]),
        cap_limit=data.get("cap_limit"),
        cap_period=data.get("cap_period"),
    )


def add_referral_qualification(models: TenantModels, tx: GuardedTransactWrite, write: ReferralQualification) -> None:
    """In the referee's order earn: the referral becomes qualified (only if still pending) and
    enters the index of referrals to complete."""
    referral = models.referral
    tx.update(
        referral(pk=referral_pk(write.referee_id), sk=REFERRAL_SK),
        actions=[
            referral.status.set(str(ReferralStatus.QUALIFIED)),
            referral.qualified_at.set(write.qualified_at),
            referral.order_id.set(write.order_id),
            referral.earn_key.set(write.earn_key),
            referral.terms.set(_encode_terms(write.terms)),
            referral.gsi2pk.set(f"{_DUE_PREFIX}{due_shard(write.referee_id)}"),
            referral.gsi2sk.set(f"{sortable(write.qualified_at)}#{write.referee_id}"),
        ],
        condition=referral.status == str(ReferralStatus.PENDING),
        label=write,
    )


def _to_referral(item: ReferralItem) -> Referral:
    return Referral(
        referee_id=item.referee_id,
        referrer_id=item.referrer_id,
        status=ReferralStatus(item.status),
        created_at=item.created_at,
        qualified_at=item.qualified_at,
        completed_at=item.completed_at,
        order_id=item.order_id,
        earn_key=item.earn_key,
        terms=_decode_terms(item.terms),
        referrer_points=int(item.referrer_points or 0),
        referee_points=int(item.referee_points or 0),
    )


class ReferralRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def get(self, referee_id: str) -> Referral | None:
        with translate_transient():
            try:
                item = self._models.referral.get(referral_pk(referee_id), REFERRAL_SK, consistent_read=True)
            except DoesNotExist:
                return None
        return _to_referral(item)

    def list_for(self, referrer_id: str, *, limit: int, cursor: str | None) -> Page[Referral]:
        partition = referrals_of(referrer_id)
        start = decode_cursor(cursor, fields=_LIST_FIELDS, partition=("gsi1pk", partition)) if cursor else None
        with translate_transient():
            rows = self._models.referral.gsi1.query(
                partition, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start
            )
            return paginate(
                rows,
                limit=limit,
                key_of=lambda row: {"pk": row.pk, "sk": row.sk, "gsi1pk": row.gsi1pk or "", "gsi1sk": row.gsi1sk or ""},
                convert=_to_referral,
            )

    def finish(self, referral: Referral, event: Notice) -> bool:
        assert referral.completed_at is not None, "a finished referral carries its time"
        models = self._models
        model = models.referral
        tx = GuardedTransactWrite(connection=model._get_connection().connection)
        try:
            with translate_transient(), tx:
                tx.update(
                    model(pk=referral_pk(referral.referee_id), sk=REFERRAL_SK),
                    actions=[
                        model.status.set(str(referral.status)),
                        model.completed_at.set(referral.completed_at),
                        model.referrer_points.set(referral.referrer_points),
                        model.referee_points.set(referral.referee_points),
                        model.gsi2pk.remove(),
                        model.gsi2sk.remove(),
                    ],
                    condition=model.status == str(ReferralStatus.QUALIFIED),
                )
                tx.save(notice_item(models, event), condition=models.notice.pk.does_not_exist())
        except TransactWriteError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" in codes:
                return False
            if any(code in RETRYABLE_CANCELLATIONS for code in codes):
                raise TransientStoreError(str(error)) from error
            raise
        return True

    def due(self, as_of: datetime) -> Iterator[str]:
        index = self._models.referral.gsi2
        upper = f"{sortable(as_of)}#~"
        for shard in range(DUE_SHARDS):
            with translate_transient():
                for row in index.query(f"{_DUE_PREFIX}{shard}", self._models.referral.gsi2sk <= upper):
                    yield (row.gsi2sk or "").split("#", 1)[1]


class ReferralProgramRepository:
    """Versions under pk ``PROGRAM``, sk ``REFERRALS#<effective from>#<version id>``: the version
    in force at a moment is one query for the last key at or before it."""

    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add(self, program: ReferralProgram, audit: AuditEntry | None = None) -> None:
        definition = {
            "effective_from": program.effective_from.isoformat(),
            "created_at": program.created_at.isoformat(),
            "enabled": program.enabled,
            "referrer_points": program.referrer_points,
            "referee_points": program.referee_points,
            "min_order_total": format(program.min_order_total, "f") if program.min_order_total is not None else None,
            "cap": {"limit": program.cap.limit, "per": str(program.cap.per)} if program.cap else None,
            "referee_rewarded_when_capped": program.referee_rewarded_when_capped,
        }
        sk = f"{_VERSION_PREFIX}{sortable(program.effective_from)}#{program.version_id}"
        with audited_transaction(self._models.audit, audit) as tx:
            tx.save(
                self._models.rule(pk="PROGRAM", sk=sk, definition=json.dumps(definition)),
                condition=self._models.rule.sk.does_not_exist(),
            )

    def list(self) -> list[ReferralProgram]:
        rule = self._models.rule
        with translate_transient():
            return [
                _to_program(item.sk, item.definition)
                for item in rule.query("PROGRAM", rule.sk.startswith(_VERSION_PREFIX))
            ]

    def in_force(self, at: datetime) -> ReferralProgram | None:
        rule = self._models.rule
        upper = f"{_VERSION_PREFIX}{sortable(at)}#~"
        with translate_transient():
            rows = list(
                rule.query(
                    "PROGRAM",
                    rule.sk.between(_VERSION_PREFIX, upper),
                    scan_index_forward=False,
                    limit=1,
                )
            )
        return _to_program(rows[0].sk, rows[0].definition) if rows else None


def _to_program(sk: str, definition: str) -> ReferralProgram:
    data = json.loads(definition)
    cap = data.get("cap")
    return ReferralProgram(
        version_id=sk.rsplit("#", 1)[1],
        effective_from=datetime.fromisoformat(data["effective_from"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        enabled=bool(data["enabled"]),
        referrer_points=int(data["referrer_points"]),
        referee_points=int(data["referee_points"]),
        min_order_total=Decimal(data["min_order_total"]) if data.get("min_order_total") else None,
        cap=ReferralCap(int(cap["limit"]), CapPeriod(cap["per"])) if cap else None,
        referee_rewarded_when_capped=bool(data.get("referee_rewarded_when_capped", True)),
    )
