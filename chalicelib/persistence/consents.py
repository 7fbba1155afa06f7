"""Members' consent histories in the tenant's table: ``MEMBER#<member>`` / ``CONSENT#<ULID>``,
in the member's own partition, in time order. Each change is written by the member store, in
the transaction that changes the profile's flag (:func:`add_consent_change`)."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

from chalicelib.domain.audit import Actor, Channel
from chalicelib.domain.consents import Consent, ConsentChange
from chalicelib.domain.ports import Page
from chalicelib.persistence.errors import translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import member_pk
from chalicelib.persistence.models import ConsentItem
from chalicelib.persistence.pagination import decode_cursor, paginate
from chalicelib.persistence.quotas import GuardedTransactWrite

CONSENT_PREFIX = "CONSENT#"
_KEY_FIELDS = ("pk", "sk")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def add_consent_change(models: TenantModels, tx: GuardedTransactWrite, change: ConsentChange) -> None:
    """Append ``change`` to ``tx`` (the profile's own transaction), only if absent."""
    tx.save(to_consent_item(models, change), condition=models.consent.pk.does_not_exist(), label=change)


def to_consent_item(models: TenantModels, change: ConsentChange) -> ConsentItem:
    return models.consent(
        pk=member_pk(change.member_id),
        sk=CONSENT_PREFIX + change.change_id.removeprefix("cns_"),
        consent=str(change.consent),
        value=change.value,
        previous=change.previous,
        at=change.at,
        actor=change.source.key_id,
        channel=str(change.source.channel),
    )


class ConsentRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def history(self, member_id: str, *, limit: int, cursor: str | None) -> Page[ConsentChange]:
        model, pk = self._models.consent, member_pk(member_id)
        start = decode_cursor(cursor, fields=_KEY_FIELDS, partition=("pk", pk)) if cursor else None
        with translate_transient():
            rows = model.query(
                pk,
                model.sk.startswith(CONSENT_PREFIX),
                limit=limit + 1,
                last_evaluated_key=start,
                consistent_read=True,
            )
            return paginate(rows, limit=limit, key_of=lambda item: {"pk": item.pk, "sk": item.sk}, convert=_to_change)

    def in_force(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None:
        """The last change of ``consent`` at or before ``at``."""
        model = self._models.consent
        with translate_transient():
            rows = model.query(
                member_pk(member_id),
                model.sk.between(CONSENT_PREFIX, _bound(at)),
                filter_condition=model.consent == consent,
                scan_index_forward=False,
                limit=1,
                consistent_read=True,
            )
            return next((_to_change(row) for row in rows), None)

    def first_after(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None:
        """The first change of ``consent`` after ``at``."""
        model = self._models.consent
        with translate_transient():
            rows = model.query(
                member_pk(member_id),
                model.sk.between(_bound(at), CONSENT_PREFIX + "~"),
                filter_condition=model.consent == consent,
                limit=1,
                consistent_read=True,
            )
            return next((_to_change(row) for row in rows if row.sk != _bound(at)), None)


def _bound(at: datetime) -> str:
    """The greatest key of a change in ``at``'s millisecond (before 1970: the first key)."""
    if at < _EPOCH:
        return CONSENT_PREFIX
    return f"{CONSENT_PREFIX}{str(ULID.from_datetime(at))[:10]}{'Z' * 16}"


def _to_change(item: ConsentItem) -> ConsentChange:
    return ConsentChange(
        change_id="cns_" + item.sk.removeprefix(CONSENT_PREFIX),
        member_id=item.pk.removeprefix("MEMBER#"),
        consent=Consent(item.consent),
        value=bool(item.value),
        previous=item.previous,
        at=item.at,
        source=Actor(item.actor, Channel(item.channel)),
    )
