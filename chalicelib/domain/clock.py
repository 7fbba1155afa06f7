"""Time is injected so that services and tests agree on 'now'."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def shifted(offset: timedelta) -> Clock:
    """The clock ``offset`` ahead of real time (a sandbox brand's test clock); real time without one."""
    if not offset:
        return utc_now
    return lambda: datetime.now(UTC) + offset


#: The clock of the brand a request runs for (its test clock for a sandbox brand): set by the API's
#: routing once the caller is known, read where no service is at hand (request models' rules).
request_clock: ContextVar[Clock] = ContextVar("request_clock", default=utc_now)


def request_now() -> datetime:
    """Now, as the brand the current request runs for sees it (real time outside a request)."""
    return request_clock.get()()


def isoformat(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a 'Z' suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
