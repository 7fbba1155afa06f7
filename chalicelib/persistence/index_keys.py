"""The keys of a tenant's items that several modules share: partition and sort keys of the
member, ledger, lot, notice, rule and job-run items, the feed partition of a day, the time in
a sort key, and the shard of a member's entry in a due-at-a-time index (``gsi2``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.persistence.models import LedgerItem, MemberItem

#: Entries due at a time spread over this many index partitions, so no single one runs hot.
DUE_SHARDS = 8


def sortable(moment: datetime) -> str:
    """Fixed-width UTC timestamp: string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def due_shard(member_id: str) -> int:
    """The index partition (0 to ``DUE_SHARDS`` - 1) of a member's due entries."""
    return int(hashlib.sha256(member_id.encode()).hexdigest()[:8], 16) % DUE_SHARDS


MEMBERS_PARTITION = "MEMBERS"
GSI1_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")
PROFILE = "#PROFILE"
BALANCE = "#BALANCE"


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


LEDGER_PREFIX = "LEDGER#"
LEDGER_PARTITION = ("MEMBER#", "#LEDGER")


def ledger_pk(idempotency_key: str) -> str:
    return f"{LEDGER_PREFIX}{idempotency_key}"


def ledger_partition(member_id: str) -> str:
    return f"{LEDGER_PARTITION[0]}{member_id}{LEDGER_PARTITION[1]}"


LOT_PREFIX = "LOT#"
JOB_RUNS_PARTITION = "JOBRUNS"
DUE_PREFIX = "EXPIRES#"
MATURES_PREFIX = "MATURES#"
BIRTHDAY_PREFIX = "BIRTHDAY#"
NOTICE_SK = "#NOTICE"
RULE_PREFIX = "RULE#"
#: The ledger's counters (limits per member and period, caps, stock): one item each.
COUNTER_PREFIX = "COUNTER#"
COUNTER_SK = "#COUNTER"


def lot_sk(lot_id: str) -> str:
    return f"{LOT_PREFIX}{lot_id}"


def feed_partition(moment: datetime) -> str:
    return f"EVENTS#{moment.astimezone(UTC):%Y-%m-%d}"


def feed_partition_of_day(day: date) -> str:
    return f"EVENTS#{day.isoformat()}"


def notice_pk(notice_type: str, member_id: str, subject: str) -> str:
    """A notice is written once per type, member and subject: its key says so."""
    return f"NOTICE#{notice_type}#{member_id}#{subject}"


def external_id_pk(external_id: str) -> str:
    return f"EXTID#{external_id}"


ENROLMENT_SK = "#ENROLREQ"


def enrolment_pk(idempotency_key: str) -> str:
    return f"ENROLREQ#{idempotency_key}"


def gsi1_key(item: MemberItem | LedgerItem) -> dict[str, str]:
    return {"pk": item.pk, "sk": item.sk, "gsi1pk": item.gsi1pk or "", "gsi1sk": item.gsi1sk or ""}


def member_notices_partition(member_id: str) -> str:
    """A member's notices in ``gsi1`` (newest last): what an export of the member lists."""
    return f"MEMBER#{member_id}#NOTICES"
