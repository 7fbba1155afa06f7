"""Sortable, prefixed public identifiers (ULIDs), and the shape of the segment names a brand gives its members."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from ulid import ULID

_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
MEMBER_ID_PATTERN = re.compile(rf"^mem_{_ULID}$")
TRANSACTION_ID_PATTERN = re.compile(rf"^txn_{_ULID}$")
API_KEY_ID_PATTERN = re.compile(rf"^key_{_ULID}$")
RULE_ID_PATTERN = re.compile(rf"^rul_{_ULID}$")
IMPORT_ID_PATTERN = re.compile(rf"^imp_{_ULID}$")
#: Member segments (``vip``, ``staff``): lowercase slugs, like tier names; a member holds at most
#: ``MAX_SEGMENTS`` of them.
SEGMENT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_SEGMENTS = 20


def ulid(at: datetime | None = None) -> ULID:
    """A ULID whose time part is ``at`` (the service's clock), so ids and timestamps agree; a
    random one now without it."""
    from ulid import ULID  # on first use: python-ulid reads its package metadata at import

    return ULID.from_datetime(at) if at is not None else ULID()


def new_member_id(at: datetime | None = None) -> str:
    return f"mem_{ulid(at)}"


def new_transaction_id(at: datetime | None = None) -> str:
    return f"txn_{ulid(at)}"


def new_api_key_id() -> str:
    return f"key_{ulid()}"


def new_job_run_id() -> str:
    return f"run_{ulid()}"


def new_notice_id(at: datetime | None = None) -> str:
    return f"ntc_{ulid(at)}"


def new_rule_id(at: datetime | None = None) -> str:
    return f"rul_{ulid(at)}"


def new_import_id(at: datetime | None = None) -> str:
    return f"imp_{ulid(at)}"


def ulid_from_str(text: str) -> ULID:
    """The ULID ``text`` spells; ValueError when it spells none."""
    from ulid import ULID

    return ULID.from_str(text)


TRANSFER_ID_PATTERN = re.compile(rf"^trf_{_ULID}$")


def new_transfer_id(at: datetime | None = None) -> str:
    return f"trf_{ulid(at)}"


HOUSEHOLD_ID_PATTERN = re.compile(rf"^hh_{_ULID}$")


def new_household_id(at: datetime | None = None) -> str:
    return f"hh_{ulid(at)}"


def new_household_redemption_id(at: datetime | None = None) -> str:
    return f"hrd_{ulid(at)}"
