"""Tiers in a tenant's table: the versions of the tier program, and what a tier change writes
in a ledger transaction (the member's entry in the index of due reviews, its event)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import NotFound
from chalicelib.domain.events import EventType
from chalicelib.domain.notifications import Notice
from chalicelib.domain.tiers import Metric, Tier, TierProgram, TierWrite, WindowKind
from chalicelib.persistence.audit import add_audit_entry
from chalicelib.persistence.control import tenant_pk
from chalicelib.persistence.errors import cancellation_codes, translate_transient
from chalicelib.persistence.index_keys import (
    due_shard,
    member_pk,
    sortable,
)
from chalicelib.persistence.notifications import notice_item
from chalicelib.persistence.quotas import GuardedTransactWrite

if TYPE_CHECKING:
    from chalicelib.domain.entries import Balance
    from chalicelib.persistence.factory import ControlModels, TenantModels
    from chalicelib.persistence.models import BalanceItem

TIER_REVIEW_PREFIX = "TIERS#"
TIER_REVIEW_SK = "#TIERREVIEW"
_VERSION_PREFIX = "TIERS#"
#: The sort key prefix of the tier versions (under pk ``PROGRAM``).
TIERS_PREFIX = _VERSION_PREFIX


def tier_unchanged(balance: type[BalanceItem], previous: Balance) -> Any:
    """The condition that the member's tier is still the one read: the review job changes a tier
    without a ledger entry (so without moving the balance's ``version``), and moves ``tier_rev``."""
    return balance.tier_rev == previous.tier_rev if previous.tier_rev else balance.tier_rev.does_not_exist()


def add_tier_write(models: TenantModels, tx: GuardedTransactWrite, write: TierWrite) -> None:
    """The review index entry (put at its new time, or deleted) and the ``tier.changed`` event."""
    review = models.tier_review
    pk = member_pk(write.member_id)
    if write.review_at is None:
        tx.delete(review(pk=pk, sk=TIER_REVIEW_SK))
    else:
        tx.save(
            review(
                pk=pk,
                sk=TIER_REVIEW_SK,
                gsi2pk=f"{TIER_REVIEW_PREFIX}{due_shard(write.member_id)}",
                gsi2sk=f"{sortable(write.review_at)}#{write.member_id}",
            )
        )
    if write.event is not None:
        event = write.event
        notice = Notice(
            event.event_id, EventType.TIER_CHANGED, event.member_id, event.subject, event.created_at, event.data
        )
        tx.save(notice_item(models, notice), condition=models.notice.pk.does_not_exist())


class TierProgramRepository:
    """Versions under pk ``PROGRAM``, sk ``TIERS#<effective from>#<version id>``: the version in
    force at a moment is one query for the last key at or before it.

    Storing a version also marks it stored on the program's summary (read by movements) and on
    the tenant's registry item (``tiers_stored``, read by every request's authentication), in
    one transaction across the tenant's table and the control table: a balance read skips the
    query while the registry says no version was ever stored."""

    def __init__(self, models: TenantModels, control: ControlModels) -> None:
        self._models = models
        self._control = control

    def add(self, program: TierProgram, audit: AuditEntry | None = None) -> None:
        definition = {
            "effective_from": program.effective_from.isoformat(),
            "created_at": program.created_at.isoformat(),
            "metric": str(program.metric),
            "window": str(program.window),
            "months": program.months,
            "grace_periods": program.grace_periods,
            "tiers": [
                {
                    "name": tier.name,
                    "threshold": format(tier.threshold, "f"),
                    "multiplier": format(tier.multiplier, "f"),
                    "perks": list(tier.perks),
                }
                for tier in program.tiers
            ],
        }
        sk = f"{_VERSION_PREFIX}{sortable(program.effective_from)}#{program.version_id}"
        models, tenant = self._models, self._control.tenant
        # The version, the program's summary and the tenant's registry item (a tier version is
        # stored) change together. The registry item is this table's tenant's, and must exist.
        try:
            tx = GuardedTransactWrite(connection=models.rule._get_connection().connection)
            with translate_transient(), tx:
                tx.save(
                    models.rule(pk="PROGRAM", sk=sk, definition=json.dumps(definition)),
                    condition=models.rule.sk.does_not_exist(),
                )
                tx.update(models.program(pk="PROGRAM", sk="#CURRENT"), actions=[models.program.tiers_stored.set(True)])
                tx.update(
                    tenant(pk=tenant_pk(models.tenant_id), sk="#TENANT"),
                    actions=[tenant.tiers_stored.set(True)],
                    condition=tenant.pk.exists(),
                    label="tenant",
                )
                if audit is not None:
                    add_audit_entry(models.audit, tx, audit)
        except TransactWriteError as error:
            reasons = zip(tx.labels(), cancellation_codes(error), strict=False)
            if any(label == "tenant" and code == "ConditionalCheckFailed" for label, code in reasons):
                raise NotFound(f"tenant {models.tenant_id!r} not found") from None
            raise

    def list(self) -> list[TierProgram]:
        rule = self._models.rule
        with translate_transient():
            return [
                _to_program(item.sk, item.definition)
                for item in rule.query("PROGRAM", rule.sk.startswith(_VERSION_PREFIX))
            ]

    def in_force(self, at: datetime) -> TierProgram | None:
        rule = self._models.rule
        upper = f"{_VERSION_PREFIX}{sortable(at)}#~"
        with translate_transient():
            rows = list(
                rule.query("PROGRAM", rule.sk.between(_VERSION_PREFIX, upper), scan_index_forward=False, limit=1)
            )
        return _to_program(rows[0].sk, rows[0].definition) if rows else None


def _to_program(sk: str, definition: str) -> TierProgram:
    data = json.loads(definition)
    return TierProgram(
        version_id=sk.rsplit("#", 1)[1],
        effective_from=datetime.fromisoformat(data["effective_from"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        metric=Metric(data["metric"]),
        window=WindowKind(data["window"]),
        months=data.get("months"),
        grace_periods=int(data["grace_periods"]),
        tiers=tuple(
            Tier(
                name=tier["name"],
                threshold=Decimal(tier["threshold"]),
                multiplier=Decimal(tier["multiplier"]),
                perks=tuple(tier["perks"]),
            )
            for tier in data["tiers"]
        ),
    )
