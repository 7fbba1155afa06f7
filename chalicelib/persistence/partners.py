"""Coalition partners in the tenant's own table, and reads of their settlement counters.

A partner is ``PARTNERS`` / ``PARTNER#<id>``. Settlement counters are the ledger's own
counter items (``COUNTER#partner:<id>:<day>:issued|redeemed``), changed only inside ledger
transactions; a period's counters are read with batched gets.
"""

from __future__ import annotations

import builtins
from decimal import Decimal

from pynamodb.exceptions import PutError

from chalicelib.domain.partners import Partner
from chalicelib.persistence.errors import response_code, translate_transient
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.models import PartnerItem
from chalicelib.persistence.tenant_data import _COUNTER_PREFIX

_PK = "PARTNERS"
_SK_PREFIX = "PARTNER#"
_COUNTER_SK = "#COUNTER"


class PartnerRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add(self, partner: Partner) -> bool:
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
            with translate_transient():
                item.save(condition=model.pk.does_not_exist())
        except PutError as error:
            if response_code(error) == "ConditionalCheckFailedException":
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
        keys = [(f"{_COUNTER_PREFIX}{name}", _COUNTER_SK) for name in names]
        found: dict[str, int] = {}
        with translate_transient():
            for item in counter.batch_get(keys, consistent_read=True):
                found[item.pk.removeprefix(_COUNTER_PREFIX)] = int(item.value or 0)
        return found


def _to_partner(item: PartnerItem) -> Partner:
    return Partner(
        partner_id=item.partner_id,
        name=item.name,
        earn_rate=Decimal(item.earn_rate),
        redeem_rate=Decimal(item.redeem_rate),
        created_at=item.created_at,
    )
