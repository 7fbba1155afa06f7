"""Coalition partners in the tenant's own table, and reads of their settlement counters.

A partner is ``PARTNERS`` / ``PARTNER#<id>``. Settlement counters are the ledger's own
counter items (``COUNTER#partner:<id>:<day>:issued|redeemed``), changed only inside ledger
transactions; a period's counters are read with batched gets.
"""

from __future__ import annotations

import builtins
from decimal import Decimal

from pynamodb.exceptions import TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.partners import Partner
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import cancellation_codes, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import COUNTER_PREFIX, COUNTER_SK
from chalicelib.persistence.models import PartnerItem

_PK = "PARTNERS"
_SK_PREFIX = "PARTNER#"


class PartnerRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add(self, partner: Partner, audit: AuditEntry | None = None) -> bool:
        model = self._models.partner
        item = model(
            pk=_PK,
            sk=_SK_PREFIX + partner.partner_id,
            partner_id=partner.partner_id,
            name=partner.name,
            earn_rate=str(partner.earn_rate),
            redeem_rate=str(partner.redeem_rate),
            created_at=partner.created_at,
        )
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.save(item, condition=model.pk.does_not_exist(), label=partner)
        except TransactWriteError as error:
            reasons = zip(tx.labels(), cancellation_codes(error), strict=False)
            if any(label is partner and code == "ConditionalCheckFailed" for label, code in reasons):
                return False
            raise
        return True

    def get(self, partner_id: str) -> Partner | None:
        model = self._models.partner
        with translate_transient():
            try:
                item = model.get(_PK, _SK_PREFIX + partner_id, consistent_read=True)
            except model.DoesNotExist:
                return None
        return _to_partner(item)

    def list(self) -> list[Partner]:
        model = self._models.partner
        with translate_transient():
            return [_to_partner(item) for item in model.query(_PK, model.sk.startswith(_SK_PREFIX))]

    def counters(self, names: builtins.list[str]) -> dict[str, int]:
        counter = self._models.counter
        keys = [(f"{COUNTER_PREFIX}{name}", COUNTER_SK) for name in names]
        found: dict[str, int] = {}
        with translate_transient():
            for item in counter.batch_get(keys, consistent_read=True):
                found[item.pk.removeprefix(COUNTER_PREFIX)] = int(item.value or 0)
        return found


def _to_partner(item: PartnerItem) -> Partner:
    return Partner(
        partner_id=item.partner_id,
        name=item.name,
        earn_rate=Decimal(item.earn_rate),
        redeem_rate=Decimal(item.redeem_rate),
        created_at=item.created_at,
    )
