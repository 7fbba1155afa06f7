"""Earning rules in a tenant's table."""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.rules import EarningRule, Per, RuleKind
from chalicelib.persistence.audit import add_audit_entry
from chalicelib.persistence.errors import (
    translate_transient,
)
from chalicelib.persistence.factory import TenantModels
from chalicelib.persistence.index_keys import (
    RULE_PREFIX,
)
from chalicelib.persistence.models import (
    RuleItem,
)
from chalicelib.persistence.quotas import guarded_transaction
from chalicelib.persistence.tiers import TIERS_PREFIX


class RuleRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def list(self) -> list[EarningRule]:
        rule = self._models.rule
        with translate_transient():
            return [_to_rule(item) for item in rule.query("PROGRAM", rule.sk.startswith(RULE_PREFIX))]

    def get(self, rule_id: str) -> EarningRule | None:
        with translate_transient():
            try:
                return _to_rule(self._models.rule.get("PROGRAM", f"{RULE_PREFIX}{rule_id}"))
            except DoesNotExist:
                return None

    def put(self, rule: EarningRule, audit: AuditEntry | None = None) -> None:
        definition = {
            "name": rule.name,
            "kind": str(rule.kind),
            "created_at": isoformat_micros(rule.created_at),
            "starts_at": isoformat_micros(rule.starts_at),
            "ends_at": isoformat_micros(rule.ends_at),
            "factor": str(rule.factor) if rule.factor is not None else None,
            "points": rule.points,
            "skus": sorted(rule.skus),
            "categories": sorted(rule.categories),
            "weekdays": sorted(rule.weekdays),
            "min_order_total": str(rule.min_order_total) if rule.min_order_total is not None else None,
            "every": rule.every,
            "at": rule.at,
            "activity": rule.activity,
            "limit": rule.limit,
            "per": str(rule.per) if rule.per else None,
            **({"tiers": sorted(rule.tiers)} if rule.tiers else {}),
            **({"cap": rule.cap} if rule.cap is not None else {}),
            **({"segments": sorted(rule.segments)} if rule.segments else {}),
        }
        models = self._models
        item = models.rule(pk="PROGRAM", sk=f"{RULE_PREFIX}{rule.rule_id}", definition=json.dumps(definition))
        # The rule and the program's summary of the rules change together.
        summary = rule_summary_actions(models, [rule] if _capped(rule) else [])
        with translate_transient(), guarded_transaction(models) as tx:
            tx.save(item)
            tx.update(models.program(pk="PROGRAM", sk="#CURRENT"), actions=summary)
            if audit is not None:
                add_audit_entry(models.audit, tx, audit)


def _capped(rule: EarningRule) -> bool:
    """A rule an earn of plain points or an amount must see: one with a cap (caps.limits_for)."""
    return rule.cap is not None and rule.per is not None


def rule_summary_actions(models: TenantModels, capped: builtins.list[EarningRule]) -> builtins.list[Any]:
    """Keep the program item's summary: the ids of ``capped`` and of every stored rule with a
    cap added, ``tiers_stored`` set if a tier version is stored, then the summary marked
    complete. Every part only grows (ADD commutes; a tier version's own write sets
    ``tiers_stored``), so concurrent writers each add what they saw and their own. Rules and
    versions are never deleted; an ended rule keeps its place (an earn then reads the rules and
    finds the cap no longer in force)."""
    item, rule = models.program, models.rule
    with translate_transient():
        stored = [_to_rule(row) for row in rule.query("PROGRAM", rule.sk.startswith(RULE_PREFIX))]
        tiers = any(True for _ in rule.query("PROGRAM", rule.sk.startswith(TIERS_PREFIX), limit=1))
    ids = {found.rule_id for found in (*stored, *capped) if _capped(found)}
    return [
        *([item.capped_rules.add(ids)] if ids else []),
        *([item.tiers_stored.set(True)] if tiers else []),
        item.summarised.set(True),
    ]


def isoformat_micros(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _to_rule(item: RuleItem) -> EarningRule:
    data = json.loads(item.definition)

    def moment(name: str) -> datetime | None:
        return datetime.fromisoformat(data[name]) if data.get(name) else None

    return EarningRule(
        rule_id=item.sk.removeprefix(RULE_PREFIX),
        name=data["name"],
        kind=RuleKind(data["kind"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        starts_at=moment("starts_at"),
        ends_at=moment("ends_at"),
        factor=Decimal(data["factor"]) if data.get("factor") else None,
        points=data.get("points"),
        skus=frozenset(data.get("skus") or ()),
        categories=frozenset(data.get("categories") or ()),
        weekdays=frozenset(data.get("weekdays") or ()),
        min_order_total=Decimal(data["min_order_total"]) if data.get("min_order_total") else None,
        every=data.get("every"),
        at=data.get("at"),
        activity=data.get("activity"),
        limit=data.get("limit"),
        per=Per(data["per"]) if data.get("per") else None,
        tiers=frozenset(data.get("tiers") or ()),
        cap=data.get("cap"),
        segments=frozenset(data.get("segments") or ()),
    )
