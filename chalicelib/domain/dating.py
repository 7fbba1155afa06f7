"""When a movement or an activity may say it happened: the one rule for ``occurred_at``.

Every path that records an ``occurred_at`` obeys it: the API's request models (earn,
redeem, adjust, reverse, activities, order events) check it while parsing, and
``PointsService.move`` and ``ActivityService.record`` check it again, so no other caller (the
order intake and its Shopify mapping, partners, imports, jobs) can record a date the API
would refuse.

* **Not in the future** beyond ``CLOCK_SKEW`` (5 minutes): a client's clock may run a little
  ahead of ours; a later date is refused. Without this, each future period would open a
  fresh allowance (an activity limited to 3 a month, dated one month ahead after another,
  would have no limit at all).
* **Not older than** ``MAX_AGE`` (31 days): late webhooks, offline tills and last month's
  corrections still count in their own period. Allowances, earning caps, campaign windows
  and tier months count in the period of the accepted ``occurred_at``, so a backdated
  movement can reach the allowances of the periods inside the window (each at most once:
  its counter fills), never of an older one. Older movements are recorded as of now.

Expiry and maturity do not depend on ``occurred_at``: they count from when the movement is
recorded.

The preview (``POST /v1/program/preview``) writes nothing and counts nothing: its
``occurred_at`` ("the rules in force then") may be any moment of ``PREVIEW_RANGE``, in the
future too, to plan a campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.domain.clock import isoformat
from chalicelib.domain.errors import InvalidRequest

#: How far ahead of our clock a client's clock may be.
CLOCK_SKEW = timedelta(minutes=5)
#: How far back a movement or an activity may be dated.
MAX_AGE = timedelta(days=31)
#: The error type naming an ``occurred_at`` outside its window (``details.fields[].type``).
OUT_OF_RANGE = "occurred_at_out_of_range"


@dataclass(frozen=True)
class Window:
    """The moments an ``occurred_at`` may take, both ends included."""

    earliest: datetime
    latest: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.earliest <= moment <= self.latest

    @property
    def message(self) -> str:
        return f"must be between {isoformat(self.earliest)} and {isoformat(self.latest)}"

    @property
    def details(self) -> dict[str, str]:
        return {"min": isoformat(self.earliest), "max": isoformat(self.latest)}


#: Any moment a preview may be asked about.
PREVIEW_RANGE = Window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))


def occurred_at_window(now: datetime) -> Window:
    """Where an ``occurred_at`` recorded at ``now`` may lie (to the millisecond, as shown)."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return Window(now - MAX_AGE, now + CLOCK_SKEW)


class OccurredAtOutOfRange(InvalidRequest):
    """400 ``invalid_request``: ``details.fields`` names the field; ``min`` and ``max`` (there
    and in ``details``) give the window."""

    def __init__(self, window: Window, path: str = "occurred_at") -> None:
        field = {"path": path, "message": window.message, "type": OUT_OF_RANGE, **window.details}
        super().__init__(f"{path} {window.message}", details={"fields": [field], **window.details})
        self.window = window


def check_occurred_at(moment: datetime | None, now: datetime, *, path: str = "occurred_at") -> datetime | None:
    """``moment`` if a movement recorded at ``now`` may say it happened then (None: now);
    OccurredAtOutOfRange otherwise."""
    if moment is None:
        return None
    window = occurred_at_window(now)
    if moment not in window:
        raise OccurredAtOutOfRange(window, path)
    return moment


def check_preview_at(moment: datetime | None, *, path: str = "occurred_at") -> datetime | None:
    if moment is not None and moment not in PREVIEW_RANGE:
        raise OccurredAtOutOfRange(PREVIEW_RANGE, path)
    return moment
