"""Unauthenticated endpoints."""

from __future__ import annotations

from typing import Literal

from chalicelib.api.schemas.common import Out


class Health(Out):
    status: Literal["ok"]
