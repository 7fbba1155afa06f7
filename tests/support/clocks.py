"""A clock for the services that moves only when the test says so."""

from __future__ import annotations

from datetime import datetime


class MovableClock:
    """Pass it as the services' ``clock``; set or advance ``now`` to move time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
