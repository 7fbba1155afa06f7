"""Sortable, prefixed public identifiers (ULIDs)."""

from __future__ import annotations

import re
from datetime import datetime

from ulid import ULID

_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
MEMBER_ID_PATTERN = re.compile(rf"^mem_{_ULID}$")
TRANSACTION_ID_PATTERN = re.compile(rf"^txn_{_ULID}$")
API_KEY_ID_PATTERN = re.compile(rf"^key_{_ULID}$")
RULE_ID_PATTERN = re.compile(rf"^rul_{_ULID}$")
IMPORT_ID_PATTERN = re.compile(rf"^imp_{_ULID}$")


def _ulid(at: datetime | None) -> ULID:
    """A ULID whose time part is ``at`` (the service's clock), so ids and timestamps agree."""
    return ULID.from_datetime(at) if at is not None else ULID()


def new_member_id(at: datetime | None = None) -> str:
    return f"mem_{_ulid(at)}"


def new_transaction_id(at: datetime | None = None) -> str:
    return f"txn_{_ulid(at)}"


def new_api_key_id() -> str:
    return f"key_{ULID()}"


def new_job_run_id() -> str:
    return f"run_{ULID()}"


def new_notice_id(at: datetime | None = None) -> str:
    return f"ntc_{_ulid(at)}"


def new_rule_id(at: datetime | None = None) -> str:
    return f"rul_{_ulid(at)}"


def new_import_id(at: datetime | None = None) -> str:
    return f"imp_{_ulid(at)}"


TRANSFER_ID_PATTERN = re.compile(rf"^trf_{_ULID}$")


def new_transfer_id(at: datetime | None = None) -> str:
    return f"trf_{_ulid(at)}"
