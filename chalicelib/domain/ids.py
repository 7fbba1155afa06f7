"""Sortable, prefixed public identifiers (ULIDs)."""

from __future__ import annotations

import re

from ulid import ULID

_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
MEMBER_ID_PATTERN = re.compile(rf"^mem_{_ULID}$")
TRANSACTION_ID_PATTERN = re.compile(rf"^txn_{_ULID}$")
API_KEY_ID_PATTERN = re.compile(rf"^key_{_ULID}$")


def new_member_id() -> str:
    return f"mem_{ULID()}"


def new_transaction_id() -> str:
    return f"txn_{ULID()}"


def new_api_key_id() -> str:
    return f"key_{ULID()}"


def new_job_run_id() -> str:
    return f"run_{ULID()}"
