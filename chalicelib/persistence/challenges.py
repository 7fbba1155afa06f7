"""Challenges and badges in a tenant's table.

* A challenge: pk ``PROGRAM``, sk ``CHALLENGE#<id>`` (the rule item's shape, ``definition`` as
  JSON): every challenge of the tenant in one query. Storing one also marks the program's
  summary (``challenges_stored``) in the same transaction, so a movement reads challenges only
  once one exists.
* A member's progress in one: pk ``MEMBER#<member>``, sk ``CHL#P#<challenge>``; a badge they
  hold: sk ``CHL#B#<badge>``; one query reads both. Progress is written only in a movement's
  transaction, under the condition that it is still at the version read.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.challenges import (
    Badge,
    BadgeAward,
    Challenge,
    ChallengeKind,
    ChallengeStatus,
    ChallengeWrite,
    Progress,
    StreakPeriod,
)
from chalicelib.domain.errors import NotFound
from chalicelib.persistence.audit import audited_transaction
from chalicelib.persistence.errors import cancellation_codes, translate_transient
from chalicelib.persistence.index_keys import NOTICE_SK, feed_partition, member_notices_partition, member_pk, notice_pk

if TYPE_CHECKING:
    from chalicelib.domain.notifications import Notice
    from chalicelib.persistence.factory import TenantModels
    from chalicelib.persistence.models import ChallengeProgressItem
    from chalicelib.persistence.quotas import GuardedTransactWrite

CHALLENGE_PREFIX = "CHALLENGE#"
MEMBER_PREFIX = "CHL#"
PROGRESS_PREFIX = "CHL#P#"
BADGE_PREFIX = "CHL#B#"


class ChallengeRepository:
    def __init__(self, models: TenantModels) -> None:
        self._models = models

    def add(self, challenge: Challenge, audit: AuditEntry | None = None) -> None:
        models = self._models
        rule, program = models.rule, models.program
        with audited_transaction(models.audit, audit) as tx:
            tx.save(
                rule(pk="PROGRAM", sk=f"{CHALLENGE_PREFIX}{challenge.challenge_id}", definition=_dump(challenge)),
                condition=rule.sk.does_not_exist(),
            )
            tx.update(program(pk="PROGRAM", sk="#CURRENT"), actions=[program.challenges_stored.set(True)])

    def put(self, challenge: Challenge, audit: AuditEntry | None = None) -> None:
        rule = self._models.rule
        item = rule(pk="PROGRAM", sk=f"{CHALLENGE_PREFIX}{challenge.challenge_id}", definition=_dump(challenge))
        try:
            with audited_transaction(self._models.audit, audit) as tx:
                tx.save(item, condition=rule.sk.exists())
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in cancellation_codes(error):
                raise NotFound(f"challenge {challenge.challenge_id!r} not found") from None
            raise

    def get(self, challenge_id: str) -> Challenge | None:
        with translate_transient():
            try:
                item = self._models.rule.get("PROGRAM", f"{CHALLENGE_PREFIX}{challenge_id}")
            except DoesNotExist:
                return None
        return _load(item.definition)

    def all(self) -> list[Challenge]:
        rule = self._models.rule
        with translate_transient():
            rows = list(rule.query("PROGRAM", rule.sk.startswith(CHALLENGE_PREFIX)))
        return [_load(row.definition) for row in rows]

    def member(self, member_id: str, *, consistent: bool) -> tuple[list[Progress], list[BadgeAward]]:
        model = self._models.challenge_progress
        with translate_transient():
            rows = list(
                model.query(member_pk(member_id), model.sk.startswith(MEMBER_PREFIX), consistent_read=consistent)
            )
        progress = [_progress(member_id, row) for row in rows if row.sk.startswith(PROGRESS_PREFIX)]
        badges = [_badge(member_id, row) for row in rows if row.sk.startswith(BADGE_PREFIX)]
        return progress, badges


def add_challenge_write(models: TenantModels, tx: GuardedTransactWrite, write: ChallengeWrite) -> None:
    """The member's progress (still at the version read, or absent), and on completion the badge
    (written once) and the events (each once)."""
    model = models.challenge_progress
    progress = write.progress
    pk = member_pk(progress.member_id)
    still = model.version == write.previous_version if write.previous_version else model.pk.does_not_exist()
    tx.save(
        model(
            pk=pk,
            sk=f"{PROGRESS_PREFIX}{progress.challenge_id}",
            version=progress.version,
            data=json.dumps(_progress_data(progress), separators=(",", ":")),
        ),
        condition=still,
        label=write,
    )
    if write.badge is not None:
        award = write.badge
        tx.save(
            model(
                pk=pk,
                sk=f"{BADGE_PREFIX}{award.badge.badge_id}",
                version=1,
                data=json.dumps(
                    {
                        "name": award.badge.name,
                        "description": award.badge.description,
                        "challenge_id": award.challenge_id,
                        "awarded_at": award.awarded_at.isoformat(),
                    },
                    separators=(",", ":"),
                ),
            ),
            condition=model.pk.does_not_exist(),
            label=write,
        )
    for event in write.events:
        _add_notice(models, tx, event, write)


def _add_notice(models: TenantModels, tx: GuardedTransactWrite, event: Notice, label: object) -> None:
    notice = models.notice
    tx.save(
        notice(
            pk=notice_pk(event.type, event.member_id, event.subject),
            sk=NOTICE_SK,
            gsi3pk=feed_partition(event.created_at),
            gsi3sk=event.notice_id.removeprefix("ntc_"),
            gsi1pk=member_notices_partition(event.member_id),  # the member's notices (their export)
            gsi1sk=event.notice_id.removeprefix("ntc_"),
            notice_id=event.notice_id,
            type=str(event.type),
            member_id=event.member_id,
            subject=event.subject,
            created_at=event.created_at,
            data=json.dumps(event.data, separators=(",", ":")),
        ),
        condition=notice.pk.does_not_exist(),
        label=label,
    )


def _dump(challenge: Challenge) -> str:
    badge = challenge.badge
    data: dict[str, Any] = {
        "id": challenge.challenge_id,
        "name": challenge.name,
        "description": challenge.description,
        "kind": str(challenge.kind),
        "goal": format(challenge.goal, "f"),
        "starts_at": challenge.starts_at.isoformat(),
        "ends_at": challenge.ends_at.isoformat() if challenge.ends_at else None,
        "activity": challenge.activity,
        "period": str(challenge.period) if challenge.period else None,
        "grace": challenge.grace,
        "reward_points": challenge.reward_points,
        "badge": {"id": badge.badge_id, "name": badge.name, "description": badge.description} if badge else None,
        "tiers": sorted(challenge.tiers),
        "segments": sorted(challenge.segments),
        "status": str(challenge.status),
        "created_at": challenge.created_at.isoformat(),
        "updated_at": challenge.updated_at.isoformat(),
    }
    return json.dumps(data, separators=(",", ":"))


def _load(definition: str) -> Challenge:
    data = json.loads(definition)
    badge = data.get("badge")
    return Challenge(
        challenge_id=data["id"],
        name=data["name"],
        description=data.get("description"),
        kind=ChallengeKind(data["kind"]),
        goal=Decimal(data["goal"]),
        starts_at=datetime.fromisoformat(data["starts_at"]),
        ends_at=datetime.fromisoformat(data["ends_at"]) if data.get("ends_at") else None,
        activity=data.get("activity"),
        period=StreakPeriod(data["period"]) if data.get("period") else None,
        grace=int(data.get("grace") or 0),
        reward_points=int(data.get("reward_points") or 0),
        badge=Badge(badge["id"], badge["name"], badge.get("description")) if badge else None,
        tiers=frozenset(data.get("tiers") or ()),
        segments=frozenset(data.get("segments") or ()),
        status=ChallengeStatus(data["status"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def _progress_data(progress: Progress) -> dict[str, Any]:
    return {
        "value": progress.value,
        "completed_at": progress.completed_at.isoformat() if progress.completed_at else None,
        "counted": [list(pair) for pair in progress.counted],
        "last_period": progress.last_period,
        "updated_at": progress.updated_at.isoformat() if progress.updated_at else None,
    }


def _progress(member_id: str, row: ChallengeProgressItem) -> Progress:
    data = json.loads(row.data)
    return Progress(
        challenge_id=row.sk.removeprefix(PROGRESS_PREFIX),
        member_id=member_id,
        value=int(data["value"]),
        version=int(row.version),
        completed_at=datetime.fromisoformat(data["completed_at"]) if data.get("completed_at") else None,
        counted=tuple((str(ref), int(spend)) for ref, spend in data.get("counted") or ()),
        last_period=data.get("last_period"),
        updated_at=datetime.fromisoformat(data["updated_at"]) if data.get("updated_at") else None,
    )


def _badge(member_id: str, row: ChallengeProgressItem) -> BadgeAward:
    data = json.loads(row.data)
    return BadgeAward(
        member_id=member_id,
        badge=Badge(row.sk.removeprefix(BADGE_PREFIX), data["name"], data.get("description")),
        challenge_id=data["challenge_id"],
        awarded_at=datetime.fromisoformat(data["awarded_at"]),
    )
